//! The data map classifies exactly the columns the migrations create: a new column cannot hold
//! personal data without being classified (and so exported and erased).

use std::collections::BTreeSet;

use diesel::QueryableByName;
use diesel::sql_types::Text;
use diesel_async::RunQueryDsl;
use gad_pg::privacy::data_map::DATA_MAP;
use gad_test_support::TestDatabase;

#[derive(QueryableByName)]
struct SchemaColumn {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    column_name: String,
}

#[tokio::test]
async fn every_column_of_every_table_is_classified_and_nothing_else() {
    let database = TestDatabase::migrated().await;
    let mut conn = database.connect().await;
    // Tables that belong to an extension (PostGIS's spatial_ref_sys) are the extension's.
    let columns: Vec<SchemaColumn> = diesel::sql_query(
        "SELECT c.table_name::text AS table_name, c.column_name::text AS column_name \
         FROM information_schema.columns c \
         JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name \
         WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE' \
           AND NOT EXISTS (SELECT 1 FROM pg_depend d JOIN pg_class k ON k.oid = d.objid \
                           WHERE d.deptype = 'e' AND k.relname = c.table_name)",
    )
    .load(&mut conn)
    .await
    .unwrap();
    let in_schema: BTreeSet<(String, String)> =
        columns.into_iter().map(|column| (column.table_name, column.column_name)).collect();
    let in_map: BTreeSet<(String, String)> = DATA_MAP
        .iter()
        .flat_map(|table| table.columns.iter().map(|column| (table.name.to_owned(), column.name.to_owned())))
        .collect();
    let unclassified: Vec<_> = in_schema.difference(&in_map).collect();
    assert!(
        unclassified.is_empty(),
        "columns missing from the data map (crates/pg/src/privacy/data_map.rs): {unclassified:?}"
    );
    let stale: Vec<_> = in_map.difference(&in_schema).collect();
    assert!(stale.is_empty(), "the data map names columns that do not exist: {stale:?}");
}

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::Path;

use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use tokio::sync::OnceCell;

const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
const TEMPLATE_LOCK_KEY: i64 = 0x6761_645f_7465_6d70;

/// A database of its own for one test; dropped (forcibly) when this value is dropped.
#[derive(Debug)]
pub struct TestDatabase {
    name: String,
    url: String,
}

impl TestDatabase {
    /// A fresh database with the current schema, cloned from the migrated template.
    pub async fn migrated() -> Self {
        let template = template().await;
        Self::create(&format!("TEMPLATE \"{template}\"")).await
    }

    /// A fresh database without any schema (for "not migrated" cases).
    pub async fn empty() -> Self {
        Self::create("").await
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// A direct connection, for arranging and inspecting state.
    pub async fn connect(&self) -> AsyncPgConnection {
        AsyncPgConnection::establish(&self.url).await.unwrap()
    }

    async fn create(options: &str) -> Self {
        let name = format!("gad_test_{}", uuid::Uuid::now_v7().simple());
        let mut admin = admin_connection().await;
        diesel::sql_query(format!("CREATE DATABASE \"{name}\" {options}")).execute(&mut admin).await.unwrap();
        let url = database_url(&name);
        Self { name, url }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let statement = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name);
        // Drop runs inside the test's runtime; the clean-up needs a runtime of its own.
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async move {
                let mut admin = admin_connection().await;
                diesel::sql_query(statement).execute(&mut admin).await.unwrap();
            });
        });
        if cleanup.join().is_err() && !std::thread::panicking() {
            panic!("could not drop test database {}", self.name);
        }
    }
}

fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .or_else(|_| std::env::var("DATABASE_URL"))
        .unwrap_or_else(|_| DEFAULT_ADMIN_URL.to_owned())
}

/// The URL of `database` on the administered server.
fn database_url(database: &str) -> String {
    let admin = admin_url();
    let (base, query) = match admin.split_once('?') {
        Some((base, query)) => (base.to_owned(), format!("?{query}")),
        None => (admin.clone(), String::new()),
    };
    let server = base.rsplit_once('/').map_or(base.as_str(), |(server, _)| server);
    format!("{server}/{database}{query}")
}

async fn admin_connection() -> AsyncPgConnection {
    let url = admin_url();
    AsyncPgConnection::establish(&url)
        .await
        .unwrap_or_else(|error| panic!("cannot reach the test PostgreSQL server: {error}"))
}

/// The template's name, building it first if this set of migrations has none yet.
async fn template() -> &'static str {
    static TEMPLATE: OnceCell<String> = OnceCell::const_new();
    TEMPLATE.get_or_init(build_template).await
}

async fn build_template() -> String {
    let name = format!("gad_template_{:016x}", migrations_hash());
    let mut admin = admin_connection().await;
    diesel::sql_query("SELECT pg_advisory_lock($1)")
        .bind::<BigInt, _>(TEMPLATE_LOCK_KEY)
        .execute(&mut admin)
        .await
        .unwrap();
    let exists = diesel::sql_query("SELECT 1 AS found FROM pg_database WHERE datname = $1")
        .bind::<Text, _>(&name)
        .execute(&mut admin)
        .await
        .unwrap()
        == 1;
    if !exists {
        drop_stale_templates(&mut admin).await;
        let building = format!("{name}_building");
        for statement in
            [format!("DROP DATABASE IF EXISTS \"{building}\" WITH (FORCE)"), format!("CREATE DATABASE \"{building}\"")]
        {
            diesel::sql_query(statement).execute(&mut admin).await.unwrap();
        }
        gad_pg::migrations::run_pending(&database_url(&building)).await.unwrap();
        diesel::sql_query(format!("ALTER DATABASE \"{building}\" RENAME TO \"{name}\""))
            .execute(&mut admin)
            .await
            .unwrap();
    }
    diesel::sql_query("SELECT pg_advisory_unlock($1)")
        .bind::<BigInt, _>(TEMPLATE_LOCK_KEY)
        .execute(&mut admin)
        .await
        .unwrap();
    name
}

#[derive(diesel::QueryableByName)]
struct DatabaseName {
    #[diesel(sql_type = Text)]
    datname: String,
}

/// Templates of earlier migration sets are never used again; they only take space.
async fn drop_stale_templates(admin: &mut AsyncPgConnection) {
    let stale: Vec<DatabaseName> =
        diesel::sql_query("SELECT datname FROM pg_database WHERE datname LIKE 'gad\\_template\\_%'")
            .load(admin)
            .await
            .unwrap();
    for DatabaseName { datname } in stale {
        diesel::sql_query(format!("DROP DATABASE IF EXISTS \"{datname}\" WITH (FORCE)")).execute(admin).await.unwrap();
    }
}

/// A hash of every migration file's path and content.
fn migrations_hash() -> u64 {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations");
    let mut files = Vec::new();
    collect_files(&root, &mut files);
    files.sort();
    let mut hasher = DefaultHasher::new();
    for file in files {
        file.strip_prefix(&root).unwrap().hash(&mut hasher);
        std::fs::read(&file).unwrap().hash(&mut hasher);
    }
    hasher.finish()
}

fn collect_files(dir: &Path, files: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect_files(&path, files);
        } else {
            files.push(path);
        }
    }
}

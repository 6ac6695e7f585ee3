//! Hand-written statements kept prepared on their connection. Diesel treats raw SQL as possibly
//! built on the fly and prepares it afresh on every execution: one more round trip and a new
//! plan each time. Statements whose text is fixed, or chosen from a small fixed set, say so with
//! [`Prepare::prepared`] and are parsed and planned once per connection.

use diesel::QueryResult;
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};

/// A statement of fixed text; see the module documentation.
#[derive(Debug, Clone)]
#[must_use = "a statement runs only when it is executed or loaded"]
pub(crate) struct Prepared<Q>(Q);

pub(crate) trait Prepare: Sized {
    /// Marks the statement as one of a bounded set of texts, safe to keep prepared.
    fn prepared(self) -> Prepared<Self> {
        Prepared(self)
    }
}

impl<Q: QueryFragment<Pg>> Prepare for Q {}

impl<Q: QueryFragment<Pg>> QueryFragment<Pg> for Prepared<Q> {
    fn walk_ast<'b>(&'b self, pass: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        self.0.walk_ast(pass)
    }

    fn is_safe_to_cache_prepared(&self, _backend: &Pg) -> QueryResult<bool> {
        Ok(true)
    }
}

impl<Q> QueryId for Prepared<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q: Query> Query for Prepared<Q> {
    type SqlType = Q::SqlType;
}

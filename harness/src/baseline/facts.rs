//! The baseline's record of what makes a schema behave: an index's parts. Each is read by
//! [`super::capture`] from a source or a restore alike, so that the two compare as equals;
//! the check that compares them (`indexes`) names each part that differs.

use serde::{Deserialize, Serialize};

/// What an index covers and how, part by part, as the server prints each.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexParts {
    /// Key columns and expressions, in order (`email`, `lower(email)`).
    pub keys: Vec<String>,
    /// Each key's operator class, with its schema (`pg_catalog.text_ops`).
    pub opclasses: Vec<String>,
    /// Each key's collation, with its schema (`pg_catalog."C"`); empty for a type that has none.
    pub collations: Vec<String>,
    /// Each key's order where it is not the default (`DESC`, `NULLS FIRST`); empty otherwise.
    pub orders: Vec<String>,
    /// Columns it carries without searching them (`INCLUDE (...)`).
    pub include: Vec<String>,
    /// A partial index's `WHERE`.
    pub predicate: Option<String>,
    /// `NULLS NOT DISTINCT` (PostgreSQL 15 and later): two NULL keys collide.
    pub nulls_not_distinct: bool,
    /// It backs the primary key.
    pub primary: bool,
    /// It backs an exclusion constraint.
    pub exclusion: bool,
    /// Its uniqueness is checked at each row, not deferred (`indimmediate`).
    pub immediate: bool,
    /// Storage parameters (`WITH (...)`: hnsw's `m`, a fillfactor).
    pub options: Vec<String>,
}

//! The baseline's record of what makes a schema behave: an index's parts, a table's columns,
//! constraints, triggers and rules, a sequence's settings. Each is read by
//! [`super::capture`] from a source or a restore alike, so that the two compare as equals;
//! the checks that compare them (`indexes`, `schemas`) name each part that differs.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::pg::QualifiedName;

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

/// What makes a table behave, besides its indexes and row security.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableFacts {
    /// In the table's order.
    pub columns: Vec<ColumnFacts>,
    /// By name; NOT NULL constraints are the columns' `not_null`.
    pub constraints: Vec<ConstraintFacts>,
    /// Its own triggers (not the internal ones of foreign keys, which `constraints` judges).
    pub triggers: Vec<TriggerFacts>,
    /// Its rewrite rules.
    pub rules: Vec<RuleFacts>,
}

/// A table's column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnFacts {
    /// Its name.
    pub name: String,
    /// As `format_type` prints it (`numeric(12,2)`, `public.plan`).
    #[serde(rename = "type")]
    pub data_type: String,
    /// NOT NULL, and (PostgreSQL 18) validated.
    pub not_null: bool,
    /// Its default expression (`nextval('public.orders_id_seq'::regclass)`).
    pub default: Option<String>,
    /// Its generation expression and kind (`stored` or `virtual`).
    pub generated: Option<String>,
    /// An identity column: `always` or `by default`.
    pub identity: Option<String>,
    /// A collation other than its type's, with its schema.
    pub collation: Option<String>,
}

/// A table's constraint (its NOT NULL ones aside).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConstraintFacts {
    /// Its name.
    pub name: String,
    /// `check`, `foreign key`, `primary key`, `unique`, `exclusion` or `trigger`.
    pub kind: String,
    /// As `pg_get_constraintdef` prints it.
    pub definition: String,
    /// `convalidated`: the rows that were there when it was added were checked.
    pub validated: bool,
    /// It is checked: not `NOT ENFORCED` (PostgreSQL 18), and every trigger that checks it (a
    /// foreign key's) fires in ordinary sessions.
    pub enforced: bool,
    /// `DEFERRABLE`: a transaction may check it at its commit.
    pub deferrable: bool,
    /// `INITIALLY DEFERRED`: it is checked at commit unless a transaction asks otherwise.
    pub deferred: bool,
}

/// A table's trigger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerFacts {
    /// Its name.
    pub name: String,
    /// `pg_trigger.tgenabled`: `O` (enabled), `A` (always), `R` (replica only), `D` (disabled).
    pub enabled: String,
    /// As `pg_get_triggerdef` prints it: when it fires and the function it runs.
    pub definition: String,
    /// The sha256 of the function it runs: its language, body (`prosrc`, `probin`), `SECURITY
    /// DEFINER` and `SET` options. A replaced body under the same name shows here.
    pub function_sha256: String,
    /// The partitions whose copy of it fires otherwise than the table's (`ALTER TABLE
    /// <partition> DISABLE TRIGGER`), with their `tgenabled`; usually none.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub partitions: BTreeMap<QualifiedName, String>,
}

/// A table's rewrite rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleFacts {
    /// Its name.
    pub name: String,
    /// `pg_rewrite.ev_enabled`, as `tgenabled`.
    pub enabled: String,
    /// As `pg_get_ruledef` prints it.
    pub definition: String,
}

/// A sequence's settings, as `pg_sequence` holds them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SequenceFacts {
    /// `smallint`, `integer` or `bigint`.
    #[serde(rename = "type")]
    pub data_type: String,
    /// `MINVALUE`.
    pub min: i64,
    /// `MAXVALUE`.
    pub max: i64,
    /// `INCREMENT BY`: negative for a descending sequence.
    pub increment: i64,
    /// `CYCLE`: past its last value it starts again from its first, instead of failing.
    pub cycle: bool,
}

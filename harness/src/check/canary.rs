//! `canary`: a row the source holds on purpose, with values only its owners know, comes back
//! exactly.
//!
//! ```toml
//! [[checks.canary]]
//! table = "public.settings"
//! row = { key = "pgdrill-canary" }            # the columns that pick it: exactly one row
//! expect = { value = "7f3a9c 2026-11-01" }    # each column's value, as text, exactly
//! ```
//!
//! Values are read as text with the fingerprints' pinned settings ([`crate::fingerprint::SETTINGS`]:
//! ISO dates in UTC, every float digit, hex bytea), so a timestamp is written
//! `2026-11-01 09:00:00+00`. No row, two rows, or one value that differs fails; a table that is
//! a view now fails.

use std::time::Instant;

use serde::Deserialize;

use super::{CheckContext, CheckError, CheckResult, Kind, OrCheckError, ResolveContext};
use crate::field::FieldError;
use crate::fingerprint::{self, FingerprintError};
use crate::outcome::CheckKind;
use crate::pg::{QualifiedName, quote_ident};

crate::outcome::findings! {
    /// What `canary` finds.
    pub(crate) enum Found for Canary {
        Intact = Pass "canary.intact"
            "The canary row is here, once, with exactly the values `expect` names."
            "Nothing.",
        Missing = Fail "canary.missing"
            "No row of the table matches the canary's `row`: the restore lost it."
            "Check the source still holds the canary, and that the backup is of the database it is in.",
        SeveralRows = Fail "canary.several-rows"
            "More than one row matches the canary's `row`, so it does not pick one row."
            "Pick the canary by a key that is unique (`row = { id = ... }`).",
        Changed = Fail "canary.changed"
            "The canary row is here with other values than `expect` names: the data changed."
            "Compare the values in the message with the source's canary row.",
        Unreadable = Fail "canary.unreadable"
            "The canary's table or a column it names is missing, or is not a table."
            "Check the table and columns the canary names, or why the restore lost them.",
    }
}

pub(crate) const KIND: CheckKind = CheckKind::Canary;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "CanaryCheck")]
pub(crate) struct Config {
    /// The table holding the canary row (`schema.table`).
    pub table: String,
    /// Column to value: the columns that pick the canary row.
    pub row: std::collections::BTreeMap<String, String>,
    /// Column to value: what each must read, as text.
    pub expect: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub(crate) struct Spec {
    pub table: QualifiedName,
    pub row: Vec<(String, String)>,
    pub expect: Vec<(String, String)>,
}

impl Kind for Spec {
    const KIND: CheckKind = KIND;
    type Config = Config;

    fn resolve(config: Config, _ctx: &ResolveContext) -> Result<Self, FieldError> {
        let table = QualifiedName::parse(&config.table).map_err(FieldError::unplaced)?;
        if config.row.is_empty() || config.expect.is_empty() {
            return Err(FieldError::unplaced(
                "a canary needs `row` (the columns that pick it) and `expect` (the values it must hold)",
            ));
        }
        Ok(Spec { table, row: config.row.into_iter().collect(), expect: config.expect.into_iter().collect() })
    }

    fn label(&self) -> String {
        let picked: Vec<String> = self.row.iter().map(|(k, v)| format!("{k} = {v}")).collect();
        format!("{} ({})", self.table, picked.join(", "))
    }

    async fn run(&self, ctx: &CheckContext<'_>) -> Result<Vec<CheckResult>, CheckError> {
        let started = Instant::now();
        let mut tx = fingerprint::begin(ctx.pool).await.map_err(|e| CheckError::new(e.to_string()))?;
        let expected: Vec<String> = self.expect.iter().map(|(k, v)| format!("{k} = {v}")).collect();
        let build = || CheckResult::build(KIND, self.label(), started).expected(expected.join(", "));
        let picks: Vec<String> = self.row.iter().map(|(k, _)| k.clone()).collect();
        let reads: Vec<String> = self.expect.iter().map(|(k, _)| k.clone()).collect();
        let all: Vec<String> = picks.iter().chain(&reads).cloned().collect();
        let described = match fingerprint::describe(&mut tx, &self.table, Some(&all), None).await {
            Ok(d) => d,
            Err(e @ FingerprintError::Sql { .. }) => return Err(CheckError::new(e.to_string())),
            Err(e) => return Ok(vec![build().actual("no canary").found(Found::Unreadable, e.to_string())]),
        };
        let conditions: Vec<String> = described.columns[..picks.len()]
            .iter()
            .enumerate()
            .map(|(i, c)| format!("t.{} = CAST(${} AS {})", quote_ident(&c.name), i + 1, c.type_name))
            .collect();
        let selected: Vec<String> = reads.iter().map(|c| format!("t.{}::pg_catalog.text", quote_ident(c))).collect();
        let sql = format!(
            "SELECT ARRAY[{}]::pg_catalog.text[] FROM {} AS t WHERE {} LIMIT 2",
            selected.join(", "),
            self.table.sql(),
            conditions.join(" AND ")
        );
        let values: Vec<&str> = self.row.iter().map(|(_, v)| v.as_str()).collect();
        let build = || build().evidence(super::bind_evidence(&sql, &values));
        let mut query = sqlx::query_scalar::<_, Vec<Option<String>>>(&sql);
        for value in &values {
            query = query.bind(*value);
        }
        let rows = query.fetch_all(&mut *tx).await.or_check("cannot read the canary row")?;
        let _ = tx.rollback().await;
        let result = match rows.as_slice() {
            [] => build()
                .actual("no such row")
                .found(Found::Missing, format!("the canary row of `{}` is missing", self.table)),
            [_, _, ..] => build()
                .actual("several rows")
                .found(Found::SeveralRows, format!("more than one row of `{}` matches the canary's `row`", self.table)),
            [found] => {
                let read: Vec<String> =
                    reads.iter().zip(found).map(|(k, v)| format!("{k} = {}", v.as_deref().unwrap_or("NULL"))).collect();
                let differs: Vec<String> = self
                    .expect
                    .iter()
                    .zip(found)
                    .filter(|((_, want), have)| have.as_deref() != Some(want.as_str()))
                    .map(|((k, want), have)| {
                        format!("`{k}` reads `{}`, not `{want}`", have.as_deref().unwrap_or("NULL"))
                    })
                    .collect();
                let ok = differs.is_empty();
                let message = if ok {
                    format!("the canary row of `{}` came back exactly", self.table)
                } else {
                    format!("the canary row of `{}` changed: {}", self.table, differs.join("; "))
                };
                build().actual(read.join(", ")).found(if ok { Found::Intact } else { Found::Changed }, message)
            }
        };
        Ok(vec![result])
    }
}

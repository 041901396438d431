//! `triggers`: each named table has exactly these triggers, each firing in the application's
//! sessions. Triggers do work the application counts on without calling it: an audit trail
//! written on every change (supa_audit's `audit_i_u_d`), a refusal of UPDATE and DELETE, a
//! `updated_at` kept current, a search vector kept in step. A backup that lost one restores a
//! database that looks whole and quietly stops doing that work; one that gained one runs code
//! on every write that the application never shipped.
//!
//! ```toml
//! [checks.triggers]
//! "public.invoice" = ["audit_i_u_d"]   # exactly these, each enabled
//! "public.ledger" = []                  # no trigger at all
//! ```
//!
//! Internal triggers (those of foreign keys) are not counted. A trigger is enabled when it fires
//! in ordinary sessions (`ENABLE`, `ENABLE ALWAYS`); one that fires only in replica sessions
//! (`ENABLE REPLICA`) or never (`DISABLE`) fails like a missing one. And one enabled the
//! ordinary way fails when the backup made the application's sessions replicas (`ALTER
//! DATABASE/ROLE ... SET session_replication_role = replica`): there it does not fire.

use std::collections::BTreeMap;
use std::time::Instant;

use super::{CheckContext, CheckError, CheckResult, Kind, OrCheckError, ResolveContext, bind_evidence};
use crate::check::relation::{self, trigger_problem};
use crate::field::FieldError;
use crate::outcome::CheckKind;
use crate::pg::{QualifiedName, describe_sql_error};

crate::outcome::findings! {
    /// What `triggers` finds.
    pub(crate) enum Found for Triggers {
        Kept = Pass "triggers.kept"
            "The table keeps exactly the triggers the scenario names, each enabled."
            "Nothing.",
        Differ = Fail "triggers.differ"
            "A trigger the scenario names is missing or disabled (or fires only on replicas), or the table has one it does not name."
            "Restore or enable the trigger in the source, or list the one the scenario does not name.",
        TableMissing = Fail "triggers.table-missing"
            "The table does not exist in the restored database."
            "Check the name and its schema, or why the restore did not create it.",
        CouldNotRead = Error "triggers.could-not-read"
            "pgdrill could not read the table or its triggers from the catalog."
            "Read the database's answer in the message.",
    }
}

pub(crate) const KIND: CheckKind = CheckKind::Triggers;

const SQL: &str = "SELECT t.tgname::text, t.tgenabled::text, pg_catalog.pg_get_triggerdef(t.oid) \
     FROM pg_catalog.pg_trigger t JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) t.tgrelid \
     JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace \
     WHERE n.nspname OPERATOR(pg_catalog.=) $1 AND c.relname OPERATOR(pg_catalog.=) $2 AND NOT t.tgisinternal ORDER BY 1";

const REPLICA_EVIDENCE: &str = "SELECT ... FROM pg_db_role_setting WHERE a setting of this database or a role is session_replication_role = replica";

/// Table to the names of its triggers.
pub(crate) type Config = BTreeMap<String, Vec<String>>;

#[derive(Debug, Clone)]
pub(crate) struct Spec {
    pub tables: Vec<(QualifiedName, Vec<String>)>,
}

impl Kind for Spec {
    const KIND: CheckKind = KIND;
    type Config = Config;

    fn resolve(config: Config, _ctx: &ResolveContext) -> Result<Self, FieldError> {
        if config.is_empty() {
            return Err(FieldError::unplaced("`[checks.triggers]` lists no table"));
        }
        let tables = config
            .into_iter()
            .map(|(table, mut names)| {
                let table = QualifiedName::parse(&table).map_err(FieldError::unplaced)?;
                names.sort();
                names.dedup();
                Ok((table, names))
            })
            .collect::<Result<_, FieldError>>()?;
        Ok(Spec { tables })
    }

    fn label(&self) -> String {
        let names: Vec<String> = self.tables.iter().map(|(t, _)| t.to_string()).collect();
        names.join(", ")
    }

    async fn run(&self, ctx: &CheckContext<'_>) -> Result<Vec<CheckResult>, CheckError> {
        let replicas = relation::replica_sessions(ctx.pool)
            .await
            .or_check("could not read the database's and roles' settings")
            .map_err(|e| e.evidence(REPLICA_EVIDENCE))?;
        let mut results = Vec::new();
        for (table, names) in &self.tables {
            results.push(one(ctx, table, names, &replicas).await);
        }
        Ok(results)
    }
}

async fn one(ctx: &CheckContext<'_>, table: &QualifiedName, names: &[String], replicas: &[String]) -> CheckResult {
    let started = Instant::now();
    let schema = table.schema_or_public();
    let expected =
        if names.is_empty() { "no trigger".to_owned() } else { format!("{}, each enabled", names.join(", ")) };
    let result = CheckResult::build(KIND, table.to_string(), started)
        .expected(expected)
        .evidence(format!("{}; {REPLICA_EVIDENCE}", bind_evidence(SQL, &[schema, &table.name])));
    match relation::kind(ctx.pool, table).await {
        Ok(Some(_)) => {}
        Ok(None) => {
            return result.actual("no such table").found(Found::TableMissing, format!("`{table}` does not exist"));
        }
        Err(err) => {
            return result
                .found(Found::CouldNotRead, format!("could not look up `{table}`: {}", describe_sql_error(&err)));
        }
    }
    let found: Vec<(String, String, String)> =
        match sqlx::query_as(SQL).bind(schema).bind(&table.name).fetch_all(ctx.pool).await {
            Ok(rows) => rows,
            Err(err) => {
                return result.found(
                    Found::CouldNotRead,
                    format!("could not list triggers of `{table}`: {}", describe_sql_error(&err)),
                );
            }
        };
    let mut problems = judge(names, &found);
    problems.extend(silenced(names, &found, replicas));
    let actual = if found.is_empty() {
        "no trigger".to_owned()
    } else {
        found.iter().map(|(name, enabled, _)| format!("{name} ({enabled})")).collect::<Vec<_>>().join(", ")
    };
    if problems.is_empty() {
        let message = if names.is_empty() {
            format!("`{table}` has no trigger, as expected")
        } else {
            format!("`{table}` keeps its triggers {}, each enabled", names.join(", "))
        };
        result.actual(actual).found(Found::Kept, message)
    } else {
        result.actual(actual).found(Found::Differ, format!("`{table}`: {}", problems.join("; ")))
    }
}

/// The listed triggers enabled the ordinary way (`O`) that sessions the backup made replicas
/// (`replicas`) do not fire.
fn silenced(names: &[String], found: &[(String, String, String)], replicas: &[String]) -> Option<String> {
    let ordinary: Vec<&str> =
        found.iter().filter(|(n, e, _)| e == "O" && names.contains(n)).map(|(n, _, _)| n.as_str()).collect();
    if ordinary.is_empty() || replicas.is_empty() {
        return None;
    }
    Some(format!(
        "{} do(es) not fire in {}: session_replication_role is replica there",
        ordinary.join(", "),
        replicas.join(" nor in ")
    ))
}

/// What is wrong with the triggers `found` (name, `tgenabled`, definition) against `names`.
fn judge(names: &[String], found: &[(String, String, String)]) -> Vec<String> {
    let mut problems = Vec::new();
    for name in names {
        let enabled = found.iter().find(|(n, _, _)| n == name).map(|(_, e, _)| e.as_str());
        problems.extend(trigger_problem(name, enabled));
    }
    for (name, _, definition) in found {
        if !names.contains(name) {
            problems.push(format!("has a trigger the scenario does not list: {definition}"));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(rows: &[(&str, &str)]) -> Vec<(String, String, String)> {
        rows.iter().map(|(n, e)| (n.to_string(), e.to_string(), format!("CREATE TRIGGER {n} ..."))).collect()
    }

    #[test]
    fn exactly_the_listed_triggers_each_enabled() {
        let names = vec!["audit".to_owned(), "touch".to_owned()];
        assert!(judge(&names, &found(&[("audit", "O"), ("touch", "A")])).is_empty());
        assert_eq!(judge(&names, &found(&[("touch", "O")])), ["audit is missing"]);
        assert_eq!(judge(&names, &found(&[("audit", "D"), ("touch", "O")])), ["audit is disabled"]);
        assert!(judge(&names, &found(&[("audit", "R"), ("touch", "O")]))[0].contains("only in replica sessions"));
        assert_eq!(
            judge(&names, &found(&[("audit", "O"), ("touch", "O"), ("sneak", "O")])),
            ["has a trigger the scenario does not list: CREATE TRIGGER sneak ..."]
        );
        assert!(judge(&[], &[]).is_empty());
        assert_eq!(judge(&[], &found(&[("sneak", "O")])).len(), 1);
    }

    #[test]
    fn a_table_list_is_required_and_names_are_parsed() {
        let ctx = ResolveContext { base: ".".into(), baseline: None };
        let empty = Spec::resolve(Config::new(), &ctx).unwrap_err();
        assert_eq!(empty.message, "`[checks.triggers]` lists no table");
        let config = [("public.invoice".to_owned(), vec!["b".to_owned(), "a".to_owned(), "a".to_owned()])].into();
        let spec = Spec::resolve(config, &ctx).unwrap();
        assert_eq!(spec.tables[0].0.to_string(), "public.invoice");
        assert_eq!(spec.tables[0].1, ["a", "b"]);
    }

    #[test]
    fn an_ordinary_trigger_does_not_fire_in_sessions_the_backup_made_replicas() {
        let names = vec!["audit".to_owned(), "always".to_owned()];
        let found = found(&[("audit", "O"), ("always", "A")]);
        assert_eq!(silenced(&names, &found, &[]), None);
        let replicas =
            ["every session of the database (ALTER DATABASE ... SET session_replication_role = replica)".to_owned()];
        assert_eq!(
            silenced(&names, &found, &replicas).as_deref(),
            Some(
                "audit do(es) not fire in every session of the database (ALTER DATABASE ... SET session_replication_role = replica): session_replication_role is replica there"
            )
        );
    }
}

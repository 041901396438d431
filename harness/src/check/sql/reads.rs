//! What a `sql` check's statement runs through when it runs as a role, read as the other probes
//! of a role read their code: the tables its plan reads and writes (`EXPLAIN (VERBOSE, FORMAT
//! JSON)` in the role's own session, inside the check's transaction, so views are expanded and
//! names resolved as for the role), their policies, triggers and rules, and the backup's
//! functions, operators, casts and views the statement names, to the end of the call graph
//! ([`loophole::graph`]). What that code reads about the session and the drill cannot try (the
//! client's address, when the server started, what else is connected, a setting compared by
//! order, a built-in off the allow-list) makes the answer proven only for sessions like the
//! drill's: the check fails, naming it, unless the scenario trusts it (`trusted = [...]`).
//!
//! A statement EXPLAIN does not take (DDL, `CALL`, `DO`) has no plan to read: its evidence says
//! its code was not read.

use std::collections::BTreeSet;

use serde_json::Value;

use super::Spec;
use crate::check::CheckContext;
use crate::check::login::{AppSession, Failure};
use crate::check::loophole::{self, Attempt, Trusted, Untried, graph::For};

/// The first keywords of the statements EXPLAIN takes (`""`: one that starts with a
/// parenthesis, `(SELECT ...)`).
const EXPLAINED: [&str; 9] = ["SELECT", "INSERT", "UPDATE", "DELETE", "MERGE", "WITH", "VALUES", "TABLE", ""];

/// The tables a statement's plan touches, and what it does to each.
pub(super) type Touched = Vec<(String, For)>;

/// The tables the plan of `statement` touches in `session` (inside the check's transaction, its
/// settings applied), or `None` when EXPLAIN does not take it. A savepoint keeps a refused
/// EXPLAIN from ending the transaction.
pub(super) async fn plan(session: &AppSession, statement: &str) -> Result<Option<Touched>, Failure> {
    session.run("SAVEPOINT pgdrill_plan").await?;
    match session.run(&format!("EXPLAIN (VERBOSE, FORMAT JSON) {statement}")).await {
        Ok(answer) => {
            session.run("RELEASE SAVEPOINT pgdrill_plan").await?;
            let text = answer.first().unwrap_or_default();
            Ok(Some(touched(&serde_json::from_str(text).unwrap_or(Value::Null))))
        }
        Err(failure) => {
            session.run("ROLLBACK TO SAVEPOINT pgdrill_plan").await?;
            // A statement EXPLAIN takes has a plan: one that fails only under EXPLAIN (code that
            // reads `current_query()`) is an error, never a pass with its code unread.
            let keyword = super::first_keyword(statement).unwrap_or_default();
            match EXPLAINED.contains(&keyword.as_str()) {
                true => Err(failure),
                false => Ok(None),
            }
        }
    }
}

/// Every relation a JSON plan names, with what the plan does to it: a `ModifyTable` node's
/// operation for its target (an INSERT, an UPDATE, a DELETE; a MERGE may do each), a read for
/// every other (a scan, a join's side, a subplan's, a CTE's).
fn touched(plan: &Value) -> Touched {
    let mut found: BTreeSet<(String, u8)> = BTreeSet::new();
    let mut pending = vec![plan];
    while let Some(node) = pending.pop() {
        match node {
            Value::Array(items) => pending.extend(items),
            Value::Object(fields) => {
                if let (Some(Value::String(schema)), Some(Value::String(name))) =
                    (fields.get("Schema"), fields.get("Relation Name"))
                {
                    let table = format!("{}.{}", crate::pg::quote_ident(schema), crate::pg::quote_ident(name));
                    let modify = fields.get("Node Type").and_then(Value::as_str) == Some("ModifyTable");
                    let ops: &[u8] = match (modify, fields.get("Operation").and_then(Value::as_str)) {
                        (true, Some("Insert")) => &[1],
                        (true, Some("Update")) => &[3],
                        (true, Some("Delete")) => &[4],
                        (true, _) => &[1, 2],
                        (false, _) => &[0],
                    };
                    found.extend(ops.iter().map(|op| (table.clone(), *op)));
                }
                pending.extend(fields.values());
            }
            _ => {}
        }
    }
    let what = |op: u8| match op {
        0 => For::Read,
        1 => For::Insert,
        3 => For::Update,
        4 => For::Delete,
        _ => For::Change,
    };
    found.into_iter().map(|(table, op)| (table, what(op))).collect()
}

/// What the code a statement runs through reads that the drill cannot try (but what `trusted`
/// covers), the first setting the session may set itself that changed the answer, the trusted
/// entries that matched, and lines for the evidence.
pub(super) struct Judged {
    pub untried: Vec<Untried>,
    pub opened: Option<(Attempt, String)>,
    pub trusted: Vec<Trusted>,
    pub evidence: String,
}

/// Why the code could not be judged.
#[derive(Debug, thiserror::Error)]
pub(super) enum JudgeError {
    /// Reading the code from the catalog failed.
    #[error("cannot read the code the statement runs through")]
    Catalog(#[source] sqlx::Error),
    /// The session failed while a setting was tried.
    #[error("the statement failed with a setting tried: {0}")]
    Session(Failure),
}

impl From<Failure> for JudgeError {
    fn from(failure: Failure) -> Self {
        JudgeError::Session(failure)
    }
}

/// Reads the code `spec`'s statement runs through as `role` (the tables its plan `touched`, or
/// nothing when there was no plan) in pgdrill's own session and judges what it reads about the
/// session; then, in the role's `session` (the statement ran after the savepoint
/// `pgdrill_query`, whose state each try starts from), sets each setting that code reads and the
/// role may set itself (but the check's own `settings`) to each value to try, runs the
/// statement again, and stops at the first whose answer is not `answer`.
pub(super) async fn judge(
    ctx: &CheckContext<'_>,
    spec: &Spec,
    role: &str,
    session: &AppSession,
    touched: Option<&Touched>,
    answer: &[Vec<Option<String>>],
) -> Result<Judged, JudgeError> {
    let Some(touched) = touched else {
        return Ok(Judged {
            untried: Vec::new(),
            opened: None,
            trusted: Vec::new(),
            evidence: "-- its code was not read: EXPLAIN does not take the statement (DDL, CALL, DO), so no plan names what it runs through\n".into(),
        });
    };
    let (gathered, contexts) = read(ctx, &spec.query, touched).await.map_err(JudgeError::Catalog)?;
    let given: Vec<&str> = spec.settings.0.keys().map(String::as_str).collect();
    let own_login = ctx.logins().as_the_application(ctx.pool, role).await;
    let (untried, mut trusted) = loophole::untried(&gathered, &contexts, own_login, &spec.trusted, &given);
    let levers = loophole::levers(&gathered.readers, &given, &contexts);
    let (attempts, trusted_levers) = loophole::attempts(&levers, &spec.trusted);
    trusted.extend(trusted_levers.into_iter().filter(|t| !trusted.contains(t)).collect::<Vec<_>>());
    let mut opened = None;
    for attempt in attempts.iter() {
        session.run("ROLLBACK TO SAVEPOINT pgdrill_query").await?;
        session.run(&crate::check::login::set_local_sql(&attempt.setting, &attempt.value)).await?;
        // An error is no answer the application gets instead: the door stayed shut.
        if let Ok(again) = session.run(&spec.query).await
            && again.rows != answer
        {
            opened = Some((attempt.clone(), spec.show_rows(&again.rows)));
            break;
        }
    }
    let tables: BTreeSet<&str> = touched.iter().map(|(t, _)| t.as_str()).collect();
    let readers: Vec<&str> = gathered.readers.iter().map(|r| r.name.as_str()).collect();
    let tried: Vec<String> = levers.iter().map(|l| l.setting.clone()).collect();
    let evidence = format!(
        "-- its code, read: the plan touches {}; the code it runs through: {}; settings the role may set that it reads, tried: {}\n",
        if tables.is_empty() { "no table".to_owned() } else { tables.into_iter().collect::<Vec<_>>().join(", ") },
        if readers.is_empty() { "none".to_owned() } else { readers.join("; ") },
        if tried.is_empty() { "none".to_owned() } else { tried.join(", ") },
    );
    Ok(Judged { untried, opened, trusted, evidence })
}

/// The code the statement runs through, and the built-in settings' contexts.
async fn read(
    ctx: &CheckContext<'_>,
    statement: &str,
    touched: &Touched,
) -> sqlx::Result<(loophole::graph::Gathered, loophole::Contexts)> {
    let mut conn = ctx.pool.acquire().await?;
    let gathered = loophole::graph::gather_statement(&mut conn, statement, touched).await?;
    let contexts = loophole::contexts(&mut conn).await?;
    Ok((gathered, contexts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_names_what_it_reads_and_what_it_writes() {
        let plan: Value = serde_json::from_str(
            r#"[{"Plan": {"Node Type": "ModifyTable", "Operation": "Delete", "Schema": "public", "Relation Name": "notes",
                "Plans": [{"Node Type": "Hash Join", "Plans": [
                    {"Node Type": "Seq Scan", "Schema": "public", "Relation Name": "notes"},
                    {"Node Type": "Index Scan", "Schema": "Odd Schema", "Relation Name": "tenants"}]}]}}]"#,
        )
        .unwrap();
        let found = touched(&plan);
        assert_eq!(
            found,
            [
                ("\"Odd Schema\".\"tenants\"".to_owned(), For::Read),
                ("\"public\".\"notes\"".to_owned(), For::Read),
                ("\"public\".\"notes\"".to_owned(), For::Delete)
            ]
        );
        let merge: Value = serde_json::from_str(
            r#"{"Node Type": "ModifyTable", "Operation": "Merge", "Schema": "public", "Relation Name": "t"}"#,
        )
        .unwrap();
        assert_eq!(
            touched(&merge),
            [("\"public\".\"t\"".to_owned(), For::Insert), ("\"public\".\"t\"".to_owned(), For::Change)]
        );
        assert!(touched(&Value::Null).is_empty());
    }
}

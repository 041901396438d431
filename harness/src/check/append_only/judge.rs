//! How `append_only` judges what its probes did: a refusal on purpose (privilege, trigger, rule,
//! policy) is a refusal, anything else proves nothing or shows the table mutable.

use super::Found;
use crate::check::CheckResult;

/// What the role is tried at: each would change or erase rows an audit trail keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Operation {
    Update,
    Delete,
    Truncate,
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Operation::Update => "UPDATE",
            Operation::Delete => "DELETE",
            Operation::Truncate => "TRUNCATE",
        })
    }
}

/// What an UPDATE, DELETE or TRUNCATE probe did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Attempt {
    /// The server answered with an error: its SQLSTATE, message and context (which names a
    /// PL/pgSQL `RAISE`); [`judge`] decides whether it is a refusal.
    Refused { code: String, message: String, context: Option<String> },
    /// It ran: `rows` as its command tag says, `changed` the rows it changed in the table itself
    /// by the session's statistics (`None` for a TRUNCATE), `aimed` whether the table held a row
    /// it could have changed.
    Done { rows: u64, changed: Option<u64>, aimed: bool },
    /// It did not reach the server's decision (the connection failed).
    Broken(String),
}

/// How a probe is judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Judged {
    /// The audit trail held: pass.
    Refused,
    /// The role changed or erased rows: fail.
    Mutable,
    /// The probe proves neither: error.
    Unproven,
}

/// A probe's judgement, what it found, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Judgement {
    pub verdict: Judged,
    pub actual: String,
    pub why: String,
}

/// Judges a probe of `operation` (`granted`: whether the role holds the table privilege for it).
/// Only an error that refuses on purpose ([`crate::sqlstate`]: a privilege, a trigger's or
/// function's `RAISE`) is a refusal; a timeout, a deadlock, an internal error proves nothing. An
/// UPDATE or DELETE that changed no row of the table (by the session's statistics) is one only
/// when the table had a row it could have changed (a rule `DO INSTEAD NOTHING`, a policy hiding
/// the row, a trigger returning NULL kept it); a TRUNCATE that runs always erased the table.
pub(crate) fn judge(operation: Operation, granted: bool, attempt: &Attempt) -> Judgement {
    use crate::sqlstate::{Class, Probe, classify};
    let judgement = |verdict, actual: String, why: String| Judgement { verdict, actual, why };
    match attempt {
        Attempt::Refused { code, message, context } => {
            let class = classify(Probe::Write, code, context.as_deref());
            let by = match class {
                Class::Privilege if !granted => "refused by privilege".to_owned(),
                Class::Privilege => "refused".to_owned(),
                Class::Raised => "refused by a trigger or rule".to_owned(),
                _ => {
                    let text = format!("{}: {message} ({code})", class.describe());
                    return judgement(
                        Judged::Unproven,
                        text.clone(),
                        format!("{text}, so it proves nothing about the audit trail"),
                    );
                }
            };
            if class == Class::Privilege && !granted {
                return judgement(Judged::Refused, by, format!("{message} ({code})"));
            }
            judgement(Judged::Refused, format!("{by}: {message} ({code})"), format!("{by}: {message} ({code})"))
        }
        Attempt::Done { .. } if operation == Operation::Truncate => {
            judgement(Judged::Mutable, "TRUNCATE succeeded".into(), String::new())
        }
        Attempt::Done { changed: Some(0), aimed: true, rows } => {
            let tag = if *rows > 0 { format!(" ({rows} rows reported elsewhere)") } else { String::new() };
            judgement(
                Judged::Refused,
                format!("0 rows changed in the table{tag}"),
                format!("0 rows changed in the table{tag} (a rule, policy or trigger kept them)"),
            )
        }
        Attempt::Done { changed: Some(0), aimed: false, .. } => judgement(
            Judged::Unproven,
            "0 rows changed".into(),
            "0 rows changed, and the table had no row to show that it would be refused".into(),
        ),
        Attempt::Done { changed: Some(n), .. } => {
            let plural = if *n == 1 { "" } else { "s" };
            judgement(Judged::Mutable, format!("{operation} changed {n} row{plural}"), String::new())
        }
        Attempt::Done { rows, changed: None, .. } => {
            let plural = if *rows == 1 { "" } else { "s" };
            judgement(Judged::Mutable, format!("{operation} succeeded ({rows} row{plural})"), String::new())
        }
        Attempt::Broken(why) => judgement(
            Judged::Unproven,
            format!("failed: {why}"),
            format!("failed for another reason than a refusal: {why}"),
        ),
    }
}

/// Judges the INSERT probe: it must run, add at least one row (a rule `DO INSTEAD NOTHING` or an
/// `INSERT ... SELECT` of nothing appends nothing), and the rows must reach the table itself
/// (`reached`: rows the transaction inserted into it or its partitions; a rule `DO INSTEAD` can
/// send them elsewhere). `Err` holds the server's refusal.
pub(crate) fn judge_insert(inserted: Result<u64, String>, reached: i64) -> (bool, String) {
    match inserted {
        Ok(0) => (false, "0 rows inserted".into()),
        Ok(_) if reached <= 0 => (
            false,
            "the INSERT reported rows, but none reached the table (a rule or trigger sent them elsewhere)".into(),
        ),
        Ok(1) => (true, "inserted 1 row".into()),
        Ok(n) => (true, format!("inserted {n} rows")),
        Err(why) => (false, format!("refused: {why}")),
    }
}

impl super::Spec {
    /// The result of an UPDATE, DELETE or TRUNCATE attempt.
    pub(super) fn judged(
        &self,
        result: crate::check::CheckResultBuilder,
        operation: Operation,
        granted: bool,
        attempt: &Attempt,
    ) -> CheckResult {
        let judged = judge(operation, granted, attempt);
        let result = result.actual(judged.actual);
        let message = match judged.verdict {
            Judged::Refused => format!("`{}` may not {operation} `{}`: {}", self.role, self.table, judged.why),
            Judged::Mutable => format!(
                "`{}` can {operation} `{}`{}: the audit trail is not append-only",
                self.role,
                self.table,
                if granted { " (granted, and nothing refuses it)" } else { "" }
            ),
            Judged::Unproven => format!("{operation} on `{}`: {}", self.table, judged.why),
        };
        match judged.verdict {
            Judged::Refused => result.found(Found::Refused, message),
            Judged::Mutable => result.found(Found::Mutable, message),
            Judged::Unproven => result.found(Found::Unproven, message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(code: &str) -> Attempt {
        Attempt::Refused { code: code.into(), message: "no".into(), context: None }
    }

    fn raised(code: &str) -> Attempt {
        Attempt::Refused {
            code: code.into(),
            message: "no".into(),
            context: Some("PL/pgSQL function audit_guard() line 3 at RAISE".into()),
        }
    }

    #[test]
    fn only_a_refusal_on_purpose_is_a_refusal() {
        for granted in [true, false] {
            for attempt in [refused("42501"), refused("P0001"), raised("P0001"), raised("0A000"), raised("23514")] {
                for op in [Operation::Update, Operation::Delete, Operation::Truncate] {
                    assert_eq!(judge(op, granted, &attempt).verdict, Judged::Refused, "{op} {attempt:?} {granted}");
                }
            }
            // A timeout, a deadlock, a lock, an internal error, resources, a constraint, an
            // unsupported feature, a read-only transaction: could not prove.
            for code in ["57014", "40P01", "40001", "55P03", "XX000", "53100", "23503", "0A000", "25006", "08006"] {
                let judged = judge(Operation::Delete, granted, &refused(code));
                assert_eq!(judged.verdict, Judged::Unproven, "{code} {granted}");
                assert!(judged.why.contains("proves nothing"), "{}", judged.why);
            }
            assert_eq!(judge(Operation::Update, granted, &raised("57014")).verdict, Judged::Unproven);
        }
        assert_eq!(judge(Operation::Delete, false, &refused("42501")).actual, "refused by privilege");
        assert_eq!(
            judge(Operation::Delete, true, &refused("P0001")).actual,
            "refused by a trigger or rule: no (P0001)"
        );
    }

    #[test]
    fn what_a_statement_changed_in_the_table_decides() {
        let done = |rows, changed, aimed| Attempt::Done { rows, changed, aimed };
        let judged = judge(Operation::Update, true, &done(0, Some(0), true));
        assert_eq!((judged.verdict, judged.actual.as_str()), (Judged::Refused, "0 rows changed in the table"));
        assert_eq!(judge(Operation::Delete, false, &done(0, Some(0), true)).verdict, Judged::Refused);
        // A rule that writes elsewhere reports rows; the table kept its own.
        assert_eq!(judge(Operation::Delete, true, &done(3, Some(0), true)).verdict, Judged::Refused);
        // A trigger can report nothing and still have changed the row.
        assert_eq!(judge(Operation::Update, true, &done(0, Some(1), true)).verdict, Judged::Mutable);
        assert_eq!(judge(Operation::Delete, true, &done(1, Some(1), true)).actual, "DELETE changed 1 row");
        assert_eq!(judge(Operation::Update, true, &done(0, Some(0), false)).verdict, Judged::Unproven);
        // A TRUNCATE that runs erased the table, whatever it reports.
        assert_eq!(judge(Operation::Truncate, true, &done(0, None, true)).verdict, Judged::Mutable);
        assert_eq!(judge(Operation::Update, true, &Attempt::Broken("gone".into())).verdict, Judged::Unproven);
    }

    #[test]
    fn an_insert_must_add_a_row() {
        assert_eq!(judge_insert(Ok(1), 1), (true, "inserted 1 row".into()));
        assert!(judge_insert(Ok(3), 3).0);
        assert_eq!(judge_insert(Ok(0), 0), (false, "0 rows inserted".into()));
        assert!(!judge_insert(Err("permission denied".into()), 0).0);
        let (ok, why) = judge_insert(Ok(1), 0);
        assert!(!ok && why.contains("none reached the table"), "{why}");
    }
}

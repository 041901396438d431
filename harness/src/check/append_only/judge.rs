//! How `append_only` judges what its probes did: a refusal on purpose (privilege, trigger, rule,
//! policy) is a refusal, anything else proves nothing or shows the table mutable.

/// What the role is tried at: each would change or erase rows an audit trail keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Operation {
    Update,
    Delete,
    Truncate,
}

impl Operation {
    /// The statement, on the whole table `t` (an UPDATE sets `column` to itself).
    pub(super) fn statement(self, t: &str, column: &str) -> String {
        match self {
            Operation::Update => format!("UPDATE {t} SET {column} = {column}"),
            Operation::Delete => format!("DELETE FROM {t}"),
            Operation::Truncate => format!("TRUNCATE {t}"),
        }
    }
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
    /// It ran and affected `rows` rows; for 0 rows, whether the row aimed at reads the same
    /// afterwards (`None`: no row to compare, or not asked).
    Done { rows: u64, unchanged: Option<bool> },
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
/// UPDATE or DELETE that affects no row is one only when the row it aimed at reads the same
/// afterwards (a rule `DO INSTEAD NOTHING`, a policy hiding the row); a TRUNCATE that runs always
/// erased the table.
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
        Attempt::Done { rows: 0, unchanged: Some(true) } if operation != Operation::Truncate => judgement(
            Judged::Refused,
            "0 rows affected; row unchanged".into(),
            "0 rows affected; row unchanged (a rule or policy kept it)".into(),
        ),
        Attempt::Done { rows: 0, unchanged: None } if operation != Operation::Truncate => judgement(
            Judged::Unproven,
            "0 rows affected".into(),
            "0 rows affected, and no row to show that it would be refused".into(),
        ),
        Attempt::Done { rows: 0, unchanged: Some(false) } if operation != Operation::Truncate => {
            judgement(Judged::Mutable, "0 rows affected, but the row changed".into(), String::new())
        }
        Attempt::Done { .. } if operation == Operation::Truncate => {
            judgement(Judged::Mutable, "TRUNCATE succeeded".into(), String::new())
        }
        Attempt::Done { rows, .. } => {
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
    fn no_row_affected_counts_only_when_the_row_is_unchanged() {
        let kept = Attempt::Done { rows: 0, unchanged: Some(true) };
        let judged = judge(Operation::Update, true, &kept);
        assert_eq!((judged.verdict, judged.actual.as_str()), (Judged::Refused, "0 rows affected; row unchanged"));
        assert_eq!(judge(Operation::Delete, false, &kept).verdict, Judged::Refused);
        assert_eq!(
            judge(Operation::Delete, true, &Attempt::Done { rows: 0, unchanged: Some(false) }).verdict,
            Judged::Mutable
        );
        assert_eq!(
            judge(Operation::Update, true, &Attempt::Done { rows: 0, unchanged: None }).verdict,
            Judged::Unproven
        );
        assert_eq!(
            judge(Operation::Update, true, &Attempt::Done { rows: 1, unchanged: None }).verdict,
            Judged::Mutable
        );
        // A TRUNCATE that runs erased the table, whatever it reports.
        assert_eq!(
            judge(Operation::Truncate, true, &Attempt::Done { rows: 0, unchanged: None }).verdict,
            Judged::Mutable
        );
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

//! What an error from a probe proves: a refusal is a refusal, and an error is an error.
//!
//! `append_only` passes when the role's UPDATE, DELETE and TRUNCATE are refused, and
//! fail-closed `rls` when a read without a tenant is. Only what refuses on purpose proves
//! either: a privilege error (42501, which row-level security's `WITH CHECK` also raises), an
//! exception a trigger or a function raised (`RAISE`: SQLSTATE P0001 or any code, with a
//! PL/pgSQL `RAISE` in its context). For a read under row-level security, a policy that cannot
//! evaluate without its tenant also refuses: an unset setting (42704) or an empty one that does
//! not cast (a data exception, class 22). A timeout, a deadlock, a lock not granted, a lost
//! connection, an internal error, running out of memory or disk, a constraint that happened to
//! stop one row: none of those says the database refuses, so they prove nothing.

/// How an error from a probe is judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    /// Refused by privilege (42501).
    Privilege,
    /// Refused by an exception raised on purpose (a trigger's or a function's `RAISE`).
    Raised,
    /// A policy expression that cannot evaluate without its tenant (only for reads under
    /// row-level security).
    Policy,
    /// Anything else: the probe could not prove anything.
    Inconclusive,
}

/// Where a probe's error came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Probe {
    /// A write that must be refused (`append_only`).
    Write,
    /// A read that must return nothing or be refused (fail-closed `rls`).
    PolicyRead,
}

/// Classifies an error with SQLSTATE `code` and error context `context` (the `CONTEXT` lines,
/// where a PL/pgSQL `RAISE` shows as `... at RAISE`).
pub(crate) fn classify(probe: Probe, code: &str, context: Option<&str>) -> Class {
    let raised = context.is_some_and(|c| c.contains("at RAISE"));
    match code {
        "42501" => Class::Privilege,
        // What an operator did or the machine ran out of is never the database's answer, even
        // when a RAISE is somewhere on the stack.
        c if transient(c) => Class::Inconclusive,
        "P0001" => Class::Raised,
        _ if raised => Class::Raised,
        "42704" if probe == Probe::PolicyRead => Class::Policy,
        c if c.starts_with("22") && probe == Probe::PolicyRead => Class::Policy,
        _ => Class::Inconclusive,
    }
}

/// Classes of errors that say what happened to the session or the machine, not what the
/// database decides: timeouts and cancels (57014), operator intervention (57P..), deadlocks and
/// serialization (40...), locks not granted (55P03), resources (53...), program limits (54...),
/// system errors (58...), internal errors (XX...), connection errors (08...), configuration
/// files (F0...), and a transaction that is read-only or aborted (25...).
pub(crate) fn transient(code: &str) -> bool {
    ["57", "40", "53", "54", "58", "XX", "08", "F0", "25"].iter().any(|class| code.starts_with(class))
        || code == "55P03"
}

impl Class {
    pub(crate) fn refuses(self) -> bool {
        !matches!(self, Class::Inconclusive)
    }

    /// How the evidence names it.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Class::Privilege => "refused by privilege",
            Class::Raised => "refused by an exception a trigger or function raised",
            Class::Policy => "refused by a policy that cannot evaluate without a tenant",
            Class::Inconclusive => "failed for a reason that is not a refusal",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Class::*;
    use Probe::*;

    const RAISE: Option<&str> = Some("PL/pgSQL function forbid_change() line 3 at RAISE");

    #[test]
    fn writes_are_refused_only_on_purpose() {
        let table = [
            ("42501", None, Privilege),
            ("P0001", None, Raised),
            ("P0001", RAISE, Raised),
            // A trigger that raises with a code of its own.
            ("0A000", RAISE, Raised),
            ("23514", RAISE, Raised),
            // The same codes without a RAISE: a constraint or an unsupported feature.
            ("0A000", None, Inconclusive),
            ("23514", None, Inconclusive),
            ("23503", None, Inconclusive),
            // Timeouts, deadlocks, locks, resources, internal errors, read-only, lost connections.
            ("57014", None, Inconclusive),
            ("57014", RAISE, Inconclusive),
            ("40P01", None, Inconclusive),
            ("40001", None, Inconclusive),
            ("55P03", None, Inconclusive),
            ("53100", None, Inconclusive),
            ("53200", None, Inconclusive),
            ("54001", None, Inconclusive),
            ("XX000", None, Inconclusive),
            ("XX001", RAISE, Inconclusive),
            ("58030", None, Inconclusive),
            ("08006", None, Inconclusive),
            ("57P01", None, Inconclusive),
            ("25006", None, Inconclusive),
            ("25P02", None, Inconclusive),
            ("42P01", None, Inconclusive),
            ("42703", None, Inconclusive),
            // Only a read under a policy counts an unset tenant as a refusal.
            ("42704", None, Inconclusive),
            ("22P02", None, Inconclusive),
        ];
        for (code, context, want) in table {
            assert_eq!(classify(Write, code, context), want, "{code} {context:?}");
        }
    }

    #[test]
    fn a_policy_without_its_tenant_refuses_a_read() {
        assert_eq!(classify(PolicyRead, "42704", None), Policy);
        assert_eq!(classify(PolicyRead, "22P02", None), Policy);
        assert_eq!(classify(PolicyRead, "42501", None), Privilege);
        assert_eq!(classify(PolicyRead, "P0001", None), Raised);
        for code in ["57014", "40P01", "XX000", "53200", "08006", "55P03", "42P01"] {
            assert_eq!(classify(PolicyRead, code, None), Inconclusive, "{code}");
            assert!(!classify(PolicyRead, code, None).refuses());
        }
    }
}

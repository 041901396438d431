//! The ceiling's attributes and memberships: what each elevated one lets a role do, said in the
//! message that fails it, and what the scenario accepts for the role, with why.
//!
//! An accepted attribute or membership passes and is shown, with its reason, in the result's
//! expected and actual columns (the Markdown report's table), so an auditor reads what was
//! accepted and why next to what was found. An accepted one the role does not have fails: the
//! scenario states a design the restored role no longer matches (a migration role that lost
//! BYPASSRLS cannot do its work), and an acceptance nothing needs would let the attribute come
//! back unnoticed.

use std::time::Instant;

use super::{Attributes, Found, Spec, listed};
use crate::check::accept::Door;
use crate::check::{CheckContext, CheckResult, bind_evidence};
use crate::field::FieldError;
use crate::outcome::{CheckKind, Finding as _};
use crate::pg::{describe_sql_error, fold_ident};

/// The attributes the ceiling refuses unless accepted, in `pg_roles`' order.
pub(crate) const ATTRIBUTES: [&str; 5] = ["SUPERUSER", "CREATEROLE", "CREATEDB", "BYPASSRLS", "REPLICATION"];

/// The predefined roles a membership in fails the ceiling, and what each lets a member do.
pub(crate) const DANGEROUS_ROLES: [(&str, &str); 5] = [
    (
        "pg_read_server_files",
        "reads any file the server's operating-system user can read (COPY FROM a file, pg_read_file): its configuration, keys and every database's data files",
    ),
    (
        "pg_write_server_files",
        "writes any file the server's operating-system user can write (COPY TO a file): its configuration and data files included",
    ),
    (
        "pg_execute_server_program",
        "runs any program on the database server as the server's operating-system user (COPY ... PROGRAM)",
    ),
    (
        "pg_read_all_data",
        "reads every table, view and sequence of every database, as if granted SELECT on each and USAGE on every schema (row-level security still applies to it unless it is BYPASSRLS)",
    ),
    (
        "pg_write_all_data",
        "inserts, updates and deletes in every table, view and sequence of every database, as if granted INSERT, UPDATE and DELETE on each and USAGE on every schema (row-level security still applies to it unless it is BYPASSRLS)",
    ),
];

/// What `attribute` lets a role do, on a server of `version` (`server_version_num`).
pub(crate) fn attribute_meaning(attribute: &str, version: i32) -> &'static str {
    match attribute {
        "SUPERUSER" => {
            "it bypasses every permission check (row-level security included), and reads and writes the server's files and runs programs as the server's operating-system user (COPY ... PROGRAM, untrusted languages)"
        }
        "CREATEROLE" if version >= 160000 => {
            "it creates roles, and alters, drops and grants membership in every role it holds ADMIN OPTION on (each one it creates)"
        }
        "CREATEROLE" => {
            "it creates, alters and drops any role but a superuser and grants membership in any of them, to itself too (pg_execute_server_program included): one step from superuser (before PostgreSQL 16)"
        }
        "CREATEDB" => {
            "it creates databases, owning each with every privilege in it (it may copy any database marked as a template), and drops those it owns"
        }
        "BYPASSRLS" => {
            "it is exempt from every row-level security policy: it reads and writes every row of every table it has privileges on, whatever tenant the policies would confine it to"
        }
        "REPLICATION" => {
            "it may connect for replication where pg_hba.conf allows, to stream the whole cluster's WAL and take base backups (every row of every database) and to create replication slots that hold WAL on the server's disk"
        }
        _ => "an elevated attribute",
    }
}

/// One acceptance as the scenario writes it.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "RolesAccept")]
pub(crate) struct AcceptConfig {
    /// An attribute the ceiling otherwise fails: SUPERUSER, CREATEROLE, CREATEDB, BYPASSRLS or
    /// REPLICATION.
    pub attribute: Option<String>,
    /// A role whose membership the ceiling otherwise fails (a server-file or all-data role, or
    /// one with an elevated attribute).
    pub member_of: Option<String>,
    /// A `SECURITY DEFINER` function that hands the role a forbidden schema, or runs what its
    /// caller gives it with an elevated owner's powers, by design, as the check names it
    /// (`app_public.current_user_id()`), with `code`.
    pub through: Option<String>,
    /// The sha256 of that function's code as the check prints it: accepted for that code only,
    /// so a backup that rewrites the function fails again.
    pub code: Option<String>,
    /// Why the role has it, for the report (required).
    pub reason: String,
    /// The finding it answers, by its code (`roles.elevated-attribute`; see the findings
    /// reference): refused when `roles` gives no such finding, or one this entry cannot answer.
    #[serde(default)]
    pub finding: Option<String>,
}

/// What the scenario accepts for a role, resolved.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Accepted {
    /// Attribute (upper case) and why.
    pub attributes: Vec<(String, String)>,
    /// Role (as the server stores its name) and why.
    pub memberships: Vec<(String, String)>,
    /// Definer functions (as `regprocedure` prints them), the sha256 of their code, and why.
    pub doors: Vec<Door>,
}

impl Accepted {
    pub(crate) fn resolve(configs: Vec<AcceptConfig>) -> Result<Self, FieldError> {
        let mut accepted = Accepted::default();
        for config in configs {
            let reason = config.reason.trim().to_owned();
            let answers = match (&config.attribute, &config.member_of) {
                _ if config.through.is_some() => [Found::DefinerDoor, Found::ForbiddenPath],
                (Some(_), _) => [Found::ElevatedAttribute; 2],
                _ => [Found::ElevatedMembership; 2],
            };
            let answers = answers.map(|f| f.code());
            crate::check::accept::finding(config.finding.as_deref(), CheckKind::Roles, &answers)?;
            if let Some(through) = config.through {
                accepted.accept_door(
                    through,
                    config.code,
                    reason,
                    config.attribute.is_some() || config.member_of.is_some(),
                )?;
                continue;
            }
            if config.code.is_some() {
                return Err(FieldError::unplaced("`code` goes with `through`: the function whose code it is"));
            }
            let (list, item) = match (config.attribute, config.member_of) {
                (Some(attribute), None) => {
                    let attribute = attribute.trim().to_ascii_uppercase();
                    if !ATTRIBUTES.contains(&attribute.as_str()) {
                        return Err(FieldError::unplaced(format!(
                            "`{attribute}` is not an attribute the ceiling refuses ({})",
                            ATTRIBUTES.join(", ")
                        )));
                    }
                    (&mut accepted.attributes, attribute)
                }
                (None, Some(role)) => (&mut accepted.memberships, fold_ident(role.trim())),
                _ => {
                    return Err(FieldError::unplaced(
                        "an `accept` entry names one `attribute`, one `member_of` or one `through` (with its `code`), with its `reason`",
                    ));
                }
            };
            if reason.is_empty() {
                return Err(FieldError::unplaced(format!(
                    "accepting `{item}` needs a `reason`: the report shows an auditor why the role has it"
                )));
            }
            if list.iter().any(|(i, _)| *i == item) {
                return Err(FieldError::unplaced(format!("`{item}` is accepted twice")));
            }
            list.push((item, reason));
        }
        Ok(accepted)
    }

    /// Accepts the definer function `through` with `code` (see [`AcceptConfig::through`]).
    fn accept_door(
        &mut self,
        through: String,
        code: Option<String>,
        reason: String,
        more: bool,
    ) -> Result<(), FieldError> {
        if more {
            return Err(FieldError::unplaced(format!(
                "accepting `{}` names it alone: an `accept` entry names one `attribute`, `member_of` or `through`",
                through.trim()
            )));
        }
        let door = Door::new(&through, code.as_deref(), &reason)?;
        if self.doors.iter().any(|d| d.function == door.function) {
            return Err(FieldError::unplaced(format!("`{}` is accepted twice", door.function)));
        }
        self.doors.push(door);
        Ok(())
    }

    fn attribute(&self, attribute: &str) -> Option<&str> {
        self.attributes.iter().find(|(a, _)| a == attribute).map(|(_, why)| why.as_str())
    }

    fn membership(&self, role: &str) -> Option<&str> {
        self.memberships.iter().find(|(r, _)| r == role).map(|(_, why)| why.as_str())
    }
}

/// `item, accepted: why; ...` for the expected column.
fn shown(accepted: &[(String, String)]) -> String {
    accepted.iter().map(|(item, why)| format!("{item} accepted: {why}")).collect::<Vec<_>>().join("; ")
}

/// What a stale acceptance is told: `what` the scenario accepts, which `role` does not have
/// (`or` the other way it may be stale).
fn stale(role: &str, what: &str, or: &str) -> String {
    format!(
        "the scenario accepts {what}, which `{role}` does not have{or}: drop the acceptance (one nothing needs lets it come back unnoticed)"
    )
}

impl Spec {
    pub(super) fn attributes(&self, a: Attributes, started: Instant) -> Option<CheckResult> {
        let held: Vec<&str> = ATTRIBUTES
            .into_iter()
            .zip([a.superuser, a.createrole, a.createdb, a.bypassrls, a.replication])
            .filter(|(_, on)| *on)
            .map(|(n, _)| n)
            .collect();
        let accepted = &self.accept.attributes;
        let refused: Vec<&str> = ATTRIBUTES.into_iter().filter(|n| self.accept.attribute(n).is_none()).collect();
        let mut expected = format!("none of {}", refused.join(", "));
        if !accepted.is_empty() {
            expected = format!("{expected}; {}", shown(accepted));
        }
        let result = self
            .result("attributes", started)
            .expected(expected)
            .evidence(bind_evidence(super::ATTRIBUTES_SQL, &[&self.role]));
        let mut problems = Vec::new();
        let mut allowed = Vec::new();
        for attribute in &held {
            match self.accept.attribute(attribute) {
                Some(why) => allowed.push(format!("{attribute}, accepted: {why}")),
                None => problems.push(format!(
                    "`{}` has {attribute}: {}",
                    self.role,
                    attribute_meaning(attribute, a.server_version)
                )),
            }
        }
        let missing: Vec<&str> = accepted.iter().map(|(n, _)| n.as_str()).filter(|n| !held.contains(n)).collect();
        if !missing.is_empty() {
            problems.push(stale(&self.role, &missing.join(", "), ""));
        }
        let mut actual: Vec<String> = held
            .iter()
            .map(|n| if self.accept.attribute(n).is_some() { format!("{n} (accepted)") } else { (*n).to_owned() })
            .collect();
        if actual.is_empty() {
            actual.push("none".into());
        }
        if !missing.is_empty() {
            actual.push(format!("not {} (accepted)", missing.join(", ")));
        }
        let result = result.actual(actual.join(", "));
        Some(if !problems.is_empty() {
            result.found(Found::ElevatedAttribute, problems.join("; "))
        } else if allowed.is_empty() {
            result.found(Found::NoElevatedAttribute, format!("`{}` has no elevated attribute", self.role))
        } else {
            result.found(Found::NoElevatedAttribute, format!("`{}` has {}", self.role, allowed.join("; ")))
        })
    }

    /// Member of no role that reads or writes server files or all data, and of no role with an
    /// elevated attribute (it can `SET ROLE` to it and have it), but those the scenario accepts.
    pub(super) async fn memberships(&self, ctx: &CheckContext<'_>, version: i32) -> Option<CheckResult> {
        let started = Instant::now();
        let names: Vec<String> = DANGEROUS_ROLES.iter().map(|(n, _)| (*n).to_owned()).collect();
        let result = self
            .result("server access", started)
            .expected(membership_expected(&names, &self.accept.memberships))
            .evidence(bind_evidence(MEMBERSHIPS_SQL, &[&self.role, &format!("{{{}}}", names.join(","))]));
        let found: Vec<(String, Vec<String>)> =
            match sqlx::query_as(MEMBERSHIPS_SQL).bind(&self.role).bind(&names).fetch_all(ctx.pool).await {
                Ok(found) => found,
                Err(err) => return Some(result.found(Found::CouldNotRead, describe_sql_error(&err))),
            };
        let mut problems = Vec::new();
        let mut allowed = Vec::new();
        let mut actual = Vec::new();
        for (member_of, attributes) in &found {
            let shown = if attributes.is_empty() {
                member_of.clone()
            } else {
                format!("{member_of} ({})", attributes.join(", "))
            };
            match self.accept.membership(member_of) {
                Some(why) => {
                    actual.push(if attributes.is_empty() {
                        format!("{member_of} (accepted)")
                    } else {
                        format!("{member_of} ({}; accepted)", attributes.join(", "))
                    });
                    allowed.push(format!("is a member of {shown}, accepted: {why}"));
                }
                None => {
                    let meaning = membership_meaning(member_of, attributes, version);
                    actual.push(shown.clone());
                    problems.push(format!("`{}` is a member of {shown}: {meaning}", self.role));
                }
            }
        }
        let missing: Vec<&str> = self
            .accept
            .memberships
            .iter()
            .map(|(r, _)| r.as_str())
            .filter(|r| !found.iter().any(|(f, _)| f == r))
            .collect();
        if !missing.is_empty() {
            let what = format!("membership in {}", missing.join(", "));
            problems.push(stale(&self.role, &what, " (or it gives nothing the ceiling refuses)"));
            actual.push(format!("not a member of {} (accepted)", missing.join(", ")));
        }
        let result = result.actual(if actual.is_empty() { "none".to_owned() } else { listed(&actual) });
        Some(if !problems.is_empty() {
            result.found(Found::ElevatedMembership, problems.join("; "))
        } else if allowed.is_empty() {
            result.found(Found::NoElevatedMembership, format!("`{}` is a member of no elevated role", self.role))
        } else {
            result.found(Found::NoElevatedMembership, format!("`{}` {}", self.role, allowed.join("; ")))
        })
    }
}

/// Each role the role is a member of (but itself) that is a dangerous predefined role or has an
/// elevated attribute, with those attributes.
const MEMBERSHIPS_SQL: &str = "SELECT r.rolname::text, array_remove(ARRAY[CASE WHEN r.rolsuper THEN 'SUPERUSER' END, \
    CASE WHEN r.rolcreaterole THEN 'CREATEROLE' END, CASE WHEN r.rolcreatedb THEN 'CREATEDB' END, \
    CASE WHEN r.rolbypassrls THEN 'BYPASSRLS' END, CASE WHEN r.rolreplication THEN 'REPLICATION' END], NULL) \
    FROM pg_roles r WHERE r.rolname <> $1 AND pg_has_role($1, r.oid, 'MEMBER') \
    AND (r.rolname = ANY($2) OR r.rolsuper OR r.rolcreaterole OR r.rolcreatedb OR r.rolbypassrls OR r.rolreplication) ORDER BY 1";

fn membership_expected(dangerous: &[String], accepted: &[(String, String)]) -> String {
    let refused: Vec<&str> =
        dangerous.iter().map(String::as_str).filter(|d| !accepted.iter().any(|(a, _)| a == d)).collect();
    let mut expected = String::from("member of ");
    if !refused.is_empty() {
        expected.push_str(&format!("none of {}, nor ", refused.join(", ")));
    }
    expected.push_str("of a role with SUPERUSER, CREATEROLE, CREATEDB, BYPASSRLS or REPLICATION");
    if !accepted.is_empty() {
        expected.push_str(&format!("; {}", shown(accepted)));
    }
    expected
}

/// What a membership in `role` (with `attributes`) lets a member do.
fn membership_meaning(role: &str, attributes: &[String], version: i32) -> String {
    let mut meanings: Vec<String> =
        DANGEROUS_ROLES.iter().filter(|(n, _)| *n == role).map(|(_, m)| format!("as a member, it {m}")).collect();
    for attribute in attributes {
        let meaning = attribute_meaning(attribute, version);
        meanings.push(format!("as {role} (SET ROLE) it has {attribute}: {meaning}"));
    }
    meanings.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(attribute: Option<&str>, member_of: Option<&str>, reason: &str) -> AcceptConfig {
        AcceptConfig {
            attribute: attribute.map(String::from),
            member_of: member_of.map(String::from),
            through: None,
            code: None,
            reason: reason.into(),
            finding: None,
        }
    }

    fn through(function: &str, code: Option<&str>, reason: &str) -> AcceptConfig {
        AcceptConfig { through: Some(function.into()), code: code.map(String::from), ..accept(None, None, reason) }
    }

    fn spec(accepted: Accepted) -> Spec {
        let mut spec = super::super::tests::spec(None);
        spec.accept = accepted;
        spec
    }

    const PG17: i32 = 170004;

    #[test]
    fn an_acceptance_names_one_known_attribute_or_one_role_and_gives_a_reason() {
        let accepted = Accepted::resolve(vec![
            accept(Some("bypassrls"), None, " the migration role reads every tenant "),
            accept(None, Some("PG_Read_All_Data"), "exports"),
        ])
        .unwrap();
        assert_eq!(accepted.attributes, [("BYPASSRLS".to_owned(), "the migration role reads every tenant".to_owned())]);
        assert_eq!(accepted.memberships, [("pg_read_all_data".to_owned(), "exports".to_owned())]);
        let error = |configs| Accepted::resolve(configs).unwrap_err().message;
        assert!(
            error(vec![accept(Some("LOGIN"), None, "x")]).contains("`LOGIN` is not an attribute the ceiling refuses")
        );
        assert!(error(vec![accept(Some("BYPASSRLS"), None, "  ")]).contains("accepting `BYPASSRLS` needs a `reason`"));
        assert!(
            error(vec![accept(Some("BYPASSRLS"), Some("r"), "x")])
                .contains("one `attribute`, one `member_of` or one `through`")
        );
        assert!(error(vec![accept(None, None, "x")]).contains("one `attribute`, one `member_of` or one `through`"));
        let twice = vec![accept(Some("CREATEDB"), None, "a"), accept(Some("createdb"), None, "b")];
        assert!(error(twice).contains("`CREATEDB` is accepted twice"));
        let naming =
            |finding: &str| AcceptConfig { finding: Some(finding.into()), ..accept(Some("BYPASSRLS"), None, "x") };
        assert!(Accepted::resolve(vec![naming("roles.elevated-attribute")]).is_ok());
        assert!(error(vec![naming("roles.elevated")]).contains("is not a finding any check gives"));
        assert!(error(vec![naming("roles.can-log-in")]).contains("is not a finding `roles` accepts"));
        assert!(error(vec![naming("roles.elevated-membership")]).contains("answers `roles.elevated-attribute`"));
    }

    #[test]
    fn a_definer_function_is_accepted_for_its_code_only_and_with_a_reason() {
        let code = "AB".repeat(32);
        let accepted =
            Accepted::resolve(vec![through(" app_public.current_user_id() ", Some(&code), " its API ")]).unwrap();
        let door = Door {
            function: "app_public.current_user_id()".into(),
            code: "ab".repeat(32),
            reason: "its API".into(),
            finding: None,
        };
        assert_eq!(accepted.doors, [door]);
        let error = |configs| Accepted::resolve(configs).unwrap_err().message;
        assert!(error(vec![through("f()", None, "x")]).contains("needs the `code` the check prints for it"));
        assert!(error(vec![through("f()", Some("abc"), "x")]).contains("64 hexadecimal digits"));
        assert!(error(vec![through("f()", Some(&code), " ")]).contains("accepting `f()` needs a `reason`"));
        let twice = vec![through("f()", Some(&code), "a"), through("f()", Some(&code), "b")];
        assert!(error(twice).contains("`f()` is accepted twice"));
        let both = AcceptConfig { attribute: Some("BYPASSRLS".into()), ..through("f()", Some(&code), "x") };
        assert!(error(vec![both]).contains("names it alone"));
        let code_alone = AcceptConfig { code: Some(code.clone()), ..accept(Some("BYPASSRLS"), None, "x") };
        assert!(error(vec![code_alone]).contains("`code` goes with `through`"));
    }

    #[test]
    fn each_refused_attribute_says_what_it_allows_and_an_accepted_one_passes_with_its_reason() {
        let now = Instant::now();
        let elevated = Attributes { bypassrls: true, replication: true, server_version: PG17, ..Attributes::default() };
        let refused = spec(Accepted::default()).attributes(elevated, now).unwrap();
        assert_eq!(refused.code, "roles.elevated-attribute");
        assert_eq!(refused.actual, "BYPASSRLS, REPLICATION");
        assert!(
            refused.message.contains("`plur_app` has BYPASSRLS: it is exempt from every row-level security policy")
        );
        assert!(
            refused.message.contains("; `plur_app` has REPLICATION: it may connect for replication"),
            "{}",
            refused.message
        );
        assert!(!refused.message.contains("own the server"), "{}", refused.message);

        let why = "the migration role reads every tenant".to_owned();
        let both = Accepted {
            attributes: vec![("BYPASSRLS".into(), why.clone()), ("REPLICATION".into(), "it feeds the replica".into())],
            memberships: vec![],
            doors: vec![],
        };
        let passed = spec(both).attributes(elevated, now).unwrap();
        assert_eq!(passed.code, "roles.no-elevated-attribute", "{passed:?}");
        assert_eq!(passed.actual, "BYPASSRLS (accepted), REPLICATION (accepted)");
        assert_eq!(
            passed.expected,
            format!(
                "none of SUPERUSER, CREATEROLE, CREATEDB; BYPASSRLS accepted: {why}; REPLICATION accepted: it feeds the replica"
            )
        );
        assert!(passed.message.contains(&format!("has BYPASSRLS, accepted: {why}")), "{}", passed.message);
    }

    #[test]
    fn an_accepted_attribute_the_role_lacks_fails_as_stale() {
        let accepted =
            Accepted { attributes: vec![("CREATEDB".into(), "tests".into())], memberships: vec![], doors: vec![] };
        let result = spec(accepted).attributes(Attributes::default(), Instant::now()).unwrap();
        assert_eq!(result.code, "roles.elevated-attribute");
        assert_eq!(result.actual, "none, not CREATEDB (accepted)");
        assert!(
            result.message.contains("the scenario accepts CREATEDB, which `plur_app` does not have"),
            "{}",
            result.message
        );
    }

    #[test]
    fn createrole_says_what_it_allowed_before_postgresql_16() {
        assert!(attribute_meaning("CREATEROLE", 150008).contains("one step from superuser"));
        assert!(attribute_meaning("CREATEROLE", PG17).contains("ADMIN OPTION"));
        assert!(membership_meaning("pg_execute_server_program", &[], PG17).contains("runs any program"));
        let admin = membership_meaning("kb_admin", &["BYPASSRLS".into()], PG17);
        assert!(admin.starts_with("as kb_admin (SET ROLE) it has BYPASSRLS: it is exempt from every"), "{admin}");
    }

    #[test]
    fn the_expected_memberships_leave_out_the_accepted_ones_and_say_why_they_are_accepted() {
        let names: Vec<String> = DANGEROUS_ROLES.iter().map(|(n, _)| (*n).to_owned()).collect();
        let expected = membership_expected(&names, &[("pg_read_all_data".into(), "exports".into())]);
        assert!(expected.starts_with("member of none of pg_read_server_files, pg_write_server_files, pg_execute_server_program, pg_write_all_data, nor of a role"), "{expected}");
        assert!(expected.ends_with("; pg_read_all_data accepted: exports"), "{expected}");
    }
}

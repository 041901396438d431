//! Loopholes a session can open itself, and protections that hold only for sessions like the
//! drill's.
//!
//! Any role may set any custom setting (`app.bypass_rls`, `audit.allow_delete`) in its own
//! session, and many built-in ones (`application_name`, `search_path`, `TimeZone`): a policy,
//! rule or trigger whose code reads one is a door the application role holds the key to,
//! whatever the scenario sets. Fail-closed `rls` and `append_only` gather the code their
//! table's protections run, the whole call graph ([`graph`]), find what it reads about the
//! session ([`facts`]), try each setting a session may set as the application role would, set
//! to the values that code compares it with and the usual truthy spellings, and fail naming the
//! policy or trigger, the function path and the setting that opened it.
//!
//! What cannot be tried (the client's address, when the server or the session started, what
//! else is connected, the transaction's state, the server's own settings, SQL built at run
//! time, code in a language pgdrill cannot read) fails as "proven only for sessions like the
//! drill's", naming the function and the fact: the drill's sessions are not the application's in
//! those. Who the session is needs no try: the probes are real logins of the role.
//!
//! ```toml
//! # in fail_closed = { ... } or [[checks.append_only]]:
//! trusted = [{ setting = "app.bypass_rls", reason = "set only by the migration runner's login, never by the app" }]
//! # a tenant value the policies treat specially, accepted for the same reason:
//! # trusted = [{ setting = "app.tenant_id", value = "*", reason = "..." }]
//! # a fact about the session that cannot be tried, accepted with why:
//! # trusted = [{ fact = "inet_client_addr", reason = "the application connects from 10.0.0.0/8 only" }]
//! ```
//!
//! A trusted setting (or one value of it) is not tried, and a trusted fact does not fail; the
//! reason is shown in the evidence and the report.

pub(crate) mod allowed;
mod dynamic;
pub(crate) mod facts;
pub(crate) mod graph;
mod keys;
pub(crate) mod narrowing;
mod rows;
pub(crate) mod shadow;
mod untried;
pub(crate) mod writes;

mod trusted;
pub(crate) use trusted::Trusted;
pub(crate) use untried::{Untried, only_like_the_drill, untried};

use std::collections::BTreeMap;
use std::sync::LazyLock;

use regex::Regex;

/// Values every lever is tried with, beside the literals its readers compare with.
const TRUTHY: [&str; 7] = ["on", "true", "1", "yes", "t", "all", "*"];

/// At most this many values per setting: literals of a long function are mostly not for it.
const MAX_VALUES: usize = 16;

/// A text that reads settings: a policy's expressions or a trigger's function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reader {
    /// What it is, as a message names it: ``policy `tenant_read` ``, ``trigger `audit_guard` ``.
    pub name: String,
    pub text: String,
}

/// A custom setting some readers read, with the values to try it with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Lever {
    pub setting: String,
    pub values: Vec<String>,
    /// The readers that read it.
    pub read_by: Vec<String>,
}

/// One try: set `setting` to `value`, then do what must stay refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Attempt {
    pub setting: String,
    pub value: String,
    pub read_by: Vec<String>,
}

static SETTING: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)current_setting\s*\(\s*'((?:[^']|'')+)'(?:\s*::\s*text)?\s*(?:,\s*(?:true|false)\s*)?\)(\s*\)?\s*::\s*jsonb?)?")
        .expect("a valid pattern")
});
static LITERAL: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"'((?:[^']|'')*)'").expect("a valid pattern"));
static JSON_KEY: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"->>?\s*'((?:[^']|'')+)'").expect("a valid pattern"));

/// The settings `text` reads (`current_setting`, `SHOW`), lower-cased, each with whether it is
/// read as JSON (`current_setting('request.jwt.claims')::jsonb`).
pub(crate) fn settings_read(text: &str) -> Vec<(String, bool)> {
    let mut found: Vec<(String, bool)> = Vec::new();
    let mut add = |name: String, json: bool| match found.iter_mut().find(|(n, _)| *n == name) {
        Some(entry) => entry.1 |= json,
        None => found.push((name, json)),
    };
    for c in SETTING.captures_iter(text) {
        add(c[1].replace("''", "'").to_lowercase(), c.get(2).is_some());
    }
    for fact in facts::read(text) {
        if let facts::Fact::Setting(name) = fact {
            add(name, false);
        }
    }
    found
}

/// The string literals of `text` a setting may be compared with: not the setting names
/// themselves, not JSON keys, nothing long.
fn literals(text: &str, settings: &[(String, bool)]) -> (Vec<String>, Vec<String>) {
    let keys: Vec<String> = JSON_KEY.captures_iter(text).map(|c| c[1].replace("''", "'")).collect();
    let mut values = Vec::new();
    for c in LITERAL.captures_iter(text) {
        let value = c[1].replace("''", "'");
        let lowered = value.to_lowercase();
        if value.len() > 64 || settings.iter().any(|(s, _)| *s == lowered) || keys.contains(&value) {
            continue;
        }
        if !values.contains(&value) {
            values.push(value);
        }
    }
    (values, keys)
}

/// The levers `readers` offer, but `except` (the tenant setting, which fail-closed tries on
/// its own): each setting they read that a session may set itself (a custom one, or a built-in
/// one of `contexts`' `user` context), with the literals they compare with and the usual truthy
/// spellings; a setting read as JSON is tried as objects of the keys they read.
pub(crate) fn levers(readers: &[Reader], except: &[&str], contexts: &Contexts) -> Vec<Lever> {
    // What one function reads, another compares: `auth.jwt()` reads the claims, the policy that
    // calls it compares `->> 'user_role'` with `'admin'`. So the literals and keys of every text
    // gathered are tried too, after the reader's own.
    let mut pooled_values: Vec<String> = Vec::new();
    let mut pooled_keys: Vec<String> = Vec::new();
    for reader in readers {
        let (values, keys) = literals(&reader.text, &settings_read(&reader.text));
        pooled_values.extend(values.into_iter().filter(|v| !pooled_values.contains(v)).collect::<Vec<_>>());
        pooled_keys.extend(keys.into_iter().filter(|k| !pooled_keys.contains(k)).collect::<Vec<_>>());
    }
    let mut by_setting: BTreeMap<String, Lever> = BTreeMap::new();
    for reader in readers {
        let settings = settings_read(&reader.text);
        let (mut values, mut keys) = literals(&reader.text, &settings);
        values.extend(pooled_values.iter().filter(|v| !values.contains(v)).cloned().collect::<Vec<_>>());
        keys.extend(pooled_keys.iter().filter(|k| !keys.contains(k)).cloned().collect::<Vec<_>>());
        // Read as JSON where the text casts what it reads to json (through `nullif` or
        // `coalesce` too).
        let casts = reader.text.to_lowercase().contains("::json");
        for (setting, json) in &settings {
            if except.iter().any(|e| e.eq_ignore_ascii_case(setting))
                || facts::proof(&facts::Fact::Setting(setting.clone()), contexts, true) != facts::Proof::Lever
            {
                continue;
            }
            let lever = by_setting.entry(setting.clone()).or_insert_with(|| Lever {
                setting: setting.clone(),
                values: Vec::new(),
                read_by: Vec::new(),
            });
            if !lever.read_by.contains(&reader.name) {
                lever.read_by.push(reader.name.clone());
            }
            // A built-in setting takes values of its own type: it is tried with what the code
            // compares it with only (`statement_timeout = '1'` would stop the try itself).
            let builtin = contexts.contains_key(setting.as_str());
            let json = *json || (casts && !keys.is_empty());
            let limit = if json { MAX_VALUES * 2 } else { MAX_VALUES };
            for value in candidates(&values, &keys, json, builtin) {
                if !lever.values.contains(&value) && lever.values.len() < limit {
                    lever.values.push(value);
                }
            }
        }
    }
    by_setting.into_values().collect()
}

/// The values a setting is tried with: the literals first (what the readers compare with),
/// then, for a custom setting, the truthy spellings; as JSON objects when it is read as JSON.
fn candidates(values: &[String], keys: &[String], json: bool, builtin: bool) -> Vec<String> {
    let mut plain: Vec<String> = values.to_vec();
    if !builtin {
        plain.extend(TRUTHY.iter().map(|v| (*v).to_owned()));
    }
    if !json {
        return plain;
    }
    let mut objects = Vec::new();
    for key in keys {
        for value in &plain {
            objects.push(serde_json::json!({ key: value }).to_string());
        }
    }
    objects
}

/// The tenant values the readers treat specially: the literals they compare the tenant setting
/// with (`current_setting('app.tenant_id') = '*'`), not the two probe tenants.
pub(crate) fn special_tenants(readers: &[Reader], setting: &str) -> Vec<String> {
    let setting = setting.to_lowercase();
    let mut out = Vec::new();
    for reader in readers {
        let settings = settings_read(&reader.text);
        if !settings.iter().any(|(s, _)| *s == setting) {
            continue;
        }
        for value in literals(&reader.text, &settings).0 {
            if !out.contains(&value) && out.len() < MAX_VALUES {
                out.push(value);
            }
        }
    }
    for value in ["*", "all", ""] {
        if !out.iter().any(|v| v == value) {
            out.push(value.to_owned());
        }
    }
    out
}

/// Every try the levers call for, but what `trusted` covers; and the trusted entries that
/// matched a lever (for the evidence).
pub(crate) fn attempts(levers: &[Lever], trusted: &[Trusted]) -> (Vec<Attempt>, Vec<Trusted>) {
    let mut out = Vec::new();
    let mut used = Vec::new();
    for lever in levers {
        for value in &lever.values {
            if let Some(t) = trusted.iter().find(|t| t.covers(&lever.setting, value)) {
                if !used.contains(t) {
                    used.push(t.clone());
                }
                continue;
            }
            out.push(Attempt { setting: lever.setting.clone(), value: value.clone(), read_by: lever.read_by.clone() });
        }
    }
    (out, used)
}

/// Each built-in setting's context (`pg_settings.context`), by lower-cased name.
pub(crate) type Contexts = BTreeMap<String, String>;

/// Reads [`Contexts`].
pub(crate) async fn contexts(conn: &mut sqlx::PgConnection) -> sqlx::Result<Contexts> {
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT pg_catalog.lower(name), context::pg_catalog.text FROM pg_catalog.pg_settings")
            .fetch_all(conn)
            .await?;
    Ok(rows.into_iter().collect())
}

/// The message of a lever that opened what must stay shut: `what` says what it allowed.
pub(crate) fn opened(attempt: &Attempt, what: &str) -> String {
    tried(attempt, what, "any session of the role can open it")
}

/// The message of a setting a session sets itself that changed an answer (a `sql` check's, whose
/// rows it may show or hide): what it changed, the setting and value, and who reads it.
pub(crate) fn changed(attempt: &Attempt, what: &str) -> String {
    tried(attempt, what, "the answer is what each session of the role makes it")
}

fn tried(attempt: &Attempt, what: &str, so: &str) -> String {
    format!(
        "{what} when the session sets `{}` = '{}' itself, which {} reads{}: {so} \
         (if only a trusted path can set it, accept it with `trusted = [{{ setting = \"{}\", reason = \"...\" }}]`)",
        attempt.setting,
        attempt.value,
        attempt.read_by.join(", "),
        if attempt.read_by.len() > 1 { " (one of them)" } else { "" },
        attempt.setting
    )
}

/// Which step of a door's try an error came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// `set_config` of the setting: refused, the session cannot open that door.
    Set,
    /// The statement the door would let through.
    Statement(crate::sqlstate::Probe),
}

/// An error while a door was tried that proves nothing about the door: the server's answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", failure.describe())]
pub(crate) struct ProvesNothing {
    pub failure: super::login::Failure,
}

/// Whether an error while a door was tried says it stayed shut for that value: `Err` with why
/// when it proves nothing. The database's own answer does (a refusal, a setting it will not
/// set, a value that does not cast, a setting unset); what happened to the session or the
/// machine does not (a timeout, a lock not granted, an internal error, a lost connection), nor
/// does a write that got past the refusal and stopped on something else (a constraint of the
/// probe row): either may hide a door that opens.
pub(crate) fn stayed_shut(failure: super::login::Failure, step: Step) -> Result<(), ProvesNothing> {
    match failure.sqlstate() {
        Some((code, context)) if shuts(code, context, step) => Ok(()),
        _ => Err(ProvesNothing { failure }),
    }
}

fn shuts(code: &str, context: Option<&str>, step: Step) -> bool {
    use crate::sqlstate::{Class, classify, transient};
    match step {
        _ if transient(code) => false,
        Step::Set => true,
        Step::Statement(probe) => {
            classify(probe, code, context) != Class::Inconclusive || code.starts_with("22") || code == "42704"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(name: &str, text: &str) -> Reader {
        Reader { name: name.into(), text: text.into() }
    }

    #[test]
    fn settings_are_read_as_the_server_prints_them_and_as_people_write_them() {
        let printed = "((tenant_id = (current_setting('app.tenant_id'::text, true))::uuid) OR \
                       (current_setting('app.bypass_rls'::text, true) = 'on'::text))";
        assert_eq!(
            settings_read(printed),
            vec![("app.tenant_id".to_owned(), false), ("app.bypass_rls".to_owned(), false)]
        );
        let written = "IF current_setting( 'Audit.Allow_Delete', true ) = 'yes' THEN RETURN OLD; END IF;";
        assert_eq!(settings_read(written), vec![("audit.allow_delete".to_owned(), false)]);
        let jwt =
            "((current_setting('request.jwt.claims'::text, true))::jsonb ->> 'role'::text) = 'service_role'::text";
        assert_eq!(settings_read(jwt), vec![("request.jwt.claims".to_owned(), true)]);
        assert_eq!(settings_read("current_setting('search_path')"), vec![("search_path".to_owned(), false)]);
        assert_eq!(settings_read("SHOW application_name"), vec![("application_name".to_owned(), false)]);
    }

    fn contexts() -> Contexts {
        [("application_name", "user"), ("cluster_name", "postmaster")]
            .into_iter()
            .map(|(n, c)| (n.to_owned(), c.to_owned()))
            .collect()
    }

    #[test]
    fn a_built_in_setting_a_session_may_set_is_a_lever_and_the_servers_own_is_not() {
        let readers = [reader(
            "trigger `guard`",
            "IF current_setting('application_name') = 'billing-api' OR current_setting('cluster_name') = 'prod' THEN RETURN OLD; END IF;",
        )];
        let levers = levers(&readers, &[], &contexts());
        assert_eq!(levers.iter().map(|l| l.setting.as_str()).collect::<Vec<_>>(), ["application_name"]);
        assert_eq!(levers[0].values[0], "billing-api");
    }

    #[test]
    fn facts_no_try_shows_are_named_unless_trusted() {
        let gathered = graph::Gathered {
            readers: vec![
                reader("trigger `guard` → public.guard()", "IF inet_client_addr() IS NULL THEN RAISE 'no'; END IF;"),
                reader("trigger `guard` → public.guard() → public.who()", "RETURN session_user = current_user;"),
            ],
            unreadable: vec![("policy `p` → public.f(integer)".into(), "plperl".into())],
            ..Default::default()
        };
        let (found, used) = untried(&gathered, &contexts(), true, &[], &[]);
        let keys: Vec<String> = found.iter().map(|u| u.fact.key()).collect();
        assert_eq!(keys, ["inet_client_addr", "language plperl"], "identity is the login's: {found:?}");
        assert!(used.is_empty());
        let message = only_like_the_drill(&found);
        assert!(message.starts_with("proven only for sessions like the drill's: trigger `guard` → public.guard() reads where the session comes from (`inet_client_addr`)"), "{message}");
        assert!(message.contains("{ fact = \"inet_client_addr\", reason = \"...\" }"), "{message}");
        let trusted = Trusted::resolve(vec![Trusted {
            setting: None,
            value: None,
            fact: Some("inet_client_addr()".into()),
            reason: "the app connects over TCP only".into(),
            finding: None,
        }])
        .unwrap();
        let (found, used) = untried(&gathered, &contexts(), true, &trusted, &[]);
        assert_eq!(found.len(), 1);
        assert_eq!(used, trusted);
        let (as_pgdrill, _) = untried(&gathered, &contexts(), false, &trusted, &[]);
        assert!(as_pgdrill.iter().any(|u| u.fact.key() == "session_user"), "{as_pgdrill:?}");
    }

    #[test]
    fn a_lever_is_tried_with_what_its_readers_compare_it_with_then_the_truthy_spellings() {
        let readers = [
            reader(
                "policy `tenant`",
                "((tenant_id = (current_setting('app.tenant_id'::text, true))::uuid) OR \
                 (current_setting('app.bypass_rls'::text, true) = 'enabled'::text))",
            ),
            reader("trigger `guard`", "IF current_setting('app.bypass_rls', true) = 'on' THEN RETURN OLD; END IF;"),
        ];
        let levers = levers(&readers, &["app.tenant_id"], &contexts());
        assert_eq!(levers.len(), 1, "the tenant setting is not a lever: {levers:?}");
        let lever = &levers[0];
        assert_eq!(lever.setting, "app.bypass_rls");
        assert_eq!(lever.read_by, vec!["policy `tenant`", "trigger `guard`"]);
        assert_eq!(&lever.values[..2], ["enabled", "on"]);
        assert!(lever.values.contains(&"true".to_owned()) && lever.values.contains(&"1".to_owned()));
        assert!(!lever.values.iter().any(|v| v == "app.bypass_rls"), "a setting's name is not a value");
    }

    #[test]
    fn claims_read_in_one_function_are_tried_with_what_the_policy_that_calls_it_compares() {
        let readers = [
            reader("policy `admins`", "((auth.jwt() ->> 'user_role'::text) = 'admin'::text)"),
            reader(
                "policy `admins` → auth.jwt()",
                "select coalesce(nullif(current_setting('request.jwt.claim', true), ''), nullif(current_setting('request.jwt.claims', true), ''))::jsonb",
            ),
        ];
        let levers = levers(&readers, &[], &contexts());
        let claims = levers.iter().find(|l| l.setting == "request.jwt.claims").expect("the claims are a lever");
        assert!(claims.values.contains(&r#"{"user_role":"admin"}"#.to_owned()), "{:?}", claims.values);
    }

    #[test]
    fn a_setting_read_as_json_is_tried_as_objects_of_the_keys_read() {
        let readers = [reader(
            "policy `service`",
            "(((current_setting('request.jwt.claims'::text, true))::jsonb ->> 'role'::text) = 'service_role'::text)",
        )];
        let lever = &levers(&readers, &[], &contexts())[0];
        assert_eq!(lever.values[0], r#"{"role":"service_role"}"#);
        assert!(lever.values.iter().all(|v| v.starts_with("{\"role\":")), "{:?}", lever.values);
    }

    #[test]
    fn trusted_settings_and_values_are_not_tried_and_are_listed() {
        let lever = Lever {
            setting: "app.tenant_id".into(),
            values: vec!["*".into(), "all".into()],
            read_by: vec!["policy `t`".into()],
        };
        let trusted = vec![Trusted {
            setting: Some("app.tenant_id".into()),
            value: Some("*".into()),
            fact: None,
            reason: "the admin API".into(),
            finding: None,
        }];
        let (tries, used) = attempts(&[lever], &trusted);
        assert_eq!(tries.iter().map(|a| a.value.as_str()).collect::<Vec<_>>(), ["all"]);
        assert_eq!(used, trusted);
        assert!(used[0].shown().contains("trusted: the admin API"));
        let no_reason =
            vec![Trusted { setting: Some("app.x".into()), value: None, fact: None, reason: " ".into(), finding: None }];
        assert!(Trusted::resolve(no_reason).is_err(), "a trust needs its reason");
        let both = vec![Trusted {
            setting: Some("app.x".into()),
            value: None,
            fact: Some("pg_stat_activity".into()),
            reason: "r".into(),
            finding: None,
        }];
        assert!(Trusted::resolve(both).is_err(), "a setting or a fact, not both");
    }

    #[test]
    fn special_tenant_values_are_the_literals_the_tenant_setting_is_compared_with() {
        let readers = [reader(
            "policy `t`",
            "((current_setting('app.tenant'::text) = 'global'::text) OR (tenant = current_setting('app.tenant'::text)))",
        )];
        assert_eq!(special_tenants(&readers, "app.tenant"), ["global", "*", "all", ""]);
        assert_eq!(special_tenants(&readers, "app.other"), ["*", "all", ""]);
    }

    #[test]
    fn a_door_stays_shut_on_the_databases_answer_and_proves_nothing_on_a_timeout_or_a_constraint() {
        use crate::sqlstate::Probe::{PolicyRead, Write};
        const RAISE: Option<&str> = Some("PL/pgSQL function no_change() line 3 at RAISE");
        let table = [
            // The session may not set it, or the value does not take.
            ("42501", None, Step::Set, true),
            ("22023", None, Step::Set, true),
            ("42602", None, Step::Set, true),
            // Refused, a value that does not cast, a setting unset: shut for that value.
            ("42501", None, Step::Statement(Write), true),
            ("P0001", RAISE, Step::Statement(Write), true),
            ("22P02", None, Step::Statement(Write), true),
            ("42704", None, Step::Statement(Write), true),
            ("22P02", None, Step::Statement(PolicyRead), true),
            ("42704", None, Step::Statement(PolicyRead), true),
            // Past the refusal, stopped by the probe row's constraint: the door opened.
            ("23505", None, Step::Statement(Write), false),
            ("23503", None, Step::Statement(Write), false),
            // What happened to the session or the machine: nothing proven, at any step.
            ("57014", None, Step::Set, false),
            ("57014", None, Step::Statement(PolicyRead), false),
            ("57014", RAISE, Step::Statement(Write), false),
            ("55P03", None, Step::Statement(Write), false),
            ("40P01", None, Step::Statement(PolicyRead), false),
            ("XX000", None, Step::Statement(PolicyRead), false),
            ("53200", None, Step::Set, false),
            ("08006", None, Step::Statement(Write), false),
        ];
        for (code, context, step, shut) in table {
            assert_eq!(shuts(code, context, step), shut, "{code} {context:?} at {step:?}");
        }
    }

    #[test]
    fn an_opened_lever_names_the_setting_the_value_and_who_reads_it() {
        let attempt =
            Attempt { setting: "app.bypass_rls".into(), value: "on".into(), read_by: vec!["policy `bypass`".into()] };
        let message = opened(&attempt, "`app` reads 2 probe rows of `public.t` with no tenant set");
        assert!(message.contains("sets `app.bypass_rls` = 'on' itself, which policy `bypass` reads"), "{message}");
        assert!(message.contains("trusted = [{ setting = \"app.bypass_rls\""), "{message}");
    }
}

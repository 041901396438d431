//! What a protection's code reads about the session it runs in: who (`session_user`, the
//! role), where from (the client's address, the server's configuration), when (the server's or
//! the session's start), what else runs (`pg_stat_activity`, locks), the transaction's state
//! (its id, how deep in triggers it is) and settings (custom ones any session sets, built-in
//! ones a session may set, the server's own). A trigger, rule or policy whose code reads any of
//! these can behave one way for a drill's sessions and another for the application's.
//!
//! Read from the texts ([`super::Reader`]) the call graph gathers ([`super::graph`]), comments
//! left out (string literals kept: an `EXECUTE 'SELECT inet_client_addr()'` runs what it
//! holds). SQL built at run time (`EXECUTE` of anything but a literal) cannot be read, and is a
//! fact of its own.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use regex::Regex;

/// Something a text reads about its session.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Fact {
    /// A setting, by name (lower case).
    Setting(String),
    /// A setting whose name is computed at run time (`current_setting(v_name)`).
    ComputedSetting,
    /// Who the session is.
    Identity(&'static str),
    /// Where the session comes from, or which server it is on.
    Address(&'static str),
    /// When the server or the session started.
    Started(&'static str),
    /// What else is connected, or the session's own process.
    Activity(&'static str),
    /// The transaction's state.
    Transaction(&'static str),
    /// Every setting at once.
    AllSettings(&'static str),
    /// Files or programs of the server's machine, or another connection.
    Outside(&'static str),
    /// SQL built at run time, which cannot be read: the start of the statement.
    Dynamic(String),
    /// A function in a language pgdrill cannot read.
    Unreadable(String),
    /// More functions than pgdrill follows.
    TooLarge,
}

/// Functions (and views) that read a fact, by name.
const NAMED: &[(&str, fn(&'static str) -> Fact)] = &[
    ("inet_client_addr", Fact::Address),
    ("inet_client_port", Fact::Address),
    ("inet_server_addr", Fact::Address),
    ("inet_server_port", Fact::Address),
    ("pg_postmaster_start_time", Fact::Started),
    ("pg_conf_load_time", Fact::Started),
    ("backend_start", Fact::Started),
    ("pg_stat_activity", Fact::Activity),
    ("pg_stat_get_activity", Fact::Activity),
    ("pg_stat_get_backend_pid", Fact::Activity),
    ("pg_stat_get_backend_userid", Fact::Activity),
    ("pg_stat_get_backend_client_addr", Fact::Activity),
    ("pg_stat_get_backend_activity_start", Fact::Activity),
    ("pg_stat_get_backend_start", Fact::Activity),
    ("pg_stat_ssl", Fact::Activity),
    ("pg_stat_gssapi", Fact::Activity),
    ("pg_backend_pid", Fact::Activity),
    ("pg_blocking_pids", Fact::Activity),
    ("pg_locks", Fact::Activity),
    ("pg_prepared_statements", Fact::Activity),
    ("pg_cursors", Fact::Activity),
    ("txid_current", Fact::Transaction),
    ("txid_current_if_assigned", Fact::Transaction),
    ("txid_current_snapshot", Fact::Transaction),
    ("txid_status", Fact::Transaction),
    ("pg_current_xact_id", Fact::Transaction),
    ("pg_current_xact_id_if_assigned", Fact::Transaction),
    ("pg_current_snapshot", Fact::Transaction),
    ("pg_xact_status", Fact::Transaction),
    ("pg_trigger_depth", Fact::Transaction),
    ("pg_settings", Fact::AllSettings),
    ("pg_show_all_settings", Fact::AllSettings),
    ("pg_db_role_setting", Fact::AllSettings),
    ("pg_file_settings", Fact::AllSettings),
    ("pg_hba_file_rules", Fact::AllSettings),
    ("pg_read_file", Fact::Outside),
    ("pg_read_binary_file", Fact::Outside),
    ("pg_ls_dir", Fact::Outside),
    ("pg_stat_file", Fact::Outside),
    ("lo_import", Fact::Outside),
    ("dblink", Fact::Outside),
    ("dblink_exec", Fact::Outside),
];

/// Keywords (no parentheses) that read who the session is.
const IDENTITY: [&str; 3] = ["session_user", "current_user", "current_role"];

/// Built-in settings that say who the session is, and what state its transaction is in: not
/// levers, facts.
const IDENTITY_SETTINGS: [&str; 3] = ["role", "session_authorization", "is_superuser"];
const TRANSACTION_SETTINGS: [&str; 4] =
    ["transaction_isolation", "transaction_read_only", "transaction_deferrable", "session_replication_role"];

static COMMENT: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"(?s)--[^\n]*|/\*.*?\*/").expect("a valid pattern"));
static READ: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)current_setting\s*\(\s*('((?:[^']|'')+)'|[^')\s])").expect("a valid pattern"));
static SHOW: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)\bshow\s+([a-z_][a-z0-9_.]*)").expect("a valid pattern"));
static WORD: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"(?i)\b([a-z_][a-z0-9_$]*)\b").expect("a valid pattern"));
static EXECUTE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\bexecute\s+(function|procedure|'|\$[a-z_0-9]*\$|[a-z_][a-z0-9_]*\s*\(|[^;]{0,40})")
        .expect("a valid pattern")
});

impl Fact {
    /// How a scenario names it to trust it (`trusted = [{ fact = "...", reason = "..." }]`).
    pub(crate) fn key(&self) -> String {
        match self {
            Fact::Setting(name) => name.clone(),
            Fact::ComputedSetting => "computed setting".into(),
            Fact::Identity(name) => (*name).into(),
            Fact::Address(name)
            | Fact::Started(name)
            | Fact::Activity(name)
            | Fact::Transaction(name)
            | Fact::AllSettings(name)
            | Fact::Outside(name) => (*name).into(),
            Fact::Dynamic(_) => "dynamic SQL".into(),
            Fact::Unreadable(language) => format!("language {language}"),
            Fact::TooLarge => "call graph".into(),
        }
    }

    /// What it is, in words.
    pub(crate) fn describe(&self) -> String {
        match self {
            Fact::Setting(name) => format!("the setting `{name}`"),
            Fact::ComputedSetting => "a setting whose name it computes at run time".into(),
            Fact::Identity(name) => format!("who the session is (`{name}`)"),
            Fact::Address(name) => format!("where the session comes from (`{name}`)"),
            Fact::Started(name) => format!("when the server or the session started (`{name}`)"),
            Fact::Activity(name) => format!("what else is connected (`{name}`)"),
            Fact::Transaction(name) => format!("the transaction's state (`{name}`)"),
            Fact::AllSettings(name) => format!("the session's settings all at once (`{name}`)"),
            Fact::Outside(name) => format!("the server's files or another connection (`{name}`)"),
            Fact::Dynamic(start) => format!("SQL it builds at run time (`EXECUTE {start}`), which pgdrill cannot read"),
            Fact::Unreadable(language) => format!("code in {language}, which pgdrill cannot read"),
            Fact::TooLarge => "a call graph larger than pgdrill follows".into(),
        }
    }
}

/// The facts `text` reads, each once.
pub(crate) fn read(text: &str) -> Vec<Fact> {
    let text = COMMENT.replace_all(text, " ");
    let lower = text.to_lowercase();
    let mut facts = Vec::new();
    for c in READ.captures_iter(&lower) {
        facts.push(match c.get(2) {
            Some(name) => Fact::Setting(name.as_str().replace("''", "'")),
            None => Fact::ComputedSetting,
        });
    }
    for c in SHOW.captures_iter(&lower) {
        match &c[1] {
            "all" => facts.push(Fact::AllSettings("SHOW ALL")),
            name => facts.push(Fact::Setting(name.to_owned())),
        }
    }
    for c in WORD.captures_iter(&lower) {
        let word = &c[1];
        if let Some((name, fact)) = NAMED.iter().find(|(n, _)| *n == word) {
            facts.push(fact(name));
        } else if let Some(name) = IDENTITY.iter().find(|n| **n == word) {
            facts.push(Fact::Identity(name));
        }
    }
    for c in EXECUTE.captures_iter(&lower) {
        let next = c[1].trim();
        let static_sql = next.starts_with('\'') || next.starts_with('$') || next == "function" || next == "procedure";
        if !static_sql {
            let start: String = next.chars().take(40).collect();
            facts.push(Fact::Dynamic(start.trim().to_owned()));
        }
    }
    facts.sort();
    facts.dedup();
    facts
}

/// How a fact is proven: tried in the role's session (a setting the session may set itself),
/// true of the probe as of the application (who it is: the probe is a real login of the role),
/// or neither.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Proof {
    /// A setting the session sets itself: tried with the values the text compares it with.
    Lever,
    /// The probe's session has it as the application's does.
    AsTheApplication,
    /// Nothing the drill does can show it holds for the application's sessions.
    Untried,
}

/// How `fact` is proven, given each built-in setting's context (`pg_settings.context`; a custom
/// setting is in none) and whether the session that runs the code is the role's own login.
pub(crate) fn proof(fact: &Fact, contexts: &BTreeMap<String, String>, own_login: bool) -> Proof {
    match fact {
        Fact::Identity(_) if own_login => Proof::AsTheApplication,
        Fact::Setting(name) if IDENTITY_SETTINGS.contains(&name.as_str()) && own_login => Proof::AsTheApplication,
        Fact::Setting(name)
            if IDENTITY_SETTINGS.contains(&name.as_str()) || TRANSACTION_SETTINGS.contains(&name.as_str()) =>
        {
            Proof::Untried
        }
        Fact::Setting(name) => match contexts.get(name).map(String::as_str) {
            // A custom setting, or one no loaded library defines: any session sets it.
            None | Some("user") => Proof::Lever,
            Some(_) => Proof::Untried,
        },
        _ => Proof::Untried,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn who_where_and_when_are_read_from_the_code() {
        let text = "BEGIN
  -- inet_client_addr() in a comment reads nothing
  IF session_user = current_user AND inet_client_addr() IS NOT NULL THEN RETURN NEW; END IF;
  IF (SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE application_name = 'pgdrill') > 0 THEN RAISE 'no'; END IF;
  IF pg_postmaster_start_time() > now() - interval '1 hour' OR txid_current() < 100000 THEN RETURN OLD; END IF;
  IF current_setting('Application_Name') <> 'api' OR current_setting('app.Bypass', true) = 'on' THEN RETURN NULL; END IF;
END";
        let facts = read(text);
        for fact in [
            Fact::Identity("session_user"),
            Fact::Identity("current_user"),
            Fact::Address("inet_client_addr"),
            Fact::Activity("pg_stat_activity"),
            Fact::Started("pg_postmaster_start_time"),
            Fact::Transaction("txid_current"),
            Fact::Setting("application_name".into()),
            Fact::Setting("app.bypass".into()),
        ] {
            assert!(facts.contains(&fact), "{fact:?} in {facts:?}");
        }
        assert_eq!(facts.iter().filter(|f| **f == Fact::Address("inet_client_addr")).count(), 1);
    }

    #[test]
    fn sql_built_at_run_time_is_a_fact_and_a_literal_is_read() {
        let dynamic = read("EXECUTE format('SELECT current_setting(%L, true)', 'app.' || 'by' || 'pass') INTO v;");
        assert!(dynamic.iter().any(|f| matches!(f, Fact::Dynamic(s) if s.starts_with("format("))), "{dynamic:?}");
        assert!(dynamic.contains(&Fact::ComputedSetting), "current_setting(%L...) names no setting: {dynamic:?}");
        let literal = read("EXECUTE 'SELECT inet_client_addr()' INTO v; EXECUTE v_sql;");
        assert!(literal.contains(&Fact::Address("inet_client_addr")));
        assert!(literal.iter().any(|f| matches!(f, Fact::Dynamic(s) if s == "v_sql")), "{literal:?}");
        let trigger = read("CREATE TRIGGER g BEFORE DELETE ON t FOR EACH ROW EXECUTE FUNCTION public.guard()");
        assert!(!trigger.iter().any(|f| matches!(f, Fact::Dynamic(_))), "{trigger:?}");
    }

    #[test]
    fn settings_are_tried_identity_is_the_logins_and_the_rest_is_untried() {
        let contexts: BTreeMap<String, String> =
            [("application_name", "user"), ("cluster_name", "postmaster"), ("session_replication_role", "superuser")]
                .into_iter()
                .map(|(n, c)| (n.to_owned(), c.to_owned()))
                .collect();
        let setting = |n: &str| Fact::Setting(n.to_owned());
        assert_eq!(proof(&setting("app.bypass"), &contexts, true), Proof::Lever);
        assert_eq!(proof(&setting("application_name"), &contexts, true), Proof::Lever);
        assert_eq!(proof(&setting("cluster_name"), &contexts, true), Proof::Untried);
        assert_eq!(proof(&setting("session_replication_role"), &contexts, true), Proof::Untried);
        assert_eq!(proof(&setting("transaction_isolation"), &contexts, true), Proof::Untried);
        assert_eq!(proof(&Fact::Identity("session_user"), &contexts, true), Proof::AsTheApplication);
        assert_eq!(proof(&Fact::Identity("session_user"), &contexts, false), Proof::Untried);
        assert_eq!(proof(&setting("role"), &contexts, true), Proof::AsTheApplication);
        assert_eq!(proof(&Fact::Address("inet_client_addr"), &contexts, true), Proof::Untried);
    }
}

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

use super::dynamic::{EXECUTE, literal_end, readable, statement_at};

/// Something a text reads about its session.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Fact {
    /// A setting, by name (lower case).
    Setting(String),
    /// A setting a session may set, used otherwise than compared with literals: its name, and
    /// the use ([`super::keys`]).
    Keyed(String, String),
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
    /// When the statement runs.
    Time(&'static str),
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
    /// A built-in (or an extension's function, or a catalog view) the allow-list does not hold
    /// ([`super::allowed`]): its name, and for a view the function it is built on.
    Builtin(String),
    /// The row's own value compared with a constant ([`super::rows`]): the column, the text.
    RowValue(String, String),
}

/// Makes the fact a named function or view reads.
type Reads = fn(&'static str) -> Fact;

/// Functions (and views) that read a fact, by name.
const NAMED: &[(&str, Reads)] = &[
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
    ("now", Fact::Time),
    ("current_timestamp", Fact::Time),
    ("current_date", Fact::Time),
    ("current_time", Fact::Time),
    ("localtimestamp", Fact::Time),
    ("localtime", Fact::Time),
    ("clock_timestamp", Fact::Time),
    ("statement_timestamp", Fact::Time),
    ("transaction_timestamp", Fact::Time),
    ("timeofday", Fact::Time),
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
impl Fact {
    /// How a scenario names it to trust it (`trusted = [{ fact = "...", reason = "..." }]`).
    pub(crate) fn key(&self) -> String {
        match self {
            Fact::Setting(name) | Fact::Keyed(name, _) => name.clone(),
            Fact::ComputedSetting => "computed setting".into(),
            Fact::Identity(name) => (*name).into(),
            Fact::Address(name)
            | Fact::Started(name)
            | Fact::Activity(name)
            | Fact::Transaction(name)
            | Fact::Time(name)
            | Fact::AllSettings(name)
            | Fact::Outside(name) => (*name).into(),
            Fact::Dynamic(_) => "dynamic SQL".into(),
            Fact::Unreadable(language) => format!("language {language}"),
            Fact::TooLarge => "call graph".into(),
            Fact::Builtin(name) => name.split(" (").next().unwrap_or_default().to_owned(),
            Fact::RowValue(column, _) => column.clone(),
        }
    }

    /// What it is, in words.
    pub(crate) fn describe(&self) -> String {
        match self {
            Fact::Setting(name) => format!("the setting `{name}`"),
            Fact::Keyed(name, how) => format!(
                "the setting `{name}` and uses it otherwise than compared with literals (`{how}`), so no value the drill tries proves that door shut"
            ),
            Fact::ComputedSetting => "a setting whose name it computes at run time".into(),
            Fact::Identity(name) => format!("who the session is (`{name}`)"),
            Fact::Address(name) => format!("where the session comes from (`{name}`)"),
            Fact::Started(name) => format!("when the server or the session started (`{name}`)"),
            Fact::Activity(name) => format!("what else is connected (`{name}`)"),
            Fact::Transaction(name) => format!("the transaction's state (`{name}`)"),
            Fact::Time(name) => format!("when the statement runs (`{name}`)"),
            Fact::AllSettings(name) => format!("the session's settings all at once (`{name}`)"),
            Fact::Outside(name) => format!("the server's files or another connection (`{name}`)"),
            Fact::Dynamic(start) => format!("SQL it builds at run time (`EXECUTE {start}`), which pgdrill cannot read"),
            Fact::Unreadable(language) => format!("code in {language}, which pgdrill cannot read"),
            Fact::TooLarge => "a call graph larger than pgdrill follows".into(),
            Fact::Builtin(name) => {
                format!("`{name}`, a built-in not on pgdrill's allow-list (it may read what tells sessions apart)")
            }
            Fact::RowValue(_, how) => format!("the row's own value (`{how}`): rows the drill did not aim at may pass"),
        }
    }
}

/// `text` with its comments blanked (string literals kept).
pub(crate) fn without_comments(text: &str) -> std::borrow::Cow<'_, str> {
    COMMENT.replace_all(text, " ")
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
    let code = blank_literals(&lower);
    let scanned = with_executed(&lower, &code);
    for c in WORD.captures_iter(&scanned) {
        let word = &c[1];
        if let Some((name, fact)) = NAMED.iter().find(|(n, _)| *n == word) {
            facts.push(fact(name));
        } else if let Some(name) = IDENTITY.iter().find(|n| **n == word) {
            facts.push(Fact::Identity(name));
        }
    }
    for m in EXECUTE.find_iter(&code) {
        let end = if m.as_str().ends_with('(') { m.end() - 1 } else { m.end() };
        // The statement as written (its literals too), where the blanked text found it.
        let statement = statement_at(text.get(end..).unwrap_or_default());
        if !readable(statement) {
            let start: String = statement.chars().take(40).collect();
            facts.push(Fact::Dynamic(start.trim().to_owned()));
        }
    }
    facts.sort();
    facts.dedup();
    facts
}

/// `text` as code, lower-cased: its comments and the words of its string literals blanked (a
/// message that says `now` calls nothing), but the literals an `EXECUTE` runs, which are code.
pub(crate) fn code(text: &str) -> String {
    let lower = COMMENT.replace_all(text, " ").to_lowercase();
    with_executed(&lower, &blank_literals(&lower))
}

/// `code` (`lower` with its literals blanked) followed by the literals `lower` `EXECUTE`s.
fn with_executed(lower: &str, code: &str) -> String {
    let mut scanned = code.to_owned();
    for m in EXECUTE.find_iter(lower) {
        let trimmed = lower[m.end()..].trim_start();
        if let Some(end) = literal_end(trimmed) {
            scanned.push(' ');
            scanned.push_str(&trimmed[1..end - 1]);
        }
    }
    scanned
}

/// Whether `name` is a function or view [`read`] reads as a fact of its own (`now`,
/// `pg_stat_activity`, `session_user`).
pub(crate) fn is_named(name: &str) -> bool {
    NAMED.iter().any(|(n, _)| *n == name) || IDENTITY.contains(&name)
}

/// `text` with the content of each single-quoted literal replaced by spaces (its quotes and
/// length kept, so positions stay where they were); dollar-quoted text (a function's body) is
/// kept.
fn blank_literals(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\'' {
            if quoted && chars.peek() == Some(&'\'') {
                chars.next();
                out.push_str("  ");
                continue;
            }
            quoted = !quoted;
            out.push(c);
        } else if quoted {
            out.extend(std::iter::repeat_n(' ', c.len_utf8()));
        } else {
            out.push(c);
        }
    }
    out
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
    fn words_in_a_message_are_not_calls_and_an_executed_literal_is_code() {
        let message = read("RAISE EXCEPTION 'events are final: they cannot be changed now or ever; execute nothing';");
        assert!(message.is_empty(), "{message:?}");
        let executed = read("EXECUTE 'SELECT inet_client_addr()' INTO v;");
        assert_eq!(executed, [Fact::Address("inet_client_addr")]);
    }

    #[test]
    fn sql_built_at_run_time_is_a_fact_and_a_literal_is_read() {
        let computed = read("EXECUTE format('SELECT current_setting(%L, true)', 'app.' || 'by' || 'pass') INTO v;");
        assert_eq!(computed, [Fact::ComputedSetting], "the SQL reads, the setting's name does not");
        let literal = read("EXECUTE 'SELECT inet_client_addr()' INTO v; EXECUTE v_sql;");
        assert!(literal.contains(&Fact::Address("inet_client_addr")));
        assert!(literal.iter().any(|f| matches!(f, Fact::Dynamic(s) if s == "v_sql")), "{literal:?}");
        let joined = read("EXECUTE 'SELECT ' || v_what INTO v;");
        assert!(joined.iter().any(|f| matches!(f, Fact::Dynamic(_))), "{joined:?}");
        let table = read(
            "EXECUTE pg_catalog.format('SELECT pg_catalog.count(*) FROM %s WHERE id = %L', TG_RELID::pg_catalog.regclass, OLD.id) INTO n;",
        );
        assert!(!table.iter().any(|f| matches!(f, Fact::Dynamic(_))), "the trigger's own table and a value: {table:?}");
        let named = read("EXECUTE format('SELECT * FROM %I', v_view) INTO r;");
        assert!(named.iter().any(|f| matches!(f, Fact::Dynamic(_))), "a relation named at run time: {named:?}");
        let call = read("EXECUTE format('SELECT %I()', 'inet_client_addr') INTO r;");
        assert!(call.iter().any(|f| matches!(f, Fact::Dynamic(_))), "a function named in a placeholder: {call:?}");
        let trigger = read("CREATE TRIGGER g BEFORE DELETE ON t FOR EACH ROW EXECUTE FUNCTION public.guard()");
        assert!(!trigger.iter().any(|f| matches!(f, Fact::Dynamic(_))), "{trigger:?}");
        let fixed = read(
            "EXECUTE format('INSERT INTO audit.%I SELECT $1.*', 'log_' || TG_TABLE_NAME) USING NEW; \
             EXECUTE $q$REFRESH MATERIALIZED VIEW public.stats$q$; EXECUTE format('ANALYZE %s', TG_ARGV[0]::regclass);",
        );
        assert!(!fixed.iter().any(|f| matches!(f, Fact::Dynamic(_))), "literals and the trigger's names: {fixed:?}");
    }

    #[test]
    fn what_a_caller_passes_is_never_a_literal() {
        // Each of these runs its caller's text as the function's owner (verified on PostgreSQL 15).
        for body in [
            "BEGIN EXECUTE format('%s', '' || cmd); END",
            "DECLARE tg_stmt text := cmd; BEGIN EXECUTE format('%s', tg_stmt); END",
            "BEGIN EXECUTE $q$ $q$ || cmd; END",
            "BEGIN EXECUTE(cmd); END",
            "BEGIN EXECUTE $1; END",
            "BEGIN EXECUTE $$SELECT $$ || $1; END",
        ] {
            assert!(read(body).iter().any(|f| matches!(f, Fact::Dynamic(_))), "{body}");
        }
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

//! What code may change, read from its text: an allow-list of statements. Code run with another
//! role's powers (a `SECURITY DEFINER` function, a rule's action, a trigger's function and what
//! they call) leaves a table's rows as they were only when every statement it runs is one of:
//! a query (`SELECT`, `PERFORM`, PL/pgSQL's control and assignments), an `INSERT` (which adds
//! rows: the table's own `INSERT` triggers and rules are read too), an `UPDATE`, `DELETE` or
//! `MERGE` of another table (whose triggers and rules are read too, and which no foreign key of
//! the protected table follows with a cascading action), or a `SET` of a setting that gives no
//! power (`search_path`, a custom setting). Anything else is named as a way it may change the
//! table: DDL, `COPY`, `EXECUTE` of SQL built at run time, a `DO` block, `LOAD`, a `SET` (or
//! `set_config`) of any other setting, a volatile built-in not on [`HARMLESS`], code in a
//! language pgdrill cannot read, and a walk cut short.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use regex::Regex;

use super::Reader;
use super::dynamic::{EXECUTE, PLACEHOLDER, literal_end, readable, statement_at};
use super::facts;
use super::graph::For;

/// A statement that changes a relation: its verb, and the relation as written.
static DML: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"\b(insert\s+into|update|delete\s+from|merge\s+into|truncate(?:\s+table)?)\s+(?:only\s+)?((?:"[^"]+"|%i|[a-z_][a-z0-9_$]*)(?:\s*\.\s*(?:"[^"]+"|%i|[a-z_][a-z0-9_$]*))?)"#)
        .expect("a valid pattern")
});
/// Statements no allow-listed code runs.
/// Where a statement starts: the body's start, after a `;`, a dollar quote or a PL/pgSQL
/// keyword that opens a block.
const START: &str = r"(?:\A|;|\$[a-z0-9_]*\$|\bbegin|\batomic|\bthen|\belse|\bloop)\s*";
static OTHER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"{START}(alter|drop|create|grant|revoke|copy|load|reassign|import|security\s+label|do\s+(?:\$|language\b|'))\b"
    ))
    .expect("a valid pattern")
});
static SET: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(r"{START}set\s+(?:local\s+|session\s+)?([a-z_][a-z0-9_.]*)")).expect("a valid pattern")
});
static SET_CONFIG: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"set_config\s*\(\s*('(?:[^']|'')*')?").expect("a valid pattern"));
static RULE_HEAD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?s)^\s*create\s+rule\s.*?\sdo\s+(also\s+|instead\s+)?").expect("a valid pattern"));

/// Settings a `SET` in such code may change: they give no power over a table's rows.
const SETTINGS: &[&str] = &[
    "search_path",
    "constraints",
    "transaction",
    "statement_timeout",
    "lock_timeout",
    "client_min_messages",
    "timezone",
    "datestyle",
    "intervalstyle",
    "work_mem",
];

/// Volatile built-ins such code may call: they change no table's rows and no session's powers.
pub(crate) const HARMLESS: &[&str] = &[
    "nextval",
    "currval",
    "lastval",
    "random",
    "gen_random_uuid",
    "uuid_generate_v4",
    "uuid_generate_v1",
    "clock_timestamp",
    "current_query",
    "timeofday",
    "txid_current",
    "txid_current_if_assigned",
    "pg_current_xact_id",
    "pg_current_xact_id_if_assigned",
    "pg_notify",
    "pg_sleep",
    "pg_advisory_xact_lock",
    "pg_advisory_xact_lock_shared",
    "pg_try_advisory_xact_lock",
    "set_config",
];

/// What the code may change, as read.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Writes {
    /// The relations (bare names, lower case) its statements change, and how: their own
    /// triggers and rules run too.
    pub targets: BTreeSet<(String, Operation)>,
    /// What it runs that is not on the allow-list: each said with where.
    pub unproven: Vec<String>,
}

/// How a statement changes a relation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Operation {
    Insert,
    Update,
    Delete,
    Truncate,
}

impl Operation {
    /// What of the relation's code runs for it.
    pub(crate) fn protections(self) -> For {
        match self {
            Operation::Insert => For::Insert,
            Operation::Update => For::Update,
            Operation::Delete => For::Delete,
            Operation::Truncate => For::Change,
        }
    }

    fn verb(self) -> &'static str {
        match self {
            Operation::Insert => "inserts into",
            Operation::Update => "updates",
            Operation::Delete => "deletes from",
            Operation::Truncate => "truncates",
        }
    }
}

/// The statements of `readers` (texts as [`super::graph`] gathers them): the relations they
/// change and what they run off the allow-list. The statements an `EXECUTE` runs are read as
/// its literal holds them; SQL built at run time is not on the list.
pub(crate) fn writes(readers: &[Reader]) -> Writes {
    let mut out = Writes::default();
    for reader in readers {
        let Some(body) = body(&reader.text) else { continue };
        scan(&facts::code(&body), &facts::without_comments(&body).to_lowercase(), &reader.name, &mut out);
        let (executed, unread) = executed(&body);
        for statement in executed {
            scan(&statement, &statement, &reader.name, &mut out);
        }
        if unread {
            out.unproven.push(format!("{}: runs `EXECUTE` of SQL built at run time", reader.name));
        }
    }
    out.unproven.dedup();
    out
}

/// Reads `code` (literals blanked; `raw` with them) into `out`.
fn scan(code: &str, raw: &str, name: &str, out: &mut Writes) {
    let upsert = code.contains("do update");
    for c in DML.captures_iter(code) {
        let before = code[..c.get(0).map_or(0, |m| m.start())].trim_end();
        let previous = before.rsplit(|ch: char| !ch.is_alphanumeric() && ch != '_').next().unwrap_or_default();
        if matches!(previous, "for" | "do" | "key" | "of" | "or" | "before" | "after") {
            continue;
        }
        let operation = match c[1].split_whitespace().next().unwrap_or_default() {
            "insert" => Operation::Insert,
            "update" | "merge" => Operation::Update,
            "delete" => Operation::Delete,
            _ => Operation::Truncate,
        };
        let target = bare(&c[2]);
        if target.contains('%') {
            out.unproven.push(format!("{name}: {} a table named at run time", operation.verb()));
            continue;
        }
        if operation == Operation::Insert && upsert {
            out.targets.insert((target.clone(), Operation::Update));
        }
        out.targets.insert((target, operation));
        if operation == Operation::Truncate && code.contains("cascade") {
            out.unproven.push(format!("{name}: `TRUNCATE ... CASCADE` empties what references the table it names"));
        }
    }
    for c in OTHER.captures_iter(code) {
        let said: String = c[1].split_whitespace().collect::<Vec<_>>().join(" ").to_uppercase();
        let after = &code[c.get(1).map_or(0, |m| m.end())..];
        if said == "CREATE" && creates_a_new_table(after) {
            continue;
        }
        let said = if said.starts_with("DO") { "DO".to_owned() } else { said };
        out.unproven.push(format!("{name}: runs `{said}`"));
    }
    for c in SET.captures_iter(code) {
        let setting = &c[1];
        if !given(setting) {
            out.unproven.push(format!("{name}: sets `{setting}`"));
        }
    }
    for c in SET_CONFIG.captures_iter(raw) {
        match c.get(1).map(|m| m.as_str().trim_matches('\'').replace("''", "'")) {
            Some(setting) if given(&setting) => {}
            Some(setting) => out.unproven.push(format!("{name}: sets `{setting}` (`set_config`)")),
            None => out.unproven.push(format!("{name}: sets a setting it computes (`set_config`)")),
        }
    }
}

/// Whether a `CREATE` (what follows it: `after`) makes a new table, index or sequence, which
/// changes no row of another table (a partition of the trail included: its rows stay).
fn creates_a_new_table(after: &str) -> bool {
    let object = after
        .split_whitespace()
        .find(|w| !matches!(*w, "temp" | "temporary" | "unlogged" | "unique" | "global" | "local"));
    matches!(object, Some("table" | "index" | "sequence"))
}

/// The statements `text`'s `EXECUTE`s run, lower case, and whether any cannot be read: a
/// literal, or a `format` template whose values the code fixes or that quotes each (`%I`, `%L`:
/// what runs is the template's statement, on objects named at run time, as `%i`).
fn executed(text: &str) -> (Vec<String>, bool) {
    let lower = facts::without_comments(text).to_lowercase();
    let (mut out, mut unread) = (Vec::new(), false);
    for m in EXECUTE.find_iter(&lower) {
        let end = if m.as_str().ends_with('(') { m.end() - 1 } else { m.end() };
        let statement = statement_at(lower.get(end..).unwrap_or_default()).trim();
        if statement.starts_with("function") || statement.starts_with("procedure") {
            continue;
        }
        let template = statement
            .strip_prefix("pg_catalog.format")
            .or_else(|| statement.strip_prefix("format"))
            .map(|args| args.trim_start().trim_start_matches('('));
        let literal = template.unwrap_or(statement);
        let text = literal_end(literal).map(|end| literal[1..end - 1].replace("''", "'"));
        let quoted = |t: &str| PLACEHOLDER.captures_iter(t).all(|c| matches!(&c[2], "i" | "l" | "%"));
        match text {
            Some(t) if readable(statement) || (template.is_some() && quoted(&t)) => out.push(t),
            _ => unread = true,
        }
    }
    (out, unread)
}

/// Whether a `SET` of `setting` gives no power: one of [`SETTINGS`], or a custom setting.
fn given(setting: &str) -> bool {
    SETTINGS.contains(&setting) || setting.contains('.')
}

/// What a target's statement says, for a message: ``deletes from `audit` ``.
pub(crate) fn said(name: &str, operation: Operation) -> String {
    format!("{} `{name}`", operation.verb())
}

/// The code of a reader's text: a function's body (its `CREATE` line and attributes left out),
/// a rule's actions; a trigger's definition runs nothing of its own (its function is read).
fn body(text: &str) -> Option<String> {
    let lower = text.trim_start().to_lowercase();
    if lower.starts_with("create trigger") || lower.starts_with("create constraint trigger") {
        return None;
    }
    if lower.starts_with("create rule") {
        return Some(RULE_HEAD.replace(&lower, "").into_owned());
    }
    if lower.starts_with("create or replace function") || lower.starts_with("create or replace procedure") {
        // pg_get_functiondef: the first line, then attributes indented by a space, then the body
        // from the first line that starts in column 0 (`AS $function$`, `BEGIN ATOMIC`, `RETURN`).
        let body: Vec<&str> = text.lines().skip(1).skip_while(|l| l.starts_with(' ')).collect();
        return Some(body.join("\n"));
    }
    Some(text.to_owned())
}

static PINNED: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?im)^\s+set\s+search_path\s+to\s+(.*)$").expect("a valid pattern"));

/// The `search_path` a function's definition pins (`SET search_path TO ...`), each schema lower
/// case and unquoted; `None` where it pins none (its names resolve in its caller's).
pub(crate) fn pinned_path(definition: &str) -> Option<Vec<String>> {
    let pinned = PINNED.captures(definition)?;
    let list = pinned[1].trim();
    Some(
        list.split(',')
            .map(|s| s.trim().trim_matches(|c| c == '\'' || c == '"').to_lowercase())
            .filter(|s| !s.is_empty())
            .collect(),
    )
}

/// The relation's bare name, lower case, without quotes.
fn bare(written: &str) -> String {
    written.rsplit('.').next().unwrap_or_default().trim().trim_matches('"').to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Writes {
        writes(&[Reader { name: "f".into(), text: text.into() }])
    }

    const HEAD: &str = "CREATE OR REPLACE FUNCTION public.f(days integer)\n RETURNS void\n LANGUAGE plpgsql\n SECURITY DEFINER\n SET search_path TO 'public'\nAS $function$\n";

    #[test]
    fn statements_that_change_rows_are_read_with_their_targets() {
        let found = read(&format!(
            "{HEAD}BEGIN\n  DELETE FROM public.audit_log WHERE at < now() - days * interval '1 day';\n  INSERT INTO \"Log\" VALUES (1) ON CONFLICT (id) DO UPDATE SET n = 2;\n  UPDATE ONLY accounts SET seen = now();\n  PERFORM 1 FROM t FOR UPDATE;\nEND\n$function$"
        ));
        let targets: Vec<(String, Operation)> = found.targets.into_iter().collect();
        assert_eq!(
            targets,
            [
                ("accounts".into(), Operation::Update),
                ("audit_log".into(), Operation::Delete),
                ("log".into(), Operation::Insert),
                ("log".into(), Operation::Update),
            ]
        );
        assert!(found.unproven.is_empty(), "{:?}", found.unproven);
    }

    #[test]
    fn ddl_dynamic_sql_and_powerful_settings_are_not_proven_and_harmless_ones_are() {
        for (text, says) in [
            ("BEGIN EXECUTE 'DELETE FROM ' || t; END", "EXECUTE"),
            ("BEGIN EXECUTE pg_catalog.format('ALTER TABLE %I DISABLE TRIGGER ALL', 'audit'); END", "ALTER"),
            ("BEGIN EXECUTE format('DELETE FROM %I.%I', s, t); END", "deletes from a table named at run time"),
            ("BEGIN EXECUTE format('DELETE FROM audit WHERE %s', cond); END", "EXECUTE"),
            ("BEGIN ALTER TABLE audit DISABLE TRIGGER ALL; END", "ALTER"),
            ("BEGIN SET LOCAL session_replication_role = replica; END", "session_replication_role"),
            ("BEGIN PERFORM set_config('session_replication_role', 'replica', false); END", "session_replication_role"),
            ("BEGIN PERFORM set_config(v_name, 'on', false); END", "computes"),
            ("BEGIN DO $x$ BEGIN NULL; END $x$; END", "DO"),
            ("BEGIN TRUNCATE users CASCADE; END", "CASCADE"),
        ] {
            let found = read(&format!("{HEAD}{text}\n$function$"));
            assert!(found.unproven.iter().any(|u| u.contains(says)), "{text}: {:?}", found.unproven);
        }
        let made = read(&format!(
            "{HEAD}DECLARE part text := 'log_' || to_char(now(), 'YYYY_MM');\nBEGIN EXECUTE pg_catalog.format('CREATE TABLE IF NOT EXISTS %I (LIKE public.audit_log)', part); END\n$function$"
        ));
        assert_eq!(made, Writes::default());
        let executed = read(&format!("{HEAD}BEGIN EXECUTE 'DELETE FROM public.audit'; END\n$function$"));
        assert!(executed.targets.contains(&("audit".into(), Operation::Delete)), "{executed:?}");
        let found = read(&format!(
            "{HEAD}BEGIN\n  SET LOCAL search_path = public;\n  PERFORM set_config('app.user', 'x', true);\n  RAISE EXCEPTION 'never drop or alter: %', 'x';\nEND\n$function$"
        ));
        assert_eq!(found, Writes::default());
    }

    #[test]
    fn an_update_whose_set_is_on_its_own_line_sets_no_setting() {
        let found = read(&format!(
            "{HEAD}BEGIN\n  UPDATE public.profiles\n  SET email = 'x'\n  WHERE id = 1;\nEND\n$function$"
        ));
        assert!(found.unproven.is_empty(), "{:?}", found.unproven);
        assert!(found.targets.contains(&("profiles".into(), Operation::Update)));
    }

    #[test]
    fn the_pinned_path_is_read_from_the_definition() {
        assert_eq!(pinned_path(&format!("{HEAD}BEGIN NULL; END\n$function$")), Some(vec!["public".to_owned()]));
        assert_eq!(
            pinned_path(
                "CREATE OR REPLACE FUNCTION f()\n LANGUAGE sql\n SET search_path TO ''\nAS $function$ SELECT 1 $function$"
            ),
            Some(vec![])
        );
        assert_eq!(
            pinned_path("CREATE OR REPLACE FUNCTION f()\n LANGUAGE sql\nAS $function$ SELECT 1 $function$"),
            None
        );
    }

    #[test]
    fn a_rule_is_read_from_its_actions_and_a_trigger_definition_runs_nothing() {
        let rule = read("CREATE RULE r AS ON INSERT TO public.notes DO ALSO DELETE FROM public.audit;");
        assert!(rule.targets.contains(&("audit".into(), Operation::Delete)), "{rule:?}");
        assert!(rule.unproven.is_empty());
        let trigger = read("CREATE TRIGGER t BEFORE UPDATE ON public.audit FOR EACH ROW EXECUTE FUNCTION public.g()");
        assert_eq!(trigger, Writes::default());
    }
}

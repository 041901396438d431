//! How the code uses a setting it reads: a door can be tried only where its key is compared for
//! equality with literals (each literal is then tried, [`super::levers`]). A setting cast and
//! compared by order (`current_setting('audit.level')::int > 3`), matched by a pattern (`LIKE`,
//! `~`), hashed or passed to another function, or compared with something that is not a
//! literal, opens for values the drill never guesses: such a use is unproven, and the check
//! fails naming it unless the scenario trusts the setting.
//!
//! Read from the code as text (comments left out): a use is the `current_setting(...)` call
//! with what wraps it (`coalesce`, `nullif`, `lower`, `upper`, `btrim`, parentheses, casts,
//! JSON's `->>`), then what it is compared with. A setting stored in a PL/pgSQL variable
//! (`v := current_setting(...)`, `SELECT current_setting(...) INTO v`) is followed to each use
//! of the variable. A setting a function returns (`auth.jwt()`) is judged where its callers use
//! the call, as the setting itself ([`untryable_calls`]): compared with literals there, they are
//! tried (the levers pool every text's literals); compared with a column (`perms.role =
//! auth.jwt() ->> 'role'`), the door opens for values no code holds.

use std::sync::LazyLock;

use regex::Regex;

/// Functions that wrap a setting and keep equality with a literal tryable.
/// Functions that wrap a setting and keep equality with a literal tryable (`pg_catalog.` or not;
/// `""`: parentheses alone).
const WRAPPERS: [&str; 7] = ["coalesce", "nullif", "lower", "upper", "btrim", "trim", ""];

static CAST: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"^\s*::\s*(?:pg_catalog\s*\.\s*)?"?[a-z_][a-z0-9_ ]*"?(?:\[\])?"#).expect("a valid pattern")
});
static JSON_STEP: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\s*->>?\s*(?:'(?:[^']|'')*'|\d+)(?:\s*::\s*[a-z_]+)?").expect("a valid pattern"));
static EQUAL_LITERAL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\s*(?:=|<>|!=|is\s+(?:not\s+)?distinct\s+from)\s*(?:'(?:[^']|'')*'|true\b|false\b|null\b|-?\d+\b)")
        .expect("a valid pattern")
});
static PRESENCE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\s*is\s+(?:not\s+)?(?:null|true|false)\b").expect("a valid pattern"));
static IN_LITERALS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\s*(?:not\s+)?in\s*\(\s*'(?:[^']|'')*'(?:\s*,\s*'(?:[^']|'')*')*\s*\)").expect("a valid pattern")
});
static LITERAL_EQUALS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:'(?:[^']|'')*'|true|false|-?\d+)\s*(?:=|<>|!=|is\s+(?:not\s+)?distinct\s+from)\s*$")
        .expect("a valid pattern")
});
/// Nothing, or the alias PostgreSQL prints for a scalar subquery's one column (`AS role`).
static ALIAS: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#"^\s*(?:as\s+"?[a-z_][a-z0-9_]*"?\s*)?$"#).expect("a valid pattern"));
/// An assignment at the start of a statement (`v := `, `v = `, `v text := ` in a declaration).
static ASSIGNED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?:^|;|\bbegin|\bthen|\belse|\bloop|\bdeclare)\s*([a-z_][a-z0-9_]*)(?:\s+[a-z_][a-z0-9_.]*)?\s*:?=\s*$",
    )
    .expect("a valid pattern")
});
/// Words an assignment's pattern may take for a variable that are not one.
const NOT_VARIABLES: [&str; 12] =
    ["if", "elsif", "when", "and", "or", "not", "then", "return", "select", "where", "case", "perform"];
static SELECT_INTO: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\s*into\s+(?:strict\s+)?([a-z_][a-z0-9_]*)").expect("a valid pattern"));
static STATEMENT_START: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r";|\bbegin\b|\bthen\b|\belse\b|\bloop\b|\$[a-z_]*\$").expect("a valid pattern"));
static STATEMENT_ASSIGNMENT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^([a-z_][a-z0-9_]*)\s*:?=").expect("a valid pattern"));
/// A comparison or a pattern match in what follows a use.
static COMPARES: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"[<>=~!]|\blike\b|\bsimilar\b|\bbetween\b").expect("a valid pattern"));

/// The end of a statement, or of a SQL function's body (`$function$`).
static ENDS: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^\s*(?:;|$|\$[a-z_]*\$)").expect("a valid pattern"));

/// A use of a setting the drill cannot try all values of: the text of the use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Untryable(pub String);

/// How a text uses a value: the uses that are not an equality with literals (nor a test of
/// presence), and whether it returns the value to its caller.
#[derive(Debug, Default)]
pub(crate) struct Uses {
    pub untryable: Vec<Untryable>,
    pub returned: bool,
}

/// How `text` uses `setting`: the uses that are not an equality with literals (nor a test of
/// presence), each as its text, at most a few words around it.
pub(crate) fn uses_of_setting(text: &str, setting: &str) -> Uses {
    let call = Regex::new(&format!(
        r"(?:pg_catalog\s*\.\s*)?current_setting\s*\(\s*'{}'(?:\s*::\s*text)?\s*(?:,\s*(?:true|false)\s*)?\)",
        regex::escape(&setting.replace('\'', "''"))
    ))
    .expect("an escaped pattern");
    uses(text, &call, false)
}

/// How `text` uses the value of calls of `function` (by its bare name, any schema): a function
/// that returns a setting, whose callers' uses are the setting's.
pub(crate) fn untryable_calls(text: &str, function: &str) -> Uses {
    let call =
        Regex::new(&format!(r#"(?:\b[a-z_][a-z0-9_]*\s*\.\s*)?\b"?{}"?\s*\([^()']*\)"#, regex::escape(function)))
            .expect("an escaped pattern");
    uses(text, &call, true)
}

/// Each match of `call` in `text` (with `code_only`, none in a string literal: a message that
/// names a function calls nothing), judged.
fn uses(text: &str, call: &Regex, code_only: bool) -> Uses {
    let code = super::facts::without_comments(text).to_lowercase();
    let blanked = super::facts::code(text);
    let mut out = Uses::default();
    for m in call.find_iter(&code) {
        // Not in a literal, nor a function's own name in its definition (`CREATE OR REPLACE
        // FUNCTION auth.role()`, as the walk reads each function whole).
        let defined = ["function", "procedure"].iter().any(|w| code[..m.start()].trim_end().ends_with(w));
        if code_only && (blanked.get(m.start()..m.end()) != Some(m.as_str()) || defined) {
            continue;
        }
        judge(&code, m.start(), m.end(), 0, &mut out);
    }
    out.untryable.dedup();
    out
}

/// Judges the expression `code[start..end]` (a setting, or a variable holding one): pushes it
/// to `out` unless every use of it is tryable. `depth` bounds the variables followed.
fn judge(code: &str, start: usize, end: usize, depth: usize, out: &mut Uses) {
    let (start, end) = widen(code, start, end);
    let after = &code[end..];
    let before = &code[..start];
    if EQUAL_LITERAL.is_match(after)
        || PRESENCE.is_match(after)
        || IN_LITERALS.is_match(after)
        || LITERAL_EQUALS.is_match(before)
    {
        return;
    }
    if before.trim_end().ends_with("return") || (before.trim_end().ends_with("select") && ENDS.is_match(after)) {
        // Returned to a caller, whose uses of the call are judged as this one's.
        out.returned = true;
        return;
    }
    let variable = ASSIGNED
        .captures(before)
        .map(|c| c[1].to_owned())
        .or_else(|| SELECT_INTO.captures(after).filter(|_| in_select_list(code, start)).map(|c| c[1].to_owned()));
    if let Some(variable) = variable.filter(|v| !NOT_VARIABLES.contains(&v.as_str()) && depth < 3) {
        follow(code, &variable, end, depth + 1, out);
        return;
    }
    if concatenated(code, start, end) {
        match statement_of(code, start) {
            // A message: the decision to raise was made before it.
            Statement::Raise | Statement::Returned => return,
            // Text made of it, held in a variable: its literals are not the setting's, so the
            // variable may only go into messages and results.
            Statement::Assigned(variable) => {
                let word = Regex::new(&format!(r"\b{}\b", regex::escape(&variable))).expect("an escaped pattern");
                for m in word.find_iter(&code[end..]) {
                    let (at, to) = (end + m.start(), end + m.end());
                    if code[to..].trim_start().starts_with(":=") {
                        continue;
                    }
                    if !matches!(statement_of(code, at), Statement::Raise | Statement::Returned) {
                        out.untryable.push(Untryable(snippet(code, at, to)));
                    }
                }
                return;
            }
            Statement::Other => {}
        }
    }
    out.untryable.push(Untryable(snippet(code, start, end)));
}

/// Whether `code[start..]` is in the select list of its statement (`SELECT x INTO v`), not in
/// its `FROM` or `WHERE` (`SELECT count(*) FROM t WHERE t.role = x INTO n` stores the count).
fn in_select_list(code: &str, start: usize) -> bool {
    static CLAUSE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\b(?:from|where)\b").expect("a valid pattern"));
    let head = &code[..start];
    let cut = STATEMENT_START.find_iter(head).last().map_or(0, |m| m.end());
    !CLAUSE.is_match(&head[cut..])
}

/// Whether the use is joined to other text (`||`): a value made of it.
fn concatenated(code: &str, start: usize, end: usize) -> bool {
    code[..start].trim_end().ends_with("||") || code[end..].trim_start().starts_with("||")
}

/// What the statement holding a use does with the value it makes.
enum Statement {
    /// `RAISE ... , value`: a message.
    Raise,
    /// `RETURN value`, or a SQL function's body `SELECT value` alone.
    Returned,
    /// `v := value`.
    Assigned(String),
    Other,
}

/// The statement `code[..at]` is in, by its start (after the last `;`, `begin`, `then`, `else`,
/// `loop` or a dollar quote).
fn statement_of(code: &str, at: usize) -> Statement {
    let head = &code[..at];
    let cut = STATEMENT_START.find_iter(head).last().map_or(0, |m| m.end());
    let statement = head[cut..].trim_start();
    let rest = code[at..].split(';').next().unwrap_or_default();
    if statement.starts_with("raise") {
        return Statement::Raise;
    }
    let plain_select = statement.starts_with("select") && !rest.contains(" from ") && !rest.contains(" into ");
    if statement.starts_with("return") || (plain_select && !COMPARES.is_match(rest)) {
        return Statement::Returned;
    }
    match STATEMENT_ASSIGNMENT.captures(statement) {
        Some(c) if !NOT_VARIABLES.contains(&&c[1]) => Statement::Assigned(c[1].to_owned()),
        _ => Statement::Other,
    }
}

/// Each use of `variable` after `from`, judged as the setting it holds.
fn follow(code: &str, variable: &str, from: usize, depth: usize, out: &mut Uses) {
    let word = Regex::new(&format!(r"\b{}\b", regex::escape(variable))).expect("an escaped pattern");
    for m in word.find_iter(&code[from..]) {
        let (start, end) = (from + m.start(), from + m.end());
        // Assigned again, or the target of a `SELECT ... INTO`: not a use.
        if code[end..].trim_start().starts_with(":=") || code[..start].trim_end().ends_with("into") {
            continue;
        }
        judge(code, start, end, depth, out);
    }
}

/// `code[start..end]` widened over what keeps equality tryable around it: wrapping calls and
/// parentheses (`coalesce(..., '')`: its other arguments are tried, or judged, on their own),
/// casts, JSON steps.
fn widen(code: &str, mut start: usize, mut end: usize) -> (usize, usize) {
    loop {
        let rest = &code[end..];
        if let Some(m) = CAST.find(rest).or_else(|| JSON_STEP.find(rest)) {
            end += m.end();
            continue;
        }
        let head = code[..start].trim_end();
        // A scalar subquery of it alone, `(SELECT auth.jwt())`, as Supabase writes its policies.
        if let Some(open) = head.strip_suffix("select").map(str::trim_end).and_then(|h| h.strip_suffix('('))
            && let Some(close) = closing(code, end)
            && ALIAS.is_match(&code[end..close])
        {
            (start, end) = (open.len(), close + 1);
            continue;
        }
        let Some(open) = head.strip_suffix('(') else { break };
        let name_start =
            open.trim_end().rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.')).map_or(0, |i| i + 1);
        let name = open.trim_end()[name_start..].trim();
        // `select (x)`: the parentheses alone.
        let name = if name == "select" { "" } else { name };
        if !WRAPPERS.contains(&name.trim_start_matches("pg_catalog.")) {
            break;
        }
        let Some(close) = closing(code, end) else { break };
        // Only the parentheses around it alone, or a call's with other arguments after it.
        let inner = code[end..close].trim();
        if !(inner.is_empty() || (!name.is_empty() && inner.starts_with(','))) {
            break;
        }
        start = open.trim_end().len() - name.len();
        end = close + 1;
    }
    (start, end)
}

/// Where the parenthesis open at `from` closes (outside quotes).
fn closing(code: &str, from: usize) -> Option<usize> {
    let (mut depth, mut quoted) = (0i32, false);
    for (i, c) in code[from..].char_indices() {
        match c {
            '\'' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted && depth == 0 => return Some(from + i),
            ')' if !quoted => depth -= 1,
            _ => {}
        }
    }
    None
}

/// The use as the message shows it: the expression and a few characters after it.
fn snippet(code: &str, start: usize, end: usize) -> String {
    let tail: String = code[end..].chars().take(24).collect();
    let tail = tail.split([';', '\n']).next().unwrap_or_default();
    // Up to a parenthesis that closes one the use is inside: the excerpt's own stay balanced.
    let mut depth = 0i32;
    let cut = tail
        .char_indices()
        .find(|(_, c)| {
            depth += match c {
                '(' => 1,
                ')' => -1,
                _ => 0,
            };
            depth < 0
        })
        .map_or(tail.len(), |(at, _)| at);
    let tail = &tail[..cut];
    format!("{}{}", &code[start..end], tail).split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn judged(text: &str) -> Vec<String> {
        uses_of_setting(text, "audit.level").untryable.into_iter().map(|u| u.0).collect()
    }

    #[test]
    fn a_call_of_a_function_that_returns_a_setting_is_judged_as_the_setting() {
        let calls = |text: &str| untryable_calls(text, "jwt");
        let tryable = calls("(( SELECT (auth.jwt() ->> 'role'::text)) = 'admin'::text)");
        assert!(tryable.untryable.is_empty(), "{tryable:?}");
        let aliased = calls("(( SELECT auth.jwt() AS jwt) = '{}'::jsonb)");
        assert!(aliased.untryable.is_empty(), "{aliased:?}");
        let column = calls("select count(*) from public.perms where perms.role = (public.jwt() ->> 'role') into n;");
        assert_eq!(column.untryable.len(), 1, "{column:?}");
        assert!(column.untryable[0].0.starts_with("(public.jwt() ->> 'role')"), "{column:?}");
        let message = calls("RAISE EXCEPTION 'sign in again: jwt() expired';");
        assert!(message.untryable.is_empty() && !message.returned, "{message:?}");
        assert!(calls("BEGIN RETURN public.jwt(); END").returned);
        let defined = calls(
            "CREATE OR REPLACE FUNCTION auth.jwt()\n RETURNS jsonb\n LANGUAGE sql\nAS $function$ select 1 $function$",
        );
        assert!(defined.untryable.is_empty() && !defined.returned, "{defined:?}");
        assert!(calls("AS $$ SELECT (auth.jwt() ->> 'sub')::uuid $$").returned);
        assert!(uses_of_setting("RETURN current_setting('audit.level', true);", "audit.level").returned);
    }

    #[test]
    fn equality_with_literals_is_tryable() {
        for text in [
            "IF current_setting('audit.level', true) = 'on' THEN RETURN OLD; END IF;",
            "IF COALESCE(current_setting('audit.level', true), '') = 'yes' THEN",
            "(pg_catalog.current_setting('audit.level'::text, true) = 'enabled'::text)",
            "IF 'on' = current_setting('audit.level') THEN",
            "IF lower(current_setting('audit.level', true)) IN ('on', 'yes') THEN",
            "IF pg_catalog.lower(pg_catalog.btrim(current_setting('audit.level', true))) = 'on' THEN",
            "IF nullif(current_setting('audit.level', true), '') IS NULL THEN",
            "((current_setting('audit.level', true))::jsonb ->> 'role') = 'admin'",
            "v := current_setting('audit.level', true); IF v = 'on' THEN RETURN OLD; END IF;",
            "SELECT current_setting('audit.level', true) INTO v_level; IF v_level <> 'off' THEN",
            "RETURN current_setting('audit.level', true);",
            "RAISE EXCEPTION 'immutable (seen by %)', current_setting('audit.level') || '/' || session_user;",
            "AS $$ SELECT session_user || '/' || current_setting('audit.level') || '/' || current_user $$",
            "v := 'level ' || current_setting('audit.level', true); RAISE NOTICE '%', v; RETURN v;",
            "AS $function$ select coalesce(nullif(current_setting('audit.level', true), ''), nullif(current_setting('x', true), ''))::jsonb $function$",
        ] {
            assert!(judged(text).is_empty(), "{text}: {:?}", judged(text));
        }
    }

    #[test]
    fn order_patterns_hashes_and_columns_are_not() {
        for text in [
            "IF current_setting('audit.level', true)::int > 3 THEN RETURN OLD; END IF;",
            "IF current_setting('audit.level', true) LIKE 'adm%' THEN",
            "IF current_setting('audit.level', true) ~ '^a' THEN",
            "IF md5(current_setting('audit.level', true)) = 'c4ca4238a0b923820dcc509a6f75849b' THEN",
            "IF OLD.owner = current_setting('audit.level', true) THEN",
            "IF current_setting('audit.level', true)::numeric BETWEEN 2 AND 5 THEN",
            "IF 'x' || current_setting('audit.level', true) > 'x3' THEN",
            "v := 'level ' || current_setting('audit.level', true); IF v > 'level 3' THEN",
            "v := 'level ' || current_setting('audit.level', true); IF v = 'level 5' THEN",
            "v := current_setting('audit.level', true)::int; IF v >= 3 THEN RETURN OLD; END IF;",
        ] {
            assert!(!judged(text).is_empty(), "{text}");
        }
        let found = judged("IF current_setting('audit.level', true)::int > 3 THEN RETURN OLD; END IF;");
        assert!(found[0].starts_with("current_setting('audit.level', true)::int > 3 then"), "{found:?}");
        let found = judged("((owner)::text = (current_setting('audit.level'::text, true) || 'x'))");
        assert_eq!(found, ["current_setting('audit.level'::text, true) || 'x'"]);
    }
}

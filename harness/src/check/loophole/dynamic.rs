//! SQL an `EXECUTE` runs, as the code that runs it holds it: where the statement is (up to its
//! `;`), and whether pgdrill can read it (a literal, a `format` template whose values the code
//! fixes).

use std::sync::LazyLock;

use regex::Regex;

/// `EXECUTE` followed by a space, or by a parenthesis (`EXECUTE(v_sql)` runs `v_sql` too).
pub(super) static EXECUTE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)\bexecute(?:\s+|\s*\()").expect("a valid pattern"));
pub(super) static PLACEHOLDER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)%(?:(\d+)\$)?-?\d*([sil%])").expect("a valid pattern"));

/// The text of the statement `rest` starts (up to its `;` outside quotes), without its `INTO` or
/// `USING` clauses.
pub(super) fn statement_at(rest: &str) -> &str {
    let mut quoted = false;
    let mut end = rest.len();
    for (i, c) in rest.char_indices() {
        match c {
            '\'' => quoted = !quoted,
            ';' if !quoted => {
                end = i;
                break;
            }
            _ => {}
        }
    }
    let statement = &rest[..end];
    let lower = statement.to_lowercase();
    let cut = [" into ", "\ninto ", " using ", "\nusing "].iter().filter_map(|k| top_level_find(&lower, k)).min();
    statement[..cut.unwrap_or(statement.len())].trim()
}

/// Where `needle` first occurs in `text` outside quotes and parentheses.
fn top_level_find(text: &str, needle: &str) -> Option<usize> {
    let (mut quoted, mut depth) = (false, 0i32);
    for (i, c) in text.char_indices() {
        match c {
            '\'' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => depth -= 1,
            _ if !quoted && depth == 0 && text[i..].starts_with(needle) => return Some(i),
            _ => {}
        }
    }
    None
}

/// Whether what an `EXECUTE` runs can be read: a trigger's function (`EXECUTE FUNCTION`), a
/// literal (quoted or dollar-quoted) alone, or `format('literal', ...)` whose placeholders can
/// only put in a value (`%L`) or what is fixed ([`fixed`]: literals and the trigger's own names,
/// `TG_RELID`, `TG_TABLE_NAME`, `TG_TABLE_SCHEMA`, ...), never a call (a placeholder followed by
/// `(`). `EXECUTE $1` runs the function's first argument: a parameter is not a literal.
pub(super) fn readable(statement: &str) -> bool {
    let lower = statement.to_lowercase();
    if lower.starts_with("function") || lower.starts_with("procedure") {
        return true;
    }
    if lower.starts_with('\'') || lower.starts_with('$') {
        // A literal alone, not one joined to something else.
        return any_literal_end(statement).is_some_and(|end| statement[end..].trim().is_empty());
    }
    let Some(args) = lower.strip_prefix("pg_catalog.format").or_else(|| lower.strip_prefix("format")) else {
        return false;
    };
    let args = args.trim_start();
    let Some(inner) = args.strip_prefix('(').and_then(|a| a.strip_suffix(')')) else { return false };
    let Some(end) = literal_end(inner) else { return false };
    let template = &inner[1..end - 1];
    let rest: Vec<&str> = split_top_level(&inner[end..]).into_iter().skip(1).collect();
    let mut next = 0usize;
    for c in PLACEHOLDER.captures_iter(template) {
        let kind = c[2].to_lowercase();
        if kind == "%" {
            continue;
        }
        let index = c.get(1).and_then(|n| n.as_str().parse::<usize>().ok()).map(|n| n - 1).unwrap_or(next);
        next = index + 1;
        let after = &template[c.get(0).map_or(0, |m| m.end())..];
        if after.trim_start().starts_with('(') {
            return false;
        }
        let safe_arg = rest.get(index).is_some_and(|a| fixed(a));
        if kind != "l" && !safe_arg {
            return false;
        }
    }
    true
}

/// The trigger's own names, which its definition fixes: no caller chooses them.
const TRIGGER_NAMES: [&str; 8] =
    ["tg_name", "tg_when", "tg_level", "tg_op", "tg_relid", "tg_relname", "tg_table_name", "tg_table_schema"];

/// Whether a `format` argument is fixed: literals and the trigger's own names (`TG_TABLE_NAME`,
/// `TG_ARGV[0]`), each with casts, joined by `||`; never a variable or a parameter, which may
/// hold anything (`'' || v_sql` is not a literal).
fn fixed(argument: &str) -> bool {
    let parts = split_top_level_on(argument, "||");
    !parts.is_empty()
        && parts.iter().all(|part| {
            let part = part.trim();
            // Casts (`::pg_catalog.regclass`) change no text a caller chooses.
            let base = top_level_find(part, "::").map_or(part, |i| &part[..i]).trim();
            let lower = base.to_lowercase();
            if lower.starts_with('\'') || lower.starts_with('$') {
                return any_literal_end(base).is_some_and(|end| base[end..].trim().is_empty());
            }
            if let Some(index) = lower.strip_prefix("tg_argv[").and_then(|r| r.strip_suffix(']')) {
                return !index.is_empty() && index.trim().chars().all(|c| c.is_ascii_digit());
            }
            TRIGGER_NAMES.contains(&lower.as_str())
        })
}

/// The end of the quoted or dollar-quoted literal `text` starts with.
fn any_literal_end(text: &str) -> Option<usize> {
    literal_end(text).or_else(|| dollar_literal_end(text))
}

/// The end (one past the closing tag) of the dollar-quoted literal `text` starts with
/// (`$$...$$`, `$q$...$q$`); `$1`, a parameter, is none.
fn dollar_literal_end(text: &str) -> Option<usize> {
    let rest = text.strip_prefix('$')?;
    let tag_len = rest.find('$')?;
    let tag = &rest[..tag_len];
    let valid = tag.chars().enumerate().all(|(i, c)| c == '_' || c.is_alphabetic() || (i > 0 && c.is_ascii_digit()));
    if !valid {
        return None;
    }
    let delimiter = &text[..tag_len + 2];
    let body = tag_len + 2;
    text[body..].find(delimiter).map(|i| body + i + delimiter.len())
}

/// The end (one past the closing quote) of the string literal `text` starts with.
pub(super) fn literal_end(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    if bytes.first() != Some(&b'\'') {
        return None;
    }
    let mut i = 1;
    while i < bytes.len() {
        if bytes[i] == b'\'' {
            if bytes.get(i + 1) == Some(&b'\'') {
                i += 2;
                continue;
            }
            return Some(i + 1);
        }
        i += 1;
    }
    None
}

/// `text` split on `separator` outside quotes and parentheses.
fn split_top_level_on<'t>(text: &'t str, separator: &str) -> Vec<&'t str> {
    let (mut quoted, mut depth, mut start) = (false, 0i32, 0usize);
    let mut out = Vec::new();
    let mut i = 0;
    while i < text.len() {
        let c = text[i..].chars().next().unwrap_or(' ');
        match c {
            '\'' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => depth -= 1,
            _ if !quoted && depth == 0 && text[i..].starts_with(separator) => {
                out.push(&text[start..i]);
                i += separator.len();
                start = i;
                continue;
            }
            _ => {}
        }
        i += c.len_utf8();
    }
    out.push(&text[start..]);
    out
}

/// `text` split on its commas outside quotes and parentheses.
fn split_top_level(text: &str) -> Vec<&str> {
    let (mut quoted, mut depth, mut start) = (false, 0i32, 0usize);
    let mut out = Vec::new();
    for (i, c) in text.char_indices() {
        match c {
            '\'' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => depth -= 1,
            ',' if !quoted && depth == 0 => {
                out.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&text[start..]);
    out
}

//! What `init` reads from SQL the server prints: which setting a policy compares with which
//! column (the tenant, for `fail_closed`), which settings it only compares with a constant (a
//! flag, such as a bypass switch, never the tenant), which setting a function reads, and
//! whether a trigger's function raises. Plain functions over text: no database.
//!
//! Policy expressions are read as `pg_get_expr` prints them (every operator in parentheses,
//! casts as `::type`, names quoted where they need it): `("workspaceId" =
//! (current_setting('app.workspace_id'::text))::uuid)` compares the setting `app.workspace_id`
//! with the column `workspaceId`; `(current_setting('app.bypass_rls'::text, true) = 'on'::text)`
//! compares `app.bypass_rls` with a constant.

use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    /// A name; `quoted` when it was written in double quotes.
    Ident {
        name: String,
        quoted: bool,
    },
    Str(String),
    Num,
    Open,
    Close,
    Comma,
    Dot,
    Cast,
    Op(String),
    Other,
}

fn tokens(text: &str) -> Vec<Tok> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '\'' || c == '"' {
            let mut value = String::new();
            i += 1;
            while i < chars.len() {
                if chars[i] == c && chars.get(i + 1) == Some(&c) {
                    value.push(c);
                    i += 2;
                } else if chars[i] == c {
                    i += 1;
                    break;
                } else {
                    value.push(chars[i]);
                    i += 1;
                }
            }
            out.push(if c == '"' { Tok::Ident { name: value, quoted: true } } else { Tok::Str(value) });
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '$') {
                i += 1;
            }
            let name: String = chars[start..i].iter().collect();
            out.push(Tok::Ident { name: name.to_lowercase(), quoted: false });
        } else if c.is_ascii_digit() {
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            out.push(Tok::Num);
        } else if c == ':' && chars.get(i + 1) == Some(&':') {
            out.push(Tok::Cast);
            i += 2;
        } else if "=<>!~+-*/%^&|#@".contains(c) {
            let start = i;
            while i < chars.len() && "=<>!~+-*/%^&|#@".contains(chars[i]) {
                i += 1;
            }
            out.push(Tok::Op(chars[start..i].iter().collect()));
        } else {
            out.push(match c {
                '(' => Tok::Open,
                ')' => Tok::Close,
                ',' => Tok::Comma,
                '.' => Tok::Dot,
                _ => Tok::Other,
            });
            i += 1;
        }
    }
    out
}

/// What one side of a comparison is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Operand {
    /// A column of the policy's table (unqualified, as the server prints its own columns).
    Column(String),
    /// A literal: `'on'::text`, `true`, `1`.
    Constant,
    /// Something reading these settings.
    Settings(Vec<String>),
    Other,
}

fn is_word(tok: &Tok, word: &str) -> bool {
    matches!(tok, Tok::Ident { name, quoted: false } if name == word)
}

/// The index of the parenthesis matching the one at `open`.
fn closing(toks: &[Tok], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (i, tok) in toks.iter().enumerate().skip(open) {
        match tok {
            Tok::Open => depth += 1,
            Tok::Close => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// `toks` without outer parentheses and casts: `((x))::text` is `x`.
fn bare(mut toks: &[Tok]) -> &[Tok] {
    loop {
        if toks.first() == Some(&Tok::Open) && closing(toks, 0) == Some(toks.len() - 1) {
            toks = &toks[1..toks.len() - 1];
            continue;
        }
        let mut depth = 0i32;
        let cast = toks.iter().position(|t| {
            match t {
                Tok::Open => depth += 1,
                Tok::Close => depth -= 1,
                _ => {}
            }
            depth == 0 && *t == Tok::Cast
        });
        match cast {
            Some(at) if at > 0 => toks = &toks[..at],
            _ => return toks,
        }
    }
}

/// The settings `toks` reads: `current_setting('x.y', ...)`, and functions that read one.
fn settings_in(toks: &[Tok], functions: &BTreeMap<String, String>) -> Vec<String> {
    let mut out = Vec::new();
    for (i, tok) in toks.iter().enumerate() {
        if toks.get(i + 1) != Some(&Tok::Open) {
            continue;
        }
        let Tok::Ident { name, .. } = tok else { continue };
        if name == "current_setting" {
            if let Some(Tok::Str(setting)) = toks.get(i + 2)
                && setting.contains('.')
            {
                out.push(setting.clone());
            }
            continue;
        }
        let qualified = match (i.checked_sub(2).map(|j| &toks[j]), i.checked_sub(1).map(|j| &toks[j])) {
            (Some(Tok::Ident { name: schema, .. }), Some(Tok::Dot)) => format!("{schema}.{name}"),
            _ => name.clone(),
        };
        if let Some(setting) = functions.get(&qualified).or_else(|| functions.get(name)) {
            out.push(setting.clone());
        }
    }
    out
}

fn operand(toks: &[Tok], functions: &BTreeMap<String, String>) -> Operand {
    let toks = bare(toks);
    match toks {
        [Tok::Ident { name, quoted }] if *quoted || !matches!(name.as_str(), "true" | "false" | "null") => {
            return Operand::Column(name.clone());
        }
        [Tok::Str(_)] | [Tok::Num] | [Tok::Op(_), Tok::Num] => return Operand::Constant,
        [tok] if is_word(tok, "true") || is_word(tok, "false") => return Operand::Constant,
        _ => {}
    }
    let settings = settings_in(toks, functions);
    if settings.is_empty() { Operand::Other } else { Operand::Settings(settings) }
}

/// The operands of the comparison at `at`: to the left and right, up to the enclosing
/// parenthesis, a comma, or AND / OR.
fn sides(toks: &[Tok], at: usize) -> (&[Tok], &[Tok]) {
    let stop = |t: &Tok| *t == Tok::Comma || is_word(t, "and") || is_word(t, "or");
    let mut depth = 0i32;
    let mut start = at;
    while start > 0 {
        match &toks[start - 1] {
            Tok::Close => depth += 1,
            Tok::Open if depth == 0 => break,
            Tok::Open => depth -= 1,
            t if depth == 0 && stop(t) => break,
            _ => {}
        }
        start -= 1;
    }
    let mut depth = 0i32;
    let mut end = at + 1;
    while end < toks.len() {
        match &toks[end] {
            Tok::Open => depth += 1,
            Tok::Close if depth == 0 => break,
            Tok::Close => depth -= 1,
            t if depth == 0 && stop(t) => break,
            _ => {}
        }
        end += 1;
    }
    (&toks[start..at], &toks[at + 1..end])
}

/// What a policy expression reads from settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Reads {
    /// (setting, column): the setting compared with a column of the table, in order.
    pub tenants: Vec<(String, String)>,
    /// Settings read but never compared with a column (compared with a constant, or tested
    /// alone): flags such as a bypass switch.
    pub flags: Vec<String>,
}

/// What `expression` (as the server prints it) reads from settings; `functions` maps a
/// function's name (`schema.name` and `name`) to the setting its body reads.
pub(crate) fn reads(expression: &str, functions: &BTreeMap<String, String>) -> Reads {
    let toks = tokens(expression);
    let mut out = Reads::default();
    for (i, tok) in toks.iter().enumerate() {
        if *tok != Tok::Op("=".into()) {
            continue;
        }
        let (left, right) = sides(&toks, i);
        let pair = match (operand(left, functions), operand(right, functions)) {
            (Operand::Column(column), Operand::Settings(settings))
            | (Operand::Settings(settings), Operand::Column(column)) => Some((settings, column)),
            _ => None,
        };
        if let Some((settings, column)) = pair {
            for setting in settings {
                if !out.tenants.contains(&(setting.clone(), column.clone())) {
                    out.tenants.push((setting, column.clone()));
                }
            }
        }
    }
    for setting in settings_in(&toks, functions) {
        if !out.tenants.iter().any(|(s, _)| *s == setting) && !out.flags.contains(&setting) {
            out.flags.push(setting);
        }
    }
    out
}

/// The one custom setting a function's body reads (`current_setting('app.tenant_id', true)`),
/// `None` when it reads none or several.
pub(crate) fn function_setting(body: &str) -> Option<String> {
    let mut found = settings_in(&tokens(body), &BTreeMap::new());
    found.dedup();
    match found.as_slice() {
        [one] => Some(one.clone()),
        _ => None,
    }
}

/// Whether a PL/pgSQL body raises an error (`RAISE EXCEPTION`, `RAISE 'text'`, `RAISE
/// SQLSTATE`, a condition name, a re-raise), not only a message (`RAISE NOTICE`).
pub(crate) fn raises(body: &str) -> bool {
    let toks = tokens(body);
    toks.iter().enumerate().any(|(i, tok)| {
        is_word(tok, "raise")
            && !toks
                .get(i + 1)
                .is_some_and(|next| ["debug", "log", "info", "notice", "warning"].iter().any(|l| is_word(next, l)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenants(expression: &str) -> Vec<(String, String)> {
        reads(expression, &BTreeMap::new()).tenants
    }

    fn pair(setting: &str, column: &str) -> (String, String) {
        (setting.to_owned(), column.to_owned())
    }

    #[test]
    fn the_tenant_is_the_setting_compared_with_a_column_quoted_or_not() {
        assert_eq!(
            tenants("(\"workspaceId\" = (current_setting('app.workspace_id'::text))::uuid)"),
            [pair("app.workspace_id", "workspaceId")]
        );
        assert_eq!(
            tenants("(zone_id = (NULLIF(current_setting('caracal.zone_id'::text, true), ''::text))::uuid)"),
            [pair("caracal.zone_id", "zone_id")]
        );
        assert_eq!(
            tenants("((tenant_id)::text = current_setting('app.tenant'::text))"),
            [pair("app.tenant", "tenant_id")],
            "a cast column, the setting on the right"
        );
        assert_eq!(
            tenants("(current_setting('app.tenant'::text) = (\"Org \"\"A\"\"\")::text)"),
            [pair("app.tenant", "Org \"A\"")],
            "the setting on the left, a column with quotes in its name"
        );
    }

    #[test]
    fn a_setting_compared_with_a_constant_is_a_flag_never_the_tenant() {
        let both = reads(
            "((current_setting('app.bypass_rls'::text, true) = 'on'::text) OR (\"workspaceId\" = (current_setting('app.workspace_id'::text, true))::uuid))",
            &BTreeMap::new(),
        );
        assert_eq!(both.tenants, [pair("app.workspace_id", "workspaceId")]);
        assert_eq!(both.flags, ["app.bypass_rls"]);
        let flag = reads("(current_setting('app.bypass_rls'::text, true) = 'on'::text)", &BTreeMap::new());
        assert_eq!(flag, Reads { tenants: vec![], flags: vec!["app.bypass_rls".into()] });
        let alone = reads("(current_setting('app.is_admin'::text, true))::boolean", &BTreeMap::new());
        assert_eq!(alone.flags, ["app.is_admin"], "a setting tested alone");
        assert_eq!(reads("true", &BTreeMap::new()), Reads::default());
    }

    #[test]
    fn a_setting_in_a_subquery_compared_with_another_tables_column_is_not_the_tenant() {
        let read = reads(
            "(tenant_id IN ( SELECT m.tenant_id FROM memberships m WHERE (m.user_id = (current_setting('app.user_id'::text))::uuid)))",
            &BTreeMap::new(),
        );
        assert!(read.tenants.is_empty(), "{read:?}");
    }

    #[test]
    fn a_function_that_reads_the_setting_stands_for_it() {
        let functions = BTreeMap::from([("app.current_tenant".to_owned(), "app.tenant_id".to_owned())]);
        assert_eq!(
            reads("(tenant_id = app.current_tenant())", &functions).tenants,
            [pair("app.tenant_id", "tenant_id")]
        );
        assert_eq!(
            function_setting("SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid"),
            Some("app.tenant_id".into())
        );
        assert_eq!(function_setting("SELECT current_setting('a.b') || current_setting('c.d')"), None);
        assert_eq!(function_setting("SELECT current_setting('search_path')"), None, "not a custom setting");
    }

    #[test]
    fn a_trigger_function_raises_when_it_raises_an_error_not_a_notice() {
        assert!(raises("BEGIN RAISE EXCEPTION 'audit rows are immutable'; END;"));
        assert!(raises("begin raise 'no'; end"));
        assert!(raises("BEGIN RAISE SQLSTATE '42501'; END"));
        assert!(!raises("BEGIN RAISE NOTICE 'changed'; RETURN NEW; END"));
        assert!(!raises("BEGIN RETURN NEW; END"));
    }
}

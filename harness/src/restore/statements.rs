//! What the restore reads in a statement of a dump or globals file before it runs it: the role
//! a `CREATE`/`ALTER ROLE` or `GRANT` is about, a membership granted as another role, the table
//! a `COPY` loads. A leaf of [`super`].

/// For `CREATE ROLE x ...` / `ALTER ROLE x ...` (and USER), the verb and the role.
pub(super) fn role_statement(sql: &str) -> Option<(String, String)> {
    let mut words = sql.split_whitespace();
    let verb = words.next()?.to_ascii_lowercase();
    if verb == "grant" {
        // GRANT role TO grantee: a membership, about the grantee.
        let lower = sql.to_ascii_lowercase();
        let at = lower.rfind(" to ")?;
        let grantee = sql[at + 4..].split_whitespace().next()?.trim_end_matches(';');
        let grantee = match grantee.strip_prefix('"') {
            Some(quoted) => quoted.trim_end_matches('"').replace("\"\"", "\""),
            None => grantee.to_ascii_lowercase(),
        };
        return Some(("grant".into(), grantee));
    }
    let noun = words.next()?.to_ascii_lowercase();
    if !matches!(verb.as_str(), "create" | "alter") || !matches!(noun.as_str(), "role" | "user") {
        return None;
    }
    let name = words.next()?.trim_end_matches(';');
    let name = match name.strip_prefix('"') {
        Some(quoted) => quoted.trim_end_matches('"').replace("\"\"", "\""),
        None => name.to_ascii_lowercase(),
    };
    Some((verb, name))
}

/// A `GRANT role TO role ... GRANTED BY grantor` without its `GRANTED BY`; `None` for any other
/// statement.
pub(super) fn without_grantor(sql: &str) -> Option<String> {
    static GRANTOR: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r#"(?is)^(\s*grant\s.*?)\s+granted\s+by\s+(?:"(?:[^"]|"")+"|[a-z_][a-z0-9_$]*|current_user|session_user|current_role)\s*;?\s*$"#)
            .expect("a valid pattern")
    });
    GRANTOR.captures(sql).map(|c| format!("{};", &c[1]))
}

/// The table a `COPY name [(columns)] FROM stdin` loads, as written (quoted parts kept).
pub(super) fn copy_table(sql: &str) -> Option<&str> {
    let rest = sql.trim_start();
    let rest = rest.get(..4).filter(|w| w.eq_ignore_ascii_case("copy")).map(|_| rest[4..].trim_start())?;
    let mut quoted = false;
    for (i, c) in rest.char_indices() {
        match c {
            '"' => quoted = !quoted,
            c if !quoted && (c.is_whitespace() || c == '(') => return Some(&rest[..i]).filter(|t| !t.is_empty()),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_statements() {
        assert_eq!(role_statement("CREATE ROLE postgres;"), Some(("create".into(), "postgres".into())));
        assert_eq!(role_statement("ALTER ROLE \"App\" WITH LOGIN;"), Some(("alter".into(), "App".into())));
        assert_eq!(
            role_statement("GRANT pg_read_all_data TO app GRANTED BY postgres;"),
            Some(("grant".into(), "app".into()))
        );
        assert_eq!(role_statement("SELECT 1;"), None);
    }

    #[test]
    fn a_grant_as_another_role_is_made_without_it() {
        assert_eq!(
            without_grantor("GRANT anon TO authenticator WITH INHERIT FALSE GRANTED BY supabase_admin;").as_deref(),
            Some("GRANT anon TO authenticator WITH INHERIT FALSE;")
        );
        assert_eq!(
            without_grantor("GRANT \"Odd\" TO app GRANTED BY \"Bo\"\"ss\";").as_deref(),
            Some("GRANT \"Odd\" TO app;")
        );
        assert_eq!(without_grantor("GRANT anon TO authenticator;"), None);
        assert_eq!(without_grantor("CREATE ROLE granted;"), None);
    }

    #[test]
    fn copy_tables() {
        assert_eq!(copy_table("COPY ag_catalog.ag_label (name, graph) FROM stdin;"), Some("ag_catalog.ag_label"));
        assert_eq!(copy_table("COPY public.\"My (odd) table\" FROM stdin;"), Some("public.\"My (odd) table\""));
        assert_eq!(copy_table("copy t(a) from stdin;"), Some("t"));
        assert_eq!(copy_table("SELECT 1;"), None);
    }
}

//! Whether SQL text begins as PostgreSQL's commands do: a file that is not what its name says
//! (a README or a log renamed `.sql.gz`) fails when it is read, naming how it begins, rather than
//! on line 1 of the restore. Leaf module.
//!
//! The list is every first word of PostgreSQL's SQL commands (its manual's "SQL Commands"
//! part), so a dump pg_dump or a person wrote never meets it; `(` opens a parenthesised query.

/// The first word of each of PostgreSQL's SQL commands, upper case.
const FIRST_WORDS: &[&str] = &[
    "ABORT",
    "ALTER",
    "ANALYZE",
    "ANALYSE",
    "BEGIN",
    "CALL",
    "CHECKPOINT",
    "CLOSE",
    "CLUSTER",
    "COMMENT",
    "COMMIT",
    "COPY",
    "CREATE",
    "DEALLOCATE",
    "DECLARE",
    "DELETE",
    "DISCARD",
    "DO",
    "DROP",
    "END",
    "EXECUTE",
    "EXPLAIN",
    "FETCH",
    "GRANT",
    "IMPORT",
    "INSERT",
    "LISTEN",
    "LOAD",
    "LOCK",
    "MERGE",
    "MOVE",
    "NOTIFY",
    "PREPARE",
    "REASSIGN",
    "REFRESH",
    "REINDEX",
    "RELEASE",
    "RESET",
    "REVOKE",
    "ROLLBACK",
    "SAVEPOINT",
    "SECURITY",
    "SELECT",
    "SET",
    "SHOW",
    "START",
    "TABLE",
    "TRUNCATE",
    "UNLISTEN",
    "UPDATE",
    "VACUUM",
    "VALUES",
    "WITH",
];

/// Where SQL text begins with something no SQL command begins with: the line (1-based, counted
/// from `text`'s start) and that line's first 40 characters. `None` when it begins with a
/// command, a psql meta-command (`\`), an empty statement (`;`), or nothing but comments.
pub(crate) fn not_a_command(text: &str) -> Option<(u64, String)> {
    let mut rest = text;
    let mut line = 1u64;
    loop {
        let trimmed = rest.trim_start();
        line += rest[..rest.len() - trimmed.len()].matches('\n').count() as u64;
        rest = trimmed;
        if let Some(comment) = rest.strip_prefix("--") {
            rest = comment.split_once('\n').map_or("", |(_, after)| after);
            line += 1;
        } else if let Some(comment) = rest.strip_prefix("/*") {
            let (inside, after) = comment.split_once("*/")?;
            line += inside.matches('\n').count() as u64;
            rest = after;
        } else {
            break;
        }
    }
    let word: String = rest.chars().take_while(|c| c.is_ascii_alphabetic()).collect();
    if !word.is_empty() && word.len() == rest.len() {
        // The text ends inside its first word: a head cut short says nothing yet.
        return None;
    }
    let begins_well = rest.is_empty()
        || rest.starts_with(['\\', ';', '('])
        || (!word.is_empty()
            && !rest[word.len()..].starts_with(|c: char| c.is_alphanumeric() || c == '_')
            && FIRST_WORDS.contains(&word.to_ascii_uppercase().as_str()));
    if begins_well {
        return None;
    }
    let first_line = rest.lines().next().unwrap_or_default();
    Some((line, first_line.chars().take(40).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_comments_and_meta_commands_begin_well() {
        for sql in [
            "--\n-- PostgreSQL database dump\n--\n\nSET statement_timeout = 0;",
            "\\restrict abc\n",
            "select 1;",
            "/* a note\n over lines */ CREATE TABLE t (a int);",
            "(SELECT 1) UNION (SELECT 2);",
            ";",
            "-- only a comment",
            "",
            "SEL",
            "\n\n  WITH x AS (SELECT 1) SELECT * FROM x;",
        ] {
            assert_eq!(not_a_command(sql), None, "{sql}");
        }
    }

    #[test]
    fn text_that_is_no_command_is_named_with_its_line() {
        assert_eq!(not_a_command("# pgdrill\n\nRestore drills."), Some((1, "# pgdrill".into())));
        assert_eq!(
            not_a_command("-- a header\n\nHello, this is not SQL; at all"),
            Some((3, "Hello, this is not SQL; at all".into()))
        );
        // A word that only begins like a command.
        assert_eq!(not_a_command("SETUP the database;"), Some((1, "SETUP the database;".into())));
        assert_eq!(
            not_a_command("2026-11-29 07:00:01 UTC LOG:  started"),
            Some((1, "2026-11-29 07:00:01 UTC LOG:  started".into()))
        );
        assert_eq!(not_a_command("/* x */\n{\"json\": true}"), Some((2, "{\"json\": true}".into())));
    }
}

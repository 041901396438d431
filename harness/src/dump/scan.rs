//! What a plain dump needs from its target, learnt by reading it once before the restore:
//! extensions it creates, roles it names, settings it sets, databases it creates, and how many
//! rows each COPY block carries.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::splitter::{DumpComments, Item, Statement};

/// Everything the verify phase learnt from a plain dump.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct DumpSummary {
    pub(crate) comments: DumpComments,
    pub(crate) statements: u64,
    pub(crate) copy_blocks: u64,
    /// Rows per table the dump's data loads, the table named as the dump writes it
    /// (`public.users`): the lines of its COPY blocks, or the rows of pg_dump's `INSERT`s
    /// (`--inserts`, `--column-inserts`, `--rows-per-insert`).
    pub(crate) copy_rows: BTreeMap<String, u64>,
    /// The same rows by the database they go into, for a dump that connects to its databases
    /// (`\connect`: `pg_dumpall`, `pg_dump --create`); empty for a dump restored where it is
    /// started.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) rows_by_database: BTreeMap<String, BTreeMap<String, u64>>,
    /// Extensions the dump creates.
    pub(crate) extensions: BTreeSet<String>,
    /// Roles the dump names (owners, grantees, policy roles) and does not create itself.
    pub(crate) roles_referenced: BTreeSet<String>,
    /// Roles the dump creates (a `pg_dumpall` cluster dump or globals file).
    pub(crate) roles_created: BTreeSet<String>,
    /// Server settings the dump sets (`SET x = ...`, `set_config('x', ...)`).
    pub(crate) settings: BTreeSet<String>,
    /// Databases the dump creates (`pg_dump -C`, `pg_dumpall`).
    pub(crate) databases_created: Vec<String>,
    /// Meta-commands by name, with how often each appears.
    pub(crate) meta_commands: BTreeMap<String, u64>,
    pub(crate) lines: u64,
    /// Bytes after decompression.
    pub(crate) bytes: u64,
    /// The kinds of pg_dump's entries the dump holds (`TABLE`, `TABLE DATA`, ...: a plain dump's
    /// `-- Name: ...; Type: ...` comments, an archive's table of contents).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub(crate) entry_kinds: BTreeSet<String>,
}

impl DumpSummary {
    /// Roles that must exist on the target before the restore.
    pub(crate) fn roles_needed(&self) -> BTreeSet<String> {
        self.roles_referenced.difference(&self.roles_created).cloned().collect()
    }

    /// The rows per table the dump loads into `database`: those after its `\connect` in a dump
    /// that connects to its databases, else all of them.
    pub(crate) fn rows_in(&self, database: &str) -> BTreeMap<String, u64> {
        if self.rows_by_database.is_empty() {
            return self.copy_rows.clone();
        }
        self.rows_by_database.get(database).cloned().unwrap_or_default()
    }

    /// Adds what another read of the same dump found: an archive's COPY data, read by pgdrill,
    /// to the rest of its SQL, written by pg_restore.
    pub(crate) fn add_copies(&mut self, other: &DumpSummary) {
        self.statements += other.statements;
        self.copy_blocks += other.copy_blocks;
        self.bytes += other.bytes;
        for (table, rows) in &other.copy_rows {
            *self.copy_rows.entry(table.clone()).or_default() += rows;
        }
        self.entry_kinds.extend(other.entry_kinds.iter().cloned());
    }

    /// Total rows across all COPY blocks.
    pub(crate) fn total_rows(&self) -> u64 {
        self.copy_rows.values().sum()
    }

    /// What the dump holds (a schema, its data, both), by the kinds of its entries; none when it
    /// has no pg_dump entries to tell by.
    pub(crate) fn content(&self) -> Option<super::Content> {
        super::Content::of(&self.entry_kinds)
    }
}

/// Builds a [`DumpSummary`] from the items of a plain dump.
#[derive(Default)]
pub(crate) struct Scanner {
    summary: DumpSummary,
    copy_target: Option<String>,
    /// The database the last `\connect` named.
    database: Option<String>,
}

impl Scanner {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn note(&mut self, item: &Item) {
        match item {
            Item::Statement(statement) => {
                self.summary.statements += 1;
                if let Some(entry) = &statement.entry
                    && !self.summary.entry_kinds.contains(&entry.kind)
                {
                    self.summary.entry_kinds.insert(entry.kind.clone());
                }
                self.note_statement(statement);
            }
            Item::Meta { command, args, .. } => {
                *self.summary.meta_commands.entry(command.clone()).or_default() += 1;
                if matches!(command.as_str(), "connect" | "c") {
                    self.database = connect_database(args);
                }
            }
            Item::CopyData(_) => {}
            Item::CopyEnd { rows, .. } => {
                if let Some(table) = self.copy_target.take() {
                    self.add_rows(table, *rows);
                }
            }
        }
    }

    pub(crate) fn finish(mut self, comments: &DumpComments, lines: u64, bytes: u64) -> DumpSummary {
        self.summary.comments = comments.clone();
        self.summary.lines = lines;
        self.summary.bytes = bytes;
        self.summary
    }

    fn add_rows(&mut self, table: String, rows: u64) {
        if let Some(database) = &self.database {
            let into = self.summary.rows_by_database.entry(database.clone()).or_default();
            *into.entry(table.clone()).or_default() += rows;
        }
        *self.summary.copy_rows.entry(table).or_default() += rows;
    }

    fn note_statement(&mut self, statement: &Statement) {
        // Cheap test on the first word before tokenizing: most statements need nothing.
        let head = statement.sql.get(..8).unwrap_or(&statement.sql).to_ascii_lowercase();
        let interesting = ["create", "alter", "grant", "revoke", "set", "select", "copy", "insert"]
            .iter()
            .any(|w| head.starts_with(w));
        if !interesting {
            return;
        }
        let tokens = tokenize(&statement.sql);
        let words: Vec<&str> = tokens.iter().map(|t| t.word.as_str()).collect();
        let s = &mut self.summary;
        match words.as_slice() {
            ["copy", ..] if statement.copy_from_stdin => {
                s.copy_blocks += 1;
                self.copy_target = Some(qualified_name_text(&tokens[1..]));
            }
            ["create", "extension", "if", "not", "exists", name, ..] | ["create", "extension", name, ..] => {
                s.extensions.insert((*name).to_owned());
            }
            ["insert", "into", ..] if is_table_data(statement) => {
                if let Some((table, rows)) = insert_rows(&tokens) {
                    self.add_rows(table, rows);
                }
            }
            ["create", "role" | "user" | "group", name, ..] => {
                s.roles_created.insert((*name).to_owned());
            }
            ["create", "database", name, ..] => s.databases_created.push((*name).to_owned()),
            ["create", "policy", ..] => {
                if let Some(to) = words.iter().position(|w| *w == "to") {
                    add_roles(&mut s.roles_referenced, &words[to + 1..], &["using", "with"]);
                }
            }
            ["alter", "default", "privileges", "for", "role" | "user", rest @ ..] => {
                add_roles(&mut s.roles_referenced, rest, &["in", "grant", "revoke"]);
                if let Some(to) = words.iter().rposition(|w| *w == "to" || *w == "from") {
                    add_roles(&mut s.roles_referenced, &words[to + 1..], &["with", "cascade", "restrict"]);
                }
            }
            ["alter", ..] => {
                if let Some(i) = words.windows(2).position(|w| w == ["owner", "to"]) {
                    add_roles(&mut s.roles_referenced, &words[i + 2..], &[]);
                }
            }
            ["grant", rest @ ..] => {
                if let Some(to) = words.iter().rposition(|w| *w == "to") {
                    add_roles(&mut s.roles_referenced, &words[to + 1..], &["with", "granted"]);
                    if !rest.contains(&"on") {
                        // GRANT role TO role: the granted roles must exist too.
                        add_roles(&mut s.roles_referenced, &words[1..to], &[]);
                    }
                }
            }
            ["revoke", rest @ ..] => {
                if let Some(from) = words.iter().rposition(|w| *w == "from") {
                    add_roles(&mut s.roles_referenced, &words[from + 1..], &["granted", "cascade", "restrict"]);
                    if !rest.contains(&"on") {
                        add_roles(&mut s.roles_referenced, &words[1..from], &[]);
                    }
                }
            }
            ["set", "session", "authorization", role, ..] => {
                add_roles(&mut s.roles_referenced, &[role], &[]);
            }
            ["set", "role", role, ..] => add_roles(&mut s.roles_referenced, &[role], &[]),
            // `SET app.tenant = ...` is a custom setting, which any server accepts.
            ["set", "session" | "local", name, rest @ ..] | ["set", name, rest @ ..] if rest.first() != Some(&".") => {
                note_setting(s, name)
            }
            ["select", ..] => {
                for window in tokens.windows(3) {
                    if window[0].word == "set_config" && window[1].word == "(" && window[2].is_string {
                        note_setting(s, &window[2].word);
                    }
                }
            }
            _ => {}
        }
    }
}

/// A statement of a `TABLE DATA` entry: the rows pg_dump wrote (as INSERTs with `--inserts`).
fn is_table_data(statement: &Statement) -> bool {
    statement.entry.as_ref().is_some_and(|e| e.kind == "TABLE DATA")
}

/// The table of `INSERT INTO name [(columns)] VALUES (...), (...);` and its rows (the value
/// lists at the top level); `None` for an INSERT whose rows cannot be counted from its text
/// (`INSERT ... SELECT`).
fn insert_rows(tokens: &[Token]) -> Option<(String, u64)> {
    let table = qualified_name_text(tokens.get(2..)?);
    let mut depth = 0i32;
    let mut values = false;
    let mut rows = 0u64;
    let mut previous = "";
    for token in &tokens[2..] {
        let keyword = token.is_ident && !token.raw.starts_with('"');
        match (keyword, token.is_string, token.word.as_str()) {
            (false, false, "(") => {
                rows += u64::from(values && depth == 0);
                depth += 1;
            }
            (false, false, ")") => depth -= 1,
            (true, _, "values") if depth == 0 && !values => {
                values = true;
                // `INSERT INTO t DEFAULT VALUES`: one row (of a table with no columns, say).
                rows += u64::from(previous == "default");
            }
            (true, _, "select") if depth == 0 && !values => return None,
            _ => {}
        }
        previous = if keyword { token.word.as_str() } else { "" };
    }
    (values && !table.is_empty()).then_some((table, rows))
}

fn note_setting(s: &mut DumpSummary, name: &str) {
    // SQL-standard spellings of settings, and SETs that are not settings at all.
    let name = match name {
        "time" => "timezone",
        "names" => "client_encoding",
        "schema" => "search_path",
        "transaction" | "characteristics" | "constraints" => return,
        other => other,
    };
    // Custom settings (`app.tenant`) are accepted by any server.
    if !name.contains('.') && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        s.settings.insert(name.to_owned());
    }
}

/// Adds the comma-separated role names in `words` up to the first of `stop` (or `;`).
fn add_roles(into: &mut BTreeSet<String>, words: &[&str], stop: &[&str]) {
    for word in words {
        if *word == ";" || stop.contains(word) {
            break;
        }
        if *word == "," || *word == "(" || *word == ")" || *word == "=" {
            continue;
        }
        if matches!(*word, "public" | "current_user" | "session_user" | "current_role" | "group") {
            continue;
        }
        into.insert((*word).to_owned());
    }
}

/// A table name as `[schema.]name` in SQL form, from COPY's tokens: identifiers joined by
/// dots, up to what follows the name (a column list, `FROM`), as written (quotes kept).
fn qualified_name_text(tokens: &[Token]) -> String {
    let mut out = String::new();
    let mut want_ident = true;
    for token in tokens {
        match (want_ident, token.word.as_str()) {
            (false, ".") => out.push('.'),
            (true, _) if token.is_ident => out.push_str(&token.raw),
            _ => break,
        }
        want_ident = !want_ident;
    }
    out
}

/// The database a `\connect` argument list names: a plain name, a quoted name, or a
/// `dbname=...` connection string; options such as `-reuse-previous=on` are skipped.
pub(crate) fn connect_database(args: &str) -> Option<String> {
    let mut rest = args.trim();
    while rest.starts_with('-') {
        rest = rest.split_once(char::is_whitespace).map(|(_, r)| r.trim_start()).unwrap_or("");
    }
    let word = if let Some(quoted) = rest.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = quoted.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    out.push('"');
                    continue;
                }
                break;
            }
            out.push(c);
        }
        out
    } else {
        rest.split_whitespace().next()?.to_owned()
    };
    if let Some(i) = word.find("dbname=") {
        let value = &word[i + 7..];
        let value = match value.strip_prefix('\'') {
            Some(v) => v.split('\'').next().unwrap_or(""),
            None => value.split_whitespace().next().unwrap_or(""),
        };
        return (!value.is_empty()).then(|| value.to_owned());
    }
    (!word.is_empty() && word != "-").then_some(word)
}

/// A token of a statement: identifiers folded to lower case unless quoted, strings unquoted.
#[derive(Debug, Clone, PartialEq)]
struct Token {
    word: String,
    raw: String,
    is_ident: bool,
    is_string: bool,
}

fn tokenize(sql: &str) -> Vec<Token> {
    let b = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c == b'-' && b.get(i + 1) == Some(&b'-') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if c == b'/' && b.get(i + 1) == Some(&b'*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                    depth += 1;
                    i += 2;
                } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if c == b'"' || c == b'\'' {
            let start = i;
            let mut text = String::new();
            i += 1;
            while i < b.len() {
                if b[i] == c {
                    if b.get(i + 1) == Some(&c) {
                        text.push(c as char);
                        i += 2;
                        continue;
                    }
                    i += 1;
                    break;
                }
                let ch = sql[i..].chars().next().unwrap_or('\u{fffd}');
                text.push(ch);
                i += ch.len_utf8();
            }
            out.push(Token { word: text, raw: sql[start..i].to_owned(), is_ident: c == b'"', is_string: c == b'\'' });
        } else if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'$' || b[i] >= 0x80) {
                i += 1;
            }
            let raw = &sql[start..i];
            out.push(Token { word: raw.to_lowercase(), raw: raw.to_owned(), is_ident: true, is_string: false });
        } else {
            let ch = sql[i..].chars().next().unwrap_or('\u{fffd}');
            let text = ch.to_string();
            out.push(Token { word: text.clone(), raw: text, is_ident: false, is_string: false });
            i += ch.len_utf8();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dump::splitter::Splitter;

    fn scan(text: &str) -> DumpSummary {
        let mut splitter = Splitter::new(text.as_bytes());
        let mut scanner = Scanner::new();
        while let Some(item) = splitter.next_item().unwrap() {
            scanner.note(&item);
        }
        scanner.finish(splitter.comments(), splitter.lines_read(), text.len() as u64)
    }

    #[test]
    fn learns_what_the_dump_needs() {
        let s = scan(concat!(
            "SET transaction_timeout = 0;\nSET client_encoding = 'UTF8';\n",
            "SELECT pg_catalog.set_config('search_path', '', false);\n",
            "CREATE EXTENSION IF NOT EXISTS vector WITH SCHEMA public;\nCREATE EXTENSION age;\n",
            "CREATE ROLE plur_app;\nALTER ROLE plur_app WITH LOGIN;\n",
            "ALTER TABLE public.t OWNER TO \"Owner Role\";\n",
            "GRANT SELECT,INSERT ON TABLE public.t TO plur_app, reporting WITH GRANT OPTION;\n",
            "GRANT ALL ON SCHEMA public TO PUBLIC;\nGRANT pg_read_all_data TO auditor;\n",
            "REVOKE ALL ON TABLE public.t FROM legacy;\n",
            "CREATE POLICY p ON public.t AS RESTRICTIVE FOR SELECT TO tenant_reader USING (true);\n",
            "ALTER DEFAULT PRIVILEGES FOR ROLE migrator IN SCHEMA public GRANT SELECT ON TABLES TO plur_app;\n",
            "SET SESSION AUTHORIZATION 'importer';\nSET app.tenant = 'x';\n",
            "CREATE DATABASE plur WITH TEMPLATE = template0;\n",
            "COPY public.\"Users\" (id) FROM stdin;\n1\n2\n\\.\n",
            "COPY public.datdba_only  FROM stdin;\n\n\n\\.\n",
            "COPY \"odd \"\"schema\"\"\".\"tbl with spaces\" (\"col one\", b) FROM stdin;\n1\t2\n\\.\n",
            "COPY \"public\".\"Ünïcode\"FROM stdin;\n1\n\\.\n",
        ));
        let data = |name: &str| format!("-- Data for Name: {name}; Type: TABLE DATA; Schema: public; Owner: app\n");
        let inserts = scan(&format!(
            "{}INSERT INTO public.t VALUES (1, '(x)', ARRAY[(2)]);\nINSERT INTO public.t VALUES (2, 'a''b', NULL);\n\
             {}INSERT INTO public.\"m s\" (\"values\", b) VALUES (1, 2), (3, (4));\n\
             {}INSERT INTO public.datdba_only DEFAULT VALUES;\nINSERT INTO public.datdba_only DEFAULT VALUES;\n\
             {}INSERT INTO public.s SELECT 1;\nINSERT INTO public.elsewhere VALUES (1);\n",
            data("t"),
            data("m s"),
            data("datdba_only"),
            data("s"),
        ));
        let counted: Vec<(&str, u64)> = inserts.copy_rows.iter().map(|(t, n)| (t.as_str(), *n)).collect();
        assert_eq!(inserts.entry_kinds, ["TABLE DATA".to_owned()].into(), "the kinds of pg_dump's entries");
        assert_eq!(inserts.content(), Some(crate::dump::Content::DataOnly));
        assert_eq!(s.content(), None, "no pg_dump entry to tell by");
        assert_eq!(
            counted,
            [("public.\"m s\"", 2), ("public.datdba_only", 2), ("public.elsewhere", 1), ("public.t", 2)],
            "an INSERT ... SELECT cannot be counted from its text"
        );
        assert_eq!(s.extensions, ["age", "vector"].map(String::from).into());
        assert_eq!(
            s.roles_needed(),
            [
                "Owner Role",
                "auditor",
                "importer",
                "legacy",
                "migrator",
                "pg_read_all_data",
                "reporting",
                "tenant_reader"
            ]
            .map(String::from)
            .into()
        );
        assert!(s.roles_referenced.contains("plur_app"));
        assert_eq!(s.settings, ["client_encoding", "search_path", "transaction_timeout"].map(String::from).into());
        assert_eq!(s.databases_created, vec!["plur".to_owned()]);
        assert_eq!(s.copy_rows.get("public.\"Users\""), Some(&2));
        // A table with no columns: no column list, two spaces before FROM.
        assert_eq!(s.copy_rows.get("public.datdba_only"), Some(&2));
        assert_eq!(s.copy_rows.get("\"odd \"\"schema\"\"\".\"tbl with spaces\""), Some(&1));
        assert_eq!(s.copy_rows.get("\"public\".\"Ünïcode\""), Some(&1));
        assert_eq!(s.copy_blocks, 4);
        assert_eq!(s.total_rows(), 6);
    }
}

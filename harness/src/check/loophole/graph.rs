//! The code a table's protections run, gathered whole: the triggers that fire for an operation
//! (with their `WHEN` conditions), the rules on it, the policies for a command, on the table and
//! every partition or child under it, and the login event triggers (PostgreSQL 17: they run at
//! every login of the application, before any of its statements, and can set what its session
//! is by what they read about it); then every function they reach, and every function those
//! reach, to the end of the call graph. A function is reached through `pg_depend` (what a
//! policy's expression, a rule's action, a SQL-standard body or an operator records) and through
//! the names its body calls (PL/pgSQL and SQL bodies written as strings record nothing there);
//! a view a body reads is followed into its definition. Built-in functions (in `pg_catalog`) and
//! those of an extension are PostgreSQL's and the extension's, not the backup's: they are where
//! the walk stops, and [`super::facts`] knows which of them read a fact. A function in a
//! language pgdrill cannot read (anything but SQL and PL/pgSQL) is named as such.
//!
//! Read in pgdrill's own session, which pins `search_path` to `pg_catalog`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use regex::Regex;
use sqlx::PgConnection;

use super::Reader;
use super::allowed::{self, Unvetted};
use super::facts;

/// A function's row of [`FUNCTIONS_SQL`].
type Function = (i64, String, String, String, bool, String, String);

/// The walk stops after this many functions (a backup could make the graph as large as it likes).
const MAX_FUNCTIONS: usize = 256;

/// What the protections are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum For {
    /// Reads under row-level security: SELECT policies, and rules on SELECT.
    Read,
    /// An INSERT: its triggers, rules and policies.
    Insert,
    /// Changing or erasing rows: UPDATE, DELETE and TRUNCATE triggers, rules and policies.
    Change,
    /// The same, by a role row security does not apply to (BYPASSRLS, or the table's owner
    /// where it is not forced): no policy is read, as none runs.
    ChangeBypassingRls,
    /// An UPDATE alone: its triggers, rules and policies (a statement's plan says which).
    Update,
    /// A DELETE alone.
    Delete,
}

impl For {
    /// `tgtype` bits of the triggers that fire (INSERT 4, DELETE 8, UPDATE 16, TRUNCATE 32).
    fn trigger_bits(self) -> i32 {
        match self {
            For::Read => 0,
            For::Insert => 4,
            For::Change | For::ChangeBypassingRls => 8 | 16 | 32,
            For::Update => 16,
            For::Delete => 8,
        }
    }

    /// `pg_rewrite.ev_type` of the rules that apply (1 SELECT, 2 UPDATE, 3 INSERT, 4 DELETE).
    fn rule_events(self) -> &'static [&'static str] {
        match self {
            For::Read => &[],
            For::Insert => &["3"],
            For::Change | For::ChangeBypassingRls => &["2", "4"],
            For::Update => &["2"],
            For::Delete => &["4"],
        }
    }

    /// Whether it changes rows (where a SELECT policy only narrows the rows a statement reads).
    fn writes(self) -> bool {
        matches!(self, For::Change | For::ChangeBypassingRls | For::Update | For::Delete)
    }

    /// `pg_policy.polcmd` of the policies that apply (`*` every command).
    fn policy_commands(self) -> &'static [&'static str] {
        match self {
            For::Read => &["r", "*"],
            For::Insert => &["a", "*"],
            For::Change => &["w", "d", "*", "r"],
            For::ChangeBypassingRls => &[],
            For::Update => &["w", "*", "r"],
            For::Delete => &["d", "*", "r"],
        }
    }
}

/// The functions an error's context names (`PL/pgSQL function public.guard() line 3 at RAISE`),
/// by their bare names: the code that refused.
pub(crate) fn refused_by(contexts: &[&str]) -> Vec<String> {
    let mut names = Vec::new();
    for context in contexts {
        for part in context.split("function ").skip(1) {
            let name = part.split(['(', ' ', '\n']).next().unwrap_or_default().rsplit('.').next().unwrap_or_default();
            let name = name.trim_matches('"').to_owned();
            if !name.is_empty() && !names.contains(&name) {
                names.push(name);
            }
        }
    }
    names
}

/// The table and every partition or inheritance child under it.
const TREE_SQL: &str = "WITH RECURSIVE tree(relid) AS ( \
       SELECT $1::pg_catalog.regclass::pg_catalog.oid \
       UNION SELECT i.inhrelid FROM pg_catalog.pg_inherits i JOIN tree ON i.inhparent OPERATOR(pg_catalog.=) tree.relid) \
     SELECT tree.relid::pg_catalog.int8 FROM tree";

/// The protections of the tables `$1`: `(kind, name, text, object's oid, catalog of the object,
/// whether it only narrows)`: a SELECT policy where `$6` (a write). A restrictive policy does
/// not: where it is what isolates the tenants, a setting that loosens it opens their rows.
const STARTS_SQL: &str = "\
SELECT 'trigger', t.tgname::pg_catalog.text, pg_catalog.pg_get_triggerdef(t.oid), t.tgfoid::pg_catalog.int8, 0::pg_catalog.int8, false \
  FROM pg_catalog.pg_trigger t JOIN pg_catalog.pg_proc f ON f.oid OPERATOR(pg_catalog.=) t.tgfoid \
 WHERE t.tgrelid::pg_catalog.int8 OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.int8[]) \
   AND NOT t.tgisinternal AND t.tgenabled OPERATOR(pg_catalog.=) ANY ('{O,A}'::pg_catalog.\"char\"[]) \
   AND (t.tgtype::pg_catalog.int4 OPERATOR(pg_catalog.&) $2) OPERATOR(pg_catalog.<>) 0 \
   AND ((t.tgtype::pg_catalog.int4 OPERATOR(pg_catalog.&) 66) OPERATOR(pg_catalog.<>) 0 \
        OR f.proname::pg_catalog.text OPERATOR(pg_catalog.=) ANY ($5::pg_catalog.text[])) \
UNION ALL \
SELECT 'rule', r.rulename::pg_catalog.text, pg_catalog.pg_get_ruledef(r.oid), 0, r.oid::pg_catalog.int8, false \
  FROM pg_catalog.pg_rewrite r WHERE r.ev_class::pg_catalog.int8 OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.int8[]) \
   AND r.rulename OPERATOR(pg_catalog.<>) '_RETURN' AND r.ev_enabled OPERATOR(pg_catalog.<>) 'D' \
   AND r.ev_type::pg_catalog.text OPERATOR(pg_catalog.=) ANY ($3::pg_catalog.text[]) \
UNION ALL \
SELECT 'policy', p.polname::pg_catalog.text, \
       pg_catalog.concat_ws(E'\\n', pg_catalog.pg_get_expr(p.polqual, p.polrelid), pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid)), \
       0, p.oid::pg_catalog.int8, p.polcmd OPERATOR(pg_catalog.=) 'r' AND $6 \
  FROM pg_catalog.pg_policy p WHERE p.polrelid::pg_catalog.int8 OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.int8[]) \
   AND p.polcmd::pg_catalog.text OPERATOR(pg_catalog.=) ANY ($4::pg_catalog.text[]) \
UNION ALL \
SELECT 'login event trigger', e.evtname::pg_catalog.text, '', e.evtfoid::pg_catalog.int8, 0::pg_catalog.int8, false \
  FROM pg_catalog.pg_event_trigger e WHERE e.evtevent OPERATOR(pg_catalog.=) 'login' AND e.evtenabled OPERATOR(pg_catalog.<>) 'D' \
ORDER BY 1, 2";

/// The functions objects `$2` of catalog `$1` depend on: directly, or through an operator.
const DEPENDS_SQL: &str = "SELECT d.objid::pg_catalog.int8, \
       CASE WHEN d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass THEN d.refobjid ELSE o.oprcode::pg_catalog.oid END::pg_catalog.int8 \
  FROM pg_catalog.pg_depend d \
  LEFT JOIN pg_catalog.pg_operator o ON d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_operator'::pg_catalog.regclass AND o.oid OPERATOR(pg_catalog.=) d.refobjid \
 WHERE d.classid OPERATOR(pg_catalog.=) $1::pg_catalog.regclass AND d.objid::pg_catalog.int8 OPERATOR(pg_catalog.=) ANY ($2::pg_catalog.int8[]) \
   AND d.refclassid OPERATOR(pg_catalog.=) ANY (ARRAY['pg_catalog.pg_proc'::pg_catalog.regclass, 'pg_catalog.pg_operator'::pg_catalog.regclass])";

/// Functions `$1`: name, language, definition, whether PostgreSQL or an extension owns it, its
/// bare name and its volatility.
const FUNCTIONS_SQL: &str = "SELECT p.oid::pg_catalog.int8, p.oid::pg_catalog.regprocedure::pg_catalog.text, l.lanname::pg_catalog.text, \
       CASE WHEN p.prokind OPERATOR(pg_catalog.=) ANY ('{f,p}'::pg_catalog.\"char\"[]) THEN pg_catalog.pg_get_functiondef(p.oid) ELSE COALESCE(p.prosrc, '') END, \
       n.nspname OPERATOR(pg_catalog.=) ANY ('{pg_catalog,information_schema}'::pg_catalog.name[]) \
         OR EXISTS (SELECT 1 FROM pg_catalog.pg_depend e WHERE e.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass \
                      AND e.objid OPERATOR(pg_catalog.=) p.oid AND e.deptype OPERATOR(pg_catalog.=) 'e'), \
       p.proname::pg_catalog.text, p.provolatile::pg_catalog.text \
  FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_language l ON l.oid OPERATOR(pg_catalog.=) p.prolang \
  JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) p.pronamespace \
 WHERE p.oid::pg_catalog.int8 OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.int8[])";

/// The backup's functions called by a name of `$1`, and its views named by a word of `$2`, outside
/// `pg_catalog` (a function of an extension is skipped when visited).
const NAMED_SQL: &str = "SELECT 'function', p.oid::pg_catalog.int8, '' FROM pg_catalog.pg_proc p \
  JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) p.pronamespace \
 WHERE p.proname::pg_catalog.text OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.text[]) \
   AND n.nspname OPERATOR(pg_catalog.<>) ALL ('{pg_catalog,information_schema}'::pg_catalog.name[]) \
UNION ALL \
SELECT 'view', c.oid::pg_catalog.int8, c.oid::pg_catalog.regclass::pg_catalog.text || E'\\n' || pg_catalog.pg_get_viewdef(c.oid) \
  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace \
 WHERE c.relkind OPERATOR(pg_catalog.=) ANY ('{v,m}'::pg_catalog.\"char\"[]) \
   AND c.relname::pg_catalog.text OPERATOR(pg_catalog.=) ANY ($2::pg_catalog.text[]) \
   AND n.nspname OPERATOR(pg_catalog.<>) ALL ('{pg_catalog,information_schema}'::pg_catalog.name[])";

/// The built-in that runs the same C code as the internal-language function `$1` (the most
/// volatile, if several do): its name and volatility.
const INTERNAL_SQL: &str = "SELECT b.proname::pg_catalog.text, b.provolatile::pg_catalog.text FROM pg_catalog.pg_proc b \
  JOIN pg_catalog.pg_proc f ON f.prosrc OPERATOR(pg_catalog.=) b.prosrc AND f.prolang OPERATOR(pg_catalog.=) b.prolang \
 WHERE f.oid::pg_catalog.int8 OPERATOR(pg_catalog.=) $1 AND b.pronamespace OPERATOR(pg_catalog.=) 'pg_catalog'::pg_catalog.regnamespace \
 ORDER BY b.provolatile OPERATOR(pg_catalog.=) 'v' DESC, b.provolatile OPERATOR(pg_catalog.=) 's' DESC LIMIT 1";

/// The backup's operators whose symbol `$1` holds, by the function each runs: a PL/pgSQL body
/// records none of the operators it uses. An extension's are its own (the restore compares its
/// members with a fresh `CREATE EXTENSION`'s).
const OPERATORS_SQL: &str = "SELECT o.oprcode::pg_catalog.oid::pg_catalog.int8 FROM pg_catalog.pg_operator o \
  JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) o.oprnamespace \
 WHERE o.oprname::pg_catalog.text OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.text[]) \
   AND n.nspname OPERATOR(pg_catalog.<>) ALL ('{pg_catalog,information_schema}'::pg_catalog.name[]) \
   AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e WHERE e.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_operator'::pg_catalog.regclass \
                     AND e.objid OPERATOR(pg_catalog.=) o.oid AND e.deptype OPERATOR(pg_catalog.=) 'e')";

/// The functions of the casts the backup added (a cast between built-in types, or to one of its
/// own, through a function of its own), not an extension's: a body that casts may run any of them.
const CASTS_SQL: &str = "SELECT c.castfunc::pg_catalog.int8 FROM pg_catalog.pg_cast c \
  JOIN pg_catalog.pg_proc p ON p.oid OPERATOR(pg_catalog.=) c.castfunc \
  JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) p.pronamespace \
 WHERE n.nspname OPERATOR(pg_catalog.<>) ALL ('{pg_catalog,information_schema}'::pg_catalog.name[]) \
   AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e WHERE e.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_cast'::pg_catalog.regclass \
                     AND e.objid OPERATOR(pg_catalog.=) c.oid AND e.deptype OPERATOR(pg_catalog.=) 'e')";

/// The functions a view's definition records, by the view's `_RETURN` rule.
const VIEW_FUNCTIONS_SQL: &str = "SELECT d.refobjid::pg_catalog.int8 FROM pg_catalog.pg_rewrite r \
  JOIN pg_catalog.pg_depend d ON d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_rewrite'::pg_catalog.regclass AND d.objid OPERATOR(pg_catalog.=) r.oid \
 WHERE r.ev_class::pg_catalog.int8 OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.int8[]) \
   AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass";

static NAME: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"(?i)\b([a-z_][a-z0-9_$]*)\b").expect("a valid pattern"));
static OPERATOR: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"[-+*/<>=~!@#%^&|`?]+").expect("a valid pattern"));

/// Every text the protections of `table` for `what` run, each named by how it is reached
/// (``trigger `guard` → public.allowed() → public.mode()``), and the names of the functions
/// pgdrill cannot read. Of the triggers, those that fire before the row is written (or instead
/// of it) can let a statement through; one that fires after can only refuse it, so it is read
/// when a refusal names its function (`refused_by`, from the error's context).
pub(crate) async fn gather(
    conn: &mut PgConnection,
    table: &str,
    what: For,
    refused_by: &[String],
) -> sqlx::Result<Gathered> {
    let mut walk = Walk::default();
    walk.start(conn, table, what, refused_by).await?;
    walk.finish(conn).await
}

/// Every text a statement runs through: the protections of each table it reads or writes (for
/// what it does there: [`gather`]'s, none refused), the backup's functions, operators, casts and
/// views its own text names, and all they reach. The statement itself is not a reader: what it
/// asks is what the scenario asks.
pub(crate) async fn gather_statement(
    conn: &mut PgConnection,
    statement: &str,
    tables: &[(String, For)],
) -> sqlx::Result<Gathered> {
    let mut walk = Walk::default();
    for (table, what) in tables {
        walk.start(conn, table, *what, &[]).await?;
    }
    let label = "the statement".to_owned();
    for f in walk.named(conn, statement, &label).await? {
        walk.queue(f, &label);
    }
    walk.finish(conn).await
}

/// Every text some code runs: `texts` (a rule's action, read as they are) and the functions
/// `functions` (each with how it is reached), and all they reach, as [`gather`] walks it.
pub(crate) async fn gather_code(
    conn: &mut PgConnection,
    texts: &[Reader],
    functions: &[(i64, String)],
) -> sqlx::Result<Gathered> {
    let mut walk = Walk::default();
    for reader in texts {
        walk.read(conn, reader.clone()).await?;
        for f in walk.named(conn, &reader.text, &reader.name).await? {
            walk.queue(f, &reader.name);
        }
    }
    for (f, label) in functions {
        walk.queue(*f, label);
    }
    walk.finish(conn).await
}

/// What [`gather`] found.
#[derive(Debug, Clone, Default)]
pub(crate) struct Gathered {
    pub readers: Vec<Reader>,
    /// Functions in a language pgdrill cannot read: how each is reached, and its language.
    pub unreadable: Vec<(String, String)>,
    /// Built-ins, extensions' functions and catalog views the allow-list does not hold.
    pub unvetted: Vec<Unvetted>,
    /// Whether the walk stopped at [`MAX_FUNCTIONS`].
    pub truncated: bool,
    /// Readers whose uses of settings partly or wholly only narrow what the rest lets through
    /// ([`super::narrowing`]), by name: the text left that decides (empty: none of it).
    pub deciding: BTreeMap<String, String>,
}

impl Gathered {
    /// The text of `reader` whose uses of settings are keys to a door: all of it, but what
    /// only narrows ([`Gathered::deciding`]).
    pub(crate) fn deciding<'a>(&'a self, reader: &'a Reader) -> &'a str {
        self.deciding.get(&reader.name).map_or(&reader.text, String::as_str)
    }

    /// Takes the conjuncts of each policy that narrow beside the comparison of `tenant` out of
    /// what decides ([`super::narrowing::beside_tenant`]): fail-closed reads prove that comparison.
    pub(crate) fn narrow_beside(&mut self, tenant: &str) {
        for reader in self.readers.iter().filter(|r| r.name.starts_with("policy ")) {
            let narrowed = super::narrowing::beside_tenant(self.deciding(reader), tenant);
            self.deciding.insert(reader.name.clone(), narrowed);
        }
    }
}

#[derive(Default)]
struct Walk {
    readers: Vec<Reader>,
    unreadable: Vec<(String, String)>,
    unvetted: Vec<Unvetted>,
    /// Functions to visit, with the path they were reached by.
    pending: Vec<(i64, String)>,
    seen: BTreeSet<i64>,
    views: BTreeSet<i64>,
    /// The functions of the backup's casts, read once.
    casts: Option<Vec<i64>>,
    truncated: bool,
    deciding: BTreeMap<String, String>,
}

impl Walk {
    /// Takes in the protections of `table` for `what`: its triggers, rules and policies (and the
    /// login event triggers), each a reader, and queues the functions they reach.
    async fn start(
        &mut self,
        conn: &mut PgConnection,
        table: &str,
        what: For,
        refused_by: &[String],
    ) -> sqlx::Result<()> {
        let tree: Vec<i64> = sqlx::query_scalar(TREE_SQL).bind(table).fetch_all(&mut *conn).await?;
        let events: Vec<&str> = what.rule_events().to_vec();
        let commands: Vec<&str> = what.policy_commands().to_vec();
        let starts: Vec<(String, String, String, i64, i64, bool)> = sqlx::query_as(STARTS_SQL)
            .bind(&tree)
            .bind(what.trigger_bits())
            .bind(&events)
            .bind(&commands)
            .bind(refused_by)
            .bind(what.writes())
            .fetch_all(&mut *conn)
            .await?;
        for (kind, name, text, function, object, narrows) in starts {
            let label = format!("{kind} `{name}`");
            if narrows {
                self.deciding.insert(label.clone(), String::new());
            }
            self.read(conn, Reader { name: label.clone(), text: text.clone() }).await?;
            let mut next: Vec<i64> = Vec::new();
            if function != 0 {
                next.push(function);
            }
            let catalog = match kind.as_str() {
                "rule" => Some("pg_catalog.pg_rewrite"),
                "policy" => Some("pg_catalog.pg_policy"),
                _ => None,
            };
            if let Some(catalog) = catalog {
                let deps: Vec<(i64, i64)> =
                    sqlx::query_as(DEPENDS_SQL).bind(catalog).bind(vec![object]).fetch_all(&mut *conn).await?;
                next.extend(deps.into_iter().map(|(_, f)| f));
            }
            next.extend(self.named(conn, &text, &label).await?);
            for f in next {
                self.queue(f, &label);
            }
        }
        Ok(())
    }

    /// Walks what is queued to the end, and says what was found.
    async fn finish(mut self, conn: &mut PgConnection) -> sqlx::Result<Gathered> {
        self.run(conn).await?;
        Ok(Gathered {
            readers: self.readers,
            unreadable: self.unreadable,
            unvetted: self.unvetted,
            truncated: self.truncated,
            deciding: self.deciding,
        })
    }

    fn queue(&mut self, function: i64, path: &str) {
        if self.seen.insert(function) {
            self.pending.push((function, path.to_owned()));
        }
    }

    /// Visits every pending function, breadth first, until none is left.
    async fn run(&mut self, conn: &mut PgConnection) -> sqlx::Result<()> {
        while !self.pending.is_empty() {
            if self.seen.len() > MAX_FUNCTIONS {
                self.truncated = true;
                break;
            }
            let batch: Vec<(i64, String)> = std::mem::take(&mut self.pending);
            let paths: BTreeMap<i64, String> = batch.iter().cloned().collect();
            let oids: Vec<i64> = paths.keys().copied().collect();
            let found: Vec<Function> = sqlx::query_as(FUNCTIONS_SQL).bind(&oids).fetch_all(&mut *conn).await?;
            let deps: Vec<(i64, i64)> =
                sqlx::query_as(DEPENDS_SQL).bind("pg_catalog.pg_proc").bind(&oids).fetch_all(&mut *conn).await?;
            for (oid, name, language, text, mut builtin, mut bare, mut volatility) in found {
                let path = format!("{} → {name}", paths.get(&oid).map(String::as_str).unwrap_or_default());
                if !builtin && language == "internal" {
                    // PostgreSQL's own C code under the backup's name (a range type's multirange
                    // constructor): judged as the built-in of that code, whatever it declares.
                    let same: Option<(String, String)> =
                        sqlx::query_as(INTERNAL_SQL).bind(oid).fetch_optional(&mut *conn).await?;
                    if let Some((b, v)) = same {
                        (builtin, bare, volatility) = (true, b, v);
                    }
                }
                if builtin {
                    // PostgreSQL's or an extension's: not read, judged by the allow-list. One the
                    // text names is also a fact of its own there; one reached through an operator
                    // or under another name is not, so it is listed whatever its name.
                    if !allowed::allowed(&bare, &volatility) {
                        self.unvetted.push(Unvetted { name: bare, path });
                    }
                    continue;
                }
                if !matches!(language.as_str(), "sql" | "plpgsql") {
                    self.unreadable.push((path, language));
                    continue;
                }
                self.read(conn, Reader { name: path.clone(), text: text.clone() }).await?;
                let mut next: Vec<i64> = deps.iter().filter(|(o, _)| *o == oid).map(|(_, f)| *f).collect();
                next.extend(self.named(conn, &text, &path).await?);
                for f in next {
                    self.queue(f, &path);
                }
            }
        }
        Ok(())
    }

    /// Takes `reader` into the readers, with the built-ins and catalog views its code uses that
    /// the allow-list does not hold.
    async fn read(&mut self, conn: &mut PgConnection, reader: Reader) -> sqlx::Result<()> {
        // A login event trigger starts the walk of every table: read once.
        if self.readers.iter().any(|r| r.name == reader.name && r.text == reader.text) {
            return Ok(());
        }
        let found = allowed::unvetted_in(conn, &facts::code(&reader.text), &reader.name).await?;
        for u in found {
            if !self.unvetted.iter().any(|seen| seen.name == u.name) {
                self.unvetted.push(u);
            }
        }
        self.readers.push(reader);
        Ok(())
    }

    /// The backup's functions `text` calls by name, runs as an operator's or a cast's; the
    /// views it names are read into the
    /// readers on the way (with the functions their definitions record).
    async fn named(&mut self, conn: &mut PgConnection, text: &str, path: &str) -> sqlx::Result<Vec<i64>> {
        // As code: a message that names a function (`'use purge_old() for retention'`) calls
        // nothing; the literals an EXECUTE runs are code.
        let code = facts::code(text);
        let called = allowed::called_names(&code);
        let words: BTreeSet<String> = NAME.captures_iter(&code).map(|c| c[1].to_lowercase()).collect();
        let called: Vec<String> = called.into_iter().collect();
        let words: Vec<String> = words.into_iter().collect();
        let found: Vec<(String, i64, String)> =
            sqlx::query_as(NAMED_SQL).bind(&called).bind(&words).fetch_all(&mut *conn).await?;
        let mut functions = Vec::new();
        for (kind, oid, text) in found {
            if kind == "function" {
                functions.push(oid);
            } else if self.views.insert(oid) {
                let label = format!("{path} → view {}", text.lines().next().unwrap_or_default());
                self.read(conn, Reader { name: label, text }).await?;
                let recorded: Vec<i64> =
                    sqlx::query_scalar(VIEW_FUNCTIONS_SQL).bind(vec![oid]).fetch_all(&mut *conn).await?;
                functions.extend(recorded);
            }
        }
        let symbols: BTreeSet<String> = OPERATOR.find_iter(&code).map(|m| m.as_str().to_owned()).collect();
        let symbols: Vec<String> = symbols.into_iter().collect();
        let operators: Vec<i64> = sqlx::query_scalar(OPERATORS_SQL).bind(&symbols).fetch_all(&mut *conn).await?;
        functions.extend(operators);
        if code.contains("::") || code.contains("cast") {
            if self.casts.is_none() {
                self.casts = Some(sqlx::query_scalar(CASTS_SQL).fetch_all(&mut *conn).await?);
            }
            functions.extend(self.casts.iter().flatten().copied());
        }
        Ok(functions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_function_that_refused_is_read_from_the_errors_context() {
        let context = "PL/pgSQL function public.ledger_immutable() line 3 at RAISE\nSQL function \"Guard\" statement 1";
        assert_eq!(refused_by(&[context]), ["ledger_immutable", "Guard"]);
        assert!(refused_by(&[]).is_empty());
    }
}

//! The scenario `init` writes: its header and one block per check, each explained in comments,
//! in a fixed order and sorted within, so the same backup always gives the same text.

use std::collections::BTreeMap;

use super::inventory::{GraphFound, IndexFound, Inventory, PartitionWindow, RoleFound};
use crate::journal::{Found, Preset};
use crate::pg::quote_ident_if_needed;

/// What the scenario says before its checks.
#[derive(Debug, Clone, Default)]
pub(crate) struct Header {
    pub name: String,
    /// The backup's file or folder name.
    pub file_name: String,
    /// What it is: `plain SQL, gzip`, `custom-format archive`, ...
    pub what: String,
    /// The output file's name, for the run command.
    pub output_name: String,
    /// The backup, relative to the scenario file.
    pub source_path: String,
    pub wal_archive: Option<String>,
    pub database: String,
    /// A physical backup's other databases, not drilled.
    pub other_databases: Vec<String>,
    pub globals: Globals,
    /// Roles the dump names that no globals file makes.
    pub restore_roles: Vec<String>,
    pub physical: bool,
    /// The target's major, when `init` was given one (`--version`).
    pub version: Option<u32>,
}

/// The globals file beside the backup, relative to the scenario file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) enum Globals {
    #[default]
    None,
    /// Named for the backup (or given): applied.
    Set(String),
    /// Named for another backup of the folder whose name starts the same: written commented.
    Near(String),
}

/// One check of the scenario, with what it proves.
#[derive(Debug, Clone, Default)]
pub(crate) struct Block {
    /// What it checks and what to tighten, one comment line each.
    pub about: Vec<String>,
    /// Its TOML, from its `[checks.<kind>]` header on; empty for a comment-only block.
    pub body: Vec<String>,
    /// Why it is written commented out: it did not pass on the backup's own restore.
    pub disabled: Option<String>,
    /// Lines proposed on top of `body`, a guess (`fail_closed`): proven with it, and written
    /// commented out, with why, when the check passes without them only.
    pub optional: Vec<String>,
    /// Why `optional` is written commented out.
    pub optional_disabled: Option<String>,
    /// Where in `body` the optional lines go (before a sub-table's header); default: the end.
    pub optional_at: Option<usize>,
}

impl Block {
    pub(super) fn new(about: &[&str], body: Vec<String>) -> Block {
        Block { about: about.iter().map(|s| (*s).to_owned()).collect(), body, ..Block::default() }
    }

    /// Whether it is a check to run (not a comment only).
    pub(crate) fn is_check(&self) -> bool {
        !self.body.is_empty()
    }

    /// Its TOML, with its optional lines in place or without them.
    pub(crate) fn lines(&self, optional: bool) -> Vec<String> {
        let at = self.optional_at.unwrap_or(self.body.len()).min(self.body.len());
        let mut out = self.body[..at].to_vec();
        if optional {
            out.extend(self.optional.iter().cloned());
        }
        out.extend(self.body[at..].iter().cloned());
        out
    }
}

/// A TOML string.
pub(crate) fn string(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}

/// A TOML key: bare where TOML allows, else quoted.
pub(super) fn key(text: &str) -> String {
    if !text.is_empty() && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        text.to_owned()
    } else {
        string(text)
    }
}

pub(super) fn list(items: &[String]) -> String {
    format!("[{}]", items.iter().map(|i| string(i)).collect::<Vec<_>>().join(", "))
}

pub(super) fn inline(pairs: &[(String, String)]) -> String {
    if pairs.is_empty() {
        return "{}".into();
    }
    format!("{{ {} }}", pairs.iter().map(|(k, v)| format!("{} = {v}", key(k))).collect::<Vec<_>>().join(", "))
}

/// What the dump carried, for the row counts' comment.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct DumpRows {
    pub tables: usize,
    pub rows: u64,
}

/// Every block, in the scenario's order.
pub(crate) fn blocks(inventory: &Inventory, dump: Option<DumpRows>) -> Vec<Block> {
    let mut out = Vec::new();
    if !inventory.extensions.is_empty() {
        let mut body = vec!["[checks.extensions]".to_owned()];
        body.extend(inventory.extensions.iter().map(|(name, version)| format!("{} = {}", key(name), string(version))));
        out.push(Block::new(
            &[
                "The extensions the backup installs, each at least at the version it has (preflight also",
                "requires them available on the target before the restore starts).",
            ],
            body,
        ));
    }
    out.extend(inventory.journals.iter().map(journal));
    if !inventory.other_journals.is_empty() {
        let first = &inventory.other_journals[0];
        out.push(Block {
            about: vec![
                format!("Named like a migration journal, read by no preset: {}.", inventory.other_journals.join(", ")),
                "If one is your runner's, check its newest entry (the column holding the version, and".into(),
                "what orders the journal, newest last):".into(),
                "[[checks.schema_version]]".into(),
                format!("table = {}", string(first)),
                "column = \"name\"".into(),
                "order_by = \"id\"".into(),
                "expected = \"...\"".into(),
            ],
            ..Block::default()
        });
    }
    out.push(row_counts(inventory, dump));
    if !inventory.indexes.is_empty() {
        out.push(indexes(&inventory.indexes));
    }
    if !inventory.triggers.is_empty() {
        out.push(triggers(&inventory.triggers));
    }
    out.extend(super::rls::blocks(inventory));
    out.extend(inventory.append_only.iter().map(|found| super::append_only::block(found, inventory)));
    out.push(public_grants(&inventory.public_grants));
    out.extend(inventory.roles.iter().map(role));
    out.extend(inventory.partitions.iter().map(partitions));
    if !inventory.schemas.is_empty() {
        out.push(Block::new(
            &[
                "Every schema the backup holds survives the restore, and no sequence is behind its",
                "column (the next insert would collide). To compare each schema's tables, enums and",
                "sequences too, capture a baseline of this restore (`pgdrill baseline --from-drill`),",
                "name it at the top (`baseline = \"...\"`) and set `baseline = true` here.",
            ],
            vec!["[checks.schemas]".into(), format!("schemas = {}", list(&inventory.schemas))],
        ));
    }
    out.extend(inventory.graphs.iter().map(graph));
    out.push(Block {
        about: [
            "What the backup cannot say is yours to add (an editor with taplo completes each",
            "kind's keys from the schema named on the first line):",
            "- [objectives] rto and rpo: how long a restore may take, how old a backup may be",
            "- each role's ceiling: `forbidden_schemas`, `login = false` for roles that must not log in",
            "- [[checks.rls]] `fail_closed` where no policy compares a setting with a column",
            "- [[checks.append_only]]: tables only ever appended to whose grants and triggers do not say so",
            "- [[checks.sql]]: the queries that say the data is right",
            "- [checks.amcheck]: no corruption in heap pages and btree indexes",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect(),
        ..Block::default()
    });
    out
}

fn journal(found: &Found) -> Block {
    let preset = found.preset;
    let journal = preset.journal();
    let failed = journal
        .failure
        .as_ref()
        .map(|f| format!(", and no migration is recorded as {}", journal.failure_about(f)))
        .unwrap_or_default();
    let scope = match (&found.scope, preset.scope_column()) {
        (Some(scope), Some(column)) => format!(" for {column} `{scope}`"),
        _ => String::new(),
    };
    let mut about = vec![format!(
        "The migration journal `{}`, read as {}'s{scope}: its newest migration is the backup's{failed}.",
        journal.table,
        preset.as_str()
    )];
    let folder = match preset {
        Preset::Django => format!("path/to/{}/migrations", found.scope.as_deref().unwrap_or("app")),
        Preset::Alembic => "path/to/alembic".into(),
        Preset::Prisma => "path/to/prisma/migrations".into(),
        Preset::Drizzle => "path/to/drizzle".into(),
        Preset::Liquibase => "path/to/db.changelog-master.xml".into(),
        Preset::Sqitch => "path/to/sqitch.plan".into(),
        _ => "path/to/migrations".into(),
    };
    about.push("After a release, raise `expected`, or read it from the migrations the code ships".into());
    about.push(format!("with: `expected_from = \"{folder}\"` in its place."));
    if preset == Preset::Liquibase {
        about.push("(Liquibase moves a changeset it re-runs to the newest row; the changelog's order".into());
        about.push("decides with `expected_from`.)".into());
    }
    let mut body = vec!["[[checks.schema_version]]".into(), format!("preset = {}", string(preset.as_str()))];
    if let (Some(scope), Some(column)) = (&found.scope, preset.scope_column()) {
        body.push(format!("{column} = {}", string(scope)));
    }
    body.push(format!("expected = {}", string(&found.newest)));
    Block { about, body, ..Block::default() }
}

fn row_counts(inventory: &Inventory, dump: Option<DumpRows>) -> Block {
    match dump {
        Some(dump) if dump.tables == 0 => Block {
            about: vec!["The dump carries no rows (a schema-only dump): there are no row counts to check.".into()],
            ..Block::default()
        },
        Some(dump) => Block::new(
            &[
                &format!(
                    "Every table holds the rows its COPY block in the dump carried ({} tables, {} rows).",
                    dump.tables, dump.rows
                ),
                "Floors of your own (`tables = { \"public.users\" = 40 }`, with a `tolerance`) hold",
                "for the next backups too; `allow_growth = true` after migrations that add rows.",
            ],
            vec!["[checks.row_counts]".into(), "expect_from_dump = true".into()],
        ),
        None => {
            let mut body = vec![
                "[checks.row_counts]".to_owned(),
                "allow_growth = true".to_owned(),
                "[checks.row_counts.tables]".to_owned(),
            ];
            body.extend(inventory.row_counts.iter().map(|(table, rows)| format!("{} = {rows}", string(table))));
            Block::new(
                &[
                    "Rows per table, as the recovery found them (a base backup has no dump to compare",
                    "with): no table holds fewer. Recovery runs to the end of the WAL archive, which a",
                    "live server keeps adding to, so more rows pass; with a fixed `[recovery]` target,",
                    "`allow_growth = false` makes the counts exact.",
                ],
                body,
            )
        }
    }
}

fn indexes(found: &[IndexFound]) -> Block {
    let mut body = vec!["[checks.indexes]".to_owned(), "expect = [".to_owned()];
    for index in found {
        let mut pairs = vec![
            ("name".to_owned(), string(&index.name)),
            ("table".to_owned(), string(&index.table)),
            ("method".to_owned(), string(&index.method)),
        ];
        if let Some(opclass) = &index.opclass {
            pairs.push(("opclass".into(), string(opclass)));
        }
        if index.unique {
            pairs.push(("unique".into(), "true".into()));
        }
        body.push(format!("  {},", inline(&pairs)));
    }
    body.push("]".into());
    Block::new(
        &[
            "Every index of the backup's tables, with its access method and its operator class",
            "where that is not its type's default: each exists and is valid (a build that failed",
            "leaves an invalid one). A partition's indexes are its parent's, made on it when it is",
            "attached: they are left out.",
        ],
        body,
    )
}

fn triggers(found: &BTreeMap<String, Vec<String>>) -> Block {
    let mut body = vec!["[checks.triggers]".to_owned()];
    body.extend(found.iter().map(|(table, names)| format!("{} = {}", key(table), list(names))));
    Block::new(
        &[
            "The triggers of each table that has any, exactly: one lost (an audit trail no longer",
            "written, a guard no longer refusing), disabled or added fails.",
        ],
        body,
    )
}

fn public_grants(found: &[(String, String)]) -> Block {
    let rows: Vec<String> =
        found.iter().map(|(object, privilege)| format!("[{}, {}]", string(object), string(privilege))).collect();
    let expect =
        if rows.is_empty() { "expect_rows = []".to_owned() } else { format!("expect_rows = [{}]", rows.join(", ")) };
    Block::new(
        &[
            "What PUBLIC holds on the backup's tables, views and sequences, exactly: a grant to",
            "PUBLIC is a grant to every role, present and future, so one added fails here.",
        ],
        vec![
            "[[checks.sql]]".into(),
            "name = \"privileges of PUBLIC\"".into(),
            format!("query = {}", string(super::inventory::PUBLIC_GRANTS_SQL)),
            expect,
        ],
    )
}

fn role(found: &RoleFound) -> Block {
    let shown = quote_ident_if_needed(&found.name);
    let mut body = vec!["[[checks.roles]]".to_owned(), format!("role = {}", string(&shown))];
    if !found.usage.is_empty() {
        let usage: Vec<String> = found.usage.iter().map(|s| quote_ident_if_needed(s)).collect();
        body.push(format!("usage = {}", list(&usage)));
    }
    if !found.connect {
        body.push("connect = false".into());
    }
    if !found.login {
        body.push("login = false".into());
    }
    let mut optional = Vec::new();
    if !found.tables.is_empty() || !found.usage.is_empty() {
        optional.push("exact = true".to_owned());
    }
    if !found.unreached.is_empty() {
        let schemas: Vec<String> = found.unreached.iter().map(|s| quote_ident_if_needed(s)).collect();
        optional.push(format!("forbidden_schemas = {}", list(&schemas)));
    }
    let optional_at = Some(body.len());
    if !found.tables.is_empty() {
        body.push("[checks.roles.tables]".into());
        body.extend(
            found
                .tables
                .iter()
                .map(|(table, privileges)| format!("{} = {}", string(table), string(&privileges.join(", ")))),
        );
    }
    let about = vec![
        format!("`{shown}`, named in the backup's grants: what it holds as the backup grants it (CONNECT,"),
        "USAGE on these schemas, these privileges on these tables, directly, via PUBLIC or a".into(),
        "membership), and with `exact` nothing more on any table of these schemas. The check also".into(),
        "proves the ceiling of every runtime role: no elevated attribute, owns nothing, CREATE".into(),
    ];
    let mut about = about;
    if found.unreached.is_empty() {
        about.push("nowhere, no elevated membership (`accept` one it has by design, with a `reason`). Which".into());
        about.push("schemas it must not reach (`forbidden_schemas`) is yours to add.".into());
    } else {
        about.push("nowhere, no elevated membership (`accept` one it has by design, with a `reason`).".into());
        about.push("`forbidden_schemas`: the schemas it reaches nothing in (no USAGE, no table), where `exact`".into());
        about.push("does not look: a privilege granted there fails too.".into());
    }
    Block { about, body, optional, optional_at, ..Block::default() }
}

fn partitions(found: &PartitionWindow) -> Block {
    let table = &found.table;
    if let Some(why) = &found.unsupported {
        return Block {
            about: vec![format!("`{table}` {why}: no partitions check is written for it.")],
            ..Block::default()
        };
    }
    let Some((back, ahead)) = found.window else {
        return Block {
            about: vec![
                format!("`{table}` has no partition for this month ({}): no window of months holds on", found.month),
                "this backup, so none is written. Once the partition job keeps up:".into(),
                "[[checks.partitions]]".into(),
                format!("table = {}", string(table)),
                "months_back = 0".into(),
                "months_ahead = 1".into(),
            ],
            ..Block::default()
        };
    };
    let mut body = vec![
        "[[checks.partitions]]".to_owned(),
        format!("table = {}", string(table)),
        format!("months_back = {back}"),
        format!("months_ahead = {ahead}"),
    ];
    if found.default_partition {
        body.push("default_partition = true".into());
    }
    Block {
        about: vec![
            format!(
                "`{table}` has a partition for every month from {back} before this one ({}) to {ahead}",
                found.month
            ),
            "after it. Each month that passes without a new partition shrinks the window ahead:".into(),
            "narrow it to what the partition job keeps (the months the application writes to).".into(),
        ],
        body,
        ..Block::default()
    }
}

fn graph(found: &GraphFound) -> Block {
    let mut body = vec!["[[checks.graphs]]".to_owned(), format!("graph = {}", string(&found.name))];
    let about = match &found.counts {
        Ok((vertices, edges)) => {
            let pairs = |counts: &BTreeMap<String, i64>| -> Vec<(String, String)> {
                counts.iter().map(|(label, n)| (label.clone(), n.to_string())).collect()
            };
            if !vertices.is_empty() {
                body.push(format!("vertices = {}", inline(&pairs(vertices))));
            }
            if !edges.is_empty() {
                body.push(format!("edges = {}", inline(&pairs(edges))));
            }
            vec![
                format!("The Apache AGE graph `{}` answers Cypher, with as many vertices and edges per", found.name),
                "label as the backup holds (counted with Cypher, not from the label tables).".into(),
            ]
        }
        Err(why) => {
            vec![format!("The Apache AGE graph `{}` answers Cypher. On this restore it did not: {why}", found.name)]
        }
    };
    Block { about, body, ..Block::default() }
}

/// The whole scenario.
pub(crate) fn render(header: &Header, blocks: &[Block]) -> String {
    let mut out = String::new();
    let mut line = |text: &str| {
        out.push_str(text.trim_end());
        out.push('\n');
    };
    let intro = format!(
        "A restore drill of `{}` ({}), written by `pgdrill init` from what the backup itself holds. \
         Every check below passed on a restore of it; one that did not is written commented out, \
         with why. Run it: `pgdrill run {}`.",
        header.file_name, header.what, header.output_name
    );
    // taplo (Even Better TOML) reads the first line: the editor checks and completes the file.
    line(&format!("#:schema {}", crate::scenario::SCHEMA_URL));
    for text in wrap(&intro, 96) {
        line(&format!("# {text}"));
    }
    line(&format!("name = {}", string(&header.name)));
    line(&format!("description = {}", string(&format!("{}: the checks its own restore implies", header.file_name))));
    line("");
    line("[source]");
    line(&format!("path = {}   # relative to this file", string(&header.source_path)));
    if let Some(wal) = &header.wal_archive {
        line(&format!("wal_archive = {}", string(wal)));
    }
    line("");
    line("[target]");
    line(&format!("database = {}", string(&header.database)));
    if let Some(version) = header.version {
        line(&format!("version = {version}   # the backup's SQL needs it; its header names an older major"));
    }
    if !header.other_databases.is_empty() {
        line(&format!("# the cluster's other databases, not drilled here: {}", header.other_databases.join(", ")));
    }
    if !header.physical {
        match &header.globals {
            Globals::None => {}
            Globals::Set(path) => {
                line("");
                line("[restore]");
                line(&format!(
                    "globals = {}   # pg_dumpall --globals-only beside the backup: its roles first",
                    string(path)
                ));
            }
            Globals::Near(path) => {
                line("");
                line("[restore]");
                line("# A globals file beside the backup, named for another one: set it if it holds this");
                line("# backup's roles (the roles below are then made by it).");
                line(&format!("# globals = {}", string(path)));
            }
        }
        if !header.restore_roles.is_empty() {
            line("");
            line("# Roles the dump names that no globals file makes: created (LOGIN) before the restore.");
            for role in &header.restore_roles {
                line("[[restore.roles]]");
                line(&format!("name = {}", string(role)));
            }
        }
    }
    for block in blocks {
        line("");
        for about in block.about.iter().flat_map(|a| wrap(a, 96)) {
            line(&format!("# {about}"));
        }
        if let Some(why) = &block.disabled {
            line("# Commented out: on the backup's own restore it did not pass:");
            for reason in why.lines().flat_map(|l| wrap(l, 94)) {
                line(&format!("#   {reason}"));
            }
            for body in block.lines(true) {
                line(&format!("# {body}"));
            }
        } else if let Some(why) = &block.optional_disabled {
            let at = block.optional_at.unwrap_or(block.body.len()).min(block.body.len());
            for body in &block.body[..at] {
                line(body);
            }
            line("# Commented out: with it, the check did not pass on the backup's own restore:");
            for reason in why.lines().flat_map(|l| wrap(l, 94)) {
                line(&format!("#   {reason}"));
            }
            for optional in &block.optional {
                line(&format!("# {optional}"));
            }
            for body in &block.body[at..] {
                line(body);
            }
        } else {
            for body in block.lines(true) {
                line(&body);
            }
        }
    }
    out
}

/// `text` in lines of at most `width` characters, broken at spaces (a longer word stays whole).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut current = String::new();
    for word in text.split(' ') {
        if !current.is_empty() && current.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(word);
    }
    lines.push(current);
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::baseline::{PolicyExpressions, PolicyInfo, RowSecurity};

    /// A small inventory with one of each, as a restore of a tenant database would give.
    fn inventory() -> Inventory {
        let mut tables = BTreeMap::new();
        tables.insert("public.\"Accounts\"".to_owned(), vec!["SELECT".to_owned(), "INSERT".to_owned()]);
        Inventory {
            extensions: vec![("uuid-ossp".into(), "1.1".into()), ("vector".into(), "0.8.0".into())],
            journals: vec![
                Found { preset: Preset::GolangMigrate, scope: None, newest: "42".into() },
                Found { preset: Preset::Django, scope: Some("orders".into()), newest: "0003_refunds".into() },
            ],
            other_journals: vec!["public.pgmigrations".into()],
            indexes: vec![IndexFound {
                name: "public.items_embedding_idx".into(),
                table: "public.items".into(),
                method: "hnsw".into(),
                opclass: Some("vector_cosine_ops".into()),
                unique: false,
            }],
            row_security: vec![
                RowSecurity { table: "public.items".into(), enabled: true, forced: true },
                RowSecurity { table: "public.notes".into(), enabled: true, forced: false },
            ],
            policies: vec![PolicyInfo {
                table: "public.items".into(),
                name: "Tenant".into(),
                command: "ALL".into(),
                roles: vec!["app".into()],
                permissive: true,
                expressions: Some(PolicyExpressions {
                    using: Some("(tenant_id = current_setting('app.tenant_id'::text))".into()),
                    with_check: None,
                }),
            }],
            roles: vec![RoleFound {
                name: "auditor".into(),
                usage: vec!["public".into()],
                tables,
                login: false,
                connect: true,
                unreached: vec![],
            }],
            partitions: vec![
                PartitionWindow {
                    table: "public.events".into(),
                    unsupported: None,
                    window: Some((2, 3)),
                    month: "2026-11".into(),
                    default_partition: true,
                },
                PartitionWindow {
                    table: "public.stale".into(),
                    unsupported: None,
                    window: None,
                    month: "2026-11".into(),
                    default_partition: false,
                },
            ],
            schemas: vec!["public".into(), "tenant_a".into()],
            readers: [("public.items".to_owned(), vec![("app".to_owned(), true)])].into(),
            append_only: vec![super::super::inventory::AppendOnlyFound {
                table: "public.audit".into(),
                role: "auditor".into(),
                triggers: vec!["audit_immutable".into()],
                granted: vec!["UPDATE".into()],
                columns: vec![super::super::inventory::ColumnFound {
                    name: "action".into(),
                    sql_type: "text".into(),
                    category: crate::pg::TypeCategory::String,
                    first_label: None,
                    required: true,
                    references: None,
                }],
            }],
            graphs: vec![GraphFound {
                name: "g".into(),
                counts: Ok(([("User".to_owned(), 3)].into(), [("KNOWS".to_owned(), 2)].into())),
            }],
            ..Inventory::default()
        }
    }

    #[test]
    fn the_scenario_text_is_stable_and_commented() {
        let header = Header {
            name: "demo".into(),
            file_name: "demo.dump".into(),
            what: "custom-format archive".into(),
            output_name: "demo.toml".into(),
            source_path: "../backups/demo.dump".into(),
            database: "demo".into(),
            globals: Globals::Near("../backups/demo-old.globals.sql".into()),
            restore_roles: vec!["app".into(), "auditor".into()],
            ..Header::default()
        };
        let mut blocks = blocks(&inventory(), Some(DumpRows { tables: 3, rows: 120 }));
        // A check that did not pass on the backup's own restore is written commented out.
        let graph = blocks.iter_mut().find(|b| b.body.first().is_some_and(|l| l == "[[checks.graphs]]")).unwrap();
        graph.disabled = Some("graphs/g answers Cypher: graph with oid 1 does not exist".into());
        let text = render(&header, &blocks);
        insta::assert_snapshot!(text);
        let path = std::env::temp_dir().join("pgdrill-init-demo").join("demo.toml");
        let scenario = crate::scenario::Scenario::parse(text.as_bytes(), &path).expect("the text loads");
        let kinds: Vec<&str> = scenario.checks.iter().map(|c| c.kind()).collect();
        // Those that log in as a role run (and are listed) after those that only read.
        assert_eq!(
            kinds,
            [
                "extensions",
                "schema_version",
                "schema_version",
                "row_counts",
                "indexes",
                "rls",
                "sql",
                "roles",
                "partitions",
                "schemas",
                "rls",
                "append_only"
            ]
        );
        assert_eq!(scenario.restore.roles.len(), 2);
        // A proposal that did not pass is written commented out, with why, and the rest runs.
        let rls = blocks.iter_mut().find(|b| !b.optional.is_empty()).unwrap();
        rls.optional_disabled = Some("rls/public.items fail-closed for app: reads 2 rows".into());
        let text = render(&header, &blocks);
        assert!(
            text.contains("# Commented out: with it, the check did not pass on the backup's own restore:\n#   rls/public.items fail-closed for app: reads 2 rows\n# fail_closed = {"),
            "{text}"
        );
        let scenario = crate::scenario::Scenario::parse(text.as_bytes(), &path).expect("the text loads");
        assert_eq!(scenario.checks.len(), kinds.len());
        assert_eq!(scenario.restore.globals, None, "a globals file named for another backup is only offered");
    }

    #[test]
    fn optional_lines_go_where_the_block_puts_them() {
        let block = Block {
            body: vec!["[[checks.roles]]".into(), "role = \"app\"".into(), "[checks.roles.tables]".into()],
            optional: vec!["exact = true".into()],
            optional_at: Some(2),
            ..Block::default()
        };
        assert_eq!(block.lines(true)[2], "exact = true", "before the sub-table, or it would be a table's");
        assert_eq!(block.lines(false), block.body);
        let header = Header::default();
        let disabled = Block { optional_disabled: Some("roles/app exact privileges: UPDATE".into()), ..block };
        let text = render(&header, &[disabled]);
        assert!(text.contains("role = \"app\"\n# Commented out: with it,"), "{text}");
        assert!(text.contains("# exact = true\n[checks.roles.tables]"), "{text}");
    }

    #[test]
    fn a_role_is_forbidden_the_schemas_it_reaches_nothing_in() {
        let found = RoleFound {
            name: "app".into(),
            usage: vec!["public".into()],
            tables: BTreeMap::from([("public.account".into(), vec!["SELECT".into()])]),
            login: true,
            connect: true,
            unreached: vec!["audit".into(), "billing".into()],
        };
        let lines = role(&found).lines(true);
        let at = |line: &str| lines.iter().position(|l| l == line).unwrap_or_else(|| panic!("{line}: {lines:?}"));
        assert!(at(r#"forbidden_schemas = ["audit", "billing"]"#) < at("[checks.roles.tables]"), "{lines:?}");
        assert!(role(&found).about.join(" ").contains("where `exact` does not look"), "{:?}", role(&found).about);
        let none = RoleFound { unreached: vec![], ..found };
        assert!(!role(&none).lines(true).iter().any(|l| l.starts_with("forbidden_schemas")));
        assert!(
            role(&none)
                .about
                .join(" ")
                .contains("Which schemas it must not reach (`forbidden_schemas`) is yours to add.")
        );
    }

    #[test]
    fn long_comments_wrap_at_spaces() {
        assert_eq!(wrap("aaa bbb ccc", 7), ["aaa bbb", "ccc"]);
        assert_eq!(wrap("a-very-long-word x", 4), ["a-very-long-word", "x"]);
    }
}

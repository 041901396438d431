//! The scenario `init` writes: its header, then its blocks (`checks`) each explained in
//! comments, a block that did not pass on the backup's own restore commented out with why.

use super::block::{Block, string};

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
    /// The baseline file of the restore, relative to the scenario file.
    pub baseline: Option<String>,
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

/// The scenario's text, a line at a time, without trailing spaces.
#[derive(Default)]
struct Text(String);

impl Text {
    fn line(&mut self, text: &str) {
        self.0.push_str(text.trim_end());
        self.0.push('\n');
    }

    /// `text` wrapped at `width`, each line after `prefix`.
    fn wrapped(&mut self, prefix: &str, text: &str, width: usize) {
        for line in text.lines().flat_map(|l| wrap(l, width)) {
            self.line(&format!("{prefix}{line}"));
        }
    }
}

/// The whole scenario.
pub(crate) fn render(header: &Header, blocks: &[Block]) -> String {
    let mut text = Text::default();
    render_header(&mut text, header);
    for block in blocks {
        render_block(&mut text, block);
    }
    text.0
}

/// What comes before the checks: the scenario, its source, its target and its restore.
fn render_header(text: &mut Text, header: &Header) {
    let intro = format!(
        "A restore drill of `{}` ({}), written by `pgdrill init` from what the backup itself holds. \
         Every check below passed on a restore of it; one that did not is written commented out, \
         with why. Run it: `pgdrill run {}`.",
        header.file_name, header.what, header.output_name
    );
    // taplo (Even Better TOML) reads the first line: the editor checks and completes the file.
    text.line(&format!("#:schema {}", crate::scenario::SCHEMA_URL));
    for line in wrap(&intro, 96) {
        text.line(&format!("# {line}"));
    }
    text.line(&format!("name = {}", string(&header.name)));
    text.line(&format!(
        "description = {}",
        string(&format!("{}: the checks its own restore implies", header.file_name))
    ));
    if let Some(baseline) = &header.baseline {
        text.line("# What the restore held, which the checks marked `baseline = true` compare with: every");
        text.line("# table's rows, every index, every schema's tables, types and sequences. After a release");
        text.line(&format!(
            "# that changes them: `pgdrill baseline --from-drill {} --output {baseline}`.",
            header.output_name
        ));
        text.line(&format!("baseline = {}", string(baseline)));
    }
    text.line("");
    text.line("[source]");
    text.line(&format!("path = {}   # relative to this file", string(&header.source_path)));
    if let Some(wal) = &header.wal_archive {
        text.line(&format!("wal_archive = {}", string(wal)));
    }
    text.line("");
    text.line("[target]");
    text.line(&format!("database = {}", string(&header.database)));
    if let Some(version) = header.version {
        text.line(&format!("version = {version}   # the backup's SQL needs it; its header names an older major"));
    }
    if !header.other_databases.is_empty() {
        text.line(&format!("# the cluster's other databases, not drilled here: {}", header.other_databases.join(", ")));
    }
    if !header.physical {
        render_restore(text, header);
    }
}

/// A dump's `[restore]`: its globals file, and the roles no globals file makes.
fn render_restore(text: &mut Text, header: &Header) {
    match &header.globals {
        Globals::None => {}
        Globals::Set(path) => {
            text.line("");
            text.line("[restore]");
            text.line(&format!(
                "globals = {}   # pg_dumpall --globals-only beside the backup: its roles first",
                string(path)
            ));
        }
        Globals::Near(path) => {
            text.line("");
            text.line("[restore]");
            text.line("# A globals file beside the backup, named for another one: set it if it holds this");
            text.line("# backup's roles (the roles below are then made by it).");
            text.line(&format!("# globals = {}", string(path)));
        }
    }
    if !header.restore_roles.is_empty() {
        text.line("");
        text.line("# Roles the dump names that no globals file makes: created (LOGIN) before the restore.");
        text.line("# Their attributes (BYPASSRLS, SUPERUSER, INHERIT) and memberships are not in the dump:");
        text.line("# the checks below that run as them hold for them as created here. With the server's");
        text.line("# `pg_dumpall --globals-only` as `[restore] globals`, they hold for the roles as they are.");
        for role in &header.restore_roles {
            text.line("[[restore.roles]]");
            text.line(&format!("name = {}", string(role)));
        }
    }
}

/// A block: what it proves, then its TOML, commented out with why where it did not pass (or
/// only its optional lines, where it passed without them).
fn render_block(text: &mut Text, block: &Block) {
    text.line("");
    for about in block.about.iter().flat_map(|a| wrap(a, 96)) {
        text.line(&format!("# {about}"));
    }
    if let Some(why) = &block.disabled {
        text.line("# Commented out: on the backup's own restore it did not pass:");
        text.wrapped("#   ", why, 94);
        for body in block.lines(true) {
            text.line(&format!("# {body}"));
        }
    } else if let Some(why) = &block.optional_disabled {
        let at = block.optional_at.unwrap_or(block.body.len()).min(block.body.len());
        for body in &block.body[..at] {
            text.line(body);
        }
        text.line("# Commented out: with it, the check did not pass on the backup's own restore:");
        text.wrapped("#   ", why, 94);
        for optional in &block.optional {
            text.line(&format!("# {optional}"));
        }
        for body in &block.body[at..] {
            text.line(body);
        }
    } else {
        for body in block.lines(true) {
            text.line(&body);
        }
    }
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
    use std::collections::BTreeMap;

    use super::*;
    use crate::baseline::{PolicyExpressions, PolicyInfo, RowSecurity};
    use crate::init::checks::{DumpRows, blocks};
    use crate::init::inventory::{GraphFound, IndexFound, Inventory, PartitionWindow, RoleFound};
    use crate::journal::{Found, Preset};

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
                RowSecurity { table: crate::pg::QualifiedName::new("public", "items"), enabled: true, forced: true },
                RowSecurity { table: crate::pg::QualifiedName::new("public", "notes"), enabled: true, forced: false },
            ],
            policies: vec![PolicyInfo {
                table: crate::pg::QualifiedName::new("public", "items"),
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
                table: crate::pg::QualifiedName::new("public", "audit"),
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
            row_counts: [(crate::pg::QualifiedName::new("public", "items"), 3)].into(),
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
            baseline: Some("demo.baseline.json".into()),
            ..Header::default()
        };
        let mut blocks = blocks(&inventory(), Some(DumpRows { tables: 3, rows: 120 }));
        // A check that did not pass on the backup's own restore is written commented out.
        let graph = blocks.iter_mut().find(|b| b.body.first().is_some_and(|l| l == "[[checks.graphs]]")).unwrap();
        graph.disabled = Some("graphs/g answers Cypher: graph with oid 1 does not exist".into());
        let text = render(&header, &blocks);
        insta::assert_snapshot!(text);
        let dir = tempfile::tempdir().unwrap();
        let mut baseline = crate::baseline::Baseline::empty_for_tests();
        baseline.row_counts = inventory().row_counts;
        baseline.indexes = vec![
            serde_json::from_value(serde_json::json!({"name": "public.items_embedding_idx", "table": "public.items",
                "method": "hnsw", "opclasses": ["vector_cosine_ops"], "unique": false, "valid": true,
                "definition": "CREATE INDEX ..."}))
            .unwrap(),
        ];
        for schema in inventory().schemas {
            let facts = serde_json::json!({"tables": [], "enums": {}, "sequences": [], "table_facts": {}, "sequence_facts": {}});
            baseline.schemas.insert(schema, serde_json::from_value(facts).unwrap());
        }
        baseline.save(&dir.path().join("demo.baseline.json")).unwrap();
        let path = dir.path().join("demo.toml");
        let scenario = crate::scenario::Scenario::parse(text.as_bytes(), &path).expect("the text loads");
        let kinds: Vec<&str> = scenario.checks.iter().map(|c| c.kind().as_str()).collect();
        // Those that log in as a role run (and are listed) after those that only read.
        assert_eq!(
            kinds,
            [
                "extensions",
                "schema_version",
                "schema_version",
                "row_counts",
                "row_counts",
                "indexes",
                "rls",
                "sql",
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
    fn long_comments_wrap_at_spaces() {
        assert_eq!(wrap("aaa bbb ccc", 7), ["aaa bbb", "ccc"]);
        assert_eq!(wrap("a-very-long-word x", 4), ["a-very-long-word", "x"]);
    }
}

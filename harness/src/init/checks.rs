//! The blocks of the scenario `init` writes, in a fixed order and sorted within, so that the
//! same backup always gives the same text: one per check the catalogs' facts (`inventory`)
//! imply, row security's (`rls`) and append-only tables' (`append_only`) among them, then what
//! is left for the user to add.

use std::collections::BTreeMap;

use super::block::{Block, inline, key, list, string};
use super::inventory::{GraphFound, IndexFound, Inventory, PartitionWindow, RoleFound};
use crate::journal::{Found, Preset};
use crate::pg::quote_ident_if_needed;

/// What the dump carried, for the row counts' comment.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct DumpRows {
    pub tables: usize,
    pub rows: u64,
}

/// Every block, in the scenario's order.
/// The scenario's blocks from what the restore holds. The scenario names a baseline of the same
/// restore, which its row counts, indexes and schemas compare with (a line each, instead of one
/// per table and index).
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
    out.extend(row_counts(inventory, dump));
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
        out.push(schemas(&inventory.schemas));
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
    // A journal that keeps a row per migration: each one the baseline recorded must stay, so a
    // backup whose journal lost one from the middle fails, naming it.
    let optional = match journal.kept {
        crate::journal::Kept::Each { .. } => {
            about.push("With `baseline = true`, every migration the baseline recorded is still in it: a".into());
            about.push("migration missing from the middle fails (its runner would apply it again).".into());
            vec!["baseline = true".to_owned()]
        }
        crate::journal::Kept::Newest => Vec::new(),
    };
    Block { about, body, optional, ..Block::default() }
}

fn row_counts(inventory: &Inventory, dump: Option<DumpRows>) -> Vec<Block> {
    let floors = (!inventory.row_counts.is_empty()).then(|| {
        Block::new(
            &[
                &format!(
                    "No table holds fewer rows than the baseline recorded ({} tables, partitions each on",
                    inventory.row_counts.len()
                ),
                "their own): a backup that lost a table's or a partition's rows fails, though it restores",
                "as it was dumped. More rows pass (a recovery runs to the end of a WAL archive a live",
                "server keeps adding to); a table emptied by design (a queue, sessions) is given a",
                "`tolerance` in a block of its own, or the baseline captured again.",
            ],
            vec!["[[checks.row_counts]]".into(), "baseline = true".into(), "allow_growth = true".into()],
        )
    });
    match dump {
        Some(dump) if dump.tables == 0 => vec![Block {
            about: vec!["The dump carries no rows (a schema-only dump): there are no row counts to check.".into()],
            ..Block::default()
        }],
        Some(dump) => {
            let mut out = vec![Block::new(
                &[&format!(
                    "Every table holds the rows its COPY block in the dump carried ({} tables, {} rows).",
                    dump.tables, dump.rows
                )],
                vec!["[[checks.row_counts]]".into(), "expect_from_dump = true".into()],
            )];
            out.extend(floors);
            out
        }
        None => floors.into_iter().collect(),
    }
}

/// Every index, compared with the baseline's: its parts, and that it is valid and ready.
fn indexes(found: &[IndexFound]) -> Block {
    let tables: std::collections::BTreeSet<&str> = found.iter().map(|i| i.table.as_str()).collect();
    let mut methods: Vec<&str> = found.iter().map(|i| i.method.as_str()).collect();
    methods.sort_unstable();
    methods.dedup();
    Block::new(
        &[
            &format!(
                "Every index of the baseline ({} on {} tables; {}): each exists, is valid and ready,",
                found.len(),
                tables.len(),
                methods.join(", ")
            ),
            "and is as the baseline records it (its keys, operator classes, predicate, uniqueness):",
            "a build that failed, or an index dumped without its operator class, fails.",
        ],
        vec!["[checks.indexes]".into(), "baseline = true".into()],
    )
}

fn schemas(found: &[String]) -> Block {
    Block::new(
        &[
            "Every schema the backup holds survives the restore with the tables, enum types and",
            "sequences the baseline records, each behaving as it did (columns, constraints,",
            "triggers); no sequence is behind its column (the next insert would collide).",
        ],
        vec!["[checks.schemas]".into(), format!("schemas = {}", list(found)), "baseline = true".into()],
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::role;
    use crate::init::inventory::RoleFound;

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
}

//! Migrations whose order is not in their file names: Alembic's revision graph
//! (`versions/*.py`, each naming its `down_revision`), Liquibase's changelog (changesets in the
//! order the root changelog and its includes list them) and sqitch's plan (`sqitch.plan`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use regex::Regex;

use super::code::{Folder, FolderError};

/// Alembic's `versions/` (or a folder holding it): the heads are the revisions no other
/// revision's `down_revision` names, recorded one per row, written here space-separated.
pub(crate) fn alembic(path: &Path) -> Result<Folder, FolderError> {
    let dir = if path.join("versions").is_dir() { path.join("versions") } else { path.to_owned() };
    let entries = std::fs::read_dir(&dir).map_err(FolderError::unreadable(&dir))?;
    let revision = Regex::new(r#"(?m)^revision\s*(?::[^=\n]+)?=\s*['"]([^'"]+)['"]"#).expect("valid");
    let down = Regex::new(r"(?m)^down_revision\s*(?::[^=\n]+)?=\s*(.+)$").expect("valid");
    let quoted = Regex::new(r#"['"]([^'"]+)['"]"#).expect("valid");
    // revision -> (its parents, its file)
    let mut graph: BTreeMap<String, (Vec<String>, String)> = BTreeMap::new();
    for entry in entries.flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        if !file.ends_with(".py") {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(entry.path()) else { continue };
        let Some(id) = revision.captures(&text).map(|c| c[1].to_owned()) else { continue };
        let parents = down
            .captures(&text)
            .map(|c| quoted.captures_iter(&c[1]).map(|q| q[1].to_owned()).collect())
            .unwrap_or_default();
        graph.insert(id, (parents, file));
    }
    if graph.is_empty() {
        return Err(FolderError::Empty { path: dir, what: "Alembic revisions (`revision = ...`)" });
    }
    let named: BTreeSet<&String> = graph.values().flat_map(|(parents, _)| parents).collect();
    let heads: Vec<&String> = graph.keys().filter(|r| !named.contains(r)).collect();
    // Oldest first: by distance from the base, so every revision comes after its parents.
    let mut depth: BTreeMap<&String, usize> = BTreeMap::new();
    fn depth_of<'a>(
        r: &'a String,
        graph: &'a BTreeMap<String, (Vec<String>, String)>,
        depth: &mut BTreeMap<&'a String, usize>,
        guard: usize,
    ) -> usize {
        if let Some(d) = depth.get(r) {
            return *d;
        }
        let parents = graph.get(r).map(|(p, _)| p.as_slice()).unwrap_or_default();
        let d = if guard > graph.len() {
            0 // a cycle: no order
        } else {
            parents.iter().map(|p| 1 + depth_of(p, graph, depth, guard + 1)).max().unwrap_or(0)
        };
        depth.insert(r, d);
        d
    }
    let mut history: Vec<&String> = graph.keys().collect();
    for r in &history {
        depth_of(r, &graph, &mut depth, 0);
    }
    history.sort_by_key(|r| (depth[r], *r));
    let source: Vec<&str> = heads.iter().map(|h| graph[*h].1.as_str()).collect();
    let newest = heads.iter().map(|h| h.as_str()).collect::<Vec<_>>().join(" ");
    Ok(Folder {
        key: newest.clone(),
        newest,
        source: source.join(", "),
        history: history.into_iter().cloned().collect(),
        project: None,
    })
}

/// sqitch's plan (`sqitch.plan`, or the folder holding it): its changes in order, the newest
/// the last change line; its `%project`.
pub(crate) fn sqitch(path: &Path) -> Result<Folder, FolderError> {
    let plan = if path.is_dir() { path.join("sqitch.plan") } else { path.to_owned() };
    let text = std::fs::read_to_string(&plan).map_err(FolderError::unreadable(&plan))?;
    let mut history = Vec::new();
    let mut project = None;
    for line in text.lines().map(str::trim) {
        if let Some(pragma) = line.strip_prefix('%') {
            if let Some((key, value)) = pragma.split_once('=')
                && key.trim() == "project"
            {
                project = Some(value.trim().to_owned());
            }
            continue;
        }
        if line.is_empty() || line.starts_with(['#', '@']) {
            continue;
        }
        // `change [deps] 2024-01-01T00:00:00Z planner <email> # note`; `+`/`-` mark deploy/revert.
        let name = line.trim_start_matches(['+', '-']).split(|c: char| c.is_whitespace() || c == '[').next();
        if let Some(name) = name.filter(|n| !n.is_empty()) {
            history.push(name.to_owned());
        }
    }
    let newest = history.last().cloned().ok_or_else(|| FolderError::malformed(&plan, "plans no change"))?;
    Ok(Folder { source: format!("{} (last change)", file_name(&plan)), key: newest.clone(), newest, history, project })
}

/// Liquibase's root changelog (or a folder holding `db.changelog-master.*` or `changelog.*`):
/// every changeset in the order Liquibase runs them, following `include` and `includeAll`;
/// XML, YAML, JSON and formatted SQL.
pub(crate) fn liquibase(path: &Path) -> Result<Folder, FolderError> {
    let root = if path.is_dir() { root_changelog(path)? } else { path.to_owned() };
    let search: Vec<PathBuf> = root.parent().map(|p| p.ancestors().map(Path::to_owned).collect()).unwrap_or_default();
    let mut history = Vec::new();
    let mut seen = BTreeSet::new();
    changelog(&root, &search, &mut history, &mut seen)?;
    let (newest, source) =
        history.last().cloned().ok_or_else(|| FolderError::malformed(&root, "holds no changeset"))?;
    Ok(Folder {
        key: newest.clone(),
        newest,
        source: format!("{} (last changeset)", file_name(&source)),
        history: history.into_iter().map(|(changeset, _)| changeset).collect(),
        project: None,
    })
}

fn root_changelog(dir: &Path) -> Result<PathBuf, FolderError> {
    for stem in ["db.changelog-master", "changelog-master", "changelog", "db.changelog"] {
        for ext in ["xml", "yaml", "yml", "json", "sql"] {
            let candidate = dir.join(format!("{stem}.{ext}"));
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    Err(FolderError::Empty {
        path: dir.to_owned(),
        what: "root changelog (db.changelog-master.xml, ...): name the file itself",
    })
}

fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| path.display().to_string())
}

/// One entry of a changelog, in order.
enum Entry {
    ChangeSet { id: String, author: String },
    Include { file: String, relative: bool },
    IncludeAll { path: String, relative: bool },
}

/// Appends the changesets of `file` (as `file::id::author`, with the file it is in).
fn changelog(
    file: &Path,
    search: &[PathBuf],
    out: &mut Vec<(String, PathBuf)>,
    seen: &mut BTreeSet<PathBuf>,
) -> Result<(), FolderError> {
    if !seen.insert(file.to_owned()) {
        return Ok(());
    }
    let text = std::fs::read_to_string(file).map_err(FolderError::unreadable(file))?;
    let ext = file.extension().map(|e| e.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
    let entries = match ext.as_str() {
        "xml" => xml_entries(&text).map_err(|source| FolderError::NotXmlChangelog { path: file.to_owned(), source })?,
        "yaml" | "yml" => yaml_entries(&text),
        "json" => {
            json_entries(&text).map_err(|source| FolderError::NotJsonChangelog { path: file.to_owned(), source })?
        }
        _ => sql_entries(&text),
    };
    let here = file.parent().unwrap_or(Path::new("."));
    let resolve = |name: &str, relative: bool| -> PathBuf {
        let name = name.trim_start_matches("classpath:").trim_start_matches('/');
        if relative {
            return here.join(name);
        }
        std::iter::once(here)
            .chain(search.iter().map(PathBuf::as_path))
            .map(|dir| dir.join(name))
            .find(|p| p.exists())
            .unwrap_or_else(|| here.join(name))
    };
    for entry in entries {
        match entry {
            Entry::ChangeSet { id, author } => {
                out.push((format!("{}::{id}::{author}", file_name(file)), file.to_owned()));
            }
            Entry::Include { file: name, relative } => changelog(&resolve(&name, relative), search, out, seen)?,
            Entry::IncludeAll { path, relative } => {
                for included in all_changelogs(&resolve(&path, relative))? {
                    changelog(&included, search, out, seen)?;
                }
            }
        }
    }
    Ok(())
}

/// The changelogs under a folder, as `includeAll` takes them: recursively, by path.
fn all_changelogs(dir: &Path) -> Result<Vec<PathBuf>, FolderError> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        let entries = std::fs::read_dir(&dir).map_err(FolderError::unreadable(&dir))?;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if path
                .extension()
                .is_some_and(|e| ["xml", "yaml", "yml", "json", "sql"].contains(&e.to_string_lossy().as_ref()))
            {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

fn xml_entries(text: &str) -> Result<Vec<Entry>, quick_xml::Error> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(text);
    let mut out = Vec::new();
    loop {
        match reader.read_event()? {
            Event::Start(e) | Event::Empty(e) => {
                let mut attrs: BTreeMap<String, String> = BTreeMap::new();
                for a in e.attributes().flatten() {
                    let value = a
                        .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                        .map(|v| v.into_owned())
                        .unwrap_or_default();
                    attrs.insert(String::from_utf8_lossy(a.key.local_name().as_ref()).into_owned(), value);
                }
                let relative = attrs.get("relativeToChangelogFile").is_some_and(|v| v == "true");
                let mut take = |k: &str| attrs.remove(k).unwrap_or_default();
                match e.local_name().as_ref() {
                    b"changeSet" => out.push(Entry::ChangeSet { id: take("id"), author: take("author") }),
                    b"include" => out.push(Entry::Include { file: take("file"), relative }),
                    b"includeAll" => out.push(Entry::IncludeAll { path: take("path"), relative }),
                    _ => {}
                }
            }
            Event::Eof => return Ok(out),
            _ => {}
        }
    }
}

fn json_entries(text: &str) -> Result<Vec<Entry>, serde_json::Error> {
    let value: serde_json::Value = serde_json::from_str(text)?;
    let items = value["databaseChangeLog"].as_array().cloned().unwrap_or_default();
    let s = |v: &serde_json::Value, k: &str| v[k].as_str().unwrap_or_default().to_owned();
    let relative = |v: &serde_json::Value| v["relativeToChangelogFile"].as_bool().unwrap_or(false);
    Ok(items
        .iter()
        .filter_map(|item| {
            if let Some(c) = item.get("changeSet") {
                Some(Entry::ChangeSet { id: s(c, "id"), author: s(c, "author") })
            } else if let Some(i) = item.get("include") {
                Some(Entry::Include { file: s(i, "file"), relative: relative(i) })
            } else {
                item.get("includeAll").map(|i| Entry::IncludeAll { path: s(i, "path"), relative: relative(i) })
            }
        })
        .collect())
}

/// YAML changelogs, read line by line: a `- changeSet:` item's own `id:` and `author:` (before
/// its `changes:`), an `- include:` item's `file:`, an `- includeAll:` item's `path:`.
fn yaml_entries(text: &str) -> Vec<Entry> {
    let mut out = Vec::new();
    let mut open: Option<(&str, BTreeMap<&str, String>)> = None;
    let flush = |open: &mut Option<(&str, BTreeMap<&str, String>)>, out: &mut Vec<Entry>| {
        if let Some((kind, mut keys)) = open.take() {
            let mut take = |k: &str| keys.remove(k).unwrap_or_default();
            let relative = take("relativeToChangelogFile") == "true";
            out.push(match kind {
                "changeSet" => Entry::ChangeSet { id: take("id"), author: take("author") },
                "include" => Entry::Include { file: take("file"), relative },
                _ => Entry::IncludeAll { path: take("path"), relative },
            });
        }
    };
    for line in text.lines() {
        let trimmed = line.trim().trim_start_matches("- ").trim();
        if let Some(kind) = ["changeSet", "include", "includeAll"].into_iter().find(|k| trimmed == format!("{k}:")) {
            flush(&mut open, &mut out);
            open = Some((kind, BTreeMap::new()));
            continue;
        }
        let Some((_, keys)) = open.as_mut() else { continue };
        if trimmed.starts_with("changes:") {
            keys.insert("done", String::new());
            continue;
        }
        if keys.contains_key("done") {
            continue;
        }
        if let Some((key, value)) = trimmed.split_once(':')
            && let Some(key) =
                ["id", "author", "file", "path", "relativeToChangelogFile"].into_iter().find(|k| *k == key.trim())
        {
            keys.entry(key).or_insert_with(|| value.trim().trim_matches(['"', '\'']).to_owned());
        }
    }
    flush(&mut open, &mut out);
    out
}

/// Formatted SQL: `--changeset author:id` lines, and `--include file:...`.
fn sql_entries(text: &str) -> Vec<Entry> {
    let changeset = Regex::new(r"(?m)^\s*--\s*changeset\s+([^:\s]+):(\S+)").expect("valid");
    let include = Regex::new(r"(?m)^\s*--\s*include\s+file:(\S+)").expect("valid");
    let mut found: Vec<(usize, Entry)> = changeset
        .captures_iter(text)
        .map(|c| (c.get(0).map_or(0, |m| m.start()), Entry::ChangeSet { id: c[2].to_owned(), author: c[1].to_owned() }))
        .collect();
    found.extend(
        include
            .captures_iter(text)
            .map(|c| (c.get(0).map_or(0, |m| m.start()), Entry::Include { file: c[1].to_owned(), relative: false })),
    );
    found.sort_by_key(|(at, _)| *at);
    found.into_iter().map(|(_, e)| e).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, files: &[(&str, &str)]) {
        for (name, text) in files {
            let path = dir.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
    }

    #[test]
    fn alembic_heads_are_the_revisions_no_file_names_as_down_revision() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            &[
                ("versions/1975ea83b712_users.py", "revision = '1975ea83b712'\ndown_revision = None\n"),
                (
                    "versions/ae1027a6acf_orders.py",
                    "revision: str = \"ae1027a6acf\"\ndown_revision: Union[str, None] = '1975ea83b712'\n",
                ),
                ("versions/27c6a30d7c24_audit.py", "revision = \"27c6a30d7c24\"\ndown_revision = \"ae1027a6acf\"\n"),
                ("versions/__init__.py", ""),
                ("env.py", "revision = 'not-a-migration'\n"),
            ],
        );
        let folder = alembic(dir.path()).unwrap();
        assert_eq!(folder.newest, "27c6a30d7c24");
        assert_eq!(folder.source, "27c6a30d7c24_audit.py");
        assert_eq!(folder.history, ["1975ea83b712", "ae1027a6acf", "27c6a30d7c24"]);
        // A branch: two heads until a merge revision names both.
        write(dir.path(), &[("versions/b1_branch.py", "revision = 'b1'\ndown_revision = 'ae1027a6acf'\n")]);
        assert_eq!(alembic(&dir.path().join("versions")).unwrap().newest, "27c6a30d7c24 b1");
        write(dir.path(), &[("versions/m1_merge.py", "revision = 'm1'\ndown_revision = ('27c6a30d7c24', 'b1')\n")]);
        let merged = alembic(dir.path()).unwrap();
        assert_eq!(merged.newest, "m1");
        assert_eq!(merged.history.last().map(String::as_str), Some("m1"));
        assert!(alembic(&dir.path().join("nope")).is_err());
    }

    #[test]
    fn sqitch_newest_is_the_last_change_line_of_the_plan() {
        let dir = tempfile::tempdir().unwrap();
        let plan = "%syntax-version=1.0.0\n%project=flipr\n%uri=https://example.com/\n\n\
            users 2024-01-01T00:00:00Z Ann <ann@example.com> # Users\n\
            orders [users] 2024-01-02T00:00:00Z Ann <ann@example.com> # Orders\n\
            @v1.0 2024-01-03T00:00:00Z Ann <ann@example.com> # Tag\n\n\
            users [users@v1.0] 2024-01-04T00:00:00Z Ann <ann@example.com> # Reworked\n\
            audit[orders] 2024-01-05T00:00:00Z Ann <ann@example.com>\n";
        write(dir.path(), &[("sqitch.plan", plan)]);
        let folder = sqitch(dir.path()).unwrap();
        assert_eq!(folder.newest, "audit");
        assert_eq!(folder.history, ["users", "orders", "users", "audit"]);
        assert_eq!(folder.project.as_deref(), Some("flipr"));
        assert_eq!(sqitch(&dir.path().join("sqitch.plan")).unwrap().newest, "audit");
    }

    #[test]
    fn liquibase_changesets_in_the_order_the_root_changelog_includes_them() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            &[
                (
                    "db/changelog/db.changelog-master.xml",
                    r#"<?xml version="1.0"?>
<databaseChangeLog xmlns="http://www.liquibase.org/xml/ns/dbchangelog">
  <changeSet author="ann" id="1"><createTable tableName="users"/></changeSet>
  <include file="db/changelog/changes/002-orders.yaml"/>
  <includeAll path="sql/" relativeToChangelogFile="true"/>
</databaseChangeLog>"#,
                ),
                (
                    "db/changelog/changes/002-orders.yaml",
                    "databaseChangeLog:\n  - changeSet:\n      id: 2\n      author: bob\n      changes:\n        - createTable:\n            tableName: orders\n            columns:\n              - column:\n                  name: id\n",
                ),
                (
                    "db/changelog/sql/010-audit.sql",
                    "--liquibase formatted sql\n--changeset ann:3\nCREATE TABLE audit();\n--changeset ann:4 runOnChange:true\nSELECT 1;\n",
                ),
                (
                    "db/changelog/sql/009-json.json",
                    r#"{"databaseChangeLog":[{"changeSet":{"id":"2b","author":"cy"}}]}"#,
                ),
            ],
        );
        let folder = liquibase(&dir.path().join("db/changelog")).unwrap();
        assert_eq!(
            folder.history,
            [
                "db.changelog-master.xml::1::ann",
                "002-orders.yaml::2::bob",
                "009-json.json::2b::cy",
                "010-audit.sql::3::ann",
                "010-audit.sql::4::ann"
            ]
        );
        assert_eq!(folder.newest, "010-audit.sql::4::ann");
        assert_eq!(folder.source, "010-audit.sql (last changeset)");
    }
}

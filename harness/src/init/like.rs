//! `pgdrill init BACKUP --like SCENARIO`: a real system's scenario started from another's
//! checks (a seed's shipped scenario, by name or path). The facts stay the backup's own: the
//! kinds `init` reads from the restore (extensions, journals, counts, indexes, row security,
//! grants, partitions, schemas, graphs) are written from it, not copied. The other checks of the
//! scenario (its queries, canaries, vector recall, corruption checks...) are copied as blocks,
//! each proven on this backup's restore like the rest: one that fails there is written
//! commented out with why, for its owner to adapt. Its `[app]` is copied commented out: `init`
//! boots no application.

use std::path::Path;

use super::block::Block;

/// The seeds' scenarios, shipped in the binary: `--like powernode` works wherever pgdrill runs.
const SHIPPED: [(&str, &str); 6] = [
    ("caracal", include_str!("../../../scenarios/caracal.toml")),
    ("controlplane", include_str!("../../../scenarios/controlplane.toml")),
    ("paperclip", include_str!("../../../scenarios/paperclip.toml")),
    ("plur", include_str!("../../../scenarios/plur.toml")),
    ("powernode", include_str!("../../../scenarios/powernode.toml")),
    ("prismeai", include_str!("../../../scenarios/prismeai.toml")),
];

/// The kinds `init` writes from the restore itself: a copy of another backup's would hold that
/// backup's facts.
const FROM_THE_RESTORE: [&str; 10] = [
    "extensions",
    "schema_version",
    "row_counts",
    "indexes",
    "triggers",
    "rls",
    "partitions",
    "schemas",
    "graphs",
    "append_only",
];

/// Why `--like` cannot be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LikeError {
    /// Neither a file nor a shipped scenario's name.
    #[error("`{like}` is neither a scenario file nor a shipped scenario ({})", names())]
    Unknown { like: String },
    /// The file cannot be read.
    #[error("cannot read `{like}`")]
    Read {
        like: String,
        #[source]
        source: std::io::Error,
    },
    /// The file is not TOML.
    #[error("`{like}` is not a scenario file")]
    NotToml {
        like: String,
        #[source]
        source: toml::de::Error,
    },
}

fn names() -> String {
    SHIPPED.iter().map(|(name, _)| *name).collect::<Vec<_>>().join(", ")
}

/// The blocks `--like` adds: the scenario's checks of the kinds `init` does not read from the
/// restore, and its `[app]` commented out.
pub(crate) fn blocks(like: &str) -> Result<Vec<Block>, LikeError> {
    let text = match SHIPPED.iter().find(|(name, _)| *name == like) {
        Some((_, text)) => (*text).to_owned(),
        None if Path::new(like).is_file() => {
            std::fs::read_to_string(like).map_err(|source| LikeError::Read { like: like.to_owned(), source })?
        }
        None => return Err(LikeError::Unknown { like: like.to_owned() }),
    };
    let scenario: toml::Table =
        toml::from_str(&text).map_err(|source| LikeError::NotToml { like: like.to_owned(), source })?;
    let mut out = Vec::new();
    if let Some(toml::Value::Table(checks)) = scenario.get("checks") {
        for (kind, value) in checks.iter().filter(|(kind, _)| !FROM_THE_RESTORE.contains(&kind.as_str())) {
            let each: Vec<&toml::Value> = match value {
                toml::Value::Array(many) => many.iter().collect(),
                one => vec![one],
            };
            for check in each {
                out.push(copied(like, kind, check));
            }
        }
    }
    if let Some(app) = scenario.get("app") {
        let mut about = vec![
            format!("From `{like}`: the application booted on the restore. `init` boots none: point"),
            "`build` and `command` at your application, and its requests at what it answers.".to_owned(),
        ];
        about.extend(section("app", app).lines().map(str::to_owned));
        out.push(Block { about, ..Block::default() });
    }
    Ok(out)
}

/// One check of `kind`, as an array element (`[[checks.<kind>]]`), so that several of a kind
/// and `init`'s own of it never clash.
fn copied(like: &str, kind: &str, check: &toml::Value) -> Block {
    let text = section(&format!("checks.{kind}"), &toml::Value::Array(vec![check.clone()]));
    Block::new(
        &[&format!("From `{like}`, proven on this backup's restore like the rest:")],
        text.lines().map(str::to_owned).collect(),
    )
}

/// `value` as TOML under the dotted `key`.
fn section(key: &str, value: &toml::Value) -> String {
    let mut root = toml::Table::new();
    let mut parts: Vec<&str> = key.split('.').collect();
    let last = parts.pop().unwrap_or(key);
    let mut inner = toml::Table::new();
    inner.insert(last.to_owned(), value.clone());
    let nested = parts.iter().rev().fold(inner, |table, part| {
        let mut outer = toml::Table::new();
        outer.insert((*part).to_owned(), toml::Value::Table(table));
        outer
    });
    root.extend(nested);
    toml::to_string(&root).unwrap_or_default().trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Powernode's queries and application come along; its counts, indexes and journal do not
    /// (they are the fixture's, and `init` reads the backup's own).
    #[test]
    fn a_seeds_checks_that_a_restore_cannot_tell_are_copied() {
        let blocks = blocks("powernode").unwrap();
        let heads: Vec<&str> = blocks.iter().filter_map(|b| b.body.first().map(String::as_str)).collect();
        assert!(heads.iter().all(|h| *h == "[[checks.sql]]" || *h == "[[checks.roles]]"), "{heads:?}");
        assert!(heads.contains(&"[[checks.sql]]"), "{heads:?}");
        let sql = blocks.iter().find(|b| b.body.first().is_some_and(|h| h == "[[checks.sql]]")).unwrap();
        assert!(sql.body.iter().any(|l| l.starts_with("name = \"every password digest is bcrypt\"")), "{:?}", sql.body);
        let app = blocks.last().unwrap();
        assert!(!app.is_check() && app.about.iter().any(|l| l == "[app]"), "{:?}", app.about);
        let unknown = super::blocks("nosuch").unwrap_err().to_string();
        assert!(unknown.contains("neither a scenario file nor a shipped scenario (caracal, "), "{unknown}");
    }
}

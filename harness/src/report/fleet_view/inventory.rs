//! The inventory of the databases a fleet must drill (`--inventory FILE`): a TOML file of
//! `[[database]]` entries, each naming its database by scenario name, by scenario file or by
//! backup location, with an optional `max_age`. Unknown keys are refused; every error names
//! the file, line and column.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

/// An inventory, as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Inventory {
    /// Where it was read from.
    pub path: PathBuf,
    pub databases: Vec<Wanted>,
}

/// A database that must be drilled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Wanted {
    /// How the page and the gaps name it: its `name`, else what it is matched by.
    pub name: String,
    pub by: By,
    /// How old its last passing drill may be.
    pub max_age: Option<Duration>,
    /// How often it must be drilled (`report period` expects a drill in each window of it); when
    /// none is given, its drills' `[objectives] cadence`.
    pub cadence: Option<Duration>,
    /// Where it is written: `file:line`.
    pub at: String,
}

/// How an entry is matched with drills.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum By {
    /// The scenario's name, as its drills' records say.
    Scenario(String),
    /// A scenario file (relative to the inventory's folder); its name is read with the scenario
    /// parser before matching.
    ScenarioFile(PathBuf),
    /// The backup's location, as its drills' records say it (`backup.location`).
    Backup(String),
}

impl By {
    /// What it is matched by, in words.
    pub(crate) fn describe(&self) -> String {
        match self {
            By::Scenario(name) => format!("scenario `{name}`"),
            By::ScenarioFile(file) => format!("scenario file `{}`", file.display()),
            By::Backup(location) => format!("backup `{location}`"),
        }
    }
}

/// An inventory that cannot be used: `file:line:col: message`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum InventoryError {
    #[error("cannot read the inventory `{}`", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: {message}")]
    Invalid { path: String, line: usize, column: usize, message: String },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInventory {
    #[serde(default)]
    database: Vec<Spanned<RawDatabase>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDatabase {
    name: Option<Spanned<String>>,
    scenario: Option<Spanned<String>>,
    scenario_file: Option<Spanned<String>>,
    backup: Option<Spanned<String>>,
    max_age: Option<Spanned<String>>,
    cadence: Option<Spanned<String>>,
}

/// Reads the inventory at `path`.
pub(crate) fn read(path: &Path) -> Result<Inventory, InventoryError> {
    let text =
        std::fs::read_to_string(path).map_err(|source| InventoryError::Read { path: path.to_owned(), source })?;
    parse(&text, path)
}

/// Parses an inventory's text as if read from `path` (scenario files are relative to its folder).
pub(crate) fn parse(text: &str, path: &Path) -> Result<Inventory, InventoryError> {
    let shown = path.display().to_string();
    let invalid = |span: Option<Range<usize>>, message: String| {
        let (line, column) = line_column(text, span.map_or(0, |s| s.start));
        InventoryError::Invalid { path: shown.clone(), line, column, message }
    };
    let raw: RawInventory = toml::from_str(text).map_err(|e| invalid(e.span(), e.message().trim_end().to_owned()))?;
    if raw.database.is_empty() {
        return Err(invalid(None, "no `[[database]]`: an inventory lists the databases that must be drilled".into()));
    }
    let base = path.parent().unwrap_or(Path::new("."));
    let mut databases: Vec<Wanted> = Vec::new();
    for entry in raw.database {
        let span = entry.span();
        let raw = entry.into_inner();
        let ways = [
            raw.scenario.map(|s| (s.span(), By::Scenario(s.into_inner()))),
            raw.scenario_file.map(|s| (s.span(), By::ScenarioFile(base.join(s.into_inner())))),
            raw.backup.map(|s| (s.span(), By::Backup(s.into_inner()))),
        ];
        let mut given: Vec<(Range<usize>, By)> = ways.into_iter().flatten().collect();
        let by = match given.len() {
            1 => given.remove(0),
            0 => {
                return Err(invalid(
                    Some(span),
                    "a database needs one of `scenario`, `scenario_file` or `backup`".into(),
                ));
            }
            _ => {
                return Err(invalid(
                    Some(given[1].0.clone()),
                    "a database is matched by one of `scenario`, `scenario_file` or `backup`, not several".into(),
                ));
            }
        };
        if matches!(&by.1, By::Scenario(s) | By::Backup(s) if s.trim().is_empty()) {
            return Err(invalid(Some(by.0), "empty: name the scenario or the backup".into()));
        }
        let max_age = match raw.max_age {
            None => None,
            Some(text) => Some(parse_age(text.get_ref()).map_err(|e| invalid(Some(text.span()), e.to_string()))?),
        };
        let cadence = match raw.cadence {
            None => None,
            Some(text) => Some(
                parse_age(text.get_ref())
                    .map_err(|e| invalid(Some(text.span()), e.to_string().replacen("max_age", "cadence", 1)))?,
            ),
        };
        let name = raw.name.map(Spanned::into_inner).unwrap_or_else(|| match &by.1 {
            By::Scenario(s) | By::Backup(s) => s.clone(),
            By::ScenarioFile(f) => f.display().to_string(),
        });
        let at = format!("{shown}:{}", line_column(text, span.start).0);
        if let Some(twice) = databases.iter().find(|d| d.by == by.1) {
            return Err(invalid(Some(by.0), format!("{} is listed twice (first at {})", by.1.describe(), twice.at)));
        }
        databases.push(Wanted { name, by: by.1, max_age, cadence, at });
    }
    Ok(Inventory { path: path.to_owned(), databases })
}

/// A maximum age that is not one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum AgeError {
    #[error("max_age `{0}` is zero: no drill could be fresh")]
    Zero(String),
    #[error("max_age `{text}` is not a span of time like `92d`, `36h` or `2w`: {source}")]
    Unreadable {
        text: String,
        #[source]
        source: humantime::DurationError,
    },
}

/// A maximum age: `92d`, `36h`, `2w`, `1d 12h` (as humantime reads it).
pub(crate) fn parse_age(text: &str) -> Result<Duration, AgeError> {
    match humantime::parse_duration(text.trim()) {
        Ok(age) if !age.is_zero() => Ok(age),
        Ok(_) => Err(AgeError::Zero(text.to_owned())),
        Err(source) => Err(AgeError::Unreadable { text: text.to_owned(), source }),
    }
}

/// The 1-based line and column (in characters) of byte `at` in `text`.
fn line_column(text: &str, at: usize) -> (usize, usize) {
    let at = at.min(text.len());
    let before = text.get(..at).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(text: &str) -> String {
        parse(text, Path::new("fleet/inventory.toml")).expect_err(text).to_string()
    }

    #[test]
    fn an_inventory_names_databases_three_ways_each_with_its_max_age() {
        let text = "[[database]]\nscenario = \"orders\"\nmax_age = \"30d\"\ncadence = \"7d\"\n\n\
                    [[database]]\nname = \"billing\"\nscenario_file = \"scenarios/billing.toml\"\n\n\
                    [[database]]\nbackup = \"s3://backups/ledger.sql.gz\"\n";
        let inventory = parse(text, Path::new("fleet/inventory.toml")).unwrap();
        let [orders, billing, ledger] = &inventory.databases[..] else { panic!("{inventory:?}") };
        assert_eq!((orders.name.as_str(), &orders.by), ("orders", &By::Scenario("orders".into())));
        assert_eq!(orders.max_age, Some(Duration::from_secs(30 * 86400)));
        assert_eq!(orders.cadence, Some(Duration::from_secs(7 * 86400)));
        assert_eq!(orders.at, "fleet/inventory.toml:1");
        assert_eq!(billing.by, By::ScenarioFile("fleet/scenarios/billing.toml".into()));
        assert_eq!((billing.name.as_str(), billing.max_age), ("billing", None));
        assert_eq!(ledger.by, By::Backup("s3://backups/ledger.sql.gz".into()));
        assert_eq!(ledger.at, "fleet/inventory.toml:10");
    }

    #[test]
    fn a_wrong_inventory_is_refused_at_its_line_and_column() {
        let unknown = error("[[database]]\nscenario = \"a\"\nmax_aeg = \"1d\"\n");
        assert!(unknown.starts_with("fleet/inventory.toml:3:1: unknown field `max_aeg`"), "{unknown}");
        let age = error("[[database]]\nscenario = \"a\"\nmax_age = \"soon\"\n");
        assert!(age.starts_with("fleet/inventory.toml:3:11: max_age `soon` is not a span of time"), "{age}");
        let zero = error("[[database]]\nscenario = \"a\"\nmax_age = \"0s\"\n");
        assert!(zero.contains(":3:11: max_age `0s` is zero"), "{zero}");
        let cadence = error("[[database]]\nscenario = \"a\"\ncadence = \"often\"\n");
        assert!(cadence.contains(":3:11: cadence `often` is not a span of time"), "{cadence}");
        let none = error("[[database]]\nname = \"a\"\n");
        assert!(none.contains(":1:1: a database needs one of `scenario`, `scenario_file` or `backup`"), "{none}");
        let both = error("[[database]]\nscenario = \"a\"\nbackup = \"b\"\n");
        assert!(both.contains(":3:10: a database is matched by one of"), "{both}");
        let twice = error("[[database]]\nscenario = \"a\"\n[[database]]\nscenario = \"a\"\n");
        assert!(twice.contains(":4:12: scenario `a` is listed twice (first at fleet/inventory.toml:1)"), "{twice}");
        let empty = error("# nothing\n");
        assert!(empty.contains("fleet/inventory.toml:1:1: no `[[database]]`"), "{empty}");
        let top = error("databases = []\n");
        assert!(top.contains(":1:1: unknown field `databases`"), "{top}");
        let syntax = error("[[database]\n");
        assert!(syntax.starts_with("fleet/inventory.toml:1:"), "{syntax}");
        assert!(error("[[database]]\nscenario = \" \"\n").contains(":2:12: empty"));
    }

    /// Every ```toml,inventory block of the guide parses as an inventory.
    #[test]
    fn the_guides_inventory_examples_parse() {
        let page = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/src/guide/fleet.md");
        let text = std::fs::read_to_string(page).expect("the fleet guide");
        let mut blocks = 0;
        let mut lines = text.lines();
        while let Some(line) = lines.next() {
            if line.trim() != "```toml,inventory" {
                continue;
            }
            let block: Vec<&str> = lines.by_ref().take_while(|l| l.trim() != "```").collect();
            let parsed = parse(&(block.join("\n") + "\n"), Path::new("inventory.toml"));
            assert!(parsed.is_ok(), "{page}: an inventory example does not parse: {parsed:?}");
            blocks += 1;
        }
        assert!(blocks > 0, "{page} has no ```toml,inventory block");
    }
}

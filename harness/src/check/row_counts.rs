//! `row_counts`: tables hold the number of rows they should, exactly or within a tolerance.
//!
//! ```toml
//! [checks.row_counts]
//! tolerance = 0                 # rows either way; or "2%"
//! expect_from_dump = true       # also: every table holds the rows its COPY block carried
//! baseline = true               # also: every table holds the rows the baseline recorded
//! allow_growth = false          # true: more rows than expected pass ("no row lost"), as
//!                               # after applying migrations that insert rows
//! [checks.row_counts.tables]
//! "public.users" = 12           # or, nested: public.users = 12
//! ```
//!
//! Counts are exact `count(*)`, never the planner's estimates. A partitioned parent counts the
//! rows of all its partitions; counts taken from the dump compare each table the dump loads
//! alone (`FROM ONLY`), as that is where its rows were loaded, except a partitioned table: rows
//! the dump loads through it (`--load-via-partition-root`, which pg_dump also chooses for hash
//! partitions of an enum) land in its partitions, so it is compared with its whole tree, and
//! the rows the dump loads into partitions of that tree directly are added to it, not counted
//! twice. The baseline's hash partitions are compared together on their parent's tree, as a
//! restore may spread the same rows otherwise over them (an enum hashes by its labels' oids).

use std::fmt;
use std::time::Instant;

use crate::field::Spanned;
use crate::outcome::CheckKind;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

use std::sync::Arc;

use super::{CheckContext, CheckError, CheckResult, Kind, ResolveContext};
use crate::baseline::Baseline;
use crate::field::FieldError;
use crate::names::{self, Object};
use crate::pg::{QualifiedName, describe_sql_error};
use trees::Counted;

mod trees;

crate::outcome::findings! {
    /// What `row_counts` finds.
    pub(crate) enum Found for RowCounts {
        Ok = Pass "row-counts.ok"
            "The table (or every table of the dump or baseline) holds the rows expected, within the tolerance."
            "Nothing.",
        Differs = Fail "row-counts.differs"
            "A table holds more or fewer rows than expected, beyond the tolerance: rows were lost or added."
            "Compare the backup with its source: a dump taken mid-write, a table left out, or a restore that stopped early loses rows.",
        NothingInDump = Fail "row-counts.nothing-in-dump"
            "`expect_from_dump` has nothing to compare: the backup carries no table data pgdrill can count, and a comparison with nothing would pass on any restore."
            "Name the tables and their rows in `tables`, or compare with a baseline.",
        TableMissing = Fail "row-counts.table-missing"
            "A table the check names does not exist in the restored database."
            "Check the name (and its schema), or why the restore did not create it.",
        NotATable = Fail "row-counts.not-a-table"
            "Something other than a table (a view, a foreign table) has the table's name: its rows are not the table's."
            "Find what replaced the table in the backup.",
        AnotherTable = Fail "row-counts.another-table"
            "The name without a schema resolves, for the application's role, to another table than `public`'s."
            "Name the table with its schema, or look at the role's `search_path`.",
        CouldNotCount = Error "row-counts.could-not-count"
            "A table could not be counted: the database refused the query."
            "Read the database's answer in the message.",
    }
}

pub(crate) const KIND: CheckKind = CheckKind::RowCounts;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "RowCountsCheck")]
pub(crate) struct Config {
    /// Table name to expected count.
    #[serde(default)]
    pub tables: Option<Spanned<TableCounts>>,
    /// Allowed difference: a number of rows, or a percentage such as `"2%"`.
    pub tolerance: Option<Spanned<ToleranceValue>>,
    /// Compare every table the dump loads with the rows in its COPY block.
    #[serde(default)]
    pub expect_from_dump: bool,
    /// Compare every table of the scenario's baseline.
    #[serde(default)]
    pub baseline: bool,
    /// More rows than expected pass: the check proves no row was lost.
    #[serde(default)]
    pub allow_growth: bool,
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub(crate) enum ToleranceValue {
    Rows(i64),
    Text(String),
}

/// How far a count may be from its expected value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Tolerance {
    Rows(u64),
    Percent(f64),
}

/// A `tolerance` that is neither a number of rows nor a percentage.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("tolerance must be a number of rows or a percentage like \"2%\", not `{written}`")]
pub(crate) struct BadTolerance {
    /// The value as the scenario gave it (its Rust form, as the message always showed it).
    written: String,
}

impl Tolerance {
    fn parse(value: &ToleranceValue) -> Result<Self, BadTolerance> {
        let bad = || BadTolerance { written: format!("{value:?}") };
        match value {
            ToleranceValue::Rows(n) => u64::try_from(*n).map(Tolerance::Rows).map_err(|_| bad()),
            ToleranceValue::Text(text) => {
                let text = text.trim();
                if let Some(percent) = text.strip_suffix('%') {
                    let p: f64 = percent.trim().parse().map_err(|_| bad())?;
                    if !(0.0..=100.0).contains(&p) {
                        return Err(bad());
                    }
                    Ok(Tolerance::Percent(p))
                } else {
                    text.parse().map(Tolerance::Rows).map_err(|_| bad())
                }
            }
        }
    }

    pub(crate) fn allows(self, expected: i64, actual: i64) -> bool {
        let diff = expected.abs_diff(actual);
        match self {
            Tolerance::Rows(rows) => diff <= rows,
            Tolerance::Percent(p) => (diff as f64) <= (expected.unsigned_abs() as f64) * p / 100.0,
        }
    }

    fn is_exact(self) -> bool {
        matches!(self, Tolerance::Rows(0))
    }
}

impl fmt::Display for Tolerance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tolerance::Rows(n) => write!(f, "±{n}"),
            Tolerance::Percent(p) => write!(f, "±{p}%"),
        }
    }
}

/// `table = count` pairs; dotted keys (`public.users = 12`) nest in TOML and are joined back.
#[derive(Debug, Default)]
pub(crate) struct TableCounts(pub Vec<(String, i64)>);

impl<'de> Deserialize<'de> for TableCounts {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(CountsVisitor)
    }
}

struct CountsVisitor;

impl<'de> Visitor<'de> for CountsVisitor {
    type Value = TableCounts;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a table of `table name = row count`")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TableCounts, A::Error> {
        let mut out = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            match map.next_value::<CountNode>()? {
                CountNode::Count(count) => out.push((key, count)),
                CountNode::Nested(inner) => {
                    out.extend(inner.0.into_iter().map(|(k, c)| (format!("{key}.{k}"), c)));
                }
            }
        }
        Ok(TableCounts(out))
    }
}

impl schemars::JsonSchema for TableCounts {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "TableCounts".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        // A row count, or a table of them under a dotted key's first part (`public.users = 12`).
        schemars::json_schema!({
            "description": "`table = row count`; dotted keys (`public.users = 12`) are schema and table",
            "type": "object",
            "additionalProperties": {
                "anyOf": [
                    { "type": "integer", "minimum": 0 },
                    generator.subschema_for::<TableCounts>()
                ]
            }
        })
    }
}

enum CountNode {
    Count(i64),
    Nested(TableCounts),
}

impl<'de> Deserialize<'de> for CountNode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NodeVisitor;
        impl<'de> Visitor<'de> for NodeVisitor {
            type Value = CountNode;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a row count (a non-negative integer)")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<CountNode, E> {
                if v < 0 {
                    return Err(E::custom(format!("a row count cannot be negative ({v})")));
                }
                Ok(CountNode::Count(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<CountNode, E> {
                i64::try_from(v).map(CountNode::Count).map_err(|_| E::custom("row count too large"))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<CountNode, A::Error> {
                CountsVisitor.visit_map(map).map(CountNode::Nested)
            }
        }
        deserializer.deserialize_any(NodeVisitor)
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Spec {
    pub tables: Vec<(QualifiedName, i64)>,
    pub tolerance: Tolerance,
    pub expect_from_dump: bool,
    pub baseline: Option<Arc<Baseline>>,
    pub allow_growth: bool,
}

impl Kind for Spec {
    const KIND: CheckKind = KIND;
    type Config = Config;

    fn resolve(config: Config, ctx: &ResolveContext) -> Result<Self, FieldError> {
        let baseline = if config.baseline { Some(ctx.require_baseline(KIND)?) } else { None };
        let tolerance = match &config.tolerance {
            Some(t) => Tolerance::parse(t.get_ref()).map_err(|e| FieldError::new(t.span(), e.to_string()))?,
            None => Tolerance::Rows(0),
        };
        let mut tables = Vec::new();
        if let Some(counts) = config.tables {
            let span = counts.span();
            for (name, count) in counts.into_inner().0 {
                let name = QualifiedName::parse(&name).map_err(|m| FieldError::new(span.clone(), m))?;
                tables.push((name, count));
            }
        }
        if tables.is_empty() && !config.expect_from_dump && baseline.is_none() {
            return Err(FieldError::unplaced(
                "row_counts needs `tables`, `expect_from_dump = true` or `baseline = true`",
            ));
        }
        Ok(Spec {
            tables,
            tolerance,
            expect_from_dump: config.expect_from_dump,
            baseline,
            allow_growth: config.allow_growth,
        })
    }

    fn label(&self) -> String {
        let mut names: Vec<String> = self.tables.iter().map(|(t, _)| t.to_string()).collect();
        if self.expect_from_dump {
            names.push("every table in the dump".into());
        }
        if self.baseline.is_some() {
            names.push("every table in the baseline".into());
        }
        names.join(", ")
    }

    fn unqualified(&self) -> Vec<String> {
        self.tables.iter().filter(|(t, _)| t.schema.is_none()).map(|(t, _)| t.name.clone()).collect()
    }

    async fn run(&self, ctx: &CheckContext<'_>) -> Result<Vec<CheckResult>, CheckError> {
        let mut results = Vec::new();
        for (table, expected) in &self.tables {
            results.push(self.compare(ctx, table, *expected).await);
        }
        // A dump of several databases (pg_dumpall) loads into this one only what follows its
        // `\connect` to it.
        let from_dump = if self.expect_from_dump { ctx.dump.rows_in(ctx.database) } else { Default::default() };
        if self.expect_from_dump && from_dump.is_empty() {
            // "0 rows in 0 tables, as in the dump" would pass on any restore.
            results.push(
                CheckResult::build(KIND, "every table in the dump", Instant::now())
                    .expected("the rows of every table the dump's data loads")
                    .actual("the backup carries no table data pgdrill can count (no COPY block, no pg_dump INSERT)")
                    .found(
                        Found::NothingInDump,
                        "`expect_from_dump` has nothing to compare: the backup carries no table data pgdrill can count (a physical backup, a schema-only dump, or rows written by INSERT ... SELECT) (hint: name the tables and their rows in `tables`, or use a baseline)",
                    ),
            );
        } else if self.expect_from_dump {
            let counts = from_dump.into_iter().map(|(t, n)| Counted::in_dump(t, i64::try_from(n).unwrap_or(i64::MAX)));
            let counts = trees::fold_partitions(ctx.pool, counts.collect()).await;
            results.push(self.compare_all(ctx, "dump", "the dump's data loads", counts).await);
        }
        if let Some(baseline) = &self.baseline {
            let counts = baseline.row_counts.iter().map(|(t, n)| (t.clone(), *n)).collect();
            let counts = trees::fold_hash_partitions(ctx.pool, counts).await;
            results.push(self.compare_all(ctx, "baseline", "the baseline recorded", counts).await);
        }
        Ok(results)
    }
}

impl Spec {
    fn accepts(&self, expected: i64, actual: i64) -> bool {
        (self.allow_growth && actual >= expected) || self.tolerance.allows(expected, actual)
    }

    /// How the expected side reads: `12`, `12 ±2`, `at least 12`.
    fn expected_text(&self, expected: i64) -> String {
        let growth = if self.allow_growth { "at least " } else { "" };
        if self.tolerance.is_exact() {
            format!("{growth}{expected}")
        } else {
            format!("{growth}{expected} {}", self.tolerance)
        }
    }

    async fn compare(&self, ctx: &CheckContext<'_>, table: &QualifiedName, expected: i64) -> CheckResult {
        let started = Instant::now();
        let sql = format!("SELECT pg_catalog.count(*) FROM {}", table.sql());
        let expected_text = self.expected_text(expected);
        let result = CheckResult::build(KIND, table.to_string(), started).expected(expected_text).evidence(sql.clone());
        if table.schema.is_none()
            && let Some(why) = ctx.names.elsewhere(&table.name, &QualifiedName::new("public", &table.name))
        {
            return result.actual("another table for the application").found(Found::AnotherTable, why);
        }
        match count(ctx, table, false).await {
            Err(Missing) => {
                let message =
                    names::with_hint(ctx.pool, Object::Table, table, format!("`{table}` does not exist")).await;
                result.actual("table missing").found(Found::TableMissing, message)
            }
            Err(NotATable(kind)) => {
                result.actual(kind.describe()).found(Found::NotATable, super::relation::not_a_table(table, kind))
            }
            Err(Failed(message)) => result.found(Found::CouldNotCount, format!("could not count `{table}`: {message}")),
            Ok(actual) => {
                let ok = self.accepts(expected, actual);
                let message = if actual == expected {
                    format!("`{table}` has {actual} rows")
                } else {
                    let (n, word) =
                        if actual < expected { (expected - actual, "fewer") } else { (actual - expected, "more") };
                    let within = match (ok, self.tolerance.allows(expected, actual)) {
                        (true, true) => format!(", within {}", self.tolerance),
                        (true, false) => ", growth allowed".to_string(),
                        _ => String::new(),
                    };
                    format!("`{table}` has {actual} rows, expected {expected} ({n} {word}{within})")
                };
                result.actual(actual.to_string()).found(if ok { Found::Ok } else { Found::Differs }, message)
            }
        }
    }

    /// One result for a whole set of tables (the dump's, or the baseline's): each must hold
    /// its expected rows, within the tolerance, counted `FROM ONLY` that table (or its whole
    /// partition tree, see [`trees`]).
    async fn compare_all(&self, ctx: &CheckContext<'_>, source: &str, what: &str, tables: Vec<Counted>) -> CheckResult {
        let started = Instant::now();
        let total: i64 = tables.iter().map(|t| t.expected).sum();
        let mut differences = Vec::new();
        let mut restored_total: i64 = 0;
        for Counted { name, table, expected, tree } in &tables {
            let actual = match table {
                Ok(table) => count(ctx, table, !tree).await,
                Err(message) => Err(Failed(message.to_string())),
            };
            let name = if *tree { format!("{name} (its whole partition tree)") } else { name.clone() };
            match actual {
                Ok(actual) => {
                    restored_total += actual;
                    if !self.accepts(*expected, actual) {
                        differences.push(format!("{name} has {actual} ({source}: {expected})"));
                    }
                }
                Err(Missing) => differences.push(format!("{name} is missing ({source}: {expected} rows)")),
                Err(NotATable(kind)) => {
                    differences.push(format!("{name} is {}, not a table ({source}: {expected} rows)", kind.describe()))
                }
                Err(Failed(message)) => differences.push(format!("{name} could not be counted: {message}")),
            }
        }
        let within = if self.tolerance.is_exact() { String::new() } else { format!(" {}", self.tolerance) };
        let growth = if self.allow_growth { "at least " } else { "" };
        let trees = tables.iter().filter(|t| t.tree).count();
        let whole =
            if trees > 0 { format!(" (FROM <table>, its whole tree, for {trees} partitioned)") } else { String::new() };
        let result = CheckResult::build(KIND, format!("every table in the {source}"), started)
            .expected(format!("{growth}{total} rows in {} tables, as in the {source}{within}", tables.len()))
            .evidence(format!(
                "SELECT pg_catalog.count(*) FROM ONLY <table>{whole}, for each of the {} tables {what}",
                tables.len()
            ));
        if differences.is_empty() {
            result
                .actual(format!("{restored_total} rows in {} tables", tables.len()))
                .found(Found::Ok, format!("all {} tables hold the rows {what}", tables.len()))
        } else {
            let n = differences.len();
            let list = differences.join("; ");
            result.actual(format!("{n} of {} tables differ: {list}", tables.len())).found(
                Found::Differs,
                format!(
                    "{n} {} the rows {what}: {list}",
                    if n == 1 { "table does not hold" } else { "tables do not hold" }
                ),
            )
        }
    }
}

/// Why a count has no number.
enum CountError {
    /// The table does not exist: a fact about the restore, so the check fails.
    Missing,
    /// Something else has the table's name (a view, a foreign table): the check fails.
    NotATable(super::relation::Kind),
    /// Anything else: the check could not run.
    Failed(String),
}
use CountError::{Failed, Missing, NotATable};

/// The rows of `table` (`only`: not its inheritance children), once it is known to be a table.
async fn count(ctx: &CheckContext<'_>, table: &QualifiedName, only: bool) -> Result<i64, CountError> {
    match super::relation::kind(ctx.pool, table).await {
        Ok(None) => return Err(Missing),
        Ok(Some(kind)) if !kind.is_table() => return Err(NotATable(kind)),
        Ok(Some(_)) => {}
        Err(err) => return Err(Failed(describe_sql_error(&err))),
    }
    let only = if only { "ONLY " } else { "" };
    let sql = format!("SELECT pg_catalog.count(*) FROM {only}{}", table.sql());
    sqlx::query_scalar::<_, i64>(&sql).fetch_one(ctx.pool).await.map_err(|err| match &err {
        sqlx::Error::Database(db) if db.code().as_deref() == Some("42P01") => Missing,
        _ => Failed(describe_sql_error(&err)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerances() {
        assert!(Tolerance::Rows(0).allows(12, 12));
        assert!(!Tolerance::Rows(0).allows(12, 11));
        assert!(Tolerance::Rows(2).allows(12, 10));
        assert!(Tolerance::Percent(10.0).allows(100, 90));
        assert!(!Tolerance::Percent(10.0).allows(100, 89));
        assert_eq!(Tolerance::parse(&ToleranceValue::Text("2%".into())), Ok(Tolerance::Percent(2.0)));
        assert!(Tolerance::parse(&ToleranceValue::Rows(-1)).is_err());
        assert!(Tolerance::parse(&ToleranceValue::Text("lots".into())).is_err());
    }

    #[test]
    fn nested_and_quoted_table_keys() {
        #[derive(Deserialize)]
        struct Doc {
            tables: TableCounts,
        }
        let doc: Doc = toml::from_str("[tables]\n\"audit.events\" = 3\npublic.users = 12\n").unwrap();
        let mut got = doc.tables.0;
        got.sort();
        assert_eq!(got, vec![("audit.events".to_owned(), 3), ("public.users".to_owned(), 12)]);
        assert!(toml::from_str::<Doc>("[tables]\nusers = -1\n").is_err());
    }
}

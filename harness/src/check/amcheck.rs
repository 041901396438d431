//! `amcheck`: the restored database's tables and indexes are not corrupt, as PostgreSQL's own
//! `pg_amcheck` judges them (the target's own, so that it matches the server): every heap page,
//! and every btree index with `--heapallindexed` (each heap tuple must have its index entry: an
//! index built by a function that lies about being IMMUTABLE, or under another collation, fails);
//! GIN indexes too where the server's pg_amcheck checks them (PostgreSQL 18). Each corruption is
//! reported with its relation and block. It installs the `amcheck` extension when missing, which
//! needs a superuser: a container or local target, or a server admin that may.
//!
//! pg_amcheck checks only the indexes that are valid, ready and live (its `bt_index_check`
//! query ends `AND i.indisready AND i.indisvalid AND i.indislive`): any other it prints as
//! checked and passes over without a word. A backup can set `pg_index.indisready = false` on a
//! unique index, which is then not maintained (duplicates go in, index scans miss rows) and
//! which `bt_index_check` called alone reports as lacking heap tuples. So the check lists such
//! indexes (of the `relations` named, or all) and fails naming each, with what it does.
//!
//! ```toml
//! [checks.amcheck]
//! # relations = ["public.users", "public.users_pkey"]   # default: every relation of the database
//! # heapallindexed = true                               # default: true
//! # timeout = "10m"                                     # the time budget (default 10m)
//! ```

use std::time::{Duration, Instant};

use crate::field::Spanned;
use crate::outcome::CheckKind;
use serde::Deserialize;

use super::{CheckContext, CheckError, CheckResult, Kind, OrCheckError, ResolveContext};
use crate::field::{FieldError, parse_duration};
use crate::pg::QualifiedName;

crate::outcome::findings! {
    /// What `amcheck` finds.
    pub(crate) enum Found for Amcheck {
        NoCorruption = Pass "amcheck.no-corruption"
            "pg_amcheck read every heap page and every btree index against its table, and found no corruption."
            "Nothing.",
        Corruption = Fail "amcheck.corruption"
            "pg_amcheck found corruption in a table or an index."
            "Read the relations and blocks it names; rebuild a corrupt index (`REINDEX`), and find where a heap was damaged.",
        UnsoundIndex = Fail "amcheck.unsound-index"
            "An index is not valid, ready or live, so pg_amcheck passed over it: it proves nothing about it."
            "`REINDEX` the indexes named, in the source if they are unsound there too.",
        Failed = Error "amcheck.failed"
            "pg_amcheck failed without naming corruption (it needs the amcheck extension, which only a superuser installs)."
            "Read its error in the message.",
    }
}

pub(crate) const KIND: CheckKind = CheckKind::Amcheck;

/// Findings listed in the message; the rest are counted.
const LISTED: usize = 10;

/// The indexes pg_amcheck passes over: not valid, ready and live (temporary ones aside, as it
/// leaves those out too), with their tables.
const UNSOUND_SQL: &str = "SELECT n.nspname::text, i.relname::text, c.relname::text, x.indisunique, x.indisvalid, \
     x.indisready, x.indislive FROM pg_catalog.pg_index x \
     JOIN pg_catalog.pg_class i ON i.oid OPERATOR(pg_catalog.=) x.indexrelid \
     JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) x.indrelid \
     JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) i.relnamespace \
     WHERE NOT (x.indisvalid AND x.indisready AND x.indislive) \
       AND i.relpersistence OPERATOR(pg_catalog.<>) 't' ORDER BY 1, 2";

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "AmcheckCheck")]
pub(crate) struct Config {
    /// Tables or indexes (`schema.name`, patterns as pg_amcheck reads them); default: all.
    #[serde(default)]
    pub relations: Vec<String>,
    /// Check that every heap tuple has its btree index entries (default true).
    pub heapallindexed: Option<bool>,
    /// The time budget.
    pub timeout: Option<Spanned<String>>,
}

#[derive(Debug, Clone)]
pub(crate) struct Spec {
    /// As the scenario writes them: pg_amcheck's `--relation` patterns.
    pub relations: Vec<String>,
    /// The same, read as names once, when the scenario is resolved.
    pub patterns: Vec<QualifiedName>,
    pub heapallindexed: bool,
    pub timeout: Duration,
}

impl Kind for Spec {
    const KIND: CheckKind = KIND;
    type Config = Config;

    fn resolve(config: Config, _ctx: &ResolveContext) -> Result<Self, FieldError> {
        let patterns = config
            .relations
            .iter()
            .map(|r| QualifiedName::parse(r))
            .collect::<Result<_, _>>()
            .map_err(FieldError::unplaced)?;
        let timeout = config.timeout.as_ref().map(parse_duration).transpose()?.unwrap_or(Duration::from_secs(600));
        let heapallindexed = config.heapallindexed.unwrap_or(true);
        Ok(Spec { relations: config.relations, patterns, heapallindexed, timeout })
    }

    fn label(&self) -> String {
        if self.relations.is_empty() { "every relation".into() } else { self.relations.join(", ") }
    }

    async fn run(&self, ctx: &CheckContext<'_>) -> Result<Vec<CheckResult>, CheckError> {
        let started = Instant::now();
        let mut args = ctx.target.tools.connection_args(ctx.database);
        args.extend(["--install-missing", "--jobs", "2"].map(String::from));
        if self.heapallindexed {
            args.push("--heapallindexed".into());
        }
        for relation in &self.relations {
            args.extend(["--relation".into(), relation.clone()]);
        }
        let evidence = format!("pg_amcheck {}", args.join(" "));
        let expected = "no corruption in any heap page or index entry";
        let error = |message: String| CheckError::new(message).expected(expected).evidence(evidence.clone());
        let (tx, collect) = crate::provision::tools::stdout_collector();
        let run = ctx.target.tools.run("pg_amcheck", &args, Some(tx), ctx.redactor);
        let output = match tokio::time::timeout(self.timeout, run).await {
            Err(_) => {
                collect.abort();
                return Err(error(format!(
                    "pg_amcheck did not finish within {} (raise `timeout`, or name the `relations` that matter)",
                    humantime::format_duration(self.timeout)
                )));
            }
            Ok(Err(e)) => return Err(error(format!("pg_amcheck could not run: {}", crate::error::error_chain(&e)))),
            Ok(Ok(output)) => output,
        };
        let stdout = collect.await.unwrap_or_default();
        let rows: Vec<(String, String, String, bool, bool, bool, bool)> = sqlx::query_as(UNSOUND_SQL)
            .fetch_all(ctx.pool)
            .await
            .or_check("could not list the indexes pg_amcheck passes over")
            .map_err(|e| e.expected(expected).evidence(format!("{evidence}; {UNSOUND_SQL}")))?;
        let unsound: Vec<Unsound> = rows
            .into_iter()
            .filter(|(schema, index, table, ..)| self.covers(schema, index, table))
            .filter_map(|(schema, index, table, unique, valid, ready, live)| {
                let why = crate::baseline::unsound_index(unique, valid, ready, live)?;
                Some(Unsound {
                    index: QualifiedName::new(&schema, &index).to_string(),
                    why,
                    table: QualifiedName::new(&schema, &table).to_string(),
                })
            })
            .collect();
        let result = CheckResult::build(KIND, self.label(), started).expected(expected).evidence(format!(
            "{evidence}; SELECT ... FROM pg_index WHERE NOT (indisvalid AND indisready AND indislive)"
        ));
        Ok(vec![judge(result, output.status, &stdout, &output.stderr, &unsound)])
    }
}

impl Spec {
    /// Whether pg_amcheck, given this check's `relations`, would check the index `index` of
    /// `table` in `schema`: every index when none are named, else one named or whose table is
    /// (pg_amcheck checks a table's indexes with it).
    fn covers(&self, schema: &str, index: &str, table: &str) -> bool {
        self.patterns.is_empty()
            || self.patterns.iter().any(|pattern| {
                let schema_matches = pattern.schema.as_deref().is_none_or(|s| glob(s, schema));
                schema_matches && (glob(&pattern.name, index) || glob(&pattern.name, table))
            })
    }
}

/// `text` matches `pattern`, where `*` stands for any run of characters and `?` for one, as
/// pg_amcheck reads a pattern.
fn glob(pattern: &str, text: &str) -> bool {
    let (pattern, text): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    // matched[j]: the pattern so far matches text[..j].
    let mut matched = vec![false; text.len() + 1];
    matched[0] = true;
    for p in &pattern {
        let mut next = vec![false; text.len() + 1];
        for j in 0..=text.len() {
            next[j] = match p {
                '*' => matched[j] || (j > 0 && next[j - 1]),
                '?' => j > 0 && matched[j - 1],
                c => j > 0 && matched[j - 1] && text[j - 1] == *c,
            };
        }
        matched = next;
    }
    matched[text.len()]
}

/// An index pg_amcheck passed over, and why it is not sound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unsound {
    /// `schema.index`.
    pub index: String,
    pub table: String,
    pub why: String,
}

/// One corruption pg_amcheck reported: the relation, the block when it names one, what it said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Finding {
    pub relation: String,
    pub block: Option<u64>,
    pub message: String,
}

/// pg_amcheck's report: a line naming the relation (`heap table "db.public.t", block 0, offset
/// 3:` or `btree index "db.public.t_idx":`), then its message, indented.
pub(crate) fn findings(stdout: &str) -> Vec<Finding> {
    let mut found: Vec<Finding> = Vec::new();
    for line in stdout.lines() {
        if line.starts_with(char::is_whitespace) {
            if let Some(last) = found.last_mut() {
                let text = line.trim();
                if !text.is_empty() && !text.starts_with("query was:") {
                    if !last.message.is_empty() {
                        last.message.push(' ');
                    }
                    last.message.push_str(text);
                }
                if last.block.is_none() {
                    last.block = tuple_block(text);
                }
            }
            continue;
        }
        let Some(header) = line.trim_end().strip_suffix(':') else { continue };
        let Some((_, quoted)) = header.split_once('"') else { continue };
        let Some((name, rest)) = quoted.split_once('"') else { continue };
        // "db.schema.relation": the database is the drill's own; the rest names the relation.
        let relation = name.split_once('.').map(|(_, r)| r).unwrap_or(name).to_owned();
        let block = rest.split(", ").find_map(|part| part.trim().strip_prefix("block ")?.parse().ok());
        found.push(Finding { relation, block, message: String::new() });
    }
    found
}

/// The block of a tuple id `(12,3)` in a message.
fn tuple_block(text: &str) -> Option<u64> {
    let start = text.find('(')?;
    let (block, _) = text[start + 1..].split_once(',')?;
    block.trim().parse().ok()
}

/// From pg_amcheck's exit and report, and the indexes it passed over, to the verdict.
fn judge(
    result: super::CheckResultBuilder,
    status: i64,
    stdout: &str,
    stderr: &str,
    unsound: &[Unsound],
) -> CheckResult {
    let found = findings(stdout);
    let passed_over: Vec<String> =
        unsound.iter().map(|u| format!("index `{}` on `{}` is {}", u.index, u.table, u.why)).collect();
    let passed_over = (!passed_over.is_empty()).then(|| {
        format!(
            "pg_amcheck passes over {} index(es) that are not valid, ready and live without a word: {}",
            unsound.len(),
            crate::listing::first(&passed_over, LISTED, "; ")
        )
    });
    if found.is_empty() {
        return match (status, passed_over) {
            (0, None) => result.actual("no corruption").found(Found::NoCorruption, "pg_amcheck found no corruption"),
            (0, Some(text)) => {
                result.actual(format!("{} unsound index(es)", unsound.len())).found(Found::UnsoundIndex, text)
            }
            _ => result.found(Found::Failed, format!(
                "pg_amcheck failed (exit {status}): {} (hint: it needs the amcheck extension, which only a superuser installs)",
                stderr.trim()
            )),
        };
    }
    let mut relations: Vec<&str> = found.iter().map(|f| f.relation.as_str()).collect();
    relations.dedup();
    let listed: Vec<String> = found
        .iter()
        .take(LISTED)
        .map(|f| {
            let block = f.block.map(|b| format!(", block {b}")).unwrap_or_default();
            format!("{}{block}: {}", f.relation, f.message)
        })
        .collect();
    let listed = crate::listing::and_more(&listed, found.len(), "; ");
    let also = passed_over.map(|text| format!("; and {text}")).unwrap_or_default();
    result
        .actual(format!("{} corruption(s) in {}", found.len(), relations.join(", ")))
        .found(Found::Corruption, format!("pg_amcheck found corruption: {listed}{also}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Verdict;

    const REPORT: &str = r#"btree index "drill.public.readings_scaled_idx":
    ERROR:  heap tuple (0,2) from table "readings" lacks matching index tuple within index "readings_scaled_idx"
    HINT:  Retrying verification using the function bt_index_parent_check() might provide a more specific error.
query was: SELECT * FROM "pg_catalog".bt_index_check(index := '16402'::regclass, heapallindexed := true)
heap table "drill.public.events", block 7, offset 3:
    xmin 4294967295 precedes relation freeze threshold 0:730
"#;

    fn builder() -> super::super::CheckResultBuilder {
        CheckResult::build(KIND, "every relation", Instant::now())
    }

    #[test]
    fn each_corruption_is_named_with_its_relation_and_block() {
        let found = findings(REPORT);
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!((found[0].relation.as_str(), found[0].block), ("public.readings_scaled_idx", Some(0)));
        assert!(found[0].message.contains("lacks matching index tuple") && !found[0].message.contains("query was"));
        assert_eq!((found[1].relation.as_str(), found[1].block), ("public.events", Some(7)));
        let result = judge(builder(), 2, REPORT, "", &[]);
        assert_eq!(result.code, "amcheck.corruption");
        assert_eq!(result.actual, "2 corruption(s) in public.readings_scaled_idx, public.events");
        assert!(result.message.contains("public.events, block 7: xmin 4294967295"), "{}", result.message);
    }

    #[test]
    fn a_clean_run_passes_and_a_failed_one_is_an_error() {
        assert_eq!(judge(builder(), 0, "", "", &[]).code, "amcheck.no-corruption");
        let failed = judge(builder(), 1, "", "pg_amcheck: error: no relations to check matching \"public.nope\"", &[]);
        assert_eq!((failed.verdict, failed.code.as_str()), (Verdict::Error, "amcheck.failed"));
        assert!(failed.message.contains("public.nope"), "{}", failed.message);
    }

    #[test]
    fn an_index_pg_amcheck_passes_over_fails_naming_what_it_does() {
        let unsound = [Unsound {
            index: "public.orders_email_key".into(),
            table: "public.orders".into(),
            why: crate::baseline::unsound_index(true, true, false, true).unwrap(),
        }];
        let result = judge(builder(), 0, "", "", &unsound);
        assert_eq!(result.code, "amcheck.unsound-index");
        assert_eq!(
            result.message,
            "pg_amcheck passes over 1 index(es) that are not valid, ready and live without a word: index `public.orders_email_key` on `public.orders` is not ready (pg_index.indisready = false): it is not maintained, so rows written since are missing from it and uniqueness is not enforced"
        );
        let both = judge(builder(), 2, REPORT, "", &unsound);
        assert!(both.message.contains("; and pg_amcheck passes over 1 index(es)"), "{}", both.message);
    }

    #[test]
    fn the_indexes_judged_are_those_of_the_relations_named() {
        let spec = |relations: &[&str]| Spec {
            relations: relations.iter().map(|r| r.to_string()).collect(),
            patterns: relations.iter().map(|r| QualifiedName::parse(r).unwrap()).collect(),
            heapallindexed: true,
            timeout: Duration::from_secs(1),
        };
        assert!(spec(&[]).covers("public", "orders_email_key", "orders"));
        assert!(spec(&["public.orders"]).covers("public", "orders_email_key", "orders"));
        assert!(spec(&["orders_email_key"]).covers("public", "orders_email_key", "orders"));
        assert!(spec(&["public.order*"]).covers("public", "orders_email_key", "orders"));
        assert!(!spec(&["public.users"]).covers("public", "orders_email_key", "orders"));
        assert!(!spec(&["audit.orders"]).covers("public", "orders_email_key", "orders"));
        assert!(glob("o?ders", "orders") && glob("*", "") && !glob("a*b", "ac"));
    }
}

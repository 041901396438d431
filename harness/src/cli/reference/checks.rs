//! The reference page of check kinds: what a PASS of each proves ([`CheckKind::proves`]), what
//! it does not ([`CheckKind::does_not_prove`]), what it rests on and how each premise is
//! established ([`CheckKind::premises`]), in detail, and where its scenario keys are.

use std::fmt::Write;

use super::{GENERATED, cell};
use crate::outcome::CheckKind;

pub(super) fn page() -> String {
    let mut out = format!("{GENERATED}\n\n# Check kinds: what a PASS proves\n\n");
    out.push_str(
        "Each kind of check, with what its PASS proves and what it does not prove. A check that\n\
         cannot run is an error, which fails the drill as a failure does. A drill with no check says\n\
         in its verdict that it proves only that the backup restores. Each kind's keys are in the\n\
         [scenario reference](scenario.md); each kind also documents its keys at the top of its\n\
         file in `harness/src/check/`.\n\n\
         Each kind's section lists the premises its PASS rests on, and how each is established:\n\n\
         - by behaviour: the role or the server did it, rolled back;\n\
         - by reading the catalog or the data;\n\
         - by comparison with what the scenario, baseline, dump or fingerprint file gives;\n\
         - by PostgreSQL's own program;\n\
         - by analysis of the code the backup holds;\n\
         - or by acceptance: the scenario's word, with its reason in the report.\n\n\
         Every result's evidence ends with its kind's, and every result has a code: the\n\
         [findings reference](findings.md) lists each kind's.\n\n\
         | kind | a PASS proves | it does not prove |\n|---|---|---|\n",
    );
    for kind in CheckKind::ALL {
        let _ = writeln!(out, "| `{kind}` | {} | {} |", cell(kind.proves()), cell(kind.does_not_prove()));
    }
    for kind in CheckKind::ALL {
        let (keys, anchor) = keys(kind);
        let _ = write!(
            out,
            "\n## `{kind}` {{#{kind}}}\n\n**A PASS proves** {}.\n\n**It does not prove** {}.\n\n**It rests on**, each premise with how the check establishes it:\n\n{}\n{}\n\nIts keys: [{keys}](scenario.md#{anchor}).\n",
            kind.proves(),
            kind.does_not_prove(),
            premises(kind),
            details(kind)
        );
    }
    out
}

/// A kind's premises as a list: `- claim (by reading)`.
fn premises(kind: CheckKind) -> String {
    kind.premises().iter().map(|p| format!("- {} ({})\n\n", p.claim, p.by.as_str())).collect()
}

/// Where a kind's keys are in the scenario, and that section's anchor in the scenario reference.
fn keys(kind: CheckKind) -> (String, String) {
    match kind {
        CheckKind::Api => ("`[app]`, its `[[app.requests]]`".into(), "app-requests".into()),
        CheckKind::Objectives => ("`[objectives]`".into(), "objectives".into()),
        // A table of names: its row in `[checks]` says what it takes.
        CheckKind::Extensions | CheckKind::Triggers => (format!("`[checks.{kind}]`, in `[checks]`"), "checks".into()),
        kind => (format!("`[checks.{kind}]`"), format!("checks-{kind}")),
    }
}

/// What a check of this kind does, in detail: the table the README once held. Paragraphs (`\n\n`)
/// and lists are Markdown, each paragraph under the docs test's 120 words.
const fn details(kind: CheckKind) -> &'static str {
    match kind {
        CheckKind::Extensions => "extensions installed, at least the given versions (and available before the restore)",
        CheckKind::SchemaVersion => {
            "the migration journal's newest entry against the migration the code expects: `expected`, or `expected_from` the code's migrations folder. Both agree when they name the same migration in whatever form the runner records it (`3`, `0003_name`, `0003_name.up.sql`): by its number, then its name (`0003_a` is not `0003_b`). A mismatch says which is newer, and by how many migrations.\n\nPresets: `rails`, `dbmate`, `golang-migrate` (dirty fails), `sqlx`, `flyway` (failed rows fail), `goose` (applied rows), `drizzle`, `prisma` (unfinished or rolled-back rows fail), `django` (per `app`), `alembic` (the heads of `versions/`), `liquibase` (the root changelog orders changesets), `knex` (a held lock fails), `typeorm`, `sequelize`, `entity-framework`, `atlas` (errored or partly applied revisions fail), `sqitch` (the plan, per `project`); or any table/column (`records` = `number`, `stem`, `name`)"
        }
        CheckKind::RowCounts => {
            "per table exact or within a tolerance; every table as in the dump (`expect_from_dump`: its COPY blocks' lines, or the rows of pg_dump's `INSERT`s; a partitioned table the dump loads through, as `--load-via-partition-root` and pg_dump itself for hash partitions of an enum do, counted with its whole tree, its partitions the dump also loads added to it, not counted twice) or the baseline (a hash-partitioned table's partitions compared together, on its whole tree: an enum hashes by its labels' oids, which a restore assigns anew, so the same rows land in other partitions)"
        }
        CheckKind::Fingerprints => {
            "every table holds the very rows the source held in the backup's snapshot, value for value: the fingerprint file `pgdrill fingerprint` took is computed again on the restore (same columns, same key ranges, the settings that change a value's text pinned); a table whose content differs fails naming each key range that differs and whether rows or only values changed; a table missing, a view now, or with a column lost or retyped fails"
        }
        CheckKind::Canary => {
            "a row the source holds on purpose (`row = { key = \"...\" }` picks exactly one) comes back with exactly the values `expect` names, read as text with the fingerprints' pinned settings; missing, doubled or changed fails"
        }
        CheckKind::Indexes => {
            "named indexes exist and are sound (valid, ready: `indisready`, maintained by writes, and live: `indislive`, not being dropped; a unique index a backup left not ready lets duplicates in and index scans miss rows), with method, operator class, uniqueness and, if given, `keys` and `predicate`; every baseline index (by method) sound and the same part by part: table, method, uniqueness, key columns and expressions, operator classes (with their schema), collations, order, `INCLUDE`, predicate, `NULLS NOT DISTINCT`, the constraint it backs, storage parameters, each difference named (`covers (lower(email), id) where the baseline has (lower(email))`); a baseline index not sound when captured is not expected (pg_dump leaves it out)"
        }
        CheckKind::Rls => {
            "row security enabled (and forced); policies with their kind, roles, `USING` and `WITH CHECK` (as written in `policies`, or the baseline's, where a permissive policy the baseline lacks fails too; with `exact_policies`, any policy not listed on the tables named fails); fail-closed proven on every table, empty ones too, in a session the application role opens itself (a role per table; no SELECT privilege counts as closed), with two tenants' rows (the table's, else probe rows below), and the policies' code read whole (a setting a session may set is tried, other facts about the session fail unless trusted); tenant values read as the tenant column's type (a uuid in any case, `007` for an integer)"
        }
        CheckKind::AppendOnly => {
            "in a session the writing role opens itself, INSERT adds a row; UPDATE (each column it could change), DELETE, TRUNCATE refused, by privilege, trigger (whatever its SQLSTATE), rule or policy (no row of the table changed, by the session's own statistics), all rolled back; what guards them, read whole, opens for no setting the role sets and reads nothing no try shows; the listed triggers fire in ordinary sessions (enabled or ALWAYS; REPLICA-only and disabled fail); `settings` for what the writer sets per session (a tenant a `WITH CHECK` policy reads).\n\nWith `key`, the trail only grew: every row of the previous drill's backup, fingerprinted by ranges of the key and kept in the history, is still there unchanged. A row deleted, changed or slipped in among the old ones fails, naming its range."
        }
        CheckKind::Roles => {
            "a role's floor (CONNECT, USAGE, table and column privileges) and ceiling (attributes, `login = false` for NOLOGIN, ownership, CREATE, other schemas, server-file and all-data roles), each failure saying what the attribute or membership allows. What it is a member of counts as its own (an object owned through a membership is every privilege on it), and a membership in an elevated role fails. `accept = [{ attribute = \"BYPASSRLS\", reason = \"...\" }, { member_of = \"pg_read_all_data\", reason = \"...\" }]` passes one by design, shown with its reason (one the role lacks fails as stale).\n\nWith `forbidden_schemas`, a view or `SECURITY DEFINER` function the role may use that reads one fails. A definer reads a schema its owner may use when it names it anywhere (its pinned `search_path` included), when it pins no `search_path`, or when it runs SQL its caller builds. `accept = [{ through = \"app_public.current_user_id()\", code = \"<its sha256, as the failure prints it>\", reason = \"...\" }]` passes a definer function by design, for that code only (rewritten, it fails again).\n\n`exact = true`: nothing beyond the listed privileges on any table of the schemas named, each extra one said with how it is held (directly, via PUBLIC, via a membership, as owner)"
        }
        CheckKind::Graphs => {
            "every Apache AGE graph answers Cypher; vertex and edge counts per label of a named `graph` (the baseline's, a label's count in the scenario replacing that label's only)"
        }
        CheckKind::Partitions => {
            "monthly partitions from N months back to M ahead on a range key of one date, timestamp or timestamptz column (any other key fails saying what it is); a default partition"
        }
        CheckKind::Triggers => {
            "each named table has exactly the listed triggers (foreign keys' internal ones aside), each firing in ordinary sessions: one lost (an audit trail no longer written), disabled, REPLICA-only or added fails, with its definition, and so does one enabled the ordinary way when the backup made sessions replicas (`ALTER DATABASE/ROLE ... SET session_replication_role = replica`); `init` lists every table that has one"
        }
        CheckKind::Schemas => {
            "every baseline schema with its tables, enums and sequences (an enum may gain labels, not lose or reorder them), each behaving as in the baseline in its:\n\n\
             - columns: type, NOT NULL, default, generated and identity expressions, collation, order;\n\
             - constraints: definition, `NOT VALID` where the baseline's was validated, not enforced where a trigger that checks it is disabled or `REPLICA` (on the table or one of its partitions), deferrable;\n\
             - triggers: `tgenabled` (one `ENABLE REPLICA` or disabled no longer fires, on the table or on one partition), and the sha256 of the function it runs, so a body replaced under its name shows; one the baseline lacks fails;\n\
             - rules;\n\
             - sequences: type, bounds, step, cycling.\n\n\
             Each difference is a sentence saying what the backup did. Sessions the backup made replicas (`ALTER DATABASE/ROLE ... SET session_replication_role = replica`) fail the schemas whose triggers and foreign keys they silence.\n\n\
             No sequence is behind its column, in its own direction (a descending one: below the column's minimum). Past its last value, a cycling one starts again; one that does not cycle fails."
        }
        CheckKind::Sql => {
            "any one statement (a query, a data-modifying `WITH`, `INSERT`/`UPDATE`/`DELETE` with or without `RETURNING`) in a transaction always rolled back, with an expected value or rows, each value as psql prints it (`t`/`f`, numerics with their scale), by position; TOML numbers compare numerically (1.5 = 1.50), SQL NULL is `{ null = true }` (never the text `'NULL'`); optionally as a role with session `settings`, its code read (the policies, triggers and rules of the tables its plan touches, the functions and views it names): what that code reads about the session and the drill cannot try fails as proven only for sessions like the drill's, unless `trusted`; several statements, transaction control, `PREPARE`, `DISCARD` and `COPY` refused"
        }
        CheckKind::Amcheck => {
            "no corruption: the target's `pg_amcheck` over every heap page and btree index (`--heapallindexed`; GIN on PostgreSQL 18), or named `relations`, within a time budget; each corruption with its relation and block; an index pg_amcheck passes over without a word (not valid, ready and live) fails, named with what it does"
        }
        CheckKind::Checksums => {
            "every data page has the checksum it was written with: `pg_checksums --check` (of the cluster's own binaries) over the whole cluster after a clean shutdown of a container, local or pod target (a pod's runs in the server's container, through its agent), started again afterwards (it runs after every other check); each bad page named with its relation, database and block; a cluster without data checksums fails (nothing to prove: a physical backup's source had them off; a dump's target always has them)"
        }
        CheckKind::VectorRecall => {
            "each HNSW/IVFFlat index (or the named ones) returns the neighbours an exact scan finds: stored vectors as k-NN queries through the index (with `ef_search`/`probes`) and exactly, mean recall@k ≥ `min_recall` (0.9) and, if set, every query's ≥ `min_worst`; an index the application's `distance` cannot use, or left invalid, fails"
        }
        CheckKind::PointInTime => {
            "a point-in-time recovery stopped at its target, from both sides: `present`, a query about a change made before the target, returns true (else \"recovery stopped short of it\") and `absent`, one about a change made after it, returns false (else \"recovery went past the target\"); both required, each one row of one boolean (anything else is an error), run read-only"
        }
        CheckKind::Collations => {
            "text indexes sort as they were built: in every database (the drilled one only on a shared server), the default collation's recorded version (`datcollversion`) and every `pg_collation` version against the target's own libraries; a mismatch (a physical backup restored on another glibc or ICU) fails naming the database or collation, both versions and the indexes under it, with the repair as a hint (`REINDEX`, then `ALTER DATABASE ... REFRESH COLLATION VERSION` / `ALTER COLLATION ... REFRESH VERSION`); no recorded version (C, POSIX) passes, saying so"
        }
        CheckKind::Api => "(from `[app]`) the application boots on the restored database and its API answers",
        CheckKind::Objectives => {
            "the recovery time (`rto`: from the drill's start until the restored database is ready) and the backup's age when the drill starts (`rpo`, from the best evidence the backup carries: an archive's header, a plain dump's `Started on` line, a date in its name, else its modification time), each against the objective the business set; a missed one fails the drill, and an RTO that can no longer be met stops the drill at once"
        }
    }
}

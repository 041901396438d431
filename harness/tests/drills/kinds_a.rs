//! The `append_only`, `sql`, `partitions` and `graphs` kinds, both ways: one scenario drills the
//! PLUR fixture with a `kinds` schema added (audit tables kept append-only by privilege, by
//! triggers and by rules; values of every kind of type; statements that change rows, rolled
//! back; partitioned tables; the permission graph), and passes; then the same scenario drills a
//! broken variant of that backup and each check fails saying what it expected and what it found.
//! Counting labels without naming the graph is a scenario error.

use pgdrill::{CheckResult, Verdict};

use crate::util::{Scratch, fixture_text, root};

/// The `kinds` schema, added to the PLUR dump (whose `search_path` is empty: every name is
/// qualified).
const KINDS: &str = r#"
CREATE SCHEMA kinds;
GRANT USAGE ON SCHEMA kinds TO kinds_writer;

-- Append-only by privilege: the writer may only read and insert.
CREATE TABLE kinds.audit_priv (at timestamptz NOT NULL DEFAULT now(), note text NOT NULL);
INSERT INTO kinds.audit_priv (note) VALUES ('one'), ('two');
GRANT SELECT, INSERT ON kinds.audit_priv TO kinds_writer;

-- Append-only by triggers, though every privilege is granted: UPDATE and DELETE raise
-- insufficient_privilege (42501), TRUNCATE a plain exception (P0001), fired always.
CREATE FUNCTION kinds.refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'audit rows are immutable' USING ERRCODE = 'insufficient_privilege'; END $$;
CREATE FUNCTION kinds.refuse_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'audit rows are never truncated'; END $$;
CREATE TABLE kinds.audit_trigger (at timestamptz NOT NULL DEFAULT now(), note text NOT NULL);
INSERT INTO kinds.audit_trigger (note) VALUES ('one'), ('two');
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON kinds.audit_trigger TO kinds_writer;
CREATE TRIGGER audit_trigger_immutable BEFORE UPDATE OR DELETE ON kinds.audit_trigger
    FOR EACH ROW EXECUTE FUNCTION kinds.refuse();
CREATE TRIGGER audit_trigger_no_truncate BEFORE TRUNCATE ON kinds.audit_trigger
    FOR EACH STATEMENT EXECUTE FUNCTION kinds.refuse_truncate();
ALTER TABLE kinds.audit_trigger ENABLE ALWAYS TRIGGER audit_trigger_no_truncate;

-- Append-only by rules: UPDATE and DELETE are granted and do nothing (0 rows affected).
CREATE TABLE kinds.audit_rule (at timestamptz NOT NULL DEFAULT now(), note text NOT NULL);
INSERT INTO kinds.audit_rule (note) VALUES ('one'), ('two');
GRANT SELECT, INSERT, UPDATE, DELETE ON kinds.audit_rule TO kinds_writer;
CREATE RULE audit_rule_no_update AS ON UPDATE TO kinds.audit_rule DO INSTEAD NOTHING;
CREATE RULE audit_rule_no_delete AS ON DELETE TO kinds.audit_rule DO INSTEAD NOTHING;

-- Values as psql prints them: a numeric keeps its scale, booleans are t/f, NULL is not 'NULL'.
CREATE TABLE kinds.prices (id integer PRIMARY KEY, amount numeric(10,2), active boolean, note text);
INSERT INTO kinds.prices VALUES (1, 1.50, true, NULL), (2, 2.00, false, 'NULL');
CREATE TABLE kinds.ledger (id integer);
INSERT INTO kinds.ledger VALUES (1), (2), (3);
GRANT SELECT, DELETE ON kinds.ledger TO kinds_writer;

-- Monthly partitions on a date and on a timestamptz key (one partition covers every month).
CREATE TABLE kinds.events (id bigint, created_on date) PARTITION BY RANGE (created_on);
CREATE TABLE kinds.events_all PARTITION OF kinds.events FOR VALUES FROM ('2000-01-01') TO ('2100-01-01');
CREATE TABLE kinds.events_default PARTITION OF kinds.events DEFAULT;
CREATE TABLE kinds.sessions (started_at timestamptz) PARTITION BY RANGE (started_at);
CREATE TABLE kinds.sessions_all PARTITION OF kinds.sessions
    FOR VALUES FROM ('2000-01-01 00:00:00+00') TO ('2100-01-01 00:00:00+00');
"#;

/// What the broken variant changes, after [`KINDS`].
const BROKEN: &str = r#"
-- An INSERT that appends nothing.
CREATE RULE audit_priv_swallow AS ON INSERT TO kinds.audit_priv DO INSTEAD NOTHING;
-- A trigger that fires only in replica sessions protects nothing.
ALTER TABLE kinds.audit_trigger ENABLE REPLICA TRIGGER audit_trigger_immutable;
-- DELETE works again.
DROP RULE audit_rule_no_delete ON kinds.audit_rule;
-- A NULL became the text 'NULL', and an amount changed.
UPDATE kinds.prices SET note = 'NULL', amount = 1.51 WHERE id = 1;
ALTER TABLE kinds.ledger RENAME TO "Ledger";
-- Partitioned by an integer, and a table renamed.
DROP TABLE kinds.events;
CREATE TABLE kinds.events (id bigint, created_on date) PARTITION BY RANGE (id);
CREATE TABLE kinds.events_low PARTITION OF kinds.events FOR VALUES FROM (0) TO (1000);
ALTER TABLE kinds.sessions RENAME TO session;
"#;

const SCENARIO: &str = r#"
baseline = "baseline.json"

[source]
path = "good.sql"

[[restore.roles]]
name = "plur_app"

[[restore.roles]]
name = "kinds_writer"

[[checks.append_only]]
table = "kinds.audit_priv"
role = "kinds_writer"
insert = "INSERT INTO kinds.audit_priv (note) VALUES ('probe')"

[[checks.append_only]]
table = "kinds.audit_trigger"
role = "kinds_writer"
insert = "INSERT INTO kinds.audit_trigger (note) VALUES ('probe')"
triggers = ["audit_trigger_immutable", "audit_trigger_no_truncate"]

[[checks.append_only]]
table = "kinds.audit_rule"
role = "kinds_writer"
insert = "INSERT INTO kinds.audit_rule (note) VALUES ('probe')"

# Statements that change rows run, in a transaction that is rolled back: "ledger" and "prices"
# below see the restored rows. Checks run three at once, in this order, so "ledger", three
# places after the last of these, starts once they have finished (and rolled back).
[[checks.sql]]
name = "a data-modifying WITH as a role"
query = "WITH d AS (DELETE FROM kinds.ledger RETURNING id) SELECT count(*) FROM d"
role = "kinds_writer"
expect = 3

[[checks.sql]]
name = "an UPDATE returning"
query = "UPDATE kinds.prices SET amount = amount * 2 WHERE id = 1 RETURNING amount"
expect = "3.00"

[[checks.sql]]
name = "an INSERT returning nothing"
query = "INSERT INTO kinds.ledger VALUES (4), (5)"
expect_rows = []

[[checks.sql]]
name = "prices"
query = "SELECT id, amount, active, note FROM kinds.prices ORDER BY id"
expect_rows = [[1, 1.5, true, { null = true }], [2, 2, false, "NULL"]]

[[checks.sql]]
name = "an amount as text"
query = "SELECT amount, amount FROM kinds.prices WHERE id = 2"
expect_rows = [["2.00", 2.0]]

[[checks.sql]]
name = "ledger"
query = "SELECT string_agg(id::text, ',' ORDER BY id) FROM kinds.ledger"
expect = "1,2,3"

[[checks.partitions]]
table = "kinds.events"
months_back = 1
months_ahead = 1
default_partition = true

[[checks.partitions]]
table = "kinds.sessions"
months_back = 2
months_ahead = 2

# The baseline says 99 users; the scenario's own count replaces that label's only.
[[checks.graphs]]
graph = "permission_graph"
baseline = true
vertices = { User = 12 }
"#;

/// Checks the broken drill adds: statements a sql check cannot run, or that the server refuses
/// inside the check's transaction.
const REFUSED: &str = r#"
[[checks.sql]]
name = "two statements"
query = "SELECT 1; DELETE FROM kinds.prices"
expect = 1

[[checks.sql]]
name = "a DO block that commits"
query = "DO $$ BEGIN DELETE FROM kinds.prices; COMMIT; END $$"
expect_rows = []
"#;

/// The PLUR dump with `extra` added before its completion marker.
fn dump(extra: &str) -> String {
    let plur = fixture_text("plur.sql.gz");
    let end = plur.rfind("--\n-- PostgreSQL database dump complete").expect("the dump's completion marker");
    format!("{}{KINDS}{extra}\n{}", &plur[..end], &plur[end..])
}

/// The PLUR baseline, but for its count of `User` vertices.
fn baseline() -> String {
    let text = std::fs::read_to_string(root().join("fixtures/baselines/plur.json")).expect("the PLUR baseline");
    let mut baseline: serde_json::Value = serde_json::from_str(&text).expect("baseline JSON");
    baseline["graphs"]["permission_graph"]["vertices"]["User"] = 99.into();
    serde_json::to_string_pretty(&baseline).expect("baseline JSON")
}

fn scratch() -> Scratch {
    let scratch = Scratch::new();
    scratch.write("baseline.json", baseline());
    scratch
}

fn result(drill: &crate::util::Drill, id: &str) -> CheckResult {
    drill.record().checks.iter().find(|c| c.id == id).cloned().unwrap_or_else(|| panic!("no {id}: {drill:?}"))
}

#[test]
fn refusals_of_every_kind_psql_values_date_partitions_and_label_overrides_pass() {
    let scratch = scratch();
    scratch.write("good.sql", dump(""));
    let drill = scratch.drill(&scratch.scenario("kinds.toml", SCENARIO));
    assert_eq!(drill.code, Some(0), "{drill:?}");
    let passed = [
        ("append_only/kinds.audit_priv INSERT as kinds_writer", "inserted 1 row"),
        ("append_only/kinds.audit_priv UPDATE as kinds_writer", "refused by privilege"),
        ("append_only/kinds.audit_trigger UPDATE as kinds_writer", "refused: audit rows are immutable (42501)"),
        (
            "append_only/kinds.audit_trigger TRUNCATE as kinds_writer",
            "refused by a trigger or rule: audit rows are never truncated (P0001)",
        ),
        ("append_only/kinds.audit_trigger immutability triggers", "present and enabled"),
        ("append_only/kinds.audit_rule UPDATE as kinds_writer", "0 rows changed in the table"),
        ("append_only/kinds.audit_rule DELETE as kinds_writer", "0 rows changed in the table"),
        ("append_only/kinds.audit_rule TRUNCATE as kinds_writer", "refused by privilege"),
        ("sql/prices", "(1, 1.50, t, NULL) (2, 2.00, f, 'NULL')"),
        ("sql/an amount as text", "(2.00, 2.00)"),
        ("sql/a data-modifying WITH as a role", "3"),
        ("sql/an UPDATE returning", "3.00"),
        ("sql/an INSERT returning nothing", "no rows"),
        ("sql/ledger", "1,2,3"),
        ("partitions/kinds.events", "3 months covered; default partition events_default"),
        ("partitions/kinds.sessions", "5 months covered"),
        ("graphs/permission_graph label counts", "20 vertices, 19 edges"),
    ];
    for (id, actual) in passed {
        let found = result(&drill, id);
        assert_eq!((found.verdict, found.actual.as_str()), (Verdict::Pass, actual), "{found:?}");
    }
    drill.assert_reports_and_no_leftovers();
}

#[test]
fn swallowed_inserts_replica_triggers_deletes_nulls_integer_keys_and_lost_labels_fail() {
    let scratch = scratch();
    scratch.write("good.sql", dump(""));
    let plur = dump(BROKEN);
    // One Group vertex lost.
    let copy = plur.find("COPY permission_graph.\"Group\" (id, properties) FROM stdin;\n").expect("the Group COPY");
    let row = copy + plur[copy..].find('\n').expect("a line") + 1;
    let next = row + plur[row..].find('\n').expect("a row") + 1;
    let broken = scratch.write("broken.sql", format!("{}{}", &plur[..row], &plur[next..]));
    let scenario = scratch.scenario("kinds.toml", &format!("{SCENARIO}{REFUSED}"));
    let drill = scratch.drill_with(&scenario, &["--backup".into(), broken.display().to_string()]);
    assert_eq!(drill.code, Some(1), "{drill:?}");
    let failed = [
        ("append_only/kinds.audit_priv INSERT as kinds_writer", "0 rows inserted", "append-only.cannot-append"),
        ("append_only/kinds.audit_trigger UPDATE as kinds_writer", "UPDATE changed 1 row", "append-only.mutable"),
        (
            "append_only/kinds.audit_trigger immutability triggers",
            "audit_trigger_immutable fires only in replica sessions (ENABLE REPLICA): it does not protect the table",
            "append-only.triggers-lost",
        ),
        ("append_only/kinds.audit_rule DELETE as kinds_writer", "DELETE changed 1 row", "append-only.mutable"),
        ("sql/prices", "(1, 1.51, t, 'NULL') (2, 2.00, f, 'NULL')", "sql.differs"),
        ("partitions/kinds.events", "partitioned by RANGE (id), on a column of type bigint", "partitions.not-by-month"),
        ("partitions/kinds.sessions", "table missing", "partitions.table-missing"),
    ];
    for (id, actual, code) in failed {
        let found = result(&drill, id);
        assert_eq!((found.code.as_str(), found.actual.as_str()), (code, actual), "{found:?}");
    }
    let hinted = result(&drill, "partitions/kinds.sessions");
    assert!(hinted.message.ends_with("(hint: did you mean `kinds.session`?)"), "{hinted:?}");
    // Still refused where nothing changed.
    let kept = result(&drill, "append_only/kinds.audit_rule UPDATE as kinds_writer");
    assert_eq!(kept.code, "append-only.refused", "{kept:?}");
    // The renamed table: the query fails, naming the table meant.
    let ledger = result(&drill, "sql/ledger");
    assert_eq!(ledger.code, "sql.could-not-run", "{ledger:?}");
    assert!(ledger.message.ends_with("(hint: did you mean `kinds.\"Ledger\"`?)"), "{ledger:?}");
    // A second statement, or a COMMIT inside a DO block, would escape the rollback: neither runs.
    let two = result(&drill, "sql/two statements");
    assert_eq!(two.code, "sql.could-not-run", "{two:?}");
    assert!(two.message.starts_with("the query holds more than one statement: a sql check runs one"), "{two:?}");
    let commits = result(&drill, "sql/a DO block that commits");
    assert_eq!(commits.code, "sql.could-not-run", "{commits:?}");
    assert!(commits.message.contains("invalid transaction termination (2D000)"), "{commits:?}");
    // The User override holds; the baseline's Group count still counts.
    let graph = result(&drill, "graphs/permission_graph label counts");
    assert_eq!(graph.code, "graphs.counts-differ", "{graph:?}");
    assert!(graph.message.contains("Group: 3 vertices (expected 4)"), "{graph:?}");
    assert!(!graph.message.contains("User"), "{graph:?}");
    drill.assert_failed_cleanly();
}

#[test]
fn label_counts_without_a_graph_are_a_scenario_error() {
    let scratch = Scratch::new();
    let scenario = scratch.scenario(
        "graphs.toml",
        "[source]\npath = \"{fixtures}/plur.sql.gz\"\n[[checks.graphs]]\nvertices = { User = 12 }\n",
    );
    let drill = scratch.drill(&scenario);
    assert_eq!(drill.code, Some(2), "{drill:?}");
    assert!(drill.stderr.contains("`vertices` and `edges` count the labels of one graph"), "{drill:?}");
    assert!(drill.stderr.contains("graphs.toml"), "the file is named: {drill:?}");
}

//! The `rls`, `roles`, `schemas` and `triggers` kinds both ways: a good database passes where the old
//! checks cried wolf (tenant values not written as the column prints them, names in another
//! case, an enum that gained labels), and a broken one fails, saying expected against actual,
//! where they passed (a policy weakened to `USING (true)` or joined by a permissive one, an
//! object owned through a membership, a membership in an elevated role, a role that can log in).
//! Each drill holds good and broken objects side by side, to start few containers.

use pgdrill::{CheckResult, Verdict};

use crate::util::{Drill, Scratch};

/// The check `id` of a drill.
fn result(drill: &Drill, id: &str) -> CheckResult {
    drill.record().checks.iter().find(|c| c.id == id).cloned().unwrap_or_else(|| panic!("no {id}: {drill:?}"))
}

fn passes(drill: &Drill, id: &str) {
    let found = result(drill, id);
    assert_eq!(found.verdict, Verdict::Pass, "{found:?}\n{drill:?}");
}

/// The check `id` failed with the finding `code`, its message saying each of `says` (the names
/// and hints only the message carries).
fn fails(drill: &Drill, id: &str, code: &str, says: &[&str]) -> CheckResult {
    let found = result(drill, id);
    assert_eq!((found.verdict, found.code.as_str()), (Verdict::Fail, code), "{found:?}");
    for text in says {
        assert!(found.message.contains(text), "`{text}` not in {}\n{found:?}", found.message);
    }
    found
}

/// A baseline file with these policies, row security flags and schemas (JSON values).
fn baseline(row_security: &str, policies: &str, schemas: &str) -> String {
    format!(
        r#"{{"schema": "pgdrill.baseline.v1", "captured_at": "2026-11-22T00:00:00Z", "source": "kinds_b", "server_version": "17.11",
  "database": "kinds_b", "row_counts": {{}}, "indexes": [], "row_security": {row_security}, "policies": {policies},
  "graphs": {{}}, "schemas": {schemas}, "migrations": []}}"#
    )
}

const RLS_DUMP: &str = "CREATE ROLE kb_app LOGIN;\n\
    CREATE TABLE public.docs (id serial PRIMARY KEY, tenant_id uuid NOT NULL, body text NOT NULL);\n\
    CREATE TABLE public.ledger (id serial PRIMARY KEY, tenant_id uuid NOT NULL, amount integer NOT NULL);\n\
    CREATE TABLE public.notes (id serial PRIMARY KEY, tenant_id uuid NOT NULL, body text NOT NULL);\n\
    CREATE TABLE public.counters (id serial PRIMARY KEY, org_id integer NOT NULL, n integer NOT NULL);\n\
    INSERT INTO public.docs (tenant_id, body) VALUES ('5f264e76-22a0-0cf1-f3e9-c36326aed1a8', 'a'), ('0b7b4f0e-1c6e-4a57-9a3e-2f4f1a0c9d11', 'b');\n\
    INSERT INTO public.ledger (tenant_id, amount) VALUES ('5f264e76-22a0-0cf1-f3e9-c36326aed1a8', 1);\n\
    INSERT INTO public.counters (org_id, n) VALUES (7, 1), (9, 2);\n\
    ALTER TABLE public.docs ENABLE ROW LEVEL SECURITY;\n\
    ALTER TABLE public.docs FORCE ROW LEVEL SECURITY;\n\
    ALTER TABLE public.ledger ENABLE ROW LEVEL SECURITY;\n\
    ALTER TABLE public.ledger FORCE ROW LEVEL SECURITY;\n\
    ALTER TABLE public.notes ENABLE ROW LEVEL SECURITY;\n\
    ALTER TABLE public.notes FORCE ROW LEVEL SECURITY;\n\
    ALTER TABLE public.counters ENABLE ROW LEVEL SECURITY;\n\
    CREATE POLICY Tenant_Isolation ON public.docs FOR ALL TO kb_app USING (tenant_id = current_setting('kb.tenant', true)::uuid);\n\
    CREATE POLICY tenant_isolation ON public.ledger FOR ALL TO kb_app USING (true);\n\
    CREATE POLICY tenant_isolation ON public.notes FOR ALL TO kb_app USING (tenant_id = current_setting('kb.tenant', true)::uuid);\n\
    CREATE POLICY debug_read ON public.notes FOR SELECT TO kb_app USING (true);\n\
    CREATE POLICY org_isolation ON public.counters FOR ALL TO kb_app USING (org_id = current_setting('kb.org', true)::integer);\n\
    GRANT SELECT, INSERT ON public.docs, public.ledger, public.notes, public.counters TO kb_app;\n";

const ISOLATION: &str = "(tenant_id = (current_setting('kb.tenant'::text, true))::uuid)";

const RLS_SCENARIO: &str = r#"
baseline = "baseline.json"

[source]
path = "rls.sql"

[[checks.rls]]
tables = ["public.docs", "public.ledger", "public.notes"]
force = true
baseline = true
policies = [
  { table = "public.docs", name = "Tenant_Isolation", roles = ["KB_App"], permissive = true, using = "tenant_id = current_setting('kb.tenant', true)::uuid" },
  { table = "public.ledger", name = "tenant_isolation", using = "tenant_id = current_setting('kb.tenant', true)::uuid" },
]
fail_closed = { role = "KB_App", setting = "kb.tenant", column = "Tenant_Id", value = "5F264E76-22A0-0CF1-F3E9-C36326AED1A8", other_value = "{0B7B4F0E-1C6E-4A57-9A3E-2F4F1A0C9D11}" }

[[checks.rls]]
tables = ["public.counters"]
fail_closed = { role = "kb_app", setting = "kb.org", column = "org_id", value = "007", other_value = "+9" }
"#;

#[test]
fn rls_reads_tenants_as_the_column_does_and_fails_a_weakened_or_widened_policy() {
    let scratch = Scratch::new();
    scratch.write("rls.sql", RLS_DUMP);
    let policy = |table: &str, name: &str, command: &str, using: &str| {
        format!(
            r#"{{"table": "{table}", "name": "{name}", "command": "{command}", "roles": ["kb_app"], "permissive": true,
               "expressions": {{"using": "{}", "with_check": null}}}}"#,
            using.replace('"', "\\\"")
        )
    };
    let policies = format!(
        "[{}, {}, {}, {}]",
        policy("public.docs", "tenant_isolation", "ALL", ISOLATION),
        policy("public.ledger", "tenant_isolation", "ALL", ISOLATION),
        policy("public.notes", "tenant_isolation", "ALL", ISOLATION),
        policy(
            "public.counters",
            "org_isolation",
            "ALL",
            "(org_id = (current_setting('kb.org'::text, true))::integer)"
        ),
    );
    let flags: Vec<String> = ["docs", "ledger", "notes"]
        .iter()
        .map(|t| format!(r#"{{"table": "public.{t}", "enabled": true, "forced": true}}"#))
        .chain([r#"{"table": "public.counters", "enabled": true, "forced": false}"#.to_owned()])
        .collect();
    scratch.write("baseline.json", baseline(&format!("[{}]", flags.join(", ")), &policies, "{}"));
    let drill = scratch.drill(&scratch.scenario("rls.toml", RLS_SCENARIO));
    assert_eq!(drill.code, Some(1), "{drill:?}");

    // Good: an upper-case uuid (and one in braces), an integer tenant written `007` and `+9`, a
    // policy name and role in another case than the server stores them.
    passes(&drill, "rls/public.docs policy tenant_isolation");
    let docs = result(&drill, "rls/public.docs fail-closed for kb_app");
    assert_eq!(docs.verdict, Verdict::Pass, "{docs:?}");
    assert!(
        docs.evidence
            .contains("SELECT pg_catalog.set_config('kb.tenant', '5f264e76-22a0-0cf1-f3e9-c36326aed1a8', true)"),
        "the evidence is the SQL that ran, with the tenant as the column prints it: {}",
        docs.evidence
    );
    assert!(
        docs.evidence.contains("-- the table holds rows of both tenants: no probe row is needed"),
        "{}",
        docs.evidence
    );
    let counters = result(&drill, "rls/public.counters fail-closed for kb_app");
    assert_eq!(counters.verdict, Verdict::Pass, "{counters:?}");
    assert!(counters.evidence.contains("SELECT pg_catalog.set_config('kb.org', '7', true)"), "{}", counters.evidence);

    // Broken: ledger's policy lets every row through, notes has a permissive policy more.
    let ledger = fails(
        &drill,
        "rls/public.ledger policy tenant_isolation",
        "rls.policy-differs",
        &[&format!("policy `tenant_isolation` on `public.ledger` is USING true (expected USING {ISOLATION})")],
    );
    assert!(ledger.expected.contains("USING (tenant_id = current_setting('kb.tenant', true)::uuid)"), "{ledger:?}");
    assert!(ledger.actual.contains("USING true"), "{ledger:?}");
    let every = fails(
        &drill,
        "rls/every policy in the baseline",
        "rls.baseline-differs",
        &[
            &format!("tenant_isolation on public.ledger is USING true (baseline: USING {ISOLATION})"),
            "public.notes has a permissive policy the baseline does not: debug_read SELECT to kb_app USING true",
        ],
    );
    assert!(!every.message.contains("public.docs"), "docs is as in the baseline: {}", every.message);
    assert!(!every.message.contains("public.counters"), "{}", every.message);
    fails(&drill, "rls/public.ledger fail-closed for kb_app", "rls.unset-tenant-reads-rows", &["with no tenant set"]);
    fails(&drill, "rls/public.notes fail-closed for kb_app", "rls.unset-tenant-reads-rows", &["with no tenant set"]);
    drill.assert_reports_and_no_leftovers();
}

/// Roles and schemas: twelve tables in org_globex owned by kb_owner, whose member kb_leaky holds
/// no privilege it inherits (INHERIT FALSE) but can `SET ROLE kb_owner`. kb_auditor holds more
/// than its listed privileges: an UPDATE granted to it, a column's UPDATE through kb_writers, a
/// table PUBLIC may read. kb_migrator is BYPASSRLS and reads all data by design; kb_ops is
/// CREATEDB (accepted) and REPLICATION (not), and lacks what else it is accepted for.
fn roles_dump() -> String {
    let mut dump = String::from(
        "CREATE ROLE kb_app LOGIN;\n\
         CREATE ROLE kb_auditor NOLOGIN;\n\
         CREATE ROLE kb_owner NOLOGIN;\n\
         CREATE ROLE kb_admin NOLOGIN BYPASSRLS;\n\
         CREATE ROLE kb_leaky LOGIN;\n\
         GRANT kb_owner TO kb_leaky WITH INHERIT FALSE;\n\
         GRANT kb_admin TO kb_leaky;\n\
         CREATE SCHEMA org_globex;\n\
         CREATE SCHEMA \"Plugin_GitHub\";\n\
         CREATE SCHEMA billing;\n\
         CREATE TYPE billing.plan AS ENUM ('free', 'pro', 'team');\n\
         CREATE TYPE public.tier AS ENUM ('silver', 'gold');\n\
         CREATE TYPE public.status AS ENUM ('open', 'closed');\n\
         CREATE TABLE public.notes (id serial PRIMARY KEY, body text);\n\
         CREATE TABLE billing.invoices (id serial PRIMARY KEY, plan billing.plan);\n\
         GRANT USAGE ON SCHEMA public TO kb_app, kb_auditor;\n\
         GRANT SELECT ON public.notes TO kb_app, kb_auditor;\n\
         CREATE ROLE kb_writers NOLOGIN;\n\
         GRANT kb_writers TO kb_auditor;\n\
         CREATE SCHEMA audit;\n\
         CREATE TABLE audit.events (id integer, note text);\n\
         CREATE TABLE audit.extra (id integer);\n\
         GRANT USAGE ON SCHEMA audit TO kb_auditor;\n\
         GRANT SELECT, INSERT, UPDATE ON audit.events TO kb_auditor;\n\
         GRANT UPDATE (body) ON public.notes TO kb_writers;\n\
         GRANT SELECT ON audit.extra TO PUBLIC;\n\
         CREATE ROLE kb_migrator NOLOGIN BYPASSRLS;\n\
         GRANT pg_read_all_data TO kb_migrator;\n\
         CREATE ROLE kb_ops NOLOGIN CREATEDB REPLICATION;\n\
         CREATE SCHEMA hooks;\n\
         CREATE FUNCTION hooks.touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;\n\
         CREATE TABLE hooks.parent (id integer PRIMARY KEY);\n\
         CREATE TABLE hooks.plain (id integer REFERENCES hooks.parent);\n\
         CREATE TABLE hooks.lost (id integer);\n",
    );
    for table in ["kept", "off", "replica", "added"] {
        let name = if table == "added" { "sneak" } else { "audit" };
        dump.push_str(&format!(
            "CREATE TABLE hooks.{table} (id integer);\n\
             CREATE TRIGGER {name} AFTER INSERT ON hooks.{table} FOR EACH ROW EXECUTE FUNCTION hooks.touch();\n"
        ));
    }
    dump.push_str(
        "CREATE TRIGGER touch BEFORE UPDATE ON hooks.kept FOR EACH ROW EXECUTE FUNCTION hooks.touch();\n\
         ALTER TABLE hooks.off DISABLE TRIGGER audit;\n\
         ALTER TABLE hooks.replica ENABLE REPLICA TRIGGER audit;\n",
    );
    for i in 1..=12 {
        dump.push_str(&format!(
            "CREATE TABLE org_globex.t{i:02} (id integer);\nALTER TABLE org_globex.t{i:02} OWNER TO kb_owner;\n"
        ));
    }
    dump
}

const ROLES_SCENARIO: &str = r#"
baseline = "baseline.json"

[source]
path = "roles.sql"

[[checks.roles]]
role = "KB_App"
usage = ["Public"]
tables = { "public.notes" = "SELECT" }
exact = true
forbidden_schemas = ["Org_Globex"]

[[checks.roles]]
role = "kb_auditor"
login = false
tables = { "public.notes" = "SELECT", "audit.events" = "SELECT, INSERT" }
exact = true
forbidden_schemas = ["org_globx"]

[[checks.roles]]
role = "kb_migrator"
usage = ["billing"]
exact = true
accept = [
  { attribute = "BYPASSRLS", reason = "the migration role rewrites every tenant's rows" },
  { member_of = "pg_read_all_data", reason = "it exports every table before a migration" },
]

[[checks.roles]]
role = "kb_ops"
accept = [
  { attribute = "CREATEROLE", reason = "it used to manage the tenants' roles" },
  { attribute = "CREATEDB", reason = "it makes the nightly scratch databases" },
  { member_of = "pg_write_all_data", reason = "it used to repair rows" },
]

[[checks.roles]]
role = "kb_leaky"
connect = false
login = false
forbidden_schemas = ["org_globex"]

[[checks.roles]]
role = "kb_ap"

[checks.schemas]
baseline = true
schemas = ["Org_Globex", "plugin_github"]
older_baseline = "this test's baseline records names and enums only"

[checks.triggers]
"hooks.kept" = ["touch", "audit"]
"hooks.plain" = []
"hooks.parent" = []
"hooks.lost" = ["audit"]
"hooks.off" = ["audit"]
"hooks.replica" = ["audit"]
"hooks.added" = []
"hooks.nowhere" = []
"#;

#[test]
fn roles_count_what_a_membership_gives_and_schemas_allow_an_enum_to_grow() {
    let scratch = Scratch::new();
    scratch.write("roles.sql", roles_dump());
    let schemas = r#"{
      "billing": {"tables": ["invoices"], "enums": {"plan": ["free", "team"]}, "sequences": ["invoices_id_seq"]},
      "public": {"tables": ["notes"], "enums": {"tier": ["gold", "silver"], "status": ["open", "closed", "archived"]}, "sequences": ["notes_id_seq"]}
    }"#;
    scratch.write("baseline.json", baseline("[]", "[]", schemas));
    let drill = scratch.drill(&scratch.scenario("roles.toml", ROLES_SCENARIO));
    assert_eq!(drill.code, Some(1), "{drill:?}");

    // Good: names in another case fold as the server folds them; a NOLOGIN role is NOLOGIN.
    for id in [
        "roles/kb_app floor",
        "roles/kb_app exact privileges",
        "roles/kb_auditor floor",
        "roles/kb_app ownership",
        "roles/kb_app other schemas",
        "roles/kb_app server access",
        "roles/kb_auditor login",
        "roles/kb_auditor ownership",
        "schemas/billing",
        "schemas/org_globex",
    ] {
        passes(&drill, id);
    }

    // Broken: kb_leaky reaches org_globex through kb_owner (no privilege of its own there).
    let owns = fails(
        &drill,
        "roles/kb_leaky ownership",
        "roles.owns-objects",
        &["org_globex.t01 (owner kb_owner, a role it is a member of)"],
    );
    assert!(owns.message.contains("(first 10 of 12), and 2 more"), "the whole count: {}", owns.message);
    let reach = fails(
        &drill,
        "roles/kb_leaky other schemas",
        "roles.reaches-forbidden",
        &["org_globex.t01 (owned by kb_owner: every privilege)"],
    );
    assert!(reach.actual.starts_with("access to 12 objects:"), "{reach:?}");
    let member = fails(
        &drill,
        "roles/kb_leaky server access",
        "roles.elevated-membership",
        &[
            "`kb_leaky` is a member of kb_admin (BYPASSRLS): as kb_admin (SET ROLE) it has BYPASSRLS: it is exempt from every row-level security policy",
        ],
    );
    assert!(member.expected.contains("nor of a role with SUPERUSER"), "{member:?}");

    // kb_auditor holds more than it lists: each extra privilege says how it is held.
    let exact = fails(
        &drill,
        "roles/kb_auditor exact privileges",
        "roles.beyond-listed",
        &[
            "UPDATE on audit.events (granted directly)",
            "SELECT on audit.extra (via PUBLIC)",
            "UPDATE (body) on public.notes (via kb_writers)",
        ],
    );
    assert_eq!(exact.expected, "no table privilege beyond those listed in audit, public", "{exact:?}");

    // Accepted by design, with the reason beside it where the report shows expected and actual.
    let why = "the migration role rewrites every tenant's rows";
    let accepted = result(&drill, "roles/kb_migrator attributes");
    assert_eq!((accepted.verdict, accepted.actual.as_str()), (Verdict::Pass, "BYPASSRLS (accepted)"), "{accepted:?}");
    assert!(accepted.expected.ends_with(&format!("; BYPASSRLS accepted: {why}")), "{accepted:?}");
    let reads = result(&drill, "roles/kb_migrator server access");
    assert_eq!((reads.verdict, reads.actual.as_str()), (Verdict::Pass, "pg_read_all_data (accepted)"), "{reads:?}");
    // What only the accepted pg_read_all_data gives it (SELECT on billing.invoices) is not more.
    passes(&drill, "roles/kb_migrator exact privileges");
    let report = drill.report("report.md");
    assert!(report.contains(why) && report.contains("it exports every table before a migration"), "{report}");

    // kb_ops: REPLICATION is not accepted, and what it is accepted for but lacks is stale.
    let ops = fails(
        &drill,
        "roles/kb_ops attributes",
        "roles.elevated-attribute",
        &[
            "`kb_ops` has REPLICATION: it may connect for replication",
            "the scenario accepts CREATEROLE, which `kb_ops` does not have",
        ],
    );
    assert_eq!(ops.actual, "CREATEDB (accepted), REPLICATION, not CREATEROLE (accepted)", "{ops:?}");
    assert!(!ops.message.contains("CREATEDB:"), "accepted: {ops:?}");
    fails(
        &drill,
        "roles/kb_ops server access",
        "roles.elevated-membership",
        &[
            "the scenario accepts membership in pg_write_all_data, which `kb_ops` does not have (or it gives nothing the ceiling refuses)",
        ],
    );
    let login =
        fails(&drill, "roles/kb_leaky login", "roles.can-log-in", &["`kb_leaky` can log in (LOGIN), expected NOLOGIN"]);
    assert_eq!((login.expected.as_str(), login.actual.as_str()), ("NOLOGIN", "LOGIN"));
    fails(
        &drill,
        "roles/kb_auditor other schemas",
        "roles.forbidden-misnamed",
        &[
            "forbidden schema `org_globx` does not exist, so nothing was checked there (hint: did you mean `org_globex`?)",
        ],
    );
    fails(
        &drill,
        "roles/kb_ap",
        "roles.missing",
        &["role `kb_ap` does not exist on the restored server (hint: did you mean `kb_app`?)"],
    );

    // Schemas: an enum that lost a label or reordered its labels fails; a name off by case says so.
    let public = fails(
        &drill,
        "schemas/public",
        "schemas.differs",
        &[
            "enum status lost labels archived: is (open, closed) instead of (open, closed, archived)",
            "enum tier has its labels in another order: is (silver, gold) instead of (gold, silver)",
        ],
    );
    assert_eq!(public.expected, "1 tables, 2 enums, 1 sequences", "{public:?}");
    fails(
        &drill,
        "schemas/plugin_github",
        "schemas.missing",
        &["schema `plugin_github` was not restored (hint: did you mean `\"Plugin_GitHub\"`?)"],
    );
    // Triggers: exactly those listed, each enabled; a foreign key's internal ones do not count.
    for id in ["triggers/hooks.kept", "triggers/hooks.plain", "triggers/hooks.parent"] {
        passes(&drill, id);
    }
    fails(&drill, "triggers/hooks.lost", "triggers.differ", &["`hooks.lost`: audit is missing"]);
    fails(&drill, "triggers/hooks.off", "triggers.differ", &["audit is disabled"]);
    fails(&drill, "triggers/hooks.replica", "triggers.differ", &["audit fires only in replica sessions"]);
    fails(
        &drill,
        "triggers/hooks.added",
        "triggers.differ",
        &["has a trigger the scenario does not list: CREATE TRIGGER sneak AFTER INSERT ON hooks.added"],
    );
    fails(&drill, "triggers/hooks.nowhere", "triggers.table-missing", &["`hooks.nowhere` does not exist"]);
    drill.assert_reports_and_no_leftovers();
}

//! Probe rows on schemas as real ones are: fail-closed `rls` on EMPTY tables whose probe rows
//! pgdrill must make up itself, and commit for the role's own session to read. One table has a
//! NOT NULL column of every type family PostgreSQL ships (integers of each width, numerics with
//! precision and scale, strings within their length, bytea, uuid, json, dates and times, network
//! types, bit strings, text search, xml, geometry, pg_lsn, OID aliases, ranges and multiranges
//! built-in and user-defined, arrays, enums, composites, domains with CHECKs and a NOT NULL
//! domain) and pgvector's types; one has table CHECKs (an allowed-values list,
//! `num_nonnulls(...) = 1`, a pattern), a unique bytea and foreign keys to empty tables (its
//! tenant's, a customer's, whose own tenant's too: pgdrill makes those rows first); one is
//! partitioned by range on a date, with no rows. No constraint is set aside: a row is one the application could write. A CHECK
//! of one column is tried with the values it names (`status IN ('new', ...)`, a domain's
//! `VALUE > 1000`); the scenario gives what no such try can (a pattern, two columns at once).
//! The good dump passes, each probe row accepted by the server (PostgreSQL 17), committed and
//! removed, with its values in the evidence. The broken copy (a permissive `USING (true)` policy
//! more, on PostgreSQL 18) fails on each table, even behind a `count(*)` of the backup's that
//! answers 0 in the role's search_path; a table with columns no value can be made for errs
//! naming both, with the line to add; a default that rewrites the policy, or sets the tenant,
//! when pgdrill's INSERT runs it voids the probe instead of passing; two probe rows a unique
//! boolean cannot hold err naming it. An audit table its writer's INSERT leaves empty gets a
//! committed probe row for `append_only`'s UPDATE and DELETE to aim at, which its trigger
//! refuses; a tenant's audit table whose writer's INSERT is refused gets one of another tenant,
//! which the role does not see, and its UPDATE and DELETE err instead of passing. Settings a
//! policy compares with columns by AND beside the tenant's comparison only narrow (by OR they
//! open); a SELECT policy keyed on the session only narrows an UPDATE or DELETE.

use pgdrill::{CheckResult, Verdict};

use crate::util::{Drill, Scratch, pg15_dump};

const SCHEMA: &str = r#"CREATE EXTENSION IF NOT EXISTS vector WITH SCHEMA public;
CREATE TYPE public.mood AS ENUM ('calm', 'busy');
CREATE TYPE public.pair AS (a integer, b text);
CREATE TYPE public.floatrange AS RANGE (subtype = double precision);
CREATE DOMAIN public.positive AS integer CONSTRAINT positive_big CHECK (VALUE > 1000);
CREATE DOMAIN public.code AS text CONSTRAINT code_format CHECK (VALUE ~ '^[A-Z]{3}$');
CREATE DOMAIN public.tag AS character varying(5) NOT NULL;

CREATE TABLE public.every_type (
    id bigint GENERATED ALWAYS AS IDENTITY,
    tenant_id uuid NOT NULL,
    c_int2 smallint NOT NULL, c_int4 integer NOT NULL, c_int8 bigint NOT NULL,
    c_numeric numeric(5,2) NOT NULL, c_tiny numeric(2,5) NOT NULL, c_hundreds numeric(3,-2) NOT NULL, c_any_numeric numeric NOT NULL,
    c_real real NOT NULL, c_double double precision NOT NULL, c_money money NOT NULL, c_bool boolean NOT NULL,
    c_text text NOT NULL, c_varchar character varying(3) NOT NULL, c_char character(2) NOT NULL, c_byte "char" NOT NULL, c_name name NOT NULL,
    c_bytea bytea NOT NULL, c_uuid uuid NOT NULL, c_json json NOT NULL, c_jsonb jsonb NOT NULL, c_jsonpath jsonpath NOT NULL,
    c_date date NOT NULL, c_time time NOT NULL, c_timetz time with time zone NOT NULL, c_timestamp timestamp(2) NOT NULL,
    c_timestamptz timestamp with time zone NOT NULL, c_interval interval day to second(0) NOT NULL,
    c_inet inet NOT NULL, c_cidr cidr NOT NULL, c_macaddr macaddr NOT NULL, c_macaddr8 macaddr8 NOT NULL,
    c_bit bit(3) NOT NULL, c_varbit bit varying(5) NOT NULL, c_tsvector tsvector NOT NULL, c_tsquery tsquery NOT NULL, c_xml xml NOT NULL,
    c_point point NOT NULL, c_line line NOT NULL, c_lseg lseg NOT NULL, c_box box NOT NULL, c_path path NOT NULL,
    c_polygon polygon NOT NULL, c_circle circle NOT NULL,
    c_lsn pg_lsn NOT NULL, c_oid oid NOT NULL, c_regclass regclass NOT NULL, c_regprocedure regprocedure NOT NULL, c_regrole regrole NOT NULL,
    c_int4range int4range NOT NULL, c_tstzrange tstzrange NOT NULL, c_floatrange public.floatrange NOT NULL,
    c_datemultirange datemultirange NOT NULL, c_floatmultirange public.floatmultirange NOT NULL,
    c_ints integer[] NOT NULL, c_short_texts character varying(4)[] NOT NULL, c_moods public.mood[] NOT NULL,
    c_mood public.mood NOT NULL, c_pair public.pair NOT NULL,
    c_positive public.positive NOT NULL, c_code public.code NOT NULL, c_tag public.tag,
    c_vector public.vector(3) NOT NULL, c_halfvec public.halfvec(4) NOT NULL, c_sparsevec public.sparsevec(5) NOT NULL,
    c_total integer GENERATED ALWAYS AS (c_int4 + 1) STORED,
    c_defaulted text NOT NULL DEFAULT 'kept'
);

CREATE TABLE public.tenants (id uuid PRIMARY KEY, name text NOT NULL, plan text NOT NULL CHECK (plan IN ('free', 'pro')));
CREATE TABLE public.customers (
    id bigserial PRIMARY KEY,
    tenant_id uuid NOT NULL REFERENCES public.tenants (id),
    email text NOT NULL UNIQUE
);

CREATE TABLE public.orders (
    id bigserial PRIMARY KEY,
    tenant_id uuid NOT NULL REFERENCES public.tenants (id),
    customer_id bigint NOT NULL REFERENCES public.customers (id),
    status text NOT NULL CHECK (status IN ('new', 'paid', 'shipped')),
    card_id integer,
    bank_id integer,
    CONSTRAINT orders_one_payment CHECK (num_nonnulls(card_id, bank_id) = 1),
    sku text NOT NULL CONSTRAINT orders_sku_format CHECK (sku ~ '^SKU-[0-9]{4}$'),
    qty smallint NOT NULL CHECK (qty BETWEEN 1 AND 99),
    token bytea NOT NULL UNIQUE,
    is_flagship boolean NOT NULL,
    during tstzrange NOT NULL
);

CREATE TABLE public.memos (tenant_id uuid NOT NULL, status text NOT NULL, archived boolean NOT NULL DEFAULT true, body text);
ALTER TABLE public.memos ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.memos FORCE ROW LEVEL SECURITY;
CREATE POLICY active_only ON public.memos TO pr_app
  USING (tenant_id = pg_catalog.current_setting('pr.tenant', true)::uuid AND status = 'active' AND NOT archived);
GRANT SELECT ON public.memos TO pr_app;

-- qs-pro's shape: one user's runs within a tenant and a business unit, the user a nullable
-- reference to a table with no row yet.
CREATE TABLE public.people (id uuid PRIMARY KEY, tenant_id uuid NOT NULL REFERENCES public.tenants (id));
CREATE TABLE public.runs (tenant_id uuid NOT NULL REFERENCES public.tenants (id), mid text NOT NULL, user_id uuid REFERENCES public.people (id));
ALTER TABLE public.runs ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.runs FORCE ROW LEVEL SECURITY;
CREATE POLICY own_runs ON public.runs TO pr_app
  USING (tenant_id::text = pg_catalog.current_setting('pr.tenant', true) AND mid = pg_catalog.current_setting('pr.mid', true)
         AND user_id::text = pg_catalog.current_setting('pr.user', true));
GRANT SELECT ON public.runs TO pr_app;

-- A ledger the role appends to as the subject of its claims: it reads its own rows (a SELECT
-- policy keyed on the claims, which only narrows an UPDATE or DELETE), and no policy lets it
-- change one.
CREATE FUNCTION public.uid() RETURNS text LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
  AS $f$ SELECT (pg_catalog.current_setting('pr.claims', true)::jsonb ->> 'sub') $f$;
CREATE TABLE public.ledger (id bigserial PRIMARY KEY, owner text NOT NULL, note text NOT NULL);
ALTER TABLE public.ledger ENABLE ROW LEVEL SECURITY;
CREATE POLICY mine ON public.ledger FOR SELECT TO pr_app USING (owner = public.uid());
CREATE POLICY append ON public.ledger FOR INSERT TO pr_app WITH CHECK (true);
CREATE POLICY no_update ON public.ledger FOR UPDATE TO pr_app USING (false);
CREATE POLICY no_delete ON public.ledger FOR DELETE TO pr_app USING (false);
GRANT SELECT, INSERT, UPDATE, DELETE ON public.ledger TO pr_app;
GRANT USAGE ON SEQUENCE public.ledger_id_seq TO pr_app;

CREATE TABLE public.events (
    id bigserial,
    tenant_id uuid NOT NULL,
    day date NOT NULL,
    kind text NOT NULL CONSTRAINT events_kind CHECK (kind IN ('login', 'logout')),
    note text NOT NULL,
    PRIMARY KEY (id, day)
) PARTITION BY RANGE (day);
CREATE TABLE public.events_2024_01 PARTITION OF public.events FOR VALUES FROM ('2024-01-01') TO ('2024-02-01');
CREATE TABLE public.events_2024_02 PARTITION OF public.events FOR VALUES FROM ('2024-02-01') TO ('2024-03-01');
"#;

/// Row-level security on `table`, keyed on the session setting `pr.tenant`.
fn isolated(table: &str) -> String {
    format!(
        "ALTER TABLE public.{table} ENABLE ROW LEVEL SECURITY;\nALTER TABLE public.{table} FORCE ROW LEVEL SECURITY;\n\
         CREATE POLICY tenant_isolation ON public.{table} TO pr_app USING (tenant_id = pg_catalog.current_setting('pr.tenant', true)::uuid);\n\
         GRANT SELECT ON public.{table} TO pr_app;\n"
    )
}

const TABLES: [&str; 3] = ["every_type", "orders", "events"];

fn good_body() -> String {
    let policies: String = TABLES.iter().map(|t| isolated(t)).collect();
    format!("{SCHEMA}\n{policies}")
}

/// The good schema with a permissive policy more on each table, a `count(*)` of the backup's
/// that answers 0 first in every session's search_path, a table of columns no value can be
/// made up for, and one whose default rewrites its open policy when it runs.
fn broken_dump() -> String {
    let mut body = good_body();
    for table in TABLES {
        body.push_str(&format!("CREATE POLICY open_read ON public.{table} FOR SELECT TO pr_app USING (true);\n"));
    }
    body.push_str(
        "CREATE FUNCTION public.none(bigint) RETURNS bigint LANGUAGE sql IMMUTABLE AS 'SELECT 0::bigint';\n\
         CREATE AGGREGATE public.count(*) (sfunc = public.none, stype = bigint, initcond = '0');\n\
         DO $$ BEGIN EXECUTE pg_catalog.format('ALTER DATABASE %I SET search_path = public, pg_catalog', pg_catalog.current_database()); END $$;\n\
         CREATE TABLE public.odd (tenant_id uuid NOT NULL, perm aclitem NOT NULL, tree pg_node_tree NOT NULL);\n\
         CREATE TABLE public.sneaky (tenant_id uuid NOT NULL, body text);\n\
         CREATE FUNCTION public.tighten() RETURNS text LANGUAGE plpgsql AS $f$ BEGIN\n\
           ALTER POLICY open_read ON public.sneaky USING (tenant_id = pg_catalog.current_setting('pr.tenant', true)::uuid);\n\
           RETURN 'x'; END $f$;\n\
         ALTER TABLE public.sneaky ADD COLUMN stamp text NOT NULL DEFAULT public.tighten();\n\
         CREATE TABLE public.unset (tenant_id uuid NOT NULL, body text);\n\
         CREATE TABLE public.bookings (tenant_id uuid NOT NULL, is_flagship boolean NOT NULL);\n\
         CREATE UNIQUE INDEX bookings_one_flagship ON public.bookings (is_flagship);\n\
         CREATE TABLE public.licenses (id integer PRIMARY KEY, perm aclitem NOT NULL);\n\
         CREATE TABLE public.notices (tenant_id uuid NOT NULL, visibility text NOT NULL, body text);\n\
         ALTER TABLE public.notices ENABLE ROW LEVEL SECURITY;\n\
         CREATE POLICY own_or_public ON public.notices TO pr_app \
           USING (tenant_id = pg_catalog.current_setting('pr.tenant', true)::uuid OR visibility = 'public');\n\
         GRANT SELECT ON public.notices TO pr_app;\n\
         CREATE TABLE public.bulletins (tenant_id uuid NOT NULL, is_public boolean NOT NULL DEFAULT false, body text);\n\
         ALTER TABLE public.bulletins ENABLE ROW LEVEL SECURITY;\n\
         CREATE POLICY own_or_public ON public.bulletins TO pr_app \
           USING (tenant_id = pg_catalog.current_setting('pr.tenant', true)::uuid OR is_public);\n\
         GRANT SELECT ON public.bulletins TO pr_app;\n\
         CREATE TABLE public.runs_any (tenant_id uuid NOT NULL, mid text NOT NULL);\n\
         ALTER TABLE public.runs_any ENABLE ROW LEVEL SECURITY;\n\
         CREATE POLICY tenant_or_unit ON public.runs_any TO pr_app \
           USING (tenant_id::text = pg_catalog.current_setting('pr.tenant', true) OR mid = pg_catalog.current_setting('pr.mid', true));\n\
         GRANT SELECT ON public.runs_any TO pr_app;\n\
         CREATE TABLE public.runs_rewritten (tenant_id uuid NOT NULL, mid text NOT NULL);\n\
         ALTER TABLE public.runs_rewritten ENABLE ROW LEVEL SECURITY;\n\
         CREATE POLICY own_unit ON public.runs_rewritten TO pr_app \
           USING (tenant_id::text = pg_catalog.current_setting('pr.tenant', true) AND mid = pg_catalog.current_setting('pr.mid', true));\n\
         CREATE FUNCTION public.rewrite_unit() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN NEW.mid := 'elsewhere'; RETURN NEW; END $f$;\n\
         CREATE TRIGGER rewrite_unit BEFORE INSERT ON public.runs_rewritten FOR EACH ROW EXECUTE FUNCTION public.rewrite_unit();\n\
         GRANT SELECT ON public.runs_rewritten TO pr_app;\n\
         CREATE TABLE public.guarded (tenant_id uuid NOT NULL, body text);\n\
         ALTER TABLE public.guarded ENABLE ROW LEVEL SECURITY;\n\
         CREATE POLICY everyone ON public.guarded TO pr_app USING (true);\n\
         CREATE POLICY tenant_or_level ON public.guarded AS RESTRICTIVE TO pr_app \
           USING (tenant_id::text = pg_catalog.current_setting('pr.tenant', true) OR NULLIF(pg_catalog.current_setting('pr.level', true), '')::integer > 3);\n\
         GRANT SELECT ON public.guarded TO pr_app;\n\
         CREATE TABLE public.letters (tenant_id uuid NOT NULL, sent_at timestamptz NOT NULL DEFAULT pg_catalog.now(), body text);\n\
         ALTER TABLE public.letters ENABLE ROW LEVEL SECURITY;\n\
         CREATE POLICY own_or_old ON public.letters TO pr_app \
           USING (tenant_id = pg_catalog.current_setting('pr.tenant', true)::uuid OR sent_at < '2020-01-01');\n\
         GRANT SELECT ON public.letters TO pr_app;\n\
         CREATE TABLE public.licensed (tenant_id uuid NOT NULL, license_id integer NOT NULL REFERENCES public.licenses (id));\n\
         CREATE FUNCTION public.pretend() RETURNS text LANGUAGE sql AS \
           $f$ SELECT pg_catalog.set_config('pr.tenant', '00000000-0000-0000-0000-000000000000', true) $f$;\n\
         ALTER TABLE public.unset ADD COLUMN stamp text NOT NULL DEFAULT public.pretend();\n\
         CREATE POLICY open_unset ON public.unset FOR SELECT TO pr_app USING (pg_catalog.current_setting('pr.tenant', true) IS NULL);\n",
    );
    // An audit table its writer's INSERT leaves empty: UPDATE and DELETE aim at a probe row.
    body.push_str(
        "CREATE TABLE public.audit (id bigserial PRIMARY KEY, at timestamp with time zone NOT NULL, seq smallint NOT NULL, payload jsonb NOT NULL, actor public.code NOT NULL);\n\
         CREATE FUNCTION public.audit_guard() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN RAISE EXCEPTION 'audit rows are immutable'; END $f$;\n\
         CREATE TRIGGER audit_immutable BEFORE UPDATE OR DELETE ON public.audit FOR EACH ROW EXECUTE FUNCTION public.audit_guard();\n\
         GRANT SELECT, INSERT, UPDATE, DELETE ON public.audit TO pr_app;\n",
    );
    // A tenant's audit table whose writer's INSERT is refused (no tenant row for it to follow),
    // whose DELETE opens with `pr.purge` (as qs-pro's `audit_logs`): the probe row pgdrill
    // commits is the scenario's tenant's (and so is its parent row), so the role sees it, the
    // trigger refuses UPDATE and DELETE on it, and the flag is tried on it.
    body.push_str(
        "CREATE TABLE public.audit_tenants (id uuid PRIMARY KEY);\n\
         CREATE TABLE public.tenant_audit (tenant_id uuid NOT NULL REFERENCES public.audit_tenants (id), note text NOT NULL);\n\
         ALTER TABLE public.tenant_audit ENABLE ROW LEVEL SECURITY;\n\
         CREATE POLICY own ON public.tenant_audit TO pr_app USING (tenant_id = pg_catalog.current_setting('pr.tenant', true)::uuid);\n\
         CREATE FUNCTION public.tenant_audit_guard() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN\n\
           IF TG_OP = 'DELETE' AND pg_catalog.current_setting('pr.purge', true) = 'on' THEN RETURN OLD; END IF;\n\
           RAISE EXCEPTION 'audit rows are immutable'; END $f$;\n\
         CREATE TRIGGER tenant_audit_immutable BEFORE UPDATE OR DELETE ON public.tenant_audit FOR EACH ROW EXECUTE FUNCTION public.tenant_audit_guard();\n\
         GRANT SELECT, INSERT, UPDATE, DELETE ON public.tenant_audit TO pr_app;\n\
         GRANT SELECT ON public.audit_tenants TO pr_app;\n",
    );
    for table in ["odd", "sneaky", "unset", "bookings", "licensed"] {
        body.push_str(&isolated(table));
    }
    body.push_str("CREATE POLICY open_read ON public.sneaky FOR SELECT TO pr_app USING (true);\n");
    pg15_dump(&body)
}

const CHECK: &str = r#"
[[restore.roles]]
name = "pr_app"

[[checks.rls]]
tables = ["public.every_type", "public.orders", "public.events", "public.memos", "public.runs"]
force = true
fail_closed = { role = "pr_app", setting = "pr.tenant", column = "tenant_id", settings = { "pr.mid" = "mid-1" }, probe = { note = "from the scenario", "public.every_type" = { c_code = "ABC" }, "public.orders" = { during = "[2024-01-01,2024-02-01)", card_id = "7", sku = "SKU-0001" } } }
"#;

/// The ledger, appended to as its claims' subject: a drill of the good dump only.
const LEDGER: &str = r#"
[[checks.append_only]]
table = "public.ledger"
role = "pr_app"
insert = "INSERT INTO public.ledger (owner, note) VALUES ('alice', 'x')"
"#;

fn result(drill: &Drill, id: &str) -> CheckResult {
    drill.record().checks.iter().find(|c| c.id == id).cloned().unwrap_or_else(|| panic!("no {id}: {drill:?}"))
}

fn fail_closed(drill: &Drill, table: &str) -> CheckResult {
    result(drill, &format!("rls/public.{table} fail-closed for pr_app"))
}

fn contains_all(found: &CheckResult, text: &str, says: &[&str]) {
    for s in says {
        assert!(text.contains(s), "`{s}` not in:\n{text}\n{found:?}");
    }
}

#[test]
fn probe_rows_are_made_for_empty_tables_of_every_type_and_constraint_and_a_leak_still_fails() {
    let scratch = Scratch::new();
    let good = scratch.write("good.sql", pg15_dump(&good_body()));
    let scenario = scratch.scenario(
        "good.toml",
        &format!("name = \"probe_rows\"\n[source]\npath = \"{}\"\n{CHECK}{LEDGER}", good.display()),
    );
    let drill = scratch.drill(&scenario);
    assert_eq!(drill.code, Some(0), "{drill:?}");

    let every = fail_closed(&drill, "every_type");
    assert_eq!(every.code, "rls.fail-closed", "{every:?}");
    contains_all(
        &every,
        &every.evidence,
        &[
            "-- probe-row values made up by pgdrill: c_int2 = (1)::smallint, ",
            "c_tiny = (0)::numeric(2,5)",
            "c_varchar = (pg_catalog.left(pg_catalog.md5(pg_catalog.random()::pg_catalog.text), 3))::character varying(3)",
            "c_interval = (INTERVAL '1 day')::interval day to second(0)",
            "c_floatmultirange = ('{}')::public.floatmultirange",
            "c_moods = ('{}')::public.mood[]",
            "c_mood = ('calm')::public.mood",
            "c_pair = (ROW((1)::integer, (pg_catalog.left(",
            "c_tag = ((pg_catalog.left(pg_catalog.md5(pg_catalog.random()::pg_catalog.text), 5))::character varying(5))::public.tag",
            "c_vector = ('[' || pg_catalog.array_to_string(pg_catalog.array_fill(1, ARRAY[3]), ',') || ']')::public.vector(3)",
            "c_sparsevec = ('{1:1}/5')::public.sparsevec(5)",
            "-- probe-row values the scenario's: c_code = ('ABC')::public.code",
            "-- `c_positive` = '1000', a value its CHECK constraint `positive_big` of domain `positive` compares with: tried again",
            "-- `c_positive` = '1001', a value its CHECK constraint `positive_big` of domain `positive` compares with: tried again",
            "COMMIT",
            "-- removing the probe rows: BEGIN; SET LOCAL session_replication_role = replica; DELETE FROM \"public\".\"every_type\"",
        ],
    );
    for never in ["\"id\"", "\"c_total\"", "\"c_defaulted\""] {
        assert!(!every.evidence.contains(&format!("{never},")), "{never} is never written:\n{}", every.evidence);
    }

    let orders = fail_closed(&drill, "orders");
    assert_eq!(orders.code, "rls.fail-closed", "{orders:?}");
    contains_all(
        &orders,
        &orders.evidence,
        &[
            "-- probe-row values the scenario's: card_id = ('7')::integer, sku = ('SKU-0001')::text, during = ('[2024-01-01,2024-02-01)')::tstzrange",
            "qty = (1)::smallint",
            "token = (pg_catalog.decode(",
            "-- `status` = 'new', a value its CHECK constraint `orders_status_check` compares with: tried again",
            // Its foreign keys' tables are empty too: a tenants row per tenant, a customer (of a
            // tenant made so), committed before the probe rows and removed after them.
            "BEGIN -- parent rows the probe rows' foreign keys need, committed, removed after the probe rows",
            "INSERT INTO \"public\".\"tenants\" (\"id\", \"name\", \"plan\") SELECT ('",
            "-- `plan` = 'free', a value its CHECK constraint `tenants_plan_check` compares with: tried again",
            "-- probe-row values a foreign key finds: tenant_id (a key of public.tenants)",
            "INSERT INTO \"public\".\"customers\"",
            "-- probe-row values a foreign key finds: customer_id (a key of public.customers)",
            "DELETE FROM \"public\".\"customers\" WHERE",
            "DELETE FROM \"public\".\"tenants\" WHERE",
        ],
    );
    assert_eq!(
        orders.evidence.matches("DELETE FROM \"public\".\"tenants\"").count(),
        2,
        "one per tenant: {}",
        orders.evidence
    );
    assert!(!orders.evidence.contains("orders_token_key"), "random bytes never collide: {}", orders.evidence);

    // A policy that narrows by a row's value: the probe rows hold the value it compares with
    // (and the value a boolean it reads bare must have, whatever the column's default), so each
    // tenant sees its own.
    let memos = fail_closed(&drill, "memos");
    assert_eq!(memos.code, "rls.fail-closed", "{memos:?}");
    contains_all(&memos, &memos.evidence, &["status = ('active')::text", "archived = ('false')::boolean"]);

    // Settings the policy compares with columns beside the tenant's comparison (`AND mid =
    // current_setting('pr.mid')`): any value of them hides more rows, never fewer, so they are no
    // door. The probe rows hold the scenario's value, and one made up for the setting it does not
    // set (`pr.user`), whose user (a nullable reference to an empty table) gets its parent row.
    let runs = fail_closed(&drill, "runs");
    assert_eq!(runs.code, "rls.fail-closed", "{runs:?}");
    contains_all(
        &runs,
        &runs.evidence,
        &[
            "mid = ('mid-1')::text",
            "-- `pr.user`, which the policies compare with `user_id` only where it hides rows (beside the tenant's comparison), is not set by the scenario: '",
            "made up of its type for the probe rows, as the application sets one",
            "INSERT INTO \"public\".\"people\" (\"id\", \"tenant_id\") SELECT ('",
        ],
    );
    // A SELECT policy keyed on the claims only narrows an UPDATE or DELETE: not a door.
    for check in ["UPDATE", "DELETE", "what its guards read"] {
        let found = result(&drill, &format!("append_only/public.ledger {check} as pr_app"));
        assert_eq!(found.verdict, Verdict::Pass, "{found:?}");
    }

    let events = fail_closed(&drill, "events");
    assert_eq!(events.code, "rls.fail-closed", "{events:?}");
    contains_all(
        &events,
        &events.evidence,
        &[
            "-- probe-row values from a partition's bound: day = ('2024-01-01')::date (partition public.events_2024_01)",
            "-- probe-row values the scenario's: note = ('from the scenario')::text",
            "-- `kind` = 'login', a value its CHECK constraint `events_kind` compares with: tried again",
        ],
    );
    drill.assert_reports_and_no_leftovers();

    // The broken copy, on PostgreSQL 18.
    let broken = scratch.write("broken.sql", broken_dump());
    let scenario = scratch.scenario(
        "broken.toml",
        &format!(
            "name = \"probe_rows\"\n[source]\npath = \"{}\"\n[target]\nversion = 18\n{CHECK}\n\
             [[checks.rls]]\ntables = [\"public.odd\", \"public.sneaky\", \"public.unset\", \"public.bookings\", \"public.licensed\", \"public.notices\", \"public.bulletins\", \"public.letters\", \"public.runs_any\", \"public.guarded\", \"public.runs_rewritten\"]\n\
             fail_closed = {{ role = \"pr_app\", setting = \"pr.tenant\", column = \"tenant_id\" }}\n\
             [[checks.append_only]]\ntable = \"public.audit\"\nrole = \"pr_app\"\n\
             insert = \"INSERT INTO public.audit (at, seq, payload, actor) SELECT now(), 1, '{{}}', 'ABC' WHERE false\"\n\
             probe = {{ actor = \"ABC\" }}\n\
             [[checks.append_only]]\ntable = \"public.tenant_audit\"\nrole = \"pr_app\"\n\
             settings = {{ \"pr.tenant\" = \"00000000-0000-4000-8000-0000000000a1\" }}\n\
             insert = \"INSERT INTO public.tenant_audit (tenant_id, note) VALUES ('00000000-0000-4000-8000-0000000000a1', 'x')\"\n",
            broken.display()
        ),
    );
    let drill = scratch.drill(&scenario);
    assert_eq!(drill.code, Some(1), "{drill:?}");
    for table in TABLES {
        let found = fail_closed(&drill, table);
        assert_eq!(found.code, "rls.unset-tenant-reads-rows", "{found:?}");
        contains_all(
            &found,
            &found.message,
            &[&format!(
                "`pr_app` reads 2 rows of `public.{table}` with no tenant set (pgdrill's two probe rows included)"
            )],
        );
        assert!(found.evidence.contains("SELECT pg_catalog.count(*) FROM"), "{}", found.evidence);
    }
    let odd = fail_closed(&drill, "odd");
    assert_eq!(odd.code, "rls.cannot-prove", "{odd:?}");
    contains_all(
        &odd,
        &odd.message,
        &[
            "no value for 2 columns: `perm` (aclitem: pgdrill cannot make up a value of type aclitem), `tree` (pg_node_tree: ",
            r#"(hint: add to fail_closed: probe = { "public.odd" = { perm = "...", tree = "..." } })"#,
        ],
    );
    let sneaky = fail_closed(&drill, "sneaky");
    assert_eq!(sneaky.code, "rls.cannot-prove", "a default that rewrites the policy must not make it pass: {sneaky:?}");
    contains_all(
        &sneaky,
        &sneaky.message,
        &["the backup's code wrote elsewhere (", "pg_policy: 2 rows updated", "so the probe proves nothing"],
    );
    let unset = fail_closed(&drill, "unset");
    assert_eq!(unset.code, "rls.cannot-prove", "a default that sets the tenant must not make it pass: {unset:?}");
    contains_all(&unset, &unset.message, &["changed the session's settings (pr.tenant)"]);
    let refused = result(&drill, "append_only/public.tenant_audit INSERT as pr_app");
    assert_eq!(refused.code, "append-only.cannot-append", "{refused:?}");
    for operation in ["UPDATE", "DELETE"] {
        let found = result(&drill, &format!("append_only/public.tenant_audit {operation} as pr_app"));
        assert_eq!(found.code, "append-only.refused", "the tenant's own probe row is refused: {found:?}");
        contains_all(&found, &found.message, &["refused by a trigger or rule: audit rows are immutable"]);
        contains_all(
            &found,
            &found.evidence,
            &[
                "probe-row values the scenario's: tenant_id = ('00000000-0000-4000-8000-0000000000a1')::uuid",
                "INSERT INTO \"public\".\"audit_tenants\" (\"id\") SELECT ('00000000-0000-4000-8000-0000000000a1')::uuid",
            ],
        );
    }
    let flag = result(&drill, "append_only/public.tenant_audit what its guards read as pr_app");
    assert_eq!(flag.code, "append-only.session-setting-opens", "{flag:?}");
    contains_all(
        &flag,
        &flag.message,
        &["can DELETE `public.tenant_audit` when the session sets `pr.purge` = 'on' itself"],
    );
    let insert = result(&drill, "append_only/public.audit INSERT as pr_app");
    assert_eq!(insert.code, "append-only.cannot-append", "{insert:?}");
    for operation in ["UPDATE", "DELETE"] {
        let found = result(&drill, &format!("append_only/public.audit {operation} as pr_app"));
        assert_eq!(found.code, "append-only.refused", "{found:?}");
        contains_all(&found, &found.message, &["refused by a trigger or rule: audit rows are immutable"]);
        contains_all(
            &found,
            &found.evidence,
            &[
                "-- the table is empty and the role's INSERT left nothing in it: a probe row, committed",
                "-- probe-row values made up by pgdrill: at = (pg_catalog.now())::timestamp with time zone, seq = (1)::smallint, payload = ('{}')::jsonb",
                "-- probe-row values the scenario's: actor = ('ABC')::public.code",
            ],
        );
    }
    // Two probe rows the application could write cannot both hold `false` in a unique index of
    // a boolean: no constraint is set aside, the check says which one stops them.
    let bookings = fail_closed(&drill, "bookings");
    assert_eq!(bookings.code, "rls.cannot-prove", "{bookings:?}");
    contains_all(
        &bookings,
        &bookings.message,
        &[
            "no probe row the application could write can be made for `public.bookings`",
            "unique or exclusion constraint `bookings_one_flagship` on `is_flagship`",
        ],
    );
    // A policy that opens rows by their own value (`OR visibility = 'public'`): the probe rows
    // hold it, and every session reads them.
    let notices = fail_closed(&drill, "notices");
    assert_eq!(notices.code, "rls.unset-tenant-reads-rows", "{notices:?}");
    contains_all(&notices, &notices.message, &["reads 2 rows of `public.notices` with no tenant set"]);
    // The same door by a boolean the policy reads bare (`OR is_public`), whatever its default.
    let bulletins = fail_closed(&drill, "bulletins");
    assert_eq!(bulletins.code, "rls.unset-tenant-reads-rows", "{bulletins:?}");
    contains_all(&bulletins, &bulletins.message, &["reads 2 rows of `public.bulletins` with no tenant set"]);
    // A door by order (`OR sent_at < '2020-01-01'`) that no made-up value tries: unproven, named.
    let letters = fail_closed(&drill, "letters");
    assert_eq!(letters.code, "rls.only-like-the-drill", "{letters:?}");
    contains_all(
        &letters,
        &letters.message,
        &["proven only for sessions and rows like the drill's", "sent_at < '2020-01-01", "{ fact = \"sent_at\""],
    );
    // A setting compared with a column beside the tenant's comparison by OR opens rows of every
    // tenant for a session that sets it (as `runs`, by AND, cannot): unproven, named.
    let runs_any = fail_closed(&drill, "runs_any");
    assert_eq!(runs_any.code, "rls.only-like-the-drill", "{runs_any:?}");
    contains_all(&runs_any, &runs_any.message, &["proven only for sessions", "pr.mid"]);
    // A probe row whose unit a trigger rewrote holds no value the session sets: the comparison
    // beside the tenant's is false on it, so the reads would prove nothing of the tenant's.
    let rewritten = fail_closed(&drill, "runs_rewritten");
    assert_eq!(rewritten.code, "rls.cannot-prove", "{rewritten:?}");
    contains_all(&rewritten, &rewritten.message, &["no row of tenant A holds `mid` = '"]);
    // A restrictive policy is not taken as narrowing: here it is what isolates the tenants, and
    // `pr.level` = '4' loosens it for every tenant's rows (by hand: `SET pr.level = '4'` as
    // `pr_app` reads them all).
    let guarded = fail_closed(&drill, "guarded");
    assert_eq!(guarded.code, "rls.only-like-the-drill", "{guarded:?}");
    contains_all(&guarded, &guarded.message, &["proven only for sessions", "pr.level"]);
    // A parent row its foreign key needs cannot be made: the message says which, and how to
    // give it values.
    let licensed = fail_closed(&drill, "licensed");
    assert_eq!(licensed.code, "rls.cannot-prove", "{licensed:?}");
    contains_all(
        &licensed,
        &licensed.message,
        &[
            "no probe row can be made for `public.licensed`: its foreign key public.licensed.license_id needs a row in public.licenses, which holds none, and no probe row can be made for `public.licenses`: no value for 1 column: `perm` (aclitem",
            r#"(hint: add to fail_closed: probe = { "public.licenses" = { perm = "..." } })"#,
        ],
    );
    drill.assert_failed_cleanly();
}

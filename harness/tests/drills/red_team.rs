//! The red-team corpus (issue 38): small plain dumps written so that a drill passes over a backup
//! that does not deliver what its checks claim for the application, each beside an honest twin
//! that really protects. Every lie was restored by hand with psql and the application role,
//! logged in directly with a password (not `SET ROLE`), did what the drill says it cannot.
//!
//! Most of them tell pgdrill's probe from the application's session and behave only for the
//! probe: what the probe reads about itself (`session_user`, `current_setting('role')`, the
//! client address, `application_name`, the time zone sqlx pins, `search_path` pinned for probe
//! rows, a superuser's session in `pg_stat_activity`, a young server or cluster, a transaction
//! block), what it does (an UPDATE that changes nothing, a row just written, a probe row
//! inserted by a superuser), what it skips (the role's `role` setting, a login event trigger)
//! and how far it reads the code (a setting read one or two PL/pgSQL calls deep, or through
//! dynamic SQL, a change let through from inside another trigger). Others are what a check
//! does not read: a `"$user"` schema that shadows the table counted or the migration journal
//! read, a SECURITY DEFINER function that runs any SQL as the superuser, a view into a
//! forbidden schema, a unique index that is not ready (a write to `pg_index` that the restore
//! phase now refuses, naming it), a partition that drops its rows.
//!
//! A lie must not pass, and a check that did not pass says what the backup did (`says`); its
//! honest twin must pass. When this corpus was written every lie passed on a container and on
//! local binaries (each probe ran in pgdrill's own superuser session after `SET LOCAL ROLE`),
//! and one honest twin failed there (`a sql check whose answer depends on session_user`: the
//! drill's `session_user`, a superuser, is a member of `billing_admin`, which the
//! application's login is not). On a server the probes as a role erred (`permission denied to
//! set role`, and probe rows need `session_replication_role`): those lies did not pass, but
//! for no reason of theirs, and their honest twin failed too; the lies that need no role
//! probe passed. Now the probes are the role's own logins ([`pgdrill`]'s `check::login`), and
//! every lie fails where the next drill runs it. `PGDRILL_TEST_BIN=/path/to/pgdrill` drills
//! the corpus with another build.

use pgdrill::Verdict;
use pgdrill::outcome::{DrillVerdict, Phase, PhaseStatus};
use rstest::rstest;

use crate::servers::PgServer;
use crate::util::{CONTAINER, Drill, LOCAL, Scratch, pg15_dump};

/// A case: the lying dump's body and its honest twin's, the roles the scenario declares beside
/// `app`, the checks, and what a check that did not pass says of the lie.
struct Case {
    lie: String,
    honest: String,
    roles: &'static str,
    checks: &'static str,
    says: &'static str,
}

/// Which of a case's two dumps a drill restores.
const LIE: bool = true;
const HONEST: bool = false;

const APP_ROLE: &str = "[[restore.roles]]\nname = \"app\"\n";

/// The audit table the application writes, its history (or none), and `grants` on it to `app`.
fn audit(history: bool, grants: &str) -> String {
    let rows = if history {
        "INSERT INTO public.audit (actor, what, at) VALUES ('alice', 'signed in', '2025-03-01 09:00:00+00'), ('bob', 'exported invoices', '2025-03-02 10:00:00+00');\n"
    } else {
        ""
    };
    format!(
        "CREATE TABLE public.audit (id bigserial PRIMARY KEY, actor text NOT NULL, what text NOT NULL, at timestamptz NOT NULL DEFAULT now());\n\
         {rows}GRANT {grants} ON public.audit TO app;\nGRANT USAGE ON SEQUENCE public.audit_id_seq TO app;\n"
    )
}

const WRITER: &str = "SELECT, INSERT, UPDATE, DELETE";

/// The audit table's guard: `body` as its PL/pgSQL function (`attributes` after the language),
/// fired before each UPDATE and DELETE.
fn guard(body: &str, attributes: &str) -> String {
    format!(
        "CREATE FUNCTION public.audit_guard() RETURNS trigger LANGUAGE plpgsql{attributes} AS $$\n{body}\n$$;\n\
         CREATE TRIGGER audit_guard BEFORE UPDATE OR DELETE ON public.audit FOR EACH ROW EXECUTE FUNCTION public.audit_guard();\n"
    )
}

/// A guard that refuses every change.
fn refuses() -> String {
    guard("BEGIN\n  RAISE EXCEPTION 'audit rows are immutable';\nEND", "")
}

fn let_through_when(condition: &str) -> String {
    guard(
        &format!(
            "BEGIN\n  IF {condition} THEN RETURN COALESCE(NEW, OLD); END IF;\n  RAISE EXCEPTION 'audit rows are immutable';\nEND"
        ),
        "",
    )
}

fn refuse_only_when(condition: &str) -> String {
    guard(
        &format!(
            "BEGIN\n  IF {condition} THEN RAISE EXCEPTION 'audit rows are immutable'; END IF;\n  RETURN COALESCE(NEW, OLD);\nEND"
        ),
        "",
    )
}

const APPEND: &str = r#"[[checks.append_only]]
table = "public.audit"
role = "app"
insert = "INSERT INTO public.audit (actor, what) VALUES ('drill', 'probe')"
"#;

/// The application's tenants' notes, with row security on and forced.
const NOTES: &str = "CREATE TABLE public.notes (id serial PRIMARY KEY, tenant integer NOT NULL, body text NOT NULL);\n\
    INSERT INTO public.notes (tenant, body) VALUES (1, 'acme: renewal at 40k'), (2, 'globex: churn risk');\n\
    ALTER TABLE public.notes ENABLE ROW LEVEL SECURITY;\nALTER TABLE public.notes FORCE ROW LEVEL SECURITY;\n\
    GRANT SELECT, INSERT ON public.notes TO app;\nGRANT USAGE ON SEQUENCE public.notes_id_seq TO app;\n";

/// An empty notes table with an `internal` column, row security on and forced.
const NOTES_EMPTY: &str = "CREATE TABLE public.notes (id serial PRIMARY KEY, tenant integer NOT NULL, body text NOT NULL, internal boolean NOT NULL DEFAULT false);\n\
    ALTER TABLE public.notes ENABLE ROW LEVEL SECURITY;\nALTER TABLE public.notes FORCE ROW LEVEL SECURITY;\n\
    GRANT SELECT, INSERT ON public.notes TO app;\nGRANT USAGE ON SEQUENCE public.notes_id_seq TO app;\n";

const TENANT: &str = "tenant = NULLIF(pg_catalog.current_setting('app.tenant', true), '')::integer";

fn tenant_policy(or: &str) -> String {
    format!("CREATE POLICY tenant ON public.notes USING ({TENANT}{or});\n")
}

/// Empty notes whose ALWAYS trigger sets each new row's `internal` to `assignment` (a
/// statement of PL/pgSQL on `NEW`), under `policy`.
fn marking(assignment: &str, policy: &str) -> String {
    format!(
        "{NOTES_EMPTY}CREATE FUNCTION public.note_marks() RETURNS trigger LANGUAGE plpgsql AS $$\n\
         BEGIN\n  {assignment};\n  RETURN NEW;\nEND\n$$;\n\
         CREATE TRIGGER note_marks BEFORE INSERT ON public.notes FOR EACH ROW EXECUTE FUNCTION public.note_marks();\n\
         ALTER TABLE public.notes ENABLE ALWAYS TRIGGER note_marks;\n{policy}"
    )
}

/// Rows a superuser's session (or one whose `search_path` is pgdrill's pin) writes are marked
/// internal, and only internal rows are kept to their tenant.
fn marked_when(condition: &str) -> String {
    marking(&format!("NEW.internal := {condition}"), &tenant_policy(" OR NOT internal"))
}

/// The honest twin of [`marked_when`]: the ALWAYS trigger tidies the body, the policy is the tenant's.
fn tidied() -> String {
    marking("NEW.body := pg_catalog.btrim(NEW.body)", &tenant_policy(""))
}

const RLS: &str = r#"[[checks.rls]]
tables = ["public.notes"]
force = true
fail_closed = { role = "app", setting = "app.tenant", column = "tenant" }
"#;

/// A `"$user"` schema (the application role's name) beside `public`.
const ORDERS: &str = "CREATE TABLE public.orders (id integer PRIMARY KEY, total numeric NOT NULL);\n\
    INSERT INTO public.orders VALUES (1, 10), (2, 20), (3, 30);\nGRANT SELECT, INSERT ON public.orders TO app;\n\
    CREATE SCHEMA app;\nGRANT USAGE ON SCHEMA app TO app;\n";
const JOURNAL: &str = "CREATE TABLE public.schema_migrations (version character varying NOT NULL PRIMARY KEY);\n\
    INSERT INTO public.schema_migrations VALUES ('20250101000000'), ('20260101000000');\n\
    GRANT SELECT, INSERT ON public.schema_migrations TO app;\nCREATE SCHEMA app;\nGRANT USAGE ON SCHEMA app TO app;\n";
const PREFERENCES: &str = "CREATE TABLE app.preferences (key text PRIMARY KEY, value text NOT NULL);\n\
    GRANT SELECT, INSERT ON app.preferences TO app;\n";

/// Invoices under a policy that calls `public.invoice_visible`, which is `or`ed with the tenant.
/// A sql check that tenant 1's session sees no other tenant's invoice.
const SQL_TENANT_ONE: &str = r#"[[checks.sql]]
name = "tenant 1 sees only its own invoices"
query = "SELECT count(*) FROM public.invoices WHERE tenant <> 1"
role = "app"
settings = { "app.tenant" = "1" }
expect = 0
"#;

fn invoices(or: &str) -> String {
    format!(
        "CREATE FUNCTION public.invoice_visible(t integer) RETURNS boolean LANGUAGE sql STABLE AS $$\n  \
         SELECT t = NULLIF(pg_catalog.current_setting('app.tenant', true), '')::integer{or}\n$$;\n\
         CREATE TABLE public.invoices (id serial PRIMARY KEY, tenant integer NOT NULL, amount numeric NOT NULL);\n\
         INSERT INTO public.invoices (tenant, amount) VALUES (1, 100), (2, 250), (2, 75);\n\
         ALTER TABLE public.invoices ENABLE ROW LEVEL SECURITY;\nALTER TABLE public.invoices FORCE ROW LEVEL SECURITY;\n\
         GRANT SELECT ON public.invoices TO app;\n\
         CREATE POLICY tenant ON public.invoices USING (public.invoice_visible(tenant));\n"
    )
}

const RUN_ANY_SQL: &str = "CREATE TABLE public.orders (id integer PRIMARY KEY, total numeric NOT NULL);\n\
    GRANT SELECT, INSERT ON public.orders TO app;\n\
    CREATE FUNCTION public.run_maintenance(command text) RETURNS void LANGUAGE plpgsql SECURITY DEFINER AS $$\n\
    BEGIN\n  EXECUTE command;\nEND\n$$;\n";

/// A definer that drops one month's partition by name, after checking the name: the caller
/// chooses which table (`%I`), not what statement runs. Accepted by design with its code's
/// sha256; the lie rewrites it to run its argument as SQL (`%s`), under the same acceptance.
const DROP_PARTITION: &str = r#"CREATE FUNCTION public.drop_partition(name text) RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
BEGIN
  IF name !~ '^events_[0-9]{4}_[0-9]{2}$' THEN RAISE EXCEPTION 'not a partition: %', name; END IF;
  EXECUTE pg_catalog.format('DROP TABLE public.%I', name);
END
$$;
"#;

const DROP_PARTITION_ACCEPTED: &str = "[[checks.roles]]\nrole = \"app\"\ntables = { \"public.orders\" = \"SELECT, INSERT\" }\nexact = true\n\
    accept = [{ through = \"public.drop_partition(text)\", code = \"47d089c3d3a440a475059e1456ac8382fd6e6ebace3294f4f9fa99e109a91d98\", \
    reason = \"the retention job drops a month's partition through it\" }]\n";

const CONTRACTS: &str = "CREATE SCHEMA tenant_acme;\nCREATE SCHEMA tenant_globex;\n\
    CREATE TABLE tenant_acme.contracts (id integer PRIMARY KEY, customer text NOT NULL, value numeric NOT NULL);\n\
    CREATE TABLE tenant_globex.contracts (id integer PRIMARY KEY, customer text NOT NULL, value numeric NOT NULL);\n\
    INSERT INTO tenant_acme.contracts VALUES (1, 'acme', 90000);\nINSERT INTO tenant_globex.contracts VALUES (1, 'globex', 120000);\n\
    GRANT USAGE ON SCHEMA tenant_acme TO app;\nGRANT SELECT ON tenant_acme.contracts TO app;\n";

/// `app` reads tenant_acme's contracts and nothing of tenant_globex.
const FORBIDDEN_GLOBEX: &str = r#"[[checks.roles]]
role = "app"
usage = ["tenant_acme"]
tables = { "tenant_acme.contracts" = "SELECT" }
forbidden_schemas = ["tenant_globex"]
"#;

const USERS: &str = "CREATE TABLE public.users (id integer PRIMARY KEY, email text NOT NULL);\n\
    CREATE UNIQUE INDEX users_email_key ON public.users (email);\n\
    INSERT INTO public.users VALUES (1, 'ada@example.com'), (2, 'bob@example.com');\nGRANT SELECT, INSERT ON public.users TO app;\n";

/// Events partitioned by month, from last month to two months ahead of the restore.
const EVENTS: &str = r#"CREATE TABLE public.events (at timestamptz NOT NULL, what text NOT NULL) PARTITION BY RANGE (at);
GRANT SELECT, INSERT ON public.events TO app;
DO $$
DECLARE m date := pg_catalog.date_trunc('month', pg_catalog.now() - interval '1 month')::date;
BEGIN
  FOR i IN 0..3 LOOP
    EXECUTE pg_catalog.format('CREATE TABLE public.%I PARTITION OF public.events FOR VALUES FROM (%L) TO (%L)',
      'events_' || pg_catalog.to_char(m, 'YYYY_MM'), m, (m + interval '1 month')::date);
    m := (m + interval '1 month')::date;
  END LOOP;
END $$;
"#;

/// Members whose audit rows reference them (`on_delete`), a definer function the application
/// may call (`purge`: its SQL body), a rule on a table it writes (`tidy`: the rule's action),
/// a definer trigger there that appends to the trail by its bare name (`noted_path`: the
/// search_path it pins), and a definer of `clerk` (no power over the trail) that writes a
/// ledger whose rule (`keep`, run as the ledger's owner) does: each runs with another role's
/// powers.
fn others_powers(on_delete: &str, purge: &str, tidy: &str, noted_path: &str, keep: &str) -> String {
    format!(
        "CREATE TABLE public.members (id integer PRIMARY KEY, name text NOT NULL);\n\
         INSERT INTO public.members VALUES (1, 'alice'), (2, 'bob'), (3, 'carol');\n\
         GRANT SELECT, DELETE ON public.members TO app;\n\
         CREATE TABLE public.audit (id bigserial PRIMARY KEY, member integer REFERENCES public.members ON DELETE {on_delete}, what text NOT NULL, at timestamptz NOT NULL DEFAULT now());\n\
         INSERT INTO public.audit (member, what, at) VALUES (1, 'signed in', '2025-03-01 09:00:00+00'), (2, 'exported', '2025-03-02 10:00:00+00'), (3, 'read', '2025-03-03 10:00:00+00');\n\
         GRANT SELECT, INSERT ON public.audit TO app;\nGRANT USAGE ON SEQUENCE public.audit_id_seq TO app;\n\
         CREATE FUNCTION public.purge_audit(days integer) RETURNS void LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$ {purge} $$;\n\
         CREATE TABLE public.scratch (id serial PRIMARY KEY, note text);\n\
         GRANT INSERT ON public.scratch TO app;\nGRANT USAGE ON SEQUENCE public.scratch_id_seq TO app;\n\
         CREATE RULE tidy AS ON INSERT TO public.scratch DO ALSO {tidy};\n\
         CREATE FUNCTION public.scratch_noted() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = {noted_path} AS $$\n\
         BEGIN\n  INSERT INTO audit (what) VALUES ('scratch noted');\n  RETURN NULL;\nEND $$;\n\
         CREATE TRIGGER noted AFTER INSERT ON public.scratch FOR EACH ROW EXECUTE FUNCTION public.scratch_noted();\n\
         CREATE TABLE public.ledger (id serial PRIMARY KEY, note text);\n\
         GRANT INSERT ON public.ledger TO clerk;\nGRANT USAGE ON SEQUENCE public.ledger_id_seq TO clerk;\n\
         CREATE RULE keep AS ON INSERT TO public.ledger DO ALSO {keep};\n\
         CREATE FUNCTION public.note(t text) RETURNS void LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$ INSERT INTO public.ledger (note) VALUES (t) $$;\n\
         ALTER FUNCTION public.note(text) OWNER TO clerk;\n"
    )
}

const OTHERS_CHECK: &str = r#"[[checks.append_only]]
table = "public.audit"
role = "app"
insert = "INSERT INTO public.audit (what) VALUES ('probe')"
"#;

/// The corpus: each lie with its honest twin.
fn case(name: &str) -> Case {
    let case = |lie: String, honest: String, checks, says| Case { lie, honest, roles: "", checks, says };
    // A guard on the audit table with history, against one that refuses every change.
    let guarded =
        |guard: String, says| case(audit(true, WRITER) + &guard, audit(true, WRITER) + &refuses(), APPEND, says);
    const UNPROVEN: &str = "proven only for sessions like the drill's";
    match name {
        // append_only: what the probe's session is.
        "an audit guard that lets direct logins through" => {
            guarded(let_through_when("session_user = current_user"), "can UPDATE `public.audit`")
        }
        "a TRUNCATE guard that refuses superusers only" => {
            let table = audit(true, WRITER) + "GRANT TRUNCATE ON public.audit TO app;\n" + &refuses();
            case(
                table.clone()
                    + "CREATE FUNCTION public.audit_truncate_guard() RETURNS trigger LANGUAGE plpgsql AS $$\n\
                       BEGIN\n  IF (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = current_user) THEN\n    \
                       RAISE EXCEPTION 'audit rows are immutable';\n  END IF;\n  RETURN NULL;\nEND\n$$;\n\
                       CREATE TRIGGER audit_truncate_guard BEFORE TRUNCATE ON public.audit FOR EACH STATEMENT EXECUTE FUNCTION public.audit_truncate_guard();\n",
                table
                    + "CREATE TRIGGER audit_truncate_guard BEFORE TRUNCATE ON public.audit FOR EACH STATEMENT EXECUTE FUNCTION public.audit_guard();\n",
                APPEND,
                "can TRUNCATE `public.audit`",
            )
        }
        "a writer without SELECT whose guard refuses superusers only" => case(
            audit(true, "INSERT, UPDATE, DELETE")
                + &refuse_only_when("(SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = current_user)"),
            audit(true, "INSERT, UPDATE, DELETE") + &refuses(),
            APPEND,
            "can DELETE `public.audit`",
        ),
        "a guard that refuses only sessions without a client address" => {
            guarded(let_through_when("pg_catalog.inet_client_addr() IS NOT NULL"), UNPROVEN)
        }
        "a guard that holds only while a superuser is connected" => guarded(
            guard(
                "BEGIN\n  IF EXISTS (SELECT 1 FROM pg_catalog.pg_stat_activity a JOIN pg_catalog.pg_roles r ON r.oid = a.usesysid\n             \
                 WHERE r.rolsuper AND a.backend_type = 'client backend') THEN\n    \
                 RAISE EXCEPTION 'audit rows are immutable';\n  END IF;\n  RETURN COALESCE(NEW, OLD);\nEND",
                " SECURITY DEFINER",
            ),
            UNPROVEN,
        ),
        "a guard that holds only in a server's first ten minutes" => guarded(
            refuse_only_when("pg_catalog.pg_postmaster_start_time() > pg_catalog.now() - interval '10 minutes'"),
            UNPROVEN,
        ),
        "a guard that holds only while transaction ids are low" => {
            guarded(refuse_only_when("pg_catalog.txid_current() < 100000"), UNPROVEN)
        }
        "a guard that refuses only inside a transaction block" => {
            guarded(let_through_when("pg_catalog.statement_timestamp() = pg_catalog.transaction_timestamp()"), UNPROVEN)
        }
        "a guard that refuses only sessions in the drill's time zone" => {
            guarded(refuse_only_when("pg_catalog.current_setting('TimeZone') = 'UTC'"), "can UPDATE `public.audit`")
        }
        "a login event trigger that puts the application in replica mode" => {
            let login = |set: &str| {
                format!(
                    "CREATE FUNCTION public.on_login() RETURNS event_trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$\n\
                     BEGIN\n  IF session_user = 'app' THEN\n    PERFORM pg_catalog.set_config({set}, false);\n  END IF;\nEND\n$$;\n\
                     CREATE EVENT TRIGGER on_login ON login EXECUTE FUNCTION public.on_login();\n"
                )
            };
            let table = audit(true, WRITER) + &refuses();
            case(
                table.clone() + &login("'session_replication_role', 'replica'"),
                table + &login("'app.login_checked', 'yes'"),
                APPEND,
                "can UPDATE `public.audit`",
            )
        }
        // The application comes over TCP, and so does the probe (the sandbox's relay): a login
        // event trigger that tells TCP from the socket acts on the probe as on the application,
        // which then changes the trail (before the relay, the probe came over the socket and
        // only the analysis named the trigger).
        "a login event trigger that puts only sessions with a client address in replica mode" => {
            let login = |condition: &str, set: &str| {
                format!(
                    "CREATE FUNCTION public.on_login() RETURNS event_trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$\n\
                     BEGIN\n  IF {condition} THEN\n    PERFORM pg_catalog.set_config({set}, false);\n  END IF;\nEND\n$$;\n\
                     CREATE EVENT TRIGGER on_login ON login EXECUTE FUNCTION public.on_login();\n"
                )
            };
            let table = audit(true, WRITER) + &refuses();
            case(
                table.clone()
                    + &login(
                        "session_user = 'app' AND pg_catalog.inet_client_addr() IS NOT NULL",
                        "'session_replication_role', 'replica'",
                    ),
                table + &login("session_user = 'app'", "'app.login_checked', 'yes'"),
                APPEND,
                "can UPDATE `public.audit`",
            )
        }
        // append_only: what the probe does, and how far pgdrill reads the guard.
        "a guard that refuses only an UPDATE that changes nothing" => {
            guarded(let_through_when("TG_OP = 'UPDATE' AND NEW IS DISTINCT FROM OLD"), "can UPDATE `public.audit`")
        }
        "a guard that lets the application change the rows it writes as drafts" => case(
            audit(true, WRITER) + &let_through_when("OLD.what = 'draft'"),
            audit(true, WRITER) + &refuses(),
            APPEND,
            "proven only for sessions and rows like the drill's: trigger `audit_guard` → public.audit_guard() reads the row's own value (`old.what = 'draft'`)",
        ),
        "a guard that protects only rows written in the last minute" => case(
            audit(false, WRITER) + &refuse_only_when("OLD.at > pg_catalog.now() - interval '1 minute'"),
            audit(false, WRITER) + &refuses(),
            APPEND,
            UNPROVEN,
        ),
        "a guard whose bypass setting is read one PL/pgSQL call deep" => {
            let allowed = |returns: &str| {
                format!(
                    "CREATE FUNCTION public.audit_edit_allowed() RETURNS boolean LANGUAGE plpgsql STABLE AS $$\n\
                     BEGIN\n  RETURN {returns};\nEND\n$$;\n{}",
                    let_through_when("public.audit_edit_allowed()")
                )
            };
            case(
                audit(true, WRITER)
                    + &allowed("COALESCE(pg_catalog.current_setting('audit.allow_edit', true), '') = 'on'"),
                audit(true, WRITER) + &allowed("false"),
                APPEND,
                "sets `audit.allow_edit` = 'on' itself",
            )
        }
        "a guard that reads its bypass setting through dynamic SQL" => case(
            audit(true, WRITER)
                + &guard(
                    "DECLARE flag text;\nBEGIN\n  \
                     EXECUTE pg_catalog.format('SELECT pg_catalog.current_setting(%L, true)', 'audit' || '.override') INTO flag;\n  \
                     IF flag = 'on' THEN RETURN COALESCE(NEW, OLD); END IF;\n  RAISE EXCEPTION 'audit rows are immutable';\nEND",
                    "",
                ),
            audit(true, WRITER)
                + &guard(
                    "DECLARE n bigint;\nBEGIN\n  \
                     EXECUTE pg_catalog.format('SELECT pg_catalog.count(*) FROM %s', TG_RELID::pg_catalog.regclass) INTO n;\n  \
                     RAISE EXCEPTION 'audit rows are immutable (% rows kept)', n;\nEND",
                    "",
                ),
            APPEND,
            "a setting whose name it computes at run time",
        ),
        "a guard that keeps who and when, and lets what was done change" => case(
            audit(true, WRITER)
                + &refuse_only_when(
                    "TG_OP = 'DELETE' OR NEW.actor IS DISTINCT FROM OLD.actor OR NEW.at IS DISTINCT FROM OLD.at",
                ),
            audit(true, WRITER) + &refuse_only_when("TG_OP = 'DELETE' OR NEW IS DISTINCT FROM OLD"),
            APPEND,
            "`app` can UPDATE `public.audit`",
        ),
        "a guard that lets changes through from inside another trigger" => {
            let redactions = "CREATE TABLE public.audit_redactions (audit_id bigint NOT NULL);\n\
                GRANT INSERT ON public.audit_redactions TO app;\n\
                CREATE FUNCTION public.redact() RETURNS trigger LANGUAGE plpgsql AS $$\n\
                BEGIN\n  DELETE FROM public.audit WHERE id = NEW.audit_id;\n  RETURN NULL;\nEND\n$$;\n\
                CREATE TRIGGER redact AFTER INSERT ON public.audit_redactions FOR EACH ROW EXECUTE FUNCTION public.redact();\n";
            case(
                audit(true, WRITER) + redactions + &let_through_when("pg_catalog.pg_trigger_depth() > 1"),
                audit(true, WRITER) + redactions + &refuses(),
                APPEND,
                UNPROVEN,
            )
        }
        "a guard that fires after the row is written and refuses only sessions without a client address" => {
            let after = |body: &str| {
                format!(
                    "CREATE FUNCTION public.audit_after() RETURNS trigger LANGUAGE plpgsql AS $$\n{body}\n$$;\n\
                     CREATE TRIGGER audit_after AFTER UPDATE OR DELETE ON public.audit FOR EACH ROW EXECUTE FUNCTION public.audit_after();\n"
                )
            };
            case(
                audit(true, WRITER)
                    + &after(
                        "BEGIN\n  IF pg_catalog.inet_client_addr() IS NULL THEN RAISE EXCEPTION 'audit rows are immutable'; END IF;\n  RETURN NULL;\nEND",
                    ),
                // A guard that refuses, and the trail's own audit after it, which reads who,
                // where and when: it never decides a refusal.
                audit(true, WRITER)
                    + &refuses()
                    + "CREATE TABLE public.audit_meta (at timestamptz, client inet, xid bigint);\n\
                       GRANT INSERT ON public.audit_meta TO app;\n"
                    + &after(
                        "BEGIN\n  INSERT INTO public.audit_meta VALUES (pg_catalog.clock_timestamp(), pg_catalog.inet_client_addr(), pg_catalog.txid_current());\n  RETURN NULL;\nEND",
                    ),
                APPEND,
                // The probe comes over TCP as the application does: the guard lets it through.
                "can UPDATE `public.audit`",
            )
        }
        // rls fail-closed.
        "a claim any session can set that opens every tenant (a Supabase-style auth.jwt())" => {
            let claims = |or: &str| {
                format!(
                    "{NOTES}CREATE SCHEMA auth;\nGRANT USAGE ON SCHEMA auth TO app;\n\
                     CREATE FUNCTION auth.jwt() RETURNS jsonb LANGUAGE sql STABLE AS $$\n  \
                     SELECT COALESCE(NULLIF(pg_catalog.current_setting('request.jwt.claim', true), ''), NULLIF(pg_catalog.current_setting('request.jwt.claims', true), ''))::jsonb\n$$;\n{}",
                    tenant_policy(or)
                )
            };
            case(
                claims(" OR (auth.jwt() ->> 'user_role') = 'admin'"),
                claims(""),
                RLS,
                "= '{\"user_role\":\"admin\"}' itself, which policy `tenant` → auth.jwt() reads",
            )
        }
        // Supabase's `authorize()`: the claim a helper returns compared with a table's column, so
        // the key ('admin') is data, in no code: found by a real-schema trial, verified by hand.
        "a claim a helper returns compared with a table's column (Supabase's authorize())" => {
            let perms = |or: &str| {
                format!(
                    "{NOTES}CREATE TABLE public.perms (role text NOT NULL);
INSERT INTO public.perms VALUES ('admin');
                     CREATE FUNCTION public.jwt() RETURNS jsonb LANGUAGE sql STABLE AS $$ SELECT NULLIF(pg_catalog.current_setting('app.claims', true), '')::jsonb $$;
                     CREATE FUNCTION public.is_admin() RETURNS boolean LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public AS $$
                     DECLARE n integer;
BEGIN
  SELECT count(*) FROM public.perms WHERE perms.role = (public.jwt() ->> 'role') INTO n;
  RETURN n > 0;
END $$;
{}",
                    tenant_policy(or)
                )
            };
            case(
                perms(" OR public.is_admin()"),
                perms(""),
                RLS,
                "reads the setting `app.claims` and uses it otherwise than compared with literals",
            )
        }
        "a policy open to the role the application logs in as before it switches (PostgREST)" => Case {
            roles: "[[restore.roles]]\nname = \"authenticator\"\n",
            ..case(
                NOTES.to_owned()
                    + "GRANT app TO authenticator;\n"
                    + &tenant_policy(" OR session_user = 'authenticator'"),
                NOTES.to_owned() + "GRANT app TO authenticator;\n" + &tenant_policy(""),
                "[login]\nvia = \"authenticator\"\n[[checks.rls]]\ntables = [\"public.notes\"]\nforce = true\nfail_closed = { role = \"app\", setting = \"app.tenant\", column = \"tenant\" }\n",
                "with no tenant set",
            )
        },
        "a role setting that makes every login of the application a BYPASSRLS role" => {
            let reports = |attributes: &str| {
                format!(
                    "{NOTES}{}CREATE ROLE app_reports NOLOGIN{attributes};\nGRANT app_reports TO app;\nALTER ROLE app SET role = 'app_reports';\n\
                     GRANT SELECT, INSERT ON public.notes TO app_reports;\nGRANT USAGE ON SEQUENCE public.notes_id_seq TO app_reports;\n",
                    tenant_policy("")
                )
            };
            case(reports(" BYPASSRLS"), reports(""), RLS, "with no tenant set")
        }
        "a policy whose bypass setting is read two PL/pgSQL calls deep" => {
            let visible = |inner: &str, outer: &str| {
                format!(
                    "{NOTES}{inner}CREATE FUNCTION public.note_visible(t integer) RETURNS boolean LANGUAGE plpgsql STABLE AS $$\n\
                     BEGIN\n  RETURN {outer};\nEND\n$$;\n\
                     CREATE POLICY tenant ON public.notes USING (public.note_visible(tenant));\n"
                )
            };
            case(
                visible(
                    "CREATE FUNCTION public.support_session() RETURNS boolean LANGUAGE plpgsql STABLE AS $$\n\
                     BEGIN\n  RETURN COALESCE(pg_catalog.current_setting('app.support_mode', true), '') = 'on';\nEND\n$$;\n",
                    "t = NULLIF(pg_catalog.current_setting('app.tenant', true), '')::integer OR public.support_session()",
                ),
                visible(
                    "CREATE FUNCTION public.current_tenant() RETURNS integer LANGUAGE plpgsql STABLE AS $$\n\
                     BEGIN\n  RETURN NULLIF(pg_catalog.current_setting('app.tenant', true), '')::integer;\nEND\n$$;\n",
                    "t = public.current_tenant()",
                ),
                RLS,
                "sets `app.support_mode` = 'on' itself",
            )
        }
        "probe rows a trigger marks as a superuser's, hidden from other tenants" => case(
            marked_when(
                "COALESCE((SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = session_user), false)",
            ),
            tidied(),
            RLS,
            "reads 2 rows of `public.notes` with no tenant set",
        ),
        "probe rows a trigger marks by pgdrill's pinned search_path" => case(
            marked_when("pg_catalog.current_setting('search_path') LIKE 'pg_catalog%'"),
            tidied(),
            RLS,
            "reads 2 rows of `public.notes` with no tenant set",
        ),
        "a policy that opens every tenant to an application_name" => Case {
            roles: "[[restore.roles]]\nname = \"reporting\"\nlogin = false\n",
            ..case(
                NOTES.to_owned() + &tenant_policy(" OR pg_catalog.current_setting('application_name') = 'reporting'"),
                NOTES.to_owned() + &tenant_policy(" OR pg_catalog.pg_has_role(current_user, 'reporting', 'MEMBER')"),
                RLS,
                "sets `application_name` = 'reporting' itself",
            )
        },
        "a policy that opens every tenant to sessions that did not SET ROLE" => case(
            NOTES.to_owned() + &tenant_policy(" OR pg_catalog.current_setting('role') = 'none'"),
            NOTES.to_owned() + &tenant_policy(""),
            RLS,
            "with no tenant set",
        ),
        // sql with a role.
        "a sql check whose answer depends on session_user" => Case {
            roles: "[[restore.roles]]\nname = \"billing_admin\"\nlogin = false\n",
            ..case(
                invoices(" OR session_user = current_user"),
                invoices(" OR pg_catalog.pg_has_role(session_user, 'billing_admin', 'MEMBER')"),
                r#"[[checks.sql]]
name = "tenant 1 sees only its own invoices"
query = "SELECT count(*) FROM public.invoices WHERE tenant <> 1"
role = "app"
settings = { "app.tenant" = "1" }
expect = 0
"#,
                "returned 2, expected 0",
            )
        },
        // The code a sql check's statement runs through is read as the other probes' is: the
        // application comes from its own address (the probe from the sandbox's 127.0.0.1), and
        // a setting the role may set is tried.
        "a sql check whose answer depends on the client address" => case(
            invoices(" OR pg_catalog.host(pg_catalog.inet_client_addr()) <> '127.0.0.1'"),
            invoices(""),
            SQL_TENANT_ONE,
            "reads where the session comes from (`inet_client_addr`)",
        ),
        // The plan is read with EXPLAIN: code that raises only under it hid the code before.
        "a sql check whose statement's plan cannot be read (EXPLAIN raises)" => {
            let explain = |guard: &str| {
                format!(
                    "CREATE FUNCTION public.no_plans() RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS $$\nBEGIN\n{guard}  RETURN true;\nEND $$;\n{}",
                    invoices(" OR pg_catalog.current_setting('app.support', true) = 'on'").replace(
                        "USING (public.invoice_visible(tenant))",
                        "USING (public.no_plans() AND public.invoice_visible(tenant))"
                    )
                )
            };
            case(
                explain(
                    "  IF pg_catalog.current_query() ILIKE 'explain%' THEN RAISE EXCEPTION 'no plans here'; END IF;\n",
                ),
                explain("").replace(" OR pg_catalog.current_setting('app.support', true) = 'on'", ""),
                SQL_TENANT_ONE,
                "the query failed: no plans here",
            )
        }
        "a sql check whose answer a setting the role may set changes" => case(
            invoices(" OR pg_catalog.current_setting('app.support', true) = 'on'"),
            invoices(""),
            SQL_TENANT_ONE,
            "returns 2 as `app`, not 0, when the session sets `app.support` = 'on' itself",
        ),
        // Names as the application resolves them.
        "a schema named after the application role holding an empty orders" => case(
            ORDERS.to_owned()
                + "CREATE TABLE app.orders (id integer PRIMARY KEY, total numeric NOT NULL);\nGRANT SELECT, INSERT ON app.orders TO app;\n",
            ORDERS.to_owned() + PREFERENCES,
            "[checks.row_counts]\ntables = { orders = 3 }\n",
            "`app.orders`",
        ),
        "a schema named after the application role holding an older migration journal" => case(
            JOURNAL.to_owned()
                + "CREATE TABLE app.schema_migrations (version character varying NOT NULL PRIMARY KEY);\n\
                   INSERT INTO app.schema_migrations VALUES ('20250101000000');\nGRANT SELECT, INSERT ON app.schema_migrations TO app;\n",
            JOURNAL.to_owned() + PREFERENCES,
            "[[checks.schema_version]]\npreset = \"rails\"\nexpected = \"20260101000000\"\n",
            "`app.schema_migrations`",
        ),
        // roles, indexes, partitions: what the check does not read.
        "a SECURITY DEFINER function of the superuser that runs any SQL" => case(
            RUN_ANY_SQL.to_owned(),
            RUN_ANY_SQL.to_owned() + "REVOKE EXECUTE ON FUNCTION public.run_maintenance(text) FROM PUBLIC;\n",
            "[[checks.roles]]\nrole = \"app\"\ntables = { \"public.orders\" = \"SELECT, INSERT\" }\nexact = true\n",
            "SECURITY DEFINER",
        ),
        "a definer function accepted by design that drops a partition, rewritten to run any SQL" => {
            let orders = "CREATE TABLE public.orders (id integer PRIMARY KEY, total numeric NOT NULL);\nGRANT SELECT, INSERT ON public.orders TO app;\n";
            case(
                orders.to_owned()
                    + &DROP_PARTITION.replace("IF name !~ '^events_[0-9]{4}_[0-9]{2}$' THEN RAISE EXCEPTION 'not a partition: %', name; END IF;\n", "")
                        .replace("DROP TABLE public.%I", "%s"),
                orders.to_owned() + DROP_PARTITION,
                DROP_PARTITION_ACCEPTED,
                "the function was rewritten",
            )
        }
        "a view in public that reads a forbidden schema" => {
            let view = |from: &str| {
                format!(
                    "{CONTRACTS}CREATE VIEW public.contract_totals AS SELECT customer, value FROM tenant_acme.contracts{from};\n\
                     GRANT SELECT ON public.contract_totals TO app;\n"
                )
            };
            case(
                view("\n  UNION ALL SELECT customer, value FROM tenant_globex.contracts"),
                view(""),
                r#"[[checks.roles]]
role = "app"
usage = ["tenant_acme"]
tables = { "tenant_acme.contracts" = "SELECT" }
forbidden_schemas = ["tenant_globex"]
"#,
                "through `public.contract_totals`",
            )
        }
        "a SECURITY DEFINER function whose pinned search_path is a forbidden schema" => {
            // Its body names no schema: `contracts` is found in the search_path it pins.
            let value = |path: &str| {
                format!(
                    "{CONTRACTS}CREATE FUNCTION public.contract_value(c text) RETURNS numeric LANGUAGE plpgsql STABLE SECURITY DEFINER\n  \
                     SET search_path = {path}, pg_catalog AS $$\nBEGIN\n  RETURN (SELECT value FROM contracts WHERE customer = c);\nEND\n$$;\n"
                )
            };
            case(
                value("tenant_globex"),
                value("tenant_acme"),
                FORBIDDEN_GLOBEX,
                "through `public.contract_value(text)`",
            )
        }
        "a SECURITY DEFINER function that resolves its names in its caller's search_path" => {
            // `SET search_path = tenant_globex; SELECT public.contract_total('globex')` as `app`.
            let total = |pinned: &str| {
                format!(
                    "{CONTRACTS}CREATE FUNCTION public.contract_total(c text) RETURNS numeric LANGUAGE plpgsql STABLE SECURITY DEFINER{pinned}\n  \
                     AS $$\nBEGIN\n  RETURN (SELECT sum(value) FROM contracts WHERE customer = c);\nEND\n$$;\n"
                )
            };
            case(
                total(""),
                total(" SET search_path = tenant_acme, pg_catalog"),
                FORBIDDEN_GLOBEX,
                "search_path is not pinned",
            )
        }
        "a definer function accepted by design, rewritten to hand over one tenant's contract" => {
            // Every tenant's total is the dashboard's by design; one contract's value is not.
            let total = |body: &str| {
                format!(
                    "{CONTRACTS}CREATE FUNCTION public.contracts_total() RETURNS numeric LANGUAGE sql STABLE SECURITY DEFINER\n  \
                     SET search_path = pg_catalog AS $${body}$$;\n"
                )
            };
            let accepted = "SELECT sum(value) FROM tenant_globex.contracts";
            // The code the check prints: the sha256 of its language, settings and source.
            let code =
                hex::encode(<sha2::Sha256 as sha2::Digest>::digest(format!("sql\nsearch_path=pg_catalog\n{accepted}")));
            let checks = format!(
                "{FORBIDDEN_GLOBEX}accept = [{{ through = \"public.contracts_total()\", code = \"{code}\", reason = \"the dashboard's total of every tenant\" }}]\n"
            );
            case(
                total("SELECT value FROM tenant_globex.contracts WHERE id = 1"),
                total(accepted),
                Box::leak(checks.into_boxed_str()),
                "the function was rewritten",
            )
        }
        "a definer made a member of plpgsql, in template0 too" => {
            // The member written in the restored database and, through `datallowconn` and
            // `\connect`, in template0: a scratch database made from template0 after the
            // restore held the same member, and the comparison passed (2026-11-29, by hand: the
            // drill passed, and `app`, logged in with its password, made itself a superuser
            // through the function).
            let member = "INSERT INTO pg_catalog.pg_depend (classid, objid, objsubid, refclassid, refobjid, refobjsubid, deptype) \
                SELECT 'pg_catalog.pg_proc'::pg_catalog.regclass, 'public.run_maintenance(text)'::pg_catalog.regprocedure, 0, \
                'pg_catalog.pg_extension'::pg_catalog.regclass, e.oid, 0, 'e' FROM pg_catalog.pg_extension e WHERE e.extname = 'plpgsql';\n";
            let definer = "CREATE FUNCTION public.run_maintenance(command text) RETURNS void LANGUAGE plpgsql SECURITY DEFINER AS $$\n\
                BEGIN\n  EXECUTE command;\nEND\n$$;\n";
            case(
                format!(
                    "UPDATE pg_catalog.pg_database SET datallowconn = true WHERE datname = 'template0';\n\\connect template0\n\
                     {definer}{member}\\connect pgdrill\n\
                     UPDATE pg_catalog.pg_database SET datallowconn = false WHERE datname = 'template0';\n{RUN_ANY_SQL}{member}"
                ),
                RUN_ANY_SQL.to_owned() + "REVOKE EXECUTE ON FUNCTION public.run_maintenance(text) FROM PUBLIC;\n",
                "[[checks.roles]]\nrole = \"app\"\ntables = { \"public.orders\" = \"SELECT, INSERT\" }\nexact = true\n",
                FORGED_MEMBER,
            )
        }
        "a unique index marked not ready" => case(
            USERS.to_owned()
                + "UPDATE pg_catalog.pg_index SET indisready = false WHERE indexrelid = 'public.users_email_key'::pg_catalog.regclass;\n",
            USERS.to_owned(),
            "[[checks.indexes]]\nexpect = [{ name = \"public.users_email_key\", table = \"public.users\", method = \"btree\", unique = true }]\n",
            RESTORE_FAILS,
        ),
        "next month's partition drops every row written to it" => case(
            EVENTS.to_owned()
                + "CREATE FUNCTION public.events_closed() RETURNS trigger LANGUAGE plpgsql AS $$\nBEGIN\n  RETURN NULL;\nEND\n$$;\n\
                   DO $$ BEGIN\n  EXECUTE pg_catalog.format('CREATE TRIGGER closed BEFORE INSERT ON public.%I FOR EACH ROW EXECUTE FUNCTION public.events_closed()',\n    \
                   'events_' || pg_catalog.to_char(pg_catalog.now() + interval '1 month', 'YYYY_MM'));\nEND $$;\n",
            EVENTS.to_owned(),
            "[[checks.partitions]]\ntable = \"public.events\"\nmonths_back = 1\nmonths_ahead = 2\n",
            "drops",
        ),
        "code of others the application runs that changes the trail" => Case {
            roles: "[[restore.roles]]\nname = \"clerk\"\nlogin = false\n",
            ..case(
                others_powers(
                    "CASCADE",
                    "DELETE FROM public.audit WHERE at < pg_catalog.now() - days * interval '1 day'",
                    "DELETE FROM public.audit WHERE member = 2",
                    "public, pg_catalog",
                    "DELETE FROM public.audit WHERE member = 3",
                ),
                others_powers(
                    "NO ACTION",
                    "INSERT INTO public.audit (what) VALUES ('purge asked')",
                    "INSERT INTO public.audit (what) VALUES ('scratch note')",
                    "public, pg_temp",
                    "INSERT INTO public.audit (what) VALUES ('ledger note')",
                ),
                OTHERS_CHECK,
                "with another role's powers",
            )
        },
        other => panic!("no case {other}"),
    }
}

/// Drills case `name`'s lie (or its honest twin) on `target` (a `[target]` section) in
/// `scratch`; `env` for a server's URL.
fn drill_case(scratch: &Scratch, name: &str, dump: bool, target: &str, env: &[(String, String)]) -> Drill {
    let case = case(name);
    let body = if dump == LIE { &case.lie } else { &case.honest };
    let backup = scratch.write("red-team.sql", pg15_dump(body));
    let scenario = scratch.scenario(
        "red-team.toml",
        &format!(
            "name = \"red-team\"\n[source]\npath = \"{}\"\n{APP_ROLE}{}{target}{}",
            backup.display(),
            case.roles,
            case.checks
        ),
    );
    scratch.drill_env(&scenario, &[], env)
}

/// What a case `says` when its lie is a write to the catalog that PostgreSQL acts on: the restore
/// itself fails, naming it, before any check runs.
const RESTORE_FAILS: &str = "index public.users_email_key: pg_index says indisvalid = true, indisready = false";
/// The same for a function the backup made a member of an extension.
const FORGED_MEMBER: &str = "function public.run_maintenance(pg_catalog.text): pg_depend makes it a member of extension plpgsql, but CREATE EXTENSION plpgsql VERSION '1.0' makes no such member";

/// The drill did not pass, and a check that did not pass says what the backup did (or, for a
/// write to the catalog, the restore phase does).
fn assert_not_fooled(name: &str, drill: &Drill) {
    let says = case(name).says;
    if ![RESTORE_FAILS, FORGED_MEMBER].contains(&says) {
        crate::util::assert_not_fooled(name, says, drill);
        return;
    }
    drill.assert_failed_cleanly();
    assert_eq!(drill.phase(Phase::Restore), PhaseStatus::Failed, "{name}\n{drill:?}");
    let error = drill.phase_error(Phase::Restore);
    assert!(error.contains(says), "{name}: the restore says `{says}`:\n{error}");
    assert_eq!(drill.phase(Phase::Checks), PhaseStatus::Skipped, "{name}\n{drill:?}");
}

/// The honest twin passes, every check of it.
fn assert_honest_passes(name: &str, drill: &Drill) {
    assert_eq!(drill.record().verdict, DrillVerdict::Pass, "{name}: the honest twin failed\n{drill:?}");
    assert_eq!(drill.code, Some(0), "{name}\n{drill:?}");
    let checks = &drill.record().checks;
    assert!(!checks.is_empty() && checks.iter().all(|c| c.verdict == Verdict::Pass), "{name}\n{drill:?}");
}

#[rstest]
#[case::direct_logins("an audit guard that lets direct logins through")]
#[case::truncate_guard_for_superusers("a TRUNCATE guard that refuses superusers only")]
#[case::writer_without_select("a writer without SELECT whose guard refuses superusers only")]
#[case::superuser_connected("a guard that holds only while a superuser is connected")]
#[case::young_server("a guard that holds only in a server's first ten minutes")]
#[case::young_cluster("a guard that holds only while transaction ids are low")]
#[case::transaction_block("a guard that refuses only inside a transaction block")]
#[case::drill_time_zone("a guard that refuses only sessions in the drill's time zone")]
#[case::login_replica("a login event trigger that puts the application in replica mode")]
#[case::login_client_address("a login event trigger that puts only sessions with a client address in replica mode")]
#[case::no_op_update("a guard that refuses only an UPDATE that changes nothing")]
#[case::draft_rows("a guard that lets the application change the rows it writes as drafts")]
#[case::fresh_rows_only("a guard that protects only rows written in the last minute")]
#[case::setting_one_call_deep("a guard whose bypass setting is read one PL/pgSQL call deep")]
#[case::dynamic_sql("a guard that reads its bypass setting through dynamic SQL")]
#[case::trigger_depth("a guard that lets changes through from inside another trigger")]
#[case::some_columns_kept("a guard that keeps who and when, and lets what was done change")]
#[case::after_guard("a guard that fires after the row is written and refuses only sessions without a client address")]
#[case::jwt_claims("a claim any session can set that opens every tenant (a Supabase-style auth.jwt())")]
#[case::claim_against_a_column("a claim a helper returns compared with a table's column (Supabase's authorize())")]
#[case::via_login("a policy open to the role the application logs in as before it switches (PostgREST)")]
#[case::role_setting_bypassrls("a role setting that makes every login of the application a BYPASSRLS role")]
#[case::setting_two_calls_deep("a policy whose bypass setting is read two PL/pgSQL calls deep")]
#[case::superuser_probe_rows("probe rows a trigger marks as a superuser's, hidden from other tenants")]
#[case::pinned_search_path_rows("probe rows a trigger marks by pgdrill's pinned search_path")]
#[case::application_name("a policy that opens every tenant to an application_name")]
#[case::no_set_role("a policy that opens every tenant to sessions that did not SET ROLE")]
#[case::sql_session_user("a sql check whose answer depends on session_user")]
#[case::sql_client_address("a sql check whose answer depends on the client address")]
#[case::sql_setting("a sql check whose answer a setting the role may set changes")]
#[case::sql_no_plan("a sql check whose statement's plan cannot be read (EXPLAIN raises)")]
#[case::user_schema_orders("a schema named after the application role holding an empty orders")]
#[case::user_schema_journal("a schema named after the application role holding an older migration journal")]
#[case::security_definer("a SECURITY DEFINER function of the superuser that runs any SQL")]
#[case::definer_accepted_rewritten(
    "a definer function accepted by design that drops a partition, rewritten to run any SQL"
)]
#[case::view_into_forbidden_schema("a view in public that reads a forbidden schema")]
#[case::definer_pinned_path("a SECURITY DEFINER function whose pinned search_path is a forbidden schema")]
#[case::definer_callers_path("a SECURITY DEFINER function that resolves its names in its caller's search_path")]
#[case::definer_rewritten("a definer function accepted by design, rewritten to hand over one tenant's contract")]
#[case::index_not_ready("a unique index marked not ready")]
#[case::member_in_template0("a definer made a member of plpgsql, in template0 too")]
#[case::partition_drops_rows("next month's partition drops every row written to it")]
fn on_a_container(#[case] name: &str, #[values(LIE, HONEST)] dump: bool) {
    let scratch = Scratch::new();
    let drill = drill_case(&scratch, name, dump, CONTAINER, &[]);
    if dump == LIE { assert_not_fooled(name, &drill) } else { assert_honest_passes(name, &drill) }
}

/// Code of others the application runs, each with powers over the trail: a definer function it
/// may call, a rule on a table it writes, a cascading foreign key from a table it may delete
/// from, a definer trigger that appends to the trail by a bare name its caller's temporary table
/// shadows. Every one of them is named (verified by hand: as `app`, over TCP, `SELECT
/// purge_audit(-1)`, `INSERT INTO scratch`, `DELETE FROM members WHERE id = 1` each erase audit
/// rows that `DELETE FROM audit` may not, and so does `INSERT INTO scratch` after `app` made a
/// temporary `audit` whose trigger deletes `public.audit`: it runs as the definer's owner); their
/// honest twins (a definer and a rule that only append, a foreign key with no action, the
/// trigger's search_path naming pg_temp last) pass.
#[rstest]
fn others_powers_are_named(#[values(LIE, HONEST)] dump: bool) {
    let name = "code of others the application runs that changes the trail";
    let scratch = Scratch::new();
    let drill = drill_case(&scratch, name, dump, CONTAINER, &[]);
    if dump == HONEST {
        return assert_honest_passes(name, &drill);
    }
    assert_not_fooled(name, &drill);
    let said =
        &drill.record().checks.iter().find(|c| c.message.contains("another role's powers")).expect("named").actual;
    for named in [
        "`public.purge_audit(integer)`: deletes from `audit`, the trail",
        "`rule tidy on public.scratch`: deletes from `audit`, the trail",
        "`constraint audit_member_fkey on public.audit`: `app` may change the table it references",
        "`trigger noted on public.scratch`: it runs → public.scratch_noted(): its search_path (`public, pg_catalog`) does not end with pg_temp",
        "`public.note(text)`: deletes from `audit`, the trail",
        "accept = [{ through = \"public.purge_audit(integer)\", code = \"",
    ] {
        assert!(said.contains(named), "names {named}: {said}");
    }
}

/// PostgreSQL 15's binaries in bubblewrap: a lie of each kind, and some honest twins.
#[rstest]
#[case::direct_logins("an audit guard that lets direct logins through", LIE)]
#[case::direct_logins_honest("an audit guard that lets direct logins through", HONEST)]
#[case::truncate_guard_for_superusers("a TRUNCATE guard that refuses superusers only", LIE)]
// A local target offers the socket only: the guard refuses the probe, and the analysis names
// what it read (on a container the probe comes over TCP and changes the trail).
#[case::no_client_address("a guard that refuses only sessions without a client address", LIE)]
#[case::superuser_connected("a guard that holds only while a superuser is connected", LIE)]
#[case::drill_time_zone("a guard that refuses only sessions in the drill's time zone", LIE)]
#[case::role_setting_bypassrls("a role setting that makes every login of the application a BYPASSRLS role", LIE)]
#[case::role_setting_honest("a role setting that makes every login of the application a BYPASSRLS role", HONEST)]
#[case::superuser_probe_rows("probe rows a trigger marks as a superuser's, hidden from other tenants", LIE)]
#[case::superuser_probe_rows_honest("probe rows a trigger marks as a superuser's, hidden from other tenants", HONEST)]
#[case::user_schema_orders("a schema named after the application role holding an empty orders", LIE)]
#[case::index_not_ready("a unique index marked not ready", LIE)]
fn on_local_binaries(#[case] name: &str, #[case] dump: bool) {
    let scratch = Scratch::new();
    let drill = drill_case(&scratch, name, dump, LOCAL, &[]);
    if dump == LIE { assert_not_fooled(name, &drill) } else { assert_honest_passes(name, &drill) }
}

/// On a server whose drill role is neither a superuser nor a member of one, the lies such a role
/// can restore (no new BYPASSRLS role, event trigger or catalog write), and some honest twins.
/// Every case is drilled; the test fails at the end naming each that went wrong.
#[test]
fn on_a_server_without_superuser_powers() {
    let server = PgServer::start();
    server.psql("CREATE ROLE drill_admin LOGIN CREATEDB CREATEROLE PASSWORD 'drill-admin-pw'").unwrap();
    let url = server.url("require").replacen(&format!("postgres:{}", server.password), "drill_admin:drill-admin-pw", 1);
    let env = [("DRILL_ADMIN_URL".to_owned(), url)];
    let target = "[target]\nkind = \"server\"\nurl_env = \"DRILL_ADMIN_URL\"\ndatabase = \"red_team\"\n";
    let cases = [
        ("an audit guard that lets direct logins through", LIE),
        ("a guard that refuses only an UPDATE that changes nothing", LIE),
        ("a guard whose bypass setting is read one PL/pgSQL call deep", LIE),
        ("a policy whose bypass setting is read two PL/pgSQL calls deep", LIE),
        ("a policy whose bypass setting is read two PL/pgSQL calls deep", HONEST),
        ("a policy that opens every tenant to an application_name", LIE),
        ("a sql check whose answer depends on session_user", LIE),
        ("a schema named after the application role holding an empty orders", LIE),
        ("a schema named after the application role holding an empty orders", HONEST),
        ("a schema named after the application role holding an older migration journal", LIE),
        ("a view in public that reads a forbidden schema", LIE),
        ("a view in public that reads a forbidden schema", HONEST),
        ("next month's partition drops every row written to it", LIE),
    ];
    let mut wrong = Vec::new();
    for (name, dump) in cases {
        let scratch = Scratch::new();
        let drill = drill_case(&scratch, name, dump, target, &env);
        let judged = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            if dump == LIE { assert_not_fooled(name, &drill) } else { assert_honest_passes(name, &drill) }
        }));
        if judged.is_err() {
            wrong.push(format!("{name} ({})", if dump == LIE { "the lie" } else { "the honest twin" }));
        }
    }
    assert!(wrong.is_empty(), "on a server, went wrong (each printed above): {wrong:#?}");
}

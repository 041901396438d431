//! The probes are the application's own sessions, proven from inside: the backup's own code
//! (a guard trigger's refusal message, a policy, a `sql` check's answer) reads who the session
//! is, and sees the application's login: `session_user` and `current_user` the role itself, the
//! `application_name` the scenario gives (`[login]`), a TCP login from 127.0.0.1 (the sandbox's
//! relay, as an application comes over TCP), the role's own `search_path` and settings. A policy that
//! raises when a superuser's session (or one after `SET ROLE`) evaluates it, and a guard that
//! raises differently for one, never fire. Nothing in any evidence switches roles.

use crate::util::{Scratch, pg15_dump};

const DUMP: &str = "\
CREATE FUNCTION public.who() RETURNS text LANGUAGE sql STABLE AS $$ \
  SELECT session_user || '/' || current_user || '/' || pg_catalog.current_setting('application_name') || '/' || \
         COALESCE(pg_catalog.host(pg_catalog.inet_client_addr()), 'socket') || '/' || pg_catalog.current_setting('statement_timeout') $$;\n\
CREATE FUNCTION public.not_a_superuser() RETURNS boolean LANGUAGE plpgsql STABLE AS $$ BEGIN\n\
  IF (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = session_user) OR session_user <> current_user THEN\n\
    RAISE EXCEPTION 'probed as % after SET ROLE %', session_user, current_user USING ERRCODE = 'XX000';\n\
  END IF;\n  RETURN true;\nEND $$;\n\
CREATE TABLE public.audit (id bigserial PRIMARY KEY, actor text NOT NULL, what text NOT NULL);\n\
INSERT INTO public.audit (actor, what) VALUES ('alice', 'signed in');\n\
CREATE FUNCTION public.guard() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN\n\
  RAISE EXCEPTION 'audit rows are immutable (seen by %)', public.who();\nEND $$;\n\
CREATE TRIGGER guard BEFORE UPDATE OR DELETE ON public.audit FOR EACH ROW EXECUTE FUNCTION public.guard();\n\
GRANT SELECT, INSERT, UPDATE, DELETE ON public.audit TO app;\nGRANT USAGE ON SEQUENCE public.audit_id_seq TO app;\n\
CREATE TABLE public.notes (id integer, tenant integer NOT NULL, body text NOT NULL);\n\
INSERT INTO public.notes VALUES (1, 1, 'one'), (2, 2, 'two');\n\
ALTER TABLE public.notes ENABLE ROW LEVEL SECURITY;\nALTER TABLE public.notes FORCE ROW LEVEL SECURITY;\n\
CREATE POLICY tenant ON public.notes USING (public.not_a_superuser() AND tenant = NULLIF(pg_catalog.current_setting('app.tenant', true), '')::integer);\n\
GRANT SELECT ON public.notes TO app;\n\
ALTER ROLE app SET statement_timeout = '42s';\n";

const CHECKS: &str = r#"
[login]
application_name = "shop-api"

[[checks.append_only]]
table = "public.audit"
role = "app"
insert = "INSERT INTO public.audit (actor, what) VALUES ('drill', 'probe')"
trusted = [{ fact = "inet_client_addr", reason = "the guard names the client in its refusal, and refuses every client" }]

[[checks.rls]]
tables = ["public.notes"]
fail_closed = { role = "app", setting = "app.tenant", column = "tenant" }

[[checks.sql]]
name = "who the application is"
query = "SELECT public.who(), pg_catalog.current_setting('search_path')"
expect_rows = [["app/app/shop-api/127.0.0.1/42s", "\"$user\", public"]]
role = "app"
trusted = [
  { fact = "inet_client_addr", reason = "who() reports the client, it decides nothing" },
  { setting = "application_name", reason = "who() reports the name, it decides nothing" },
  { setting = "statement_timeout", reason = "who() reports the timeout, it decides nothing" },
]
"#;

#[test]
fn the_backups_own_code_sees_the_applications_login_in_every_probe() {
    let scratch = Scratch::new();
    let backup = scratch.write("sessions.sql", pg15_dump(DUMP));
    let scenario = scratch.scenario(
        "sessions.toml",
        &format!(
            "name = \"sessions\"\n[source]\npath = \"{}\"\n[[restore.roles]]\nname = \"app\"\n{CHECKS}",
            backup.display()
        ),
    );
    let drill = scratch.drill(&scenario);
    assert_eq!(drill.code, Some(0), "{drill:?}");
    let checks = &drill.record().checks;
    let result = |id: &str| checks.iter().find(|c| c.id == id).unwrap_or_else(|| panic!("no {id}\n{drill:?}"));
    // The guard's refusal names whom it saw: the application's login, its name, its client
    // address (TCP, as the application's), the role's own setting.
    for operation in ["UPDATE", "DELETE"] {
        let probe = result(&format!("append_only/public.audit {operation} as app"));
        assert_eq!(probe.code, "append-only.refused", "{probe:?}");
        assert!(probe.actual.contains("(seen by app/app/shop-api/127.0.0.1/42s)"), "{probe:?}");
    }
    // The policy raises for a superuser's session or one after SET ROLE: it never did.
    // Reading the client's address is a fact no try shows: trusted here, with its reason shown.
    let guards = result("append_only/public.audit what its guards read as app");
    assert_eq!(guards.code, "append-only.guards-hold", "{guards:?}");
    assert!(guards.message.contains("trusted: inet_client_addr (trusted: the guard names the client"), "{guards:?}");
    let closed = result("rls/public.notes fail-closed for app");
    assert_eq!(closed.code, "rls.fail-closed", "{closed:?}");
    let who = result("sql/who the application is");
    assert_eq!(who.code, "sql.as-expected", "{who:?}");
    // The evidence names the session exactly, and nothing switches roles.
    for check in checks.iter().filter(|c| c.kind.as_str() != "rls" || c.id.contains("fail-closed")) {
        let evidence = check.evidence.to_uppercase();
        assert!(!evidence.contains("SET ROLE") && !evidence.contains("SET LOCAL ROLE"), "{check:?}");
        assert!(!evidence.contains("SESSION AUTHORIZATION"), "{check:?}");
    }
    assert!(
        who.evidence.starts_with("-- a real login of `app` (a password made for the drill) over TCP from 127.0.0.1 inside the sandbox (its relay, as the application comes): session_user `app`; client address 127.0.0.1"),
        "{}",
        who.evidence
    );
    assert!(who.evidence.contains("application_name 'shop-api'"), "{}", who.evidence);
    // The reports say where that TCP comes from: the sandbox's own loopback, through the relay.
    let isolation = drill.record().target.as_ref().and_then(|t| t.isolation.clone()).expect("a sandbox");
    assert!(isolation.network.contains("127.0.0.1, which only the relay of the application's logins"), "{isolation:?}");
    assert!(
        isolation
            .programs
            .ends_with("the relay pgdrill starts, `/usr/lib/pgdrill/socat` (SQL has no shell to start it with)"),
        "{isolation:?}"
    );
    assert!(who.evidence.contains("statement_timeout = '42s' (user)"), "{}", who.evidence);
    drill.assert_reports_and_no_leftovers();
}

/// Shapes real schemas have, which read about the session without deciding a refusal: a
/// generic audit trigger after every write (who, from where, which transaction, when) on an
/// empty tenant table and on an append-only trail, a guard whose refusal message says "now" or
/// names the retention function (`use trail_purge()`: a message calls nothing), a trail whose
/// writer is BYPASSRLS under a read policy keyed on a claim (no policy runs for it), a definer
/// that makes next month's partition with SQL built from nothing its caller gives. An honest
/// backup of them passes, and the evidence says what the audit trigger wrote meanwhile.
const AUDITED: &str = "\
CREATE TABLE public.audit_log (at timestamptz NOT NULL, who text NOT NULL, client inet, xid bigint, what text NOT NULL);\n\
CREATE FUNCTION public.audit_write() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$ BEGIN\n\
  INSERT INTO public.audit_log VALUES (pg_catalog.clock_timestamp(), session_user, pg_catalog.inet_client_addr(), pg_catalog.txid_current(), TG_TABLE_NAME || ' ' || TG_OP);\n\
  RETURN NULL;\nEND $$;\n\
CREATE TABLE public.notes (id serial PRIMARY KEY, tenant integer NOT NULL, body text NOT NULL);\n\
ALTER TABLE public.notes ENABLE ROW LEVEL SECURITY;\nALTER TABLE public.notes FORCE ROW LEVEL SECURITY;\n\
CREATE POLICY tenant ON public.notes USING (tenant = NULLIF(pg_catalog.current_setting('app.tenant', true), '')::integer);\n\
GRANT SELECT, INSERT ON public.notes TO app;\nGRANT USAGE ON SEQUENCE public.notes_id_seq TO app;\n\
CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON public.notes FOR EACH ROW EXECUTE FUNCTION public.audit_write();\n\
CREATE TABLE public.events (id bigserial PRIMARY KEY, what text NOT NULL);\n\
INSERT INTO public.events (what) VALUES ('signed in');\n\
CREATE FUNCTION public.events_final() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN\n\
  RAISE EXCEPTION 'events are final: they cannot be changed now or ever';\nEND $$;\n\
CREATE TRIGGER final BEFORE UPDATE OR DELETE ON public.events FOR EACH ROW EXECUTE FUNCTION public.events_final();\n\
CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON public.events FOR EACH ROW EXECUTE FUNCTION public.audit_write();\n\
GRANT SELECT, INSERT, UPDATE, DELETE ON public.events TO app;\nGRANT USAGE ON SEQUENCE public.events_id_seq TO app;\n\
CREATE ROLE archiver LOGIN BYPASSRLS;\n\
CREATE TABLE public.trail (id bigserial PRIMARY KEY, who integer, what text NOT NULL);\n\
INSERT INTO public.trail (who, what) VALUES (1, 'seed');\n\
ALTER TABLE public.trail ENABLE ROW LEVEL SECURITY;\n\
CREATE POLICY readers ON public.trail FOR SELECT USING (who = (NULLIF(pg_catalog.current_setting('app.claims', true), '')::jsonb ->> 'who')::integer);\n\
CREATE FUNCTION public.trail_purge() RETURNS integer LANGUAGE sql AS $$ WITH d AS (DELETE FROM public.trail WHERE id < 0 AND pg_catalog.now() > pg_catalog.now() RETURNING 1) SELECT pg_catalog.count(*)::integer FROM d $$;\n\
CREATE FUNCTION public.trail_final() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN\n\
  RAISE EXCEPTION 'the trail is append-only: use trail_purge() for retention' USING ERRCODE = '42501';\nEND $$;\n\
CREATE TRIGGER final BEFORE UPDATE OR DELETE ON public.trail FOR EACH ROW EXECUTE FUNCTION public.trail_final();\n\
GRANT SELECT, INSERT, UPDATE, DELETE ON public.trail TO archiver;\nGRANT USAGE ON SEQUENCE public.trail_id_seq TO archiver;\n\
CREATE FUNCTION public.create_next_partition() RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$\n\
DECLARE part text := 'log_' || pg_catalog.to_char(pg_catalog.now() + interval '1 month', 'YYYY_MM');\n\
BEGIN EXECUTE pg_catalog.format('CREATE TABLE IF NOT EXISTS %I (LIKE public.audit_log)', part); END $$;\n";

const AUDITED_CHECKS: &str = r#"
[[checks.rls]]
tables = ["public.notes"]
fail_closed = { role = "app", setting = "app.tenant", column = "tenant" }

[[checks.append_only]]
table = "public.events"
role = "app"
insert = "INSERT INTO public.events (what) VALUES ('exported')"

[[checks.append_only]]
table = "public.trail"
role = "archiver"
insert = "INSERT INTO public.trail (who, what) VALUES (2, 'exported')"

[[checks.roles]]
role = "app"
tables = { "public.notes" = "SELECT, INSERT", "public.events" = "SELECT, INSERT" }
"#;

#[test]
fn audit_triggers_messages_and_fixed_definers_of_real_schemas_pass() {
    let scratch = Scratch::new();
    let backup = scratch.write("audited.sql", pg15_dump(AUDITED));
    let scenario = scratch.scenario(
        "audited.toml",
        &format!(
            "name = \"audited\"\n[source]\npath = \"{}\"\n[[restore.roles]]\nname = \"app\"\n{AUDITED_CHECKS}",
            backup.display()
        ),
    );
    let drill = scratch.drill(&scenario);
    assert_eq!(drill.code, Some(0), "{drill:?}");
    let notes = drill.record().checks.iter().find(|c| c.id == "rls/public.notes fail-closed for app").expect("notes");
    assert!(notes.evidence.contains("-- the probe rows, inserted by `app`'s own session"), "{}", notes.evidence);
    assert!(
        notes.evidence.contains("meanwhile the backup's code wrote public.audit_log: 2 rows inserted: no code that decides this check reads it"),
        "{}",
        notes.evidence
    );
    drill.assert_reports_and_no_leftovers();
}

//! Loopholes a session opens itself: a trigger or a policy that reads a custom setting the
//! application role can set in its own session is a door it holds the key to. `append_only`
//! (and fail-closed `rls`) try each such setting, set to the values the trigger or policy
//! compares it with, and fail naming both; a setting the scenario trusts, with its reason, is
//! not tried and the reason is in the report. A guard that reads no setting passes as such. A
//! door whose try fails for a reason that is not a refusal (a timeout) leaves the check
//! unproven, never passed. A flag beside a tenant read that errs when unset is tried with a
//! tenant set.

use pgdrill::Verdict;

use crate::util::{Scratch, pg15_dump};

const DUMP: &str = "\
CREATE FUNCTION public.guard() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN\n\
  IF pg_catalog.current_setting('audit.allow_edit', true) = 'yes' THEN RETURN COALESCE(NEW, OLD); END IF;\n\
  RAISE EXCEPTION 'audit rows are immutable';\nEND $$;\n\
CREATE FUNCTION public.maintenance_guard() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN\n\
  IF pg_catalog.current_setting('audit.maintenance', true) = 'on' THEN RETURN COALESCE(NEW, OLD); END IF;\n\
  RAISE EXCEPTION 'audit rows are immutable';\nEND $$;\n\
CREATE FUNCTION public.stall() RETURNS boolean LANGUAGE plpgsql AS $$ BEGIN\n\
  RAISE EXCEPTION 'canceling statement due to statement timeout' USING ERRCODE = 'query_canceled';\nEND $$;\n\
CREATE FUNCTION public.stalling_guard() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN\n\
  IF COALESCE(pg_catalog.current_setting('audit.allow_edit', true), '') = 'yes' AND public.stall() THEN RETURN COALESCE(NEW, OLD); END IF;\n\
  RAISE EXCEPTION 'audit rows are immutable';\nEND $$;\n\
CREATE FUNCTION public.plain_guard() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN\n\
  RAISE EXCEPTION 'audit rows are immutable';\nEND $$;\n\
CREATE TABLE public.flagged (id serial PRIMARY KEY, what text);\n\
CREATE TABLE public.trusted (id serial PRIMARY KEY, what text);\n\
CREATE TABLE public.plain (id serial PRIMARY KEY, what text);\n\
CREATE TABLE public.stalled (id serial PRIMARY KEY, what text);\n\
CREATE TRIGGER guard BEFORE UPDATE OR DELETE ON public.stalled FOR EACH ROW EXECUTE FUNCTION public.stalling_guard();\n\
GRANT SELECT, INSERT, UPDATE, DELETE ON public.stalled TO app;\nGRANT USAGE ON SEQUENCE public.stalled_id_seq TO app;\n\
CREATE TRIGGER guard BEFORE UPDATE OR DELETE ON public.flagged FOR EACH ROW EXECUTE FUNCTION public.guard();\n\
CREATE TRIGGER guard BEFORE UPDATE OR DELETE ON public.trusted FOR EACH ROW EXECUTE FUNCTION public.maintenance_guard();\n\
CREATE TRIGGER guard BEFORE UPDATE OR DELETE ON public.plain FOR EACH ROW EXECUTE FUNCTION public.plain_guard();\n\
GRANT SELECT, INSERT, UPDATE, DELETE ON public.flagged, public.trusted, public.plain TO app;\n\
GRANT USAGE ON SEQUENCE public.flagged_id_seq, public.trusted_id_seq, public.plain_id_seq TO app;\n\
CREATE TABLE public.notes_flag (id integer, tenant text NOT NULL, body text NOT NULL);\n\
CREATE TABLE public.notes_star (id integer, tenant text NOT NULL, body text NOT NULL);\n\
CREATE TABLE public.notes_good (id integer, tenant text NOT NULL, body text NOT NULL);\n\
CREATE TABLE public.notes_trusted (id integer, tenant text NOT NULL, body text NOT NULL);\n\
CREATE TABLE public.notes_stall (id integer, tenant text NOT NULL, body text NOT NULL);\n\
CREATE POLICY tenant ON public.notes_stall USING (tenant = pg_catalog.current_setting('app.tenant', true) \
  OR (COALESCE(pg_catalog.current_setting('app.bypass', true), '') = 'on' AND public.stall()));\n\
ALTER TABLE public.notes_stall ENABLE ROW LEVEL SECURITY;\nGRANT SELECT ON public.notes_stall TO app;\n\
CREATE TABLE public.notes_strict (id integer, tenant uuid NOT NULL, body text NOT NULL);\n\
CREATE POLICY tenant ON public.notes_flag USING (tenant = pg_catalog.current_setting('app.tenant', true) \
  OR pg_catalog.current_setting('app.bypass', true) = 'enabled');\n\
CREATE POLICY tenant ON public.notes_star USING (tenant = pg_catalog.current_setting('app.tenant', true) \
  OR pg_catalog.current_setting('app.tenant', true) = '*');\n\
CREATE POLICY tenant ON public.notes_good USING (tenant = pg_catalog.current_setting('app.tenant', true));\n\
CREATE POLICY tenant ON public.notes_trusted USING (tenant = pg_catalog.current_setting('app.tenant', true) \
  OR pg_catalog.current_setting('app.maintenance', true) = 'on');\n\
CREATE POLICY tenant ON public.notes_strict USING (tenant = pg_catalog.current_setting('app.tenant')::uuid \
  OR pg_catalog.current_setting('app.override', true) = 'on');\n\
ALTER TABLE public.notes_strict ENABLE ROW LEVEL SECURITY;\n\
ALTER TABLE public.notes_flag ENABLE ROW LEVEL SECURITY;\nALTER TABLE public.notes_star ENABLE ROW LEVEL SECURITY;\n\
ALTER TABLE public.notes_good ENABLE ROW LEVEL SECURITY;\nALTER TABLE public.notes_trusted ENABLE ROW LEVEL SECURITY;\n\
GRANT SELECT ON public.notes_flag, public.notes_star, public.notes_good, public.notes_trusted, public.notes_strict TO app;\n\
CREATE TABLE public.leveled (id serial PRIMARY KEY, what text);\n\
CREATE FUNCTION public.level_guard() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN\n\
  IF pg_catalog.current_setting('audit.level', true)::integer > 3 THEN RETURN COALESCE(NEW, OLD); END IF;\n\
  RAISE EXCEPTION 'audit rows are immutable';\nEND $$;\n\
CREATE TRIGGER guard BEFORE UPDATE OR DELETE ON public.leveled FOR EACH ROW EXECUTE FUNCTION public.level_guard();\n\
GRANT SELECT, INSERT, UPDATE, DELETE ON public.leveled TO app;\nGRANT USAGE ON SEQUENCE public.leveled_id_seq TO app;\n\
CREATE FUNCTION public.same(text, text) RETURNS boolean LANGUAGE sql AS $$ SELECT pg_catalog.inet_client_addr() IS NULL $$;\n\
CREATE OPERATOR public.=== (LEFTARG = text, RIGHTARG = text, FUNCTION = public.same);\n\
CREATE OPERATOR public.!!! (RIGHTARG = bigint, FUNCTION = pg_catalog.txid_status);\n\
CREATE TABLE public.operated (id serial PRIMARY KEY, what text);\n\
CREATE FUNCTION public.operated_guard() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN\n\
  IF OLD.what OPERATOR(public.===) 'x' OR (OPERATOR(public.!!!) 1::bigint) = 'in progress' THEN RETURN COALESCE(NEW, OLD); END IF;\n\
  RAISE EXCEPTION 'audit rows are immutable';\nEND $$;\n\
CREATE TRIGGER guard BEFORE UPDATE OR DELETE ON public.operated FOR EACH ROW EXECUTE FUNCTION public.operated_guard();\n\
GRANT SELECT, INSERT, UPDATE, DELETE ON public.operated TO app;\nGRANT USAGE ON SEQUENCE public.operated_id_seq TO app;\n\
CREATE TABLE public.vetted (id serial PRIMARY KEY, what text);\n\
CREATE FUNCTION public.vetted_guard() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN\n\
  IF pg_catalog.has_table_privilege('public.vetted', 'TRUNCATE') AND pg_catalog.lower(OLD.what) = pg_catalog.format('%s', OLD.id) \
     AND pg_catalog.to_jsonb(OLD) IS NULL THEN RETURN COALESCE(NEW, OLD); END IF;\n\
  RAISE EXCEPTION 'audit rows are immutable';\nEND $$;\n\
CREATE TRIGGER guard BEFORE UPDATE OR DELETE ON public.vetted FOR EACH ROW EXECUTE FUNCTION public.vetted_guard();\n\
CREATE TABLE public.swept (id serial PRIMARY KEY, what text);\n\
GRANT SELECT, INSERT, UPDATE, DELETE ON public.vetted, public.swept TO app;\n\
GRANT USAGE ON SEQUENCE public.vetted_id_seq, public.swept_id_seq TO app;\n\
CREATE TABLE public.sweep (name text, volatility text);\n\
INSERT INTO public.sweep SELECT pg_catalog.lower(proname), pg_catalog.string_agg(DISTINCT provolatile::text, '') FROM pg_catalog.pg_proc \
  WHERE pronamespace = 'pg_catalog'::regnamespace GROUP BY 1 HAVING pg_catalog.bool_or(provolatile <> 'i');\n\
DO $do$ DECLARE body text; BEGIN\n\
  SELECT pg_catalog.string_agg(pg_catalog.format('PERFORM pg_catalog.%I();', name), E'\\n' ORDER BY name) INTO body FROM public.sweep;\n\
  EXECUTE pg_catalog.format('CREATE FUNCTION public.swept_guard() RETURNS trigger LANGUAGE plpgsql AS %L', \
    'BEGIN IF false THEN ' || body || ' END IF; RAISE EXCEPTION ''audit rows are immutable''; END');\n\
END $do$;\n\
CREATE TRIGGER guard BEFORE UPDATE OR DELETE ON public.swept FOR EACH ROW EXECUTE FUNCTION public.swept_guard();\n";

/// The sweep: a guard that calls every built-in of the image with a form that is not immutable, read back
/// by a `sql` check whose expectation fails on purpose (its `actual` is the list).
const SWEEP: &str = "[[checks.sql]]\nname = \"the sweep's names\"\n\
query = \"SELECT pg_catalog.string_agg(name || ':' || volatility, ' ' ORDER BY name) FROM public.sweep\"\nexpect = \"-\"\n";

const RLS: &str = "[[checks.rls]]\n\
tables = [\"public.notes_flag\", \"public.notes_star\", \"public.notes_good\", \"public.notes_trusted\", \"public.notes_stall\", \"public.notes_strict\"]\n\
fail_closed = { role = \"app\", setting = \"app.tenant\", column = \"tenant\", \
trusted = [{ setting = \"app.maintenance\", reason = \"set only by the back office's login\" }] }\n";

fn append_only(table: &str, extra: &str) -> String {
    format!(
        "[[checks.append_only]]\ntable = \"public.{table}\"\nrole = \"app\"\n\
         insert = \"INSERT INTO public.{table} (what) VALUES ('probe')\"\n{extra}"
    )
}

#[test]
fn a_guard_or_a_policy_that_a_session_setting_opens_fails_and_a_trusted_one_passes_with_its_reason() {
    let scratch = Scratch::new();
    let backup = scratch.write("loopholes.sql", pg15_dump(DUMP));
    let trusted = "trusted = [{ setting = \"audit.maintenance\", reason = \"set only by the archiver's login\", finding = \"append-only.session-setting-opens\" }]\n";
    let scenario = scratch.scenario(
        "loopholes.toml",
        &format!(
            "name = \"loopholes\"\n[source]\npath = \"{}\"\n[[restore.roles]]\nname = \"app\"\n{}{}{}{}{}{}{}{}{RLS}{SWEEP}",
            backup.display(),
            append_only("flagged", ""),
            append_only("trusted", trusted),
            append_only("plain", ""),
            append_only("stalled", ""),
            append_only("leveled", ""),
            append_only("operated", ""),
            append_only("vetted", ""),
            append_only("swept", "")
        ),
    );
    let drill = scratch.drill_env(&scenario, &[], &[]);
    let checks = &drill.record().checks;
    let lever = |table: &str| checks.iter().find(|c| c.id.contains(&format!("public.{table} what its guards read")));

    let flagged = lever("flagged").unwrap_or_else(|| panic!("a probe of the flag\n{drill:?}"));
    assert_eq!(flagged.code, "append-only.session-setting-opens", "{flagged:?}");
    let message = &flagged.message;
    assert!(message.contains("`app` can UPDATE `public.flagged`"), "{message}");
    assert!(message.contains("sets `audit.allow_edit` = 'yes' itself"), "{message}");
    assert!(message.contains("trigger `guard` → public.guard()"), "{message}");
    // Without the flag, the guard holds: the plain probes pass.
    for op in ["UPDATE", "DELETE"] {
        let probe = checks.iter().find(|c| c.id.contains(&format!("public.flagged {op} as app"))).unwrap();
        assert_eq!(probe.code, "append-only.refused", "{probe:?}");
    }

    let trusted = lever("trusted").unwrap_or_else(|| panic!("the trusted flag is reported\n{drill:?}"));
    assert_eq!(trusted.code, "append-only.guards-hold", "{trusted:?}");
    // Trusted for the finding it names, which the evidence says.
    let answered =
        "audit.maintenance (trusted for append-only.session-setting-opens: set only by the archiver's login)";
    assert!(trusted.message.contains(answered), "{trusted:?}");
    assert!(drill.report("report.md").contains("set only by the archiver's login"));

    let plain = lever("plain").unwrap_or_else(|| panic!("the plain guard is read too\n{drill:?}"));
    assert_eq!(plain.code, "append-only.guards-hold", "{plain:?}");
    assert!(plain.message.contains("read nothing about the session a role could set"), "{plain:?}");
    assert!(checks.iter().filter(|c| c.id.contains("public.plain")).all(|c| c.verdict == Verdict::Pass));

    swept_and_vetted(checks, &drill);

    // Fail-closed reads: a flag, a tenant value that opens every tenant; on empty tables.
    let read = |table: &str| {
        checks
            .iter()
            .find(|c| c.id == format!("rls/public.{table} fail-closed for app"))
            .unwrap_or_else(|| panic!("no fail-closed result for {table}\n{drill:?}"))
    };
    let flag = read("notes_flag");
    assert_eq!(flag.code, "rls.session-setting-opens", "{flag:?}");
    assert!(flag.message.contains("sets `app.bypass` = 'enabled' itself, which policy `tenant` reads"), "{flag:?}");
    let star = read("notes_star");
    assert_eq!(star.code, "rls.session-setting-opens", "{star:?}");
    assert!(star.message.contains("reads 2 rows of the two tenants"), "{star:?}");
    assert!(star.message.contains("sets `app.tenant` = '*' itself"), "{star:?}");
    let good = read("notes_good");
    assert_eq!(good.code, "rls.fail-closed", "{good:?}");
    assert!(good.message.contains("nor with app.tenant"), "the special tenant values were tried: {good:?}");
    // The tenant read as a uuid: with no tenant set (unset, or '' once the session has set it)
    // the policy errs before the flag is reached, but any tenant's session opens the others'
    // rows with it.
    let strict = read("notes_strict");
    assert_eq!(strict.code, "rls.session-setting-opens", "{strict:?}");
    assert!(strict.message.contains("set to tenant B reads tenant A's rows"), "{strict:?}");
    assert!(strict.message.contains("sets `app.override` = 'on' itself, which policy `tenant` reads"), "{strict:?}");
    let trusted = read("notes_trusted");
    assert_eq!(trusted.code, "rls.fail-closed", "{trusted:?}");
    assert!(trusted.message.contains("set only by the back office's login"), "{trusted:?}");

    // A door whose try fails with what looks like a timeout is not a shut door: it may open for
    // the application, so neither check can pass.
    let stalled = lever("stalled").unwrap_or_else(|| panic!("a probe of the stalling flag\n{drill:?}"));
    assert_eq!(stalled.code, "append-only.unproven", "{stalled:?}");
    assert!(
        stalled.message.contains("with `audit.allow_edit` = 'yes' set failed for a reason that is not a refusal"),
        "{stalled:?}"
    );
    assert!(stalled.message.contains("57014"), "{stalled:?}");
    let stall = read("notes_stall");
    assert_eq!(stall.code, "rls.cannot-prove", "{stall:?}");
    assert!(
        stall.message.contains("with `app.bypass` = 'on' set failed for a reason that is not a refusal"),
        "{stall:?}"
    );
    assert!(stall.message.contains("57014"), "{stall:?}");
}

/// A key compared by order is not proven shut by the values tried. Every built-in of the image
/// with a form that is not immutable and that pgdrill's
/// allow-list does not hold, called in a guard (in a branch never taken), is named in the guard's
/// failure; a guard of allowed built-ins only (a privilege, `lower`, `format`, `to_jsonb`) passes.
fn swept_and_vetted(checks: &[pgdrill::CheckResult], drill: &impl std::fmt::Debug) {
    let lever = |table: &str| {
        checks
            .iter()
            .find(|c| c.id.contains(&format!("public.{table} what its guards read")))
            .unwrap_or_else(|| panic!("the guards of {table} are read\n{drill:?}"))
    };
    // A key compared by order: `audit.level` = '5' opens it, and no literal or truthy value
    // the drill tries does (verified by hand: `SET audit.level = '5'` then DELETE, as `app`).
    let leveled = lever("leveled");
    assert_eq!(leveled.code, "append-only.only-like-the-drill", "{leveled:?}");
    assert!(leveled.message.contains("the setting `audit.level` and uses it otherwise than compared with literals (`pg_catalog.current_setting('audit.level', true)::integer > 3"), "{}", leveled.message);
    assert!(leveled.message.contains("{ fact = \"audit.level\""), "{}", leveled.message);
    // An operator of the backup a PL/pgSQL guard uses records no dependency: its function is
    // read all the same (no client address: the drill's probe comes over TCP, as the
    // application does, and a session on the socket would be let through).
    let operated = lever("operated");
    assert_eq!(operated.code, "append-only.only-like-the-drill", "{operated:?}");
    assert!(
        operated.message.contains("public.same(text,text) reads where the session comes from (`inet_client_addr`)"),
        "{}",
        operated.message
    );
    // A built-in that reads a fact, run as an operator: no text names it.
    assert!(operated.message.contains("`txid_status`"), "{}", operated.message);
    let vetted = lever("vetted");
    assert_eq!(vetted.code, "append-only.guards-hold", "{vetted:?}");
    let swept = lever("swept");
    assert_eq!(swept.code, "append-only.only-like-the-drill", "{swept:?}");
    assert!(swept.message.contains("proven only for sessions like the drill's"), "{}", swept.message);
    let names = checks.iter().find(|c| c.id.contains("the sweep's names")).expect("the sweep's list");
    let listed: Vec<&str> = names.actual.trim_matches(['\'', '"']).split_whitespace().collect();
    assert!(listed.len() > 300, "the image's built-ins with a form that is not immutable: {}", listed.len());
    let mut unnamed = Vec::new();
    let mut vetted_names = Vec::new();
    for entry in listed {
        let (name, volatilities) = entry.split_once(':').expect("name:volatilities");
        if pgdrill::internals::allowed_builtin(name, volatilities) {
            vetted_names.push(name);
        } else if !swept.message.contains(&format!("`{name}`")) {
            unnamed.push(name);
        }
    }
    assert!(unnamed.is_empty(), "built-ins a guard uses that its failure does not name: {unnamed:?}");
    for allowed in ["current_setting", "has_table_privilege", "to_jsonb", "format"] {
        assert!(vetted_names.contains(&allowed), "{allowed} is allowed: {vetted_names:?}");
    }
    for unproven in
        ["current_database", "pg_is_in_recovery", "random", "nextval", "version", "pg_try_advisory_lock", "age"]
    {
        assert!(swept.message.contains(&format!("`{unproven}`")), "{unproven}: {}", swept.message);
    }
}

/// The classic audit trigger (2ndQuadrant's `audit.if_modified_func()`): the trail lives in a
/// schema the writer has no USAGE on, and a SECURITY DEFINER trigger of the audited table writes
/// it. The writer's INSERT into the audited table reaches the trail; every change of the trail
/// is refused by privilege. The probe reads the catalogs and statistics by the table's oid, not
/// by a name the role's session cannot resolve (which failed the check: `permission denied for
/// schema audit`).
const DEFINER_TRAIL: &str = "\
CREATE SCHEMA audit;\n\
CREATE TABLE audit.trail (id bigserial PRIMARY KEY, what text NOT NULL);\n\
CREATE FUNCTION audit.record() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$ BEGIN\n\
  INSERT INTO audit.trail (what) VALUES (TG_OP); RETURN NULL;\nEND $$;\n\
CREATE TABLE public.orders (id serial PRIMARY KEY, total integer NOT NULL);\n\
CREATE TRIGGER record AFTER INSERT OR UPDATE OR DELETE ON public.orders FOR EACH ROW EXECUTE FUNCTION audit.record();\n\
GRANT SELECT, INSERT, UPDATE, DELETE ON public.orders TO app;\nGRANT USAGE ON SEQUENCE public.orders_id_seq TO app;\n\
INSERT INTO public.orders (total) VALUES (1);\n";

#[test]
fn a_trail_a_definer_trigger_writes_where_the_writer_has_no_usage_is_refused_by_privilege() {
    let scratch = Scratch::new();
    let backup = scratch.write("definer_trail.sql", pg15_dump(DEFINER_TRAIL));
    let scenario = scratch.scenario(
        "definer_trail.toml",
        &format!(
            "name = \"definer_trail\"\n[source]\npath = \"{}\"\n[[restore.roles]]\nname = \"app\"\n\
             [[checks.append_only]]\ntable = \"audit.trail\"\nrole = \"app\"\n\
             insert = \"INSERT INTO public.orders (total) VALUES (2)\"\n",
            backup.display()
        ),
    );
    let drill = scratch.drill_env(&scenario, &[], &[]);
    let checks = &drill.record().checks;
    let probes: Vec<_> = checks
        .iter()
        .filter(|c| c.id.starts_with("append_only/audit.trail") && !c.id.contains("others' powers"))
        .collect();
    assert_eq!(probes.len(), 4, "INSERT, UPDATE, DELETE, TRUNCATE\n{drill:?}");
    // The definer trigger runs with its owner's powers over the trail, and only appends to it.
    let others = checks.iter().find(|c| c.id.contains("through others' powers")).expect("read");
    assert_eq!(others.code, "append-only.no-others-powers", "{others:?}");
    assert!(others.message.contains("`trigger record on public.orders`"), "{others:?}");
    for probe in &probes {
        assert_eq!(probe.verdict, Verdict::Pass, "{probe:?}");
    }
    for op in ["UPDATE", "DELETE", "TRUNCATE"] {
        let probe = probes.iter().find(|c| c.id.contains(&format!(" {op} as app"))).unwrap();
        assert!(probe.actual.contains("refused by privilege"), "{probe:?}");
    }
}

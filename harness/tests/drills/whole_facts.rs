//! Each fact a check reports is read whole. A backup can keep every name a drill looks for and
//! change what it does: a unique index of the same name whose
//! expression or predicate enforces nothing, another operator class, a CHECK constraint restored
//! `NOT VALID` over a row that breaks it, a foreign key whose triggers are disabled, an audit
//! trigger set to `ENABLE REPLICA` and another disabled, an append-only guard whose function was
//! replaced under its name, a default that now grants `admin`, a generated expression changed,
//! a sequence that now cycles at 3, a partition whose copy of the append-only guard is disabled
//! and one whose foreign key checks are, and the database's sessions made replicas (`ALTER DATABASE
//! ... SET session_replication_role = replica`: no ordinary trigger fires, no foreign key is
//! checked, while `pg_trigger` says enabled). Each was verified by hand to lie (on PostgreSQL
//! 15: the duplicates, the orphans and the deleted audit rows go in, the triggers do not fire,
//! the sequence hands out 1 again). The writes to `pg_index` this drill once held (a unique
//! index left not ready, one not live) now fail the restore itself, before any check reads
//! them (`catalog.rs`).
//!
//! The baseline is captured with `pgdrill baseline` from the source (the honest twin as its
//! migrations wrote it) on PostgreSQL 15 (local binaries), and both twins, as pg_dump prints
//! them, are drilled on PostgreSQL 17 (a container): the honest twin passes there, so the facts
//! read from a source and from a restore on another major compare as equals (a definition that
//! prints otherwise once dumped and parsed again is printed again by the restore's server before
//! it is compared), and the lying one fails, each check saying what the backup did.

use std::path::Path;
use std::process::Command;

use pgdrill::outcome::DrillVerdict;
use pgdrill::{CheckResult, Verdict};

use crate::util::{CONTAINER, Drill, LOCAL, Scratch, pg15_dump, root};

/// What both twins share; each twin adds its functions, tables, data, constraints, indexes and
/// triggers.
const SHARED: &str = "\
CREATE FUNCTION public.audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO public.audit_events (what) VALUES (TG_OP || ' ' || NEW.id); RETURN NEW; END $$;
CREATE FUNCTION public.touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.updated_at := pg_catalog.now(); RETURN NEW; END $$;
CREATE TABLE public.payments (id integer PRIMARY KEY, order_id integer NOT NULL);
CREATE TABLE public.audit_events (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, what text NOT NULL);
CREATE FUNCTION public.refuse_log() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'the log is append-only'; END $$;
CREATE TABLE public.audit_log (id integer NOT NULL, at date NOT NULL, what text) PARTITION BY RANGE (at);
CREATE TABLE public.audit_log_2025 PARTITION OF public.audit_log FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE public.audit_log_2026 PARTITION OF public.audit_log FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE TABLE public.shipments (id integer NOT NULL, at date NOT NULL, order_id integer NOT NULL) PARTITION BY RANGE (at);
CREATE TABLE public.shipments_2026 PARTITION OF public.shipments FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
";

/// A table as its migration wrote it, in the source the baseline is captured from: a varchar
/// `IN` list in a CHECK and in a partial index's predicate.
const INVOICES_SOURCE: &str = "\
CREATE TABLE public.invoices (id integer PRIMARY KEY, status varchar(10) NOT NULL DEFAULT 'new' CHECK (status IN ('new', 'paid')));
CREATE INDEX invoices_unpaid ON public.invoices (id) WHERE status IN ('new', 'sent');
";

/// The same table as pg_dump prints it: parsed again on restore, the `IN` lists print otherwise
/// (`ARRAY[('new'::character varying)::text, ...]` for `(ARRAY['new'::character varying,
/// ...])::text[]`), on the source's major too.
const INVOICES_DUMPED: &str = "\
CREATE TABLE public.invoices (id integer PRIMARY KEY, status character varying(10) DEFAULT 'new'::character varying NOT NULL,
  CONSTRAINT invoices_status_check CHECK (((status)::text = ANY ((ARRAY['new'::character varying, 'paid'::character varying])::text[]))));
CREATE INDEX invoices_unpaid ON public.invoices USING btree (id) WHERE ((status)::text = ANY ((ARRAY['new'::character varying, 'sent'::character varying])::text[]));
";

/// What both twins end with: a foreign key of a partitioned table and a trigger on one.
const SHARED_END: &str = "\
ALTER TABLE public.shipments ADD CONSTRAINT shipments_order_id_fkey FOREIGN KEY (order_id) REFERENCES public.orders(id);
CREATE TRIGGER audit_log_guard BEFORE DELETE OR UPDATE ON public.audit_log FOR EACH ROW EXECUTE FUNCTION public.refuse_log();
";

const HONEST: &str = "\
CREATE FUNCTION public.refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'audit events are append-only'; END $$;
CREATE TABLE public.users (id integer PRIMARY KEY, email text NOT NULL, role text DEFAULT 'member'::text NOT NULL, updated_at timestamp with time zone);
CREATE TABLE public.orders (id integer NOT NULL, user_id integer NOT NULL, email text NOT NULL, amount numeric NOT NULL, deleted_at timestamp with time zone,
  total numeric GENERATED ALWAYS AS ((amount * 1.2)) STORED, CONSTRAINT orders_amount_check CHECK ((amount > (0)::numeric)));
CREATE SEQUENCE public.orders_id_seq AS integer START WITH 1 INCREMENT BY 1 NO MINVALUE NO MAXVALUE CACHE 1;
ALTER SEQUENCE public.orders_id_seq OWNED BY public.orders.id;
ALTER TABLE ONLY public.orders ALTER COLUMN id SET DEFAULT nextval('public.orders_id_seq'::regclass);
INSERT INTO public.users (id, email) VALUES (1, 'a@example.com'), (2, 'b@example.com');
INSERT INTO public.orders (id, user_id, email, amount) VALUES (1, 1, 'a@example.com', 10), (2, 2, 'b@example.com', 20);
INSERT INTO public.payments VALUES (1, 1);
SELECT pg_catalog.setval('public.orders_id_seq', 2, true);
ALTER TABLE ONLY public.orders ADD CONSTRAINT orders_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.payments ADD CONSTRAINT payments_order_id_fkey FOREIGN KEY (order_id) REFERENCES public.orders(id);
CREATE UNIQUE INDEX orders_email_key ON public.orders USING btree (email);
CREATE UNIQUE INDEX users_email_key ON public.users USING btree (email);
CREATE UNIQUE INDEX orders_one_open ON public.orders USING btree (user_id) WHERE (deleted_at IS NULL);
CREATE UNIQUE INDEX users_email_ci ON public.users USING btree (lower(email));
CREATE INDEX users_email_pattern ON public.users USING btree (email text_pattern_ops);
CREATE TRIGGER orders_audit AFTER INSERT ON public.orders FOR EACH ROW EXECUTE FUNCTION public.audit();
CREATE TRIGGER audit_guard BEFORE DELETE OR UPDATE ON public.audit_events FOR EACH ROW EXECUTE FUNCTION public.refuse();
CREATE TRIGGER users_touch BEFORE UPDATE ON public.users FOR EACH ROW EXECUTE FUNCTION public.touch();
";

/// The honest twin with every lie told at once, each on its own object.
const LYING: &str = "\
CREATE FUNCTION public.refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN COALESCE(NEW, OLD); END $$;
CREATE TABLE public.users (id integer PRIMARY KEY, email text NOT NULL, role text DEFAULT 'admin'::text NOT NULL, updated_at timestamp with time zone);
CREATE TABLE public.orders (id integer NOT NULL, user_id integer NOT NULL, email text NOT NULL, amount numeric NOT NULL, deleted_at timestamp with time zone,
  total numeric GENERATED ALWAYS AS ((amount * 1.0)) STORED);
CREATE SEQUENCE public.orders_id_seq AS integer START WITH 1 INCREMENT BY 1 NO MINVALUE MAXVALUE 3 CYCLE CACHE 1;
ALTER SEQUENCE public.orders_id_seq OWNED BY public.orders.id;
ALTER TABLE ONLY public.orders ALTER COLUMN id SET DEFAULT nextval('public.orders_id_seq'::regclass);
INSERT INTO public.users (id, email) VALUES (1, 'a@example.com'), (2, 'b@example.com');
INSERT INTO public.orders (id, user_id, email, amount) VALUES (1, 1, 'a@example.com', 10), (2, 2, 'b@example.com', 20), (3, 2, 'c@example.com', -5);
INSERT INTO public.payments VALUES (1, 1);
SELECT pg_catalog.setval('public.orders_id_seq', 3, true);
ALTER TABLE public.orders ADD CONSTRAINT orders_amount_check CHECK ((amount > (0)::numeric)) NOT VALID;
ALTER TABLE ONLY public.orders ADD CONSTRAINT orders_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.payments ADD CONSTRAINT payments_order_id_fkey FOREIGN KEY (order_id) REFERENCES public.orders(id);
ALTER TABLE public.payments DISABLE TRIGGER ALL;
CREATE UNIQUE INDEX orders_email_key ON public.orders USING btree (email);
CREATE UNIQUE INDEX users_email_key ON public.users USING btree (email);
CREATE UNIQUE INDEX orders_one_open ON public.orders USING btree (user_id) WHERE ((deleted_at IS NULL) AND (id < 0));
CREATE UNIQUE INDEX users_email_ci ON public.users USING btree (lower(email), id);
CREATE INDEX users_email_pattern ON public.users USING btree (email);
CREATE TRIGGER orders_audit AFTER INSERT ON public.orders FOR EACH ROW EXECUTE FUNCTION public.audit();
ALTER TABLE public.orders ENABLE REPLICA TRIGGER orders_audit;
CREATE TRIGGER audit_guard BEFORE DELETE OR UPDATE ON public.audit_events FOR EACH ROW EXECUTE FUNCTION public.refuse();
CREATE TRIGGER users_touch BEFORE UPDATE ON public.users FOR EACH ROW EXECUTE FUNCTION public.touch();
ALTER TABLE public.users DISABLE TRIGGER users_touch;
DO $$ BEGIN EXECUTE pg_catalog.format('ALTER DATABASE %I SET session_replication_role = replica', pg_catalog.current_database()); END $$;
";

/// The lies told on partitions, after [`SHARED_END`]: the append-only guard disabled on this
/// year's partition, the foreign key's checks on the shipments partition.
const LYING_END: &str = "\
ALTER TABLE public.audit_log_2026 DISABLE TRIGGER audit_log_guard;
ALTER TABLE public.shipments_2026 DISABLE TRIGGER ALL;
";

/// The checks both twins are drilled with: the indexes by name and against the baseline, the
/// schemas against the baseline, pg_amcheck, and the append-only guard's trigger.
const CHECKS: &str = r#"
[[checks.indexes]]
baseline = true
expect = [
  { name = "orders_email_key", table = "public.orders", unique = true },
  { name = "users_email_key", unique = true },
  { name = "orders_one_open", unique = true, keys = ["user_id"], predicate = "deleted_at IS NULL" },
]

[checks.schemas]
baseline = true

[checks.amcheck]

[checks.triggers]
"public.audit_events" = ["audit_guard"]
"#;

fn result(drill: &Drill, id: &str) -> CheckResult {
    drill.record().checks.iter().find(|c| c.id == id).cloned().unwrap_or_else(|| panic!("no {id}: {drill:?}"))
}

/// A drill of `backup` on the container with the baseline and the checks.
fn drill(scratch: &Scratch, name: &str, backup: &Path) -> Drill {
    let scenario = scratch.scenario(
        &format!("{name}.toml"),
        &format!(
            "name = \"{name}\"\nbaseline = \"baseline.json\"\n[source]\npath = \"{}\"\n{CONTAINER}{CHECKS}",
            backup.display()
        ),
    );
    scratch.drill(&scenario)
}

#[test]
fn a_backup_that_keeps_the_names_and_changes_what_they_do_fails_and_its_honest_twin_passes() {
    let scratch = Scratch::new();
    let source = scratch.write("source.sql", pg15_dump(&format!("{SHARED}{INVOICES_SOURCE}{HONEST}{SHARED_END}")));
    let honest = scratch.write("honest.sql", pg15_dump(&format!("{SHARED}{INVOICES_DUMPED}{HONEST}{SHARED_END}")));
    let lying =
        scratch.write("lying.sql", pg15_dump(&format!("{SHARED}{INVOICES_DUMPED}{LYING}{SHARED_END}{LYING_END}")));
    let capture = scratch
        .scenario("capture.toml", &format!("name = \"capture\"\n[source]\npath = \"{}\"\n{LOCAL}", source.display()));
    let output = Command::new(env!("CARGO_BIN_EXE_pgdrill"))
        .args(["baseline", "--from-drill"])
        .arg(&capture)
        .arg("--reports")
        .arg(scratch.path("capture-reports"))
        .arg("-o")
        .arg(scratch.path("baseline.json"))
        .current_dir(root())
        .output()
        .expect("run pgdrill baseline");
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let baseline = pgdrill::baseline::Baseline::load(&scratch.path("baseline.json")).expect("a baseline was written");
    let public = &baseline.schemas["public"];
    assert!(public.table_facts.as_ref().is_some_and(|t| t["orders"].triggers.len() == 1), "{public:?}");
    assert!(baseline.indexes.iter().all(|i| i.ready == Some(true) && i.parts.is_some()), "{:?}", baseline.indexes);

    // The two drills side by side: each starts its own container.
    let (honest, lying) = std::thread::scope(|s| {
        let honest = s.spawn(|| drill(&scratch, "honest", &honest));
        let lying = drill(&scratch, "lying", &lying);
        (honest.join().expect("the honest drill"), lying)
    });
    assert_eq!(honest.record().verdict, DrillVerdict::Pass, "the honest twin passes on another major\n{honest:?}");
    assert_not_fooled(&lying);
}

/// The lying twin fails each check, each saying what the backup did.
fn assert_not_fooled(lying: &Drill) {
    assert_ne!(lying.record().verdict, DrillVerdict::Pass, "{lying:?}");
    lying.assert_failed_cleanly();
    let replica = "every session of the database (ALTER DATABASE ... SET session_replication_role = replica)";
    let cases: [(&str, &[&str]); 5] = [
        (
            "indexes/orders_one_open",
            &[
                "index `orders_one_open` is restricted to WHERE ((deleted_at IS NULL) AND (id < 0)) instead of WHERE deleted_at IS NULL",
            ],
        ),
        (
            "indexes/every index in the baseline",
            &[
                "index `public.users_email_ci` covers (lower(email), id) where the baseline has (lower(email))",
                "index `public.users_email_pattern` has operator classes (pg_catalog.text_ops) where the baseline has (pg_catalog.text_pattern_ops)",
                "index `public.orders_one_open` has predicate WHERE ((deleted_at IS NULL) AND (id < 0)) where the baseline has WHERE (deleted_at IS NULL)",
            ],
        ),
        (
            "schemas/public",
            &[
                "column `public.users.role` default is 'admin'::text where the baseline has 'member'::text",
                "column `public.orders.total` is generated as (amount * 1.0) (stored) where the baseline has (amount * 1.2) (stored)",
                "constraint `orders_amount_check` on `public.orders` is NOT VALID in the restore (validated in the baseline): rows that break it may be in the table",
                "constraint `payments_order_id_fkey` on `public.payments` is not enforced in the restore (enforced in the baseline): a trigger that checks it is disabled or fires only in replica sessions",
                "`public.orders` trigger `orders_audit` is ENABLE REPLICA in the restore and enabled in the baseline: it does not fire in ordinary sessions",
                "`public.users` trigger `users_touch` is disabled in the restore and enabled in the baseline: it never fires",
                "function `public.refuse()` run by trigger `audit_guard` on `public.audit_events` differs from the baseline's (sha256 ",
                "sequence `public.orders_id_seq` has maximum 3 where the baseline has 2147483647",
                "sequence `public.orders_id_seq` cycles in the restore (not in the baseline)",
                &format!("session_replication_role is replica for {replica}: there its tables' "),
                "constraint `shipments_order_id_fkey` on `public.shipments` is not enforced in the restore (enforced in the baseline)",
                "`public.audit_log` trigger `audit_log_guard` is disabled on partition `public.audit_log_2026` and enabled on the table: for the rows there it never fires",
            ],
        ),
        (
            "triggers/public.audit_events",
            &[&format!("audit_guard do(es) not fire in {replica}: session_replication_role is replica there")],
        ),
        (
            "schemas/sequences ahead of their columns",
            &["public.orders_id_seq would hand out 1 but public.orders.id is already at 3"],
        ),
    ];
    let report = lying.report("report.md");
    for (id, says) in cases {
        let found = result(lying, id);
        assert_eq!(found.verdict, Verdict::Fail, "{found:?}\n{lying:?}");
        // A message names the first problems; the result's actual has them all.
        for text in says {
            assert!(found.message.contains(text) || found.actual.contains(text), "{id}: `{text}` not in\n{found:?}");
        }
        assert!(found.message.contains(says[0]), "{id}: `{}` not in\n{}", says[0], found.message);
        assert!(report.contains(says[0]), "report.md says {}", says[0]);
    }
}

//! Content fingerprints: taken on a source server in the snapshot of its dump, they match the
//! dump's restore, and a changed value fails naming its table; a canary comes back exactly; an
//! append-only audit trail that lost a row between two drilled backups fails, naming the range.

use std::io::Write;
use std::process::Command;

use pgdrill::outcome::Phase;

use crate::servers::PgServer;
use crate::util::{Scratch, fixture_text, root};

/// The source database: values whose text depends on the session's settings (a timestamp, a
/// float, an interval, bytea), and database settings that would change that text for any session
/// that does not pin its own.
const SHOP: &str = "
CREATE TABLE public.accounts (id bigint PRIMARY KEY, email text NOT NULL, balance numeric(12,2), opened timestamptz,
  ratio double precision, wait interval, token bytea);
INSERT INTO public.accounts SELECT g, 'user' || g || '@example.com', g * 10.25, '2026-01-01 08:00+00'::timestamptz + g * interval '1 hour',
  g / 3.0, g * interval '90 seconds', decode(md5(g::text), 'hex') FROM generate_series(1, 500) g;
-- Two tables of a few MB each, a plain one and a partitioned one: each is read in parts, by block.
CREATE TABLE public.notes (id bigint PRIMARY KEY, body text NOT NULL);
INSERT INTO public.notes SELECT g, repeat(md5(g::text), 7) FROM generate_series(1, 20000) g;
CREATE TABLE public.events (id bigint NOT NULL, at date NOT NULL, body text NOT NULL) PARTITION BY RANGE (at);
CREATE TABLE public.events_2025 PARTITION OF public.events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE public.events_2026 PARTITION OF public.events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
INSERT INTO public.events SELECT g, date '2025-01-01' + g % 700, repeat(md5(g::text), 5) FROM generate_series(1, 24000) g;
CREATE TABLE public.settings (key text PRIMARY KEY, value text NOT NULL, set_at timestamptz NOT NULL);
INSERT INTO public.settings VALUES ('pgdrill-canary', '7f3a9c', '2026-11-01 09:00+00'), ('theme', 'dark', '2026-11-02 10:00+00');
ALTER DATABASE shop SET DateStyle = 'SQL, DMY';
ALTER DATABASE shop SET TimeZone = 'Pacific/Chatham';
ALTER DATABASE shop SET extra_float_digits = -3;
ALTER DATABASE shop SET IntervalStyle = 'sql_standard';
ALTER DATABASE shop SET bytea_output = 'escape';
";

/// Values whose COPY line escapes something: control characters, backslashes, tabs, a text that
/// reads `\N`, a composite of NULL fields (not NULL), arrays, JSON, bytea, booleans, and text
/// beyond ASCII.
const ODD: &str = r#"
CREATE TYPE public.pair AS (a int, b text);
CREATE TABLE public.odd (id int PRIMARY KEY, t text, flag boolean, p public.pair, arr text[], doc jsonb, raw bytea);
INSERT INTO public.odd VALUES
  (1, E'tab\there\nnew\rcr\\back\bbs\fff\vvt\x01ctl', true, ROW(NULL, NULL), ARRAY['a b', NULL, E'q"\\'], '{"k": "v\\n"}', '\x00ff'),
  (2, '\N', false, NULL, NULL, NULL, NULL),
  (3, '', NULL, ROW(1, 'x'), '{}', '[]', ''),
  (4, 'é ü 漢字 🙂', true, ROW(2, E'\t'), ARRAY[E'\n'], '"\u00e9"', '\x5c');
"#;

/// What a backup written to fool the fingerprints adds: stand-ins for the built-ins the digest
/// uses, an operator that orders bytea its own way, and database settings that change the text
/// of values and where names resolve.
const STAND_INS: &str = r#"
CREATE FUNCTION public.sha256(bytea) RETURNS bytea LANGUAGE sql AS $$ SELECT '\x00'::bytea $$;
CREATE FUNCTION public.count() RETURNS bigint LANGUAGE sql AS $$ SELECT 500::bigint $$;
CREATE FUNCTION public.string_agg(bytea, bytea) RETURNS bytea LANGUAGE sql AS $$ SELECT '\x00'::bytea $$;
CREATE FUNCTION public.lie_lt(bytea, bytea) RETURNS boolean LANGUAGE sql AS $$ SELECT false $$;
CREATE OPERATOR public.< (LEFTARG = bytea, RIGHTARG = bytea, FUNCTION = public.lie_lt);
ALTER DATABASE shop SET search_path = public, pg_catalog;
ALTER DATABASE shop SET DateStyle = 'SQL, DMY';
"#;

fn pgdrill(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_pgdrill")).args(args).current_dir(root()).output().expect("run pgdrill")
}

fn text(out: &std::process::Output) -> String {
    format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[test]
fn a_fingerprint_taken_in_the_dumps_snapshot_matches_its_restore_and_a_changed_value_fails() {
    let scratch = Scratch::new();
    let server = PgServer::start();
    server.psql("CREATE DATABASE shop").expect("create database");
    let out = Command::new("docker")
        .args(["exec", "-i", &server.name, "psql", "-U", "postgres", "-d", "shop", "-v", "ON_ERROR_STOP=1", "-q"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            child.stdin.take().expect("stdin").write_all(format!("{SHOP}{ODD}").as_bytes())?;
            child.wait_with_output()
        })
        .expect("load the source");
    assert!(out.status.success(), "{}", text(&out));

    // pg_dump of the server's own major, in its container; then a write the fingerprints,
    // taken after the dump in the same snapshot, must not see.
    let pg_dump = scratch.write(
        "pg_dump.sh",
        format!(
            "#!/bin/sh\nfor a in \"$@\"; do case \"$a\" in --snapshot=*) snap=\"$a\";; --format=*) fmt=\"$a\";; --file=*) file=\"${{a#--file=}}\";; esac; done\n\
             docker exec {name} pg_dump -U postgres \"$snap\" \"$fmt\" shop > \"$file\" || exit 1\n\
             docker exec {name} psql -U postgres -d shop -qc \"UPDATE public.accounts SET balance = 0 WHERE id = 7; INSERT INTO public.accounts (id, email) VALUES (9999, 'late@example.com')\"\n",
            name = server.name
        ),
    );
    Command::new("chmod").arg("+x").arg(&pg_dump).status().expect("chmod");
    let dsn = server.url("disable").replace("/postgres?", "/shop?");
    // The DBA's key signs the fingerprint file; the drill trusts only that key.
    let key = scratch.path("dba-key");
    let made = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "dba@example.com", "-f"])
        .arg(&key)
        .output()
        .expect("ssh-keygen");
    assert!(made.status.success(), "{}", text(&made));
    let public = std::fs::read_to_string(scratch.path("dba-key.pub")).expect("public key");
    scratch.write("allowed_signers", format!("dba@example.com {public}"));
    let (dump, fingerprints) = (scratch.path("shop.sql"), scratch.path("shop.fingerprint.json"));
    let taken = pgdrill(&[
        "fingerprint",
        "--dsn",
        &dsn,
        "--dump",
        &dump.display().to_string(),
        "--dump-format",
        "plain",
        "--pg-dump",
        &pg_dump.display().to_string(),
        "--key",
        "public.accounts=id",
        "--ranges",
        "4",
        // Three sessions, each sorting its digests in 1 kB: they spill to disk in runs and merge.
        "--jobs",
        "3",
        "--sort-memory",
        "1kB",
        "-o",
        &fingerprints.display().to_string(),
        "--signing-key",
        &key.display().to_string(),
    ]);
    assert_eq!(taken.status.code(), Some(0), "{}", text(&taken));
    // Each table of a few MB was cut into parts, read by several sessions, its digests spilled.
    for table in ["public.notes", "public.events"] {
        let said = text(&taken).lines().find(|l| l.starts_with(&format!("{table}: "))).unwrap_or_default().to_owned();
        assert!(
            said.contains(" parts on ") && !said.contains("on 1 session") && said.contains("sorted on disk"),
            "{said}"
        );
    }
    assert!(!text(&taken).contains(&server.password), "the password was printed: {}", text(&taken));
    // OpenSSH itself vouches for the file.
    let verified = Command::new("sh")
        .arg("-c")
        .arg("ssh-keygen -Y verify -f allowed_signers -I dba@example.com -n pgdrill-fingerprint@pgdrill.dev -s shop.fingerprint.json.sig < shop.fingerprint.json")
        .current_dir(scratch.dir.path())
        .output()
        .expect("ssh-keygen -Y verify");
    assert!(verified.status.success(), "{}", text(&verified));
    let file: pgdrill::fingerprint::FingerprintFile =
        serde_json::from_str(&std::fs::read_to_string(&fingerprints).expect("fingerprint file")).expect("JSON");
    assert_eq!(file.schema, pgdrill::fingerprint::SCHEMA, "written in the current format");
    let accounts =
        file.tables.iter().find(|t| t.table == pgdrill::QualifiedName::new("public", "accounts")).expect("accounts");
    assert_eq!((accounts.rows, accounts.ranges.len()), (500, 4), "{accounts:?}");
    assert!(file.snapshot.is_some() && file.dump.is_some(), "{file:?}");
    // The source did change after the dump, and the fingerprints did not see it.
    let live = Command::new("docker")
        .args(["exec", &server.name, "psql", "-U", "postgres", "-d", "shop", "-Atqc"])
        .arg("SELECT count(*) || ' ' || (SELECT balance FROM public.accounts WHERE id = 7) FROM public.accounts")
        .output()
        .expect("psql");
    assert_eq!(String::from_utf8_lossy(&live.stdout).trim(), "501 0.00", "{}", text(&live));

    // The honest rows with the stand-ins beside them: nothing changes what the digest reads.
    let honest = std::fs::read_to_string(&dump).expect("dump");
    let end = "-- PostgreSQL database dump complete";
    assert!(honest.contains(end), "a plain dump ends so");
    scratch.write("shop.sql", honest.replace(end, &format!("{STAND_INS}\n{end}")));
    let scenario = scratch.scenario(
        "shop.toml",
        "name = \"shop\"\n[source]\npath = \"shop.sql\"\n[target]\ndatabase = \"shop\"\n\
         [checks.fingerprints]\nfile = \"shop.fingerprint.json\"\nallowed_signers = \"allowed_signers\"\nidentity = \"dba@example.com\"\n\
         [[checks.canary]]\ntable = \"public.settings\"\nrow = { key = \"pgdrill-canary\" }\n\
         expect = { value = \"7f3a9c\", set_at = \"2026-11-01 09:00:00+00\" }\n",
    );
    let good = scratch.drill(&scenario);
    assert_eq!(good.code, Some(0), "{good:?}");
    let passed: Vec<&str> = good.record().checks.iter().map(|c| c.id.as_str()).collect();
    assert!(
        passed.contains(&"fingerprints/public.accounts")
            && passed.contains(&"fingerprints/public.settings")
            && passed.contains(&"fingerprints/signature")
            && passed.iter().any(|id| id.starts_with("canary/")),
        "{passed:?}"
    );

    // Anyone can compute each digest again with psql: the check's evidence, run on the source
    // (these tables did not change after the dump), answers the rows and digest the file holds,
    // which pgdrill took from COPY lines on three sessions, sorting on disk (notes and events
    // were read in parts), and compared on the restore.
    for name in ["notes", "events", "settings", "odd"] {
        let check = good.record().checks.iter().find(|c| c.id == format!("fingerprints/public.{name}")).expect(name);
        let table = file.tables.iter().find(|t| t.table == pgdrill::QualifiedName::new("public", name)).expect(name);
        assert_eq!(table.row_text, pgdrill::fingerprint::RowText::Copy);
        let again = Command::new("docker")
            .args(["exec", &server.name, "psql", "-U", "postgres", "-d", "shop", "-Atq", "-F", " ", "-c"])
            .arg(&check.evidence)
            .output()
            .expect("psql");
        let answer = String::from_utf8_lossy(&again.stdout).trim().to_owned();
        assert_eq!(answer, format!("{} {}", table.rows, table.sha256), "{}\n{}", check.evidence, text(&again));
    }

    // A v2 file, taken before v3 (each row's `ROW(...)::text` hashed), is compared as it was
    // taken: its digest of `notes` holds, and a COPY-line digest written into it does not.
    let record = Command::new("docker")
        .args(["exec", &server.name, "psql", "-U", "postgres", "-d", "shop", "-Atq", "-F", " ", "-c"])
        .arg(format!(
            "{}; SELECT pg_catalog.count(*), pg_catalog.encode(pg_catalog.sha256(pg_catalog.string_agg(r.h, ''::bytea \
             ORDER BY r.h)), 'hex') FROM (SELECT pg_catalog.sha256(pg_catalog.convert_to(ROW(t.*)::text, 'UTF8')) AS h \
             FROM ONLY public.notes AS t) AS r",
            pgdrill::fingerprint::settings_sql()
        ))
        .output()
        .expect("psql");
    let record = String::from_utf8_lossy(&record.stdout).trim().to_owned();
    let (rows, sha256) = record.split_once(' ').expect("rows and digest");
    let events =
        file.tables.iter().find(|t| t.table == pgdrill::QualifiedName::new("public", "events")).expect("events");
    let table = |name: &str, columns: &str, rows: &str, sha256: &str| {
        format!(
            r#"{{"table": "public.{name}", "columns": [{columns}], "ranges": [{{"rows": {rows}, "sha256": "{sha256}"}}], "rows": {rows}, "sha256": "{sha256}"}}"#
        )
    };
    let v2 = format!(
        r#"{{"schema": "pgdrill.fingerprint.v2", "taken_at": "2026-11-01T00:00:00Z", "database": "shop", "server_version": "17", "tables": [{}, {}]}}"#,
        table("notes", r#"{"name": "id", "type": "bigint"}, {"name": "body", "type": "text"}"#, rows, sha256),
        table(
            "events",
            r#"{"name": "id", "type": "bigint"}, {"name": "at", "type": "date"}, {"name": "body", "type": "text"}"#,
            &events.rows.to_string(),
            &events.sha256
        ),
    );
    scratch.write("shop.v2.fingerprint.json", v2);
    let old = scratch.scenario(
        "shop-v2.toml",
        "name = \"shop-v2\"\n[source]\npath = \"shop.sql\"\n[target]\ndatabase = \"shop\"\n\
         [checks.fingerprints]\nfile = \"shop.v2.fingerprint.json\"\n",
    );
    let compared = scratch.drill(&old);
    let verdict =
        |id: &str| compared.record().checks.iter().find(|c| c.id == id).map(|c| c.verdict.as_str().to_owned());
    assert_eq!(verdict("fingerprints/public.notes").as_deref(), Some("pass"), "{compared:?}");
    assert_eq!(verdict("fingerprints/public.events").as_deref(), Some("fail"), "{compared:?}");

    // The same number of rows, one value changed (and the canary's): each fails, by name.
    let original = std::fs::read_to_string(&dump).expect("dump");
    let line = original.lines().find(|l| l.starts_with("42\tuser42@example.com\t")).expect("row 42").to_owned();
    let tampered = original.replace(&line, &line.replace("430.50", "430.51")).replace("\t7f3a9c\t", "\t7f3a9d\t");
    assert_ne!(tampered, original);
    scratch.write("shop.sql", tampered);
    // Whoever can rewrite the backup can rewrite the fingerprints beside it, not their signature.
    let fingerprint_text = std::fs::read_to_string(&fingerprints).expect("fingerprint file");
    std::fs::write(&fingerprints, fingerprint_text.replace("\"rows\": 500", "\"rows\": 499")).expect("rewrite");
    let bad = scratch.drill(&scenario);
    bad.assert_failed_cleanly();
    let check = |id: &str| bad.record().checks.iter().find(|c| c.id == id).unwrap_or_else(|| panic!("{id}\n{bad:?}"));
    let accounts = check("fingerprints/public.accounts");
    assert_eq!(accounts.verdict.as_str(), "fail", "{bad:?}");
    assert!(
        accounts.message.contains("`public.accounts`'s content differs")
            && accounts.message.contains("id <= 125: 125 rows as before, other values"),
        "{}",
        accounts.message
    );
    let canary = bad.record().checks.iter().find(|c| c.kind.as_str() == "canary").expect("canary");
    assert!(canary.message.contains("`value` reads `7f3a9d`, not `7f3a9c`"), "{}", canary.message);
    assert_eq!(check("fingerprints/public.settings").verdict.as_str(), "fail");
    let signature = check("fingerprints/signature");
    assert!(
        signature.verdict.as_str() == "fail" && signature.message.contains("the file was changed after SHA256:"),
        "{}",
        signature.message
    );
    assert_eq!(bad.phase(Phase::Restore).as_str(), "passed");
}

/// A caracal backup with its audit trail changed: `edit` rewrites the dump's text.
fn caracal_with(scratch: &Scratch, name: &str, edit: impl Fn(&str) -> String) -> String {
    let text = fixture_text("caracal.sql.gz");
    let edited = edit(&text);
    assert_ne!(edited, text, "{name}: the edit changed nothing");
    scratch.write(name, edited).display().to_string()
}

#[test]
fn an_audit_trail_that_lost_a_row_between_two_drilled_backups_fails_naming_the_range() {
    let scratch = Scratch::new();
    let scenario = scratch.scenario(
        "trail.toml",
        "name = \"trail\"\n[source]\npath = \"{fixtures}/caracal.sql.gz\"\n[target]\ndatabase = \"caracal\"\n\
         [[restore.roles]]\nname = \"caracal_app\"\n[[restore.roles]]\nname = \"caracal_audit_writer\"\n\
         [[checks.append_only]]\ntable = \"public.audit_events\"\nrole = \"caracal_audit_writer\"\nkey = \"id\"\n\
         insert = \"INSERT INTO public.audit_events (zone_id, actor, action, detail, created_at) VALUES ('8484762c-7cdf-d086-0cd7-cde7f4329fca', 'pgdrill', 'drill.probe', '{}', now())\"\n",
    );
    let first = scratch.drill(&scenario);
    assert_eq!(first.code, Some(0), "{first:?}");
    let kept = first.record().checks.iter().find_map(|c| c.trail.as_ref()).unwrap_or_else(|| panic!("{first:?}"));
    assert_eq!(kept.ranges.len(), 16, "{kept:?}");

    // A later backup: two events appended past the end of the trail.
    let grown = caracal_with(&scratch, "grown.sql", |dump| {
        let header = "COPY public.audit_events_default (id, zone_id, actor, action, detail, created_at) FROM stdin;\n";
        dump.replace(header, &format!("{header}900001\t8484762c-7cdf-d086-0cd7-cde7f4329fca\tlater\tlogin\t{{}}\t2031-01-01 00:00:00+00\n900002\t8484762c-7cdf-d086-0cd7-cde7f4329fca\tlater\tlogout\t{{}}\t2031-01-01 00:01:00+00\n"))
    });
    let second = scratch.drill_with(&scenario, &["--backup".into(), grown]);
    assert_eq!(second.code, Some(0), "a trail that only grew passes: {second:?}");
    let proved =
        second.record().checks.iter().find(|c| c.object.contains("rows of the previous backups")).expect("trail");
    assert!(proved.message.contains("2 rows were appended since"), "{}", proved.message);

    // The next backup lost one old event: the range it was in fails.
    let cut = caracal_with(&scratch, "cut.sql", |dump| {
        let header = "COPY public.audit_events_2026_06 (id, zone_id, actor, action, detail, created_at) FROM stdin;\n";
        let start = dump.find(header).expect("partition") + header.len();
        let end = start + dump[start..].find('\n').expect("a row") + 1;
        format!("{}{}", &dump[..start], &dump[end..])
    });
    let third = scratch.drill_with(&scenario, &["--backup".into(), cut]);
    third.assert_failed_cleanly();
    let failed =
        third.record().checks.iter().find(|c| c.object.contains("rows of the previous backups")).expect("trail");
    assert_eq!(failed.verdict.as_str(), "fail", "{third:?}");
    assert!(
        failed.message.contains(&format!("drill `{}` recorded", second.record().drill_id))
            && failed.message.contains("1 of its")
            && failed.message.contains("rows are gone")
            && failed.message.contains("id in ("),
        "{}",
        failed.message
    );
    assert!(failed.trail.is_none(), "a cut trail is not kept for the next drill");

    // A backup whose audit table lost a column the trail hashed: not the trail recorded.
    let dropped = caracal_with(&scratch, "dropped.sql", |dump| {
        let (mut out, mut create, mut copy) = (String::new(), false, false);
        for line in dump.lines() {
            create = (create || line.starts_with("CREATE TABLE public.audit_events")) && !line.starts_with(')');
            if create && line.trim_start().starts_with("detail ") {
                continue;
            }
            let line = if line.starts_with("COPY public.audit_events_") {
                copy = true;
                line.replace("detail, ", "")
            } else if copy && line == "\\." {
                copy = false;
                line.to_owned()
            } else if copy {
                let mut fields: Vec<&str> = line.split('\t').collect();
                fields.remove(4);
                fields.join("\t")
            } else {
                line.to_owned()
            };
            out.push_str(&line);
            out.push('\n');
        }
        out
    });
    let fourth = scratch.drill_with(&scenario, &["--backup".into(), dropped]);
    fourth.assert_failed_cleanly();
    let lost =
        fourth.record().checks.iter().find(|c| c.object.contains("rows of the previous backups")).expect("trail");
    assert!(
        lost.verdict.as_str() == "fail" && lost.message.contains("has no column `detail`"),
        "{}\n{fourth:?}",
        lost.message
    );
}

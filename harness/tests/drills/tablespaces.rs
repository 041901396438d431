//! Base backups of a cluster with a tablespace (`public.ledger` lives in `ts1`, at `/tmp/ts1`
//! on the source): in tar format (`<oid>.tar` beside `base.tar`, and `tablespace_map` naming
//! the source's place) and in plain format (`--tablespace-mapping` into a folder of its own, and
//! a link in `pg_tblspc`). Each recovers with the tablespace inside the staging folder (an
//! in-place tablespace: `pg_tablespace_location` is `pg_tblspc/<oid>`), never at the place the
//! backup names; a tablespace missing from the backup, or a plain one the scenario does not
//! name, fails in verify.

use std::path::{Path, PathBuf};

use pgdrill::report::{Phase, PhaseStatus};

use crate::source_server::{SourceServer, wait_for};
use crate::util::Scratch;

struct Source {
    server: SourceServer,
    target_time: String,
    before: i64,
    /// The tablespace's OID, as its tar and its link in pg_tblspc are named.
    oid: String,
}

impl Source {
    fn folder(&self, name: &str) -> PathBuf {
        self.server.dir.path().join(name)
    }

    fn make() -> Self {
        let image = pgdrill::scenario::project_image(17);
        let server = SourceServer::for_basebackup("tablespace", &image, &["backup", "plain", "plain-ts"]);
        server.exec(&["mkdir", "-p", "/tmp/ts1"]);
        server.psql_in("postgres", "CREATE TABLESPACE ts1 LOCATION '/tmp/ts1'").unwrap();
        server.psql("ALTER TABLE public.ledger SET TABLESPACE ts1").unwrap();
        let basebackup = ["pg_basebackup", "-U", "postgres", "-X", "stream", "-c", "fast"];
        server.exec(&[&basebackup[..], &["-D", "/backup", "-F", "t", "-z"]].concat());
        server
            .exec(&[&basebackup[..], &["-D", "/plain", "-F", "p", "--tablespace-mapping=/tmp/ts1=/plain-ts"]].concat());
        let before = 40;
        let around = server.write_around_target(before, 25);
        let archived = server.dir.path().join("archive").join(&around.last_segment);
        wait_for(&format!("segment {} to be archived", around.last_segment), || archived.is_file());
        let oid = server
            .psql_in("postgres", "SELECT oid FROM pg_tablespace WHERE spcname = 'ts1'")
            .unwrap()
            .trim()
            .to_owned();
        Source { server, target_time: around.target_time, before, oid }
    }
}

fn scenario(scratch: &Scratch, source: &Source, backup: &Path, extra: &str) -> PathBuf {
    scratch.scenario(
        &format!("tablespace-{}.toml", crate::util::rand_suffix()),
        &format!(
            "[source]\npath = \"{}\"\nwal_archive = \"{}\"\n{extra}\n\n[target]\ndatabase = \"books\"\n\n\
             [recovery]\ntarget_time = \"{}\"\n\n\
             [[checks.point_in_time]]\npresent = \"SELECT count(*) = {} FROM public.ledger WHERE batch = 'before'\"\n\
             absent = \"SELECT EXISTS (SELECT 1 FROM public.ledger WHERE batch = 'after')\"\n\n\
             [[checks.sql]]\nname = \"the tablespace is in the data directory\"\n\
             query = \"SELECT pg_catalog.pg_tablespace_location(oid) FROM pg_catalog.pg_tablespace WHERE spcname = 'ts1'\"\n\
             expect_rows = [[\"pg_tblspc/{}\"]]\n\n[checks.amcheck]\n",
            backup.display(),
            source.folder("archive").display(),
            source.target_time,
            source.before,
            source.oid,
        ),
    )
}

#[test]
fn a_base_backup_with_a_tablespace_recovers_it_inside_the_staging_folder() {
    let source = Source::make();
    let scratch = Scratch::new();
    let oid = &source.oid;
    assert!(
        source.folder("backup").join(format!("{oid}.tar.gz")).is_file(),
        "pg_basebackup wrote the tablespace's tar"
    );

    // Tar format: the tablespace's tar unpacked into pg_tblspc/16384 itself.
    let drill = scratch.drill(&scenario(&scratch, &source, &source.folder("backup"), ""));
    assert_eq!(drill.code, Some(0), "{drill:?}");
    drill.assert_reports_and_no_leftovers();

    // Plain format: the link in pg_tblspc is copied from the folder the scenario names.
    let mapped = format!("tablespaces = {{ {oid} = \"{}\" }}", source.folder("plain-ts").display());
    let drill = scratch.drill(&scenario(&scratch, &source, &source.folder("plain"), &mapped));
    assert_eq!(drill.code, Some(0), "{drill:?}");

    // The plain backup without the scenario naming its tablespace: the link is refused.
    let drill = scratch.drill(&scenario(&scratch, &source, &source.folder("plain"), ""));
    drill.assert_failed_cleanly();
    assert_eq!(drill.phase(Phase::Verify), PhaseStatus::Failed, "{drill:?}");
    let error = drill.phase_error(Phase::Verify);
    assert!(error.contains(&format!("holds a link `pg_tblspc/{oid}`")), "{error}");
    assert!(error.contains("`[source] tablespaces`"), "{error}");

    // The tar backup without its tablespace's tar: pg_verifybackup names what is missing.
    let lost = scratch.path("without-tablespace");
    std::fs::create_dir(&lost).unwrap();
    for file in ["base.tar.gz", "pg_wal.tar.gz", "backup_manifest"] {
        std::fs::copy(source.folder("backup").join(file), lost.join(file)).unwrap();
    }
    let drill = scratch.drill(&scenario(&scratch, &source, &lost, ""));
    drill.assert_failed_cleanly();
    assert_eq!(drill.phase(Phase::Verify), PhaseStatus::Failed, "{drill:?}");
    let error = drill.phase_error(Phase::Verify);
    assert!(error.contains("pg_verifybackup") && error.contains(&format!("pg_tblspc/{oid}/")), "{error}");
}

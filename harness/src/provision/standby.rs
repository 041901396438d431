//! A physical backup's data directory made ready for the sandbox: a standby of nothing, which
//! recovers what its `pg_wal` holds and never reaches the source's configuration.

use super::image;
use crate::tree::Ids;

/// Makes the data directory `data`, staged from a base backup, a standby of nothing: the
/// sandbox's own configuration (the source's kept beside it as `*.source`, never read; the
/// server's settings are on its command line), no signal or pid file of the source's, and
/// `standby.signal`; the files pgdrill writes given to `owner`.
pub(crate) fn standby_of_nothing(data: &std::path::Path, owner: Ids) -> std::io::Result<()> {
    for (name, text) in [
        (
            "postgresql.conf",
            "# pgdrill: the sandbox's settings are on the command line; the source's are in *.source\n",
        ),
        ("postgresql.auto.conf", ""),
        ("pg_hba.conf", image::PG_HBA),
        ("pg_ident.conf", ""),
    ] {
        let path = data.join(name);
        if path.exists() {
            std::fs::rename(&path, data.join(format!("{name}.source")))?;
        }
        std::fs::write(&path, text)?;
        owner.own(&path)?;
    }
    for signal in ["recovery.signal", "standby.signal", "postmaster.pid", "postmaster.opts"] {
        let _ = std::fs::remove_file(data.join(signal));
    }
    let signal = data.join("standby.signal");
    std::fs::write(&signal, "")?;
    owner.own(&signal)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::standby_of_nothing;

    #[test]
    fn a_base_backup_becomes_a_standby_of_nothing_that_keeps_the_sources_files_aside() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path();
        let me = std::fs::metadata(data).unwrap();
        // What a base backup of a source carries, and what it may lack (`pg_ident.conf` here).
        for (name, text) in [
            ("postgresql.conf", "archive_command = 'curl http://source'\n"),
            ("postgresql.auto.conf", "primary_conninfo = 'host=source'\n"),
            ("pg_hba.conf", "host all all 0.0.0.0/0 trust\n"),
            ("recovery.signal", ""),
            ("postmaster.pid", "4242\n"),
            ("postmaster.opts", "/usr/lib/postgresql/17/bin/postgres\n"),
            ("PG_VERSION", "17\n"),
        ] {
            std::fs::write(data.join(name), text).unwrap();
        }
        standby_of_nothing(data, crate::tree::Ids { uid: me.uid(), gid: me.gid() }).unwrap();

        let read = |name: &str| std::fs::read_to_string(data.join(name)).ok();
        // (file, what it holds after; None: gone)
        let cases: [(&str, Option<&str>); 12] = [
            (
                "postgresql.conf",
                Some("# pgdrill: the sandbox's settings are on the command line; the source's are in *.source\n"),
            ),
            ("postgresql.auto.conf", Some("")),
            ("pg_hba.conf", Some(super::image::PG_HBA)),
            ("pg_ident.conf", Some("")),
            ("postgresql.conf.source", Some("archive_command = 'curl http://source'\n")),
            ("postgresql.auto.conf.source", Some("primary_conninfo = 'host=source'\n")),
            ("pg_hba.conf.source", Some("host all all 0.0.0.0/0 trust\n")),
            ("pg_ident.conf.source", None),
            ("standby.signal", Some("")),
            ("recovery.signal", None),
            ("postmaster.pid", None),
            ("PG_VERSION", Some("17\n")),
        ];
        for (name, expected) in cases {
            assert_eq!(read(name).as_deref(), expected, "{name}");
        }
        assert!(read("postmaster.opts").is_none());
        assert_eq!(std::fs::metadata(data.join("standby.signal")).unwrap().uid(), me.uid());
    }
}

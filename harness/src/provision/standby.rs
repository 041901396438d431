//! A physical backup's data directory made ready for the sandbox: a standby of nothing, which
//! recovers what its `pg_wal` holds and never reaches the source's configuration.

use super::image;

/// Makes the data directory `data`, staged from a base backup, a standby of nothing: the
/// sandbox's own configuration (the source's kept beside it as `*.source`, never read; the
/// server's settings are on its command line), no signal or pid file of the source's, and
/// `standby.signal`; the files pgdrill writes given to `owner`.
pub(crate) fn standby_of_nothing(data: &std::path::Path, owner: (u32, u32)) -> std::io::Result<()> {
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
        std::os::unix::fs::lchown(&path, Some(owner.0), Some(owner.1))?;
    }
    for signal in ["recovery.signal", "standby.signal", "postmaster.pid", "postmaster.opts"] {
        let _ = std::fs::remove_file(data.join(signal));
    }
    let signal = data.join("standby.signal");
    std::fs::write(&signal, "")?;
    std::os::unix::fs::lchown(&signal, Some(owner.0), Some(owner.1))
}

//! The verify phase's tests: backups written here read whole, or refused with what is wrong
//! with them (empty, cut short, damaged, not a dump, a refused command, another digest, a key
//! that does not open them).

use std::io::Write;
use std::path::Path;
use std::sync::atomic::AtomicBool;

use sha2::{Digest, Sha256};

use super::*;
use crate::dump::Statement;

const HEAD: &str = "--\n-- PostgreSQL database dump\n--\n\n-- Dumped from database version 16.4\n\
                    -- Dumped by pg_dump version 17.2\n\n";
const BODY: &str = "SET statement_timeout = 0;\nCREATE TABLE public.t (a integer);\n\
                    COPY public.t (a) FROM stdin;\n1\n2\n\\.\n";
const END: &str = "\n--\n-- PostgreSQL database dump complete\n--\n\n";

fn dump() -> String {
    format!("{HEAD}{BODY}{END}")
}

fn backup_at(path: &Path) -> Backup {
    let size = if path.is_dir() { 1 } else { std::fs::metadata(path).unwrap().len() };
    Backup {
        location: path.display().to_string(),
        path: path.to_owned(),
        size,
        modified: None,
        previous: None,
        wal_archive: None,
        keys: Vec::new(),
        remote: None,
    }
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> Backup {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    backup_at(&path)
}

fn check(backup: &Backup, expected: Option<&str>) -> Result<Verified, VerifyError> {
    verify(backup, expected, &|_| {}, &AtomicBool::new(false))
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[test]
fn a_plain_dump_reads_whole_and_says_what_it_holds() {
    let dir = tempfile::tempdir().unwrap();
    let backup = write(dir.path(), "orders.sql", dump().as_bytes());
    let verified = check(&backup, None).unwrap();
    let digest = sha256(dump().as_bytes());
    assert_eq!(verified.info.sha256, digest);
    assert_eq!((verified.info.format.as_str(), verified.info.compression.as_str()), ("plain", "none"));
    assert_eq!(verified.info.source_version.as_deref(), Some("16.4"));
    assert_eq!(verified.summary.copy_rows.get("public.t"), Some(&2));
    assert_eq!(
        verified.summary_line(),
        format!("sha256 {}…, plain dump from PostgreSQL 16.4: 3 statements, 2 rows in 1 COPY blocks", &digest[..12])
    );
    // The digest the scenario pins is the one read.
    assert!(check(&backup, Some(&digest)).is_ok());
}

#[test]
fn a_compressed_dump_is_hashed_as_stored_and_read_decompressed() {
    let dir = tempfile::tempdir().unwrap();
    let packed = gzip(dump().as_bytes());
    let verified = check(&write(dir.path(), "orders.sql.gz", &packed), None).unwrap();
    assert_eq!(verified.info.sha256, sha256(&packed));
    assert_eq!(verified.info.uncompressed_bytes, dump().len() as u64);
    assert!(verified.summary_line().contains(", gzip plain dump from PostgreSQL 16.4: 3 statements"));
}

#[test]
fn another_digest_than_the_scenarios_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let backup = write(dir.path(), "orders.sql", dump().as_bytes());
    let error = check(&backup, Some("00ff")).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("sha256 mismatch: expected 00ff, the backup has {}", sha256(dump().as_bytes()))
    );
}

#[test]
fn an_empty_file_and_what_is_not_a_dump_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let empty = check(&write(dir.path(), "empty.sql", b""), None).unwrap_err();
    assert_eq!(empty.to_string(), "the backup is empty (0 bytes)");
    let page = check(&write(dir.path(), "page.sql", b"<!DOCTYPE html><html>Not Found</html>"), None).unwrap_err();
    assert_eq!(
        page.to_string(),
        "the backup is not a pg_dump backup: it is an HTML page, not a dump (an error page saved in place of the backup?)"
    );
}

#[test]
fn a_dump_without_its_completion_marker_was_cut_short() {
    let dir = tempfile::tempdir().unwrap();
    let cut = format!("{HEAD}{BODY}");
    let error = check(&write(dir.path(), "cut.sql", cut.as_bytes()), None).unwrap_err();
    let lines = cut.lines().count();
    assert_eq!(
        error.to_string(),
        format!(
            "the dump ends at line {lines} without pg_dump's `-- PostgreSQL database dump complete` marker: it was cut short (disk full, or pg_dump killed?)"
        )
    );
}

#[test]
fn a_compressed_file_cut_short_is_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let long: String = (0..20_000).map(|i| format!("{i}\n")).collect();
    let text = format!("{HEAD}COPY public.t (a) FROM stdin;\n{long}\\.\n{END}");
    let packed = gzip(text.as_bytes());
    let backup = write(dir.path(), "cut.sql.gz", &packed[..packed.len() / 2]);
    let error = check(&backup, None).unwrap_err();
    assert!(matches!(error, VerifyError::Truncated { compression: "gzip", .. }), "{error:?}");
    let start =
        format!("the gzip archive is truncated: its {} bytes end before the compressed stream does (", backup.size);
    assert!(error.to_string().starts_with(&start), "{error}");
}

#[test]
fn a_shell_command_in_the_dump_is_refused_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let shell = format!("{HEAD}SET statement_timeout = 0;\n\\! rm -rf /\n{END}");
    let error = check(&write(dir.path(), "shell.sql", shell.as_bytes()), None).unwrap_err();
    assert_eq!(
        error.to_string(),
        "dump line 9: the meta-command `\\!` is refused: a dump is untrusted input, and pgdrill follows only `\\connect`, `\\restrict` and `\\unrestrict`"
    );
    let program = format!("{HEAD}COPY public.t TO PROGRAM 'curl x';\n{END}");
    let error = check(&write(dir.path(), "program.sql", program.as_bytes()), None).unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("dump line 8: `COPY ... PROGRAM` (it runs a shell command on the server) is refused"),
        "{error}"
    );
}

#[test]
fn only_the_meta_commands_a_restore_follows_pass() {
    let meta = |command: &str| Item::Meta { command: command.into(), args: String::new(), line: 4 };
    for allowed in ALLOWED_META {
        assert_eq!(refused(&meta(allowed)), None, "\\{allowed}");
    }
    assert_eq!(refused(&meta("copy")).as_deref(), Some("the meta-command `\\copy`"));
    assert_eq!(item_line(&meta("c")), 4);
    let statement = |copy_program| {
        Item::Statement(Statement {
            sql: "COPY t TO PROGRAM 'x';".into(),
            line: 9,
            entry: None,
            copy_from_stdin: false,
            copy_program,
        })
    };
    assert_eq!(refused(&statement(false)), None);
    assert!(refused(&statement(true)).is_some());
    assert_eq!(item_line(&statement(true)), 9);
    assert_eq!(item_line(&Item::CopyData(b"1\n".to_vec())), 0, "COPY data has no single line");
    assert_eq!(item_line(&Item::CopyEnd { line: 12, rows: 1 }), 12);
}

#[test]
fn a_compressed_archive_is_refused_as_pg_restore_would_not_read_it() {
    let dir = tempfile::tempdir().unwrap();
    let backup = write(dir.path(), "orders.dump.gz", &gzip(b"PGDMP\x01\x10\x00\x04\x08\x01\x01"));
    assert_eq!(
        check(&backup, None).unwrap_err().to_string(),
        "the custom-format archive is wrapped in gzip: pg_restore reads archives as pg_dump wrote them (decompress it, or let pg_dump compress: -Z)"
    );
}

#[test]
fn a_folder_without_toc_dat_is_no_directory_archive() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("3456.dat.gz"), gzip(b"1\n")).unwrap();
    let error = check(&backup_at(dir.path()), None).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("`{}` is a folder without pg_dump's `toc.dat`: not a directory-format archive", dir.path().display())
    );
}

fn header(compression: &str) -> ArchiveHeader {
    ArchiveHeader {
        version: "1.16".into(),
        format: "custom".into(),
        compression: compression.into(),
        database: "orders".into(),
        source_version: "16.4".into(),
        pg_dump_version: "17.2".into(),
        created: None,
    }
}

#[test]
fn an_archives_summary_names_its_header_and_whether_its_data_is_compressed() {
    let dir = tempfile::tempdir().unwrap();
    let backup = write(dir.path(), "orders.dump", b"PGDMP");
    let archive = |compression: &str| {
        let header = header(compression);
        let summary = archive_summary(&header, None);
        verified(&backup, "ab".repeat(32), Compression::None, Format::Custom, summary, Some(header))
    };
    let plain = archive("none");
    assert_eq!(
        plain.summary_line(),
        "sha256 abababababab…, custom archive (version 1.16, its data not compressed) of database `orders` from PostgreSQL 16.4, by pg_dump 17.2"
    );
    assert_eq!(plain.info.compression, "none (inside the archive)");
    assert_eq!(plain.info.dumped_by.as_deref(), Some("pg_dump 17.2"));
    assert!(plain.summary.comments.complete, "an archive that read whole is complete");
    let mut zstd = archive("zstd");
    assert!(zstd.summary_line().contains("(version 1.16, zstd inside)"));
    zstd.info.encryption = Some("age".into());
    zstd.info.keys = vec!["age identity age1a".into()];
    assert!(zstd.summary_line().contains("…, age-encrypted, decrypted as read by its key; custom archive"));
    zstd.info.keys.push("age identity age1b".into());
    assert!(zstd.summary_line().contains("decrypted as read by each of its 2 keys;"));
}

#[test]
fn keys_that_do_not_open_the_backup_are_each_named() {
    let one = VerifyError::Keys { total: 2, failed: vec!["key B: no".into()], opened: vec!["key A".into()] };
    assert_eq!(one.to_string(), "1 of the 2 keys does not open the backup: key B: no (it opens with key A)");
    let all = VerifyError::Keys { total: 2, failed: vec!["A: no".into(), "B: no".into()], opened: Vec::new() };
    assert_eq!(all.to_string(), "2 of the 2 keys do not open the backup: A: no; B: no");
}

fn age_key() -> (age::x25519::Identity, decrypt::Key) {
    let identity = age::x25519::Identity::generate();
    let secret = age::secrecy::ExposeSecret::expose_secret(&identity.to_string()).to_owned();
    let spec = decrypt::KeySpec::Identity {
        key: crate::secret::SecretSource::Inline(crate::secret::Secret::new(secret)),
        unlock: None,
    };
    let key = decrypt::load(&[spec], &crate::secret::Redactor::new()).unwrap().remove(0);
    (identity, key)
}

fn encrypted_to(recipient: &age::x25519::Recipient, plain: &[u8]) -> Vec<u8> {
    let encryptor = age::Encryptor::with_recipients(std::iter::once(recipient as &dyn age::Recipient)).unwrap();
    let mut out = Vec::new();
    let mut writer = encryptor.wrap_output(&mut out).unwrap();
    writer.write_all(plain).unwrap();
    writer.finish().unwrap();
    out
}

/// An encrypted dump reads decrypted with its first key; each other key must open it too, and
/// one that does not fails the phase by its public name, the ones that do named beside it.
#[test]
fn an_encrypted_dump_is_proven_to_open_with_each_of_its_keys() {
    let dir = tempfile::tempdir().unwrap();
    let ((a, key_a), (_, key_b)) = (age_key(), age_key());
    let mut backup = write(dir.path(), "orders.sql.age", &encrypted_to(&a.to_public(), dump().as_bytes()));
    let (public_a, public_b) = (key_a.public.clone(), key_b.public.clone());
    assert_eq!(public_a, format!("age identity {}", a.to_public()));

    backup.keys = vec![key_a];
    let verified = check(&backup, None).unwrap();
    assert_eq!(verified.info.encryption.as_deref(), Some("age"));
    assert_eq!(verified.info.keys, std::slice::from_ref(&public_a));
    assert!(verified.summary_line().contains("age-encrypted, decrypted as read by its key; plain dump"));

    backup.keys.push(key_b);
    let error = check(&backup, None).unwrap_err();
    let VerifyError::Keys { total: 2, failed, opened } = &error else { panic!("{error:?}") };
    assert_eq!(opened, std::slice::from_ref(&public_a));
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(error.to_string().starts_with("1 of the 2 keys does not open the backup: "), "{error}");
    assert!(error.to_string().ends_with(&format!("(it opens with {public_a})")), "{error}");
    assert!(failed[0].starts_with(&format!("{public_b} does not open the backup: ")), "{failed:?}");
}

//! The scenario file as written: every field optional where a default exists, unknown keys
//! rejected, spans kept for the values that are checked after parsing.

use std::collections::BTreeMap;

use crate::field::Spanned;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::check;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Scenario")]
pub(crate) struct RawScenario {
    /// The drill's name in reports and folders (default: the file's name).
    pub name: Option<Spanned<String>>,
    /// What is drilled, in a sentence for the report.
    pub description: Option<String>,
    /// Labels that select drills: `pgdrill run --tag quarterly`, `PGDRILL_TAGS`.
    #[serde(default)]
    pub tags: Vec<Spanned<String>>,
    /// A baseline file (`pgdrill baseline`), relative to the scenario file.
    pub baseline: Option<Spanned<String>>,
    /// The backup: a file, the newest in a folder, HTTPS or S3; a dump, a base backup or a
    /// pgBackRest repository.
    pub source: Spanned<RawSource>,
    /// The throwaway target it is restored on.
    #[serde(default)]
    pub target: RawTarget,
    /// How it is restored.
    #[serde(default)]
    pub restore: RawRestore,
    #[serde(default)]
    pub checks: check::RawChecks,
    /// How the application logs in: the probes that claim what a role can do log in so.
    pub login: Option<Spanned<check::login::Config>>,
    /// The application to boot against the restored database.
    pub app: Option<Spanned<crate::app::Config>>,
    /// Migrations to apply after the restore (a pre-migration safety check).
    pub migrate: Option<Spanned<crate::migrate::Config>>,
    /// The recovery objectives the business set: `rto`, `rpo`, and how often it is drilled
    /// (`cadence`).
    pub objectives: Option<RawObjectives>,
    /// A negative control: a drill that must fail, in the phase it names (`fails_in`), to prove
    /// that drills catch a broken backup and that its failure reaches the alerts.
    pub control: Option<RawControl>,
    /// How far a physical backup recovers (its WAL archive's end by default).
    pub recovery: Option<Spanned<RawRecovery>>,
    /// Restore once, drill many: keep this drill's restore as a snapshot, or start from a clone
    /// of one (as `pgdrill run --snapshot`, `--reuse`).
    #[serde(default)]
    pub snapshot: RawSnapshot,
    /// A webhook told when a drill fails, and when it passes again (Slack, Mattermost, Teams,
    /// Discord, any receiver of JSON); its URL from the environment or a file, never written here.
    pub notify: Option<Spanned<crate::notify::RawNotify>>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Snapshot")]
pub(crate) struct RawSnapshot {
    /// Keep the restore as a verified snapshot when the drill passes (a container target's).
    #[serde(default)]
    pub keep: bool,
    /// Start from a private clone of the snapshot of the very same restore when there is one,
    /// instead of restoring.
    #[serde(default)]
    pub reuse: bool,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Objectives")]
pub(crate) struct RawObjectives {
    /// Recovery time objective, e.g. "45m".
    pub rto: Option<Spanned<String>>,
    /// Recovery point objective, e.g. "26h".
    pub rpo: Option<Spanned<String>>,
    /// How often the scenario is drilled, e.g. "1d": no drill ending for that long and a
    /// quarter more is an alert (metrics.prom's `pgdrill_objective_cadence_seconds`).
    pub cadence: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Control")]
pub(crate) struct RawControl {
    /// The phase the drill must fail in: `verify`, `preflight`, `restore`, `migrate`, `checks`
    /// or `app`. Failing anywhere else, or passing, breaks the control.
    pub fails_in: Spanned<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Source")]
pub(crate) struct RawSource {
    /// A backup file (or directory-format archive), relative to the scenario file.
    pub path: Option<Spanned<String>>,
    /// A folder whose newest backup is drilled.
    pub dir: Option<Spanned<String>>,
    /// Which files of the folder or prefix are backups, and where their date is.
    pub pattern: Option<Spanned<String>>,
    /// An http(s):// URL, inline or (when it carries a password or a signature) from an
    /// environment variable or a file.
    pub url: Option<Spanned<String>>,
    /// An environment variable holding the URL.
    pub url_env: Option<Spanned<String>>,
    /// A file holding the URL (a mounted secret), relative to the scenario file.
    pub url_file: Option<Spanned<String>>,
    /// A bearer token for the URL, from an environment variable or a file.
    pub token_env: Option<Spanned<String>>,
    /// A file holding that token, relative to the scenario file.
    pub token_file: Option<Spanned<String>>,
    /// `s3://bucket/key`, or `s3://bucket/prefix/` for the newest object under it.
    pub s3: Option<Spanned<String>>,
    /// The S3 region (default: as the `AWS_*` environment variables say).
    pub region: Option<String>,
    /// An S3-compatible endpoint (`http://127.0.0.1:9000`).
    pub endpoint: Option<String>,
    /// Environment variables holding the S3 keys (default: the standard AWS_* ones).
    pub access_key_env: Option<String>,
    /// The environment variable holding the S3 secret key (default `AWS_SECRET_ACCESS_KEY`).
    pub secret_key_env: Option<String>,
    /// Attempts after the first, for downloads.
    pub retries: Option<u32>,
    /// Longest wait for a server's answer or its next bytes.
    pub timeout: Option<Spanned<String>>,
    /// Longest the fetch phase may take: downloading or locating the backup (default 6h).
    pub fetch_timeout: Option<Spanned<String>>,
    /// Longest the verify phase may take: reading the backup whole (default 6h).
    pub verify_timeout: Option<Spanned<String>>,
    /// When a dump file is verified: by the restore's own read, the verdict waiting for it
    /// (`"one-pass"`; the default for a plain dump and an encrypted archive, and written, for
    /// every custom or tar archive too); or `"first"`, read whole before any of its SQL runs
    /// (the default for an archive the target's pg_restore reads itself).
    #[schemars(extend("enum" = ["one-pass", "first"]))]
    pub verify: Option<Spanned<String>>,
    /// A backup under this fraction of the previous one in the same location fails (0.1).
    pub min_size_ratio: Option<Spanned<f64>>,
    /// The sha256 the backup must have.
    pub sha256: Option<Spanned<String>>,
    /// Why this backup is trusted: only then is it restored on a target that is not a sandbox.
    pub trusted: Option<Spanned<String>>,
    /// A folder of archived WAL segments, for a base backup's recovery past its end.
    pub wal_archive: Option<Spanned<String>>,
    /// A pgBackRest repository's stanza (needed when it holds more than one).
    pub stanza: Option<Spanned<String>>,
    /// A pgBackRest backup set's label (default: the newest; for a target time, the newest
    /// that finished before it).
    pub set: Option<Spanned<String>>,
    /// An encrypted pgBackRest repository's passphrase (`repo1-cipher-pass`), from an
    /// environment variable or a file: never written in the scenario, never shown (several
    /// copies of it, each proven: `decrypt`).
    pub cipher_pass_env: Option<Spanned<String>>,
    /// A file holding that passphrase, relative to the scenario file.
    pub cipher_pass_file: Option<Spanned<String>>,
    /// The keys of an encrypted dump (age or OpenPGP), one table each:
    /// `decrypt = [{ identity_file = "escrow-a.key" }, { identity_env = "ESCROW_B" }]`. The dump is
    /// decrypted as it is read (never written in the clear) with the first, and verify proves
    /// that every key listed opens it, naming any that does not by its public identity. An
    /// encrypted pgBackRest repository's passphrases likewise (`passphrase_env`,
    /// `passphrase_file`: the copies kept, in escrow say): the drill reads it with the first, and
    /// each must decrypt its `backup.info`, `archive.info` and the set's manifest.
    pub decrypt: Option<Vec<Spanned<RawKey>>>,
    /// A plain-format base backup's tablespaces: each tablespace's OID (its link in
    /// `pg_tblspc`) and the folder its backup is in (where `--tablespace-mapping` put it),
    /// relative to the scenario file; for a chain of incremental backups, each plain member's as
    /// `"<member>/<oid>"` (`"incr2/16384" = "backups/incr2-ts"`). A tar-format backup carries
    /// them as `<oid>.tar`, a pgBackRest set in its repository.
    pub tablespaces: Option<Spanned<std::collections::BTreeMap<String, String>>>,
    /// Changes of the backup's kind since the scenario's previous drill that were intended, each
    /// with its reason: `changed = [{ what = "major", to = "17", reason = "upgraded on
    /// 2026-11-01" }]`. Without one, a backup of another format, database or major, one that no
    /// longer holds its data or its schema, or one no longer encrypted fails the drill's verify.
    pub changed: Option<Vec<Spanned<RawChange>>>,
    /// Drill a backup drawn from the older backups of the folder (`dir`) or S3 prefix instead of
    /// its newest:
    /// `sample = { within = "30d" }` draws one of those at most 30 days older than the newest,
    /// by a seed derived from the scenario, the drill's UTC day and the backups listed, and
    /// writes the plan of the draw (`plan.json`) for anyone to re-derive. `run --sample` does
    /// the same for one run.
    pub sample: Option<Spanned<RawSample>>,
}

/// `[source] sample`: the window a sampled backup is drawn from.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Sample")]
pub(crate) struct RawSample {
    /// How much older than the newest backup a sampled one may be (`"30d"`, `"2w"`).
    pub within: Spanned<String>,
}

/// A change of the backup's kind that the scenario intended.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "IntendedChange")]
pub(crate) struct RawChange {
    /// Which part of the backup's kind changed.
    #[schemars(extend("enum" = ["format", "content", "database", "major", "encryption"]))]
    pub what: Spanned<String>,
    /// The value it changed to (default: any): a format (`custom`, `directory`, `tar`, `plain`,
    /// `pg_dumpall`, `basebackup-tar`, `basebackup-plain`, `chain`, `pgbackrest`, `barman`,
    /// `barman-cloud`), a content (`full`, `schema-only`, `data-only`), a database's name, a
    /// major (`17`), an encryption (`none`, `age`, `openpgp`, `pgbackrest`).
    pub to: Option<Spanned<RawChangeTo>>,
    /// Why it changed, for the reports.
    pub reason: Spanned<String>,
}

/// `changed`'s `to`: a name or a major's number.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
pub(crate) enum RawChangeTo {
    Name(String),
    Number(i64),
}

/// One key of an encrypted dump: exactly one of the four, the secret always in a file or an
/// environment variable, never in the scenario.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "DecryptionKey")]
pub(crate) struct RawKey {
    /// A file (relative to the scenario file) holding an age identity (`AGE-SECRET-KEY-1...`, as
    /// `age-keygen` writes it; several lines are one key; or that file encrypted with `age -p`) or
    /// an OpenPGP secret key (`gpg --armor --export-secret-keys`); one protected by a passphrase
    /// takes it as `key_passphrase_env` or `key_passphrase_file`.
    pub identity_file: Option<Spanned<String>>,
    /// An environment variable holding such a key.
    pub identity_env: Option<Spanned<String>>,
    /// A file holding a passphrase: age's (`age -p`, scrypt), OpenPGP's (`gpg --symmetric`) or
    /// an encrypted pgBackRest repository's (`repo1-cipher-pass`).
    pub passphrase_file: Option<Spanned<String>>,
    /// An environment variable holding such a passphrase.
    pub passphrase_env: Option<Spanned<String>>,
    /// With `identity_file` or `identity_env`: a file holding the passphrase the key itself is
    /// protected with (an OpenPGP secret key exported with its passphrase, as keys are kept in
    /// escrow; an age identity file encrypted with `age -p`).
    pub key_passphrase_file: Option<Spanned<String>>,
    /// An environment variable holding that passphrase.
    pub key_passphrase_env: Option<Spanned<String>>,
}

/// How far a physical backup recovers: one target at most.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Recovery")]
pub(crate) struct RawRecovery {
    /// `recovery_target_time`: a timestamp with its offset.
    pub target_time: Option<Spanned<String>>,
    /// `recovery_target_lsn`: a WAL location (`0/3000060`).
    pub target_lsn: Option<Spanned<String>>,
    /// `recovery_target_xid`: a transaction id.
    pub target_xid: Option<Spanned<u64>>,
    /// `recovery_target_name`: a restore point made by `pg_create_restore_point`.
    pub target_name: Option<Spanned<String>>,
    /// `"immediate"`: to the end of the backup, as soon as it is consistent.
    #[schemars(extend("enum" = ["immediate"]))]
    pub target: Option<Spanned<String>>,
    /// `recovery_target_inclusive`: stop just after the target (default) or just before it.
    pub inclusive: Option<bool>,
    /// Longest the recovery may take (default 30m).
    pub timeout: Option<Spanned<String>>,
    /// `recovery_target_timeline`: `"latest"` (default: the newest the archive's history files
    /// lead to), `"current"` (the backup's own) or a timeline's number.
    pub timeline: Option<Spanned<RawTimeline>>,
    /// How much archived WAL the target's `pg_wal` holds ahead of replay (default `256MB`):
    /// segments are given as recovery reads them and removed once replayed. `"all"` copies
    /// the whole archive before the server starts.
    pub wal_window: Option<Spanned<String>>,
}

/// `[recovery] timeline`: a name or a number.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
pub(crate) enum RawTimeline {
    #[schemars(extend("enum" = ["latest", "current"]))]
    Name(String),
    Number(i64),
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Target")]
pub(crate) struct RawTarget {
    /// Where the backup is restored: a sandboxed container of the backup's major (default), an
    /// existing server, local PostgreSQL binaries, or the server container beside pgdrill's in
    /// a pod (`pod`: pgdrill runs in its image there; see docs/src/guide/pod.md).
    #[schemars(extend("enum" = ["container", "server", "local", "pod"]))]
    pub kind: Option<Spanned<String>>,
    /// kind = "container": an image of your own, pinned to a tag (not `latest`), instead of the
    /// project's (ci/image/Dockerfile); not with `version`.
    pub image: Option<Spanned<String>>,
    /// kind = "container": the PostgreSQL major of the project's image, instead of the backup's.
    pub version: Option<Spanned<i64>>,
    /// The database the checks run on, and a dump is restored into unless it creates its own
    /// (default `pgdrill`; on a kind = "server" target, with `_` and the start of the drill's
    /// id added). Not `postgres`, `template0` or `template1`.
    pub database: Option<Spanned<String>>,
    /// Longest wait for the target's server to start and take connections (default 60s); not
    /// for kind = "server".
    pub startup_timeout: Option<Spanned<String>>,
    /// Longest the provision phase may take, building the image the first time included
    /// (default 1h).
    pub provision_timeout: Option<Spanned<String>>,
    /// kind = "server": the admin connection string, inline or from an environment variable
    /// or a file.
    pub url: Option<Spanned<String>>,
    /// kind = "server": an environment variable holding the admin connection string.
    pub url_env: Option<Spanned<String>>,
    /// kind = "server": a file holding the admin connection string (a mounted secret), relative
    /// to the scenario file.
    pub url_file: Option<Spanned<String>>,
    /// kind = "local" (or "server", for pg_restore): a folder of PostgreSQL binaries.
    pub bin_dir: Option<Spanned<String>>,
    /// kind = "container" or "local": the sandbox's memory (`8GB`) and processes.
    pub memory: Option<Spanned<String>>,
    /// kind = "container", "local" or "pod": the most processes the sandbox may run, 64 to
    /// 1000000 (default 512; with `--jobs`, the drill's share, at most that).
    pub processes: Option<Spanned<i64>>,
    /// kind = "container" or "local": the most disk the target's data may take (`20GB`); the
    /// drill fails when it grows past it. Default: the free space of the filesystem holding it
    /// (TMPDIR's) less a reserve for the host of a tenth of that filesystem, 1GB to 4GB.
    pub disk: Option<Spanned<String>>,
    /// Server settings passed as `-c name=value`, over pgdrill's throwaway tuning.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, serde_json::Value>")]
    pub settings: BTreeMap<String, Spanned<toml::Value>>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Restore")]
pub(crate) struct RawRestore {
    /// Roles to create before the restore, for dumps that do not create their own.
    #[serde(default)]
    pub roles: Vec<Spanned<RawRole>>,
    /// A `pg_dumpall --globals-only` file applied before the dump (roles, tablespaces).
    pub globals: Option<Spanned<String>>,
    /// Longest the restore (or a base backup's recovery) may take (default 12h).
    pub timeout: Option<Spanned<String>>,
    /// Longest the preflight phase may take (default 2h).
    pub preflight_timeout: Option<Spanned<String>>,
    /// Parallel jobs for pg_restore (default: the machine's cores, at most 8).
    pub jobs: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Role")]
pub(crate) struct RawRole {
    /// The role's name (not `pg_...`); a role that already exists is left as it is.
    pub name: String,
    /// Whether it can log in: `LOGIN` (default) or, with `false`, `NOLOGIN`.
    pub login: Option<bool>,
    /// Roles it is made a member of (`IN ROLE`): ones that exist, or that come before it here.
    #[serde(default)]
    pub member_of: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> Result<RawScenario, String> {
        toml::from_str(text).map_err(|e| e.message().to_owned())
    }

    /// The least a scenario says: its source. Everything else takes its default, and the values
    /// checked after parsing keep where they were written.
    #[test]
    fn a_scenario_needs_only_its_source_and_keeps_where_values_were_written() {
        let text = "name = \"orders\"\n[source]\npath = \"orders.sql\"\n";
        let scenario = raw(text).unwrap();
        let name = scenario.name.unwrap();
        assert_eq!((name.get_ref().as_str(), &text[name.span()]), ("orders", "\"orders\""));
        let path = scenario.source.into_inner().path.unwrap();
        assert_eq!(&text[path.span()], "\"orders.sql\"");
        assert!(scenario.tags.is_empty() && scenario.target.kind.is_none() && scenario.restore.roles.is_empty());
        assert!(!scenario.snapshot.keep && !scenario.snapshot.reuse);
        assert!(scenario.app.is_none() && scenario.migrate.is_none() && scenario.recovery.is_none());
        assert_eq!(raw("name = \"orders\"").unwrap_err(), "missing field `source`");
    }

    /// A misspelt key is an error at every level, never a setting silently ignored.
    #[test]
    fn unknown_keys_are_refused_at_every_level() {
        let with = |extra: &str| raw(&format!("[source]\npath = \"b.sql\"\n{extra}")).unwrap_err();
        assert!(with("[sources]\npath = \"x\"").starts_with("unknown field `sources`"));
        assert!(with("paht = \"x\"").starts_with("unknown field `paht`"));
        assert!(with("[target]\nkinds = \"local\"").starts_with("unknown field `kinds`"));
        assert!(with("[[restore.roles]]\nname = \"app\"\nlogn = true").starts_with("unknown field `logn`"));
        assert!(with("[recovery]\ntarget_lsm = \"0/3000060\"").starts_with("unknown field `target_lsm`"));
        assert!(with("[snapshot]\nkeeps = true").starts_with("unknown field `keeps`"));
        assert!(with("[objectives]\nrtp = \"1h\"").starts_with("unknown field `rtp`"));
        assert!(with("decrypt = [{ identity = \"k\" }]").starts_with("unknown field `identity`"));
    }

    #[test]
    fn an_intended_change_is_to_a_name_or_a_major() {
        let text = "[source]\npath = \"b.sql\"\nchanged = [\
                    { what = \"major\", to = 17, reason = \"upgraded\" },\
                    { what = \"format\", to = \"directory\", reason = \"parallel dumps\" },\
                    { what = \"database\", reason = \"renamed\" }]\n";
        let source = raw(text).unwrap().source.into_inner();
        let changed = source.changed.unwrap();
        let to: Vec<Option<String>> = changed
            .iter()
            .map(|c| {
                c.get_ref().to.as_ref().map(|to| match to.get_ref() {
                    RawChangeTo::Name(name) => format!("name {name}"),
                    RawChangeTo::Number(n) => format!("number {n}"),
                })
            })
            .collect();
        assert_eq!(to, [Some("number 17".to_owned()), Some("name directory".to_owned()), None]);
        assert_eq!(changed[2].get_ref().reason.get_ref(), "renamed");
        assert!(
            raw("[source]\npath = \"b\"\nchanged = [{ what = \"major\", to = 17 }]").unwrap_err().contains("reason")
        );
    }

    #[test]
    fn a_recovery_timeline_is_a_name_or_a_number() {
        let recovery = |line: &str| {
            let text = format!("[source]\npath = \"b\"\n[recovery]\n{line}\n");
            raw(&text).map(|r| r.recovery.unwrap().into_inner())
        };
        let latest = recovery("timeline = \"latest\"").unwrap();
        assert!(matches!(latest.timeline.unwrap().get_ref(), RawTimeline::Name(n) if n == "latest"));
        let third = recovery("timeline = 3\ntarget_xid = 1234\ninclusive = false").unwrap();
        assert!(matches!(third.timeline.unwrap().get_ref(), RawTimeline::Number(3)));
        assert_eq!(third.target_xid.map(|x| *x.get_ref()), Some(1234));
        assert_eq!(third.inclusive, Some(false));
        assert!(recovery("timeline = true").is_err());
    }

    /// `[target] settings` take any TOML value (they become `-c name=value`); roles default to
    /// no membership.
    #[test]
    fn the_targets_settings_and_the_restores_roles_read_as_written() {
        let text = "[source]\npath = \"b\"\n[target]\nkind = \"container\"\nversion = 17\n\
                    settings = { work_mem = \"64MB\", max_connections = 50, jit = false }\n\
                    [[restore.roles]]\nname = \"app\"\n[[restore.roles]]\nname = \"auditor\"\nlogin = false\nmember_of = [\"app\"]\n";
        let scenario = raw(text).unwrap();
        let settings = &scenario.target.settings;
        assert_eq!(settings["work_mem"].get_ref().as_str(), Some("64MB"));
        assert_eq!(settings["max_connections"].get_ref().as_integer(), Some(50));
        assert_eq!(settings["jit"].get_ref().as_bool(), Some(false));
        assert_eq!(scenario.target.version.map(|v| *v.get_ref()), Some(17));
        let roles: Vec<(String, Option<bool>, Vec<String>)> = scenario
            .restore
            .roles
            .into_iter()
            .map(|r| r.into_inner())
            .map(|r| (r.name, r.login, r.member_of))
            .collect();
        assert_eq!(
            roles,
            [("app".to_owned(), None, Vec::new()), ("auditor".to_owned(), Some(false), vec!["app".to_owned()])]
        );
    }
}

//! Scenario files: which backup to drill, on which throwaway target, with which checks.
//!
//! ```toml
//! name = "plur"                          # default: the file's name
//! description = "PLUR Enterprise nightly dump"
//! tags = ["quarterly", "roles"]
//!
//! [source]
//! path = "../fixtures/backups/plur.sql.gz"   # relative to this file
//! # sha256 = "..."                           # the backup must have this digest
//! # trusted = "why"                          # only then on a target that is not a sandbox
//!
//! [target]                               # a throwaway container (the default kind)
//! database = "plur_enterprise"           # default "pgdrill"
//! # image = "pgdrill/postgres:17-r1"     # default: the project's image
//! # startup_timeout = "60s"
//! # settings = { work_mem = "64MB" }     # over pgdrill's throwaway tuning
//! # memory = "8GB"                       # the sandbox's limit (default: 3/4 of the machine's)
//! # processes = 512                      # the sandbox's limit
//!
//! [[restore.roles]]                      # created before the restore
//! name = "plur_app"
//!
//! [checks.extensions]
//! vector = "0.8.0"
//!
//! [[checks.schema_version]]
//! expected = "010"
//!
//! [checks.row_counts]
//! expect_from_dump = true
//! tables = { "public.users" = 12 }
//! ```
//!
//! Loading is parse, then resolve: the raw form (`raw`) mirrors the file and rejects unknown
//! keys; resolving fills defaults and checks values. Every error names `file:line:col`.

mod deadlines;
mod discover;
mod error;
mod files;
pub(crate) mod raw;
mod recovery;
mod resolve;
mod schema;
mod source;
mod target;

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub(crate) use crate::provision::spec::{ContainerSpec, LocalSpec, PodSpec, TargetKind, TargetSpec};
pub use crate::provision::spec::{IMAGE_MAJORS, default_image, project_image};
pub(crate) use deadlines::Deadlines;
pub use discover::{discover, selected};
pub use error::{InvalidScenario, ScenarioError};
pub(crate) use files::Role as FileRole;
pub(crate) use recovery::{RecoverySpec, RecoveryTarget};
pub use schema::{SCHEMA_URL, json_schema};

use crate::field::FieldError;
use raw::RawScenario;

use crate::check::CheckSpec;
use crate::source::{SourceLocation, SourceSpec};
use resolve::resolve;

/// A resolved scenario, ready to drill.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub(crate) name: String,
    pub(crate) description: Option<String>,
    pub(crate) tags: Vec<String>,
    /// The scenario file, as given.
    pub(crate) file: PathBuf,
    /// sha256 of the scenario file's bytes, recorded in the reports.
    pub(crate) file_sha256: String,
    pub(crate) source: SourceSpec,
    pub(crate) target: TargetSpec,
    pub(crate) restore: RestoreSpec,
    pub(crate) checks: Vec<CheckSpec>,
    /// How the application logs in (`[login]`, its defaults from `[app]`).
    pub(crate) login: crate::check::login::Spec,
    /// The application booted against the restored database.
    pub(crate) app: Option<crate::app::Spec>,
    /// Migrations applied after the restore.
    pub(crate) migrate: Option<crate::migrate::Spec>,
    /// The recovery objectives each drill is judged against.
    pub(crate) objectives: crate::objectives::Objectives,
    /// A negative control: the phase its drill must fail in (`[control] fails_in`).
    pub(crate) control: Option<crate::outcome::Phase>,
    /// How far a physical backup recovers.
    pub(crate) recovery: RecoverySpec,
    /// How long each phase may take.
    pub(crate) deadlines: Deadlines,
    /// Whether the drill keeps its restore as a snapshot, or starts from a clone of one.
    pub(crate) snapshot: SnapshotSpec,
    /// The webhook told about the drill (`[notify]`).
    pub(crate) notify: Option<crate::notify::Spec>,
    /// The baseline file the checks compare with, when the scenario names one.
    pub(crate) baseline_file: Option<PathBuf>,
}

/// The scenario's `[snapshot]`: what `--snapshot` and `--reuse` ask on the command line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct SnapshotSpec {
    pub keep: bool,
    pub reuse: bool,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct RestoreSpec {
    pub roles: Vec<RoleSpec>,
    /// A `pg_dumpall --globals-only` file applied before the dump.
    pub globals: Option<PathBuf>,
    /// Parallel jobs for pg_restore (custom and directory archives).
    pub jobs: usize,
    /// Create the roles the dump names that neither the scenario nor its globals create (as
    /// `LOGIN` roles, like `[[restore.roles]]`), instead of failing preflight: `pgdrill init`,
    /// which learns them from the restore. Never set by a scenario file.
    pub create_missing_roles: bool,
}

/// A role created on the target before the restore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RoleSpec {
    pub name: String,
    pub login: bool,
    pub member_of: Vec<String>,
}

impl Scenario {
    /// Its name, which names its reports' folder.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What it drills, in a sentence, when it says.
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// Its tags (`quarterly`, `gate`).
    pub fn tags(&self) -> &[String] {
        &self.tags
    }

    /// The file it was read from.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// The kinds of check it runs, in its order, and `api` when its application is called.
    pub fn kinds(&self) -> Vec<crate::outcome::CheckKind> {
        let mut kinds: Vec<_> = self.checks.iter().map(|c| c.kind()).collect();
        if self.app.as_ref().is_some_and(|app| !app.requests.is_empty()) {
            kinds.push(crate::outcome::CheckKind::Api);
        }
        kinds
    }

    /// Reads, parses and resolves a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        Self::load_with(path, false)
    }

    /// Loads a scenario to capture a baseline from its restore: its checks (and the baseline
    /// they may compare with, which may not exist yet) are left out.
    pub fn load_without_checks(path: &Path) -> Result<Scenario, ScenarioError> {
        Self::load_with(path, true)
    }

    fn load_with(path: &Path, without_checks: bool) -> Result<Scenario, ScenarioError> {
        let bytes = std::fs::read(path).map_err(|source| ScenarioError::Read { path: path.to_owned(), source })?;
        Self::parse_with(bytes, path, without_checks)
    }

    /// Parses and resolves a scenario's text as if read from `path` (relative paths in it start
    /// at its folder; files it names are not read until the drill needs them).
    pub fn parse(bytes: &[u8], path: &Path) -> Result<Scenario, ScenarioError> {
        Self::parse_with(bytes.to_vec(), path, false)
    }

    fn parse_with(bytes: Vec<u8>, path: &Path, without_checks: bool) -> Result<Scenario, ScenarioError> {
        let shown = path.display().to_string();
        let text = String::from_utf8(bytes.clone()).map_err(|e| {
            let at = e.utf8_error().valid_up_to();
            ScenarioError::invalid(
                &shown,
                &String::from_utf8_lossy(&bytes),
                FieldError::new(at..at + 1, "the file is not valid UTF-8"),
            )
        })?;
        let mut raw: RawScenario = toml::from_str(&text).map_err(|e| {
            let error = FieldError { span: e.span(), message: e.message().trim_end().to_owned() };
            ScenarioError::invalid(&shown, &text, error)
        })?;
        if without_checks {
            raw.baseline = None;
            raw.checks = Default::default();
            raw.app = None;
            raw.migrate = None;
            raw.objectives = None;
        }
        let base = path.parent().unwrap_or(Path::new("."));
        let file_sha256 = hex::encode(Sha256::digest(text.as_bytes()));
        // A webhook URL written where it must not be is a secret: the snippet an error shows
        // masks it (byte for byte, so that lines and columns stay right).
        let secrets: Vec<_> =
            raw.notify.as_ref().and_then(|n| n.get_ref().url.as_ref()).map(|u| u.span()).into_iter().collect();
        resolve(raw, path, base, file_sha256).map_err(|e| ScenarioError::invalid(&shown, &masked(&text, &secrets), e))
    }

    /// The extensions the scenario's `extensions` check requires.
    pub fn required_extensions(&self) -> Vec<String> {
        self.checks
            .iter()
            .filter_map(|c| match c {
                CheckSpec::Extensions(spec) => Some(spec.required.iter().map(|(n, _)| n.clone())),
                _ => None,
            })
            .flatten()
            .collect()
    }

    /// Drills `backup` instead of the scenario's own source (for a file at hand, or a broken
    /// variant of the usual backup).
    pub fn override_backup(&mut self, backup: &Path) {
        self.source = SourceSpec {
            location: SourceLocation::File(backup.to_owned()),
            expected_sha256: None,
            given: true,
            // One file: nothing to draw from.
            sample: None,
            ..self.source.clone()
        };
    }

    /// Draws the drill's backup from a window of its folder's (or S3 prefix's) older backups
    /// (`run --sample`, in place of `[source] sample`), by the operator's seed when `seed` is one
    /// (`--seed`); `day` is the drill's UTC day.
    pub(crate) fn sample(
        &mut self,
        within: Option<&(String, std::time::Duration)>,
        seed: Option<&str>,
        day: time::Date,
    ) -> Result<(), ScenarioError> {
        let refused = |why| ScenarioError::Sample { path: self.file.clone(), why };
        if let Some(within) = within {
            if !crate::source::sample::samples(&self.source.location) {
                return Err(refused(crate::source::sample::NOT_A_FOLDER));
            }
            self.source.sample = Some(crate::source::sample::SampleSpec {
                within: within.clone(),
                seed: None,
                scenario: self.name.clone(),
                day,
            });
        }
        match (&mut self.source.sample, seed) {
            (Some(sample), seed) => {
                sample.day = day;
                sample.seed = seed.map(str::to_owned).or(sample.seed.take());
            }
            (None, Some(_)) => {
                return Err(refused(
                    "`--seed` is the seed of a sampled drill: give `--sample within=DURATION` or `[source] sample`",
                ));
            }
            (None, None) => {}
        }
        Ok(())
    }

    /// Which set of a pgBackRest repository the drill restores: the one `[source] set` names,
    /// else the newest that finished before a `[recovery] target_time`, else the newest.
    pub(crate) fn set_choice(&self) -> crate::source::physical::pgbackrest::Choice<'_> {
        crate::source::physical::pgbackrest::Choice {
            stanza: self.source.stanza.as_deref(),
            set: self.source.set.as_deref(),
            before: match self.recovery.target {
                RecoveryTarget::Time(at) => Some(at),
                _ => None,
            },
        }
    }

    /// Whether `tag` is one of its `tags`, exactly as written.
    pub fn has_tag(&self, tag: &str) -> bool {
        self.tags.iter().any(|t| t == tag)
    }
}

/// `text` with the characters of each span replaced by as many bytes of `*`.
fn masked(text: &str, spans: &[std::ops::Range<usize>]) -> String {
    text.char_indices()
        .map(|(i, c)| if spans.iter().any(|s| s.contains(&i)) { "*".repeat(c.len_utf8()) } else { c.to_string() })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field::normalize;
    use crate::secret::SecretSource;
    use std::time::Duration;

    #[expect(clippy::disallowed_methods, reason = "a test's own small folder")]
    fn load_text(text: &str) -> Result<Scenario, ScenarioError> {
        let dir = std::env::temp_dir().join(format!("pgdrill-scenario-{}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("demo.toml");
        std::fs::write(&path, text).unwrap();
        let result = Scenario::load(&path);
        std::fs::remove_dir_all(&dir).ok();
        result
    }

    fn error_of(text: &str) -> InvalidScenario {
        match load_text(text) {
            Err(ScenarioError::Invalid(e)) => *e,
            other => panic!("expected an invalid scenario, got {other:?}"),
        }
    }

    #[test]
    fn minimal_scenario_gets_defaults() {
        let s = load_text("[source]\npath = \"b.sql.gz\"\n").unwrap();
        assert_eq!(s.name, "demo");
        assert_eq!(s.target.database, "pgdrill");
        let TargetKind::Container(c) = &s.target.kind else { panic!("a container target") };
        assert_eq!((c.image.as_deref(), c.version), (None, None));
        assert_eq!(c.startup_timeout, Duration::from_secs(60));
        assert!(s.checks.is_empty());
        assert_eq!(s.file_sha256.len(), 64);
    }

    #[test]
    fn the_objectives_are_spans_of_time_the_cadence_among_them() {
        let s = load_text("[source]\npath = \"b\"\n[objectives]\nrto = \"45m\"\ncadence = \"7d\"\n").unwrap();
        assert_eq!(s.objectives.rto, Some(std::time::Duration::from_secs(45 * 60)));
        assert_eq!(s.objectives.cadence, Some(std::time::Duration::from_secs(7 * 86400)));
        assert!(!s.objectives.is_empty());
        let e = error_of("[source]\npath = \"b\"\n[objectives]\ncadence = \"weekly\"\n");
        assert!(e.to_string().contains("weekly"), "{e}");
    }

    #[test]
    fn a_recovery_target_is_a_time_with_its_offset_or_immediate() {
        let at =
            |text: &str| recovery::parse_target_time(text).map(|t| t.unix_timestamp_nanos()).map_err(|e| e.to_string());
        let expected = time::macros::datetime!(2026-11-22 03:00:00.5 UTC).unix_timestamp_nanos();
        assert_eq!(at("2026-11-22T03:00:00.5Z"), Ok(expected));
        assert_eq!(at("2026-11-22 03:00:00.500000+00"), Ok(expected), "as PostgreSQL prints it");
        assert_eq!(at("2026-11-22 04:00:00.5+01:00"), Ok(expected));
        assert!(at("2026-11-22 03:00:00").is_err(), "no offset: which zone?");
        let s = load_text("[source]\npath = \"b\"\n[recovery]\ntarget = \"immediate\"\n").unwrap();
        assert_eq!(s.recovery.target, RecoveryTarget::Immediate);
        let e = error_of("[source]\npath = \"b\"\n[recovery]\ntarget = \"latest\"\n");
        assert!(e.to_string().contains("unknown recovery target `latest`"), "{e}");
        let e = error_of(
            "[source]\npath = \"b\"\n[recovery]\ntarget = \"immediate\"\ntarget_time = \"2026-11-22T03:00:00Z\"\n",
        );
        assert!(e.to_string().contains("not both"), "{e}");
    }

    #[test]
    fn a_recovery_target_may_be_an_lsn_a_transaction_or_a_restore_point() {
        let target =
            |toml: &str| load_text(&format!("[source]\npath = \"b\"\n[recovery]\n{toml}\n")).map(|s| s.recovery);
        let lsn = target("target_lsn = \"0/3000060\"\ninclusive = false").unwrap();
        assert_eq!((lsn.target.clone(), lsn.inclusive), (RecoveryTarget::Lsn(0x300_0060), false));
        assert_eq!(lsn.target.setting(), Some(("recovery_target_lsn", "0/3000060".to_owned())));
        assert_eq!(target("target_xid = 771").unwrap().target, RecoveryTarget::Xid(771));
        let name = target("target_name = \"before-migration\"").unwrap();
        assert_eq!(name.target.to_string(), "recovery_target_name before-migration");
        for (toml, message) in [
            ("target_lsn = \"3000060\"", "is not a WAL location"),
            ("target_xid = 2", "is not a transaction id"),
            ("target_name = \"\"", "1 to 63 characters"),
            ("target_lsn = \"0/1\"\ntarget_xid = 800", "give one recovery target"),
            ("target = \"immediate\"\ninclusive = true", "`inclusive` applies to"),
        ] {
            let e = error_of(&format!("[source]\npath = \"b\"\n[recovery]\n{toml}\n"));
            assert!(e.to_string().contains(message), "{toml}: {e}");
        }
    }

    #[test]
    fn a_container_target_may_pin_a_major_pgdrill_builds() {
        let s = load_text("[source]\npath = \"b.sql.gz\"\n[target]\nversion = 18\n").unwrap();
        let TargetKind::Container(c) = &s.target.kind else { panic!("a container target") };
        assert_eq!(c.version, Some(18));
        let e = error_of("[source]\npath = \"b.sql.gz\"\n[target]\nversion = 16\n");
        assert!(e.to_string().contains("pgdrill builds images of PostgreSQL 15, 17 and 18 only, not 16"), "{e}");
        let e = error_of("[source]\npath = \"b.sql.gz\"\n[target]\nversion = 18\nimage = \"x/y:18-a\"\n");
        assert!(e.to_string().contains("give `image` or `version`, not both"), "{e}");
        let e = error_of("[source]\npath = \"b.sql.gz\"\n[target]\nkind = \"local\"\nversion = 18\n");
        assert!(e.to_string().contains("`version` is for container targets"), "{e}");
    }

    #[test]
    fn a_target_asks_the_budget_for_what_it_sets_and_takes_its_share_of_the_rest() {
        use crate::budget::{Amounts, Ask, Share};
        let mut s = load_text("[source]\npath = \"b\"\n[target]\nmemory = \"2GB\"\ndisk = \"1GB\"\n").unwrap();
        assert_eq!(s.target.ask(), Ask { memory: Some(2 << 30), disk: Some(1 << 30), processes: None });
        let share = Share::of(Amounts { memory: 8 << 30, disk: 8 << 30, processes: 4096 }, 2, 512);
        s.target.set_share(share);
        let TargetKind::Container(c) = &s.target.kind else { panic!("a container target") };
        assert_eq!(c.share, Some(share));
        let server = load_text("[source]\npath = \"b\"\n[target]\nkind = \"server\"\nurl_env = \"U\"\n").unwrap();
        assert_eq!(server.target.ask(), Ask::NOTHING, "a server's database takes nothing of this machine");
    }

    #[test]
    fn every_phase_has_a_deadline_and_the_target_a_disk_limit() {
        let s = load_text("[source]\npath = \"b\"\n").unwrap();
        assert_eq!(s.deadlines, Deadlines::default());
        assert_eq!(s.deadlines.restore.limit, Duration::from_secs(12 * 3600));
        assert_eq!(s.deadlines.checks.limit, Duration::from_secs(2 * 3600));
        let TargetKind::Container(c) = &s.target.kind else { panic!("a container target") };
        assert_eq!(c.disk, None, "the default is decided where the data lives");
        let s = load_text(
            "[source]\npath = \"b\"\nfetch_timeout = \"5m\"\nverify_timeout = \"6m\"\n\
             [target]\nprovision_timeout = \"7m\"\ndisk = \"20GB\"\n\
             [restore]\npreflight_timeout = \"8m\"\ntimeout = \"9m\"\n\
             [checks]\ntimeout = \"10m\"\n[checks.row_counts.tables]\nt = 1\n",
        )
        .unwrap();
        let d = s.deadlines;
        let minutes: Vec<u64> = [d.fetch, d.verify, d.provision, d.preflight, d.restore, d.checks]
            .iter()
            .map(|d| d.limit.as_secs() / 60)
            .collect();
        assert_eq!(minutes, [5, 6, 7, 8, 9, 10]);
        assert_eq!(s.checks.len(), 1, "`timeout` is not a check kind");
        let TargetKind::Container(c) = &s.target.kind else { panic!("a container target") };
        assert_eq!(c.disk.as_ref().map(|d| (d.bytes, d.shown.as_str())), Some((20 << 30, "20GB")));
        let local = load_text("[source]\npath = \"b\"\n[target]\nkind = \"local\"\ndisk = \"64MB\"\n").unwrap();
        let TargetKind::Local(l) = &local.target.kind else { panic!("a local target") };
        assert_eq!(l.disk.as_ref().map(|d| d.bytes), Some(64 << 20));
        for (toml, message) in [
            ("[target]\ndisk = \"10MB\"", "is not a size of at least 64MB"),
            ("[target]\ndisk = \"much\"", "is not a size of at least 64MB"),
            (
                "[target]\nkind = \"server\"\nurl_env = \"U\"\ndisk = \"1GB\"",
                "`disk` is for container, local and pod targets",
            ),
            ("[restore]\ntimeout = \"forever\"", "is not a duration"),
            ("[checks]\ntimeout = \"0s\"", "`[checks] timeout` must be longer than 0s"),
        ] {
            let e = error_of(&format!("[source]\npath = \"b\"\n{toml}\n"));
            assert!(e.to_string().contains(message), "{toml}: {e}");
        }
    }

    #[test]
    fn source_secrets_come_from_the_environment_or_a_file() {
        let s = load_text("[source]\nurl_env = \"BACKUP_URL\"\ntoken_file = \"secrets/token\"\n").unwrap();
        let SourceLocation::Url(http) = &s.source.location else { panic!("a URL source") };
        assert_eq!(http.url, SecretSource::Env("BACKUP_URL".into()));
        assert!(matches!(&http.token, Some(SecretSource::File(p)) if p.ends_with("secrets/token")));
        let e = error_of("[source]\nurl = \"https://h/b.sql.gz\"\nurl_file = \"u\"\n");
        assert!(e.message.contains("`url` and `url_file` give the same url twice"), "{e}");
        let e = error_of("[source]\npath = \"b.sql.gz\"\ntoken_env = \"T\"\n");
        assert!(e.message.contains("a token is only sent to an http(s):// source"), "{e}");
        let e = error_of("[source]\nurl = \"ftp://h/b.sql.gz\"\n");
        assert!(e.message.contains("is not an http(s):// URL"), "{e}");
    }

    #[test]
    fn unknown_key_names_line_and_column() {
        let e = error_of("[source]\npath = \"b.sql\"\n\n[target]\n  imaeg = \"x:1\"\n");
        assert_eq!((e.line, e.column), (5, 3), "{e}");
        assert!(e.message.contains("unknown field `imaeg`"), "{e}");
        assert!(e.to_string().ends_with(&format!(":5:3: {}", e.message)));
    }

    #[test]
    fn wrong_type_names_line_and_column() {
        let e = error_of("[source]\npath = 42\n");
        assert_eq!((e.line, e.column), (2, 8), "{e}");
        assert!(e.message.contains("invalid type"), "{e}");
    }

    #[test]
    fn missing_source_is_an_error() {
        let e = error_of("name = \"x\"\n");
        assert!(e.message.contains("missing field `source`"), "{e}");
        assert_eq!(e.line, 1);
    }

    #[test]
    fn unknown_check_kind_is_an_error() {
        let e = error_of("[source]\npath = \"b\"\n[checks.row_cuonts]\ntables = {}\n");
        assert!(e.message.contains("unknown field `row_cuonts`"), "{e}");
        assert_eq!(e.line, 3);
    }

    #[test]
    fn bad_values_point_at_themselves() {
        let e = error_of("[source]\npath = \"b\"\n[target]\nstartup_timeout = \"soon\"\n");
        assert_eq!((e.line, e.column), (4, 19), "{e}");
        let e = error_of("[source]\npath = \"b\"\n[target]\nimage = \"postgres:latest\"\n");
        assert!(e.message.contains("no pinned tag"), "{e}");
        let e = error_of("[source]\npath = \"b\"\n\n[[checks.row_counts]]\ntolerance = 1\n");
        assert_eq!(e.line, 4, "{e}");
        assert!(e.message.contains("needs `tables`"), "{e}");
        let e = error_of("[source]\npath = \"b\"\n[checks.row_counts]\ntolerance = \"much\"\ntables = { t = 1 }\n");
        assert_eq!((e.line, e.column), (4, 13), "{e}");
    }

    #[test]
    fn paths_are_normalized() {
        assert_eq!(normalize(Path::new("scenarios/../fixtures/b.sql.gz")), PathBuf::from("fixtures/b.sql.gz"));
        assert_eq!(normalize(Path::new("./../x/./y")), PathBuf::from("../x/y"));
        assert_eq!(normalize(Path::new("/a/b/../../..")), PathBuf::from("/.."));
    }

    #[test]
    fn a_malformed_baseline_is_a_scenario_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("base.json"), "{\n  \"schema\": \"pgdrill.baseline.v1\",\n  oops\n}").unwrap();
        let path = dir.path().join("s.toml");
        std::fs::write(&path, "baseline = \"base.json\"\n[source]\npath = \"b\"\n").unwrap();
        let Err(ScenarioError::Invalid(e)) = Scenario::load(&path) else { panic!("expected an error") };
        assert_eq!((e.line, e.column), (1, 12), "{e}");
        assert!(e.message.contains("is not a pgdrill baseline") && e.message.contains("line 3"), "{e}");

        std::fs::write(&path, "[source]\npath = \"b\"\n[checks.indexes]\nbaseline = true\n").unwrap();
        let Err(ScenarioError::Invalid(e)) = Scenario::load(&path) else { panic!("expected an error") };
        assert!(e.message.contains("the scenario names none"), "{e}");
        assert_eq!(e.line, 3);
    }

    #[test]
    fn checks_one_or_many() {
        let s = load_text(
            "[source]\npath = \"b\"\n[checks.extensions]\nvector = \"0.8.0\"\n\
             [[checks.schema_version]]\nexpected = \"010\"\n[[checks.schema_version]]\ntable = \"drizzle.m\"\nexpected = 3\n\
             [checks.row_counts.tables]\npublic.users = 12\n",
        )
        .unwrap();
        let kinds: Vec<&str> = s.checks.iter().map(|c| c.kind().as_str()).collect();
        assert_eq!(kinds, ["extensions", "schema_version", "schema_version", "row_counts"]);
        assert_eq!(s.required_extensions(), ["vector"]);
    }

    #[test]
    fn checks_keep_the_order_of_the_file() {
        let s = load_text(
            "[source]\npath = \"b\"\n[[checks.sql]]\nname = \"first\"\nquery = \"SELECT 1\"\nexpect = 1\n\
             [checks.row_counts.tables]\npublic.users = 12\n[checks.extensions]\nvector = \"0.8.0\"\n",
        )
        .unwrap();
        let kinds: Vec<&str> = s.checks.iter().map(|c| c.kind().as_str()).collect();
        assert_eq!(kinds, ["sql", "row_counts", "extensions"]);
    }

    #[test]
    fn every_kind_has_a_purpose_and_the_gate_drills_roles_rls_and_audit() {
        for kind in crate::check::KINDS {
            assert!(crate::outcome::CheckKind::from_name(kind).is_some_and(|k| !k.proves().is_empty()), "{kind}");
        }
        let gate: Vec<&str> = crate::check::gate_kinds().iter().map(|k| k.as_str()).collect();
        assert_eq!(gate, ["rls", "append_only", "roles"]);
    }
}

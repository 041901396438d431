//! The command line's arguments, as clap parses them: every command and its flags, read and
//! checked before anything runs.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use super::{ack, after, diff, fingerprint, fleet, kube, merge, period, snapshots, verify};
use crate::drill;

/// The `pgdrill` command line: one of its commands, with its flags.
#[derive(Debug, Parser)]
#[command(
    name = "pgdrill",
    version,
    about = "Restore drills for PostgreSQL backups: restore, check, tear down, report."
)]
pub struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// What `run` and `gate` share (by default, as `baseline --from-drill` runs its drill: nothing
/// but its reports' folder).
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct RunArgs {
    /// Write the reports into exactly this folder (one scenario only).
    #[arg(long, value_name = "DIR")]
    pub(super) out: Option<PathBuf>,
    /// Write reports under DIR/<scenario>/<UTC timestamp>/; or, to `s3://bucket/prefix/`, write
    /// each drill's locally and upload it there (the endpoint and keys from the AWS_* variables).
    #[arg(long, value_name = "DIR", default_value = "reports", conflicts_with = "out")]
    pub(super) reports: PathBuf,
    /// Keep the scenarios' history of drills in FILE (each drill compares itself with its
    /// scenario's previous drills there, and appends itself), instead of `history.jsonl` where
    /// the reports go: in DIR/<scenario>/ under --reports, in DIR itself with --out.
    #[arg(long, value_name = "FILE")]
    pub(super) history: Option<PathBuf>,
    /// Drill only scenarios with one of these tags (repeat, or separate with commas).
    #[arg(long = "tag", value_name = "TAG", value_delimiter = ',')]
    pub(super) tags: Vec<String>,
    /// Drill only shard K of N (CI runners splitting one selection): the Kth, K+Nth, ...
    /// scenario of those the tags (and the gate) select, in file order.
    #[arg(long, value_name = "K/N", value_parser = parse_shard)]
    pub(super) shard: Option<Shard>,
    /// Drill the shard this environment variable numbers from 0, of `--shard-count` (a
    /// Kubernetes Indexed Job's JOB_COMPLETION_INDEX: index 0 is shard 1/N).
    #[arg(long, value_name = "VAR", conflicts_with = "shard", requires = "shard_count")]
    pub(super) shard_index_env: Option<String>,
    /// How many shards `--shard-index-env` numbers.
    #[arg(long, value_name = "N", requires = "shard_index_env", value_parser = clap::value_parser!(u32).range(1..))]
    pub(super) shard_count: Option<u32>,
    /// Drill up to N scenarios at once, their targets sharing one budget of this machine's
    /// memory, disk and processes [default: one per two cores, while each share is at least
    /// 1 GiB of memory and of disk].
    #[arg(short, long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub(super) jobs: Option<u16>,
    /// Also list the checks that passed as they run.
    #[arg(short, long)]
    pub(super) verbose: bool,
    /// Drill this backup file instead of the scenario's source (its kind is neither compared with
    /// the scenario's drills nor kept for the next).
    #[arg(long, value_name = "FILE")]
    pub(super) backup: Option<PathBuf>,
    /// Drill a backup drawn from the older backups of the folder (or S3 prefix) instead of its
    /// newest: `within=30d`
    /// draws one of those at most 30 days older than the newest, by a seed derived from the
    /// scenario, the UTC day and the backups listed (see `plan.json` and `pgdrill verify`);
    /// over the scenario's `[source] sample`.
    #[arg(long, value_name = "within=DURATION", conflicts_with = "backup", value_parser = crate::source::sample::parse_arg)]
    pub(super) sample: Option<(String, std::time::Duration)>,
    /// The sampled drill's seed, chosen by you instead of derived: the plan records it as the
    /// operator's, so an auditor sees the draw was not left to chance.
    #[arg(long, value_name = "SEED", conflicts_with = "backup", value_parser = crate::source::sample::parse_seed)]
    pub(super) seed: Option<String>,
    /// Apply this `pg_dumpall --globals-only` file instead of the scenario's.
    #[arg(long, value_name = "FILE")]
    pub(super) globals: Option<PathBuf>,
    /// Read a dump whole to verify it before its restore reads it again, whatever the
    /// scenario's `[source] verify` (by default a plain dump or an encrypted archive is verified by its restore's read).
    #[arg(long)]
    pub(super) verify_first: bool,
    /// Keep each restore that passes as a verified snapshot (container targets), for
    /// `--reuse` (see `pgdrill snapshots`).
    #[arg(long)]
    pub(super) snapshot: bool,
    /// Start from a private clone of the snapshot of the very same restore when there is one,
    /// instead of restoring (the reports say which drill's restore it is).
    #[arg(long)]
    pub(super) reuse: bool,
    /// When to tell the scenario's webhook (`[notify]`), over its `on`: `failure` (and the first
    /// pass after one), `always` or `never`. Without `[notify]`, the URL in PGDRILL_WEBHOOK_URL.
    #[arg(long, value_name = "WHEN", value_enum)]
    pub(super) notify: Option<after::NotifyWhen>,
    /// Also write each drill's metrics.prom to DIR/pgdrill-<scenario>.prom, atomically (a
    /// node_exporter textfile collector's folder).
    #[arg(long, value_name = "DIR")]
    pub(super) metrics_dir: Option<PathBuf>,
    /// Sign each drill's evidence with this OpenSSH private key (else $PGDRILL_SIGNING_KEY_FILE,
    /// or the key's text in $PGDRILL_SIGNING_KEY): see `pgdrill verify`.
    #[arg(long, value_name = "FILE")]
    pub(super) signing_key: Option<PathBuf>,
    /// Drill on this target whatever the scenarios' `[target] kind` (their limits and settings
    /// kept): `pod`, the server container beside this one in a pod (pgdrill's image; see
    /// docs/src/guide/pod.md).
    #[arg(long, value_name = "KIND", value_enum)]
    pub(super) target: Option<TargetChoice>,
}

/// A target `--target` puts every scenario on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum TargetChoice {
    /// The server container beside pgdrill's, started by `pgdrill pod-server` there.
    Pod,
}

impl RunArgs {
    /// The snapshot store, when `--snapshot` or `--reuse` asks for it.
    pub(super) fn snapshots(&self) -> Result<Option<drill::SnapshotOptions>, crate::snapshot::SnapshotError> {
        if !self.snapshot && !self.reuse {
            return Ok(None);
        }
        let store = crate::snapshot::Store::open()?;
        Ok(Some(drill::SnapshotOptions { store, keep: self.snapshot, reuse: self.reuse }))
    }
}

/// `--shard K/N`: which of N runners this is (1 to N).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    /// Whether the `nth` selected scenario (from 0) is this shard's.
    pub(crate) fn takes(self, nth: usize) -> bool {
        nth % self.count == self.index - 1
    }
}

/// A `--shard` that is not K/N.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not K/N with 1 <= K <= N (for example 1/2)")]
pub(super) struct ShardError {
    text: String,
}

/// A `--shard-index-env` variable that does not number one of the shards.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "--shard-index-env: `{variable}` is {}, not a shard's index from 0 to {} (of --shard-count {count})",
    match value { Some(v) => format!("`{v}`"), None => "not set".to_owned() },
    count - 1
)]
pub(super) struct ShardIndexError {
    variable: String,
    value: Option<String>,
    count: u32,
}

impl RunArgs {
    /// The shard this runner drills: `--shard K/N`, or the index `--shard-index-env` names,
    /// from 0, of `--shard-count`.
    pub(super) fn shard(&self, env: impl Fn(&str) -> Option<String>) -> Result<Option<Shard>, ShardIndexError> {
        let (Some(variable), Some(count)) = (&self.shard_index_env, self.shard_count) else {
            return Ok(self.shard);
        };
        let value = env(variable);
        let index = value.as_deref().and_then(|v| v.trim().parse::<u32>().ok()).filter(|&i| i < count);
        match index {
            Some(index) => Ok(Some(Shard { index: index as usize + 1, count: count as usize })),
            None => Err(ShardIndexError { variable: variable.clone(), value, count }),
        }
    }
}

/// Reads `--shard K/N` (clap shows the error).
fn parse_shard(text: &str) -> Result<Shard, ShardError> {
    let usage = || ShardError { text: text.to_owned() };
    let (k, n) = text.split_once('/').ok_or_else(usage)?;
    let (index, count): (usize, usize) =
        (k.trim().parse().map_err(|_| usage())?, n.trim().parse().map_err(|_| usage())?);
    if index == 0 || index > count {
        return Err(usage());
    }
    Ok(Shard { index, count })
}

/// A duration that is not one, or zero.
#[derive(Debug, thiserror::Error)]
pub(super) enum DurationError {
    #[error(transparent)]
    Parse(#[from] humantime::DurationError),
    #[error("it must be longer than 0")]
    Zero,
}

/// Reads a duration longer than zero (clap shows the error).
fn some_time(text: &str) -> Result<std::time::Duration, DurationError> {
    let duration = humantime::parse_duration(text)?;
    if duration.is_zero() {
        return Err(DurationError::Zero);
    }
    Ok(duration)
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the drills scenarios describe, and write their reports.
    ///
    /// Restores each backup into a throwaway target, runs the checks, removes the target and
    /// writes junit.xml, report.md, report.html, drill.json, record.json, timeline.svg and a
    /// manifest of their digests. Exits 0 only when every phase and check of every drill passed.
    Run {
        /// Scenario files, or folders of them (`scenarios/plur.toml` drills the bundled fixture;
        /// `pgdrill init BACKUP` writes a scenario for a backup of your own).
        #[arg(required = true, value_name = "SCENARIO")]
        scenarios: Vec<PathBuf>,
        #[command(flatten)]
        common: RunArgs,
        /// Run only the checks of these kinds (e.g. `roles,rls`; `api` for the app's requests).
        #[arg(long, value_name = "KINDS", value_delimiter = ',')]
        only: Option<Vec<String>>,
        /// Leave the target running after the drill, to look into: `--keep` (or `--keep=always`)
        /// whatever the verdict, `--keep=on-failure` only when the drill fails. Prints how to
        /// connect (a connection file only you can read) and `pgdrill clean NAME`.
        #[arg(
            long,
            value_name = "WHEN",
            value_enum,
            num_args = 0..=1,
            require_equals = true,
            default_missing_value = "always"
        )]
        keep: Option<KeepWhen>,
    },
    /// The release gate: drill only the role, row-level security and append-only audit checks.
    ///
    /// Scenarios without any of those checks are passed over.
    Gate {
        /// Scenario files, or folders of them.
        #[arg(default_value = "scenarios")]
        scenarios: Vec<PathBuf>,
        #[command(flatten)]
        common: RunArgs,
    },
    /// Check scenario files without running them.
    Validate {
        /// Scenario files, or folders of them.
        #[arg(required = true)]
        scenarios: Vec<PathBuf>,
    },
    /// Capture a baseline (row counts, indexes with their parts, row security, policies, graphs,
    /// schemas with each table's columns, constraints, triggers and rules and each sequence's
    /// settings, migration versions) for later drills to compare with.
    #[command(group(clap::ArgGroup::new("from").required(true).args(["dsn", "from_drill"])))]
    Baseline {
        /// Capture from a live database (for example the production source, read-only).
        #[arg(long, value_name = "URL", env = "PGDRILL_BASELINE_DSN", hide_env_values = true)]
        dsn: Option<String>,
        /// Capture from the restore of a scenario's backup (its checks are not run).
        #[arg(long, value_name = "SCENARIO")]
        from_drill: Option<PathBuf>,
        /// With --from-drill: restore this backup instead of the scenario's.
        #[arg(long, value_name = "FILE", requires = "from_drill")]
        backup: Option<PathBuf>,
        /// The baseline file to write (JSON).
        #[arg(short, long, value_name = "FILE")]
        output: PathBuf,
        /// With --from-drill: write the drill's reports under DIR/<scenario>/<UTC timestamp>/.
        #[arg(long, value_name = "DIR", default_value = "reports", requires = "from_drill")]
        reports: PathBuf,
    },
    /// Fingerprint a source database's tables (their content, not only their rows), in the
    /// snapshot of a dump, for drills to compare its restore with (`[checks.fingerprints]`).
    ///
    /// With `--dump FILE`, pg_dump makes the dump in the very snapshot the fingerprints are
    /// taken in; with `--snapshot ID`, the fingerprints are taken in a snapshot another session
    /// exported for its own `pg_dump --snapshot ID`.
    Fingerprint(fingerprint::Args),
    /// Write a scenario from a backup: the checks the backup itself implies.
    ///
    /// Restores the backup into a throwaway target as a drill does, reads what the restore holds
    /// (extensions, the migration journal, row counts, indexes, row security and policies, the
    /// roles its grants name, partitions, schemas, graphs), runs each check that implies on it,
    /// tears the target down and writes a commented scenario: the checks that passed, and those
    /// that did not commented out with why.
    Init {
        /// A pg_dump backup (plain SQL, .gz, .zst; custom; tar; a directory-format folder), a
        /// pg_basebackup folder or a pgBackRest repository.
        backup: PathBuf,
        /// The scenario file to write [default: <the backup's name>.toml here].
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Overwrite the scenario file if it exists.
        #[arg(long)]
        force: bool,
        /// A `pg_dumpall --globals-only` file to apply first [default: <name>.globals.sql beside
        /// the backup, if there is one: its file name with or without its extensions].
        #[arg(long, value_name = "FILE")]
        globals: Option<PathBuf>,
        /// A base backup's WAL archive (the folder archive_command copies segments into).
        #[arg(long, value_name = "DIR")]
        wal_archive: Option<PathBuf>,
        /// Restore on this PostgreSQL major (written as `[target] version`): for a dump whose
        /// header names an older major than its SQL needs [default: the header's].
        #[arg(long, value_name = "MAJOR")]
        version: Option<u32>,
        /// Start from another scenario's checks: a file, or a shipped scenario's name (caracal,
        /// controlplane, paperclip, plur, powernode, prismeai). Those of the kinds the restore
        /// tells (counts, indexes, journals, row security...) are written from this backup; the
        /// others (queries, canaries, roles...) are copied and proven on its restore, one that
        /// fails written commented out with why; its [app] is copied commented out.
        #[arg(long, value_name = "SCENARIO")]
        like: Option<String>,
    },
    /// Write the Kubernetes objects that drill scenarios in a cluster, one pod each: a
    /// ConfigMap of the scenarios and the files they read, a ServiceAccount, a NetworkPolicy
    /// and an Indexed Job (or, with --schedule, a CronJob; with --follow, a follower's
    /// StatefulSet).
    ///
    /// Each pod runs a PostgreSQL server beside pgdrill (the `pod` target); a drill that could
    /// not run is retried, a failed one is not. See docs/src/guide/kubernetes.md.
    Kube(Box<kube::KubeArgs>),
    /// Work with written reports.
    #[command(subcommand)]
    Report(ReportCommand),
    /// Acknowledge a drill: who looked into it and what was done (an exception's resolution), as
    /// a signed statement in its folder (acks/) about its drill.json. Its verdict never changes;
    /// `pgdrill verify` checks the acknowledgement and says it.
    Ack(ack::AckArgs),
    /// Verify a drill's report folder: its SSH signature against allowed signers, and every file
    /// against the signed in-toto statement and MANIFEST.sha256; or a follower's receipts, each
    /// against its signature and the ledger's lines it covers.
    Verify(verify::VerifyArgs),
    /// Print the JSON Schema of the scenario format, for editors (taplo, Even Better TOML) and
    /// validators; with `--record`, that of a drill's flat record (`record.json`).
    Schema {
        /// The schema of `record.json`, the flat record of a drill for evidence tools
        /// (`schema/drill-record.v1.schema.json`), instead of the scenario format's.
        #[arg(long)]
        record: bool,
    },
    /// Remove targets kept by `run --keep`, and what drills killed outright left behind.
    ///
    /// Without a name: every target kept in your state folder (and kept containers whose record
    /// is gone), and the containers and private folders of drills whose process no longer runs.
    /// Never touches a container without pgdrill's labels.
    Clean {
        /// One kept target, as `run --keep` named it (or its container's name).
        name: Option<String>,
        /// Only list what would be removed.
        #[arg(long)]
        dry_run: bool,
    },
    /// List or remove the verified snapshots `run --snapshot` kept (`--reuse` clones them).
    ///
    /// The store is $PGDRILL_SNAPSHOTS, else $XDG_CACHE_HOME/pgdrill/snapshots, else
    /// ~/.cache/pgdrill/snapshots; its budget $PGDRILL_SNAPSHOT_BUDGET (20GB by default), the
    /// least recently used snapshots evicted to keep within it.
    Snapshots {
        #[command(subcommand)]
        command: Option<snapshots::SnapshotsCommand>,
    },
    /// Keep a physical backup's standby replaying its WAL archive as it grows, each segment
    /// replayed recorded in a ledger: continuous proof of the archive.
    ///
    /// Restores and verifies the base backup as a drill does, then never promotes it: every
    /// segment archived later is replayed within seconds and recorded in STATE/ledger.jsonl
    /// (append-only, chained by digests); STATE/follow.prom says the proof lag and the faults (a
    /// gap, a segment that does not replay, a later timeline, an archive that cannot be listed).
    /// Runs until interrupted (or `--for`); run again with the same --state, it restores the
    /// base backup again and goes on where the ledger ends. Exits 0 when stopped with no fault
    /// standing.
    Follow(FollowArgs),
    /// Whether a follower proves its archive now, from the STATE/follow.prom it writes each
    /// second: for a pod's readiness probe, or a monitor.
    ///
    /// Prints a line (the proof lag, how old the follower's last look is, the faults standing,
    /// the segments in the ledger) and exits 0 when the file is there, its last look at most
    /// --max-age old, the proof lag at most --max-lag and no fault standing; else exits 1
    /// saying why. A missing or stale file fails: a follower that stopped is found by its
    /// silence.
    FollowStatus {
        /// The follower's state folder (its `--state`).
        #[arg(long, value_name = "DIR")]
        state: PathBuf,
        /// The proof lag allowed.
        #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = humantime::parse_duration)]
        max_lag: std::time::Duration,
        /// How old the follower's last look at its archive may be.
        #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = humantime::parse_duration)]
        max_age: std::time::Duration,
    },
    /// The agent of a pod's server container: starts PostgreSQL's server over the data volume as
    /// the pgdrill container beside it asks (`run --target pod`), through `DIR/agent.sock`.
    PodServer {
        /// The folder both containers mount.
        #[arg(long, value_name = "DIR", default_value = "/run/pgdrill")]
        dir: PathBuf,
        /// PostgreSQL's binaries [default: the image's, /usr/lib/postgresql/<major>/bin].
        #[arg(long, value_name = "DIR")]
        bin_dir: Option<PathBuf>,
    },
    /// Print a shell's completions for pgdrill (bash, zsh, fish, elvish, powershell).
    ///
    /// bash: `pgdrill completions bash > /etc/bash_completion.d/pgdrill`; zsh: into a folder of
    /// `$fpath` as `_pgdrill`; fish: `~/.config/fish/completions/pgdrill.fish`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print pgdrill's man page (roff): `pgdrill man > /usr/local/share/man/man1/pgdrill.1`.
    Man,
    /// Write the documentation's reference pages (scenario keys, commands and flags, check
    /// kinds), generated from the code, into DIR (docs/src/reference).
    #[command(hide = true)]
    Reference {
        /// The folder the pages are written into.
        #[arg(long, value_name = "DIR", default_value = "docs/src/reference")]
        out: PathBuf,
    },
    /// A kept target's loopback port (started by `run --keep`; not for use by hand).
    #[command(name = "__forward", hide = true)]
    Forward {
        #[arg(long)]
        socket_dir: PathBuf,
        #[arg(long)]
        refuse: String,
    },
}

/// `pgdrill follow`'s arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct FollowArgs {
    /// The scenario of a base backup with `[source] wal_archive` (a folder or an s3:// prefix),
    /// or of a pgBackRest repository or a Barman server in a folder.
    #[arg(value_name = "SCENARIO")]
    pub(super) scenario: PathBuf,
    /// The follower's state folder: its ledger, metrics and receipts (kept between runs).
    #[arg(long, value_name = "DIR")]
    pub(super) state: PathBuf,
    /// Stop after this long (e.g. `1h`) [default: until interrupted].
    #[arg(long = "for", value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub(super) run_for: Option<std::time::Duration>,
    /// How long a segment may be missing while a later one is archived before that is a gap.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = humantime::parse_duration)]
    pub(super) gap_after: std::time::Duration,
    /// List the archive this often [default: 1s for a folder, 5s for an S3 prefix, where each
    /// look is a request].
    #[arg(long, value_name = "DURATION", value_parser = some_time)]
    pub(super) look_every: Option<std::time::Duration>,
    /// Write the follower's drill report (when it stops), and each drill of now's, under
    /// DIR/<scenario>/<UTC timestamp>/.
    #[arg(long, value_name = "DIR", default_value = "reports")]
    pub(super) reports: PathBuf,
    /// Drill "now" at this interval: a copy of the follower's cluster at a paused point,
    /// promoted, checked as the scenario says (SIGUSR1 asks for one at any time).
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub(super) drill_every: Option<std::time::Duration>,
    /// Write a receipt of the ledger's new lines to STATE/receipts/ this often, and when the
    /// follower stops: an in-toto statement an auditor verifies (see `pgdrill verify`).
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = some_time)]
    pub(super) receipt_every: std::time::Duration,
    /// Sign the receipts and the follower's report with this OpenSSH private key (else
    /// $PGDRILL_SIGNING_KEY_FILE, or the key's text in $PGDRILL_SIGNING_KEY).
    #[arg(long, value_name = "FILE")]
    pub(super) signing_key: Option<PathBuf>,
    /// Follow on this target whatever the scenario's `[target] kind`: `pod`, the server
    /// container beside this one in a pod (`pgdrill kube --follow` runs it so).
    #[arg(long, value_name = "KIND", value_enum)]
    pub(super) target: Option<TargetChoice>,
    /// Write a marker on the source at this connection string (libpq keywords or a URI; give
    /// the password by PGPASSWORD or ~/.pgpass: it is never shown) every --marker-every: a
    /// restore point and a WAL switch, confirmed when replay passes it, with its latency.
    #[arg(long, value_name = "DSN")]
    pub(super) marker_dsn: Option<String>,
    /// How often a marker is written (with --marker-dsn).
    #[arg(long, value_name = "DURATION", default_value = "1m", value_parser = some_time)]
    pub(super) marker_every: std::time::Duration,
    /// How long a marker written may take to replay before that is a fault.
    #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = some_time)]
    pub(super) marker_after: std::time::Duration,
}

/// When `--keep` keeps the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum KeepWhen {
    /// Whatever the verdict.
    Always,
    /// Only when the drill fails.
    OnFailure,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ReportCommand {
    /// Merge the reports of several drills, CI shards or a fleet's object store prefix into one
    /// junit.xml, summary.md and fleet.json, each drill's evidence verified against allowed
    /// signers when given.
    Merge(merge::MergeArgs),
    /// Write the fleet view: one static page (fleet.html) and fleet-status.json of every
    /// database's last drill, its state (never verified, fresh, stale), its recovery time
    /// against its RTO, its failing checks, whether its evidence is signed and verifies, and
    /// the controls matrix.
    Fleet(fleet::FleetArgs),
    /// The evidence gate: exit 1 when any database an inventory lists has no drill, a stale
    /// one, a failed one, or one whose evidence does not verify (each gap said, and written to
    /// gaps.md and gaps.json with --out); 0 when every one is proven; 2 on unusable input.
    Audit(fleet::AuditArgs),
    /// The same as `pgdrill verify`.
    Verify(verify::VerifyArgs),
    /// The regression gate: exit 1 when drill B of a scenario proves less than drill A (its
    /// verdict, a phase or check that passed and did not, a new failing check, a recovery
    /// slower past a threshold, an older backup, evidence no longer signed), each difference
    /// said; 0 when it does not; 2 on unusable input.
    Diff(diff::DiffArgs),
    /// The period report for an audit: for each database of an inventory, the drills its
    /// cadence expected from --from to --to, those run, passed, failed and missed, the backups'
    /// age, RTO and RPO met, and each exception with the acknowledgements resolving it
    /// (period.html, period.json, OSCAL assessment-results.json); 0 once written, 2 on unusable
    /// input.
    Period(period::PeriodArgs),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shard_is_k_of_n() {
        assert_eq!(parse_shard("1/2"), Ok(Shard { index: 1, count: 2 }));
        assert_eq!(parse_shard("3/3"), Ok(Shard { index: 3, count: 3 }));
        for bad in ["0/2", "3/2", "1", "a/2", "1/0", "/", "-1/2"] {
            assert!(parse_shard(bad).is_err(), "{bad}");
        }
        let (one, two) = (Shard { index: 1, count: 2 }, Shard { index: 2, count: 2 });
        let split = |s: Shard| (0..5).filter(|&n| s.takes(n)).collect::<Vec<_>>();
        assert_eq!((split(one), split(two)), (vec![0, 2, 4], vec![1, 3]));
        let error = Cli::try_parse_from(["pgdrill", "run", "scenarios", "--shard", "3/2"]).expect_err("3 of 2");
        assert!(error.to_string().contains("`3/2` is not K/N"), "{error}");
    }

    fn run_args(argv: &[&str]) -> RunArgs {
        match Cli::try_parse_from(["pgdrill", "run", "scenarios"].iter().chain(argv)).map(|cli| cli.command) {
            Ok(Command::Run { common, .. }) => common,
            other => panic!("{argv:?}: {other:?}"),
        }
    }

    /// An Indexed Job's pods number themselves from 0 in JOB_COMPLETION_INDEX.
    #[test]
    fn a_shard_may_be_numbered_from_0_by_an_environment_variable() {
        let indexed = run_args(&["--shard-index-env", "JOB_COMPLETION_INDEX", "--shard-count", "3"]);
        let with = |value: &str| indexed.shard(|name| (name == "JOB_COMPLETION_INDEX").then(|| value.to_owned()));
        assert_eq!(with("0"), Ok(Some(Shard { index: 1, count: 3 })));
        assert_eq!(with("2"), Ok(Some(Shard { index: 3, count: 3 })));
        assert!(with("2").unwrap().unwrap().takes(2) && !with("2").unwrap().unwrap().takes(0));
        for bad in ["3", "-1", "one", ""] {
            let error = with(bad).expect_err(bad).to_string();
            assert!(
                error.contains(&format!("is `{bad}`, not a shard's index from 0 to 2 (of --shard-count 3)")),
                "{error}"
            );
        }
        let unset = indexed.shard(|_| None).expect_err("unset").to_string();
        assert!(unset.contains("`JOB_COMPLETION_INDEX` is not set"), "{unset}");
        assert_eq!(run_args(&["--shard", "2/3"]).shard(|_| None), Ok(Some(Shard { index: 2, count: 3 })));
        assert_eq!(run_args(&[]).shard(|_| Some("1".into())), Ok(None));
        for argv in [
            &["--shard-index-env", "I"][..],
            &["--shard-count", "3"],
            &["--shard-index-env", "I", "--shard-count", "0"],
            &["--shard", "1/2", "--shard-index-env", "I", "--shard-count", "2"],
        ] {
            let argv: Vec<&str> = ["pgdrill", "run", "scenarios"].iter().chain(argv).copied().collect();
            assert!(Cli::try_parse_from(&argv).is_err(), "{argv:?}");
        }
    }

    #[test]
    fn jobs_is_at_least_one() {
        let Command::Run { common, .. } = Cli::try_parse_from(["pgdrill", "run", "s", "-j", "2"]).unwrap().command
        else {
            panic!("run")
        };
        assert_eq!(common.jobs, Some(2));
        let error = Cli::try_parse_from(["pgdrill", "gate", "s", "--jobs", "0"]).expect_err("0 jobs");
        assert!(error.to_string().contains("--jobs <N>"), "{error}");
    }
}

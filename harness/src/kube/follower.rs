//! `pgdrill kube --follow`: a follower (`pgdrill follow`) of one scenario's WAL archive, as a
//! StatefulSet of one pod. The pod is the drills' (the server's container beside pgdrill's, the
//! same sandbox, NetworkPolicy and ConfigMap), but it runs until stopped and is started again
//! when it ends (`restartPolicy: Always`, no deadline). Its state (the ledger, `follow.prom`, its
//! reports) is on a claim of its own that outlives the pod, so a follower started again resumes
//! where the ledger ends. The archive is an S3 prefix the follower lists (a `wal_archive`, or a
//! pgBackRest repository's or Barman server's in S3), or a folder the source's `archive_command`
//! writes, read from a claim mounted read-only at the path the scenario names it by. The pod is
//! ready while
//! `pgdrill follow-status` passes: its proof lag within the bound, no fault standing, its last
//! look recent.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetPersistentVolumeClaimRetentionPolicy, StatefulSetSpec};
use k8s_openapi::api::core::v1::{
    ExecAction, PersistentVolumeClaim, PersistentVolumeClaimSpec, PersistentVolumeClaimVolumeSource, Probe, Volume,
    VolumeMount, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

use super::contract as c;
use super::folder::Folder;
use super::values::ClaimMount;
use super::{KubeError, Plan, metadata};
use crate::scenario::Scenario;
use crate::source::{SourceLocation, WalArchiveLocation};

/// What `--follow` adds to the plan.
#[derive(Debug, Clone)]
pub(crate) struct Follow {
    /// The state claim's size.
    pub state_size: String,
    /// The pod is ready while the proof lag is at most this.
    pub max_lag: Duration,
    /// `pgdrill follow --gap-after`; none: its default.
    pub gap_after: Option<Duration>,
    /// The claim the archive (and a base backup in a folder) is read from.
    pub archive: Option<ClaimMount>,
    /// `pgdrill follow --marker-dsn` (its password by `--secret-env PGPASSWORD=...`, the
    /// source's address let out by `--allow-egress`).
    pub marker_dsn: Option<String>,
}

/// The state volume's name, in the claim template and in pgdrill's container.
const STATE: &str = "state";
/// The archive's volume.
const ARCHIVE: &str = "archive";

/// How often the readiness probe runs, and how long it may take (pgdrill starts and reads a
/// small file).
const PROBE_PERIOD_SECONDS: i32 = 10;
const PROBE_TIMEOUT_SECONDS: i32 = 5;

/// One scenario, whose WAL archive is in S3 or a folder on the archive's claim.
pub(crate) fn check(follow: &Follow, scenarios: &[Scenario]) -> Result<(), KubeError> {
    let [scenario] = scenarios else {
        let names = scenarios.iter().map(|s| s.name().to_owned()).collect();
        return Err(KubeError::FollowOne { names });
    };
    let why = match (&scenario.source.wal_archive, &follow.archive) {
        // A pgBackRest repository or Barman server in S3, listed there by the follower (which
        // refuses a prefix that is neither).
        (None, _) if matches!(scenario.source.location, SourceLocation::S3(_)) => return Ok(()),
        (None, _) => "it names no `[source] wal_archive`: a follower replays a WAL archive as it grows".to_owned(),
        // Listed and fetched by the follower itself (its store let out by --allow-egress).
        (Some(WalArchiveLocation::S3(_)), _) => return Ok(()),
        (Some(WalArchiveLocation::Dir(dir)), None) => format!(
            "its `[source] wal_archive` `{}` is a folder of this machine: mount the volume the source archives into with --archive-claim CLAIM:PATH, at the folder the scenario names",
            dir.display()
        ),
        (Some(WalArchiveLocation::Dir(dir)), Some(claim)) if !absolute(dir).starts_with(&claim.path) => format!(
            "its `[source] wal_archive` `{}` is not under --archive-claim's `{}` (name it as the pod sees it)",
            dir.display(),
            claim.path.display()
        ),
        (Some(WalArchiveLocation::Dir(_)), Some(_)) => return Ok(()),
    };
    Err(KubeError::NotFollowed { scenario: scenario.name().to_owned(), why })
}

fn absolute(path: &Path) -> std::path::PathBuf {
    std::path::absolute(path).map_or_else(|_| path.to_owned(), |p| crate::field::normalize(&p))
}

/// The follower: one pod, its state on a claim of its own kept when the StatefulSet is deleted
/// or scaled down (the ledger is the proof).
pub(crate) fn stateful_set(plan: &Plan, follow: &Follow, folder: &Folder) -> StatefulSet {
    let mut meta = metadata(plan, Some(plan.name.clone()));
    meta.annotations = Some(super::annotations(folder));
    let claim = PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some(STATE.into()),
            labels: Some(super::objects::selector(plan)),
            ..ObjectMeta::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".into()]),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([("storage".to_owned(), Quantity(follow.state_size.clone()))])),
                ..VolumeResourceRequirements::default()
            }),
            ..PersistentVolumeClaimSpec::default()
        }),
        ..PersistentVolumeClaim::default()
    };
    StatefulSet {
        metadata: meta,
        spec: StatefulSetSpec {
            replicas: Some(1),
            // Required by 1.29's schema; no Service is written: nothing in the pod listens, and
            // the NetworkPolicy lets nothing in.
            service_name: Some(plan.name.clone()),
            selector: LabelSelector { match_labels: Some(super::objects::selector(plan)), ..LabelSelector::default() },
            template: template(plan, follow, folder),
            volume_claim_templates: Some(vec![claim]),
            persistent_volume_claim_retention_policy: Some(StatefulSetPersistentVolumeClaimRetentionPolicy {
                when_deleted: Some("Retain".into()),
                when_scaled: Some("Retain".into()),
            }),
            ..StatefulSetSpec::default()
        },
        ..StatefulSet::default()
    }
}

/// The drills' pod, made a follower's: started again when it ends, with no deadline; pgdrill's
/// container runs `pgdrill follow` on the server beside it, its state and the archive mounted,
/// ready while `follow-status` passes.
fn template(plan: &Plan, follow: &Follow, folder: &Folder) -> k8s_openapi::api::core::v1::PodTemplateSpec {
    let mut template = super::pod::template(plan, folder);
    let spec = template.spec.as_mut().expect("the pod's template has its spec");
    spec.restart_policy = Some("Always".into());
    spec.active_deadline_seconds = None;
    if let Some(context) = spec.security_context.as_mut() {
        // The claim's files are given to the pod's group once, not at every start.
        context.fs_group_change_policy = context.fs_group.map(|_| "OnRootMismatch".into());
    }
    let drill = spec.containers.iter_mut().find(|c| c.name == c::DRILL_CONTAINER).expect("pgdrill's container");
    drill.args = Some(args(follow, folder));
    drill.readiness_probe = Some(readiness(follow));
    let mounts = drill.volume_mounts.get_or_insert_default();
    mounts.push(VolumeMount { name: STATE.into(), mount_path: c::STATE_DIR.into(), ..VolumeMount::default() });
    if let Some(archive) = &follow.archive {
        mounts.push(VolumeMount {
            name: ARCHIVE.into(),
            mount_path: archive.path.display().to_string(),
            read_only: Some(true),
            ..VolumeMount::default()
        });
        spec.volumes.get_or_insert_default().push(Volume {
            name: ARCHIVE.into(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: archive.claim.clone(),
                read_only: Some(true),
            }),
            ..Volume::default()
        });
    }
    template
}

/// `pgdrill follow` of the scenario, on the pod's server, its state and reports on its claim.
fn args(follow: &Follow, folder: &Folder) -> Vec<String> {
    let scenario = folder.scenarios.first().map(|(_, path)| format!("{}/{}", c::SCENARIOS_DIR, path.display()));
    let mut args = vec!["follow".to_owned()];
    args.extend(scenario);
    let reports = format!("{}/reports", c::STATE_DIR);
    args.extend(["--state", c::STATE_DIR, "--reports", &reports, "--target", c::POD_TARGET].map(str::to_owned));
    if let Some(gap) = follow.gap_after {
        args.extend(["--gap-after".to_owned(), humantime::format_duration(gap).to_string()]);
    }
    if let Some(dsn) = &follow.marker_dsn {
        args.extend(["--marker-dsn".to_owned(), dsn.clone()]);
    }
    args
}

/// Ready while `pgdrill follow-status` passes, probe by probe.
fn readiness(follow: &Follow) -> Probe {
    let max_lag = humantime::format_duration(follow.max_lag).to_string();
    let command = [c::PGDRILL, "follow-status", "--state", c::STATE_DIR, "--max-lag", &max_lag];
    Probe {
        exec: Some(ExecAction { command: Some(command.map(str::to_owned).to_vec()) }),
        period_seconds: Some(PROBE_PERIOD_SECONDS),
        timeout_seconds: Some(PROBE_TIMEOUT_SECONDS),
        success_threshold: Some(1),
        failure_threshold: Some(1),
        ..Probe::default()
    }
}

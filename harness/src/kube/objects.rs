//! The objects besides the pod: the ConfigMap of scenarios, the ServiceAccount, the
//! NetworkPolicy, and the Indexed Job (or the CronJob that makes one on a schedule) with the
//! failure policy that retries only a drill that could not run.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::batch::v1::{
    CronJob, CronJobSpec, Job, JobSpec, JobTemplateSpec, PodFailurePolicy, PodFailurePolicyOnExitCodesRequirement,
    PodFailurePolicyOnPodConditionsPattern, PodFailurePolicyRule,
};
use k8s_openapi::api::core::v1::{ConfigMap, ServiceAccount};
use k8s_openapi::api::networking::v1::{
    IPBlock, NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyPeer, NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::contract as c;
use super::folder::Folder;
use super::{Plan, metadata};

/// The exit codes that end an index for good: a FAIL verdict (1) and an unusable scenario (2).
/// Any other (3, a drill that could not run; 137, killed for its memory; 143, stopped) counts
/// against the index's retries.
pub(crate) const FINAL_EXIT_CODES: [i32; 2] = [1, 2];

/// How long after its time a scheduled run may still start (a controller that was down).
const STARTING_DEADLINE_SECONDS: i64 = 3600;
/// The finished Jobs a CronJob keeps, of each ending.
const HISTORY: i32 = 3;

/// The scenarios and the files they read; text as `data`, anything else as `binaryData`.
pub(crate) fn config_map(plan: &Plan, folder: &Folder) -> ConfigMap {
    let (mut data, mut binary) = (BTreeMap::new(), BTreeMap::new());
    for (key, _, bytes) in folder.keyed() {
        if let Ok(text) = std::str::from_utf8(bytes) {
            data.insert(key, text.to_owned());
        } else {
            binary.insert(key, ByteString(bytes.to_vec()));
        }
    }
    let mut meta = metadata(plan, Some(super::config_map_name(plan)));
    meta.annotations = Some(super::annotations(folder));
    ConfigMap {
        metadata: meta,
        data: (!data.is_empty()).then_some(data),
        binary_data: (!binary.is_empty()).then_some(binary),
        ..ConfigMap::default()
    }
}

/// The pods' own account: no token in them, and nothing granted to it; its annotations map it
/// to a cloud identity where the cluster does (`eks.amazonaws.com/role-arn`: IRSA, whose webhook
/// mounts its own token; `iam.gke.io/gcp-service-account`: Workload Identity).
pub(crate) fn service_account(plan: &Plan) -> ServiceAccount {
    let mut meta = metadata(plan, Some(plan.name.clone()));
    let annotations = &plan.cluster.account_annotations;
    meta.annotations = (!annotations.is_empty()).then(|| annotations.clone());
    ServiceAccount { metadata: meta, automount_service_account_token: Some(false), ..ServiceAccount::default() }
}

/// Nothing in; out only to the networks and ports the plan allows (none: nothing at all).
pub(crate) fn network_policy(plan: &Plan) -> NetworkPolicy {
    let egress = plan
        .egress
        .iter()
        .map(|allowed| NetworkPolicyEgressRule {
            to: Some(vec![NetworkPolicyPeer {
                ip_block: Some(IPBlock { cidr: allowed.cidr.clone(), except: None }),
                ..NetworkPolicyPeer::default()
            }]),
            ports: Some(vec![NetworkPolicyPort {
                protocol: Some(allowed.protocol.to_owned()),
                port: Some(IntOrString::Int(allowed.port.into())),
                end_port: None,
            }]),
        })
        .collect();
    NetworkPolicy {
        metadata: metadata(plan, Some(plan.name.clone())),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector { match_labels: Some(selector(plan)), ..LabelSelector::default() }),
            policy_types: Some(vec!["Ingress".into(), "Egress".into()]),
            ingress: None,
            egress: Some(egress),
        }),
    }
}

/// The labels that pick the drill's pods.
pub(crate) fn selector(plan: &Plan) -> BTreeMap<String, String> {
    BTreeMap::from([
        (c::LABEL_NAME.to_owned(), "pgdrill".to_owned()),
        (c::LABEL_INSTANCE.to_owned(), plan.name.clone()),
    ])
}

/// One index per scenario, each drilled by its own pod; an index whose drill failed or whose
/// scenario is unusable fails for good, one whose pod was disrupted is run again without
/// counting, and anything else (a drill that could not run, a pod killed) is retried up to
/// `retries` times.
pub(crate) fn job_spec(plan: &Plan, folder: &Folder) -> JobSpec {
    let completions = i32::try_from(folder.scenarios.len()).unwrap_or(i32::MAX);
    // Every wave of pods, each run as often as its retries allow, to its deadline.
    let waves = folder.scenarios.len().div_ceil(plan.parallelism.max(1) as usize) as i64;
    let tries = i64::from(plan.retries) + 1;
    let pod = super::pod::seconds(super::pod::pod_deadline(plan, folder));
    JobSpec {
        active_deadline_seconds: Some(pod.saturating_mul(waves).saturating_mul(tries)),
        completion_mode: Some("Indexed".into()),
        completions: Some(completions),
        parallelism: Some(i32::try_from(plan.parallelism).unwrap_or(i32::MAX).min(completions)),
        backoff_limit_per_index: Some(i32::try_from(plan.retries).unwrap_or(i32::MAX)),
        pod_failure_policy: Some(PodFailurePolicy {
            rules: vec![
                PodFailurePolicyRule {
                    action: "Ignore".into(),
                    on_pod_conditions: Some(vec![PodFailurePolicyOnPodConditionsPattern {
                        type_: "DisruptionTarget".into(),
                        status: Some("True".into()),
                    }]),
                    on_exit_codes: None,
                },
                PodFailurePolicyRule {
                    action: "FailIndex".into(),
                    on_exit_codes: Some(PodFailurePolicyOnExitCodesRequirement {
                        container_name: Some(c::DRILL_CONTAINER.into()),
                        operator: "In".into(),
                        values: FINAL_EXIT_CODES.to_vec(),
                    }),
                    on_pod_conditions: None,
                },
            ],
        }),
        template: super::pod::template(plan, folder),
        ..JobSpec::default()
    }
}

pub(crate) fn job(plan: &Plan, folder: &Folder) -> Job {
    let mut meta = metadata(plan, Some(plan.name.clone()));
    meta.annotations = Some(super::annotations(folder));
    Job { metadata: meta, spec: Some(job_spec(plan, folder)), ..Job::default() }
}

/// The Job, made on a schedule; a run never starts while the last one still runs.
pub(crate) fn cron_job(plan: &Plan, folder: &Folder, schedule: &str) -> CronJob {
    let mut meta = metadata(plan, Some(plan.name.clone()));
    meta.annotations = Some(super::annotations(folder));
    let mut template = metadata(plan, None);
    template.annotations = Some(super::annotations(folder));
    CronJob {
        metadata: meta,
        spec: CronJobSpec {
            schedule: schedule.to_owned(),
            concurrency_policy: Some("Forbid".into()),
            time_zone: plan.cluster.time_zone.clone(),
            starting_deadline_seconds: Some(STARTING_DEADLINE_SECONDS),
            successful_jobs_history_limit: Some(HISTORY),
            failed_jobs_history_limit: Some(HISTORY),
            job_template: JobTemplateSpec { metadata: Some(template), spec: Some(job_spec(plan, folder)) },
            ..CronJobSpec::default()
        },
        ..CronJob::default()
    }
}

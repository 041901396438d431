//! The objects' tests: the Job's indexes, shards and failure policy, the CronJob around it, the
//! NetworkPolicy's allow-list, the Secrets by reference, and the environment pgdrill's
//! container refuses to be given twice. (tests/drills/kube.rs validates the YAML against
//! Kubernetes' schemas.)

use std::path::Path;

use serde_json::{Value, json};

use super::*;

fn plan() -> Plan {
    Plan {
        name: "nightly".into(),
        namespace: Some("drills".into()),
        image: "pgdrill/pgdrill:0.1.0-pg17".into(),
        schedule: None,
        parallelism: 4,
        retries: 2,
        memory: "4Gi".into(),
        cpu: "2".into(),
        drill_memory: "1Gi".into(),
        drill_cpu: "1".into(),
        disk: "20Gi".into(),
        work_disk: "10Gi".into(),
        reports: "s3://drills/reports/".into(),
        signing_key: None,
        secret_env: Vec::new(),
        env: Vec::new(),
        egress: Vec::new(),
        host_aliases: Vec::new(),
        user: super::RunAs::Image { uid: 100, gid: 102 },
        cluster: Cluster::default(),
        deadline: None,
        follow: None,
    }
}

fn folder(dir: &Path) -> folder::Folder {
    let scenarios: Vec<Scenario> = ["orders", "billing"]
        .iter()
        .map(|name| {
            let path = dir.join(format!("{name}.toml"));
            std::fs::write(&path, format!("[source]\ns3 = \"s3://backups/{name}/\"\n")).unwrap();
            Scenario::load(&path).unwrap()
        })
        .collect();
    folder::gather(&scenarios, None).unwrap()
}

fn value(object: impl serde::Serialize) -> Value {
    serde_json::to_value(object).unwrap()
}

#[test]
fn each_index_drills_its_scenario_and_only_a_drill_that_could_not_run_is_retried() {
    let dir = tempfile::tempdir().unwrap();
    let folder = folder(dir.path());
    let job = value(objects::job(&plan(), &folder));
    assert_eq!(job["metadata"]["annotations"]["pgdrill.dev/scenarios"], "billing,orders", "by index");
    let spec = &job["spec"];
    assert_eq!(
        (&spec["completionMode"], &spec["completions"], &spec["parallelism"], &spec["backoffLimitPerIndex"]),
        (&json!("Indexed"), &json!(2), &json!(2), &json!(2)),
        "one index per scenario; no more at once than there are"
    );
    assert!(spec.get("maxFailedIndexes").is_none() && spec.get("backoffLimit").is_none(), "{spec}");
    assert_eq!(
        spec["podFailurePolicy"]["rules"],
        json!([
            {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
            {"action": "FailIndex", "onExitCodes": {"containerName": "pgdrill", "operator": "In", "values": [1, 2]}},
        ])
    );
    let pod = &spec["template"]["spec"];
    let args = &pod["containers"][0]["args"];
    assert_eq!(
        args,
        &json!([
            "run",
            "/etc/pgdrill/scenarios/billing.toml",
            "/etc/pgdrill/scenarios/orders.toml",
            "--target",
            "pod",
            "--reports",
            "s3://drills/reports/",
            "--shard-index-env",
            "JOB_COMPLETION_INDEX",
            "--shard-count",
            "2",
        ])
    );
    assert_eq!(pod["initContainers"][0]["restartPolicy"], "Always", "a native sidecar");
    assert_eq!(pod["initContainers"][0]["command"], json!(["/usr/lib/pgdrill/bin/pgdrill", "pod-server"]));
    let items = &pod["volumes"].as_array().unwrap().iter().find(|v| v["name"] == "scenarios").unwrap()["configMap"];
    assert_eq!(items["name"], "nightly-scenarios");
    assert_eq!(
        items["items"],
        json!([{"key": "000-billing.toml", "path": "billing.toml"}, {"key": "001-orders.toml", "path": "orders.toml"}])
    );
    let config_map = value(objects::config_map(&plan(), &folder));
    assert_eq!(config_map["data"]["001-orders.toml"], "[source]\ns3 = \"s3://backups/orders/\"\n");
    assert_eq!(config_map["metadata"]["namespace"], "drills");
}

#[test]
fn a_schedule_makes_a_cron_job_of_the_same_job() {
    let dir = tempfile::tempdir().unwrap();
    let folder = folder(dir.path());
    let plan = plan();
    let cron = value(objects::cron_job(&plan, &folder, "0 3 * * *"));
    let spec = &cron["spec"];
    assert_eq!((&spec["schedule"], &spec["concurrencyPolicy"]), (&json!("0 3 * * *"), &json!("Forbid")));
    assert!(spec["startingDeadlineSeconds"].is_i64() && spec["failedJobsHistoryLimit"].is_i64(), "{spec}");
    assert_eq!(spec["jobTemplate"]["spec"], value(objects::job_spec(&plan, &folder)));
    assert_eq!(spec["jobTemplate"]["metadata"]["labels"]["app.kubernetes.io/instance"], "nightly");
}

/// A pod may run as long as its longest scenario's phases and teardown (30 h 15 min with the
/// default deadlines), or `--deadline`; the Job as long as every wave of pods with its retries.
#[test]
fn a_hung_drill_is_stopped_by_its_deadline_not_held_forever() {
    let dir = tempfile::tempdir().unwrap();
    let folder = folder(dir.path());
    let mut plan = plan();
    let job = value(objects::job(&plan, &folder));
    let pod = &job["spec"]["template"]["spec"]["activeDeadlineSeconds"];
    assert_eq!(pod, &json!(30 * 3600 + 15 * 60), "{job}");
    // Two scenarios, four at once: one wave, tried three times.
    assert_eq!(job["spec"]["activeDeadlineSeconds"], json!(3 * (30 * 3600 + 15 * 60)));
    plan.deadline = Some(std::time::Duration::from_secs(8 * 3600));
    plan.parallelism = 1;
    let job = value(objects::job(&plan, &folder));
    assert_eq!(job["spec"]["template"]["spec"]["activeDeadlineSeconds"], json!(8 * 3600));
    assert_eq!(job["spec"]["activeDeadlineSeconds"], json!(2 * 3 * 8 * 3600), "two waves, three tries");
}

/// What a real cluster asks beside: the registry's credentials and pull policy, a cloud
/// identity for the ServiceAccount, the nodes, the schedule's time zone.
#[test]
fn a_clusters_pulls_identity_nodes_and_time_zone_are_written_where_kubernetes_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    let folder = folder(dir.path());
    let mut plan = plan();
    let bare = value(objects::cron_job(&plan, &folder, "0 3 * * *"));
    let spec = &bare["spec"]["jobTemplate"]["spec"]["template"]["spec"];
    for absent in ["imagePullSecrets", "nodeSelector", "tolerations"] {
        assert!(spec.get(absent).is_none(), "{absent} without its flag: {spec}");
    }
    assert!(bare["spec"].get("timeZone").is_none() && spec["containers"][0].get("imagePullPolicy").is_none());
    plan.cluster = Cluster {
        pull_secrets: vec!["registry".into()],
        pull_policy: Some("Always".into()),
        account_annotations: [("eks.amazonaws.com/role-arn".to_owned(), "arn:aws:iam::1:role/drills".to_owned())]
            .into(),
        time_zone: Some("Europe/Paris".into()),
        node_selector: [("pool".to_owned(), "drills".to_owned())].into(),
        tolerations: vec![toleration("dedicated=drills:NoSchedule").unwrap()],
    };
    let cron = value(objects::cron_job(&plan, &folder, "0 3 * * *"));
    assert_eq!(cron["spec"]["timeZone"], "Europe/Paris");
    let spec = &cron["spec"]["jobTemplate"]["spec"]["template"]["spec"];
    assert_eq!(spec["imagePullSecrets"], json!([{"name": "registry"}]));
    assert_eq!(spec["nodeSelector"], json!({"pool": "drills"}));
    assert_eq!(
        spec["tolerations"],
        json!([{"key": "dedicated", "operator": "Equal", "value": "drills", "effect": "NoSchedule"}])
    );
    assert_eq!(
        (&spec["containers"][0]["imagePullPolicy"], &spec["initContainers"][0]["imagePullPolicy"]),
        (&json!("Always"), &json!("Always"))
    );
    let account = value(objects::service_account(&plan));
    assert_eq!(account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"], "arn:aws:iam::1:role/drills");
    assert_eq!(account["automountServiceAccountToken"], false, "still no token of its own");
}

#[test]
fn egress_is_denied_but_what_is_allowed_and_secrets_are_named_not_held() {
    let dir = tempfile::tempdir().unwrap();
    let folder = folder(dir.path());
    let mut plan = plan();
    let closed = value(objects::network_policy(&plan));
    assert_eq!(closed["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
    assert_eq!(closed["spec"]["egress"], json!([]), "nothing out");
    assert!(closed["spec"].get("ingress").is_none(), "nothing in");
    assert_eq!(
        closed["spec"]["podSelector"]["matchLabels"],
        json!({"app.kubernetes.io/name": "pgdrill", "app.kubernetes.io/instance": "nightly"})
    );
    plan.egress = vec![egress("10.0.0.0/8:9000").unwrap(), egress("10.96.0.10:53/udp").unwrap()];
    let open = value(objects::network_policy(&plan));
    assert_eq!(
        open["spec"]["egress"],
        json!([
            {"to": [{"ipBlock": {"cidr": "10.0.0.0/8"}}], "ports": [{"protocol": "TCP", "port": 9000}]},
            {"to": [{"ipBlock": {"cidr": "10.96.0.10/32"}}], "ports": [{"protocol": "UDP", "port": 53}]},
        ])
    );
    plan.signing_key = Some(signing_secret("drill-signing").unwrap());
    plan.secret_env = vec![secret_env("AWS_SECRET_ACCESS_KEY=backup-s3/secret").unwrap()];
    plan.env = vec![plain_env("AWS_ENDPOINT_URL=http://minio.backups:9000").unwrap()];
    plan.host_aliases = vec![host_alias("10.0.0.5=minio.backups").unwrap(), host_alias("10.0.0.5=s3.backups").unwrap()];
    let pod = value(pod::template(&plan, &folder))["spec"].clone();
    let env = &pod["containers"][0]["env"];
    assert!(
        env.as_array()
            .unwrap()
            .contains(&json!({"name": "PGDRILL_SIGNING_KEY_FILE", "value": "/etc/pgdrill/signing/key"}))
    );
    assert!(env.as_array().unwrap().contains(&json!({"name": "AWS_SECRET_ACCESS_KEY", "valueFrom":
        {"secretKeyRef": {"name": "backup-s3", "key": "secret", "optional": false}}})));
    assert!(
        env.as_array().unwrap().contains(&json!({"name": "AWS_ENDPOINT_URL", "value": "http://minio.backups:9000"}))
    );
    assert_eq!(pod["hostAliases"], json!([{"ip": "10.0.0.5", "hostnames": ["minio.backups", "s3.backups"]}]));
    assert!(pod["initContainers"][0].get("env").is_none(), "the server gets no environment");
}

#[test]
fn a_variable_is_given_once_and_none_the_container_sets() {
    let mut plan = plan();
    for (var, why) in [
        ("HOME", "pgdrill's container sets it"),
        ("JOB_COMPLETION_INDEX", "the Job's controller sets it"),
        ("AWS_ACCESS_KEY_ID", "given twice"),
    ] {
        plan.secret_env =
            vec![secret_env("AWS_ACCESS_KEY_ID=s3/id").unwrap(), secret_env(&format!("{var}=s3/other")).unwrap()];
        let error = check_env(&plan).unwrap_err().to_string();
        assert!(error.starts_with(&format!("--secret-env {var}: {why}")), "{error}");
    }
    plan.env = vec![plain_env("AWS_REGION=eu-west-1").unwrap()];
    plan.secret_env = vec![secret_env("AWS_REGION=s3/region").unwrap()];
    let error = check_env(&plan).unwrap_err().to_string();
    assert!(error.starts_with("--env AWS_REGION: given twice"), "{error}");
    plan.env = vec![plain_env("HOME=/root").unwrap()];
    plan.secret_env.clear();
    let error = check_env(&plan).unwrap_err().to_string();
    assert!(error.starts_with("--env HOME: pgdrill's container sets it"), "{error}");
    plan.env.clear();
    plan.secret_env = vec![secret_env("PGDRILL_SIGNING_KEY_FILE=k/path").unwrap()];
    assert!(check_env(&plan).is_ok(), "a key's path of one's own, without --signing-key-secret");
    plan.signing_key = Some(signing_secret("drill-signing").unwrap());
    assert!(check_env(&plan).is_err());
}

/// A scenario of a base backup and its archive on the claim mounted at /archive.
fn followed(dir: &Path, name: &str, wal_archive: &str) -> Scenario {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, format!("[source]\npath = \"/archive/base\"\nwal_archive = \"{wal_archive}\"\n")).unwrap();
    Scenario::load(&path).unwrap()
}

/// `--follow`: `pgdrill follow` of one scenario on the pod's server, in a StatefulSet of one pod
/// started again when it ends, with no deadline; its state on a claim of its own, kept; the
/// archive's claim mounted read-only; ready while `follow-status` passes.
#[test]
fn a_follower_is_one_pod_of_a_stateful_set_ready_while_its_proof_lag_is_within_the_bound() {
    let dir = tempfile::tempdir().unwrap();
    let follow = Follow {
        state_size: "5Gi".into(),
        max_lag: std::time::Duration::from_secs(90),
        gap_after: Some(std::time::Duration::from_secs(120)),
        archive: Some(claim_mount("wal-archive:/archive").unwrap()),
        marker_dsn: Some("host=db.internal dbname=postgres user=pgdrill_marker".into()),
    };
    let plan = Plan { follow: Some(follow.clone()), ..plan() };
    let scenario = followed(dir.path(), "books", "/archive/wal");
    let folder = folder::gather(std::slice::from_ref(&scenario), Some(Path::new("/archive"))).unwrap();
    let set = value(follower::stateful_set(&plan, &follow, &folder));
    let spec = &set["spec"];
    assert_eq!((&spec["replicas"], &spec["serviceName"]), (&json!(1), &json!("nightly")));
    assert_eq!(spec["persistentVolumeClaimRetentionPolicy"], json!({"whenDeleted": "Retain", "whenScaled": "Retain"}));
    assert_eq!(spec["selector"]["matchLabels"], value(objects::selector(&plan)));
    let claim = &spec["volumeClaimTemplates"][0];
    assert_eq!(claim["metadata"]["name"], "state");
    assert_eq!(claim["spec"]["resources"]["requests"]["storage"], "5Gi");
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "Always");
    assert!(pod.get("activeDeadlineSeconds").is_none(), "a follower runs until stopped: {pod}");
    assert_eq!(pod["securityContext"]["fsGroupChangePolicy"], "OnRootMismatch");
    assert_eq!(pod["initContainers"][0]["restartPolicy"], "Always", "the server, as a drill's");
    let drill = &pod["containers"][0];
    assert_eq!(
        drill["args"],
        json!([
            "follow",
            "/etc/pgdrill/scenarios/books.toml",
            "--state",
            "/var/lib/pgdrill/state",
            "--reports",
            "/var/lib/pgdrill/state/reports",
            "--target",
            "pod",
            "--gap-after",
            "2m",
            "--marker-dsn",
            "host=db.internal dbname=postgres user=pgdrill_marker"
        ])
    );
    let probe = &drill["readinessProbe"];
    assert_eq!(
        probe["exec"]["command"],
        json!([
            "/usr/lib/pgdrill/bin/pgdrill",
            "follow-status",
            "--state",
            "/var/lib/pgdrill/state",
            "--max-lag",
            "1m 30s"
        ])
    );
    assert_eq!((&probe["failureThreshold"], &probe["periodSeconds"]), (&json!(1), &json!(10)));
    let mounts = drill["volumeMounts"].as_array().unwrap();
    assert!(mounts.contains(&json!({"name": "state", "mountPath": "/var/lib/pgdrill/state"})), "{mounts:?}");
    assert!(mounts.contains(&json!({"name": "archive", "mountPath": "/archive", "readOnly": true})), "{mounts:?}");
    let archive = pod["volumes"].as_array().unwrap().iter().find(|v| v["name"] == "archive").unwrap();
    assert_eq!(archive["persistentVolumeClaim"], json!({"claimName": "wal-archive", "readOnly": true}));
    assert!(!pod["initContainers"][0]["volumeMounts"].to_string().contains("/archive"), "the server reads no archive");
    assert_eq!(set["metadata"]["labels"]["app.kubernetes.io/component"], "follower");
}

/// One scenario, its archive in S3 or a folder on the claim, its backup there or elsewhere than
/// this machine.
#[test]
fn a_follower_of_several_scenarios_or_of_an_archive_off_the_claim_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let claim = Some(claim_mount("wal-archive:/archive").unwrap());
    let follow = Follow {
        state_size: "1Gi".into(),
        max_lag: std::time::Duration::from_secs(60),
        gap_after: None,
        archive: claim,
        marker_dsn: None,
    };
    let plan = Plan { follow: Some(follow), ..plan() };
    let refused = |scenarios: &[Scenario]| render(&plan, scenarios).unwrap_err().to_string();
    let (books, maps) = (followed(dir.path(), "books", "/archive/wal"), followed(dir.path(), "maps", "/archive/maps"));
    assert!(render(&plan, std::slice::from_ref(&books)).is_ok());
    let two = refused(&[books, maps]);
    assert!(
        two.starts_with("--follow writes the follower of one scenario, and 2 were selected (books, maps)"),
        "{two}"
    );
    let off = refused(&[followed(dir.path(), "off", "/var/wal")]);
    assert!(off.contains("`[source] wal_archive` `/var/wal` is not under --archive-claim's `/archive`"), "{off}");
    // An archive in S3 is the follower's to list: no claim holds it.
    assert!(render(&plan, &[followed(dir.path(), "s3", "s3://backups/wal/")]).is_ok());
    // So is a repository's in S3 (the follower refuses a prefix that is no repository or
    // server); a base backup in a folder with no archive is not followed.
    let repository = dir.path().join("repository.toml");
    std::fs::write(&repository, "[source]\ns3 = \"s3://backups/pgbackrest/\"\n").unwrap();
    assert!(render(&plan, &[Scenario::load(&repository).unwrap()]).is_ok());
    let bare = dir.path().join("bare.toml");
    std::fs::write(&bare, "[source]\npath = \"/archive/base\"\n").unwrap();
    let bare = refused(&[Scenario::load(&bare).unwrap()]);
    assert!(bare.contains("it names no `[source] wal_archive`"), "{bare}");
    let path = dir.path().join("here.toml");
    std::fs::write(&path, "[source]\npath = \"/var/backups/base\"\nwal_archive = \"/archive/wal\"\n").unwrap();
    let here = refused(&[Scenario::load(&path).unwrap()]);
    assert!(
        here.contains(
            "reads `[source] path` = `/var/backups/base` from this machine, outside --archive-claim's `/archive`"
        ),
        "{here}"
    );
    let plan = Plan { follow: Some(Follow { archive: None, ..plan.follow.clone().unwrap() }), ..plan.clone() };
    let unmounted = render(&plan, &[followed(dir.path(), "books", "/archive/wal")]).unwrap_err().to_string();
    assert!(
        unmounted
            .contains("is a folder of this machine: mount the volume the source archives into with --archive-claim"),
        "{unmounted}"
    );
}

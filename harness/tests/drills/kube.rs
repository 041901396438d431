//! `pgdrill kube`: the objects it writes for the repository's scenarios (their backups moved to
//! S3, their baselines, globals and migrations carried along) are valid Kubernetes objects by
//! Kubernetes' own schemas (`kubernetes-validate --strict`, for 1.29, the first with native
//! sidecars on by default, 1.33 and the newest it knows), and, read back, say what they must:
//! Pod Security "restricted" on the pod and each container, the failure policy that retries
//! only a drill that could not run, a NetworkPolicy that denies all but its allow-list, and no
//! secret's value anywhere. What cannot run in a cluster is refused, saying why. No cluster runs
//! here: the pod's shape under Docker is the pod target's tests' matter.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use yaml_rust2::{Yaml, YamlLoader};

use crate::util::{Scratch, root};

/// Kubernetes versions the objects are validated against: the first where native sidecars and
/// an index's own retries are on by default, the first where both are GA, and the newest
/// kubernetes-validate ships.
const VERSIONS: [&str; 3] = ["1.29.0", "1.33.0", "1.37.0"];

/// Values as CI holds them in the environment: none may reach an object, the console or a file.
const SECRETS: [(&str, &str); 3] = [
    ("AWS_SECRET_ACCESS_KEY", "kube-test-s3cr3t-0f9e8d7c6b5a"),
    ("PGDRILL_WEBHOOK_URL", "https://hooks.example/T0KEN-kube-5e4d3c2b1a"),
    ("PGDRILL_SIGNING_KEY", "-----BEGIN OPENSSH PRIVATE KEY-----kube-test-key-9a8b7c"),
];

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

fn pgdrill(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pgdrill")).args(args).envs(SECRETS).output().expect("run pgdrill")
}

fn kubernetes_validate(version: &str, file: &Path) -> Output {
    match Command::new("kubernetes-validate").args(["--strict", "-k", version]).arg(file).output() {
        Ok(output) => output,
        Err(e) => panic!("cannot run kubernetes-validate ({e}): python3 -m pip install 'kubernetes-validate==1.37.0'"),
    }
}

/// The repository's scenarios with their backups in S3, beside a link to the fixtures their
/// baselines, globals and migrations are in; and one of a backup whose globals file is not
/// UTF-8 (carried as binaryData).
fn scenarios(scratch: &Scratch) -> PathBuf {
    std::os::unix::fs::symlink(root().join("fixtures"), scratch.path("fixtures")).expect("link the fixtures");
    for file in pgdrill::scenario::discover(&[root().join("scenarios")]).expect("scenarios/") {
        let relative = file.strip_prefix(root()).expect("in the repository");
        let written = std::fs::read_to_string(&file).expect("a scenario");
        let (head, source) = written.split_once("[source]\n").expect("a [source]");
        let (path_line, rest) = source.split_once('\n').expect("its first line");
        assert!(path_line.starts_with("path = "), "{}: {path_line}", file.display());
        let name = relative.file_stem().unwrap().to_string_lossy();
        let s3 = format!(
            "[source]\ns3 = \"s3://backups/{name}/\"\naccess_key_env = \"AWS_ACCESS_KEY_ID\"\nsecret_key_env = \"AWS_SECRET_ACCESS_KEY\"\n"
        );
        scratch.write(&relative.display().to_string(), format!("{head}{s3}{rest}"));
    }
    scratch.write("scenarios/latin1/globals.sql", latin1_globals(&format!("PASSWORD '{VERIFIER}'")));
    // Text a YAML reader could take for something else, in a file whose name has a space.
    scratch.write("scenarios/odd/odd globals.sql", ODD);
    scratch.write(
        "scenarios/odd/odd.toml",
        "[source]\ns3 = \"s3://backups/odd/\"\n[restore]\nglobals = \"odd globals.sql\"\n",
    );
    scratch.write(
        "scenarios/latin1/shop.toml",
        "baseline = \"../../fixtures/baselines/plur.json\"\n[source]\ns3 = \"s3://backups/shop/\"\n\
         [restore]\nglobals = \"globals.sql\"\n[checks.row_counts]\nbaseline = true\n",
    );
    scratch.path("scenarios")
}

/// A role's password verifier as pg_dumpall writes it in a globals file: never in an object.
const VERIFIER: &str = "SCRAM-SHA-256$4096:a3ViZS10ZXN0$kube-stored-key-7f6e=:kube-server-key-5d4c=";

/// A globals file in Latin-1 (carried as binaryData), its role's password given as `password`.
fn latin1_globals(password: &str) -> Vec<u8> {
    [b"CREATE ROLE caf\xe9;\nALTER ROLE caf\xe9 WITH LOGIN ".as_slice(), password.as_bytes(), b";\n"].concat()
}

/// A globals file whose lines YAML could read as something else than text.
const ODD: &str =
    "-- yes\n---\n...\n  indented: true\nkey: value # not a comment\n\ttab\ntrailing space \n2026-11-22\n\n\n";

/// The ConfigMap's files as PyYAML (YAML 1.1, as Kubernetes reads it) reads them: each item's
/// path in the pod, and its text (or, as `binaryData` holds it, its base64).
fn carried_by_pyyaml(file: &Path) -> Vec<(String, String)> {
    let script = "import json, sys, yaml\n\
        docs = list(yaml.safe_load_all(open(sys.argv[1])))\n\
        cm = next(d for d in docs if d['kind'] == 'ConfigMap')\n\
        work = next(d for d in docs if d['kind'] in ('Job', 'CronJob', 'StatefulSet'))['spec']\n\
        pod = (work.get('jobTemplate', {}).get('spec') or work)['template']['spec']\n\
        items = next(v for v in pod['volumes'] if v['name'] == 'scenarios')['configMap']['items']\n\
        data = dict(cm.get('data', {}), **cm.get('binaryData', {}))\n\
        print(json.dumps([[i['path'], data[i['key']]] for i in items]))\n";
    let output = Command::new("python3").args(["-c", script]).arg(file).output().expect("python3");
    assert!(output.status.success(), "{}", text(&output));
    serde_json::from_slice(&output.stdout).expect("the files")
}

fn documents(file: &Path) -> Vec<Yaml> {
    let text = std::fs::read_to_string(file).expect("the objects");
    YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn of_kind<'a>(docs: &'a [Yaml], kind: &str) -> &'a Yaml {
    docs.iter().find(|d| d["kind"].as_str() == Some(kind)).unwrap_or_else(|| panic!("no {kind}: {docs:?}"))
}

fn strings(list: &Yaml) -> Vec<&str> {
    list.as_vec().map(|v| v.iter().filter_map(Yaml::as_str).collect()).unwrap_or_default()
}

/// The image's `postgres` (ci/image/build labels it: uid 100, gid 102), or none where the
/// platform assigns the uid (`--platform-uid`).
type User = Option<(i64, i64)>;
const IMAGE_USER: User = Some((100, 102));

/// What Pod Security "restricted" asks of the pod, and of each container; `user`, whom they run as.
fn assert_restricted(pod: &Yaml, user: User) {
    let context = &pod["securityContext"];
    assert_eq!(context["runAsNonRoot"].as_bool(), Some(true), "{pod:?}");
    let (uid, gid) = (user.map(|u| u.0), user.map(|u| u.1));
    for (key, id) in [("runAsUser", uid), ("runAsGroup", gid), ("fsGroup", gid)] {
        assert_eq!(context[key].as_i64(), id, "{key}");
    }
    assert_eq!(context["seccompProfile"]["type"].as_str(), Some("RuntimeDefault"));
    for (key, value) in [
        ("automountServiceAccountToken", false),
        ("enableServiceLinks", false),
        ("shareProcessNamespace", false),
        ("hostNetwork", false),
        ("hostPID", false),
        ("hostIPC", false),
    ] {
        assert_eq!(pod[key].as_bool(), Some(value), "{key}");
    }
    let containers: Vec<&Yaml> =
        pod["initContainers"].as_vec().unwrap().iter().chain(pod["containers"].as_vec().unwrap()).collect();
    assert_eq!(containers.len(), 2);
    for container in containers {
        let name = container["name"].as_str().unwrap();
        let c = &container["securityContext"];
        assert_eq!(c["runAsNonRoot"].as_bool(), Some(true), "{name}");
        assert_eq!((c["runAsUser"].as_i64(), c["runAsGroup"].as_i64()), (uid, gid), "{name}");
        assert_eq!(c["allowPrivilegeEscalation"].as_bool(), Some(false), "{name}");
        assert_eq!(c["readOnlyRootFilesystem"].as_bool(), Some(true), "{name}");
        assert_eq!(strings(&c["capabilities"]["drop"]), ["ALL"], "{name}");
        assert!(c["capabilities"]["add"].is_badvalue(), "{name} adds no capability");
        assert_eq!(c["seccompProfile"]["type"].as_str(), Some("RuntimeDefault"), "{name}");
        let resources = &container["resources"];
        for resource in ["memory", "cpu"] {
            assert!(!resources["limits"][resource].is_badvalue(), "{name} {resource}");
            assert_eq!(resources["limits"][resource], resources["requests"][resource], "{name} {resource}");
        }
    }
    for volume in pod["volumes"].as_vec().unwrap() {
        let kinds: Vec<&str> =
            volume.as_hash().unwrap().keys().filter_map(Yaml::as_str).filter(|k| *k != "name").collect();
        assert!(
            matches!(kinds[..], ["emptyDir"] | ["configMap"] | ["secret"] | ["persistentVolumeClaim"]),
            "a volume restricted allows: {kinds:?}"
        );
    }
}

/// The Job's spec: an index per scenario, and retries for a drill that could not run only.
fn assert_indexed(job: &Yaml, scenarios: usize, retries: i64, user: User) {
    assert_eq!(job["completionMode"].as_str(), Some("Indexed"));
    assert_eq!(job["completions"].as_i64(), Some(scenarios as i64));
    assert_eq!(job["backoffLimitPerIndex"].as_i64(), Some(retries));
    assert!(job["maxFailedIndexes"].is_badvalue() && job["backoffLimit"].is_badvalue(), "{job:?}");
    let rules = job["podFailurePolicy"]["rules"].as_vec().unwrap();
    assert_eq!(rules.len(), 2, "{rules:?}");
    assert_eq!(rules[0]["action"].as_str(), Some("Ignore"));
    assert_eq!(rules[0]["onPodConditions"][0]["type"].as_str(), Some("DisruptionTarget"));
    assert_eq!(rules[1]["action"].as_str(), Some("FailIndex"));
    let codes = &rules[1]["onExitCodes"];
    assert_eq!((codes["containerName"].as_str(), codes["operator"].as_str()), (Some("pgdrill"), Some("In")));
    let values: Vec<i64> = codes["values"].as_vec().unwrap().iter().filter_map(Yaml::as_i64).collect();
    assert_eq!(values, [1, 2], "a FAIL and an unusable scenario end their index; 3, 137 and 143 are retried");
    let pod = &job["template"]["spec"];
    assert_restricted(pod, user);
    assert_eq!(pod["restartPolicy"].as_str(), Some("Never"));
    let server = &pod["initContainers"][0];
    assert_eq!((server["name"].as_str(), server["restartPolicy"].as_str()), (Some("postgres"), Some("Always")));
    assert_eq!(strings(&server["command"]), ["/usr/lib/pgdrill/bin/pgdrill", "pod-server"]);
    assert!(server["env"].is_badvalue(), "the server's container holds no environment");
    let hidden: Vec<&str> = server["volumeMounts"]
        .as_vec()
        .unwrap()
        .iter()
        .filter(|m| m["name"].as_str() == Some("no-programs") && m["readOnly"].as_bool() == Some(true))
        .filter_map(|m| m["mountPath"].as_str())
        .collect();
    assert_eq!(hidden, ["/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin"]);
    let args = strings(&pod["containers"][0]["args"]);
    let count = scenarios.to_string();
    assert_eq!(args[args.len() - 4..], ["--shard-index-env", "JOB_COMPLETION_INDEX", "--shard-count", &count[..]]);
}

/// The objects for every scenario that can run in a cluster, with every flag, and a CronJob
/// without egress: valid by Kubernetes' schemas, and saying what they must.
#[test]
fn the_objects_are_valid_kubernetes_and_hold_the_drills_to_the_restricted_standard() {
    let scratch = Scratch::new();
    let folder = scenarios(&scratch);
    let (job_file, cron_file) = (scratch.path("job.yaml"), scratch.path("cron.yaml"));
    let every = pgdrill(&["kube", folder.to_str().unwrap(), "-o", cron_file.to_str().unwrap()]);
    assert_eq!(every.status.code(), Some(2), "powernode runs its application: refused\n{}", text(&every));
    assert!(text(&every).contains("scenario `powernode` runs `[app]` beside the drill"), "{}", text(&every));
    std::fs::remove_file(folder.join("powernode.toml")).expect("drop the scenario with an application");

    let mut args = vec!["kube", folder.to_str().unwrap(), "--name", "nightly", "--namespace", "drills"];
    args.extend(["--parallelism", "3", "--retries", "4", "--reports", "s3://drills/reports/"]);
    args.extend(["--signing-key-secret", "drill-signing", "--allow-egress", "10.0.0.0/8:9000"]);
    args.extend(["--secret-env", "AWS_SECRET_ACCESS_KEY=backup-s3/secret-key"]);
    args.extend(["--secret-env", "PGDRILL_WEBHOOK_URL=drill-webhook/url", "--host-alias", "10.0.0.5=minio.backups"]);
    args.extend(["--env", "AWS_ENDPOINT_URL=http://minio.backups:9000"]);
    args.extend(["--tag", "plur,controlplane", "-o", job_file.to_str().unwrap()]);
    let written = pgdrill(&args);
    assert_eq!(written.status.code(), Some(0), "{}", text(&written));
    let mut cron_args =
        vec!["kube", folder.to_str().unwrap(), "--schedule", "0 3 * * *", "--time-zone", "Europe/Paris"];
    cron_args.extend(["--image-pull-secret", "registry", "--image-pull-policy", "IfNotPresent"]);
    cron_args
        .extend(["--service-account-annotation", "iam.gke.io/gcp-service-account=drills@p.iam.gserviceaccount.com"]);
    cron_args.extend([
        "--node-selector",
        "pool=drills",
        "--toleration",
        "dedicated=drills:NoSchedule",
        "--deadline",
        "8h",
        "--platform-uid",
    ]);
    let cron = pgdrill(&[&cron_args[..], &["-o", cron_file.to_str().unwrap()]].concat());
    assert_eq!(cron.status.code(), Some(0), "{}", text(&cron));
    assert!(text(&cron).contains("no --allow-egress: the pods reach nothing"), "{}", text(&cron));
    assert!(text(&cron).contains("the reports go to `/tmp/pgdrill-reports` inside each pod"), "{}", text(&cron));
    let left_out = "note: 1 role password of scenarios/latin1/globals.sql left out of the ConfigMap";
    assert!(text(&cron).contains(left_out), "{}", text(&cron));

    for file in [&job_file, &cron_file] {
        for version in VERSIONS {
            let validated = kubernetes_validate(version, file);
            assert!(validated.status.success(), "Kubernetes {version}: {}\n{}", text(&validated), file.display());
        }
        let all = std::fs::read_to_string(file).unwrap();
        for (name, value) in SECRETS.into_iter().chain([("a role's verifier", VERIFIER)]) {
            assert!(!all.contains(value), "{name}'s value is in {}", file.display());
        }
    }
    for output in [&every, &written, &cron] {
        for (name, value) in SECRETS {
            assert!(!text(output).contains(value), "{name}'s value was printed");
        }
    }

    let docs = documents(&job_file);
    let kinds: Vec<&str> = docs.iter().filter_map(|d| d["kind"].as_str()).collect();
    assert_eq!(kinds, ["ConfigMap", "ServiceAccount", "NetworkPolicy", "Job"]);
    for doc in &docs {
        let labels = &doc["metadata"]["labels"];
        assert_eq!(labels["app.kubernetes.io/name"].as_str(), Some("pgdrill"));
        assert_eq!(labels["app.kubernetes.io/managed-by"].as_str(), Some("pgdrill"));
        assert_eq!(doc["metadata"]["namespace"].as_str(), Some("drills"));
    }
    let job = of_kind(&docs, "Job");
    let names = job["metadata"]["annotations"]["pgdrill.dev/scenarios"].as_str().unwrap();
    assert_eq!(names, "controlplane,plur-pre-migration,plur", "by index: the selected scenarios' paths, sorted");
    assert_indexed(&job["spec"], 3, 4, IMAGE_USER);
    assert_eq!(job["spec"]["parallelism"].as_i64(), Some(3));
    let pod = &job["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"].as_str(), Some("nightly"));
    assert_eq!(pod["hostAliases"][0]["hostnames"][0].as_str(), Some("minio.backups"));
    let drill = &pod["containers"][0];
    let env = drill["env"].as_vec().unwrap();
    let secret = env.iter().find(|e| e["name"].as_str() == Some("AWS_SECRET_ACCESS_KEY")).expect("the S3 key");
    assert!(secret["value"].is_badvalue(), "by reference only: {secret:?}");
    assert_eq!(secret["valueFrom"]["secretKeyRef"]["name"].as_str(), Some("backup-s3"));
    let endpoint = env.iter().find(|e| e["name"].as_str() == Some("AWS_ENDPOINT_URL")).expect("--env");
    assert_eq!(endpoint["value"].as_str(), Some("http://minio.backups:9000"));
    let key_file = env.iter().find(|e| e["name"].as_str() == Some("PGDRILL_SIGNING_KEY_FILE")).expect("the key");
    assert_eq!(key_file["value"].as_str(), Some("/etc/pgdrill/signing/key"));
    let args = strings(&drill["args"]);
    assert_eq!(args[..2], ["run", "/etc/pgdrill/scenarios/scenarios/controlplane.toml"]);
    assert!(args.windows(2).any(|w| w == ["--reports", "s3://drills/reports/"]), "{args:?}");
    assert!(args.windows(2).any(|w| w == ["--target", "pod"]), "{args:?}");

    let account = of_kind(&docs, "ServiceAccount");
    assert_eq!(account["automountServiceAccountToken"].as_bool(), Some(false));
    let policy = &of_kind(&docs, "NetworkPolicy")["spec"];
    assert_eq!(strings(&policy["policyTypes"]), ["Ingress", "Egress"]);
    assert!(policy["ingress"].is_badvalue(), "no ingress rule: nothing comes in");
    let egress = policy["egress"].as_vec().unwrap();
    assert_eq!(egress.len(), 1, "{egress:?}");
    assert_eq!(egress[0]["to"][0]["ipBlock"]["cidr"].as_str(), Some("10.0.0.0/8"));
    assert_eq!(egress[0]["ports"][0]["port"].as_i64(), Some(9000));
    assert_eq!(policy["podSelector"]["matchLabels"]["app.kubernetes.io/instance"].as_str(), Some("nightly"));

    // The ConfigMap rebuilds the folder: every file the scenarios read, at its place.
    let paths = carried(pod);
    for path in [
        "scenarios/plur.toml",
        "fixtures/baselines/plur.json",
        "fixtures/backups/plur.globals.sql",
        "fixtures/plur/migrations/",
        "fixtures/plur/pending-migrations/",
    ] {
        assert!(paths.iter().any(|p| p.starts_with(path)), "{path} is not carried: {paths:?}");
    }
    assert!(!paths.iter().any(|p| p.contains("caracal")), "only the selected scenarios' files: {paths:?}");
    assert!(!paths.iter().any(|p| p.ends_with(".sql.gz") || p.ends_with(".dump")), "no backup travels: {paths:?}");
    let config_map = of_kind(&docs, "ConfigMap");
    let plur = config_map["data"].as_hash().unwrap().iter().find(|(k, _)| k.as_str().unwrap().ends_with("-plur.toml"));
    assert!(plur.unwrap().1.as_str().unwrap().contains("s3 = \"s3://backups/plur/\""));

    let docs = documents(&cron_file);
    let cron = &of_kind(&docs, "CronJob")["spec"];
    assert_eq!((cron["schedule"].as_str(), cron["concurrencyPolicy"].as_str()), (Some("0 3 * * *"), Some("Forbid")));
    assert_eq!(cron["timeZone"].as_str(), Some("Europe/Paris"));
    let template = &cron["jobTemplate"]["spec"]["template"]["spec"];
    assert_eq!(template["activeDeadlineSeconds"].as_i64(), Some(8 * 3600));
    assert_eq!(template["imagePullSecrets"][0]["name"].as_str(), Some("registry"));
    assert_eq!(template["nodeSelector"]["pool"].as_str(), Some("drills"));
    assert_eq!(template["tolerations"][0]["effect"].as_str(), Some("NoSchedule"));
    let cron_docs = documents(&cron_file);
    let account = &of_kind(&cron_docs, "ServiceAccount")["metadata"]["annotations"];
    assert_eq!(account["iam.gke.io/gcp-service-account"].as_str(), Some("drills@p.iam.gserviceaccount.com"));
    assert!(cron["startingDeadlineSeconds"].as_i64().is_some() && cron["failedJobsHistoryLimit"].as_i64().is_some());
    assert_indexed(&cron["jobTemplate"]["spec"], 8, 2, None);
    let policy = &of_kind(&docs, "NetworkPolicy")["spec"];
    assert!(policy["egress"].as_vec().is_some_and(Vec::is_empty), "no allow-list: no egress at all\n{policy:?}");
    assert!(docs.iter().all(|d| d["metadata"]["namespace"].is_badvalue()), "kubectl's namespace");
    assert!(carried(&cron["jobTemplate"]["spec"]["template"]["spec"]).contains(&"scenarios/latin1/globals.sql"));
    let binary = of_kind(&docs, "ConfigMap")["binaryData"].as_hash().expect("the latin-1 globals file as binaryData");
    assert_eq!(binary.len(), 1, "{binary:?}");

    // Read as Kubernetes reads YAML (1.1), every file is byte for byte the one it carries, a
    // globals file's role passwords left out (so its verifier is in no encoding either).
    let files = carried_by_pyyaml(&cron_file);
    assert_eq!(files.len(), carried(&cron["jobTemplate"]["spec"]["template"]["spec"]).len());
    for (path, carried) in &files {
        let mut bytes = std::fs::read(scratch.path(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
        if path == "scenarios/latin1/globals.sql" {
            bytes = latin1_globals("/* pgdrill kube: a secret left out */");
        }
        match String::from_utf8(bytes) {
            Ok(text) => assert_eq!(carried, &text, "{path}"),
            Err(binary) => assert_eq!(carried, &base64(binary.as_bytes()), "{path}"),
        }
    }
    assert!(files.iter().any(|(path, text)| path == "scenarios/odd/odd globals.sql" && text == ODD), "{files:?}");
}

/// `--follow`: a StatefulSet of the drills' pod, valid by Kubernetes' schemas and held to the
/// restricted standard, that follows the scenario until stopped (started again when it ends, no
/// deadline), its state on a claim of its own, the archive's claim read-only at the path the
/// scenario names, ready while `follow-status` passes; read back by PyYAML as written. What a
/// follower cannot be is refused.
#[test]
fn a_follower_is_a_valid_stateful_set_ready_while_its_proof_lag_is_within_the_bound() {
    let scratch = Scratch::new();
    let scenario = scratch.write(
        "follow/books.toml",
        "baseline = \"../fixtures/plur.json\"\n[source]\npath = \"/archive/base\"\nwal_archive = \"/archive/wal\"\n",
    );
    scratch.write("fixtures/plur.json", std::fs::read(root().join("fixtures/baselines/plur.json")).unwrap());
    let file = scratch.path("follow.yaml");
    let mut args = vec!["kube", scenario.to_str().unwrap(), "--follow", "--name", "books", "--namespace", "drills"];
    args.extend(["--archive-claim", "wal-archive:/archive", "--state-size", "2Gi", "--max-lag", "90s"]);
    args.extend(["--gap-after", "2m", "--secret-env", "AWS_SECRET_ACCESS_KEY=backup-s3/secret-key"]);
    let written = pgdrill(&[&args[..], &["-o", file.to_str().unwrap()]].concat());
    assert_eq!(written.status.code(), Some(0), "{}", text(&written));
    assert!(text(&written).contains("a follower of scenario books (StatefulSet books, its state on a claim of 2Gi"));
    for version in VERSIONS {
        let validated = kubernetes_validate(version, &file);
        assert!(validated.status.success(), "Kubernetes {version}: {}", text(&validated));
    }
    let all = std::fs::read_to_string(&file).unwrap();
    assert!(SECRETS.iter().all(|(_, value)| !all.contains(value) && !text(&written).contains(value)));

    let docs = documents(&file);
    let kinds: Vec<&str> = docs.iter().filter_map(|d| d["kind"].as_str()).collect();
    assert_eq!(kinds, ["ConfigMap", "ServiceAccount", "NetworkPolicy", "StatefulSet"]);
    let set = &of_kind(&docs, "StatefulSet")["spec"];
    assert_eq!(set["replicas"].as_i64(), Some(1));
    let pod = &set["template"]["spec"];
    assert_restricted(pod, IMAGE_USER);
    assert_eq!(pod["restartPolicy"].as_str(), Some("Always"));
    assert!(pod["activeDeadlineSeconds"].is_badvalue(), "a follower runs until stopped");
    let policy = &of_kind(&docs, "NetworkPolicy")["spec"];
    assert!(policy["ingress"].is_badvalue() && policy["egress"].as_vec().is_some_and(Vec::is_empty));
    assert_eq!(carried(pod), ["fixtures/plur.json", "follow/books.toml"], "the baseline travels, the backup does not");

    // As Kubernetes reads YAML (1.1): the command, the probe, the claims.
    let script = "import json, sys, yaml\n\
        s = next(d for d in yaml.safe_load_all(open(sys.argv[1])) if d['kind'] == 'StatefulSet')['spec']\n\
        c = s['template']['spec']['containers'][0]\n\
        v = [x for x in s['template']['spec']['volumes'] if x['name'] == 'archive']\n\
        print(json.dumps([c['args'], c['readinessProbe']['exec']['command'], c['volumeMounts'][-2:], v,\n\
            s['volumeClaimTemplates'][0]['spec']['resources']['requests']]))\n";
    let output = Command::new("python3").args(["-c", script]).arg(&file).output().expect("python3");
    assert!(output.status.success(), "{}", text(&output));
    let read: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let state = "/var/lib/pgdrill/state";
    assert_eq!(
        read,
        serde_json::json!([
            ["follow", "/etc/pgdrill/scenarios/follow/books.toml", "--state", state, "--reports",
                "/var/lib/pgdrill/state/reports", "--target", "pod", "--gap-after", "2m"],
            ["/usr/lib/pgdrill/bin/pgdrill", "follow-status", "--state", state, "--max-lag", "1m 30s"],
            [{"mountPath": state, "name": "state"}, {"mountPath": "/archive", "name": "archive", "readOnly": true}],
            [{"name": "archive", "persistentVolumeClaim": {"claimName": "wal-archive", "readOnly": true}}],
            {"storage": "2Gi"},
        ])
    );

    let two = scratch.write("follow/maps.toml", "[source]\npath = \"/archive/maps\"\nwal_archive = \"/archive/wal\"\n");
    let folder = two.parent().unwrap().to_str().unwrap();
    let out = scratch.path("refused.yaml");
    for (flags, says) in [
        (
            &[folder, "--follow", "--archive-claim", "w:/archive"][..],
            "--follow writes the follower of one scenario, and 2 were selected",
        ),
        (
            &[two.to_str().unwrap(), "--follow"],
            "is a folder of this machine: mount the volume the source archives into",
        ),
        (&[two.to_str().unwrap(), "--follow", "--archive-claim", "w:/tmp/wal"], "/tmp is the pod's own"),
        (
            &[two.to_str().unwrap(), "--follow", "--schedule", "0 3 * * *"],
            "'--follow' cannot be used with '--schedule <CRON>'",
        ),
        (&[two.to_str().unwrap(), "--archive-claim", "w:/archive"], "--follow"),
    ] {
        let refused = pgdrill(&[&["kube"][..], flags, &["-o", out.to_str().unwrap()]].concat());
        assert_eq!(refused.status.code(), Some(2), "{flags:?}\n{}", text(&refused));
        assert!(text(&refused).contains(says), "{flags:?}: {}", text(&refused));
        assert!(!out.exists(), "nothing written");
    }
}

/// Standard base64, padded.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            out.push(if i <= chunk.len() { ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char } else { '=' });
        }
    }
    out
}

/// The paths the scenarios' ConfigMap rebuilds in a pod.
fn carried(pod: &Yaml) -> Vec<&str> {
    let volume = pod["volumes"].as_vec().unwrap().iter().find(|v| v["name"].as_str() == Some("scenarios")).unwrap();
    volume["configMap"]["items"].as_vec().unwrap().iter().filter_map(|i| i["path"].as_str()).collect()
}

/// The validator does refuse: the objects with a field Kubernetes does not have, and a native
/// sidecar before Kubernetes had them.
#[test]
fn kubernetes_validate_refuses_what_kubernetes_would() {
    let scratch = Scratch::new();
    scratch.write("s/orders.toml", "[source]\ns3 = \"s3://backups/orders/\"\n");
    let file = scratch.path("job.yaml");
    let written = pgdrill(&["kube", scratch.path("s").to_str().unwrap(), "-o", file.to_str().unwrap()]);
    assert_eq!(written.status.code(), Some(0), "{}", text(&written));
    assert!(kubernetes_validate("1.37.0", &file).status.success());
    let yaml = std::fs::read_to_string(&file).unwrap();
    let typo = scratch.write("typo.yaml", yaml.replace("readOnlyRootFilesystem:", "readOnlyRootFileSystem:"));
    let refused = kubernetes_validate("1.37.0", &typo);
    assert!(!refused.status.success(), "{}", text(&refused));
    assert!(text(&refused).contains("readOnlyRootFileSystem"), "{}", text(&refused));
    let before_sidecars = kubernetes_validate("1.27.0", &file);
    assert!(!before_sidecars.status.success(), "1.27 has no restartPolicy on a container: {}", text(&before_sidecars));
}

/// What cannot run in a cluster, or a value Kubernetes would refuse, is said before anything is
/// written, with exit code 2.
#[test]
fn what_cannot_run_in_a_cluster_is_refused_before_anything_is_written() {
    let scratch = Scratch::new();
    let out = scratch.path("objects.yaml");
    let cases = [
        ("[source]\npath = \"/var/backups/orders.dump\"\n", &[][..], "drills a backup on this machine"),
        ("[source]\nurl_file = \"/run/secrets/backup-url\"\n", &[], "reads a secret from a file"),
        ("[source]\ns3 = \"s3://b/k\"\n[restore]\nglobals = \"missing.sql\"\n", &[], "cannot read"),
        ("[source]\ns3 = \"s3://b/k\"\n", &["--allow-egress", "10.1.2.3/8:443"], "its host bits are set"),
        ("[source]\ns3 = \"s3://b/k\"\n", &["--secret-env", "HOME=s/k"], "pgdrill's container sets it"),
        ("[source]\ns3 = \"s3://b/k\"\n", &["--env", "AWS_SECRET_ACCESS_KEY=x"], "looks like a credential"),
        ("[source]\ns3 = \"s3://b/k\"\n", &["--image", "pgdrill/pgdrill:latest"], "not an image with a pinned tag"),
        ("[source]\ns3 = \"s3://b/k\"\n", &["--memory", "4GB"], "is not a size quantity"),
        ("[source]\ns3 = \"s3://b/k\"\n", &["--schedule", "nightly"], "is not a cron schedule"),
        ("[source]\ns3 = \"s3://b/k\"\n", &["--tag", "nope"], "no scenario matched"),
        ("[source]\ns3 = \"s3://b/k\"\nsha256 = \"00\"\n", &[], "`sha256` must be 64 hexadecimal characters"),
    ];
    for (toml, flags, says) in cases {
        let scenario = scratch.write("s/orders.toml", toml);
        let mut args = vec!["kube", scenario.to_str().unwrap(), "-o", out.to_str().unwrap()];
        args.extend(flags);
        let refused = pgdrill(&args);
        assert_eq!(refused.status.code(), Some(2), "{toml} {flags:?}\n{}", text(&refused));
        assert!(text(&refused).contains(says), "{toml} {flags:?}: {}", text(&refused));
        assert!(!out.exists(), "nothing written");
    }
}

/// An Indexed Job's pod finds its shard in JOB_COMPLETION_INDEX, counted from 0: index 2 of 3
/// is shard 3/3, which has none of two scenarios (no drill runs); an index past the count is
/// refused.
#[test]
fn a_pod_drills_the_shard_its_index_names() {
    let scratch = Scratch::new();
    let folder = scratch.path("s");
    for name in ["a", "b"] {
        scratch.write(&format!("s/{name}.toml"), "[source]\ns3 = \"s3://backups/x/\"\n");
    }
    let run = |index: &str| {
        Command::new(env!("CARGO_BIN_EXE_pgdrill"))
            .args(["run", folder.to_str().unwrap(), "--shard-index-env", "JOB_COMPLETION_INDEX", "--shard-count", "3"])
            .env("JOB_COMPLETION_INDEX", index)
            .current_dir(scratch.dir.path())
            .output()
            .expect("run pgdrill")
    };
    let third = run("2");
    assert_eq!(third.status.code(), Some(0), "{}", text(&third));
    assert!(text(&third).contains("shard 3/3 has none of the 2 selected scenarios"), "{}", text(&third));
    let past = run("3");
    assert_eq!(past.status.code(), Some(2), "{}", text(&past));
    assert!(text(&past).contains("`JOB_COMPLETION_INDEX` is `3`, not a shard's index from 0 to 2"), "{}", text(&past));
}

//! What a real cluster asks of the pods beside the drill's own settings: where the image is
//! pulled from and with which credentials, which identity the ServiceAccount maps to in the
//! cloud (IRSA, Workload Identity), which nodes the pods may land on, and which time zone a
//! schedule is read in.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{LocalObjectReference, Toleration};

use super::values::ValueError;

/// The cluster's side of the plan; empty: the objects as before, for any cluster.
#[derive(Debug, Clone, Default)]
pub(crate) struct Cluster {
    /// Secrets of type `kubernetes.io/dockerconfigjson` the image is pulled with.
    pub pull_secrets: Vec<String>,
    /// `Always`, `IfNotPresent` or `Never`; none: Kubernetes' default for the tag.
    pub pull_policy: Option<String>,
    /// On the ServiceAccount: `eks.amazonaws.com/role-arn`, `iam.gke.io/gcp-service-account`.
    pub account_annotations: BTreeMap<String, String>,
    /// The schedule's IANA time zone (`Europe/Paris`); none: the controller's (UTC, mostly).
    pub time_zone: Option<String>,
    pub node_selector: BTreeMap<String, String>,
    pub tolerations: Vec<Toleration>,
}

impl Cluster {
    /// The pull secrets as a pod names them.
    pub(crate) fn image_pull_secrets(&self) -> Option<Vec<LocalObjectReference>> {
        (!self.pull_secrets.is_empty())
            .then(|| self.pull_secrets.iter().map(|name| LocalObjectReference { name: name.clone() }).collect())
    }
}

/// `KEY=VALUE`, the key a qualified name as Kubernetes takes for labels and annotations
/// (`prefix/name`, the name at most 63 characters).
pub(crate) fn key_value(text: &str) -> Result<(String, String), ValueError> {
    let bad = || ValueError::KeyValue(text.to_owned());
    let (key, value) = text.split_once('=').ok_or_else(bad)?;
    let (prefix, name) = key.rsplit_once('/').map_or((None, key), |(p, n)| (Some(p), n));
    let name_ok = !name.is_empty()
        && name.len() <= 63
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    let prefix_ok = prefix.is_none_or(|p| p.len() <= 253 && p.split('.').all(|l| super::label(l, 63).is_ok()));
    if !name_ok || !prefix_ok {
        return Err(bad());
    }
    Ok((key.to_owned(), value.to_owned()))
}

/// `KEY[=VALUE]:EFFECT`: pods that tolerate a node's taint (`dedicated=drills:NoSchedule`).
pub(crate) fn toleration(text: &str) -> Result<Toleration, ValueError> {
    let bad = || ValueError::Toleration(text.to_owned());
    let (taint, effect) = text.rsplit_once(':').ok_or_else(bad)?;
    if !matches!(effect, "NoSchedule" | "PreferNoSchedule" | "NoExecute") {
        return Err(bad());
    }
    let (key, value) = match taint.split_once('=') {
        Some((key, value)) => (key, Some(value.to_owned())),
        None => (taint, None),
    };
    key_value(&format!("{key}=")).map_err(|_| bad())?;
    Ok(Toleration {
        operator: Some(if value.is_some() { "Equal" } else { "Exists" }.into()),
        key: Some(key.to_owned()),
        value,
        effect: Some(effect.to_owned()),
        toleration_seconds: None,
    })
}

/// How the kubelet pulls the image: `Always`, `IfNotPresent` or `Never`.
pub(crate) fn pull_policy(text: &str) -> Result<String, ValueError> {
    match text {
        "Always" | "IfNotPresent" | "Never" => Ok(text.to_owned()),
        _ => Err(ValueError::PullPolicy(text.to_owned())),
    }
}

/// `--deadline`: a duration as scenarios write them (`8h`, `90m`), a minute at least.
pub(crate) fn deadline(text: &str) -> Result<std::time::Duration, ValueError> {
    match humantime::parse_duration(text) {
        Ok(d) if d >= std::time::Duration::from_secs(60) => Ok(d),
        _ => Err(ValueError::Deadline(text.to_owned())),
    }
}

/// An IANA time zone name as the CronJob controller reads it (`Europe/Paris`, `UTC`): letters,
/// digits, `/`, `_`, `-`, `+`; no leading `/` and no `..`.
pub(crate) fn time_zone(text: &str) -> Result<String, ValueError> {
    let ok = !text.is_empty()
        && text.len() <= 64
        && text.bytes().all(|b| b.is_ascii_alphanumeric() || b"/_-+".contains(&b))
        && !text.starts_with('/')
        && !text.contains("//");
    if ok { Ok(text.to_owned()) } else { Err(ValueError::TimeZone(text.to_owned())) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotations_tolerations_and_zones_are_checked_as_kubernetes_checks_them() {
        assert_eq!(
            key_value("eks.amazonaws.com/role-arn=arn:aws:iam::123456789012:role/drills"),
            Ok(("eks.amazonaws.com/role-arn".into(), "arn:aws:iam::123456789012:role/drills".into()))
        );
        assert!(key_value("pool=drills").is_ok());
        assert!(key_value("no value").is_err() && key_value("Bad_Prefix/x=1").is_err() && key_value("=1").is_err());
        let t = toleration("dedicated=drills:NoSchedule").unwrap();
        assert_eq!(
            (t.key.as_deref(), t.operator.as_deref(), t.value.as_deref()),
            (Some("dedicated"), Some("Equal"), Some("drills"))
        );
        assert_eq!(toleration("gpu:NoExecute").unwrap().operator.as_deref(), Some("Exists"));
        assert!(toleration("dedicated=drills").is_err() && toleration("x:Sometimes").is_err());
        assert_eq!(time_zone("Europe/Paris").as_deref(), Ok("Europe/Paris"));
        assert!(time_zone("../etc/passwd").is_err() && time_zone("").is_err());
        assert!(pull_policy("IfNotPresent").is_ok() && pull_policy("ifnotpresent").is_err());
        assert_eq!(deadline("8h"), Ok(std::time::Duration::from_secs(8 * 3600)));
        assert!(deadline("30s").is_err() && deadline("soon").is_err());
    }
}

//! The values `pgdrill kube` reads from its command line, checked as Kubernetes will check them
//! (names, quantities, a schedule, CIDRs) so that a mistake is said before anything is written.

use std::net::IpAddr;

/// A value of the command line that Kubernetes would refuse, or that pgdrill cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ValueError {
    #[error(
        "`{0}` is not a name Kubernetes takes here: 1 to {1} lower-case letters, digits and `-`, starting and ending with a letter or digit"
    )]
    Name(String, usize),
    #[error("`{0}` is not a {1} quantity (for example {2})")]
    Quantity(String, &'static str, &'static str),
    #[error("`{0}` is not an image with a pinned tag or digest (for example pgdrill/pgdrill:0.1.0-pg17)")]
    Image(String),
    #[error(
        "`{0}` is not a cron schedule: five fields (minute hour day-of-month month day-of-week), or @hourly, @daily, @weekly, @monthly, @yearly"
    )]
    Schedule(String),
    #[error("`{0}` is not CIDR:PORT (for example 10.0.0.0/8:443, 192.0.2.10:9000 or 10.96.0.10/32:53/udp)")]
    Egress(String),
    #[error("`{0}`: {1}")]
    Cidr(String, String),
    #[error("`{0}` is not IP=HOSTNAME (for example 10.0.0.5=minio.backups.svc)")]
    HostAlias(String),
    #[error(
        "`{0}` is not VAR=SECRET/KEY (an environment variable, then the Secret and its key it is read from: AWS_SECRET_ACCESS_KEY=backup-s3/secret-key)"
    )]
    SecretEnv(String),
    #[error("`{0}` is not VAR=VALUE (an environment variable and its value: AWS_REGION=eu-west-1)")]
    PlainEnv(String),
    #[error(
        "`{0}` looks like a credential, and --env writes its value into the objects: give it with --secret-env {0}=SECRET/KEY"
    )]
    Credential(String),
    #[error("`{0}` is not KEY=VALUE (a label or annotation key, `prefix/name`, then its value: pool=drills)")]
    KeyValue(String),
    #[error("`{0}` is not KEY[=VALUE]:EFFECT (a node taint to tolerate: dedicated=drills:NoSchedule)")]
    Toleration(String),
    #[error("`{0}` is not a time zone name of the IANA database (for example Europe/Paris or UTC)")]
    TimeZone(String),
    #[error("`{0}` is not a duration of a minute or more (write it like 8h or 90m)")]
    Deadline(String),
    #[error("`{0}` is not Always, IfNotPresent or Never")]
    PullPolicy(String),
    #[error("`{0}` is not SECRET or SECRET/KEY (a Secret's name, and the key of the private key in it: default `key`)")]
    SecretKey(String),
    #[error(
        "`{0}` is not CLAIM:PATH (a PersistentVolumeClaim's name, then the absolute folder it is mounted at: wal-archive:/archive)"
    )]
    Claim(String),
    #[error(
        "`{0}`: {1} is the pod's own, or the image's: mount the claim at a folder of its own (for example /archive)"
    )]
    ClaimPath(String, &'static str),
}

/// A DNS-1123 label of at most `max` characters (the name of an object, a namespace).
pub(crate) fn label(text: &str, max: usize) -> Result<String, ValueError> {
    let ok = !text.is_empty()
        && text.len() <= max
        && text.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !text.starts_with('-')
        && !text.ends_with('-');
    if ok { Ok(text.to_owned()) } else { Err(ValueError::Name(text.to_owned(), max)) }
}

/// A DNS-1123 subdomain (a Secret's name, a host name): labels joined by dots.
fn subdomain(text: &str) -> bool {
    text.len() <= 253 && text.split('.').all(|part| label(part, 63).is_ok())
}

/// A memory or disk size, as Kubernetes writes it: `4Gi`, `512Mi`, `20G`.
pub(crate) fn bytes(text: &str) -> Result<String, ValueError> {
    quantity(text, &["Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "k", "M", "G", "T", "P", "E", ""], "size", "4Gi or 512Mi")
}

/// A CPU quantity: `2`, `1.5`, `500m`.
pub(crate) fn cpu(text: &str) -> Result<String, ValueError> {
    quantity(text, &["m", ""], "CPU", "2 or 500m")
}

fn quantity(text: &str, suffixes: &[&str], what: &'static str, example: &'static str) -> Result<String, ValueError> {
    let number = suffixes.iter().find_map(|suffix| text.strip_suffix(suffix).filter(|n| !n.is_empty()));
    let ok = number.is_some_and(|n| {
        let (whole, fraction) = n.split_once('.').unwrap_or((n, "0"));
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        digits(whole) && digits(fraction) && n.bytes().any(|b| (b'1'..=b'9').contains(&b))
    });
    if ok { Ok(text.to_owned()) } else { Err(ValueError::Quantity(text.to_owned(), what, example)) }
}

/// An image with a pinned tag or digest.
pub(crate) fn image(text: &str) -> Result<String, ValueError> {
    let last = text.rsplit('/').next().unwrap_or_default();
    let pinned = text.contains('@') || last.split_once(':').is_some_and(|(_, tag)| !tag.is_empty() && tag != "latest");
    if pinned && !text.starts_with(['/', ':', '@']) && !text.contains(char::is_whitespace) {
        Ok(text.to_owned())
    } else {
        Err(ValueError::Image(text.to_owned()))
    }
}

/// A CronJob's schedule: five fields of cron, or one of its macros.
pub(crate) fn schedule(text: &str) -> Result<String, ValueError> {
    const MACROS: [&str; 7] = ["@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"];
    let fields: Vec<&str> = text.split_whitespace().collect();
    let field = |f: &&str| f.bytes().all(|b| b.is_ascii_alphanumeric() || b"*,-/?".contains(&b));
    let ok = MACROS.contains(&text.trim()) || (fields.len() == 5 && fields.iter().all(field));
    if ok { Ok(fields.join(" ")) } else { Err(ValueError::Schedule(text.to_owned())) }
}

/// An allowance out of the drill's pod: a network and a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Egress {
    /// Canonical: its host bits zero.
    pub cidr: String,
    pub port: u16,
    /// `TCP`, `UDP` or `SCTP`.
    pub protocol: &'static str,
}

/// `CIDR:PORT`, `IP:PORT` (that address alone), with `/udp` or `/sctp` after the port for
/// another protocol than TCP.
pub(crate) fn egress(text: &str) -> Result<Egress, ValueError> {
    let bad = || ValueError::Egress(text.to_owned());
    let (network, port) = text.rsplit_once(':').ok_or_else(bad)?;
    let (port, protocol) = port.split_once('/').unwrap_or((port, "tcp"));
    let protocol = match protocol.to_ascii_lowercase().as_str() {
        "tcp" => "TCP",
        "udp" => "UDP",
        "sctp" => "SCTP",
        _ => return Err(bad()),
    };
    let port: u16 = port.parse().ok().filter(|&p| p > 0).ok_or_else(bad)?;
    let network = network.trim_start_matches('[').trim_end_matches(']');
    Ok(Egress { cidr: cidr(network)?, port, protocol })
}

/// A network as `ipBlock.cidr` takes it: an address alone is its own network.
fn cidr(text: &str) -> Result<String, ValueError> {
    let bad = |why: &str| ValueError::Cidr(text.to_owned(), why.to_owned());
    let (address, prefix) = match text.split_once('/') {
        Some((address, prefix)) => (address, Some(prefix)),
        None => (text, None),
    };
    let address: IpAddr = address.parse().map_err(|_| bad("not an IP address or a CIDR"))?;
    let bits: u32 = if address.is_ipv4() { 32 } else { 128 };
    let prefix: u32 = match prefix {
        None => bits,
        Some(p) => p.parse().ok().filter(|&p| p <= bits).ok_or_else(|| bad("its prefix length is out of range"))?,
    };
    let value: u128 = match address {
        IpAddr::V4(v4) => u32::from(v4).into(),
        IpAddr::V6(v6) => v6.into(),
    };
    let host_bits = bits - prefix;
    let network = if host_bits >= 128 { 0 } else { value >> host_bits << host_bits };
    if network != value {
        let canonical = match address {
            IpAddr::V4(_) => IpAddr::from(std::net::Ipv4Addr::from(network as u32)),
            IpAddr::V6(_) => IpAddr::from(std::net::Ipv6Addr::from(network)),
        };
        return Err(bad(&format!("its host bits are set (the network is {canonical}/{prefix})")));
    }
    Ok(format!("{address}/{prefix}"))
}

/// An entry of the pod's /etc/hosts, so that a store's name resolves without DNS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HostAlias {
    pub ip: IpAddr,
    pub hostname: String,
}

/// `IP=HOSTNAME`.
pub(crate) fn host_alias(text: &str) -> Result<HostAlias, ValueError> {
    let bad = || ValueError::HostAlias(text.to_owned());
    let (ip, hostname) = text.split_once('=').ok_or_else(bad)?;
    let ip: IpAddr = ip.trim().parse().map_err(|_| bad())?;
    let hostname = hostname.trim().to_ascii_lowercase();
    if !subdomain(&hostname) {
        return Err(bad());
    }
    Ok(HostAlias { ip, hostname })
}

/// A key of a Secret, by reference: the object never holds its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SecretKey {
    pub secret: String,
    pub key: String,
}

fn secret_key(secret: &str, key: &str) -> Option<SecretKey> {
    let key_ok =
        !key.is_empty() && key.len() <= 253 && key.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b));
    (subdomain(secret) && key_ok && key != "." && key != "..")
        .then(|| SecretKey { secret: secret.to_owned(), key: key.to_owned() })
}

/// The signing key's Secret: `SECRET` (its key `key`) or `SECRET/KEY`.
pub(crate) fn signing_secret(text: &str) -> Result<SecretKey, ValueError> {
    let (secret, key) = text.split_once('/').unwrap_or((text, "key"));
    secret_key(secret, key).ok_or_else(|| ValueError::SecretKey(text.to_owned()))
}

/// An environment variable of pgdrill's container read from a Secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SecretEnv {
    pub var: String,
    pub from: SecretKey,
}

/// An environment variable's name as a shell writes it: a letter or `_`, then letters, digits
/// and `_`.
fn var_name(var: &str) -> bool {
    var.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && var.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// `VAR=SECRET/KEY`.
pub(crate) fn secret_env(text: &str) -> Result<SecretEnv, ValueError> {
    let bad = || ValueError::SecretEnv(text.to_owned());
    let (var, from) = text.split_once('=').ok_or_else(bad)?;
    let var_ok = var_name(var);
    let (secret, key) = from.split_once('/').ok_or_else(bad)?;
    match (var_ok, secret_key(secret, key)) {
        (true, Some(from)) => Ok(SecretEnv { var: var.to_owned(), from }),
        _ => Err(bad()),
    }
}

/// An environment variable of pgdrill's container with its value written in the objects (the
/// store's region or endpoint, a proxy setting).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PlainEnv {
    pub var: String,
    pub value: String,
}

/// Parts of a variable's name that say it holds a credential.
const CREDENTIAL_WORDS: [&str; 6] = ["PASSWORD", "PASSWD", "SECRET", "TOKEN", "KEY", "CREDENTIAL"];

/// `VAR=VALUE`, refusing a variable whose name says it holds a credential: the objects are
/// written to a file, a repository, a cluster anyone with read access to it sees.
pub(crate) fn plain_env(text: &str) -> Result<PlainEnv, ValueError> {
    let (var, value) = text.split_once('=').ok_or_else(|| ValueError::PlainEnv(text.to_owned()))?;
    if !var_name(var) {
        return Err(ValueError::PlainEnv(text.to_owned()));
    }
    let upper = var.to_ascii_uppercase();
    if CREDENTIAL_WORDS.iter().any(|word| upper.contains(word)) || upper == "PGPASS" || upper.ends_with("_PASS") {
        return Err(ValueError::Credential(var.to_owned()));
    }
    Ok(PlainEnv { var: var.to_owned(), value: value.to_owned() })
}

/// A PersistentVolumeClaim mounted read-only in pgdrill's container, at a folder of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClaimMount {
    pub claim: String,
    /// Absolute, normal (no `.` or `..`, no trailing `/`).
    pub path: std::path::PathBuf,
}

/// The folders of the pod and of the image a claim is not mounted at, nor over.
const NOT_A_MOUNT: [&str; 12] = [
    super::contract::RUN_DIR,
    super::contract::DATA_DIR,
    super::contract::STATE_DIR,
    super::contract::SCENARIOS_DIR,
    super::contract::SIGNING_DIR,
    super::contract::WORK_DIR,
    "/usr",
    "/bin",
    "/lib",
    "/proc",
    "/sys",
    "/dev",
];

/// `CLAIM:PATH`.
pub(crate) fn claim_mount(text: &str) -> Result<ClaimMount, ValueError> {
    use std::path::{Component, Path};
    let bad = || ValueError::Claim(text.to_owned());
    let (claim, path) = text.split_once(':').ok_or_else(bad)?;
    let path = Path::new(path);
    let normal = path.components().skip(1).all(|c| matches!(c, Component::Normal(_)));
    if !subdomain(claim) || !path.is_absolute() || !normal || path.parent().is_none() {
        return Err(bad());
    }
    let path: std::path::PathBuf = path.components().collect();
    match NOT_A_MOUNT.iter().find(|own| path.starts_with(own) || Path::new(own).starts_with(&path)) {
        Some(own) => Err(ValueError::ClaimPath(text.to_owned(), own)),
        None => Ok(ClaimMount { claim: claim.to_owned(), path }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_is_mounted_at_a_folder_of_its_own() {
        let mount = claim_mount("wal-archive:/archive/").unwrap();
        assert_eq!((mount.claim.as_str(), mount.path.to_str()), ("wal-archive", Some("/archive")));
        assert_eq!(claim_mount("nfs.backups:/mnt/wal").unwrap().path, std::path::Path::new("/mnt/wal"));
        for bad in ["wal-archive", "wal-archive:archive", "Wal:/archive", ":/archive", "w:/", "w:/a/../b"] {
            assert_eq!(claim_mount(bad), Err(ValueError::Claim(bad.to_owned())), "{bad}");
        }
        for (own, at) in [("/tmp", "w:/tmp/wal"), ("/var/lib/pgdrill/target", "w:/var"), ("/usr", "w:/usr/local/wal")] {
            let error = claim_mount(at).unwrap_err().to_string();
            assert!(error.contains(&format!("{own} is the pod's own, or the image's")), "{error}");
        }
    }

    #[test]
    fn names_are_dns_labels_of_their_length() {
        assert_eq!(label("nightly-drills", 52), Ok("nightly-drills".to_owned()));
        for bad in ["", "Nightly", "-a", "a-", "a_b", "a.b", &"a".repeat(53)] {
            assert!(label(bad, 52).is_err(), "{bad}");
        }
    }

    #[test]
    fn quantities_are_numbers_with_their_units() {
        for good in ["4Gi", "512Mi", "20G", "1.5Gi", "1000000"] {
            assert_eq!(bytes(good), Ok(good.to_owned()));
        }
        for bad in ["", "4GB", "Gi", "-1Gi", "0", "0Gi", "1.Gi", "4 Gi", "4gi"] {
            assert!(bytes(bad).is_err(), "{bad}");
        }
        for good in ["2", "500m", "0.5"] {
            assert_eq!(cpu(good), Ok(good.to_owned()));
        }
        assert_eq!(cpu("2Gi").unwrap_err().to_string(), "`2Gi` is not a CPU quantity (for example 2 or 500m)");
    }

    #[test]
    fn an_image_is_pinned() {
        for good in ["pgdrill/pgdrill:0.1.0-pg17", "registry:5000/pgdrill:1", "pgdrill/pgdrill@sha256:00ff"] {
            assert_eq!(image(good), Ok(good.to_owned()));
        }
        for bad in ["pgdrill/pgdrill", "pgdrill/pgdrill:latest", "registry:5000/pgdrill", "a b:1", ""] {
            assert!(image(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_schedule_is_five_fields_or_a_macro() {
        assert_eq!(schedule("0 3 * * *"), Ok("0 3 * * *".to_owned()));
        assert_eq!(schedule(" 30  2 * * MON-FRI "), Ok("30 2 * * MON-FRI".to_owned()));
        assert_eq!(schedule("@daily"), Ok("@daily".to_owned()));
        for bad in ["0 3 * *", "every night", "TZ=UTC 0 3 * * *", "0 3 * * * *", "@nightly"] {
            assert!(schedule(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn egress_is_a_network_and_a_port() {
        let tcp = |cidr: &str, port| Egress { cidr: cidr.to_owned(), port, protocol: "TCP" };
        assert_eq!(egress("10.0.0.0/8:443"), Ok(tcp("10.0.0.0/8", 443)));
        assert_eq!(egress("192.0.2.10:9000"), Ok(tcp("192.0.2.10/32", 9000)), "an address alone");
        assert_eq!(egress("2001:db8::/32:443"), Ok(tcp("2001:db8::/32", 443)));
        assert_eq!(egress("[2001:db8::1]:443"), Ok(tcp("2001:db8::1/128", 443)));
        assert_eq!(
            egress("10.96.0.10/32:53/udp"),
            Ok(Egress { cidr: "10.96.0.10/32".into(), port: 53, protocol: "UDP" })
        );
        for bad in ["10.0.0.0/8", "10.0.0.0/8:0", "10.0.0.0/8:70000", "10.0.0.0/8:53/icmp", "minio:9000", ":443"] {
            assert!(egress(bad).is_err(), "{bad}");
        }
        let error = egress("10.1.2.3/8:443").unwrap_err().to_string();
        assert!(error.contains("its host bits are set (the network is 10.0.0.0/8)"), "{error}");
        assert!(egress("10.0.0.0/33:443").unwrap_err().to_string().contains("prefix length"));
        assert_eq!(egress("0.0.0.0/0:443"), Ok(tcp("0.0.0.0/0", 443)));
    }

    #[test]
    fn host_aliases_and_secrets_are_checked() {
        let alias = host_alias("10.0.0.5=MinIO.backups.svc").unwrap();
        assert_eq!((alias.ip.to_string(), alias.hostname.as_str()), ("10.0.0.5".to_owned(), "minio.backups.svc"));
        for bad in ["10.0.0.5", "minio=10.0.0.5", "10.0.0.5=-x", "10.0.0.5=a_b"] {
            assert!(host_alias(bad).is_err(), "{bad}");
        }
        let plain = plain_env("AWS_ENDPOINT_URL=http://minio.backups:9000").unwrap();
        assert_eq!((plain.var.as_str(), plain.value.as_str()), ("AWS_ENDPOINT_URL", "http://minio.backups:9000"));
        assert_eq!(plain_env("NO_PROXY=").unwrap().value, "", "an empty value is a value");
        for bad in ["REGION", "=x", "1A=b", "A-B=c"] {
            assert_eq!(plain_env(bad), Err(ValueError::PlainEnv(bad.to_owned())), "{bad}");
        }
        for credential in ["AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "PGPASSWORD", "AWS_ACCESS_KEY_ID", "db_pass"] {
            let error = plain_env(&format!("{credential}=x")).unwrap_err().to_string();
            assert!(error.contains("looks like a credential") && !error.contains("=x"), "{error}");
        }
        let env = secret_env("AWS_SECRET_ACCESS_KEY=backup-s3/secret-key").unwrap();
        assert_eq!(
            (env.var.as_str(), env.from.secret.as_str(), env.from.key.as_str()),
            ("AWS_SECRET_ACCESS_KEY", "backup-s3", "secret-key")
        );
        for bad in ["AWS=backup-s3", "1AWS=s/k", "A-B=s/k", "A=S/k", "A=s/", "A=s/k/j", "A=s/.."] {
            assert!(secret_env(bad).is_err(), "{bad}");
        }
        assert_eq!(signing_secret("drill-signing").map(|s| s.key), Ok("key".to_owned()));
        assert_eq!(signing_secret("drill-signing/id_ed25519").map(|s| s.key), Ok("id_ed25519".to_owned()));
        assert!(signing_secret("Drill").is_err());
    }
}

//! `[target]`: the throwaway server the backup is restored on, and its limits.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use crate::disk::DiskLimit;
use crate::field::{FieldError, normalize, parse_duration};
use crate::provision::spec::{ContainerSpec, IMAGE_MAJORS, LocalSpec, PodSpec, ServerSpec, TargetKind, TargetSpec};

use super::raw;
use super::source::secret_source;

pub(super) fn resolve_target(raw: raw::RawTarget, base: &Path) -> Result<TargetSpec, FieldError> {
    let kind = kind_of(&raw)?;
    let (disk, memory, processes) = limits(&raw)?;
    let database = database(&raw)?;
    let (image, version) = image_and_version(&raw)?;
    let startup_timeout = match &raw.startup_timeout {
        Some(t) => parse_duration(t)?,
        None => Duration::from_secs(60),
    };
    let settings = settings(&raw.settings)?;
    let bin_dir = raw.bin_dir.as_ref().map(|d| normalize(&base.join(d.get_ref())));
    let kind = match kind.as_str() {
        "server" => {
            let url = match secret_source("url", &raw.url, &raw.url_env, &raw.url_file, base) {
                Ok(Some(url)) => url,
                _ => {
                    return Err(FieldError::unplaced("a server target needs exactly one of `url`, `url_env` and `url_file`")
                        .with_help("an admin connection string such as postgres://admin@db:5432/postgres?sslmode=require; keep the password out of the file with `url_env` or `url_file`"));
                }
            };
            TargetKind::Server(ServerSpec { url, bin_dir })
        }
        "local" => {
            TargetKind::Local(LocalSpec { bin_dir, startup_timeout, settings, memory, processes, disk, share: None })
        }
        "pod" => TargetKind::Pod(PodSpec {
            bin_dir,
            startup_timeout,
            settings,
            memory,
            processes,
            disk,
            ..PodSpec::default()
        }),
        _ => TargetKind::Container(ContainerSpec {
            image,
            version,
            startup_timeout,
            settings,
            memory,
            processes,
            disk,
            share: None,
        }),
    };
    Ok(TargetSpec { database, kind })
}

/// The target's kind (`container` by default), and no key of another kind's.
fn kind_of(raw: &raw::RawTarget) -> Result<String, FieldError> {
    let kind = match &raw.kind {
        Some(kind) if !["container", "server", "local", "pod"].contains(&kind.get_ref().as_str()) => {
            return Err(FieldError::new(
                kind.span(),
                format!("unknown target kind `{}`, expected `container`, `server`, `local` or `pod`", kind.get_ref()),
            ));
        }
        Some(kind) => kind.get_ref().clone(),
        None => "container".to_owned(),
    };
    // Keys that belong to one kind only.
    let only = |key: &str, span: Option<std::ops::Range<usize>>, kinds: &[&str]| -> Result<(), FieldError> {
        match span {
            Some(span) if !kinds.contains(&kind.as_str()) => Err(FieldError::new(
                span,
                format!("`{key}` is for {} targets, and this one is `{kind}`", in_words(kinds)),
            )),
            _ => Ok(()),
        }
    };
    only("image", raw.image.as_ref().map(|v| v.span()), &["container"])?;
    only("version", raw.version.as_ref().map(|v| v.span()), &["container"])?;
    only("url", raw.url.as_ref().map(|v| v.span()), &["server"])?;
    only("url_env", raw.url_env.as_ref().map(|v| v.span()), &["server"])?;
    only("url_file", raw.url_file.as_ref().map(|v| v.span()), &["server"])?;
    only("bin_dir", raw.bin_dir.as_ref().map(|v| v.span()), &["server", "local", "pod"])?;
    only("memory", raw.memory.as_ref().map(|v| v.span()), &["container", "local", "pod"])?;
    only("processes", raw.processes.as_ref().map(|v| v.span()), &["container", "local", "pod"])?;
    // A server's disk is its own: pgdrill cannot bound what a database there takes.
    only("disk", raw.disk.as_ref().map(|v| v.span()), &["container", "local", "pod"])?;
    Ok(kind)
}

/// `a`, `a and b`, `a, b and c`.
fn in_words(kinds: &[&str]) -> String {
    match kinds.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => kinds.join(""),
    }
}

/// The sandbox's limits a scenario may set: disk, memory (bytes) and processes.
type Limits = (Option<DiskLimit>, Option<u64>, Option<u32>);

/// The sandbox's limits: disk, memory and processes.
fn limits(raw: &raw::RawTarget) -> Result<Limits, FieldError> {
    let disk = match &raw.disk {
        Some(d) => match crate::disk::parse(d.get_ref()) {
            Some(bytes) if bytes >= 64 << 20 => Some(DiskLimit { bytes, shown: d.get_ref().trim().to_owned() }),
            _ => {
                return Err(FieldError::new(
                    d.span(),
                    format!("`disk` = `{}` is not a size of at least 64MB", d.get_ref()),
                )
                .with_help("write sizes as PostgreSQL does: \"512MB\", \"20GB\""));
            }
        },
        None => None,
    };
    let memory = match &raw.memory {
        Some(m) => match crate::pg::parse_size(m.get_ref()) {
            Some(bytes) if bytes >= 256 << 20 => Some(bytes),
            _ => {
                return Err(FieldError::new(
                    m.span(),
                    format!("`memory` = `{}` is not a size of at least 256MB", m.get_ref()),
                )
                .with_help("write sizes as PostgreSQL does: \"512MB\", \"8GB\""));
            }
        },
        None => None,
    };
    let processes = match &raw.processes {
        Some(p) if !(64..=1_000_000).contains(p.get_ref()) => {
            return Err(FieldError::new(p.span(), "`processes` must be between 64 and 1000000"));
        }
        Some(p) => Some(*p.get_ref() as u32),
        None => None,
    };
    Ok((disk, memory, processes))
}

/// The database the backup is restored into: not a system one.
fn database(raw: &raw::RawTarget) -> Result<String, FieldError> {
    let database = match &raw.database {
        Some(db) => {
            let name = db.get_ref();
            if name.is_empty() || name.len() > 63 || name.contains('\0') {
                return Err(FieldError::new(db.span(), "`database` must be 1 to 63 characters"));
            }
            if matches!(name.as_str(), "postgres" | "template0" | "template1") {
                return Err(FieldError::new(
                    db.span(),
                    format!("`{name}` is a system database; restore into a database of its own"),
                ));
            }
            name.clone()
        }
        None => "pgdrill".to_owned(),
    };
    Ok(database)
}

/// A container's image, pinned to a tag, or the major of the project's image; not both.
fn image_and_version(raw: &raw::RawTarget) -> Result<(Option<String>, Option<u32>), FieldError> {
    let image = match &raw.image {
        Some(image) => {
            let image_ref = image.get_ref();
            if image_ref.ends_with(":latest") || !image_ref.contains(':') {
                return Err(FieldError::new(image.span(), format!("image `{image_ref}` has no pinned tag"))
                    .with_help("name an exact tag such as `pgdrill/postgres:17-r1`; `latest` changes under you"));
            }
            Some(image_ref.clone())
        }
        None => None,
    };
    let version = match &raw.version {
        Some(_) if raw.image.is_some() => {
            return Err(FieldError::unplaced("give `image` or `version`, not both: the image decides the version"));
        }
        Some(v) => match u32::try_from(*v.get_ref()).ok().filter(|m| IMAGE_MAJORS.contains(m)) {
            Some(major) => Some(major),
            None => {
                return Err(FieldError::new(
                    v.span(),
                    format!(
                        "pgdrill builds images of PostgreSQL {} only, not {}",
                        crate::provision::spec::image_majors_in_words(),
                        v.get_ref()
                    ),
                )
                .with_help("for another major, build an image from ci/image/Dockerfile (--build-arg PG_MAJOR=N) and name it with `image = \"...\"`"));
            }
        },
        None => None,
    };
    Ok((image, version))
}

/// The server settings, each a name and a string, number or boolean.
fn settings(
    raw_settings: &BTreeMap<String, crate::field::Spanned<toml::Value>>,
) -> Result<BTreeMap<String, String>, FieldError> {
    let mut settings = BTreeMap::new();
    for (name, value) in raw_settings {
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.') {
            return Err(FieldError::new(value.span(), format!("`{name}` is not a server setting name")));
        }
        let text = match value.get_ref() {
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Boolean(b) => if *b { "on" } else { "off" }.to_owned(),
            _ => {
                return Err(FieldError::new(
                    value.span(),
                    format!("setting `{name}` must be a string, number or boolean"),
                ));
            }
        };
        settings.insert(name.clone(), text);
    }
    Ok(settings)
}

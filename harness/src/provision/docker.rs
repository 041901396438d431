//! The Docker engine as pgdrill's containers use it, a leaf shared by the modules that start or
//! remove them (`container`, `image`, `toolbox`, `kept`'s cleaning): the connection, the labels
//! every pgdrill container carries, whether the engine is on this machine, an image's name and
//! tag, and who a container's server runs as.

use testcontainers::bollard::Docker;

use super::TargetError;
use crate::tree::Ids;

/// The label every pgdrill container carries: the id of the drill that owns it.
pub(crate) const DRILL_LABEL: &str = "org.pgdrill.drill";

/// Who started a container: `host/pid/start time` (a pid alone may be reused). Containers whose
/// owner on this machine is gone (killed, or interrupted twice) are removed by the next drill.
/// Its value is [`super::owner::owner`].
pub(crate) const OWNER_LABEL: &str = "org.pgdrill.owner";

/// A connection to the Docker engine `DOCKER_HOST` names (or the default one).
pub(crate) fn docker() -> Result<Docker, TargetError> {
    Docker::connect_with_defaults()
        .map_err(|source| TargetError::Docker { action: "connect to the Docker engine", source })
}

/// Who the server runs as: the image's owner of the data directory (`image_owner`) when
/// pgdrill runs as root (which can give it the copy), else pgdrill's own user (a copy it makes
/// is its own).
pub(crate) fn server_user(image_owner: Option<Ids>) -> Option<Ids> {
    use std::os::unix::fs::MetadataExt;
    let me = std::fs::metadata("/proc/self").ok()?;
    if me.uid() == 0 { image_owner } else { Some(Ids { uid: me.uid(), gid: me.gid() }) }
}

/// The container target reaches its server through a Unix socket in a folder shared with the
/// container, which only an engine on this machine can share: `DOCKER_HOST` must be unset, a
/// Unix socket, or a loopback address. Returns the engine's address (without credentials) when
/// it is elsewhere.
fn remote_engine(docker_host: Option<&str>) -> Option<String> {
    let host = docker_host?;
    let (scheme, rest) = host.split_once("://")?;
    if matches!(scheme, "unix" | "npipe") {
        return None;
    }
    let authority = rest.split('/').next().unwrap_or_default();
    let authority = authority.rsplit('@').next().unwrap_or_default();
    let name = authority.rsplit_once(':').map_or(authority, |(n, _)| n).trim_matches(['[', ']']);
    let local = name == "localhost" || name == "::1" || name.starts_with("127.");
    (!local).then(|| format!("{scheme}://{authority}"))
}

/// Whether `DOCKER_HOST` names an engine on another machine (pgdrill never talks to it).
pub(crate) fn engine_elsewhere() -> bool {
    remote_engine_now().is_some()
}

/// The engine `DOCKER_HOST` names, when it is on another machine.
pub(crate) fn remote_engine_now() -> Option<String> {
    remote_engine(std::env::var("DOCKER_HOST").ok().as_deref())
}

/// An image's name and tag (`latest` when it names none).
pub(crate) fn split_image(image: &str) -> (String, String) {
    // The tag follows the last ':' unless that ':' is part of a registry's host:port.
    match image.rfind(':') {
        Some(i) if !image[i..].contains('/') => (image[..i].to_owned(), image[i + 1..].to_owned()),
        _ => (image.to_owned(), "latest".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::{remote_engine, split_image};

    #[test]
    fn only_an_engine_on_this_machine_can_share_the_socket_folder() {
        for local in [
            None,
            Some("unix:///var/run/docker.sock"),
            Some("tcp://127.0.0.1:2375"),
            Some("tcp://localhost:2376"),
            Some("tcp://[::1]:2375"),
        ] {
            assert_eq!(remote_engine(local), None, "{local:?}");
        }
        assert_eq!(remote_engine(Some("tcp://10.0.0.5:2376")).as_deref(), Some("tcp://10.0.0.5:2376"));
        assert_eq!(
            remote_engine(Some("ssh://deploy:s3cret@build-host/")).as_deref(),
            Some("ssh://build-host"),
            "credentials are never shown"
        );
    }

    #[test]
    fn image_names() {
        assert_eq!(split_image("pgdrill/postgres:17-r1"), ("pgdrill/postgres".into(), "17-r1".into()));
        assert_eq!(split_image("registry:5000/pg:17"), ("registry:5000/pg".into(), "17".into()));
        assert_eq!(split_image("registry:5000/pg"), ("registry:5000/pg".into(), "latest".into()));
    }
}

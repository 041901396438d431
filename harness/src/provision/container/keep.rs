//! Keeping a target after the drill (`--keep`): the container made again with the kept labels.

use std::collections::HashMap;
use std::path::Path;

use sqlx::Connection;
use sqlx::postgres::PgConnection;
use testcontainers::bollard::query_parameters::RemoveContainerOptions;

use super::offline::{clear_stale_socket, stop_cleanly, wait_restarted};
use super::{Running, SUPERUSER, socket_options};
use crate::provision::kept::{self, Service};
use crate::provision::owner::owner;
use crate::provision::{TargetError, tools};

impl Running {
    /// Keeps the target after the drill: a superuser with a fresh password for the loopback
    /// port, then the container made again from the same configuration and data directory (its
    /// server stopped cleanly first) with the kept labels instead of the drill's, proven a sandbox
    /// again from inside, its private folder marked as kept, and a forwarder on a loopback port.
    /// On an error the target is left for [`Running::remove`].
    pub(crate) async fn keep(
        &mut self,
        request: &crate::provision::kept::Request<'_>,
    ) -> Result<(crate::provision::kept::Record, Vec<crate::provision::kept::Service>, String), TargetError> {
        let id = self.container.as_ref().ok_or(TargetError::Gone)?.id().to_owned();
        if self.run_dir.outer.join("upper").exists() {
            // Its data is an overlay over a snapshot, which the store may evict once the drill
            // ends.
            return Err(TargetError::Keep {
                message: "a clone of a snapshot is not kept (drill without --reuse to keep a target)".into(),
            });
        }
        let socket = self.run_dir.socket();
        let short: String = request.drill_id.chars().take(8).collect();
        let role = format!("pgdrill_kept_{short}");
        let password = crate::secret::Secret::random_password();
        request.redactor.register(&password);
        let login = create_login(&socket, &role, &password).await;
        let inspected = self
            .docker
            .inspect_container(&id, None)
            .await
            .map_err(|source| TargetError::Docker { action: "inspect the target container", source })?;
        if inspected.state.as_ref().and_then(|s| s.running).unwrap_or(false) {
            stop_cleanly(&self.docker, &id).await?;
        }
        if let Some(container) = self.container.take() {
            container.rm().await.map_err(|source| TargetError::RemoveContainer { source })?;
        }
        let name = inspected.name.clone().unwrap_or_default().trim_start_matches('/').to_owned();
        let new_id = self.recreate(&inspected, &name, request).await?;
        let started = async {
            self.docker
                .start_container(&new_id, None)
                .await
                .map_err(|source| TargetError::Docker { action: "start the kept target", source })?;
            wait_restarted(&self.docker, &new_id, &socket, self.startup_timeout, request.redactor).await?;
            self.run_dir.seal().map_err(TargetError::io("cannot make the socket folder read-only"))?;
            let observed = crate::provision::sandbox::observe(&socket_options(&socket)).await?;
            observed.judge()?;
            // The owner file stays until the record is written ([`super::Teardown::keep`]).
            std::fs::write(self.run_dir.outer.join(kept::MARKER), request.record.display().to_string())
                .map_err(TargetError::io("cannot mark the private folder as kept"))?;
            let forwarder = match &login {
                Ok(()) => Some(kept::spawn_forwarder(&socket, SUPERUSER).map_err(|source| {
                    TargetError::ProgramsIo { action: "cannot start the process that forwards a loopback port", source }
                })?),
                Err(_) => None,
            };
            Ok(forwarder)
        };
        let forwarder = match started.await {
            Ok(forwarder) => forwarder,
            Err(e) => {
                let _ = std::fs::remove_file(self.run_dir.outer.join(kept::MARKER));
                let options = RemoveContainerOptions { force: true, v: true, ..Default::default() };
                let _ = self.docker.remove_container(&new_id, Some(options)).await;
                return Err(e);
            }
        };
        let login = login.map(|()| (role, password));
        let (services, address, summary) = reach(request, &socket, &name, login, forwarder.as_ref());
        let record = kept::Record {
            name: request.name.to_owned(),
            kind: "container".into(),
            scenario: request.scenario.to_owned(),
            drill_id: request.drill_id.to_owned(),
            kept_at: request.kept_at.to_owned(),
            database: request.database.to_owned(),
            address,
            container: Some(new_id),
            container_name: Some(name),
            run_dir: Some(self.run_dir.outer.clone()),
            forwarder,
            server: None,
        };
        Ok((record, services, summary))
    }

    /// Creates the kept container: the drill container's configuration with the kept labels
    /// instead of the drill's, without the backup's mount (the backup is no longer needed).
    async fn recreate(
        &self,
        inspected: &testcontainers::bollard::models::ContainerInspectResponse,
        name: &str,
        request: &crate::provision::kept::Request<'_>,
    ) -> Result<String, TargetError> {
        use testcontainers::bollard::models::ContainerCreateBody;
        use testcontainers::bollard::query_parameters::CreateContainerOptions;
        let config = inspected.config.clone().unwrap_or_default();
        let mut body: ContainerCreateBody = serde_json::to_value(config)
            .and_then(serde_json::from_value)
            .map_err(|source| TargetError::ContainerConfig { source })?;
        body.labels = Some(HashMap::from([
            (crate::provision::kept::KEPT_LABEL.to_owned(), request.kept_at.to_owned()),
            (crate::provision::kept::NAME_LABEL.to_owned(), request.name.to_owned()),
            (crate::provision::kept::RECORD_LABEL.to_owned(), request.record.display().to_string()),
            (crate::provision::kept::KEEPER_LABEL.to_owned(), owner()),
            ("org.pgdrill.scenario".to_owned(), request.scenario.to_owned()),
        ]));
        let mut host = inspected.host_config.clone().unwrap_or_default();
        host.mounts = host.mounts.map(|mounts| {
            mounts
                .into_iter()
                .filter(|m| !m.target.as_deref().unwrap_or_default().starts_with(tools::CONTAINER_BACKUP_DIR))
                .collect()
        });
        host.group_add = None;
        body.host_config = Some(host);
        // The server makes its socket again, as whichever user it runs as.
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(self.run_dir.socket(), std::fs::Permissions::from_mode(0o777))
                .map_err(TargetError::io("cannot open the socket folder again"))?;
        }
        clear_stale_socket(&self.run_dir.socket());
        let options = CreateContainerOptions { name: Some(name.to_owned()), ..Default::default() };
        let created = self
            .docker
            .create_container(Some(options), body)
            .await
            .map_err(|source| TargetError::Docker { action: "create the kept target", source })?;
        Ok(created.id)
    }
}

/// Makes `role`, a superuser that logs in with `password`, through the socket (a recovering
/// standby, read-only, cannot: the error says so).
async fn create_login(socket: &Path, role: &str, password: &crate::secret::Secret) -> Result<(), sqlx::Error> {
    use sqlx::Executor;
    let mut conn = PgConnection::connect_with(&socket_options(socket)).await?;
    let sql = format!(
        "CREATE ROLE {} LOGIN SUPERUSER PASSWORD {}",
        crate::pg::quote_ident(role),
        crate::pg::quote_literal(password.expose())
    );
    let created = conn.execute(sqlx::raw_sql(&sql)).await.map(|_| ());
    conn.close().await.ok();
    created
}

/// How the kept target is reached: the connection file's services, its address and the line
/// for the reports. With a login (`role` and its password) and a forwarder, on a loopback port
/// as that role and through the socket as `postgres`; else through the socket alone.
fn reach(
    request: &kept::Request<'_>,
    socket: &Path,
    name: &str,
    login: Result<(String, crate::secret::Secret), sqlx::Error>,
    forwarder: Option<&kept::Forwarder>,
) -> (Vec<Service>, String, String) {
    let socket_service = |service: String| Service {
        name: service,
        params: vec![
            ("host", socket.display().to_string()),
            ("port", "5432".into()),
            ("user", SUPERUSER.into()),
            ("dbname", request.database.to_owned()),
        ],
        password: None,
    };
    match (forwarder, login) {
        (Some(f), Ok((role, password))) => (
            vec![
                Service {
                    name: request.name.to_owned(),
                    params: vec![
                        ("host", "127.0.0.1".into()),
                        ("port", f.port.to_string()),
                        ("user", role.clone()),
                        ("dbname", request.database.to_owned()),
                        ("sslmode", "disable".into()),
                    ],
                    password: Some(password),
                },
                socket_service(format!("{}-socket", request.name)),
            ],
            format!("127.0.0.1:{}", f.port),
            format!(
                "kept container {name}, still a sandbox (no network, no capabilities, no shell): database `{}` on 127.0.0.1:{} (loopback, forwarded to its socket) as `{role}`, whose password is in the connection file",
                request.database, f.port
            ),
        ),
        (_, login) => (
            vec![socket_service(request.name.to_owned())],
            format!("socket in {}", socket.display()),
            format!(
                "kept container {name}, still a sandbox (no network, no capabilities, no shell): database `{}` through its socket in {} only, as `postgres` (no login could be made for a loopback port: {})",
                request.database,
                socket.display(),
                login.err().map_or_else(
                    || "it was made, but no port was forwarded".into(),
                    |e| request.redactor.redact(&e.to_string())
                )
            ),
        ),
    }
}

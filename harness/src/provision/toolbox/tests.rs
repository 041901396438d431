//! The toolbox's tests: where its tools run and what they see.

use super::*;

#[test]
fn a_pods_tools_are_told_where_the_files_are() {
    let binds = [
        Bind { host: "/tmp/w/data".into(), inside: DATA.into(), writable: true },
        Bind { host: "/tmp/w".into(), inside: WORK.into(), writable: true },
    ];
    let cases = [
        ("/pgdrill/data", "/tmp/w/data"),
        ("/pgdrill/data/pg_wal", "/tmp/w/data/pg_wal"),
        ("--output=/pgdrill/work/combined", "--output=/tmp/w/combined"),
        ("--tablespace-map=16385=/pgdrill/work/16385", "--tablespace-map=16385=/tmp/w/16385"),
        ("/pgdrill/database", "/pgdrill/database"),
        ("-D", "-D"),
    ];
    for (arg, host) in cases {
        assert_eq!(unbound(arg, &binds), host, "{arg}");
    }
}

fn local(bin_dir: &Path, staged: Option<std::path::PathBuf>) -> Toolbox {
    let inner = Inner::Local {
        bwrap: Some("/nonexistent/bwrap".into()),
        bin_dir: bin_dir.to_owned(),
        binds: Vec::new(),
        run_as: None,
        staged,
        root: None,
        limited: None,
    };
    Toolbox { inner, user: crate::tree::Ids { uid: 70_001, gid: 70_002 } }
}

/// A local toolbox has this machine's PostgreSQL tools and nothing else: a tool its
/// binaries lack (pgBackRest) is refused before anything runs.
#[tokio::test]
async fn a_local_toolbox_runs_only_the_tools_of_its_binaries() {
    let dir = tempfile::tempdir().unwrap();
    let error = local(dir.path(), None).run("pgbackrest", &[], &Redactor::new()).await.err().unwrap();
    assert_eq!(
        error.to_string(),
        format!(
            "`{}` has no `pgbackrest`: a local target's toolbox runs PostgreSQL's own tools of this machine (pgBackRest runs in a container target's)",
            dir.path().display()
        )
    );
}

#[tokio::test]
async fn removing_a_local_toolbox_removes_the_copy_of_the_backup_staged_for_it() {
    let dir = tempfile::tempdir().unwrap();
    let staged = dir.path().join("staged-backup-0");
    std::fs::create_dir_all(staged.join("base")).unwrap();
    std::fs::write(staged.join("base").join("PG_VERSION"), "17\n").unwrap();
    local(dir.path(), Some(staged.clone())).remove().await.unwrap();
    assert!(!staged.exists());
    assert!(dir.path().exists(), "nothing else");
    local(dir.path(), None).remove().await.unwrap();
    let gone = local(dir.path(), Some(staged.clone())).remove().await.unwrap_err();
    assert!(gone.to_string().contains(&staged.display().to_string()), "{gone}");
}

/// A toolbox over a data folder (a physical backup's verify) runs the image's own tools from
/// their copy, in bubblewrap, as the image's server user: no container starts for it, the
/// copy is root's and read-only, and the tool reads the folder it is given. Needs
/// bubblewrap and root, as CI has.
#[tokio::test]
async fn a_toolbox_over_a_data_folder_runs_the_images_own_tools_without_a_container() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let spec = ContainerSpec {
        image: None,
        version: None,
        startup_timeout: std::time::Duration::from_secs(60),
        settings: Default::default(),
        memory: None,
        processes: None,
        disk: None,
        share: None,
    };
    // As a drill's work folder is: the server's user may pass through it to its data.
    let work = tempfile::tempdir().unwrap();
    std::fs::set_permissions(work.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let data = work.path().join("data");
    let drill_id = format!("t001{:08x}", rand::random::<u32>());
    let request = Request {
        drill_id: &drill_id,
        on: On::Container(&spec),
        major: Some(17),
        data: Data::Folder(&data),
        backup: None,
        work: None,
        progress: &|_| {},
    };
    let docker = docker().unwrap();
    let image_name = image::choose(&spec, Some(17), true).unwrap();
    let info = image::ensure(&docker, &image_name, || {}).await.unwrap();
    let template = image::cluster_template(&docker, &image_name, &info).await.unwrap();
    crate::tree::copy(&template, &data, server_user(info.owner).unwrap()).unwrap();
    let toolbox = Toolbox::start(request).await.unwrap();

    let Inner::Local { root: Some(root), bwrap: Some(_), run_as, .. } = &toolbox.inner else {
        panic!("a container toolbox, where the image's tools were to run in bubblewrap");
    };
    assert_eq!(*run_as, Some(toolbox.user), "as the image's server user");
    let filters = std::collections::HashMap::from([("label".to_owned(), vec![format!("{DRILL_LABEL}={drill_id}")])]);
    let options = testcontainers::bollard::query_parameters::ListContainersOptions {
        all: true,
        filters: Some(filters),
        ..Default::default()
    };
    assert!(docker.list_containers(Some(options)).await.unwrap().is_empty(), "no container of the drill's");
    for tool in super::super::image_tools::TOOLS {
        let meta = std::fs::metadata(root.join("usr/lib/postgresql/17/bin").join(tool)).unwrap();
        assert_eq!((meta.uid(), meta.mode() & 0o7777), (0, 0o555), "{tool}");
    }
    let (output, stdout) = toolbox.run("pg_controldata", &[DATA.into()], &Redactor::new()).await.unwrap();
    assert!(output.success(), "{output:?}");
    assert!(stdout.contains("Database cluster state:               shut down"), "{stdout}");
    let (output, _) = toolbox.run("pg_controldata", &["/pgdrill/elsewhere".into()], &Redactor::new()).await.unwrap();
    assert!(!output.success() && output.stderr.contains("/pgdrill/elsewhere"), "{output:?}");
    toolbox.remove().await.unwrap();
}

/// Docker and bubblewrap bind absolute paths only; a scenario's may be relative.
#[test]
fn a_path_is_bound_as_the_absolute_path_it_resolves_to() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("backup")).unwrap();
    let roundabout = dir.path().join("backup").join("..").join("backup");
    assert_eq!(absolute(&roundabout).unwrap(), std::fs::canonicalize(dir.path()).unwrap().join("backup"));
    let missing = dir.path().join("gone");
    assert_eq!(
        absolute(&missing).unwrap_err().to_string(),
        format!("cannot resolve `{}` to mount it", missing.display())
    );
}

/// Two toolboxes of one drill at once (one decrypting a repository, one of the backup's
/// major) are two containers: their numbers, in their names, differ.
#[test]
fn each_toolbox_of_the_process_has_its_own_number() {
    let numbers: std::collections::BTreeSet<usize> = (0..5).map(|_| next_number()).collect();
    assert_eq!(numbers.len(), 5);
}

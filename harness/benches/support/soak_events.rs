//! What the follow soak does to its follower besides writing: a drill of now asked for by
//! SIGUSR1, and faults made in the archive (a segment lost in the upload, one damaged), each
//! timed from the moment it is made until the follower names it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The archive_command of a source whose uploads the soak can hold back: while `/archive/.hold`
/// exists, segments go to `/archive/.held/` instead, for the soak to upload as it pleases.
pub(crate) const ARCHIVE_COMMAND: &str = "archive_command=d=/archive; test -f /archive/.hold && d=/archive/.held; \
     test ! -f $d/%f && cp %p $d/.%f.part && mv $d/.%f.part $d/%f";

/// Waits until `done` holds, at most `limit`: whether it did.
fn wait(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while !done() {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    true
}

fn said(log: &Path) -> String {
    std::fs::read_to_string(log).unwrap_or_default()
}

/// Asks the follower `pid` (its output in `log`) for a drill of now: the seconds until its copy
/// is promoted, ready for its checks.
pub(crate) fn drill_of_now(pid: u32, log: &Path) -> Option<f64> {
    let before = said(log).matches("recovered the follower's copy to").count();
    let asked = Instant::now();
    Command::new("kill").args(["-USR1", &pid.to_string()]).status().ok()?;
    let ready =
        wait(Duration::from_secs(60), || said(log).matches("recovered the follower's copy to").count() > before);
    ready.then(|| asked.elapsed().as_secs_f64())
}

/// How long the follower took to name each fault.
#[derive(Debug, Default)]
pub(crate) struct Named {
    pub(crate) gap: Option<f64>,
    pub(crate) damaged: Option<f64>,
    /// The segments lost and damaged.
    pub(crate) lost: String,
    pub(crate) broken: String,
}

/// The whole segments in the folder `dir` (the archive, or what it holds back), in order.
pub(crate) fn held(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.len() == 24 && n.bytes().all(|b| b.is_ascii_hexdigit()))
        .collect();
    names.sort();
    names
}

/// Uploads `name` from the held segments into the archive, as an archiver does (whole, renamed).
fn upload(archive: &Path, name: &str, bytes: Option<Vec<u8>>) {
    let bytes = bytes.unwrap_or_else(|| std::fs::read(archive.join(".held").join(name)).unwrap());
    let partial = archive.join(format!(".{name}.upload"));
    std::fs::write(&partial, bytes).unwrap();
    std::fs::rename(partial, archive.join(name)).unwrap();
}

/// Holds the source's uploads back, then uploads the second segment held without the first (a
/// lost upload: a gap, once `--gap-after` passes) and the first again; then the third damaged
/// after its header, and the fourth. Once the damaged one is named, the good copy is uploaded
/// and `restart` starts the follower again (replay cannot leave a damaged segment it was given),
/// returning its output's file; uploads go on as before once it replayed the fourth.
pub(crate) fn faults(archive: &Path, log: &Path, restart: &mut dyn FnMut() -> PathBuf) -> Named {
    use std::os::unix::fs::PermissionsExt;
    let held_dir = archive.join(".held");
    std::fs::create_dir_all(&held_dir).unwrap();
    std::fs::set_permissions(&held_dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::write(archive.join(".hold"), b"").unwrap();
    let mut named = Named::default();
    if wait(Duration::from_secs(180), || held(&held_dir).len() >= 4) {
        let four = held(&held_dir)[..4].to_vec();
        named.lost.clone_from(&four[0]);
        named.broken.clone_from(&four[2]);
        upload(archive, &four[1], None);
        let made = Instant::now();
        let gap = format!("FAULT gap: segment {}", four[0]);
        named.gap = wait(Duration::from_secs(120), || said(log).contains(&gap)).then(|| made.elapsed().as_secs_f64());
        upload(archive, &four[0], None);
        wait(Duration::from_secs(60), || said(log).contains(&format!("replayed {}", four[1])));
        let mut damaged = std::fs::read(held_dir.join(&four[2])).unwrap();
        damaged[60..120].iter_mut().for_each(|b| *b ^= 0x5a);
        upload(archive, &four[2], Some(damaged));
        upload(archive, &four[3], None);
        let made = Instant::now();
        let unreadable = format!("in segment {}", four[2]);
        named.damaged =
            wait(Duration::from_secs(120), || said(log).contains(&unreadable)).then(|| made.elapsed().as_secs_f64());
        upload(archive, &four[2], None);
        let log = restart();
        wait(Duration::from_secs(240), || said(&log).contains(&format!("replayed {}", four[3])));
    }
    std::fs::remove_file(archive.join(".hold")).unwrap();
    // What was held since, and what is still being copied there, uploaded in order.
    let released = Instant::now();
    while released.elapsed() < Duration::from_secs(5) {
        for name in held(&held_dir) {
            if !archive.join(&name).exists() {
                upload(archive, &name, None);
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    named
}

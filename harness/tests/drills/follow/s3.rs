//! A follower of a prefix of segments in S3 (moto on loopback, behind a proxy the test switches
//! off), and a base backup in S3 with no archive to list, refused.

use std::process::Command;

use super::{Follower, advance, ledger_segments, stop};
use crate::physical::PhysicalSource;
use crate::util::{Scratch, pgdrill_bin};

/// A follower of an archive in S3 (moto on loopback, behind a proxy the test switches off): each
/// look lists the prefix from the last segment planned on and copies the new segments; one lost
/// in the upload is a gap, named, until it is there; a store that stops answering is the `store`
/// fault with the store's reason, cleared when it answers again.
#[test]
fn a_follower_of_an_s3_archive_copies_each_new_segment_and_names_a_gap_and_a_silent_store() {
    let source = PhysicalSource::make();
    let s3 = crate::servers::S3Server::start();
    s3.put_folders("pitr", &[("wal", &source.archive())]);
    let upstream: u16 = s3.endpoint.rsplit(':').next().unwrap().parse().unwrap();
    let proxy = crate::servers::SwitchProxy::start(upstream);
    let scratch = Scratch::new();
    let scenario = scratch.scenario(
        "follow-s3.toml",
        &format!(
            "name = \"books-s3\"\n[source]\npath = \"{}\"\nwal_archive = \"s3://pitr/wal/\"\n\
             endpoint = \"http://127.0.0.1:{}\"\nregion = \"us-east-1\"\n\n[target]\ndatabase = \"books\"\n",
            source.backup().display(),
            proxy.port
        ),
    );
    let put = |segment: &str| {
        let bytes = std::fs::read(source.archive().join(segment)).unwrap();
        s3.put_objects("pitr", &[(&format!("wal/{segment}"), bytes)]);
    };
    a_base_backup_in_s3_with_no_archive_to_list_is_refused(&scratch, &s3, &source);
    let state = scratch.path("state");
    let mut command = Command::new(pgdrill_bin());
    // Listed each second (not every five, as by default for a store), for a short test.
    command.arg("follow").arg(&scenario).args(["--look-every", "1s"]).envs(s3.env());
    let follower = Follower::spawn(&scratch, command, &state, "s3");
    follower.wait_said("following `s3://pitr/wal/`");
    let one = advance(&source);
    put(&one);
    follower.wait_said(&format!("replayed {one}"));

    let (two, three) = (advance(&source), advance(&source));
    put(&three);
    follower.wait_said(&format!("FAULT gap: segment {two} is not in the archive"));
    put(&two);
    follower.wait_said(&format!("replayed {three}"));
    assert!(ledger_segments(&state).ends_with(&[one, two, three]), "{}", follower.said());

    proxy.down.store(true, std::sync::atomic::Ordering::SeqCst);
    let fault = "FAULT store: the archive cannot be listed: `s3://pitr/wal/`: ";
    follower.wait_said(fault);
    proxy.down.store(false, std::sync::atomic::Ordering::SeqCst);
    follower.wait_line(&["cleared after", " s: store: the archive cannot be listed"]);
    // Said once, the same reason at each look (not how long each request took).
    assert_eq!(follower.said().matches(fault).count(), 1, "{}", follower.said());

    // An object under the next segment's name larger than any segment (whoever writes the
    // bucket could fill the follower's disk): not copied, named; the follower waits before it.
    let four = advance(&source);
    s3.put_objects("pitr", &[(&format!("wal/{four}"), vec![0u8; (17 << 20) + 1])]);
    follower.wait_said(&format!(
        "FAULT store: the archive cannot be listed: `s3://pitr/wal/{four}` is 17825793 bytes, and a segment of this cluster 16777216: not copied"
    ));
    put(&four);
    follower.wait_said(&format!("replayed {four}"));
    let mut follower = follower;
    assert_eq!(stop(&mut follower), Some(0), "{}", follower.said());
    assert!(!follower.said().contains(crate::servers::S3_SECRET_KEY));
}

/// Stops the follower as a service manager does (SIGTERM), and returns its exit code.
/// A base backup in S3 with no `wal_archive`: a drill copies it once, and a follower of the
/// copy would never see a new segment: refused before anything is restored, saying what to do.
fn a_base_backup_in_s3_with_no_archive_to_list_is_refused(
    scratch: &Scratch,
    s3: &crate::servers::S3Server,
    source: &PhysicalSource,
) {
    s3.put_folders("pitr", &[("base", &source.backup())]);
    let scenario = scratch.scenario(
        "follow-s3-base.toml",
        &format!(
            "[source]\ns3 = \"s3://pitr/base/\"\nendpoint = \"{}\"\nregion = \"us-east-1\"\n\n[target]\ndatabase = \"books\"\n",
            s3.endpoint
        ),
    );
    let refused = Command::new(pgdrill_bin())
        .arg("follow")
        .arg(&scenario)
        .arg("--state")
        .arg(scratch.path("state-s3-base"))
        .arg("--reports")
        .arg(scratch.path("reports-s3-base"))
        .envs(s3.env())
        .output()
        .unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&refused.stdout), String::from_utf8_lossy(&refused.stderr));
    assert_eq!(refused.status.code(), Some(1), "{said}");
    assert!(
        said.contains("the archive of `s3://pitr/base/` was copied from its store once: follow a repository or server in a folder on this machine or in S3, or give `[source] wal_archive`"),
        "{said}"
    );
}

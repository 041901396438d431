//! The snapshot store's tests: keys, the budget and its LRU, locks, commit and removal.
use super::*;

fn key(backup: &str) -> Key {
    Key {
        backup_sha256: backup.into(),
        image_id: "sha256:image".into(),
        restore: "{\"database\":\"app\"}".into(),
        migrations: MIGRATIONS.into(),
    }
}

fn meta(key: Key) -> Meta {
    Meta {
        schema: String::new(),
        id: String::new(),
        key,
        drill_id: "d1".into(),
        scenario: "s".into(),
        made_at: OffsetDateTime::now_utc(),
        backup_location: "b.dump".into(),
        size_bytes: 0,
        fingerprint: String::new(),
        checksums: "none".into(),
        restored: serde_json::Value::Null,
    }
}

/// A snapshot of `bytes` bytes of data, made in `store`.
async fn make(store: &Store, key: Key, bytes: usize) -> Vec<String> {
    let pending = store.begin(&format!("drill-{}", key.backup_sha256)).unwrap();
    std::fs::create_dir_all(pending.data().join("base")).unwrap();
    std::fs::write(pending.data().join("base/1"), vec![1u8; bytes]).unwrap();
    store.commit(pending, meta(key), &[]).await.unwrap()
}

#[tokio::test]
async fn a_snapshot_is_served_for_its_own_key_only_and_never_once_changed() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::at(dir.path().join("store"), 1 << 30).unwrap();
    assert!(store.find(&key("a")).unwrap().is_none(), "an empty store has nothing");
    make(&store, key("a"), 8192).await;
    let held = store.find(&key("a")).unwrap().expect("its own key finds it");
    assert_eq!(held.meta.key, key("a"));
    assert_eq!(std::fs::read(held.data().join("base/1")).unwrap(), vec![1u8; 8192]);
    assert!(store.find(&key("b")).unwrap().is_none(), "another backup's key does not");
    let mut other_image = key("a");
    other_image.image_id = "sha256:rebuilt".into();
    assert!(store.find(&other_image).unwrap().is_none(), "nor another image's");
    assert!(matches!(store.remove(&held.meta.id).await, Err(SnapshotError::InUse(_))), "held: not removed");
    let listed = store.list().unwrap();
    assert!(listed[0].in_use);
    drop(held);

    // A write into the snapshot, of the same size.
    std::thread::sleep(std::time::Duration::from_millis(10));
    let file = store.dir.join(key("a").id()).join("data/base/1");
    std::fs::write(&file, vec![2u8; 8192]).unwrap();
    let refused = store.find(&key("a")).unwrap_err();
    assert!(matches!(&refused, ServeError::Changed { drill_id, .. } if drill_id == "d1"), "{refused}");
    assert!(refused.to_string().contains("changed since drill d1 made it"), "{refused}");
}

#[tokio::test]
async fn the_least_recently_used_snapshot_no_drill_holds_makes_room() {
    let dir = tempfile::tempdir().unwrap();
    // Room for two snapshots of 64 KiB (and their folders' blocks).
    let store = Store::at(dir.path().join("store"), 180 * 1024).unwrap();
    make(&store, key("old"), 65536).await;
    std::thread::sleep(std::time::Duration::from_millis(20));
    make(&store, key("held"), 65536).await;
    std::thread::sleep(std::time::Duration::from_millis(20));
    // "old" is used after "held": "held" is now the least recently used, but a drill holds it.
    let _old = store.find(&key("old")).unwrap().unwrap();
    let held = store.find(&key("held")).unwrap().unwrap();
    let too_big = store.begin("big").unwrap();
    std::fs::create_dir_all(too_big.data()).unwrap();
    std::fs::write(too_big.data().join("f"), vec![0u8; 65536]).unwrap();
    let refused = store.commit(too_big, meta(key("new")), &[]).await.unwrap_err();
    assert!(matches!(refused, SnapshotError::TooBig { .. }), "{refused}");
    assert_eq!(store.list().unwrap().len(), 2, "nothing held was evicted");
    assert!(!store.dir.join(".pending-big").exists(), "the refused snapshot is gone");
    drop(_old);
    let evicted = make(&store, key("new"), 65536).await;
    assert_eq!(evicted, vec![key("old").id()], "the one no drill holds");
    drop(held);
    let ids: Vec<String> = store.list().unwrap().into_iter().map(|l| l.meta.id).collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&key("new").id()) && ids.contains(&key("held").id()));
    assert_eq!(store.remove(&key("held").id()[..6]).await.unwrap(), key("held").id(), "a prefix names it");
    assert!(matches!(store.remove("nothing").await, Err(SnapshotError::NotFound(_))));
}

#[tokio::test]
async fn what_a_killed_drill_was_making_is_swept() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::at(dir.path().join("store"), 1 << 30).unwrap();
    let mine = store.begin("running").unwrap();
    let dead = store.begin("killed").unwrap();
    // No process has this pid (above the kernel's highest).
    std::fs::write(dead.dir.join("owner"), "4194305").unwrap();
    assert_eq!(store.sweep(true).await, vec![dead.dir.clone()]);
    assert!(dead.dir.exists(), "a dry run removes nothing");
    store.sweep(false).await;
    assert!(!dead.dir.exists() && mine.dir.exists());
}

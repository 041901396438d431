//! The bundled fixture backups are built from the SQL beside them (`fixtures/build`); a changed
//! fixture that was not rebuilt would make every drill test something else than it says.

use sha2::{Digest, Sha256};

use crate::util::root;

#[test]
fn bundled_backups_are_built_from_the_current_fixture_sql() {
    let fixtures = root().join("fixtures");
    let recorded = std::fs::read_to_string(fixtures.join("backups/SOURCES")).expect("fixtures/backups/SOURCES");
    let mut current = Vec::new();
    let digest = |path: &std::path::Path| hex::encode(Sha256::digest(std::fs::read(path).unwrap()));
    for entry in std::fs::read_dir(&fixtures).unwrap() {
        let dir = entry.unwrap().path();
        let schema = dir.join("schema.sql");
        if !schema.is_file() {
            continue;
        }
        let system = dir.file_name().unwrap().to_string_lossy().into_owned();
        current.push(format!("{}  {system}/schema.sql", digest(&schema)));
        for made in [
            format!("backups/{system}.sql.gz"),
            format!("backups/{system}.globals.sql"),
            format!("baselines/{system}.json"),
        ] {
            assert!(fixtures.join(&made).is_file(), "fixtures/{made} is missing: run fixtures/build {system}");
        }
        for variant in std::fs::read_dir(dir.join("broken")).into_iter().flatten() {
            let path = variant.unwrap().path();
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            current.push(format!("{}  {system}/broken/{name}.sql", digest(&path)));
            let made = format!("backups/broken/{system}-{name}.sql.gz");
            assert!(fixtures.join(&made).is_file(), "fixtures/{made} is missing: run fixtures/build {system}");
        }
    }
    current.sort_by(|a, b| a[66..].cmp(&b[66..]));
    let recorded: Vec<&str> = recorded.lines().collect();
    assert_eq!(recorded, current, "fixture SQL changed since its backup was built: run fixtures/build");
}

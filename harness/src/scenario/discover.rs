//! Finding scenario files: the files given, and every `*.toml` under the folders given,
//! sorted, so that a run over a folder is the same on every machine.

use std::path::{Path, PathBuf};

/// Scenario files named by `paths` (files as they are, folders searched recursively).
pub fn discover(paths: &[PathBuf]) -> std::io::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for path in paths {
        if path.is_dir() {
            walk(path, &mut found)?;
        } else {
            found.push(path.clone());
        }
    }
    found.sort();
    found.dedup();
    Ok(found)
}

fn walk(dir: &Path, found: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            walk(&path, found)?;
        } else if path.extension().is_some_and(|e| e == "toml") {
            found.push(path);
        }
    }
    Ok(())
}

/// Whether a scenario with `tags` is selected by `wanted` (any of them; none selects all).
pub fn selected(tags: &[String], wanted: &[String]) -> bool {
    wanted.is_empty() || wanted.iter().any(|w| tags.contains(w))
}

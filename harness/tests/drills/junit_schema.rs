//! JUnit files validated against junit-10.xsd, the schema of Jenkins' xUnit plugin, by
//! `ci/junit/validate.py` (which fetches the schema once and caches it under `target/`).

use std::path::Path;
use std::process::Command;

use crate::util::root;

pub(crate) fn assert_valid(file: &Path) {
    let output = Command::new("python3")
        .arg(root().join("ci/junit/validate.py"))
        .arg(file)
        .output()
        .expect("run python3 ci/junit/validate.py");
    assert!(
        output.status.success(),
        "{} is not valid JUnit:\n{}{}\n--- the file\n{}",
        file.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        std::fs::read_to_string(file).unwrap_or_default()
    );
}

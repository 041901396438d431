//! JUnit files validated against junit-10.xsd, the schema of Jenkins' xUnit plugin. The schema
//! is fetched once, checked against its pinned digest and cached under `target/junit-xsd/` by
//! `ci/junit/validate.py` (which validates with Python's `xmlschema`); once it is there, each
//! file is validated by libxml2's `xmllint`, which reads the same schema in milliseconds where
//! the Python validator took 0.7 CPU-seconds a file (it ran after every failed drill).

use std::path::Path;
use std::process::Command;

use crate::util::root;

pub(crate) fn assert_valid(file: &Path) {
    let schema = root().join("target/junit-xsd/junit-10.xsd");
    let output = if schema.is_file() {
        Command::new("xmllint").arg("--noout").arg("--schema").arg(&schema).arg(file).output().expect("run xmllint")
    } else {
        Command::new("python3")
            .arg(root().join("ci/junit/validate.py"))
            .arg(file)
            .output()
            .expect("run python3 ci/junit/validate.py")
    };
    assert!(
        output.status.success(),
        "{} is not valid JUnit:\n{}{}\n--- the file\n{}",
        file.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        std::fs::read_to_string(file).unwrap_or_default()
    );
}

//! `pgdrill report merge`: the reports of several drills (CI shards, or a folder of past runs)
//! as one junit.xml (a test suite per drill) and one summary.md, from their drill.json files.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use super::junit;
use crate::outcome::{DrillRecord, DrillVerdict};
use crate::units::human_duration;

#[derive(Debug)]
pub struct Merged {
    pub drills: usize,
    pub passed: usize,
    pub junit: PathBuf,
    pub markdown: PathBuf,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MergeError {
    #[error("cannot read `{}`", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{}` is not a pgdrill drill record: {message}", path.display())]
    Malformed { path: PathBuf, message: String },
    #[error("no drill.json under {0}")]
    Nothing(String),
    #[error("cannot write `{}`", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn find(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), MergeError> {
    let entries = std::fs::read_dir(dir).map_err(|source| MergeError::Read { path: dir.to_owned(), source })?;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            find(&path, out)?;
        } else if path.file_name().is_some_and(|n| n == "drill.json") {
            out.push(path);
        }
    }
    Ok(())
}

/// Reads every drill.json under `dirs` and writes `junit.xml` and `summary.md` into `output`.
pub fn merge(dirs: &[PathBuf], output: &Path) -> Result<Merged, MergeError> {
    let mut files = Vec::new();
    for dir in dirs {
        find(dir, &mut files)?;
    }
    if files.is_empty() {
        return Err(MergeError::Nothing(dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", ")));
    }
    let mut records: Vec<(DrillRecord, PathBuf)> = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).map_err(|source| MergeError::Read { path: file.clone(), source })?;
        let record: DrillRecord = serde_json::from_str(&text)
            .map_err(|e| MergeError::Malformed { path: file.clone(), message: e.to_string() })?;
        records.push((record, file.parent().unwrap_or(Path::new(".")).to_owned()));
    }
    records.sort_by(|a, b| a.0.scenario.name.cmp(&b.0.scenario.name).then(a.0.started_at.cmp(&b.0.started_at)));
    std::fs::create_dir_all(output).map_err(|source| MergeError::Write { path: output.to_owned(), source })?;
    let junit_path = output.join("junit.xml");
    let refs: Vec<&DrillRecord> = records.iter().map(|(r, _)| r).collect();
    std::fs::write(&junit_path, junit::render_all(&refs))
        .map_err(|source| MergeError::Write { path: junit_path.clone(), source })?;

    let passed = records.iter().filter(|(r, _)| r.verdict == DrillVerdict::Pass).count();
    let mut md = format!(
        "# Restore drills: {}\n\n{passed} of {} drills passed.\n\n| Scenario | Verdict | Started (UTC) | Took | Recovery | Checks | Why it failed | Report |\n|---|---|---|---|---|---|---|---|\n",
        if passed == records.len() { "PASS" } else { "FAIL" },
        records.len()
    );
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]");
    for (r, dir) in &records {
        let (ok, not) = r.check_counts();
        let _ = writeln!(
            md,
            "| `{}` | {} | {} | {} | {} | {ok}/{} | {} | `{}` |",
            r.scenario.name,
            if r.verdict == DrillVerdict::Pass { "✅ pass" } else { "❌ fail" },
            r.started_at.format(&format).unwrap_or_default(),
            human_duration(r.duration),
            r.recovery.map(human_duration).unwrap_or_else(|| "-".into()),
            ok + not,
            r.failure.as_deref().unwrap_or("").replace('|', "\\|").replace('\n', " "),
            dir.display()
        );
    }
    let md_path = output.join("summary.md");
    std::fs::write(&md_path, md).map_err(|source| MergeError::Write { path: md_path.clone(), source })?;
    Ok(Merged { drills: records.len(), passed, junit: junit_path, markdown: md_path })
}

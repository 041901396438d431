//! The code's migrations as pgdrill reads them, whatever holds them (a folder's files in
//! `folder`, a plan or changelog in `plans`): [`Folder`], and why they could not be read.

use std::path::{Path, PathBuf};

/// Why the code's migrations could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FolderError {
    /// A folder or file of migrations could not be read.
    #[error("cannot read `{}`", path.display())]
    Unreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// It holds no migration: `what` names what was looked for.
    #[error("no {what} in `{}`", path.display())]
    Empty { path: PathBuf, what: &'static str },
    /// A file that does not read as its format says.
    #[error("`{}` {problem}", path.display())]
    Malformed { path: PathBuf, problem: &'static str },
    /// Drizzle's journal is not JSON.
    #[error("`{}` is not JSON", path.display())]
    NotJson {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// Several folders given for a runner whose migrations one plan, changelog or journal lists.
    #[error("`{}` and the other folders: this runner's migrations are listed in one place; give one", path.display())]
    OneOnly { path: PathBuf },
    /// A Liquibase changelog in XML that does not parse.
    #[error("`{}` is not a changelog", path.display())]
    NotXmlChangelog {
        path: PathBuf,
        #[source]
        source: quick_xml::Error,
    },
    /// A Liquibase changelog in JSON that does not parse.
    #[error("`{}` is not a changelog", path.display())]
    NotJsonChangelog {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

impl FolderError {
    pub(crate) fn unreadable(path: &Path) -> impl FnOnce(std::io::Error) -> FolderError {
        move |source| FolderError::Unreadable { path: path.to_owned(), source }
    }

    pub(crate) fn malformed(path: &Path, problem: &'static str) -> FolderError {
        FolderError::Malformed { path: path.to_owned(), problem }
    }
}

/// The code's migrations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Folder {
    /// The newest, as the journal records it.
    pub newest: String,
    /// What identifies the newest when compared with a journal's entry: its file name where
    /// the file names it more fully than the journal's form (`0003_add_zones.up.sql` for `0003`,
    /// so that a journal's `0003_other` is another migration).
    pub key: String,
    /// Where it comes from: its file, or a plan's line.
    pub source: String,
    /// Every migration, oldest first, as `key` identifies the newest.
    pub history: Vec<String>,
    /// The sqitch project the plan names.
    pub project: Option<String>,
}

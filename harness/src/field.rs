//! Values of a scenario file and their errors: an error located by its byte span (the scenario
//! loader turns it into `file:line:col`), durations, and paths as a user writes them. A leaf:
//! check kinds, the app and migrate resolve their own configuration with it.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;

/// A problem with one value of a scenario, located by its byte span in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub span: Option<Range<usize>>,
    pub message: String,
    pub help: Option<String>,
}

impl FieldError {
    pub fn new(span: Range<usize>, message: impl Into<String>) -> Self {
        FieldError { span: Some(span), message: message.into(), help: None }
    }

    /// An error whose caller knows better where it is (see [`FieldError::or_span`]).
    pub fn unplaced(message: impl Into<String>) -> Self {
        FieldError { span: None, message: message.into(), help: None }
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Places an unplaced error at `span`.
    pub fn or_span(mut self, span: Option<Range<usize>>) -> Self {
        if self.span.is_none() {
            self.span = span;
        }
        self
    }
}

/// `a/b/../c` as `a/c`, without touching the file system (the path may not exist yet, and the
/// reports should show it as the user would write it).
pub fn normalize(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if matches!(out.components().next_back(), Some(Component::Normal(_))) {
                    out.pop();
                } else {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    if out.as_os_str().is_empty() { PathBuf::from(".") } else { out }
}

pub fn parse_duration(value: &Spanned<String>) -> Result<Duration, FieldError> {
    humantime::parse_duration(value.get_ref()).map_err(|e| {
        FieldError::new(value.span(), format!("`{}` is not a duration: {e}", value.get_ref()))
            .with_help("write durations like \"90s\", \"5m\" or \"1h 30m\"")
    })
}

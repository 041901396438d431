//! One block of the scenario `init` writes (a check with what it proves, or a comment), and the
//! TOML text the blocks are written in. A leaf the renderers share: `write`, `checks`, `rls`
//! and `append_only` build blocks with it, and none of them imports another.

/// One check of the scenario, with what it proves.
#[derive(Debug, Clone, Default)]
pub(crate) struct Block {
    /// What it checks and what to tighten, one comment line each.
    pub about: Vec<String>,
    /// Its TOML, from its `[checks.<kind>]` header on; empty for a comment-only block.
    pub body: Vec<String>,
    /// Why it is written commented out: it did not pass on the backup's own restore.
    pub disabled: Option<String>,
    /// Lines proposed on top of `body`, a guess (`fail_closed`): proven with it, and written
    /// commented out, with why, when the check passes without them only.
    pub optional: Vec<String>,
    /// Why `optional` is written commented out.
    pub optional_disabled: Option<String>,
    /// Where in `body` the optional lines go (before a sub-table's header); default: the end.
    pub optional_at: Option<usize>,
}

impl Block {
    pub(super) fn new(about: &[&str], body: Vec<String>) -> Block {
        Block { about: about.iter().map(|s| (*s).to_owned()).collect(), body, ..Block::default() }
    }

    /// Whether it is a check to run (not a comment only).
    pub(crate) fn is_check(&self) -> bool {
        !self.body.is_empty()
    }

    /// Its TOML, with its optional lines in place or without them.
    pub(crate) fn lines(&self, optional: bool) -> Vec<String> {
        let at = self.optional_at.unwrap_or(self.body.len()).min(self.body.len());
        let mut out = self.body[..at].to_vec();
        if optional {
            out.extend(self.optional.iter().cloned());
        }
        out.extend(self.body[at..].iter().cloned());
        out
    }
}

/// A TOML string.
pub(crate) fn string(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}

/// A TOML key: bare where TOML allows, else quoted.
pub(super) fn key(text: &str) -> String {
    if !text.is_empty() && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        text.to_owned()
    } else {
        string(text)
    }
}

pub(super) fn list(items: &[String]) -> String {
    format!("[{}]", items.iter().map(|i| string(i)).collect::<Vec<_>>().join(", "))
}

pub(super) fn inline(pairs: &[(String, String)]) -> String {
    if pairs.is_empty() {
        return "{}".into();
    }
    format!("{{ {} }}", pairs.iter().map(|(k, v)| format!("{} = {v}", key(k))).collect::<Vec<_>>().join(", "))
}

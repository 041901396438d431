//! Values of a scenario file and their errors: an error located by its byte span (the scenario
//! loader turns it into `file:line:col`), durations, and paths as a user writes them. A leaf:
//! check kinds, the app and migrate resolve their own configuration with it.

use std::fmt;
use std::marker::PhantomData;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

/// A problem with one value of a scenario, located by its byte span in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FieldError {
    pub span: Option<Range<usize>>,
    /// What is wrong, and what to do about it as `(hint: ...)` where a user can act.
    pub message: String,
}

impl FieldError {
    pub(crate) fn new(span: Range<usize>, message: impl std::fmt::Display) -> Self {
        FieldError { span: Some(span), message: message.to_string() }
    }

    /// An error whose caller knows better where it is (see [`FieldError::or_span`]).
    pub(crate) fn unplaced(message: impl std::fmt::Display) -> Self {
        FieldError { span: None, message: message.to_string() }
    }

    /// Adds what the user can do about it, in the one form every pgdrill message uses.
    pub(crate) fn with_help(mut self, help: impl Into<String>) -> Self {
        self.message = format!("{} (hint: {})", self.message, help.into());
        self
    }

    /// Places an unplaced error at `span`.
    pub(crate) fn or_span(mut self, span: Option<Range<usize>>) -> Self {
        if self.span.is_none() {
            self.span = span;
        }
        self
    }
}

/// A value of the scenario with the byte span it was written at: toml's `Spanned`, which the
/// JSON Schema of the scenario format (`pgdrill schema`) sees as the value it holds.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Spanned<T>(toml::Spanned<T>);

impl<T> Spanned<T> {
    #[cfg(test)]
    pub(crate) fn new(span: Range<usize>, value: T) -> Self {
        Spanned(toml::Spanned::new(span, value))
    }

    pub(crate) fn span(&self) -> Range<usize> {
        self.0.span()
    }

    pub(crate) fn get_ref(&self) -> &T {
        self.0.get_ref()
    }

    pub(crate) fn into_inner(self) -> T {
        self.0.into_inner()
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Spanned<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        toml::Spanned::deserialize(deserializer).map(Spanned)
    }
}

impl<T: schemars::JsonSchema> schemars::JsonSchema for Spanned<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }

    fn schema_name() -> std::borrow::Cow<'static, str> {
        T::schema_name()
    }

    fn schema_id() -> std::borrow::Cow<'static, str> {
        T::schema_id()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        T::json_schema(generator)
    }
}

/// `a/b/../c` as `a/c`, without touching the file system (the path may not exist yet, and the
/// reports should show it as the user would write it).
pub(crate) fn normalize(path: &Path) -> PathBuf {
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

pub(crate) fn parse_duration(value: &Spanned<String>) -> Result<Duration, FieldError> {
    humantime::parse_duration(value.get_ref()).map_err(|e| {
        FieldError::new(value.span(), format!("`{}` is not a duration: {e}", value.get_ref()))
            .with_help("write durations like \"90s\", \"5m\" or \"1h 30m\"")
    })
}

/// A check kind written once (`[checks.kind]`) or several times (`[[checks.kind]]`). Each entry
/// keeps its span when the file gives one.
#[derive(Debug)]
pub(crate) struct OneOrMany<T>(pub Vec<(Option<Range<usize>>, T)>);

impl<T> Default for OneOrMany<T> {
    fn default() -> Self {
        OneOrMany(Vec::new())
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for OneOrMany<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct OneOrManyVisitor<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for OneOrManyVisitor<T> {
            type Value = OneOrMany<T>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a table, or an array of tables")
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                let one = T::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(OneOrMany(vec![(None, one)]))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut all = Vec::new();
                while let Some(item) = seq.next_element::<Spanned<T>>()? {
                    let span = item.span();
                    all.push((Some(span), item.into_inner()));
                }
                Ok(OneOrMany(all))
            }
        }

        deserializer.deserialize_any(OneOrManyVisitor(PhantomData))
    }
}

//! The `{{name}}` templates of the programs a scenario runs on the restored database (the app's
//! environment and requests, a migration command's environment and record): the names every
//! template may use, their values for a program's login, the check made when the scenario is
//! read, and the rendering made when the program starts. `app` and `migrate` share it.

use std::collections::{BTreeMap, BTreeSet};

use crate::field::FieldError;

/// Why a template cannot be rendered yet.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TemplateError {
    /// `{{env.NAME}}` names a variable that pgdrill's environment does not have.
    #[error("the environment variable `{var}` is not set")]
    Unset { var: String },
    /// A name without a value yet (a value an earlier request did not capture).
    #[error("`{{{{{name}}}}}` has no value yet")]
    NoValue { name: String },
}

/// Names every template may use.
pub(crate) const BUILTINS: [&str; 8] =
    ["database_url", "host", "port", "user", "password", "database", "app_port", "app_url"];

/// The values templates may use: how a program logs in to the restored database, and the app's
/// port.
pub(crate) fn template_values(
    login: &crate::provision::ProgramLogin,
    database: &str,
    app_port: Option<u16>,
) -> BTreeMap<String, String> {
    let mut values: BTreeMap<String, String> = [
        (
            "database_url",
            format!(
                "postgres://{}:{}@{}:{}/{database}?sslmode={}",
                login.user,
                login.password.expose(),
                login.host,
                login.port,
                login.ssl_mode
            ),
        ),
        ("host", login.host.clone()),
        ("port", login.port.to_string()),
        ("user", login.user.clone()),
        ("password", login.password.expose().to_owned()),
        ("database", database.to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    if let Some(port) = app_port {
        values.insert("app_port".into(), port.to_string());
        values.insert("app_url".into(), format!("http://127.0.0.1:{port}"));
    }
    values
}

/// Checks a template's `{{names}}` against what will be known when it is rendered.
pub(crate) fn check_template(text: &str, known: &BTreeSet<String>, what: &str) -> Result<(), FieldError> {
    for name in template_names(text) {
        if !(known.contains(&name) || name.strip_prefix("env.").is_some_and(|v| !v.is_empty())) {
            return Err(FieldError::unplaced(format!(
                "{what} uses `{{{{{name}}}}}`, which is not known there (known: {}, env.NAME, and values captured by earlier requests)",
                known.iter().cloned().collect::<Vec<_>>().join(", ")
            )));
        }
    }
    Ok(())
}

/// The names a template's `{{name}}` placeholders give, trimmed.
pub(crate) fn template_names(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        out.push(after[..end].trim().to_owned());
        rest = &after[end + 2..];
    }
    out
}

/// Renders `{{name}}` placeholders from `values` and the environment.
pub(crate) fn render(text: &str, values: &BTreeMap<String, String>) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return Ok(out);
        };
        let name = after[..end].trim();
        let value = match name.strip_prefix("env.") {
            Some(var) => std::env::var(var).map_err(|_| TemplateError::Unset { var: var.to_owned() })?,
            None => values.get(name).cloned().ok_or_else(|| TemplateError::NoValue { name: name.to_owned() })?,
        };
        out.push_str(&value);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates() {
        let values: BTreeMap<String, String> = [("app_port".to_owned(), "8080".to_owned())].into();
        assert_eq!(render("http://127.0.0.1:{{app_port}}/x", &values).unwrap(), "http://127.0.0.1:8080/x");
        assert_eq!(render("{{token}}", &values).unwrap_err().to_string(), "`{{token}}` has no value yet");
        let known: BTreeSet<String> = ["app_port".to_owned()].into();
        assert!(check_template("{{ app_port }} {{env.X}}", &known, "t").is_ok());
        assert!(check_template("{{tokn}}", &known, "t").unwrap_err().message.contains("`{{tokn}}`"));
    }
}

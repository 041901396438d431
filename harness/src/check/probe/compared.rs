//! The columns a table's policies compare with a setting the scenario sets, each with that
//! setting's value: a probe row the application writes holds it there (its own INSERT passes the
//! policy's check, and its own reads see it). A leaf `rls` and `append_only` share.

use std::sync::LazyLock;

use regex::Regex;

/// A column as the server deparses it when it casts it for a comparison: `(visibility)::text` of
/// a `varchar`, `tenant_id::text` of a `uuid`.
pub(crate) const CAST: &str = r"\)?\s*(?:::\s*[a-z_][a-z0-9_ ]*?(?:\[\])?)?";

/// The columns the policies compare with a setting the scenario sets (`mid =
/// current_setting('app.mid')`), each with that setting's value: a probe row the application
/// writes holds it there (its own INSERT must pass the policy's check).
pub(crate) fn with_settings(policies: &[String], settings: &crate::check::Settings) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (column, setting) in pairs(policies) {
        let value = settings.0.iter().find(|(name, _)| name.eq_ignore_ascii_case(&setting)).map(|(_, v)| v.clone());
        if let Some(value) = value
            && !out.iter().any(|(c, _): &(String, String)| *c == column)
        {
            out.push((column, value));
        }
    }
    out
}

/// Each column the policies compare with a setting (`mid = current_setting('app.mid')`), with
/// that setting's name as the text holds it, in the order they come.
pub(crate) fn pairs(policies: &[String]) -> Vec<(String, String)> {
    static COMPARED: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(&format!(
            r"\b([a-z_][a-z0-9_]*){CAST}\s*=\s*[(\s]*(?:nullif\s*\(\s*)?current_setting\s*\(\s*'([^']+)'"
        ))
        .expect("a valid pattern")
    });
    let mut out: Vec<(String, String)> = Vec::new();
    for text in policies {
        for c in COMPARED.captures_iter(text) {
            let pair = (c[1].to_owned(), c[2].to_owned());
            if !out.contains(&pair) {
                out.push(pair);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_column_a_policy_compares_with_a_scenario_setting_takes_its_value() {
        let policies = vec![
            "((mid = current_setting('app.mid'::text, true)) and (tenant_id = (nullif(current_setting('app.tenant'::text, true), ''::text))::uuid))".to_owned(),
        ];
        let settings = crate::check::Settings([("app.mid".to_owned(), "mid-1".to_owned())].into());
        assert_eq!(with_settings(&policies, &settings), [("mid".to_owned(), "mid-1".to_owned())]);
        assert!(with_settings(&policies, &crate::check::Settings::default()).is_empty());
    }
}

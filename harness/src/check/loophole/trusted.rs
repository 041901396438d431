//! What a scenario trusts (`trusted`): a setting, one value of it, or a fact about the session
//! that only a trusted path produces, each with why, and the finding it answers: the probes do
//! not try it, and the report lists it.

use serde::Deserialize;

use super::facts;
use crate::field::FieldError;

/// A setting or a value of it the scenario says only a trusted path sets.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Trusted {
    /// The setting, as `current_setting` names it (`app.bypass_rls`).
    #[serde(default)]
    pub setting: Option<String>,
    /// One value of it only (a tenant value the policies treat specially); default: any.
    pub value: Option<String>,
    /// A fact about the session that cannot be tried, as the failure names it
    /// (`inet_client_addr`, `pg_stat_activity`, `txid_current`, `dynamic SQL`).
    #[serde(default)]
    pub fact: Option<String>,
    /// Why only a trusted path can set it, or why the fact holds for the application: shown in
    /// the report.
    pub reason: String,
    /// The finding it answers, by its code (`rls.only-like-the-drill`; see the findings
    /// reference): a `setting` named for the check's "only like the drill" finding is trusted as
    /// a fact and still tried as a lever, one named for its lever finding the other way round.
    /// Refused when the check gives no such finding, or cannot accept it.
    #[serde(default)]
    pub finding: Option<String>,
}

impl Trusted {
    /// Names folded as PostgreSQL folds setting names (lower case); a reason is required.
    pub(crate) fn resolve(list: Vec<Trusted>) -> Result<Vec<Trusted>, FieldError> {
        list.into_iter()
            .map(|t| {
                let named = match (&t.setting, &t.fact) {
                    (Some(setting), None) => format!("setting `{setting}`"),
                    (None, Some(fact)) if t.value.is_none() => format!("fact `{fact}`"),
                    (None, Some(_)) => return Err(FieldError::unplaced("a trusted `fact` takes no `value`")),
                    _ => {
                        return Err(FieldError::unplaced(
                            "a trusted entry names one `setting` (optionally with a `value`) or one `fact`",
                        ));
                    }
                };
                if t.reason.trim().is_empty() {
                    return Err(FieldError::unplaced(format!(
                        "trusted {named} needs a `reason`: why only a trusted path sets it, or why it holds for the application"
                    )));
                }
                Ok(Trusted {
                    setting: t.setting.map(|s| s.to_lowercase()),
                    fact: t.fact.map(|f| f.trim_end_matches("()").to_lowercase()),
                    ..t
                })
            })
            .collect()
    }

    /// [`Trusted::resolve`], then the finding each entry names ([`crate::check::accept::finding`]):
    /// one of `kind`'s, `lever` (a setting a session may set opens) for a `setting`, `fact` (only
    /// like the drill) for either.
    pub(crate) fn resolve_for(
        list: Vec<Trusted>,
        kind: crate::outcome::CheckKind,
        lever: &str,
        fact: &str,
    ) -> Result<Vec<Trusted>, FieldError> {
        let mut list = Trusted::resolve(list)?;
        for trusted in &mut list {
            let answers: &[&str] = if trusted.setting.is_some() { &[lever, fact] } else { &[fact] };
            trusted.finding = crate::check::accept::finding(trusted.finding.as_deref(), kind, answers)?;
        }
        Ok(list)
    }

    /// Whether it answers the finding of a fact no try shows (`*.only-like-the-drill`), or any.
    fn answers_facts(&self) -> bool {
        self.finding.as_deref().is_none_or(|f| f.ends_with(".only-like-the-drill"))
    }

    pub(super) fn covers(&self, setting: &str, value: &str) -> bool {
        let lever = self.finding.as_deref().is_none_or(|f| !f.ends_with(".only-like-the-drill"));
        lever && self.setting.as_deref() == Some(setting) && self.value.as_deref().is_none_or(|v| v == value)
    }

    /// Whether it trusts `fact`.
    pub(crate) fn covers_fact(&self, fact: &facts::Fact) -> bool {
        if !self.answers_facts() {
            return false;
        }
        self.fact.as_deref() == Some(fact.key().as_str())
            || matches!(fact, facts::Fact::Setting(name) | facts::Fact::Keyed(name, _)
                if self.setting.as_deref() == Some(name) && self.value.is_none())
    }

    /// How the evidence lists it (with the finding it answers, when it names one).
    pub(crate) fn shown(&self) -> String {
        let trusted = match &self.finding {
            Some(code) => format!("trusted for {code}: {}", self.reason),
            None => format!("trusted: {}", self.reason),
        };
        match (&self.setting, &self.value, &self.fact) {
            (Some(setting), Some(value), _) => format!("{setting} = '{value}' ({trusted})"),
            (Some(setting), None, _) => format!("{setting} ({trusted})"),
            (None, _, Some(fact)) => format!("{fact} ({trusted})"),
            (None, _, None) => format!("({trusted})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::CheckKind;

    const LEVER: &str = "rls.session-setting-opens";
    const FACT: &str = "rls.only-like-the-drill";

    fn setting(finding: Option<&str>) -> Trusted {
        Trusted {
            setting: Some("app.bypass".into()),
            value: None,
            fact: None,
            reason: "the admin login sets it".into(),
            finding: finding.map(String::from),
        }
    }

    fn resolve(list: Vec<Trusted>) -> Result<Vec<Trusted>, FieldError> {
        Trusted::resolve_for(list, CheckKind::Rls, LEVER, FACT)
    }

    #[test]
    fn a_trusted_setting_named_for_a_finding_answers_that_finding_only() {
        let any = &resolve(vec![setting(None)]).unwrap()[0];
        let lever = &resolve(vec![setting(Some(LEVER))]).unwrap()[0];
        let fact = &resolve(vec![setting(Some(FACT))]).unwrap()[0];
        let read = facts::Fact::Setting("app.bypass".into());
        assert!(any.covers("app.bypass", "on") && any.covers_fact(&read));
        assert!(lever.covers("app.bypass", "on") && !lever.covers_fact(&read));
        assert!(!fact.covers("app.bypass", "on") && fact.covers_fact(&read));
        assert_eq!(lever.shown(), "app.bypass (trusted for rls.session-setting-opens: the admin login sets it)");
    }

    #[test]
    fn a_finding_no_check_gives_or_this_entry_cannot_answer_is_refused() {
        for (finding, says) in [
            ("rls.leaks", "is not a finding any check gives"),
            ("rls.disabled", "is not a finding `rls` accepts"),
            ("append-only.session-setting-opens", "is not a finding `rls` accepts"),
        ] {
            let err = resolve(vec![setting(Some(finding))]).unwrap_err().message;
            assert!(err.contains(says), "{err}");
        }
        let fact = Trusted { setting: None, fact: Some("inet_client_addr".into()), ..setting(Some(LEVER)) };
        let err = resolve(vec![fact]).unwrap_err().message;
        assert!(err.contains("answers `rls.only-like-the-drill`, not `rls.session-setting-opens`"), "{err}");
    }
}

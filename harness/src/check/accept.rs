//! Code accepted by design, for its code only: a `SECURITY DEFINER` function (or a rule, a view,
//! a foreign key) a check would fail, accepted by the name the check prints, with the sha256 of
//! the code the check read and a reason the report shows. A backup that rewrites the code fails
//! again, saying so.

use sha2::Digest;

use crate::field::FieldError;
use crate::outcome::CheckKind;

/// The finding an acceptance names (`finding = "rls.only-like-the-drill"`), checked: a code a
/// check gives ([`crate::check::findings`]), of `kind`, that an acceptance may answer
/// ([`crate::outcome::About::acceptable`]), and one an entry of this shape answers (`answers`:
/// a trusted `fact` answers `rls.only-like-the-drill`, not `rls.session-setting-opens`).
pub(crate) fn finding(named: Option<&str>, kind: CheckKind, answers: &[&str]) -> Result<Option<String>, FieldError> {
    let Some(code) = named.map(str::trim) else { return Ok(None) };
    let all = crate::check::findings();
    let accepted: Vec<&str> = all
        .iter()
        .flat_map(|list| list.iter())
        .filter(|about| about.kind == Some(kind) && about.acceptable)
        .map(|about| about.code)
        .collect();
    let about = crate::outcome::lookup(&all, code).ok_or_else(|| {
        FieldError::unplaced(format!(
            "`{code}` is not a finding any check gives (`{kind}` accepts {})",
            accepted.join(", ")
        ))
        .with_help("the findings reference lists every code: docs/src/reference/findings.md")
    })?;
    if !accepted.contains(&about.code) {
        return Err(FieldError::unplaced(format!(
            "`{code}` is not a finding `{kind}` accepts: it accepts {}",
            accepted.join(", ")
        )));
    }
    if !answers.contains(&about.code) {
        return Err(FieldError::unplaced(format!(
            "an entry of this shape answers {}, not `{code}`",
            answers.iter().map(|a| format!("`{a}`")).collect::<Vec<_>>().join(" or ")
        )));
    }
    Ok(Some(about.code.to_owned()))
}

/// Code accepted by design: as the check names it, the sha256 of its code, and why.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Door {
    pub function: String,
    pub code: String,
    pub reason: String,
    /// The finding it answers, when the scenario names it ([`finding`]).
    pub finding: Option<String>,
}

/// One acceptance of code as a scenario writes it.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "CodeAccept")]
pub(crate) struct AcceptConfig {
    /// The code as the check names it (`public.cleanup_audit_log(integer)`, `rule tidy on
    /// public.notes`, `constraint audit_member_fkey on public.audit`).
    pub through: String,
    /// The sha256 of its code as the check prints it: accepted for that code only.
    pub code: String,
    /// Why it is there by design, for the report (required).
    pub reason: String,
    /// The finding it answers, by its code (`append-only.others-powers`; see the findings
    /// reference): refused when the check gives no such finding, or cannot accept it.
    #[serde(default)]
    pub finding: Option<String>,
}

impl Door {
    /// An acceptance of `through`, checked: 64 hexadecimal digits of `code`, and a reason.
    pub(crate) fn new(through: &str, code: Option<&str>, reason: &str) -> Result<Door, FieldError> {
        let function = through.trim().to_owned();
        let code = code.map(|c| c.trim().to_ascii_lowercase()).unwrap_or_default();
        if code.len() != 64 || !code.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(FieldError::unplaced(format!(
                "accepting `{function}` needs the `code` the check prints for it (64 hexadecimal digits, its sha256): the acceptance holds for that code only"
            )));
        }
        let reason = reason.trim().to_owned();
        if reason.is_empty() {
            return Err(FieldError::unplaced(format!(
                "accepting `{function}` needs a `reason`: the report shows an auditor why it is there"
            )));
        }
        Ok(Door { function, code, reason, finding: None })
    }

    /// Every acceptance of `configs` by a check of `kind` whose accepted code fails as
    /// `answers`, each named once.
    pub(crate) fn resolve(configs: Vec<AcceptConfig>, kind: CheckKind, answers: &str) -> Result<Vec<Door>, FieldError> {
        let mut doors: Vec<Door> = Vec::new();
        for config in configs {
            let mut door = Door::new(&config.through, Some(&config.code), &config.reason)?;
            door.finding = finding(config.finding.as_deref(), kind, &[answers])?;
            if doors.iter().any(|d| d.function == door.function) {
                return Err(FieldError::unplaced(format!("`{}` is accepted twice", door.function)));
            }
            doors.push(door);
        }
        Ok(doors)
    }
}

/// How `doors` judge code named `name` whose code is `code`.
pub(crate) enum Judged<'a> {
    /// Accepted for this code.
    Accepted(&'a Door),
    /// Accepted for other code: rewritten since.
    Rewritten(&'a Door),
    /// Not accepted.
    No,
}

/// Whether `doors` accept `name` with `code`.
pub(crate) fn judge<'a>(doors: &'a [Door], name: &str, code: &str) -> Judged<'a> {
    match doors.iter().find(|d| d.function == name) {
        Some(door) if door.code == code => Judged::Accepted(door),
        Some(door) => Judged::Rewritten(door),
        None => Judged::No,
    }
}

/// The sha256 (hex) of a function's language, settings and source: what an acceptance holds for.
pub(crate) fn code_digest(language: &str, config: &str, source: &str) -> String {
    digest(&format!("{language}\n{config}\n{source}"))
}

/// The sha256 (hex) of `text`.
pub(crate) fn digest(text: &str) -> String {
    hex::encode(sha2::Sha256::digest(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KIND: CheckKind = CheckKind::AppendOnly;
    const OTHERS: &str = "append-only.others-powers";

    fn config(through: &str, code: &str, reason: &str) -> AcceptConfig {
        AcceptConfig { through: through.into(), code: code.into(), reason: reason.into(), finding: None }
    }

    #[test]
    fn code_is_accepted_for_its_digest_only_with_a_reason() {
        let code = digest("DELETE FROM audit WHERE at < now() - interval '7 years'");
        let doors = Door::resolve(vec![config("public.purge()", &code, "retention, seven years")], KIND, OTHERS)
            .expect("valid");
        assert!(matches!(judge(&doors, "public.purge()", &code), Judged::Accepted(d) if d.reason.contains("seven")));
        assert!(matches!(judge(&doors, "public.purge()", &digest("DELETE FROM audit")), Judged::Rewritten(_)));
        assert!(matches!(judge(&doors, "public.other()", &code), Judged::No));
        for (bad, says) in [
            (config("public.purge()", "abc", "why"), "64 hexadecimal digits"),
            (config("public.purge()", &code, " "), "needs a `reason`"),
        ] {
            let err = Door::resolve(vec![bad], KIND, OTHERS).expect_err("refused").message;
            assert!(err.contains(says), "{err}");
        }
        let twice =
            Door::resolve(vec![config("f()", &code, "a"), config("f()", &code, "b")], KIND, OTHERS).expect_err("twice");
        assert!(twice.message.contains("accepted twice"), "{}", twice.message);
    }

    #[test]
    fn an_acceptance_names_a_finding_its_kind_accepts_and_its_shape_answers() {
        let code = digest("DELETE FROM audit");
        let named = |finding: &str| AcceptConfig { finding: Some(finding.into()), ..config("f()", &code, "why") };
        let doors = Door::resolve(vec![named(OTHERS)], KIND, OTHERS).expect("valid");
        assert_eq!(doors[0].finding.as_deref(), Some(OTHERS));
        for (finding, says) in [
            ("append-only.nothing", "is not a finding any check gives"),
            ("append-only.mutable", "is not a finding `append_only` accepts"),
            ("rls.only-like-the-drill", "is not a finding `append_only` accepts"),
            ("append-only.only-like-the-drill", "an entry of this shape answers `append-only.others-powers`"),
        ] {
            let err = Door::resolve(vec![named(finding)], KIND, OTHERS).expect_err(finding).message;
            assert!(err.contains(says), "{err}");
        }
    }
}

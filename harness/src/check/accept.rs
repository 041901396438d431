//! Code accepted by design, for its code only: a `SECURITY DEFINER` function (or a rule, a view,
//! a foreign key) a check would fail, accepted by the name the check prints, with the sha256 of
//! the code the check read and a reason the report shows. A backup that rewrites the code fails
//! again, saying so.

use sha2::Digest;

use crate::field::FieldError;

/// Code accepted by design: as the check names it, the sha256 of its code, and why.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Door {
    pub function: String,
    pub code: String,
    pub reason: String,
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
        Ok(Door { function, code, reason })
    }

    /// Every acceptance of `configs`, each named once.
    pub(crate) fn resolve(configs: Vec<AcceptConfig>) -> Result<Vec<Door>, FieldError> {
        let mut doors: Vec<Door> = Vec::new();
        for config in configs {
            let door = Door::new(&config.through, Some(&config.code), &config.reason)?;
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

    fn config(through: &str, code: &str, reason: &str) -> AcceptConfig {
        AcceptConfig { through: through.into(), code: code.into(), reason: reason.into() }
    }

    #[test]
    fn code_is_accepted_for_its_digest_only_with_a_reason() {
        let code = digest("DELETE FROM audit WHERE at < now() - interval '7 years'");
        let doors = Door::resolve(vec![config("public.purge()", &code, "retention, seven years")]).expect("valid");
        assert!(matches!(judge(&doors, "public.purge()", &code), Judged::Accepted(d) if d.reason.contains("seven")));
        assert!(matches!(judge(&doors, "public.purge()", &digest("DELETE FROM audit")), Judged::Rewritten(_)));
        assert!(matches!(judge(&doors, "public.other()", &code), Judged::No));
        for (bad, says) in [
            (config("public.purge()", "abc", "why"), "64 hexadecimal digits"),
            (config("public.purge()", &code, " "), "needs a `reason`"),
        ] {
            let err = Door::resolve(vec![bad]).expect_err("refused").message;
            assert!(err.contains(says), "{err}");
        }
        let twice = Door::resolve(vec![config("f()", &code, "a"), config("f()", &code, "b")]).expect_err("twice");
        assert!(twice.message.contains("accepted twice"), "{}", twice.message);
    }
}

//! Findings with an identity: every result a check can give has a stable code
//! (`rls.unset-tenant-reads-rows`), what it means and what to do, declared by its kind in one
//! enum ([`findings!`]) so that records, reports, acceptances and tests name the code, never the
//! message's words.
//!
//! A code is `<kind>.<words>`: the kind as the scenario writes it (`row_counts` as `row-counts`),
//! then lower-case words joined by `-`. A few codes belong to no kind (`check.not-run`): what the
//! drill says of a check it did not run ([`Common`]). A code never changes meaning once released;
//! a finding that goes away keeps its code unused.

use super::check::{CheckKind, Verdict};

/// One result a check can give: its code, the verdict it carries, what it means and what to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct About {
    /// The kind whose enum declares it; `None` for [`Common`]'s.
    pub kind: Option<CheckKind>,
    /// Stable, unique: `rls.unset-tenant-reads-rows`.
    pub code: &'static str,
    /// The verdict a result with this finding has.
    pub verdict: Verdict,
    /// What it means, in a sentence or two.
    pub meaning: &'static str,
    /// What to do about it.
    pub remedy: &'static str,
    /// Whether a scenario's acceptance (`trusted`, `accept`) may name it: a finding that holds
    /// by design where the scenario says why.
    pub acceptable: bool,
}

/// A result a check can give: a variant of one of the enums [`findings!`] declares.
pub trait Finding: Copy {
    /// Every finding of the enum, in its order.
    const ALL: &'static [About];
    /// This one.
    fn about(self) -> &'static About;
    /// Its code.
    fn code(self) -> &'static str {
        self.about().code
    }
}

/// Declares a kind's findings: an enum, its [`Finding`] implementation and its `ALL` list.
///
/// ```ignore
/// findings! {
///     /// What `rls` finds.
///     pub(crate) enum RlsFinding for Rls {
///         UnsetTenantReadsRows = Fail "rls.unset-tenant-reads-rows"
///             "The role reads rows with no tenant set."
///             "Make the policy match no row when the setting is unset.",
///         OnlyLikeTheDrill = Fail(acceptable) "rls.only-like-the-drill" "..." "...",
///     }
/// }
/// ```
macro_rules! findings {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident for $kind:ident {
            $(
                $(#[$vmeta:meta])*
                $variant:ident = $verdict:ident $(($acceptable:ident))? $code:literal $meaning:literal $remedy:literal
            ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        $vis enum $name {
            $($(#[$vmeta])* #[doc = $meaning] $variant,)*
        }

        impl $crate::outcome::Finding for $name {
            const ALL: &'static [$crate::outcome::About] = &[$(
                $crate::outcome::About {
                    kind: $crate::outcome::findings!(@kind $kind),
                    code: $code,
                    verdict: $crate::outcome::Verdict::$verdict,
                    meaning: $meaning,
                    remedy: $remedy,
                    acceptable: $crate::outcome::findings!(@acceptable $($acceptable)?),
                },
            )*];

            fn about(self) -> &'static $crate::outcome::About {
                &<Self as $crate::outcome::Finding>::ALL[self as usize]
            }
        }
    };
    (@kind None) => { None };
    (@kind $kind:ident) => { Some($crate::outcome::CheckKind::$kind) };
    (@acceptable acceptable) => { true };
    (@acceptable) => { false };
}
pub(crate) use findings;

findings! {
    /// What the drill says of a check whatever its kind: one it did not run, or that could not
    /// run at all.
    pub enum Common for None {
        NotRun = Skipped "check.not-run"
            "The check did not run: an earlier phase failed or the drill was stopped, so it proves nothing either way."
            "Fix the phase the drill names as failed; the check runs in the next drill.",
        CouldNotRun = Error "check.could-not-run"
            "The check could not run at all (the database refused a query it needs, or what it reads is missing): an error fails the drill as a failure does."
            "Read the message and the evidence: the database's answer says what failed.",
        NoResult = Error "check.no-result"
            "The check compared nothing, so it proves nothing: an empty comparison is not a pass."
            "Name what the check should compare, or capture a baseline that records it.",
    }
}

/// The finding of `code` among `all`, if there is one.
pub fn lookup<'a>(all: &[&'a [About]], code: &str) -> Option<&'a About> {
    all.iter().flat_map(|list| list.iter()).find(|about| about.code == code)
}

/// Why `about` is not a well-formed finding of its kind, if it is not: its code is
/// `<kind>.<words>` in lower case (`check.` for [`Common`]'s), and it says what it means and
/// what to do.
pub fn malformed(about: &About) -> Option<String> {
    let prefix = match about.kind {
        Some(kind) => kind.as_str().replace('_', "-"),
        None => "check".to_owned(),
    };
    let code = about.code;
    let words = code.strip_prefix(&prefix).and_then(|rest| rest.strip_prefix('.'));
    let well_formed = words.is_some_and(|w| {
        !w.is_empty()
            && !w.starts_with('-')
            && !w.ends_with('-')
            && !w.contains("--")
            && w.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    });
    if !well_formed {
        return Some(format!("`{code}` is not `{prefix}.<lower-case-words>`"));
    }
    if about.meaning.trim().is_empty() || about.remedy.trim().is_empty() {
        return Some(format!("`{code}` needs what it means and what to do"));
    }
    if about.acceptable && about.verdict != Verdict::Fail {
        return Some(format!("`{code}` is acceptable but not a failure: only a failure is accepted"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_findings_are_well_formed_and_carry_their_verdict() {
        for about in Common::ALL {
            assert_eq!(malformed(about), None);
        }
        assert_eq!(Common::NotRun.code(), "check.not-run");
        assert_eq!(Common::CouldNotRun.about().verdict, Verdict::Error);
        assert_eq!(lookup(&[Common::ALL], "check.no-result"), Some(Common::NoResult.about()));
        assert_eq!(lookup(&[Common::ALL], "check.nothing"), None);
    }

    #[test]
    fn a_malformed_code_is_named() {
        let about =
            |kind, code| About { kind, code, verdict: Verdict::Fail, meaning: "m", remedy: "r", acceptable: false };
        assert_eq!(malformed(&about(Some(CheckKind::RowCounts), "row-counts.short")), None);
        for (kind, code) in [
            (Some(CheckKind::RowCounts), "row_counts.short"),
            (Some(CheckKind::Rls), "rls."),
            (Some(CheckKind::Rls), "rls.Unset"),
            (Some(CheckKind::Rls), "roles.unset"),
            (None, "rls.unset"),
            (Some(CheckKind::Rls), "rls.a--b"),
        ] {
            assert!(malformed(&about(kind, code)).is_some(), "{code}");
        }
    }

    #[test]
    fn a_result_takes_its_code_and_verdict_from_its_finding_and_an_older_record_reads_without_one() {
        use super::super::CheckResult;
        let result = CheckResult::build(CheckKind::Rls, "public.t", std::time::Instant::now())
            .found(Common::CouldNotRun, "could not read `public.t`");
        assert_eq!((result.verdict, result.code.as_str()), (Verdict::Error, "check.could-not-run"));
        let skipped = CheckResult::skipped(CheckKind::Sql, "q", "restore failed");
        assert_eq!((skipped.verdict, skipped.code.as_str()), (Verdict::Skipped, "check.not-run"));
        let mut json = serde_json::to_value(&result).expect("JSON");
        assert_eq!(json["code"], "check.could-not-run", "drill.json records the code");
        json.as_object_mut().expect("an object").remove("code");
        let older: CheckResult = serde_json::from_value(json).expect("a record from before codes reads");
        assert_eq!(older.code, "");
    }
}

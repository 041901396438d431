//! What `append_only` finds: a code per result it can give.

crate::outcome::findings! {
    /// What `append_only` finds.
    pub(crate) enum Found for AppendOnly {
        Appends = Pass "append-only.appends"
            "The writing role's INSERT adds a row to the table itself."
            "Nothing.",
        CannotAppend = Fail "append-only.cannot-append"
            "The writing role's INSERT is refused, or adds no row to the table itself: the application cannot write its trail."
            "Grant INSERT to the role, or find the trigger, rule or policy that swallows the row.",
        Refused = Pass "append-only.refused"
            "UPDATE, DELETE or TRUNCATE by the writing role is refused (by privilege, trigger, rule or policy)."
            "Nothing.",
        Mutable = Fail "append-only.mutable"
            "The writing role can UPDATE, DELETE or TRUNCATE the trail: it is not append-only."
            "Revoke the privilege, or add a trigger that refuses the change.",
        Unproven = Error "append-only.unproven"
            "A write could not be tried to an answer that proves anything (no row to aim at, no value to change, an error that is not a refusal)."
            "Read the message: give the table a row, or `key`, or fix what made the statement fail.",
        GuardsHold = Pass "append-only.guards-hold"
            "No value of a setting the role's session may set itself opens the guards; or the guards read nothing a session sets."
            "Nothing.",
        SessionSettingOpens = Fail(acceptable) "append-only.session-setting-opens"
            "A setting the role's session may set itself lets it change or erase rows the guards refuse otherwise."
            "Make the guards ignore the setting, or name it in `trusted` with why only a trusted path sets it.",
        OnlyLikeTheDrill = Fail(acceptable) "append-only.only-like-the-drill"
            "The guards' code reads facts about the session no try can show (who, where, when): the refusal is proven only for sessions like the drill's."
            "Remove the read from the guards' code, or name the fact in `trusted` with why it holds for the application.",
        NoOthersPowers = Pass "append-only.no-others-powers"
            "The role runs no code of others (a SECURITY DEFINER function, a definer trigger, a rule, a view, a cascading key) that may change the trail, or only accepted code."
            "Nothing.",
        OthersPowers = Fail(acceptable) "append-only.others-powers"
            "The role may change the trail through code that runs with another role's powers, or accepted code was rewritten since its acceptance."
            "Remove the path, or `accept` it by name with the sha256 of its code and why it is there by design.",
        TriggersKept = Pass "append-only.triggers-kept"
            "The immutability triggers the scenario names are present and enabled."
            "Nothing.",
        TriggersLost = Fail "append-only.triggers-lost"
            "An immutability trigger the scenario names is missing or disabled."
            "Restore or enable the trigger in the source; find why the backup lost it.",
        TrailKept = Pass "append-only.trail-kept"
            "Every row of the previous drills' trail is here, unchanged; new rows were only appended."
            "Nothing.",
        TrailChanged = Fail "append-only.trail-changed"
            "Rows the previous drill recorded were deleted, changed or inserted among the old ones, or the trail cannot be compared."
            "Find who changed the trail between the two backups: an append-only trail never changes its past.",
        AnotherTable = Fail "append-only.another-table"
            "The name without a schema resolves, for the application's role, to another table."
            "Name the table with its schema, or look at the role's `search_path`.",
        NotATable = Fail "append-only.not-a-table"
            "Something other than a table (a view with rules, a foreign table) has the table's name: it can swallow every write."
            "Find what replaced the table in the backup.",
        CouldNotRead = Error "append-only.could-not-read"
            "pgdrill could not probe the table or read the catalog (its triggers, what guards it, what the role runs as others)."
            "Read the database's answer in the message.",
    }
}

//! The `schemas` check against what a baseline records of how each table and sequence behaves.
//! A backup can keep every name and still change what the application gets: a default that
//! now grants `admin`, a constraint restored `NOT VALID` over rows that break it, a foreign key
//! whose triggers are disabled, an audit trigger set to `ENABLE REPLICA` (it no longer fires in
//! ordinary sessions) or running a replaced function of the same name, a rule or trigger the
//! application never had, a sequence that now cycles. Each difference is a sentence that says
//! what the backup did. What the baseline does not record (captured before pgdrill recorded it)
//! cannot be compared: that fails, saying how to capture it again, unless the scenario accepts
//! the older baseline with a reason (`older_baseline`), which is said beside the verdict.

use std::collections::BTreeMap;

use crate::baseline::{
    ColumnFacts, ConstraintFacts, RuleFacts, SchemaInventory, SequenceFacts, TableFacts, TriggerFacts,
};
use crate::pg::{QualifiedName, quote_ident_if_needed};

/// Triggers that run a function whose digest differs from the baseline's, by (function, the
/// restore's digest, the baseline's): one function replaced is said once, with its triggers.
type Replaced = BTreeMap<(String, String, String), Vec<String>>;

/// How many triggers a replaced function's sentence names before it counts the rest.
const TRIGGERS_NAMED: usize = 3;

/// What differs in one schema: each problem fails it; each note is said beside the verdict.
#[derive(Debug, Default)]
pub(super) struct Differences {
    pub problems: Vec<String>,
    pub notes: Vec<String>,
}

/// The tables and sequences of `schema` in the restore (`have`) against the baseline's
/// (`want`), with whose sessions the backup made replicas (`replicas`, from
/// [`crate::check::relation::replica_sessions`]), and why the scenario accepts a baseline that
/// records no behaviour (`older`: then compared by name only, and said). Tables and sequences
/// missing from the restore are the caller's finding.
pub(super) fn compare(
    schema: &str,
    want: &SchemaInventory,
    have: &SchemaInventory,
    replicas: &[String],
    older: Option<&str>,
) -> Differences {
    let mut out = Differences::default();
    out.problems.extend(silenced(have, replicas));
    match (&want.table_facts, &have.table_facts) {
        (Some(want_tables), Some(have_tables)) => {
            let mut replaced = Replaced::new();
            for (table, want_facts) in want_tables {
                if let Some(have_facts) = have_tables.get(table) {
                    let table = QualifiedName::new(schema, table);
                    table_differs(&table, want_facts, have_facts, &mut out.problems, &mut replaced);
                }
            }
            for ((function, have, want), triggers) in replaced {
                out.problems.push(replaced_function(&function, &have, &want, &triggers));
            }
        }
        _ if want.tables.is_empty() => {}
        _ => out.unrecorded("columns, constraints, triggers or rules", older),
    }
    match (&want.sequence_facts, &have.sequence_facts) {
        (Some(want_sequences), Some(have_sequences)) => {
            for (sequence, want_facts) in want_sequences {
                if let Some(have_facts) = have_sequences.get(sequence) {
                    sequence_differs(&QualifiedName::new(schema, sequence), want_facts, have_facts, &mut out.problems);
                }
            }
        }
        _ if want.sequences.is_empty() => {}
        _ => out.unrecorded("sequence settings", older),
    }
    out
}

impl Differences {
    /// The baseline records nothing of `what`: a failure that says how to capture it again,
    /// or, accepted with a reason, a note that says what was not compared and why.
    fn unrecorded(&mut self, what: &str, older: Option<&str>) {
        let records = format!("the baseline records no {what} (captured before pgdrill recorded them)");
        match older {
            Some(reason) => self.notes.push(format!("{records}: compared by name only, accepted: {reason}")),
            None => self.problems.push(format!(
                "{records}, so whether they behave as they did cannot be proven: capture the baseline again \
                 (`pgdrill baseline` on the live database, or `--from-drill` on a trusted drill), or accept it with \
                 `older_baseline = \"<why>\"`"
            )),
        }
    }
}

/// What sessions the backup made replicas silence in `have`: its ordinary triggers (`O`) and
/// foreign keys.
fn silenced(have: &SchemaInventory, replicas: &[String]) -> Option<String> {
    let tables = have.table_facts.as_ref()?.values();
    let (mut triggers, mut foreign_keys) = (0, 0);
    for facts in tables {
        triggers += facts.triggers.iter().filter(|t| t.enabled == "O").count();
        foreign_keys += facts.constraints.iter().filter(|c| c.kind == "foreign key").count();
    }
    if replicas.is_empty() || triggers + foreign_keys == 0 {
        return None;
    }
    Some(format!(
        "session_replication_role is replica for {}: there its tables' {triggers} enabled trigger(s) do not fire and its {foreign_keys} foreign key(s) are not checked",
        replicas.join(" and for ")
    ))
}

fn table_differs(
    table: &QualifiedName,
    want: &TableFacts,
    have: &TableFacts,
    out: &mut Vec<String>,
    replaced: &mut Replaced,
) {
    columns_differ(table, &want.columns, &have.columns, out);
    for w in &want.constraints {
        match have.constraints.iter().find(|h| h.name == w.name) {
            None => out.push(format!(
                "constraint `{}` on `{table}` is missing (the baseline has {} `{}`)",
                w.name, w.kind, w.definition
            )),
            Some(h) => constraint_differs(&format!("constraint `{}` on `{table}`", w.name), w, h, out),
        }
    }
    for w in &want.triggers {
        match have.triggers.iter().find(|h| h.name == w.name) {
            None => {
                out.push(format!("`{table}` trigger `{}` is missing (the baseline has `{}`)", w.name, w.definition))
            }
            Some(h) => trigger_differs(table, w, h, out, replaced),
        }
    }
    for h in have.triggers.iter().filter(|h| !want.triggers.iter().any(|w| w.name == h.name)) {
        out.push(format!(
            "`{table}` has trigger `{}` that the baseline does not: `{}` runs on the writes it names (capture the baseline again if the application added it)",
            h.name, h.definition
        ));
    }
    for w in &want.rules {
        match have.rules.iter().find(|h| h.name == w.name) {
            None => out.push(format!("`{table}` rule `{}` is missing (the baseline has `{}`)", w.name, w.definition)),
            Some(h) => rule_differs(table, w, h, out),
        }
    }
    for h in have.rules.iter().filter(|h| !want.rules.iter().any(|w| w.name == h.name)) {
        out.push(format!(
            "`{table}` has rule `{}` that the baseline does not: `{}` rewrites the statements it names (capture the baseline again if the application added it)",
            h.name, h.definition
        ));
    }
}

fn or_none(value: &Option<String>) -> &str {
    value.as_deref().unwrap_or("none")
}

fn columns_differ(table: &QualifiedName, want: &[ColumnFacts], have: &[ColumnFacts], out: &mut Vec<String>) {
    for w in want {
        let column = format!("{table}.{}", quote_ident_if_needed(&w.name));
        let Some(h) = have.iter().find(|h| h.name == w.name) else {
            out.push(format!("column `{column}` is missing"));
            continue;
        };
        if h.data_type != w.data_type {
            out.push(format!(
                "column `{column}` is {} in the restore where the baseline has {}",
                h.data_type, w.data_type
            ));
        }
        match (w.not_null, h.not_null) {
            (true, false) => {
                out.push(format!("column `{column}` may hold NULL in the restore (NOT NULL in the baseline)"))
            }
            (false, true) => out.push(format!("column `{column}` is NOT NULL in the restore (not in the baseline)")),
            _ => {}
        }
        if h.default != w.default {
            out.push(format!(
                "column `{column}` default is {} where the baseline has {}",
                or_none(&h.default),
                or_none(&w.default)
            ));
        }
        if h.generated != w.generated {
            let shown = |g: &Option<String>| g.clone().unwrap_or_else(|| "not generated".into());
            out.push(format!(
                "column `{column}` is generated as {} where the baseline has {}",
                shown(&h.generated),
                shown(&w.generated)
            ));
        }
        if h.identity != w.identity {
            let shown = |i: &Option<String>| match i {
                Some(kind) => format!("GENERATED {} AS IDENTITY", kind.to_uppercase()),
                None => "not an identity column".into(),
            };
            out.push(format!(
                "column `{column}` is {} where the baseline's is {}",
                shown(&h.identity),
                shown(&w.identity)
            ));
        }
        if h.collation != w.collation {
            let shown = |c: &Option<String>| c.clone().unwrap_or_else(|| "its type's default".into());
            out.push(format!(
                "column `{column}` collates by {} where the baseline has {}",
                shown(&h.collation),
                shown(&w.collation)
            ));
        }
    }
    let kept = |from: &[ColumnFacts], other: &[ColumnFacts]| -> Vec<String> {
        from.iter().filter(|c| other.iter().any(|o| o.name == c.name)).map(|c| quote_ident_if_needed(&c.name)).collect()
    };
    let (have_order, want_order) = (kept(have, want), kept(want, have));
    if have_order != want_order {
        out.push(format!(
            "the columns of `{table}` are in another order: ({}) where the baseline has ({}), so statements that list no columns put values in the wrong ones",
            have_order.join(", "),
            want_order.join(", ")
        ));
    }
}

/// A constraint's definition without what the other fields judge (`NOT VALID`, deferral,
/// `NOT ENFORCED`), which `pg_get_constraintdef` writes at its end.
pub(super) fn core(definition: &str) -> &str {
    const TAILS: [&str; 7] = [
        " NOT VALID",
        " NOT ENFORCED",
        " ENFORCED",
        " INITIALLY DEFERRED",
        " INITIALLY IMMEDIATE",
        " NOT DEFERRABLE",
        " DEFERRABLE",
    ];
    let mut text = definition.trim_end();
    while let Some(shorter) = TAILS.iter().find_map(|t| text.strip_suffix(t)) {
        text = shorter;
    }
    text
}

fn deferral(c: &ConstraintFacts) -> &'static str {
    match (c.deferrable, c.deferred) {
        (false, _) => "checked at each statement",
        (true, false) => "DEFERRABLE (checked at each statement unless a transaction defers it)",
        (true, true) => "DEFERRABLE INITIALLY DEFERRED (checked at commit)",
    }
}

fn constraint_differs(name: &str, want: &ConstraintFacts, have: &ConstraintFacts, out: &mut Vec<String>) {
    if have.kind != want.kind || core(&have.definition) != core(&want.definition) {
        out.push(format!("{name} is `{}` where the baseline has `{}`", have.definition, want.definition));
    }
    if want.validated && !have.validated {
        out.push(format!(
            "{name} is NOT VALID in the restore (validated in the baseline): rows that break it may be in the table"
        ));
    }
    if want.enforced && !have.enforced {
        let why = if have.definition.contains("NOT ENFORCED") {
            "it is NOT ENFORCED"
        } else {
            "a trigger that checks it is disabled or fires only in replica sessions"
        };
        out.push(format!(
            "{name} is not enforced in the restore (enforced in the baseline): {why}, so rows that break it go in"
        ));
    }
    if (have.deferrable, have.deferred) != (want.deferrable, want.deferred) {
        out.push(format!("{name} is {} where the baseline's is {}", deferral(have), deferral(want)));
    }
}

/// How a `tgenabled` (or `ev_enabled`) code reads.
fn firing(code: &str) -> &str {
    match code {
        "O" => "enabled",
        "A" => "ENABLE ALWAYS",
        "R" => "ENABLE REPLICA",
        "D" => "disabled",
        other => other,
    }
}

/// What a change of `tgenabled` from `want` to `have` does to the application's sessions.
fn firing_change(want: &str, have: &str) -> &'static str {
    let ordinary = |code: &str| code == "O" || code == "A";
    match (ordinary(want), ordinary(have)) {
        (true, false) if have == "D" => "it never fires",
        (true, false) => "it does not fire in ordinary sessions",
        (false, true) => "it fires in ordinary sessions, where the baseline's does not",
        (true, true) if have == "A" => "it fires in replica sessions too",
        (true, true) => "it no longer fires in replica sessions",
        (false, false) if have == "D" => "it never fires, where the baseline's fires in replica sessions",
        (false, false) => "it fires in replica sessions, where the baseline's never fires",
    }
}

/// What a partition's copy of a trigger firing as `partition` does where the table's fires as
/// `table`.
fn partition_change(table: &str, partition: &str) -> &'static str {
    let ordinary = |code: &str| code == "O" || code == "A";
    match (ordinary(table), ordinary(partition)) {
        (true, false) if partition == "D" => "never fires",
        (true, false) => "does not fire in ordinary sessions",
        (false, true) => "fires in ordinary sessions, where the table's does not",
        _ => "fires otherwise",
    }
}

fn trigger_differs(
    table: &QualifiedName,
    want: &TriggerFacts,
    have: &TriggerFacts,
    out: &mut Vec<String>,
    replaced: &mut Replaced,
) {
    let name = format!("`{table}` trigger `{}`", want.name);
    if have.enabled != want.enabled {
        out.push(format!(
            "{name} is {} in the restore and {} in the baseline: {}",
            firing(&have.enabled),
            firing(&want.enabled),
            firing_change(&want.enabled, &have.enabled)
        ));
    }
    if have.definition != want.definition {
        out.push(format!("{name} is `{}` where the baseline has `{}`", have.definition, want.definition));
    }
    for (partition, code) in &have.partitions {
        if want.partitions.get(partition) != Some(code) {
            out.push(format!(
                "{name} is {} on partition `{partition}` and {} on the table: for the rows there it {}",
                firing(code),
                firing(&have.enabled),
                partition_change(&have.enabled, code)
            ));
        }
    }
    if have.function_sha256 != want.function_sha256 {
        let key =
            (function_of(&have.definition).to_owned(), have.function_sha256.clone(), want.function_sha256.clone());
        replaced.entry(key).or_default().push(format!("`{}` on `{table}`", want.name));
    }
}

/// The function a trigger's definition runs: `public.refuse()` of `... EXECUTE FUNCTION
/// public.refuse()`.
fn function_of(definition: &str) -> &str {
    ["EXECUTE FUNCTION ", "EXECUTE PROCEDURE "]
        .iter()
        .find_map(|marker| definition.rsplit_once(marker).map(|(_, function)| function))
        .unwrap_or("?")
}

/// One function whose digest differs, with the triggers that run it.
fn replaced_function(function: &str, have: &str, want: &str, triggers: &[String]) -> String {
    let short = |digest: &str| digest.chars().take(12).collect::<String>();
    let by = match triggers {
        [one] => format!("trigger {one}"),
        _ => format!("triggers {}", crate::listing::first(triggers, TRIGGERS_NAMED, ", ")),
    };
    format!(
        "function `{function}` run by {by} differs from the baseline's (sha256 {}… vs {}…): its body or settings were replaced",
        short(have),
        short(want)
    )
}

fn rule_differs(table: &QualifiedName, want: &RuleFacts, have: &RuleFacts, out: &mut Vec<String>) {
    let name = format!("`{table}` rule `{}`", want.name);
    if have.enabled != want.enabled {
        out.push(format!(
            "{name} is {} in the restore and {} in the baseline: {}",
            firing(&have.enabled),
            firing(&want.enabled),
            firing_change(&want.enabled, &have.enabled)
        ));
    }
    if have.definition != want.definition {
        out.push(format!("{name} is `{}` where the baseline has `{}`", have.definition, want.definition));
    }
}

fn sequence_differs(sequence: &QualifiedName, want: &SequenceFacts, have: &SequenceFacts, out: &mut Vec<String>) {
    let name = format!("sequence `{sequence}`");
    if have.data_type != want.data_type {
        out.push(format!("{name} is {} where the baseline has {}", have.data_type, want.data_type));
    }
    let mut bound = |what: &str, have: i64, want: i64| {
        if have != want {
            out.push(format!("{name} {what} {have} where the baseline has {want}"));
        }
    };
    bound("has minimum", have.min, want.min);
    bound("has maximum", have.max, want.max);
    bound("steps by", have.increment, want.increment);
    match (have.cycle, want.cycle) {
        (true, false) => out.push(format!(
            "{name} cycles in the restore (not in the baseline): past its last value it hands out values again"
        )),
        (false, true) => out.push(format!(
            "{name} does not cycle in the restore (it does in the baseline): past its last value nextval fails"
        )),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn column(name: &str, data_type: &str, default: Option<&str>) -> ColumnFacts {
        ColumnFacts {
            name: name.into(),
            data_type: data_type.into(),
            not_null: true,
            default: default.map(str::to_owned),
            generated: None,
            identity: None,
            collation: None,
        }
    }

    fn facts() -> TableFacts {
        TableFacts {
            columns: vec![column("id", "integer", None), column("role", "text", Some("'member'::text"))],
            constraints: vec![ConstraintFacts {
                name: "orders_amount_check".into(),
                kind: "check".into(),
                definition: "CHECK ((amount > (0)::numeric))".into(),
                validated: true,
                enforced: true,
                deferrable: false,
                deferred: false,
            }],
            triggers: vec![TriggerFacts {
                name: "audit_guard".into(),
                enabled: "O".into(),
                definition: "CREATE TRIGGER audit_guard BEFORE DELETE OR UPDATE ON public.t FOR EACH ROW EXECUTE FUNCTION public.refuse()".into(),
                function_sha256: "a".repeat(64),
                partitions: BTreeMap::new(),
            }],
            rules: vec![],
        }
    }

    fn inventory(table: TableFacts, sequence: SequenceFacts) -> SchemaInventory {
        SchemaInventory {
            tables: vec!["t".into()],
            sequences: vec!["t_id_seq".into()],
            table_facts: Some(BTreeMap::from([("t".to_owned(), table)])),
            sequence_facts: Some(BTreeMap::from([("t_id_seq".to_owned(), sequence)])),
            ..SchemaInventory::default()
        }
    }

    fn sequence() -> SequenceFacts {
        SequenceFacts { data_type: "integer".into(), min: 1, max: 2147483647, increment: 1, cycle: false }
    }

    #[test]
    fn the_same_facts_pass_and_each_difference_says_what_the_backup_did() {
        let want = inventory(facts(), sequence());
        let same = compare("public", &want, &want, &[], None);
        assert!(same.problems.is_empty() && same.notes.is_empty(), "{same:?}");
        let mut lying = facts();
        lying.columns[1].default = Some("'admin'::text".into());
        lying.columns[1].not_null = false;
        lying.constraints[0].validated = false;
        lying.constraints[0].definition.push_str(" NOT VALID");
        lying.triggers[0].enabled = "R".into();
        lying.triggers[0].function_sha256 = "b".repeat(64);
        let lying_sequence = SequenceFacts { max: 3, cycle: true, ..sequence() };
        let found = compare("public", &want, &inventory(lying, lying_sequence), &[], None).problems;
        assert_eq!(
            found,
            [
                "column `public.t.role` may hold NULL in the restore (NOT NULL in the baseline)",
                "column `public.t.role` default is 'admin'::text where the baseline has 'member'::text",
                "constraint `orders_amount_check` on `public.t` is NOT VALID in the restore (validated in the baseline): rows that break it may be in the table",
                "`public.t` trigger `audit_guard` is ENABLE REPLICA in the restore and enabled in the baseline: it does not fire in ordinary sessions",
                "function `public.refuse()` run by trigger `audit_guard` on `public.t` differs from the baseline's (sha256 bbbbbbbbbbbb… vs aaaaaaaaaaaa…): its body or settings were replaced",
                "sequence `public.t_id_seq` has maximum 3 where the baseline has 2147483647",
                "sequence `public.t_id_seq` cycles in the restore (not in the baseline): past its last value it hands out values again",
            ]
        );
    }

    #[test]
    fn lost_disabled_added_and_reordered_things_fail() {
        let want = inventory(facts(), sequence());
        let mut lying = facts();
        lying.columns.reverse();
        lying.constraints[0].enforced = false;
        lying.triggers[0].enabled = "D".into();
        lying.triggers[0].partitions.insert(crate::pg::QualifiedName::new("public", "t_2026"), "O".into());
        lying.triggers.push(TriggerFacts {
            name: "swallow".into(),
            definition: "CREATE TRIGGER swallow ...".into(),
            ..facts().triggers[0].clone()
        });
        lying.rules.push(RuleFacts {
            name: "divert".into(),
            enabled: "O".into(),
            definition: "CREATE RULE divert ...".into(),
        });
        let found = compare("public", &want, &inventory(lying, sequence()), &[], None).problems;
        for says in [
            "the columns of `public.t` are in another order: (role, id) where the baseline has (id, role)",
            "constraint `orders_amount_check` on `public.t` is not enforced in the restore (enforced in the baseline): a trigger that checks it is disabled or fires only in replica sessions, so rows that break it go in",
            "`public.t` trigger `audit_guard` is disabled in the restore and enabled in the baseline: it never fires",
            "`public.t` trigger `audit_guard` is enabled on partition `public.t_2026` and disabled on the table: for the rows there it fires in ordinary sessions, where the table's does not",
            "`public.t` has trigger `swallow` that the baseline does not",
            "`public.t` has rule `divert` that the baseline does not",
        ] {
            assert!(found.iter().any(|f| f.starts_with(says)), "{found:#?} does not say {says}");
        }
        let mut gone = facts();
        gone.columns.pop();
        gone.constraints.clear();
        gone.triggers.clear();
        let found = compare("public", &want, &inventory(gone, sequence()), &[], None).problems;
        assert_eq!(found[0], "column `public.t.role` is missing");
        assert!(
            found[1].starts_with("constraint `orders_amount_check` on `public.t` is missing (the baseline has check")
        );
        assert!(found[2].starts_with("`public.t` trigger `audit_guard` is missing"));
    }

    #[test]
    fn a_baseline_that_records_no_facts_fails_unless_accepted_with_a_reason() {
        let old = SchemaInventory { tables: vec!["t".into()], sequences: vec!["s".into()], ..Default::default() };
        let found = compare("public", &old, &inventory(facts(), sequence()), &[], None);
        assert!(found.notes.is_empty() && found.problems.len() == 2, "{found:?}");
        assert!(found.problems[0].contains("records no columns, constraints, triggers or rules"));
        assert!(found.problems[0].contains("capture the baseline again"), "{found:?}");
        assert!(found.problems[1].contains("records no sequence settings"), "{found:?}");
        let accepted = compare("public", &old, &inventory(facts(), sequence()), &[], Some("the 2024 audit's baseline"));
        assert!(accepted.problems.is_empty() && accepted.notes.len() == 2, "{accepted:?}");
        assert!(accepted.notes[0].ends_with("compared by name only, accepted: the 2024 audit's baseline"));
    }

    #[test]
    fn a_function_replaced_under_its_name_is_said_once_with_the_triggers_that_run_it() {
        let tables = ["a", "b", "c", "d", "e"];
        let inventory = |digest: &str| SchemaInventory {
            tables: tables.iter().map(|t| t.to_string()).collect(),
            table_facts: Some(
                tables
                    .iter()
                    .map(|t| {
                        let mut facts = facts();
                        facts.triggers[0].function_sha256 = digest.repeat(64);
                        (t.to_string(), facts)
                    })
                    .collect(),
            ),
            sequence_facts: Some(BTreeMap::new()),
            ..SchemaInventory::default()
        };
        let found = compare("public", &inventory("a"), &inventory("b"), &[], None).problems;
        assert_eq!(
            found,
            [
                "function `public.refuse()` run by triggers `audit_guard` on `public.a`, `audit_guard` on `public.b`, `audit_guard` on `public.c`, and 2 more differs from the baseline's (sha256 bbbbbbbbbbbb… vs aaaaaaaaaaaa…): its body or settings were replaced"
            ]
        );
    }

    #[test]
    fn sessions_the_backup_made_replicas_silence_the_triggers_and_foreign_keys() {
        let have = inventory(facts(), sequence());
        let replicas =
            ["every session of the database (ALTER DATABASE ... SET session_replication_role = replica)".to_owned()];
        let found = compare("public", &have, &have, &replicas, None).problems;
        assert_eq!(
            found,
            [
                "session_replication_role is replica for every session of the database (ALTER DATABASE ... SET session_replication_role = replica): there its tables' 1 enabled trigger(s) do not fire and its 0 foreign key(s) are not checked"
            ]
        );
    }

    #[test]
    fn a_definition_is_compared_without_what_the_flags_judge() {
        assert_eq!(core("CHECK ((amount > 0)) NOT VALID"), "CHECK ((amount > 0))");
        assert_eq!(
            core("FOREIGN KEY (a) REFERENCES public.t(id) DEFERRABLE INITIALLY DEFERRED NOT VALID"),
            "FOREIGN KEY (a) REFERENCES public.t(id)"
        );
        assert_eq!(firing_change("R", "O"), "it fires in ordinary sessions, where the baseline's does not");
    }
}

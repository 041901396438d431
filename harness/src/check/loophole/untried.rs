//! Facts the protections' code reads that the drill cannot try: the proof holds only for
//! sessions like the drill's, unless the scenario trusts them.

use std::collections::BTreeMap;

use super::{Contexts, Trusted, facts, graph, keys, rows};

/// A fact the protections' code reads that the drill cannot try, and what reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Untried {
    pub fact: facts::Fact,
    pub read_by: Vec<String>,
}

/// The facts the code `gathered` reads that the drill cannot try (with `own_login`: the code
/// ran in the role's own login, whose identity is the application's), but those `trusted`
/// covers and the uses of the settings the probe itself gives a value (`given`: the fail-closed
/// tenant, tried with the tenants; a `sql` check's `settings`, whose answer is for them); and
/// the trusted entries that matched (for the evidence).
pub(crate) fn untried(
    gathered: &graph::Gathered,
    contexts: &Contexts,
    own_login: bool,
    trusted: &[Trusted],
    given: &[&str],
) -> (Vec<Untried>, Vec<Trusted>) {
    let mut found: BTreeMap<facts::Fact, Vec<String>> = BTreeMap::new();
    // Functions that return a setting (`auth.jwt()`), each with the setting it carries.
    let mut carriers: Vec<(String, String)> = Vec::new();
    for reader in &gathered.readers {
        for fact in facts::read(&reader.text) {
            match facts::proof(&fact, contexts, own_login) {
                facts::Proof::Untried => found.entry(fact).or_default().push(reader.name.clone()),
                // A lever is tried with the literals it is compared with: any other use of it
                // (but a given setting's) is a key not tried.
                facts::Proof::Lever => {
                    let facts::Fact::Setting(name) = &fact else { continue };
                    if given.iter().any(|t| t.eq_ignore_ascii_case(name)) {
                        continue;
                    }
                    let uses = keys::uses_of_setting(gathered.deciding(reader), name);
                    for use_ in uses.untryable {
                        let keyed = facts::Fact::Keyed(name.clone(), use_.0);
                        found.entry(keyed).or_default().push(reader.name.clone());
                    }
                    if let Some(function) = uses.returned.then(|| function_of(&reader.name)).flatten() {
                        carriers.push((function, name.clone()));
                    }
                }
                facts::Proof::AsTheApplication => {}
            }
        }
    }
    for (fact, read_by) in carried(gathered, carriers) {
        found.entry(fact).or_default().extend(read_by);
    }
    for reader in &gathered.readers {
        let text = facts::without_comments(&reader.text).to_lowercase();
        for key in rows::keys(&text, &facts::code(&reader.text)) {
            let fact = facts::Fact::RowValue(key.column, key.comparison);
            found.entry(fact).or_default().push(reader.name.clone());
        }
    }
    for (path, language) in &gathered.unreadable {
        found.entry(facts::Fact::Unreadable(language.clone())).or_default().push(path.clone());
    }
    for u in &gathered.unvetted {
        // A built-in the code names is already a fact of its own (`inet_client_addr`).
        if found.keys().any(|f| !matches!(f, facts::Fact::Builtin(_)) && f.key() == u.name) {
            continue;
        }
        found.entry(facts::Fact::Builtin(u.name.clone())).or_default().push(u.path.clone());
    }
    if gathered.truncated {
        found.entry(facts::Fact::TooLarge).or_default().push("the protections".into());
    }
    let mut used: Vec<Trusted> = Vec::new();
    let mut out = Vec::new();
    for (fact, mut read_by) in found {
        read_by.dedup();
        match trusted.iter().find(|t| t.covers_fact(&fact)) {
            Some(t) => {
                if !used.contains(t) {
                    used.push(t.clone());
                }
            }
            None => out.push(Untried { fact, read_by }),
        }
    }
    (out, used)
}

/// At most this many functions are followed as carriers of a setting.
const MAX_CARRIERS: usize = 32;

/// The uses of each call of a function that returns a setting (`carriers`: function, setting)
/// that are not an equality with literals, keyed as the setting's; a function that returns such
/// a call carries the setting too.
fn carried(gathered: &graph::Gathered, mut carriers: Vec<(String, String)>) -> Vec<(facts::Fact, Vec<String>)> {
    let mut out: Vec<(facts::Fact, Vec<String>)> = Vec::new();
    let mut next = 0;
    while next < carriers.len() && next < MAX_CARRIERS {
        let (function, setting) = carriers[next].clone();
        next += 1;
        for reader in &gathered.readers {
            let uses = keys::untryable_calls(gathered.deciding(reader), &function);
            for use_ in uses.untryable {
                out.push((facts::Fact::Keyed(setting.clone(), use_.0), vec![reader.name.clone()]));
            }
            if let Some(caller) = uses.returned.then(|| function_of(&reader.name)).flatten()
                && !carriers.iter().any(|(f, s)| *f == caller && *s == setting)
            {
                carriers.push((caller, setting.clone()));
            }
        }
    }
    out
}

/// The bare name of the function a reader is (`policy `p` → public.jwt()` → `jwt`); none for a
/// policy, trigger or rule itself.
fn function_of(path: &str) -> Option<String> {
    let last = path.rsplit(" → ").next()?;
    if path == last || last.starts_with("view ") {
        return None;
    }
    let name = last.split('(').next()?.rsplit('.').next()?.trim_matches('"');
    (!name.is_empty()).then(|| name.to_lowercase())
}

/// At most this many `trusted` entries are spelled out in a failure's hint.
const HINTS: usize = 3;

/// The message of facts the drill cannot try: the proof holds only for sessions like its own.
/// Facts read by the same code are said together, the built-ins off the allow-list as one list.
pub(crate) fn only_like_the_drill(untried: &[Untried]) -> String {
    let mut by_reader: Vec<(String, Vec<String>, Vec<String>)> = Vec::new();
    for u in untried {
        let who = crate::listing::and_more(u.read_by.iter().take(2), u.read_by.len(), ", ");
        let index = match by_reader.iter().position(|(w, _, _)| *w == who) {
            Some(i) => i,
            None => {
                by_reader.push((who, Vec::new(), Vec::new()));
                by_reader.len() - 1
            }
        };
        match &u.fact {
            facts::Fact::Builtin(name) => by_reader[index].2.push(format!("`{name}`")),
            fact => by_reader[index].1.push(fact.describe()),
        }
    }
    let each: Vec<String> = by_reader
        .into_iter()
        .map(|(who, mut facts, builtins)| {
            if !builtins.is_empty() {
                facts.push(format!(
                    "built-ins not on pgdrill's allow-list, which may read what tells sessions apart ({})",
                    builtins.join(", ")
                ));
            }
            format!("{who} reads {}", facts.join(", "))
        })
        .collect();
    // One entry per key: a setting used twice (two comparisons with columns) is trusted once.
    let mut distinct: Vec<String> = Vec::new();
    for u in untried {
        if !distinct.contains(&u.fact.key()) {
            distinct.push(u.fact.key());
        }
    }
    let mut keys: Vec<String> =
        distinct.iter().take(HINTS).map(|key| format!("{{ fact = \"{key}\", reason = \"...\" }}")).collect();
    if distinct.len() > HINTS {
        keys.push(format!("... {} more", distinct.len() - HINTS));
    }
    let like = match untried.iter().any(|u| matches!(u.fact, facts::Fact::RowValue(..))) {
        true => "sessions and rows",
        false => "sessions",
    };
    format!(
        "proven only for {like} like the drill's: {} (if that holds for the application's {like} too, accept it with `trusted = [{}]`)",
        each.join("; "),
        keys.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::loophole::Reader;

    fn contexts() -> Contexts {
        Contexts::new()
    }

    fn reader(name: &str, text: &str) -> Reader {
        Reader { name: name.into(), text: text.into() }
    }

    #[test]
    fn a_setting_read_where_it_only_narrows_is_no_key() {
        // A SELECT policy read for an UPDATE: `owner = uid()`, uid() the claims' subject.
        let mut gathered = graph::Gathered {
            readers: vec![
                reader("policy `sel`", "(owner = uid())"),
                reader(
                    "policy `sel` → public.uid()",
                    "AS $$ SELECT (current_setting('app.claims', true)::jsonb ->> 'sub') $$",
                ),
            ],
            ..Default::default()
        };
        let keys = |g: &graph::Gathered| -> Vec<String> {
            untried(g, &contexts(), true, &[], &[]).0.iter().map(|u| u.fact.key()).collect()
        };
        assert_eq!(keys(&gathered), ["app.claims"], "compared with a column where it decides");
        gathered.deciding.insert("policy `sel`".into(), String::new());
        assert!(keys(&gathered).is_empty());
        // A conjunct beside the tenant's comparison in a fail-closed policy.
        let policy = "(((tenant_id)::text = current_setting('app.tenant'::text, true)) AND ((mid)::text = current_setting('app.mid'::text, true)))";
        let mut gathered = graph::Gathered { readers: vec![reader("policy `iso`", policy)], ..Default::default() };
        let tenant = |g: &graph::Gathered| -> Vec<String> {
            untried(g, &contexts(), true, &[], &["app.tenant"]).0.iter().map(|u| u.fact.key()).collect()
        };
        assert_eq!(tenant(&gathered), ["app.mid"]);
        gathered.narrow_beside("app.tenant");
        assert!(tenant(&gathered).is_empty());
    }

    #[test]
    fn a_key_used_twice_is_suggested_once() {
        let keyed = |text: &str| Untried {
            fact: facts::Fact::Keyed("app.user".into(), text.into()),
            read_by: vec!["policy `p`".into()],
        };
        let message = only_like_the_drill(&[keyed("owner = current_setting('app.user')"), keyed("editor = x")]);
        assert_eq!(message.matches("{ fact = \"app.user\"").count(), 1, "{message}");
    }
}

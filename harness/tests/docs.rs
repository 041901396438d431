//! The documentation (`docs/src/**/*.md`, the mdBook) and README.md hold nothing a reader would
//! trip on: every ```toml block is read by the real scenario parser, every internal link
//! leads to a file that exists and, with a `#fragment`, to a heading there (with mdBook's ids),
//! a ```toml or ```ini block that names a repository's file (the README's example, the systemd
//! unit) shows it verbatim, and no paragraph is over 120 words. Fast, no Docker.
//!
//! A ```toml block is a scenario, or a fragment of one: a block without `[source]` is merged
//! into a minimal scenario (`[source] path = "backup.sql.gz"`) and then parsed. A block that is
//! not a scenario at all (a Cargo.toml) is written ```toml,ignore, which mdBook shows as TOML.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use pulldown_cmark::{CodeBlockKind, Event, Options, Parser, Tag, TagEnd};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every Markdown file the tests read: the book's pages, then README.md.
fn markdown_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut folders = vec![root().join("docs/src")];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap_or_else(|e| panic!("{}: {e}", folder.display())) {
            let path = entry.expect("a folder entry").path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|e| e == "md") {
                files.push(path);
            }
        }
    }
    files.sort();
    assert!(files.len() > 20, "the book's pages are not where they should be: {files:?}");
    files.push(root().join("README.md"));
    files
}

fn options() -> Options {
    Options::ENABLE_TABLES
        | Options::ENABLE_HEADING_ATTRIBUTES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_FOOTNOTES
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The ```toml blocks of a Markdown text: each with the line it starts on.
fn toml_blocks(text: &str) -> Vec<(usize, String)> {
    fenced_blocks(text, "toml")
}

/// The blocks of a Markdown text fenced as `language`: each with the line it starts on.
fn fenced_blocks(text: &str, language: &str) -> Vec<(usize, String)> {
    let mut blocks = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (event, range) in Parser::new_ext(text, options()).into_offset_iter() {
        match event {
            Event::Start(Tag::CodeBlock(CodeBlockKind::Fenced(info))) if info.as_ref() == language => {
                current = Some((text[..range.start].lines().count() + 1, String::new()));
            }
            Event::Text(t) => {
                if let Some((_, body)) = current.as_mut() {
                    body.push_str(&t);
                }
            }
            Event::End(TagEnd::CodeBlock) => blocks.extend(current.take()),
            _ => {}
        }
    }
    blocks
}

/// Reads one block as pgdrill reads a scenario file: the error, if the parser refuses it.
fn parse_block(block: &str) -> Result<(), String> {
    let path = root().join("scenarios/docs-example.toml");
    let mut table: toml::Table = toml::from_str(block).map_err(|e| format!("not TOML: {e}"))?;
    let text = if table.contains_key("source") {
        block.to_owned()
    } else {
        let base: toml::Table = toml::from_str("[source]\npath = \"backup.sql.gz\"\n").expect("the base");
        for (key, value) in base {
            table.entry(key).or_insert(value);
        }
        toml::to_string(&table).expect("a table serializes")
    };
    pgdrill::scenario::Scenario::parse(text.as_bytes(), &path).map(|_| ()).map_err(|e| format!("{e}\n{text}"))
}

#[test]
fn every_toml_example_is_read_by_the_scenario_parser() {
    let mut failures = Vec::new();
    let mut read_blocks = 0;
    for file in markdown_files() {
        for (line, block) in toml_blocks(&read(&file)) {
            read_blocks += 1;
            if let Err(e) = parse_block(&block) {
                failures.push(format!("{}:{line}: {e}", file.display()));
            }
        }
    }
    assert!(read_blocks >= 8, "only {read_blocks} toml blocks were found");
    assert!(failures.is_empty(), "{} toml examples do not parse:\n\n{}", failures.len(), failures.join("\n\n"));
}

/// The parser the test relies on refuses what it should: a broken example fails the test.
#[test]
fn a_broken_toml_example_fails() {
    assert_eq!(parse_block("[checks.row_counts]\ntables = { \"public.users\" = 40 }\n"), Ok(()));
    let unknown = parse_block("[checks.row_count]\ntables = { \"public.users\" = 40 }\n").expect_err("unknown kind");
    assert!(unknown.contains("unknown field `row_count`"), "{unknown}");
    let wrong = parse_block("[source]\npath = 3\n").expect_err("a number for a path");
    assert!(wrong.contains("invalid type"), "{wrong}");
    let blocks = toml_blocks("```toml,ignore\nnot = [scenario\n```\n\n```toml\n[objectives]\nrto = \"45m\"\n```\n");
    assert_eq!(blocks, vec![(5, "[objectives]\nrto = \"45m\"\n".to_owned())]);
}

/// A heading's id as mdBook makes it: its text in lower case, letters, digits, `_` and `-`
/// kept, whitespace made `-`, the rest dropped; a repeated id gets `-1`, `-2`...
fn heading_id(text: &str) -> String {
    text.chars()
        .filter_map(|c| {
            if c.is_alphanumeric() || c == '_' || c == '-' {
                Some(c.to_ascii_lowercase())
            } else if c.is_whitespace() {
                Some('-')
            } else {
                None
            }
        })
        .collect()
}

/// A Markdown text's heading ids, and its links (with the line each is on).
fn headings_and_links(text: &str) -> (BTreeSet<String>, Vec<(usize, String)>) {
    let (mut ids, mut links) = (BTreeSet::new(), Vec::new());
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut heading: Option<(Option<String>, String)> = None;
    for (event, range) in Parser::new_ext(text, options()).into_offset_iter() {
        match event {
            Event::Start(Tag::Heading { id, .. }) => heading = Some((id.map(|i| i.to_string()), String::new())),
            Event::Text(t) | Event::Code(t) => {
                if let Some((_, content)) = heading.as_mut() {
                    content.push_str(&t);
                }
            }
            Event::End(TagEnd::Heading(_)) => {
                let (explicit, content) = heading.take().expect("a heading");
                let id = explicit.unwrap_or_else(|| {
                    let base = heading_id(&content);
                    let n = seen.entry(base.clone()).or_insert(0);
                    *n += 1;
                    if *n == 1 { base } else { format!("{base}-{}", *n - 1) }
                });
                ids.insert(id);
            }
            Event::Start(Tag::Link { dest_url, .. }) | Event::Start(Tag::Image { dest_url, .. }) => {
                links.push((text[..range.start].lines().count().max(1), dest_url.to_string()));
            }
            _ => {}
        }
    }
    (ids, links)
}

/// What is wrong with one internal link of `file`, if anything.
fn broken(file: &Path, link: &str, ids_of: &mut impl FnMut(&Path) -> BTreeSet<String>) -> Option<String> {
    if link.contains("://") || link.starts_with("mailto:") {
        return None;
    }
    let (path, fragment) = link.split_once('#').unwrap_or((link, ""));
    let target = if path.is_empty() { file.to_owned() } else { file.parent().expect("a folder").join(path) };
    let Ok(target) = target.canonicalize() else { return Some(format!("`{link}`: no such file")) };
    let book = root().join("docs/src").canonicalize().expect("docs/src");
    if file.starts_with(&book) && !target.starts_with(&book) {
        return Some(format!("`{link}` leads out of docs/src: the book would not have it"));
    }
    if !fragment.is_empty() && !ids_of(&target).contains(fragment) {
        return Some(format!("`{link}`: {} has no heading `#{fragment}`", target.display()));
    }
    None
}

fn check_links(files: &[PathBuf]) -> Vec<String> {
    let mut ids: BTreeMap<PathBuf, BTreeSet<String>> = BTreeMap::new();
    let mut ids_of = |path: &Path| {
        ids.entry(path.to_owned())
            .or_insert_with(|| if path.is_file() { headings_and_links(&read(path)).0 } else { BTreeSet::new() })
            .clone()
    };
    let mut failures = Vec::new();
    for file in files {
        let file = file.canonicalize().expect("a file");
        for (line, link) in headings_and_links(&read(&file)).1 {
            if let Some(problem) = broken(&file, &link, &mut ids_of) {
                failures.push(format!("{}:{line}: {problem}", file.display()));
            }
        }
    }
    failures
}

#[test]
fn every_internal_link_resolves() {
    let failures = check_links(&markdown_files());
    assert!(failures.is_empty(), "{} broken links:\n{}", failures.len(), failures.join("\n"));
}

/// The link check finds what it should: a missing page, a missing heading, a page outside the
/// book; and mdBook's ids.
#[test]
fn a_broken_link_fails() {
    assert_eq!(heading_id("Several drills at once: `--jobs`"), "several-drills-at-once---jobs");
    assert_eq!(heading_id("The backup's kind, drill after drill"), "the-backups-kind-drill-after-drill");
    let dir = tempfile::tempdir().expect("a folder");
    let book = root().join("docs/src/guide");
    let page = dir.path().join("page.md");
    std::fs::write(
        &page,
        format!(
            "# Title\n\n## Title\n\n[ok](#title-1) [gone](#nowhere) [no page](missing.md) [here]({}) [there]({}#nowhere)\n",
            book.join("ci.md").display(),
            book.join("ci.md").display()
        ),
    )
    .expect("write");
    let failures = check_links(&[page]);
    assert_eq!(failures.len(), 3, "{failures:?}");
    assert!(failures[0].contains("has no heading `#nowhere`"), "{failures:?}");
    assert!(failures[1].contains("`missing.md`: no such file"), "{failures:?}");
    assert!(failures[2].contains("ci.md has no heading `#nowhere`"), "{failures:?}");
}

/// The most words a paragraph may hold: past it, a reader skims. Split it where its subject
/// changes, or make it a list.
const MOST_WORDS: usize = 120;

/// One paragraph of a Markdown text: the line it starts on and its text.
#[derive(Debug, PartialEq)]
struct Paragraph {
    line: usize,
    text: String,
}

/// The paragraphs of a Markdown text, in order of their end: each Paragraph (a list item's
/// paragraph is its own), and the text of a tight list item, which has none. Table cells,
/// code blocks and headings are not paragraphs; inline code is text.
fn paragraphs(text: &str) -> Vec<Paragraph> {
    let line_of = |offset: usize| text[..offset].matches('\n').count() + 1;
    let mut open: Vec<Paragraph> = Vec::new();
    let mut found = Vec::new();
    let mut skipped = 0usize;
    for (event, range) in Parser::new_ext(text, options()).into_offset_iter() {
        match event {
            Event::Start(Tag::Heading { .. } | Tag::Table(_) | Tag::CodeBlock(_)) => skipped += 1,
            Event::End(TagEnd::Heading(_) | TagEnd::Table | TagEnd::CodeBlock) => skipped -= 1,
            Event::Start(Tag::Paragraph | Tag::Item) if skipped == 0 => {
                open.push(Paragraph { line: line_of(range.start), text: String::new() });
            }
            Event::End(TagEnd::Paragraph | TagEnd::Item) if skipped == 0 => {
                let paragraph = open.pop().expect("an open paragraph or item");
                if !paragraph.text.trim().is_empty() {
                    found.push(paragraph);
                }
            }
            Event::Text(t) | Event::Code(t) if skipped == 0 => {
                if let Some(paragraph) = open.last_mut() {
                    paragraph.text.push_str(&t);
                }
            }
            Event::SoftBreak | Event::HardBreak if skipped == 0 => {
                if let Some(paragraph) = open.last_mut() {
                    paragraph.text.push(' ');
                }
            }
            _ => {}
        }
    }
    found
}

/// Every paragraph of `files` over the limit, as `file:line: N words: "first words…"`.
fn long_paragraphs(files: &[PathBuf]) -> Vec<String> {
    let mut failures = Vec::new();
    for file in files {
        for paragraph in paragraphs(&read(file)) {
            let words: Vec<&str> = paragraph.text.split_whitespace().collect();
            if words.len() > MOST_WORDS {
                let start = words[..10].join(" ");
                let name = file.strip_prefix(root()).unwrap_or(file).display();
                failures.push(format!("{name}:{}: {} words: \"{start}…\"", paragraph.line, words.len()));
            }
        }
    }
    failures
}

#[test]
fn no_paragraph_is_over_the_limit() {
    let failures = long_paragraphs(&markdown_files());
    assert!(
        failures.is_empty(),
        "{} paragraphs over {MOST_WORDS} words (split each where its subject changes, or make it a list):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The count finds what it should: a long paragraph, a long tight list item, each with its
/// line; a list item's paragraphs apart; not a table, a code block or a heading.
#[test]
fn a_broken_paragraph_limit_fails() {
    let words = |n: usize, word: &str| vec![word; n].join(" ");
    let page = format!(
        "# {}\n\n{}\n`code` {}\n\n- {}\n- short\n  - {}\n\n| a |\n|---|\n| {} |\n\n```text\n{}\n```\n\n\
         - {}\n\n  {}\n",
        words(130, "heading"),
        words(60, "long"),
        words(61, "long"),
        words(121, "item"),
        words(120, "nested"),
        words(130, "cell"),
        words(130, "code"),
        words(100, "first"),
        words(100, "second"),
    );
    let found = paragraphs(&page);
    let counts: Vec<(usize, usize)> = found.iter().map(|p| (p.line, p.text.split_whitespace().count())).collect();
    assert_eq!(counts, vec![(3, 122), (6, 121), (8, 120), (7, 1), (18, 100), (20, 100)], "{found:?}");
    let dir = tempfile::tempdir().expect("a folder");
    let file = dir.path().join("page.md");
    std::fs::write(&file, &page).expect("write");
    let shown = file.display().to_string();
    let expected = [
        format!("{shown}:3: 122 words: \"{}…\"", words(10, "long")),
        format!("{shown}:6: 121 words: \"{}…\"", words(10, "item")),
    ];
    assert_eq!(long_paragraphs(&[file]), expected);
}

/// The file a block shows, when its first line names one of the repository's by its path
/// (`# scenarios/plur.toml, an excerpt`, `# deploy/systemd/pgdrill-follow@.service`): the
/// path, and the block's text after that line.
fn shown_file(block: &str) -> Option<(&str, &str)> {
    let (first, rest) = block.split_once('\n')?;
    let path = first.strip_prefix("# ")?.split([',', ' ']).next()?;
    let named = path.ends_with(".toml") || path.contains('/');
    (named && root().join(path).is_file()).then_some((path, rest))
}

/// The runs of lines between blank lines: a table with the comments above it, as a scenario
/// file is written.
fn stanzas(text: &str) -> Vec<String> {
    text.split("\n\n").map(|s| s.trim_matches('\n').to_owned()).filter(|s| !s.is_empty()).collect()
}

/// What in `shown` is not `file`'s: each stanza shown must be one of the file's, whole and
/// verbatim, in the file's order (an excerpt may leave stanzas out, never change one).
fn not_verbatim(shown: &str, file: &str) -> Option<String> {
    let mut theirs = stanzas(file).into_iter();
    for stanza in stanzas(shown) {
        if !theirs.any(|s| s == stanza) {
            return Some(format!("this is not one of the file's stanzas (or not in its order):\n{stanza}"));
        }
    }
    None
}

#[test]
fn a_block_naming_a_file_shows_that_file_verbatim() {
    let mut failures = Vec::new();
    let mut shown = Vec::new();
    for file in markdown_files() {
        let text = read(&file);
        for (line, block) in fenced_blocks(&text, "toml").into_iter().chain(fenced_blocks(&text, "ini")) {
            let Some((path, text)) = shown_file(&block) else { continue };
            shown.push((file.file_name().expect("a name").to_string_lossy().into_owned(), path.to_owned()));
            if let Some(problem) = not_verbatim(text, &read(&root().join(path))) {
                failures.push(format!("{}:{line}: {path}: {problem}", file.display()));
            }
        }
    }
    assert!(shown.contains(&("README.md".into(), "scenarios/plur.toml".into())), "the README's example: {shown:?}");
    let unit = ("continuous.md".into(), "deploy/systemd/pgdrill-follow@.service".into());
    assert!(shown.contains(&unit), "the follower's systemd unit: {shown:?}");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The excerpt check refuses a changed line, a stanza out of order and a file's text cut
/// inside a stanza, and takes whole stanzas left out.
#[test]
fn a_broken_excerpt_fails() {
    let file = "name = \"plur\"\n\n[source]\npath = \"a.sql\"\n\n# the roles\n[restore]\nglobals = \"g.sql\"\n";
    assert_eq!(not_verbatim("name = \"plur\"\n\n# the roles\n[restore]\nglobals = \"g.sql\"\n", file), None);
    assert_eq!(not_verbatim(file, file), None);
    assert!(not_verbatim("[source]\npath = \"b.sql\"\n", file).is_some(), "a changed value");
    assert!(not_verbatim("[source]\npath = \"a.sql\"\n\nname = \"plur\"\n", file).is_some(), "out of order");
    assert!(not_verbatim("[restore]\nglobals = \"g.sql\"\n", file).is_some(), "its comment cut off");
    let block = "# scenarios/plur.toml, an excerpt\nname = \"plur\"\n";
    assert_eq!(shown_file(block), Some(("scenarios/plur.toml", "name = \"plur\"\n")));
    assert_eq!(shown_file("# scenarios/nosuch.toml\n"), None);
    let unit = "# deploy/systemd/pgdrill-follow@.service\n[Unit]\n";
    assert_eq!(shown_file(unit), Some(("deploy/systemd/pgdrill-follow@.service", "[Unit]\n")));
    assert_eq!(shown_file("# Restart=always, a comment\n"), None);
    assert_eq!(shown_file("# a comment\n[source]\n"), None);
}

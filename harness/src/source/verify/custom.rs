//! A custom archive verified first: read whole by pgdrill, its data blocks decompressed (a
//! damaged or cut archive fails here) and each table's COPY rows counted, so that preflight's
//! pg_restore writes only the rest of its SQL (see [`crate::dump::blocks`]).

use std::io::Read;

use super::{VerifyError, archive_summary};
use crate::dump::archive::{ArchiveError, ArchiveHeader};
use crate::dump::blocks::{self, ArchiveData, Copied};
use crate::dump::{DumpSummary, Item, Scanner, Splitter};

/// A custom archive read to its end: its header, what it holds (its tables' rows among it, when
/// its data was read), and pg_restore's list of the entries whose SQL is still to be scanned.
pub(super) fn read(reader: impl Read) -> Result<(ArchiveHeader, DumpSummary, Option<String>), VerifyError> {
    let walked = blocks::read_custom(reader).map_err(|error| VerifyError::Archive { format: "custom", error })?;
    let mut summary = archive_summary(&walked.header, walked.kinds);
    let Some(data) = walked.data else {
        return Ok((walked.header, summary, None));
    };
    let copies = copies(&data)?;
    summary.add_copies(&copies);
    summary.bytes = data.bytes;
    Ok((walked.header, summary, Some(data.others)))
}

/// The tables' COPY data as the scanner counts it: each statement must be pg_dump's, a `COPY
/// ... FROM stdin;` and nothing else (pg_restore runs it as it stands).
fn copies(data: &ArchiveData) -> Result<DumpSummary, VerifyError> {
    let mut scanner = Scanner::new();
    for copied in &data.copies {
        let statement = copy_statement(copied).ok_or_else(|| VerifyError::Archive {
            format: "custom",
            error: ArchiveError::Data(format!(
                "the COPY statement of {} is not pg_dump's (`COPY ... FROM stdin;` and nothing else): `{}`",
                copied.entry,
                shown(copied)
            )),
        })?;
        scanner.note(&statement);
        scanner.note(&Item::CopyEnd { line: 0, rows: copied.rows });
    }
    Ok(scanner.finish(&Default::default(), 0, 0))
}

/// The statement of `copied` when it is one `COPY ... FROM stdin;`, as pg_dump writes it.
fn copy_statement(copied: &Copied) -> Option<Item> {
    if !copied.statement.ends_with(" FROM stdin;\n") {
        return None;
    }
    let text = format!("{}\\.\n", copied.statement);
    let mut splitter = Splitter::new(text.as_bytes());
    let first = splitter.next_item().ok()??;
    // The statement is the whole text: nothing after its `;` (pg_restore sends the text as one
    // query, which would run a second statement too).
    let whole = copied.statement.trim_end();
    let is_copy = matches!(&first, Item::Statement(s) if s.copy_from_stdin && !s.copy_program && s.sql.trim() == whole);
    let ended = matches!(splitter.next_item(), Ok(Some(Item::CopyEnd { rows: 0, .. })));
    let nothing_else = matches!(splitter.next_item(), Ok(None));
    (is_copy && ended && nothing_else && super::refused(&first).is_none()).then_some(first)
}

/// A statement as an error shows it: its first 200 characters, a control character as a space.
fn shown(copied: &Copied) -> String {
    let text: String = copied.statement.trim_end().chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    match text.char_indices().nth(200) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accepted(statement: &str) -> bool {
        let copied = Copied { entry: "entry 1 (TABLE DATA t)".into(), statement: statement.into(), rows: 0 };
        copy_statement(&copied).is_some()
    }

    #[test]
    fn only_one_copy_from_stdin_and_nothing_else_is_pg_dumps() {
        assert!(accepted("COPY public.items (id, name) FROM stdin;\n"));
        assert!(accepted("COPY \"odd; name\".\"t FROM stdin;\" (\"a\") FROM stdin;\n"));
        for evil in [
            "COPY public.items FROM stdin;SELECT 1;--\n",
            "COPY public.items FROM stdin; SELECT 1 FROM stdin;\n",
            "SELECT 1; COPY public.items FROM stdin;\n",
            "COPY public.items FROM PROGRAM 'id'; COPY t FROM stdin;\n",
            "COPY public.items TO stdout; COPY t FROM stdin;\n",
            "COPY public.items FROM stdin\n",
        ] {
            assert!(!accepted(evil), "{evil}");
        }
    }
}

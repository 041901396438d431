//! The lexer: psql's rules for where a statement ends (quotes, `E''` escapes, dollar quotes,
//! nested block comments, parentheses, `BEGIN ATOMIC ... END` bodies), applied to the current
//! line of the dump.

use std::io::BufRead;

use super::{Item, SplitError, Splitter};

/// Where the lexer is: in plain SQL, or inside a string, a quoted identifier, a dollar-quoted
/// body or a block comment.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Lex {
    Normal,
    /// In '...'; `escapes` when backslashes escape (E'' strings, or standard_conforming_strings off).
    Quote {
        escapes: bool,
    },
    DoubleQuote,
    Dollar(Vec<u8>),
    BlockComment(u32),
}

fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b >= 0x80
}

fn is_ident_char(b: u8) -> bool {
    is_ident_start(b) || b.is_ascii_digit() || b == b'$'
}

impl<R: BufRead> Splitter<R> {
    /// Lexes the rest of the current line; returns an item when one completes on it.
    pub(super) fn lex_line(&mut self) -> Result<Option<Item>, SplitError> {
        if self.pos == 0 && self.lex == Lex::Normal && self.stmt.is_empty() && self.line.starts_with(b"--") {
            self.note_comment();
            self.pos = self.line.len();
            return Ok(None);
        }
        let start = self.pos;
        let len = self.line.len();
        let mut i = start;
        while i < len {
            let b = self.line[i];
            let next = self.line.get(i + 1).copied();
            if !matches!(self.lex, Lex::Normal) {
                self.past_literal(&mut i, b, next);
                continue;
            }
            match b {
                b'\'' => {
                    self.lex = Lex::Quote { escapes: !self.std_strings };
                    i += 1;
                }
                b'"' => {
                    self.lex = Lex::DoubleQuote;
                    i += 1;
                }
                b'-' if next == Some(b'-') => {
                    // A comment to the end of the line: kept inside a statement, dropped between.
                    if self.stmt.is_empty() && self.line[start..i].iter().all(u8::is_ascii_whitespace) {
                        self.pos = len;
                        return Ok(None);
                    }
                    i = len;
                }
                b'/' if next == Some(b'*') => {
                    self.lex = Lex::BlockComment(1);
                    i += 2;
                }
                b'(' => {
                    self.paren_depth += 1;
                    i += 1;
                }
                b')' => {
                    self.paren_depth -= 1;
                    i += 1;
                }
                b';' if self.paren_depth <= 0 && self.begin_depth == 0 => {
                    self.push_segment(start, i + 1);
                    self.pos = i + 1;
                    return self.emit_statement().map(Some);
                }
                b'\\' => return self.meta(start, i).map(Some),
                b'$' if i == 0 || !is_ident_char(self.line[i - 1]) => match dollar_tag(&self.line[i..]) {
                    Some(tag_len) => {
                        self.lex = Lex::Dollar(self.line[i + 1..i + 1 + tag_len].to_vec());
                        i += tag_len + 2;
                    }
                    None => i += 1,
                },
                b if b.is_ascii_digit() => i = self.past_number(i + 1),
                b if is_ident_start(b) => i = self.past_word(i),
                _ => i += 1,
            }
        }
        self.push_segment(start, len.min(i.max(start)));
        self.pos = len;
        Ok(None)
    }

    /// Where a number (or a word that starts with a digit) that goes on at `i` ends.
    fn past_number(&self, mut i: usize) -> usize {
        let len = self.line.len();
        while i < len && (self.line[i].is_ascii_alphanumeric() || self.line[i] == b'.' || self.line[i] == b'_') {
            i += 1;
        }
        i
    }

    /// Where the word starting at `i` ends, noted (see [`Self::note_identifier`]); an `E`
    /// right before a quote starts a string with escapes instead.
    fn past_word(&mut self, i: usize) -> usize {
        let len = self.line.len();
        let b = self.line[i];
        let mut j = i + 1;
        while j < len && is_ident_char(self.line[j]) {
            j += 1;
        }
        if j == i + 1 && (b == b'e' || b == b'E') && self.line.get(j) == Some(&b'\'') {
            self.lex = Lex::Quote { escapes: true };
            j + 1
        } else {
            let word = self.line[i..j].to_ascii_lowercase();
            self.note_identifier(&word);
            j
        }
    }

    /// Moves `i` past a byte (`b`, then `next`) inside a string, a quoted identifier, a
    /// dollar-quoted body or a block comment, and the lexer back to normal at its end.
    #[inline]
    fn past_literal(&mut self, i: &mut usize, b: u8, next: Option<u8>) {
        match &mut self.lex {
            Lex::Normal => *i += 1,
            Lex::Quote { escapes } => {
                if *escapes && b == b'\\' {
                    *i += 2;
                } else {
                    if b == b'\'' {
                        self.lex = Lex::Normal;
                    }
                    *i += 1;
                }
            }
            Lex::DoubleQuote => {
                if b == b'"' {
                    self.lex = Lex::Normal;
                }
                *i += 1;
            }
            Lex::Dollar(tag) => {
                if b == b'$' && self.line[*i + 1..].starts_with(tag) && self.line.get(*i + 1 + tag.len()) == Some(&b'$')
                {
                    *i += tag.len() + 2;
                    self.lex = Lex::Normal;
                } else {
                    *i += 1;
                }
            }
            Lex::BlockComment(depth) => {
                if b == b'/' && next == Some(b'*') {
                    *depth += 1;
                    *i += 2;
                } else if b == b'*' && next == Some(b'/') {
                    *depth -= 1;
                    if *depth == 0 {
                        self.lex = Lex::Normal;
                    }
                    *i += 2;
                } else {
                    *i += 1;
                }
            }
        }
    }

    /// psql's tracking of `BEGIN ... END` in `CREATE [OR REPLACE] FUNCTION|PROCEDURE`, and the
    /// words that make a COPY read from stdin or run a program.
    fn note_identifier(&mut self, word: &[u8]) {
        if self.ident_count == 0 {
            self.idents = [0; 4];
            self.first_is_copy = word == b"copy";
        }
        if matches!(word, b"create" | b"function" | b"procedure" | b"or" | b"replace")
            && self.ident_count < self.idents.len()
        {
            self.idents[self.ident_count] = word[0];
        }
        self.ident_count += 1;
        let id = self.idents;
        let in_routine = id[0] == b'c'
            && (id[1] == b'f' || id[1] == b'p' || (id[1] == b'o' && id[2] == b'r' && (id[3] == b'f' || id[3] == b'p')));
        if in_routine && self.paren_depth == 0 {
            match word {
                b"begin" => self.begin_depth += 1,
                b"case" if self.begin_depth >= 1 => self.begin_depth += 1,
                b"end" if self.begin_depth > 0 => self.begin_depth -= 1,
                _ => {}
            }
        }
        if self.first_is_copy {
            let prev = self.prev_ident.as_slice();
            if prev == b"from" && word == b"stdin" {
                self.copy_from_stdin = true;
            }
            if (prev == b"from" || prev == b"to") && word == b"program" {
                self.copy_program = true;
            }
        }
        self.prev_ident.clear();
        self.prev_ident.extend_from_slice(word);
    }
}

/// The length of the tag of a dollar quote starting at `s[0] == '$'` (`$$` -> 0,
/// `$body$` -> 4), or `None` when `s` does not start one.
fn dollar_tag(s: &[u8]) -> Option<usize> {
    let mut j = 1;
    if let Some(&b) = s.get(1) {
        if b == b'$' {
            return Some(0);
        }
        if !is_ident_start(b) {
            return None;
        }
    }
    while let Some(&b) = s.get(j) {
        if b == b'$' {
            return Some(j - 1);
        }
        if !(is_ident_start(b) || b.is_ascii_digit()) {
            return None;
        }
        j += 1;
    }
    None
}

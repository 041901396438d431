//! The splitter's cases: where statements end, COPY blocks, meta-commands, the dump's comments.

use super::*;

fn items(text: &str) -> Vec<Item> {
    let mut s = Splitter::new(text.as_bytes());
    let mut out = Vec::new();
    while let Some(item) = s.next_item().unwrap() {
        out.push(item);
    }
    out
}

fn statements(text: &str) -> Vec<(u64, String)> {
    items(text)
        .into_iter()
        .filter_map(|i| match i {
            Item::Statement(s) => Some((s.line, s.sql)),
            _ => None,
        })
        .collect()
}

#[test]
fn statements_with_lines() {
    let got = statements("SET a = 1;\n\n-- c\nCREATE TABLE t (\n  a int -- x;\n);\nSELECT 1; SELECT 2;\n");
    assert_eq!(
        got,
        vec![
            (1, "SET a = 1;".into()),
            (4, "CREATE TABLE t (\n  a int -- x;\n);".into()),
            (7, "SELECT 1;".into()),
            (7, "SELECT 2;".into()),
        ]
    );
}

#[test]
fn quotes_and_dollar_quotes_hide_semicolons() {
    let sql = "CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $x$ ; $body$ LANGUAGE sql;\n\
               SELECT 'a;''b', E'c\\';d', \"we;ird\", $$;$$, $1;\n/* a; /* nested; */ b; */ SELECT 3;\n";
    let got = statements(sql);
    assert_eq!(got.len(), 3, "{got:?}");
    assert!(got[0].1.ends_with("LANGUAGE sql;"));
    assert!(got[1].1.ends_with("$1;"));
    assert!(got[2].1.ends_with("SELECT 3;"));
}

#[test]
fn begin_atomic_bodies_hold_semicolons() {
    let sql = "CREATE OR REPLACE FUNCTION public.f(a int) RETURNS int\n    LANGUAGE sql\n    BEGIN ATOMIC\n SELECT CASE WHEN a > 0 THEN 1 ELSE 0 END;\n SELECT 2;\nEND;\nBEGIN;\nCOMMIT;\n";
    let got = statements(sql);
    assert_eq!(got.len(), 3, "{got:?}");
    assert!(got[0].1.ends_with("END;"));
    assert_eq!(got[1].1, "BEGIN;");
}

#[test]
fn copy_blocks_stream_as_data() {
    let sql = "--\n-- Data for Name: t; Type: TABLE DATA; Schema: public; Owner: app\n--\n\nCOPY public.t (a) FROM stdin;\n1\n2\n\\.\nSELECT 1;\n";
    let got = items(sql);
    match &got[0] {
        Item::Statement(s) => {
            assert!(s.copy_from_stdin);
            assert_eq!(s.line, 5);
            let entry = s.entry.as_ref().unwrap();
            assert_eq!((entry.kind.as_str(), entry.schema.as_deref()), ("TABLE DATA", Some("public")));
            assert_eq!(entry.owner.as_deref(), Some("app"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(got[1], Item::CopyData(b"1\n2\n".to_vec()));
    assert_eq!(got[2], Item::CopyEnd { line: 8, rows: 2 });
    assert!(matches!(&got[3], Item::Statement(s) if s.line == 9 && s.sql == "SELECT 1;"));
}

#[test]
fn large_copy_blocks_come_in_chunks() {
    let row = "x".repeat(1000) + "\n";
    let mut sql = String::from("COPY t FROM stdin;\n");
    for _ in 0..1000 {
        sql.push_str(&row);
    }
    sql.push_str("\\.\n");
    let got = items(&sql);
    let data: usize = got.iter().map(|i| if let Item::CopyData(d) = i { d.len() } else { 0 }).sum();
    assert_eq!(data, 1000 * 1001);
    assert!(got.iter().filter(|i| matches!(i, Item::CopyData(_))).count() > 1);
    assert!(got.iter().all(|i| !matches!(i, Item::CopyData(d) if d.len() > COPY_CHUNK + 1001)));
    assert_eq!(got.last(), Some(&Item::CopyEnd { line: 1002, rows: 1000 }));
}

#[test]
fn unterminated_copy_is_an_error() {
    let mut s = Splitter::new(&b"COPY t FROM stdin;\n1\n2\n"[..]);
    assert!(matches!(s.next_item(), Ok(Some(Item::Statement(_)))));
    let err = loop {
        match s.next_item() {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("no error"),
            Err(e) => break e,
        }
    };
    assert!(matches!(err, SplitError::UnterminatedCopy { line: 1 }), "{err}");
}

#[test]
fn meta_commands() {
    let got = items("\\restrict abc\nSELECT 1;\n\\connect -reuse-previous=on \"dbname='x'\"\n");
    assert_eq!(got[0], Item::Meta { command: "restrict".into(), args: "abc".into(), line: 1 });
    assert_eq!(
        got[2],
        Item::Meta { command: "connect".into(), args: "-reuse-previous=on \"dbname='x'\"".into(), line: 3 }
    );
    let mut s = Splitter::new(&b"SELECT 1\n\\! rm -rf /\n;"[..]);
    assert!(matches!(s.next_item(), Err(SplitError::MetaInStatement { line: 2, .. })));
}

#[test]
fn copy_program_is_flagged() {
    let got = statements("COPY t TO PROGRAM 'curl x';\n");
    assert_eq!(got.len(), 1);
    let got = items("COPY t FROM PROGRAM 'sh';\n");
    assert!(matches!(&got[0], Item::Statement(s) if s.copy_program && !s.copy_from_stdin));
}

#[test]
fn header_and_completion() {
    let text = "--\n-- PostgreSQL database dump\n--\n\n-- Dumped from database version 16.4\n-- Dumped by pg_dump version 17.2\n\nSELECT 1;\n\n--\n-- PostgreSQL database dump complete\n--\n\n\\unrestrict k\n";
    let mut s = Splitter::new(text.as_bytes());
    while s.next_item().unwrap().is_some() {}
    let c = s.comments();
    assert_eq!(c.title.as_deref(), Some("PostgreSQL database dump"));
    assert_eq!(c.source_version.as_deref(), Some("16.4"));
    assert_eq!(c.dumped_by.as_deref(), Some("pg_dump 17.2"));
    assert!(c.complete);

    let mut s = Splitter::new(&b"-- PostgreSQL database dump complete\nSELECT 1;\n"[..]);
    while s.next_item().unwrap().is_some() {}
    assert!(!s.comments().complete);
}

#[test]
fn standard_conforming_strings_off_makes_backslash_escape() {
    let got = statements("SET standard_conforming_strings = off;\nSELECT 'a\\';b';\nSELECT 2;\n");
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!(got[1].1, "SELECT 'a\\';b';");
}

#[test]
fn trailing_statement_without_semicolon() {
    assert_eq!(statements("SELECT 1;\nSELECT 2\n"), vec![(1, "SELECT 1;".into()), (2, "SELECT 2\n".into())]);
}

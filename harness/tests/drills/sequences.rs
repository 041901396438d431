//! Sequences past their columns in their own direction: an ascending one above the column's
//! maximum, a descending one below its minimum. A descending sequence reset above values its
//! column already holds used to pass unexamined.

use pgdrill::Verdict;

use crate::util::Scratch;

const DUMP: &str = "CREATE TABLE public.up (id bigserial PRIMARY KEY);\n\
    INSERT INTO public.up SELECT FROM generate_series(1, 5);\n\
    CREATE SEQUENCE public.down_id_seq INCREMENT BY -1 MAXVALUE -1 START WITH -1;\n\
    CREATE TABLE public.down (id bigint PRIMARY KEY DEFAULT nextval('public.down_id_seq'));\n\
    ALTER SEQUENCE public.down_id_seq OWNED BY public.down.id;\n\
    INSERT INTO public.down SELECT FROM generate_series(1, 5);\n\
    CREATE SEQUENCE public.ledger_id_seq INCREMENT BY -1 MAXVALUE -1 START WITH -1;\n\
    CREATE TABLE public.ledger (id bigint PRIMARY KEY DEFAULT nextval('public.ledger_id_seq'));\n\
    ALTER SEQUENCE public.ledger_id_seq OWNED BY public.ledger.id;\n\
    INSERT INTO public.ledger SELECT FROM generate_series(1, 5);\n\
    SELECT setval('public.ledger_id_seq', -2);\n";

#[test]
fn a_descending_sequence_behind_its_column_fails_and_ones_past_their_columns_pass() {
    let scratch = Scratch::new();
    scratch.write("sequences.sql", DUMP);
    let drill = scratch.drill(
        &scratch
            .scenario("sequences.toml", "[source]\npath = \"sequences.sql\"\n\n[checks.schemas]\nsequences = true\n"),
    );
    assert_eq!(drill.code, Some(1), "{drill:?}");
    let check = drill
        .record()
        .checks
        .iter()
        .find(|c| c.id == "schemas/sequences ahead of their columns")
        .expect("the sequences check");
    assert_eq!(check.verdict, Verdict::Fail, "{drill:?}");
    // ledger's next value is -3 and its column already holds -1..-5; up (6 > 5) and down
    // (-6 < -5) are past theirs.
    assert_eq!(
        check.actual, "public.ledger_id_seq would hand out -3 but public.ledger.id is already at -5",
        "{drill:?}"
    );
}

//! `amcheck`: pg_amcheck over a restored database finds nothing on a sound backup, and names the
//! index and block on one whose index disagrees with its table (built by a function that claims
//! to be IMMUTABLE and is not: what a collation change does to a real index).

use pgdrill::Verdict;

use crate::util::Scratch;

/// A dump whose index `readings_scaled_idx` is built with `scaled()` while `salt` is 1; `lie`
/// changes `salt` afterwards, so every entry of the index is wrong.
fn dump(lie: bool) -> String {
    let mut sql = String::from(
        "CREATE TABLE public.salt (v integer);\n\
         INSERT INTO public.salt VALUES (1);\n\
         CREATE FUNCTION public.scaled(x integer) RETURNS integer LANGUAGE sql IMMUTABLE\n\
             AS $$ SELECT x * (SELECT v FROM public.salt) $$;\n\
         CREATE TABLE public.readings (id integer PRIMARY KEY, value integer NOT NULL);\n\
         INSERT INTO public.readings SELECT g, g FROM generate_series(1, 500) g;\n\
         CREATE INDEX readings_scaled_idx ON public.readings (public.scaled(value));\n",
    );
    if lie {
        sql.push_str("UPDATE public.salt SET v = 2;\n");
    }
    sql
}

fn drill(lie: bool) -> (Scratch, crate::util::Drill) {
    let scratch = Scratch::new();
    scratch.write("readings.sql", dump(lie));
    let scenario = scratch.scenario("amcheck.toml", "[source]\npath = \"readings.sql\"\n[checks.amcheck]\n");
    let drill = scratch.drill(&scenario);
    (scratch, drill)
}

#[test]
fn amcheck_passes_on_a_sound_restore_and_names_the_index_that_disagrees_with_its_table() {
    let (_scratch, good) = drill(false);
    assert_eq!(good.code, Some(0), "{good:?}");
    let result = &good.record().checks[0];
    assert_eq!((result.id.as_str(), result.verdict), ("amcheck/every relation", Verdict::Pass), "{good:?}");
    assert!(result.evidence.starts_with("pg_amcheck ") && result.evidence.contains("--heapallindexed"));

    let (_scratch, broken) = drill(true);
    assert_eq!(broken.code, Some(1), "{broken:?}");
    let result = &broken.record().checks[0];
    assert_eq!(result.verdict, Verdict::Fail, "{broken:?}");
    assert!(result.actual.contains("public.readings_scaled_idx"), "{}", result.actual);
    assert!(
        result.message.contains("public.readings_scaled_idx, block 0:")
            && result.message.contains("lacks matching index tuple"),
        "{}",
        result.message
    );
}

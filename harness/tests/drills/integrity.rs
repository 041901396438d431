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
    assert_eq!(result.code, "amcheck.corruption", "{broken:?}");
    assert!(result.actual.contains("public.readings_scaled_idx"), "{}", result.actual);
    assert!(
        result.message.contains("public.readings_scaled_idx, block 0:")
            && result.message.contains("lacks matching index tuple"),
        "{}",
        result.message
    );
}

/// Three tables of the same 2000 random 16-dimensional vectors: a sound HNSW index, an IVFFlat
/// index of 200 lists searched with one probe (too coarse: it misses most neighbours), and an
/// HNSW index built for L2 distance while the application queries by cosine distance; and a
/// young deployment's index over no vectors yet.
const VECTORS: &str = "CREATE EXTENSION IF NOT EXISTS vector;\n\
    SELECT setseed(0.42);\n\
    CREATE TABLE public.items (id integer PRIMARY KEY, embedding vector(16));\n\
    INSERT INTO public.items SELECT g, ARRAY(SELECT random() FROM generate_series(1, 16) WHERE g > 0)::vector(16)\n\
        FROM generate_series(1, 2000) g;\n\
    CREATE TABLE public.coarse (LIKE public.items INCLUDING ALL);\n\
    INSERT INTO public.coarse SELECT * FROM public.items;\n\
    CREATE TABLE public.l2_only (LIKE public.items INCLUDING ALL);\n\
    INSERT INTO public.l2_only SELECT * FROM public.items;\n\
    CREATE INDEX items_embedding_hnsw ON public.items USING hnsw (embedding vector_cosine_ops);\n\
    CREATE INDEX coarse_embedding_ivfflat ON public.coarse USING ivfflat (embedding vector_cosine_ops) WITH (lists = 200);\n\
    CREATE INDEX l2_only_embedding_hnsw ON public.l2_only USING hnsw (embedding vector_l2_ops);\n\
    CREATE TABLE public.fresh (LIKE public.items INCLUDING ALL);\n\
    CREATE INDEX fresh_embedding_hnsw ON public.fresh USING hnsw (embedding vector_cosine_ops);\n";

#[test]
fn vector_recall_passes_a_sound_index_and_fails_a_coarse_one_and_one_the_queries_cannot_use() {
    let scratch = Scratch::new();
    scratch.write("vectors.sql", VECTORS);
    let scenario = scratch.scenario(
        "vectors.toml",
        "[source]\npath = \"vectors.sql\"\n\
         [[checks.vector_recall]]\nindexes = [\"public.items_embedding_hnsw\"]\n\
         [[checks.vector_recall]]\nindexes = [\"public.coarse_embedding_ivfflat\"]\n\
         [[checks.vector_recall]]\nindexes = [\"public.l2_only_embedding_hnsw\"]\ndistance = \"cosine\"\n\
         [[checks.vector_recall]]\nindexes = [\"public.fresh_embedding_hnsw\"]\n\
         [[checks.vector_recall]]\nindexes = [\"public.fresh_embedding_hnsw\"]\nrequire_vectors = true\n",
    );
    let drill = scratch.drill(&scenario);
    assert_eq!(drill.code, Some(1), "{drill:?}");
    let result = |index: &str| {
        let id = format!("vector_recall/public.{index}");
        drill.record().checks.iter().find(|c| c.id == id).cloned().unwrap_or_else(|| panic!("no {id}: {drill:?}"))
    };
    let sound = result("items_embedding_hnsw");
    assert_eq!(sound.code, "vector-recall.recall-met", "{sound:?}");
    assert!(sound.actual.starts_with("mean recall@10 "), "{}", sound.actual);
    let coarse = result("coarse_embedding_ivfflat");
    assert_eq!(coarse.code, "vector-recall.low-recall", "{coarse:?}");
    assert!(coarse.message.contains("of the exact nearest neighbours, below 90%"), "{}", coarse.message);
    assert!(coarse.expected.contains("ivfflat.probes 1 (default)"), "{}", coarse.expected);
    let unusable = result("l2_only_embedding_hnsw");
    assert_eq!(unusable.code, "vector-recall.index-not-used", "{unusable:?}");
    assert!(
        unusable
            .message
            .contains("does not use `public.l2_only_embedding_hnsw`: it is built with `vector_l2_ops` for l2 distance"),
        "{}",
        unusable.message
    );
    let fresh: Vec<_> = drill
        .record()
        .checks
        .iter()
        .filter(|c| c.id.starts_with("vector_recall/public.fresh_embedding_hnsw"))
        .cloned()
        .collect();
    let verdicts: Vec<Verdict> = fresh.iter().map(|c| c.verdict).collect();
    assert_eq!(verdicts, [Verdict::Pass, Verdict::Fail], "{fresh:?}");
    assert!(fresh[0].actual.ends_with("empty") && fresh[0].message.contains("holds no vectors yet"), "{:?}", fresh[0]);
    assert!(fresh[1].message.contains("has no non-null vectors to query with"), "{:?}", fresh[1]);
}

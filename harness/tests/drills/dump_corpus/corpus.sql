-- A small database with most of what pg_dump writes, built by the dump corpus drill
-- (dump_corpus.rs) in its source server's database `corpus`. Written for these tests.
CREATE EXTENSION IF NOT EXISTS vector;
CREATE ROLE corpus_reader NOLOGIN;
CREATE SCHEMA "Odd ""Schema"" Ñ";
CREATE COLLATION public.ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false);

CREATE TYPE public.mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN public.positive AS integer CHECK (VALUE > 0);
CREATE TYPE public.pair AS (left_side integer, right_side text);
CREATE TYPE public.floatrange AS RANGE (subtype = float8);
CREATE SEQUENCE public.counter START 100 INCREMENT 5;
SELECT setval('public.counter', 140);

-- A table with no columns: its COPY header has no column list.
CREATE TABLE public.datdba_only ();
INSERT INTO public.datdba_only DEFAULT VALUES;
INSERT INTO public.datdba_only DEFAULT VALUES;

CREATE TABLE public.everything (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    small smallint, big bigint, num numeric(12,3), real_ real, dbl double precision,
    flag boolean, txt text, chr char(3), vchr varchar(20), bin bytea,
    d date, t time, tz timestamptz, ts timestamp, iv interval,
    j json, jb jsonb, u uuid, ip inet, cidr_ cidr, mac macaddr, bits bit(4), vbits varbit(8),
    pt point, box_ box, money_ money, x xml, tsv tsvector,
    arr integer[], tarr text[][], r int4range, mr int4multirange, fr public.floatrange,
    m public.mood, p public.pair, pos public.positive, ci_text text COLLATE public.ci,
    twice bigint GENERATED ALWAYS AS (big * 2) STORED,
    emb vector(3)
);
INSERT INTO public.everything (small, big, num, real_, dbl, flag, txt, chr, vchr, bin, d, t, tz, ts, iv, j, jb, u, ip, cidr_,
    mac, bits, vbits, pt, box_, money_, x, tsv, arr, tarr, r, mr, fr, m, p, pos, ci_text, emb)
SELECT g, g::bigint * 1000000000, g / 7.0, g / 3.0, g / 9.0, g % 2 = 0,
    CASE WHEN g % 5 = 0 THEN NULL ELSE E'line\ttab\nnew "q" ''s'' \\ back ' || g END, 'ab', 'v' || g, decode(md5(g::text), 'hex'),
    '2026-01-01'::date + g, '12:00'::time + g * interval '1 minute', '2026-01-01 00:00+00'::timestamptz + g * interval '1 hour',
    '2026-01-01 00:00'::timestamp + g * interval '1 day', g * interval '90 seconds',
    json_build_object('g', g), jsonb_build_object('g', g, 'a', ARRAY[g, g]), md5(g::text)::uuid, '10.0.0.1'::inet + g, '10.1.0.0/16',
    '08:00:2b:01:02:03', B'1010', B'101', point(g, g), box(point(0, 0), point(g, g)), g * 1.25, xmlparse(content '<a>' || g || '</a>'),
    to_tsvector('simple', 'word ' || g), ARRAY[g, g + 1, NULL], ARRAY[ARRAY['a', 'b'], ARRAY['c', 'd']], int4range(g, g + 10),
    int4multirange(int4range(1, 2), int4range(g + 5, g + 9)), public.floatrange(0, g), (ARRAY['sad', 'ok', 'happy']::public.mood[])[1 + g % 3],
    ROW(g, 'p' || g)::public.pair, g, CASE WHEN g % 2 = 0 THEN 'ABC' ELSE 'abc' END, ARRAY[g, g / 2.0, 0]::vector
FROM generate_series(1, 60) g;

-- Quoted identifiers: spaces, quotes, unicode, a keyword.
CREATE TABLE "Odd ""Schema"" Ñ"."Table With Spaces" ("Column ""One""" integer, "select" text, "ünïcödé" text);
INSERT INTO "Odd ""Schema"" Ñ"."Table With Spaces" SELECT g, 'kw' || g, 'ü' || g FROM generate_series(1, 7) g;
CREATE TABLE public."MixedCase" (id integer PRIMARY KEY, "Name" text);
INSERT INTO public."MixedCase" SELECT g, 'n' || g FROM generate_series(1, 5) g;

-- Partitions: range, list, and hash on an enum (pg_dump loads those through their root).
CREATE TABLE public.events (id integer, at date NOT NULL, what text) PARTITION BY RANGE (at);
CREATE TABLE public.events_2025 PARTITION OF public.events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE public.events_2026 PARTITION OF public.events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')
    PARTITION BY LIST (what);
CREATE TABLE public.events_2026_a PARTITION OF public.events_2026 FOR VALUES IN ('a');
CREATE TABLE public.events_2026_rest PARTITION OF public.events_2026 DEFAULT;
INSERT INTO public.events SELECT g, '2025-06-01'::date + g * 2, CASE WHEN g % 3 = 0 THEN 'a' ELSE 'b' END FROM generate_series(1, 200) g;
CREATE TABLE public.regions (code text, name text) PARTITION BY LIST (code);
CREATE TABLE public.regions_eu PARTITION OF public.regions FOR VALUES IN ('fr', 'de');
CREATE TABLE public.regions_other PARTITION OF public.regions DEFAULT;
INSERT INTO public.regions VALUES ('fr', 'France'), ('de', 'Germany'), ('us', 'United States');
CREATE TABLE public.moods (id integer, m public.mood NOT NULL) PARTITION BY HASH (m);
CREATE TABLE public.moods_0 PARTITION OF public.moods FOR VALUES WITH (MODULUS 2, REMAINDER 0);
CREATE TABLE public.moods_1 PARTITION OF public.moods FOR VALUES WITH (MODULUS 2, REMAINDER 1);
INSERT INTO public.moods SELECT g, (ARRAY['sad', 'ok', 'happy']::public.mood[])[1 + g % 3] FROM generate_series(1, 90) g;

-- Inheritance: the parent's rows and each child's, apart.
CREATE TABLE public.animals (name text, legs integer);
CREATE TABLE public.birds (wingspan numeric) INHERITS (public.animals);
INSERT INTO public.animals VALUES ('cat', 4), ('dog', 4);
INSERT INTO public.birds VALUES ('crow', 2, 0.9), ('gull', 2, 1.2), ('owl', 2, 1.0);

CREATE UNLOGGED TABLE public.scratch (k text PRIMARY KEY, v text);
INSERT INTO public.scratch VALUES ('a', '1'), ('b', '2');

-- Foreign keys, a deferrable one, an exclusion constraint, an index on an expression.
CREATE TABLE public.customers (id integer PRIMARY KEY, email text NOT NULL, referrer integer REFERENCES public.customers DEFERRABLE INITIALLY DEFERRED);
CREATE TABLE public.orders (id integer PRIMARY KEY, customer integer NOT NULL REFERENCES public.customers ON DELETE CASCADE,
    total numeric CHECK (total >= 0), placed tstzrange, EXCLUDE USING gist (placed WITH &&));
CREATE UNIQUE INDEX customers_email ON public.customers (lower(email));
INSERT INTO public.customers SELECT g, 'c' || g || '@example.com', NULLIF(g - 1, 0) FROM generate_series(1, 40) g;
INSERT INTO public.orders SELECT g, 1 + g % 40, g * 2.5, tstzrange('2026-01-01'::timestamptz + g * interval '1 day', '2026-01-01'::timestamptz + (g + 1) * interval '1 day') FROM generate_series(1, 120) g;
-- Duplicates the invalid index below trips over.
CREATE TABLE public.tags (id integer, tag text);
INSERT INTO public.tags SELECT g, 't' || (g % 4) FROM generate_series(1, 12) g;

-- Views, a materialized view, a rule, a trigger, a policy, comments, large objects.
CREATE VIEW public.big_orders AS SELECT * FROM public.orders WHERE total > 100;
CREATE MATERIALIZED VIEW public.order_totals AS SELECT customer, sum(total) AS total FROM public.orders GROUP BY customer;
CREATE INDEX order_totals_customer ON public.order_totals (customer);
CREATE TABLE public.audit (at timestamptz DEFAULT now(), what text);
CREATE RULE log_region AS ON INSERT TO public.regions_other DO ALSO INSERT INTO public.audit (what) VALUES ('region ' || NEW.code);
CREATE FUNCTION public.touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.email := lower(NEW.email); RETURN NEW; END $$;
CREATE TRIGGER customers_touch BEFORE INSERT OR UPDATE ON public.customers FOR EACH ROW EXECUTE FUNCTION public.touch();
CREATE FUNCTION public.double_it(x integer) RETURNS integer LANGUAGE sql IMMUTABLE BEGIN ATOMIC SELECT x * 2; END;
ALTER TABLE public.orders ENABLE ROW LEVEL SECURITY;
CREATE POLICY orders_reader ON public.orders FOR SELECT TO corpus_reader USING (total < 1000);
GRANT SELECT ON public.orders TO corpus_reader;
COMMENT ON TABLE public.everything IS 'every common type; a comment with ''quotes'' and ; semicolons';
COMMENT ON COLUMN public.orders.total IS 'in euros';
SELECT lo_from_bytea(0, 'large object one'), lo_from_bytea(0, 'large object two');

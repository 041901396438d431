//! A valid value of any type PostgreSQL ships, and of the extension types pgdrill knows
//! (pgvector's `vector`, `halfvec`, `sparsevec`; `citext`, `hstore`, `ltree`, `cube`), made
//! from the type's catalog facts ([`TypeFacts`]) without the scenario's help: an SQL expression
//! cast to the column's type.
//!
//! Within the type's modifier: an integer within its width, a `numeric(p,s)` with at most
//! `p - s` integer digits, a string within its `varchar(n)`/`char(n)` length, a `bit(n)` of `n`
//! bits, a `vector(n)` of `n` dimensions. A value for a column in a unique index (or an
//! exclusion constraint) has a random part, so that the two probe rows differ from each other
//! and from the table's rows; any other value is a plain one (`1`, `'{}'`, an empty range, the
//! enum's first label). Arrays are empty (one element when unique), ranges `empty` (one point
//! when unique), multiranges `{}`, composites a row of their attributes' values (NULL where
//! none can be made), domains their base type's value cast to the domain.

use super::types::{TypeFacts, TypeKind};
use crate::pg::{TypeCategory, quote_literal};

/// A random integer from 1 to `max` (at most 2^53, where a double is still exact).
fn random_int(max: u64) -> String {
    format!("pg_catalog.floor(pg_catalog.random() * {} + 1)::pg_catalog.int8", max - 1)
}

/// A random string of `len` characters at most (hex digits: nothing in a probe row says that
/// pgdrill made it).
fn random_text(len: Option<usize>) -> String {
    let hex = "pg_catalog.md5(pg_catalog.random()::pg_catalog.text)";
    match len {
        Some(n) if n < 16 => format!("pg_catalog.left({hex}, {n})"),
        _ => format!("pg_catalog.left({hex}, 16)"),
    }
}

/// Why no value of a type can be made up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum NoValue {
    /// A base type neither PostgreSQL's own nor of an extension pgdrill knows.
    #[error("pgdrill cannot make up a value of type {ty}")]
    Unknown { ty: String },
    /// An enum with no label to take.
    #[error("the enum {ty} has no labels")]
    NoLabels { ty: String },
    /// A type whose catalog facts say why none can be made (a pseudo-type, say).
    #[error("pgdrill cannot make up a value of type {ty}: {why}")]
    Other { ty: String, why: String },
}

/// A value of `ty`, as SQL cast to it; `unique`: with a random part. `Err` says why none can be
/// made.
pub(crate) fn value(ty: &TypeFacts, unique: bool) -> Result<String, NoValue> {
    let expr = match &ty.kind {
        TypeKind::Base { typname, schema, typmod, category, extension } => {
            let known = match extension.as_deref() {
                Some(ext) => extension_value(ext, typname, *typmod, unique),
                None if schema == "pg_catalog" => builtin_value(typname, *typmod, unique),
                None => None,
            };
            match known {
                Some(expr) => expr,
                // A string type of an extension pgdrill does not know takes a string.
                None if *category == TypeCategory::String && schema != "pg_catalog" => random_text(None),
                None => return Err(NoValue::Unknown { ty: ty.name.clone() }),
            }
        }
        TypeKind::Domain(base) => value(base, unique)?,
        TypeKind::Array(element) => {
            if unique {
                format!("ARRAY[{}]", value(element, true)?)
            } else {
                "'{}'".to_owned()
            }
        }
        TypeKind::Enum(labels) => match labels.as_slice() {
            [] => return Err(NoValue::NoLabels { ty: ty.name.clone() }),
            [first, ..] if !unique || labels.len() == 1 => quote_literal(first),
            _ => {
                let list: Vec<String> = labels.iter().map(|l| quote_literal(l)).collect();
                format!(
                    "(ARRAY[{}]::pg_catalog.text[])[pg_catalog.floor(pg_catalog.random() * {} + 1)::pg_catalog.int4]",
                    list.join(", "),
                    labels.len()
                )
            }
        },
        TypeKind::Range(subtype) => {
            if unique {
                // One point, [v, v]: not empty, and within the subtype whatever it is.
                format!("(SELECT {}(v, v, '[]') FROM (SELECT {} AS v) AS probe_point)", ty.name, value(subtype, true)?)
            } else {
                "'empty'".to_owned()
            }
        }
        TypeKind::Multirange(range) => {
            if unique {
                format!("{}({})", ty.name, value(range, true)?)
            } else {
                "'{}'".to_owned()
            }
        }
        TypeKind::Composite(fields) => {
            let values: Vec<String> =
                fields.iter().map(|(_, field)| value(field, unique).unwrap_or_else(|_| "NULL".into())).collect();
            format!("ROW({})", values.join(", "))
        }
        TypeKind::Other(why) => return Err(NoValue::Other { ty: ty.name.clone(), why: why.clone() }),
    };
    Ok(format!("({expr})::{}", ty.name))
}

/// `numeric(p,s)`'s precision and scale from its type modifier (the scale may be negative or
/// larger than the precision since PostgreSQL 15).
pub(crate) fn numeric_precision_scale(typmod: i32) -> Option<(i32, i32)> {
    if typmod < 4 {
        return None;
    }
    let t = typmod - 4;
    let precision = (t >> 16) & 0xffff;
    let scale = ((t & 0x7ff) ^ 1024) - 1024;
    Some((precision, scale))
}

fn numeric_value(typmod: i32, unique: bool) -> String {
    let Some((precision, scale)) = numeric_precision_scale(typmod) else {
        return if unique { random_int(1_000_000_000) } else { "1".into() };
    };
    // Integer digits the type holds: a value below 10^digits, at the type's scale, fits.
    let digits = (precision - scale).min(15);
    match (digits >= 1, unique) {
        (true, false) => "1".into(),
        (false, false) => "0".into(),
        _ => format!("pg_catalog.trunc((pg_catalog.random() * 1e{digits})::pg_catalog.numeric, {scale})"),
    }
}

/// A string type's length limit: `varchar(n)`/`char(n)` carry `n + 4` as their modifier.
fn length(typname: &str, typmod: i32) -> Option<usize> {
    match typname {
        "name" => Some(63),
        _ if typmod >= 4 => Some((typmod - 4) as usize),
        _ => None,
    }
}

/// A bit string of `n` bits (`bit(n)`, `varbit(n)`), random when unique.
fn bits(n: i32, unique: bool) -> String {
    if unique {
        format!(
            "(SELECT pg_catalog.string_agg(CASE WHEN pg_catalog.random() < 0.5 THEN '1' ELSE '0' END, '') FROM pg_catalog.generate_series(1, {n}))"
        )
    } else {
        format!("pg_catalog.repeat('1', {n})")
    }
}

/// A value of the built-in base type `typname`, or `None` for one pgdrill cannot make.
pub(crate) fn builtin_value(typname: &str, typmod: i32, unique: bool) -> Option<String> {
    let plain = |v: &str| Some(v.to_owned());
    let pick = |fixed: &str, random: String| Some(if unique { random } else { fixed.to_owned() });
    match typname {
        "int2" => pick("1", random_int(32_767)),
        "int4" => pick("1", random_int(2_147_483_647)),
        "int8" => pick("1", random_int(1 << 53)),
        "numeric" => Some(numeric_value(typmod, unique)),
        "float4" | "float8" => pick("1", "pg_catalog.random()".into()),
        "money" => pick("1", format!("{}::pg_catalog.numeric", random_int(1_000_000_000))),
        "bool" => plain("false"),
        "text" | "varchar" | "bpchar" | "name" | "refcursor" => Some(random_text(length(typname, typmod))),
        "char" => plain("'p'"),
        "bytea" => plain("pg_catalog.decode(pg_catalog.md5(pg_catalog.random()::pg_catalog.text), 'hex')"),
        "uuid" => plain("pg_catalog.md5(pg_catalog.random()::pg_catalog.text)::pg_catalog.uuid"),
        "json" | "jsonb" => pick(
            "'{}'",
            "pg_catalog.json_build_object('note', pg_catalog.md5(pg_catalog.random()::pg_catalog.text))".into(),
        ),
        "jsonpath" => {
            pick("'$'", "'$.p' || pg_catalog.left(pg_catalog.md5(pg_catalog.random()::pg_catalog.text), 8)".into())
        }
        "xml" => {
            pick("'<note/>'", "'<note>' || pg_catalog.md5(pg_catalog.random()::pg_catalog.text) || '</note>'".into())
        }
        _ => time_or_network_value(typname, typmod, unique).or_else(|| other_value(typname, unique)),
    }
}

/// A value of a built-in date/time, network, bit string or text search type.
fn time_or_network_value(typname: &str, typmod: i32, unique: bool) -> Option<String> {
    let pick = |fixed: &str, random: String| Some(if unique { random } else { fixed.to_owned() });
    match typname {
        "date" => pick(
            "CURRENT_DATE",
            "DATE '2000-01-01' + pg_catalog.floor(pg_catalog.random() * 36500)::pg_catalog.int4".into(),
        ),
        "time" => pick("'12:00'", "TIME '00:00' + pg_catalog.random() * INTERVAL '1 day'".into()),
        "timetz" => {
            pick("'12:00+00'", "TIME WITH TIME ZONE '00:00+00' + pg_catalog.random() * INTERVAL '1 day'".into())
        }
        "timestamp" => pick("LOCALTIMESTAMP", "LOCALTIMESTAMP - pg_catalog.random() * INTERVAL '3650 days'".into()),
        "timestamptz" => {
            pick("pg_catalog.now()", "pg_catalog.now() - pg_catalog.random() * INTERVAL '3650 days'".into())
        }
        "interval" => pick("INTERVAL '1 day'", "pg_catalog.random() * INTERVAL '1000 days'".into()),
        "inet" => pick("'192.0.2.1'", format!("'10.0.0.0'::pg_catalog.inet + {}", random_int(16_777_214))),
        "cidr" => pick(
            "'192.0.2.0/24'",
            format!("('10.0.0.0'::pg_catalog.inet + {})::pg_catalog.cidr", random_int(16_777_214)),
        ),
        "macaddr" => pick(
            "'08:00:2b:01:02:03'",
            "pg_catalog.left(pg_catalog.md5(pg_catalog.random()::pg_catalog.text), 12)".into(),
        ),
        "macaddr8" => pick(
            "'08:00:2b:01:02:03:04:05'",
            "pg_catalog.left(pg_catalog.md5(pg_catalog.random()::pg_catalog.text), 16)".into(),
        ),
        "bit" => Some(bits(typmod.max(1), unique)),
        "varbit" => Some(bits(if typmod > 0 { typmod.min(16) } else { 16 }, unique)),
        "tsvector" | "tsquery" => pick("'note'", "'n' || pg_catalog.md5(pg_catalog.random()::pg_catalog.text)".into()),
        _ => None,
    }
}

/// A value of a built-in geometric type, `pg_lsn`, a snapshot, an OID or an OID alias type.
fn other_value(typname: &str, unique: bool) -> Option<String> {
    let pick = |fixed: &str, random: String| Some(if unique { random } else { fixed.to_owned() });
    match typname {
        "point" => pick("'(0,0)'", "pg_catalog.point(pg_catalog.random(), pg_catalog.random())".into()),
        "line" => pick(
            "'{1,-1,0}'",
            "pg_catalog.line(pg_catalog.point(0, pg_catalog.random()), pg_catalog.point(1, pg_catalog.random()))"
                .into(),
        ),
        "lseg" => pick(
            "'[(0,0),(1,1)]'",
            "pg_catalog.lseg(pg_catalog.point(0, pg_catalog.random()), pg_catalog.point(1, pg_catalog.random()))"
                .into(),
        ),
        "box" => pick(
            "'(1,1),(0,0)'",
            "pg_catalog.box(pg_catalog.point(pg_catalog.random(), 0), pg_catalog.point(2, 1))".into(),
        ),
        "path" => pick("'[(0,0),(1,1)]'", "'[(0,0),(1,' || pg_catalog.random() || ')]'".into()),
        "polygon" => pick("'((0,0),(1,1),(1,0))'", "'((0,0),(1,' || pg_catalog.random() || '),(1,0))'".into()),
        "circle" => pick("'<(0,0),1>'", "pg_catalog.circle(pg_catalog.point(pg_catalog.random(), 0), 1)".into()),
        "pg_lsn" => pick("'0/0'", format!("'0/' || pg_catalog.to_hex({}::pg_catalog.int4)", random_int(2_147_483_647))),
        "txid_snapshot" | "pg_snapshot" => Some("'1:1:'".to_owned()),
        "oid" | "xid" | "xid8" | "cid" => pick("'1'", format!("{}::pg_catalog.text", random_int(4_294_967_295))),
        "int2vector" => pick("'1'", format!("{}::pg_catalog.text", random_int(32_767))),
        "oidvector" => pick("'1'", format!("{}::pg_catalog.text", random_int(4_294_967_295))),
        "tid" => pick("'(0,1)'", format!("'(' || {} || ',1)'", random_int(1_000_000))),
        // The OID alias types take a number without looking it up: an object every cluster has,
        // or a random number when unique.
        "regclass" | "regtype" | "regproc" | "regprocedure" | "regoper" | "regoperator" | "regconfig"
        | "regdictionary" | "regnamespace" | "regrole" | "regcollation" => {
            let oid = match typname {
                "regclass" => "1259",                 // pg_class
                "regtype" => "23",                    // integer
                "regproc" | "regprocedure" => "1299", // now()
                "regoper" | "regoperator" => "96",    // = (integer, integer)
                "regconfig" => "3748",                // simple
                "regdictionary" => "3765",            // simple
                "regnamespace" => "11",               // pg_catalog
                "regrole" => "10",                    // the bootstrap superuser
                _ => "950",                           // "C"
            };
            // A number read as text would be a name: a random one goes through `oid`.
            pick(&format!("'{oid}'"), format!("{}::pg_catalog.oid", random_int(4_294_967_295)))
        }
        _ => None,
    }
}

/// A value of a type of a known extension, `None` for one pgdrill does not know.
pub(crate) fn extension_value(extension: &str, typname: &str, typmod: i32, unique: bool) -> Option<String> {
    let pick = |fixed: String, random: String| Some(if unique { random } else { fixed });
    // pgvector's type modifier is the dimension.
    let dimensions = if typmod > 0 { typmod } else { 3 };
    match (extension, typname) {
        ("vector", "vector" | "halfvec") => pick(
            format!("'[' || pg_catalog.array_to_string(pg_catalog.array_fill(1, ARRAY[{dimensions}]), ',') || ']'"),
            format!(
                "(SELECT '[' || pg_catalog.string_agg(pg_catalog.random()::pg_catalog.text, ',') || ']' FROM pg_catalog.generate_series(1, {dimensions}))"
            ),
        ),
        ("vector", "sparsevec") => {
            pick(format!("'{{1:1}}/{dimensions}'"), format!("'{{1:' || (pg_catalog.random() + 1) || '}}/{dimensions}'"))
        }
        ("citext", "citext") => Some(random_text(None)),
        ("hstore", "hstore") => {
            pick("'note=>1'".into(), "'note=>' || pg_catalog.md5(pg_catalog.random()::pg_catalog.text)".into())
        }
        ("ltree", "ltree") => {
            pick("'note'".into(), "'n' || pg_catalog.md5(pg_catalog.random()::pg_catalog.text)".into())
        }
        ("cube", "cube") => pick("'(0)'".into(), "'(' || pg_catalog.random() || ')'".into()),
        _ => None,
    }
}

/// A tenant made up for a tenant column of type `ty` (domains followed), as text the type reads:
/// random, within the type (a positive number, which a domain's `CHECK (VALUE > 0)` takes; a
/// string with its random part first, which a short `varchar(n)` keeps). `None`: pgdrill cannot
/// make one up for this type.
pub(crate) fn tenant_literal(ty: &TypeFacts) -> Option<String> {
    let bytes: [u8; 16] = rand::random();
    let hex = hex::encode(bytes);
    let n = u64::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7]]);
    let TypeKind::Base { typname, typmod, category, .. } = &ty.without_domains().kind else {
        return None;
    };
    match typname.as_str() {
        "uuid" => Some(format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])),
        "int2" => Some((1_000 + n % 31_000).to_string()),
        "int4" | "int8" => Some((1_000_000 + n % 2_000_000_000).to_string()),
        "numeric" => {
            let digits = match numeric_precision_scale(*typmod) {
                Some((precision, scale)) => (precision - scale).min(9),
                None => 9,
            };
            (digits >= 1).then(|| (1 + n % (10u64.pow(digits as u32) - 1)).to_string())
        }
        _ if *category == TypeCategory::String => {
            let text = format!("{}-tenant", &hex[..12]);
            Some(match length(typname, *typmod) {
                Some(len) => text.chars().take(len).collect(),
                None => text,
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A built-in base type of the `typcategory` `code`.
    fn base(name: &str, typname: &str, typmod: i32, code: char) -> TypeFacts {
        TypeFacts::builtin(name, typname, typmod, TypeCategory::of_code(&code.to_string()))
    }

    fn of(name: &str, kind: TypeKind) -> TypeFacts {
        TypeFacts { name: name.into(), kind }
    }

    #[test]
    fn integers_stay_within_their_width() {
        assert_eq!(value(&base("smallint", "int2", -1, 'N'), false).unwrap(), "(1)::smallint");
        let small = value(&base("smallint", "int2", -1, 'N'), true).unwrap();
        assert!(small.contains("random() * 32766 + 1"), "{small}");
        assert!(value(&base("integer", "int4", -1, 'N'), true).unwrap().contains("* 2147483646 + 1"));
        assert!(value(&base("bigint", "int8", -1, 'N'), true).unwrap().contains("* 9007199254740991 + 1"));
    }

    #[test]
    fn numerics_keep_their_precision_and_scale() {
        // numeric(5,2): typmod ((5 << 16) | 2) + 4
        let typmod = ((5 << 16) | 2) + 4;
        assert_eq!(numeric_precision_scale(typmod), Some((5, 2)));
        assert_eq!(value(&base("numeric(5,2)", "numeric", typmod, 'N'), false).unwrap(), "(1)::numeric(5,2)");
        let unique = value(&base("numeric(5,2)", "numeric", typmod, 'N'), true).unwrap();
        assert!(unique.contains("random() * 1e3)::pg_catalog.numeric, 2)"), "{unique}");
        // numeric(2,5): below 0.001 (PostgreSQL 15 and later).
        let tiny = ((2 << 16) | 5) + 4;
        assert_eq!(numeric_precision_scale(tiny), Some((2, 5)));
        assert_eq!(value(&base("numeric(2,5)", "numeric", tiny, 'N'), false).unwrap(), "(0)::numeric(2,5)");
        assert!(value(&base("numeric(2,5)", "numeric", tiny, 'N'), true).unwrap().contains("1e-3"));
        // numeric(3,-2): a negative scale.
        let negative = ((3 << 16) | (-2i32 & 0x7ff)) + 4;
        assert_eq!(numeric_precision_scale(negative), Some((3, -2)));
        assert!(value(&base("numeric(3,-2)", "numeric", negative, 'N'), true).unwrap().contains("1e5"));
        assert_eq!(value(&base("numeric", "numeric", -1, 'N'), false).unwrap(), "(1)::numeric");
        assert_eq!(value(&base("real", "float4", -1, 'N'), false).unwrap(), "(1)::real");
        assert_eq!(value(&base("money", "money", -1, 'N'), false).unwrap(), "(1)::money");
    }

    #[test]
    fn strings_fit_their_length() {
        let short = value(&base("character varying(7)", "varchar", 11, 'S'), false).unwrap();
        assert!(short.contains("left(pg_catalog.md5(pg_catalog.random()::pg_catalog.text), 7)"), "{short}");
        let long = value(&base("text", "text", -1, 'S'), false).unwrap();
        assert!(long.starts_with("(pg_catalog.left("), "{long}");
        assert!(value(&base("character(4)", "bpchar", 8, 'S'), false).unwrap().contains(", 4)"));
        assert_eq!(value(&base("\"char\"", "char", -1, 'Z'), false).unwrap(), "('p')::\"char\"");
        assert!(value(&base("bytea", "bytea", -1, 'U'), false).unwrap().contains("decode("));
        assert!(value(&base("uuid", "uuid", -1, 'U'), false).unwrap().contains("::pg_catalog.uuid"));
    }

    #[test]
    fn dates_times_and_network_types() {
        for (name, typname) in [
            ("date", "date"),
            ("time without time zone", "time"),
            ("time with time zone", "timetz"),
            ("timestamp without time zone", "timestamp"),
            ("timestamp with time zone", "timestamptz"),
            ("interval", "interval"),
            ("inet", "inet"),
            ("cidr", "cidr"),
            ("macaddr", "macaddr"),
            ("macaddr8", "macaddr8"),
            ("json", "json"),
            ("jsonb", "jsonb"),
            ("xml", "xml"),
            ("tsvector", "tsvector"),
            ("tsquery", "tsquery"),
            ("point", "point"),
            ("line", "line"),
            ("lseg", "lseg"),
            ("box", "box"),
            ("path", "path"),
            ("polygon", "polygon"),
            ("circle", "circle"),
            ("pg_lsn", "pg_lsn"),
            ("oid", "oid"),
            ("regclass", "regclass"),
            ("regrole", "regrole"),
        ] {
            let plain = value(&base(name, typname, -1, 'U'), false).unwrap();
            let unique = value(&base(name, typname, -1, 'U'), true).unwrap();
            assert!(plain.ends_with(&format!(")::{name}")), "{plain}");
            if !matches!(typname, "txid_snapshot") {
                assert!(unique.contains("random()"), "{typname}: {unique}");
            }
        }
        assert_eq!(value(&base("interval", "interval", -1, 'T'), false).unwrap(), "(INTERVAL '1 day')::interval");
    }

    #[test]
    fn bit_strings_have_their_length() {
        assert_eq!(value(&base("bit(3)", "bit", 3, 'V'), false).unwrap(), "(pg_catalog.repeat('1', 3))::bit(3)");
        assert!(value(&base("bit(3)", "bit", 3, 'V'), true).unwrap().contains("generate_series(1, 3)"));
        assert!(value(&base("bit varying(5)", "varbit", 5, 'V'), false).unwrap().contains("'1', 5"));
    }

    #[test]
    fn arrays_enums_ranges_multiranges_domains_composites() {
        let int4 = base("integer", "int4", -1, 'N');
        let array = of("integer[]", TypeKind::Array(Box::new(int4.clone())));
        assert_eq!(value(&array, false).unwrap(), "('{}')::integer[]");
        assert_eq!(value(&array, true).unwrap(), format!("(ARRAY[{}])::integer[]", value(&int4, true).unwrap()));
        let status = of("public.status", TypeKind::Enum(vec!["new".into(), "done".into()]));
        assert_eq!(value(&status, false).unwrap(), "('new')::public.status");
        assert!(value(&status, true).unwrap().contains("ARRAY['new', 'done']"));
        let statuses = of("public.status[]", TypeKind::Array(Box::new(status)));
        assert_eq!(value(&statuses, false).unwrap(), "('{}')::public.status[]");
        assert!(
            value(&of("public.empty", TypeKind::Enum(vec![])), false).unwrap_err().to_string().contains("no labels")
        );
        let range = of("int4range", TypeKind::Range(Box::new(int4.clone())));
        assert_eq!(value(&range, false).unwrap(), "('empty')::int4range");
        assert!(
            value(&range, true).unwrap().starts_with("((SELECT int4range(v, v, '[]') FROM (SELECT (pg_catalog.floor")
        );
        let multi = of("int4multirange", TypeKind::Multirange(Box::new(range)));
        assert_eq!(value(&multi, false).unwrap(), "('{}')::int4multirange");
        assert!(value(&multi, true).unwrap().starts_with("(int4multirange(((SELECT int4range"));
        let domain = of("public.positive", TypeKind::Domain(Box::new(int4.clone())));
        assert_eq!(value(&domain, false).unwrap(), "((1)::integer)::public.positive");
        assert_eq!(domain.without_domains(), &int4);
        let shape = of(
            "geometry",
            TypeKind::Base {
                typname: "geometry".into(),
                schema: "public".into(),
                typmod: -1,
                category: TypeCategory::UserDefined,
                extension: Some("postgis".into()),
            },
        );
        let pair = of("public.pair", TypeKind::Composite(vec![("a".into(), int4), ("b".into(), shape.clone())]));
        assert_eq!(value(&pair, false).unwrap(), "(ROW((1)::integer, NULL))::public.pair");
        assert!(value(&shape, false).unwrap_err().to_string().contains("cannot make up a value of type geometry"));
        let pseudo = of("anyelement", TypeKind::Other("a pseudo-type (anyelement)".into()));
        assert!(value(&pseudo, false).unwrap_err().to_string().contains("pseudo-type"));
    }

    #[test]
    fn tenants_are_made_up_within_their_type() {
        let small: i64 = tenant_literal(&base("smallint", "int2", -1, 'N')).unwrap().parse().unwrap();
        assert!((1_000..32_000).contains(&small), "{small}");
        let typmod = ((3 << 16) | 1) + 4; // numeric(3,1): below 100
        let number: i64 = tenant_literal(&base("numeric(3,1)", "numeric", typmod, 'N')).unwrap().parse().unwrap();
        assert!((1..100).contains(&number), "{number}");
        let uuid = tenant_literal(&base("uuid", "uuid", -1, 'U')).unwrap();
        assert_eq!(uuid.len(), 36, "{uuid}");
        let short = tenant_literal(&base("character varying(8)", "varchar", 12, 'S')).unwrap();
        assert_eq!(short.len(), 8, "{short}");
        let domain = of("public.tenant", TypeKind::Domain(Box::new(base("bigint", "int8", -1, 'N'))));
        assert!(tenant_literal(&domain).unwrap().parse::<i64>().unwrap() >= 1_000_000);
        assert_eq!(tenant_literal(&base("point", "point", -1, 'G')), None);
    }

    #[test]
    fn extension_types_take_their_dimension_from_the_modifier() {
        let vector = |typname: &str, typmod: i32| TypeFacts {
            name: format!("{typname}({typmod})"),
            kind: TypeKind::Base {
                typname: typname.into(),
                schema: "public".into(),
                typmod,
                category: TypeCategory::UserDefined,
                extension: Some("vector".into()),
            },
        };
        assert!(value(&vector("vector", 1536), false).unwrap().contains("array_fill(1, ARRAY[1536])"));
        assert!(value(&vector("halfvec", 4), true).unwrap().contains("generate_series(1, 4)"));
        assert_eq!(value(&vector("sparsevec", 5), false).unwrap(), "('{1:1}/5')::sparsevec(5)");
        let citext = TypeFacts {
            name: "public.citext".into(),
            kind: TypeKind::Base {
                typname: "citext".into(),
                schema: "public".into(),
                typmod: -1,
                category: TypeCategory::String,
                extension: Some("citext".into()),
            },
        };
        assert!(value(&citext, false).unwrap().contains("pg_catalog.md5("));
    }
}

//! What a column's type is, read from the catalog rather than guessed from its name: a domain's
//! base type (`typbasetype`, `typtypmod`), an array's element (`typelem`), a range's subtype
//! (`pg_range`), a multirange's range, an enum's labels, a composite's attributes, and for a base
//! type its name, schema, type modifier (`atttypmod`: a `varchar(n)`'s length, a `numeric(p,s)`'s
//! precision, a `vector(n)`'s dimension) and the extension that owns it.

use sqlx::PgConnection;

use crate::pg::TypeCategory;

/// How deep a type may nest (a domain over an array of a composite of a range ...) before
/// pgdrill gives up on it.
const MAX_DEPTH: usize = 6;

/// A type, as far as making a value of it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TypeFacts {
    /// `format_type(oid, typmod)` in pgdrill's pinned session (`pg_catalog` first): what a value
    /// is cast to, schema-qualified unless it is a built-in.
    pub name: String,
    pub kind: TypeKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TypeKind {
    /// A base type: `pg_type.typname` (`int2`, `varchar`, `vector`), its schema, its type
    /// modifier (-1: none), `typcategory`, and the extension that owns it.
    Base { typname: String, schema: String, typmod: i32, category: TypeCategory, extension: Option<String> },
    /// A domain over its base type (the base with the domain's own type modifier).
    Domain(Box<TypeFacts>),
    /// An array of its element type.
    Array(Box<TypeFacts>),
    /// An enum and its labels in order.
    Enum(Vec<String>),
    /// A range over its subtype.
    Range(Box<TypeFacts>),
    /// A multirange of its range type.
    Multirange(Box<TypeFacts>),
    /// A composite type and its attributes.
    Composite(Vec<(String, TypeFacts)>),
    /// A pseudo-type, or a type nested deeper than pgdrill follows: no value is made of it.
    Other(String),
}

impl TypeFacts {
    /// A built-in base type (in `pg_catalog`) named `typname`, for tests and for callers that
    /// know the type.
    #[cfg(test)]
    pub(crate) fn builtin(name: &str, typname: &str, typmod: i32, category: TypeCategory) -> Self {
        TypeFacts {
            name: name.into(),
            kind: TypeKind::Base {
                typname: typname.into(),
                schema: "pg_catalog".into(),
                typmod,
                category,
                extension: None,
            },
        }
    }

    /// The type a domain stands for, domains over domains followed.
    pub(crate) fn without_domains(&self) -> &TypeFacts {
        match &self.kind {
            TypeKind::Domain(base) => base.without_domains(),
            _ => self,
        }
    }
}

/// One row of [`TYPE_SQL`].
type TypeRow = (String, String, String, String, String, i64, i32, i64, i64, Option<i64>, Option<String>, Vec<String>);

/// A type's facts, by its oid and the type modifier it is used with. Written for pgdrill's
/// pinned `search_path` (`pg_catalog, pg_temp`); every name is qualified anyway.
const TYPE_SQL: &str = "SELECT pg_catalog.format_type(t.oid, $2), t.typname::pg_catalog.text, n.nspname::pg_catalog.text, \
       t.typtype::pg_catalog.text, t.typcategory::pg_catalog.text, t.typbasetype::pg_catalog.int8, t.typtypmod, \
       t.typelem::pg_catalog.int8, t.typrelid::pg_catalog.int8, \
       (SELECT r.rngsubtype::pg_catalog.int8 FROM pg_catalog.pg_range r WHERE r.rngtypid OPERATOR(pg_catalog.=) t.oid), \
       (SELECT e.extname::pg_catalog.text FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_extension e ON e.oid OPERATOR(pg_catalog.=) d.refobjid \
         WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_type'::pg_catalog.regclass AND d.objid OPERATOR(pg_catalog.=) t.oid \
           AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_extension'::pg_catalog.regclass AND d.deptype OPERATOR(pg_catalog.=) 'e' LIMIT 1), \
       ARRAY(SELECT e.enumlabel::pg_catalog.text FROM pg_catalog.pg_enum e WHERE e.enumtypid OPERATOR(pg_catalog.=) t.oid ORDER BY e.enumsortorder) \
     FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) t.typnamespace \
     WHERE t.oid OPERATOR(pg_catalog.=) $1::pg_catalog.int8::pg_catalog.oid";

/// A multirange's range type (PostgreSQL 14 and later, the only ones with multiranges).
const MULTIRANGE_SQL: &str = "SELECT r.rngtypid::pg_catalog.int8 FROM pg_catalog.pg_range r \
     WHERE r.rngmultitypid OPERATOR(pg_catalog.=) $1::pg_catalog.int8::pg_catalog.oid";

/// A composite type's attributes, in order.
const ATTRIBUTES_SQL: &str = "SELECT a.attname::pg_catalog.text, a.atttypid::pg_catalog.int8, a.atttypmod \
     FROM pg_catalog.pg_attribute a WHERE a.attrelid OPERATOR(pg_catalog.=) $1::pg_catalog.int8::pg_catalog.oid \
       AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped ORDER BY a.attnum";

/// The facts of type `oid` used with type modifier `typmod`.
pub(crate) async fn read(conn: &mut PgConnection, oid: i64, typmod: i32) -> sqlx::Result<TypeFacts> {
    read_at(conn, oid, typmod, 0).await
}

fn read_at<'c>(
    conn: &'c mut PgConnection,
    oid: i64,
    typmod: i32,
    depth: usize,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = sqlx::Result<TypeFacts>> + Send + 'c>> {
    Box::pin(async move {
        let row: Option<TypeRow> = sqlx::query_as(TYPE_SQL).bind(oid).bind(typmod).fetch_optional(&mut *conn).await?;
        let Some((
            name,
            typname,
            schema,
            typtype,
            category,
            base,
            base_typmod,
            elem,
            relid,
            subtype,
            extension,
            labels,
        )) = row
        else {
            return Ok(TypeFacts { name: format!("type {oid}"), kind: TypeKind::Other("no such type".into()) });
        };
        if depth >= MAX_DEPTH {
            return Ok(TypeFacts { name, kind: TypeKind::Other("nested too deep".into()) });
        }
        let category = TypeCategory::of_code(&category);
        let kind = match typtype.as_str() {
            "d" => TypeKind::Domain(Box::new(read_at(conn, base, base_typmod, depth + 1).await?)),
            "e" => TypeKind::Enum(labels),
            "r" => match subtype {
                Some(sub) => TypeKind::Range(Box::new(read_at(conn, sub, -1, depth + 1).await?)),
                None => TypeKind::Other("a range without a subtype".into()),
            },
            "m" => match sqlx::query_scalar::<_, i64>(MULTIRANGE_SQL).bind(oid).fetch_optional(&mut *conn).await? {
                Some(range) => TypeKind::Multirange(Box::new(read_at(conn, range, -1, depth + 1).await?)),
                None => TypeKind::Other("a multirange without a range".into()),
            },
            "c" => {
                let attributes: Vec<(String, i64, i32)> =
                    sqlx::query_as(ATTRIBUTES_SQL).bind(relid).fetch_all(&mut *conn).await?;
                let mut fields = Vec::new();
                for (attname, atttypid, atttypmod) in attributes {
                    fields.push((attname, read_at(conn, atttypid, atttypmod, depth + 1).await?));
                }
                TypeKind::Composite(fields)
            }
            // A true array: a variable-length type whose elements are another type (`point`
            // and `name` have an element type too, but a fixed length; `int2vector` and
            // `oidvector` are their own input formats).
            "b" if elem != 0
                && category == TypeCategory::Array
                && !matches!(typname.as_str(), "int2vector" | "oidvector") =>
            {
                // An array column's type modifier is its element's (`varchar(10)[]`).
                TypeKind::Array(Box::new(read_at(conn, elem, typmod, depth + 1).await?))
            }
            "b" => TypeKind::Base { typname, schema, typmod, category, extension },
            _ => TypeKind::Other(format!("a pseudo-type ({typname})")),
        };
        Ok(TypeFacts { name, kind })
    })
}

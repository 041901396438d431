//! Role passwords out of a globals file before it travels in a ConfigMap, which anyone who may
//! list ConfigMaps reads: `pg_dumpall --globals-only` writes each role's verifier
//! (`PASSWORD 'SCRAM-SHA-256$4096:...'`), and a verifier is enough to attack the password
//! offline, or to log in where the server takes it as given. The drill needs none of them: it
//! gives each role it logs in as a password of its own (`provision/logins.rs`). Leaf module.

use std::sync::LazyLock;

use regex::bytes::Regex;

/// What stands where a password was.
const LEFT_OUT: &[u8] = b"/* pgdrill kube: a secret left out */";

/// A role's password as SQL writes it: `[ENCRYPTED] PASSWORD 'text'` (a doubled quote inside).
static PASSWORD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)\b(?:(?:UN)?ENCRYPTED\s+)?PASSWORD\s+'(?:[^']|'')*'").expect("a valid pattern"));

/// The word PASSWORD and what follows it, for what is left once the literals are out.
static ANY_PASSWORD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)\bPASSWORD\b\s*(\S*)").expect("a valid pattern"));

/// `text` with every password literal left out, and how many were; `Err` with the line of a
/// password written otherwise (a dollar-quoted or `E'...'` string, which is not stripped here:
/// pgdrill refuses it rather than carry it).
pub(super) fn strip(text: &[u8]) -> Result<(Vec<u8>, usize), u64> {
    let count = PASSWORD.find_iter(text).count();
    let stripped = PASSWORD.replace_all(text, LEFT_OUT).into_owned();
    for found in ANY_PASSWORD.captures_iter(&stripped) {
        let next = found.get(1).map_or(&b""[..], |m| m.as_bytes());
        let at = found.get(0).map_or(0, |m| m.start());
        let line_start = stripped[..at].iter().rposition(|&b| b == b'\n').map_or(0, |n| n + 1);
        let in_a_comment = stripped[line_start..at].trim_ascii_start().starts_with(b"--");
        if !in_a_comment && !next.is_empty() && !next.to_ascii_uppercase().starts_with(b"NULL") {
            return Err(stripped[..at].iter().filter(|&&b| b == b'\n').count() as u64 + 1);
        }
    }
    Ok((stripped, count))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifiers_and_plain_passwords_are_left_out() {
        let globals = "CREATE ROLE app;\nALTER ROLE app WITH NOSUPERUSER LOGIN PASSWORD 'SCRAM-SHA-256$4096:abc==$x=:y=';\n\
                       CREATE ROLE ops LOGIN ENCRYPTED PASSWORD 'it''s secret';\nALTER ROLE ro PASSWORD NULL;\n";
        let (stripped, count) = strip(globals.as_bytes()).unwrap();
        let stripped = String::from_utf8(stripped).unwrap();
        assert_eq!(count, 2);
        assert!(!stripped.contains("SCRAM") && !stripped.contains("secret'"), "{stripped}");
        assert!(stripped.contains("ALTER ROLE app WITH NOSUPERUSER LOGIN /* pgdrill kube: a secret left out */;"));
        assert!(stripped.contains("ALTER ROLE ro PASSWORD NULL;"), "{stripped}");
        assert_eq!(strip(b"CREATE ROLE a;\n").unwrap(), (b"CREATE ROLE a;\n".to_vec(), 0));
        let commented = "-- set the password here\nCREATE ROLE a;\n";
        assert_eq!(strip(commented.as_bytes()).unwrap(), (commented.as_bytes().to_vec(), 0));
        // Latin-1 text around a password stays as it was.
        let (latin1, count) = strip(b"CREATE ROLE caf\xe9 PASSWORD 'x';\n").unwrap();
        assert_eq!(
            (latin1.as_slice(), count),
            (&b"CREATE ROLE caf\xe9 /* pgdrill kube: a secret left out */;\n"[..], 1)
        );
    }

    #[test]
    fn a_password_written_otherwise_is_refused_with_its_line() {
        assert_eq!(strip(b"CREATE ROLE a;\nCREATE ROLE b PASSWORD $$x$$;\n"), Err(2));
        assert_eq!(strip(b"CREATE ROLE b PASSWORD E'x';\n"), Err(1));
    }
}

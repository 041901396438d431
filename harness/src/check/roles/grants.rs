//! The table privileges a `roles` check's floor asks for, as the scenario writes them
//! (`SELECT, UPDATE (name, email)`): read, checked and upper-cased ([`parse_grants`]).

use crate::pg::{fold_ident, quote_ident_if_needed};

/// Table privileges (MAINTAIN from PostgreSQL 17).
pub(crate) const PRIVILEGES: [&str; 8] =
    ["SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER", "MAINTAIN"];
/// The table privileges that may also be granted on columns.
const COLUMN_PRIVILEGES: [&str; 4] = ["SELECT", "INSERT", "UPDATE", "REFERENCES"];

/// A privilege the floor asks for: on the table, or on these columns of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Grant {
    pub privilege: String,
    /// Column names as the server stores them; empty: the table's privilege.
    pub columns: Vec<String>,
}

impl std::fmt::Display for Grant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.privilege)?;
        if !self.columns.is_empty() {
            let columns: Vec<String> = self.columns.iter().map(|c| quote_ident_if_needed(c)).collect();
            write!(f, " ({})", columns.join(", "))?;
        }
        Ok(())
    }
}

/// Why the privileges written for a table cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum GrantsError {
    /// A `(` opens a list of columns that no `)` closes.
    #[error("`{written}` on `{table}`: a `(` is not closed")]
    Unclosed { written: String, table: String },
    /// `PRIVILEGE ()`: a list of no column.
    #[error("`{written}` on `{table}`: `{privilege} ()` names no column")]
    NoColumn { written: String, table: String, privilege: String },
    /// Columns in parentheses with no privilege before them.
    #[error("`{written}` on `{table}`: columns without a privilege")]
    NoPrivilege { written: String, table: String },
    /// A word that is not a table privilege.
    #[error("`{privilege}` on `{table}` is not a table privilege ({})", PRIVILEGES.join(", "))]
    Unknown { privilege: String, table: String },
    /// A table privilege that cannot be granted on columns, given columns.
    #[error("`{privilege}` on `{table}` cannot be granted on columns (only {})", COLUMN_PRIVILEGES.join(", "))]
    NotOnColumns { privilege: String, table: String },
}

/// The privileges written for `table` (`SELECT, UPDATE (name, email)`), checked and upper-cased,
/// columns folded as the server folds them.
pub(super) fn parse_grants(table: &str, written: &str) -> Result<Vec<Grant>, GrantsError> {
    let mut grants = Vec::new();
    let mut rest = written.trim();
    while !rest.is_empty() {
        let end = rest.find([',', '(']).unwrap_or(rest.len());
        let privilege = rest[..end].trim().to_ascii_uppercase();
        rest = &rest[end..];
        let mut columns = Vec::new();
        if let Some(inner) = rest.strip_prefix('(') {
            let close = inner
                .find(')')
                .ok_or_else(|| GrantsError::Unclosed { written: written.to_owned(), table: table.to_owned() })?;
            columns = inner[..close].split(',').map(|c| fold_ident(c.trim())).filter(|c| !c.is_empty()).collect();
            if columns.is_empty() {
                return Err(GrantsError::NoColumn { written: written.to_owned(), table: table.to_owned(), privilege });
            }
            rest = &inner[close + 1..];
        }
        rest = rest.trim_start();
        rest = rest.strip_prefix(',').unwrap_or(rest).trim_start();
        if privilege.is_empty() {
            if columns.is_empty() {
                continue;
            }
            return Err(GrantsError::NoPrivilege { written: written.to_owned(), table: table.to_owned() });
        }
        if !PRIVILEGES.contains(&privilege.as_str()) {
            return Err(GrantsError::Unknown { privilege, table: table.to_owned() });
        }
        if !columns.is_empty() && !COLUMN_PRIVILEGES.contains(&privilege.as_str()) {
            return Err(GrantsError::NotOnColumns { privilege, table: table.to_owned() });
        }
        grants.push(Grant { privilege, columns });
    }
    Ok(grants)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn privileges_read_with_their_columns() {
        let grants = parse_grants("public.users", "select, UPDATE (Name, \"Email\"), insert").unwrap();
        let shown: Vec<String> = grants.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["SELECT", "UPDATE (name, \"Email\")", "INSERT"]);
        assert_eq!(parse_grants("t", " , SELECT,").unwrap().len(), 1);
        assert!(parse_grants("t", "maintain").is_ok());
        let error = |written| parse_grants("public.users", written).unwrap_err().to_string();
        assert!(error("SELECT, UPDATE (name").contains("a `(` is not closed"));
        assert!(error("UPDATE ()").contains("names no column"));
        assert!(error("(name)").contains("columns without a privilege"));
        assert!(error("DELETE (name)").contains("`DELETE` on `public.users` cannot be granted on columns"));
        assert!(error("USAGE").contains("`USAGE` on `public.users` is not a table privilege"));
    }
}

//! A migrations folder as the code ships it: its migrations in order, and the newest, in the
//! form its runner records. Numbered files (`0003_x.up.sql`, `20230101000000_x.rb`, Prisma's
//! `20230101000000_init/` folders, `V1_10__x.sql`, `1680000000000-AddUsers.ts`), Drizzle's
//! `meta/_journal.json`; Alembic, Liquibase and sqitch in [`super::plans`].

use std::path::{Path, PathBuf};

use super::Records;
pub(crate) use super::code::{Folder, FolderError};
use super::plans;

/// Reads the migrations of `path` (a folder; Liquibase's root changelog or sqitch's plan may be
/// the file itself), as `records` says the runner records them.
pub(crate) fn read(path: &Path, records: Records) -> Result<Folder, FolderError> {
    match records {
        Records::DrizzleWhen => drizzle(path),
        Records::AlembicRevision => plans::alembic(path),
        Records::LiquibaseChangeset => plans::liquibase(path),
        Records::SqitchChange => plans::sqitch(path),
        _ => numbered(&[path.to_owned()], records),
    }
}

/// The migrations of several folders (a Rails application's and its engines', a monorepo's),
/// merged in version order: numbered files only (a plan, a changelog or Drizzle's journal is
/// one per runner).
pub(crate) fn read_all(paths: &[PathBuf], records: Records) -> Result<Folder, FolderError> {
    match paths {
        [one] => read(one, records),
        _ if matches!(
            records,
            Records::DrizzleWhen | Records::AlembicRevision | Records::LiquibaseChangeset | Records::SqitchChange
        ) =>
        {
            Err(FolderError::OneOnly { path: paths.first().cloned().unwrap_or_default() })
        }
        _ => numbered(paths, records),
    }
}

/// The file's version, by which files are ordered, and what the journal records of it; None
/// for a file that is not a migration (`README.md`, a `.down.sql`, EF's `.Designer.cs`).
pub(crate) fn of_file(records: Records, file: &str) -> Option<(String, String)> {
    if file.ends_with(".down.sql") || file.ends_with(".Designer.cs") || file.ends_with(".d.ts") {
        return None;
    }
    if records == Records::FlywayVersion {
        let version = file.strip_prefix('V')?.split_once("__")?.0.replace('_', ".");
        return Some((version.clone(), version));
    }
    let number: String = file.chars().take_while(char::is_ascii_digit).collect();
    if number.is_empty() {
        return None;
    }
    let stem = || super::records::without_extension(file).to_owned();
    let recorded = match records {
        Records::Stem => stem(),
        Records::Name => file.to_owned(),
        Records::TypeormClass => {
            // `1680000000000-add-users.ts` holds `class AddUsers1680000000000`.
            let name = stem()[number.len()..].trim_start_matches(['-', '_']).to_owned();
            format!("{}{number}", pascal_case(&name))
        }
        _ => number.clone(),
    };
    Some((number, recorded))
}

/// `add-users` as `AddUsers`, as TypeORM's generator names the class of a migration.
fn pascal_case(name: &str) -> String {
    name.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut chars = w.chars();
            chars.next().map(|c| c.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
        })
        .collect()
}

/// The files (or Prisma's migration folders) with a leading version in `dirs` (each must hold
/// one), ordered by it.
fn numbered(dirs: &[PathBuf], records: Records) -> Result<Folder, FolderError> {
    let mut found: Vec<(String, String, String, PathBuf)> = Vec::new();
    for dir in dirs {
        let entries = std::fs::read_dir(dir).map_err(FolderError::unreadable(dir))?;
        let before = found.len();
        found.extend(entries.flatten().filter_map(|entry| {
            let file = entry.file_name().to_string_lossy().into_owned();
            of_file(records, &file).map(|(version, recorded)| (version, recorded, file, dir.clone()))
        }));
        if found.len() == before {
            return Err(FolderError::Empty { path: dir.to_owned(), what: "migration files" });
        }
    }
    found.sort_by(|a, b| crate::pg::compare_versions(&a.0, &b.0).then_with(|| a.2.cmp(&b.2)));
    let Some((_, recorded, file, dir)) = found.last().cloned() else {
        return Err(FolderError::Empty { path: dirs.first().cloned().unwrap_or_default(), what: "migration files" });
    };
    // Flyway's journal records the version alone, and its files start with `V`.
    let flyway = records == Records::FlywayVersion;
    let key = if flyway { recorded.clone() } else { file.clone() };
    let newest = match records {
        Records::TypeormClass => typeorm_class(&dir.join(&file)).unwrap_or(recorded),
        _ => recorded,
    };
    let history: Vec<String> =
        found.into_iter().map(|(_, recorded, file, _)| if flyway { recorded } else { file }).collect();
    Ok(Folder { newest, key, source: file, history, project: None })
}

/// The class a TypeORM migration file exports: what its journal records.
fn typeorm_class(file: &Path) -> Option<String> {
    let text = std::fs::read_to_string(file).ok()?;
    let re = regex::Regex::new(r"class\s+([A-Za-z_$][A-Za-z0-9_$]*)\s+implements\s+MigrationInterface").ok()?;
    re.captures(&text).map(|c| c[1].to_owned())
}

/// Drizzle's journal (`meta/_journal.json`): its entries in order, each as its `when`.
fn drizzle(dir: &Path) -> Result<Folder, FolderError> {
    let journal = dir.join("meta/_journal.json");
    let text = std::fs::read_to_string(&journal).map_err(FolderError::unreadable(&journal))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|source| FolderError::NotJson { path: journal.clone(), source })?;
    let entries = value["entries"].as_array().filter(|e| !e.is_empty());
    let entries = entries.ok_or_else(|| FolderError::malformed(&journal, "lists no entries"))?;
    let mut history = Vec::new();
    let mut source = "meta/_journal.json";
    for entry in entries {
        let when =
            entry["when"].as_i64().ok_or_else(|| FolderError::malformed(&journal, "has an entry with no `when`"))?;
        history.push(when.to_string());
        source = entry["tag"].as_str().unwrap_or("meta/_journal.json");
    }
    let newest = history.last().cloned().unwrap_or_default();
    Ok(Folder { key: newest.clone(), newest, source: source.to_owned(), history, project: None })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(files: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for f in files {
            let path = dir.path().join(f);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "").unwrap();
        }
        dir
    }

    #[test]
    fn each_runner_records_its_own_form_of_a_file() {
        let file = "0003_add_zones.up.sql";
        let of = |r: Records, f: &str| of_file(r, f).map(|(_, recorded)| recorded);
        assert_eq!(of(Records::Number, file).as_deref(), Some("0003"));
        assert_eq!(of(Records::Stem, file).as_deref(), Some("0003_add_zones"));
        assert_eq!(of(Records::Name, file).as_deref(), Some(file));
        assert_eq!(of(Records::Stem, "20260518020000_create_users.rb").as_deref(), Some("20260518020000_create_users"));
        assert_eq!(of(Records::Stem, "010-audit.sql").as_deref(), Some("010-audit"));
        assert_eq!(of(Records::FlywayVersion, "V1_10__more.sql").as_deref(), Some("1.10"));
        assert_eq!(of(Records::Stem, "0003_add_zones.down.sql"), None);
        assert_eq!(of(Records::Number, "README.md"), None);
        assert_eq!(of(Records::Stem, "20230101000000_Init.Designer.cs"), None, "EF's designer file");
        assert_eq!(of(Records::Stem, "AppDbContextModelSnapshot.cs"), None);
        assert_eq!(of(Records::Stem, "0002_orders.py").as_deref(), Some("0002_orders"), "Django");
        assert_eq!(of(Records::Stem, "__init__.py"), None);
        assert_eq!(of(Records::TypeormClass, "1680000000000-add-users.ts").as_deref(), Some("AddUsers1680000000000"));
        assert_eq!(Records::parse("stem"), Some(Records::Stem));
        assert_eq!(Records::parse("flyway version"), None, "a preset's own form is not a choice");
    }

    #[test]
    fn newest_migration_files() {
        let dir = folder(&["001-init.sql", "010-audit.sql", "009-x.sql", "README.md"]);
        let read_newest = |r| read(dir.path(), r).map(|f| (f.newest, f.source));
        assert_eq!(read_newest(Records::Number).unwrap(), ("010".into(), "010-audit.sql".into()));
        assert_eq!(read_newest(Records::Stem).unwrap().0, "010-audit");
        let stems = read(dir.path(), Records::Stem).unwrap();
        assert_eq!(stems.history, ["001-init.sql", "009-x.sql", "010-audit.sql"], "compared by file name");
        assert_eq!(stems.key, "010-audit.sql");

        let dir = folder(&["V1__init.sql", "V1_10__more.sql", "V1_9__x.sql"]);
        assert_eq!(read(dir.path(), Records::FlywayVersion).unwrap().newest, "1.10");

        let dir = folder(&[]);
        std::fs::create_dir(dir.path().join("meta")).unwrap();
        std::fs::write(
            dir.path().join("meta/_journal.json"),
            r#"{"entries":[{"idx":0,"when":1700000000000,"tag":"0000_a"},{"idx":1,"when":1763500000000,"tag":"0001_b"}]}"#,
        )
        .unwrap();
        let drizzle = read(dir.path(), Records::DrizzleWhen).unwrap();
        assert_eq!((drizzle.newest.as_str(), drizzle.source.as_str()), ("1763500000000", "0001_b"));
        assert_eq!(drizzle.history, ["1700000000000", "1763500000000"]);
        assert!(read(&dir.path().join("nope"), Records::Number).is_err());
        assert!(
            read(folder(&["README.md"]).path(), Records::Number)
                .unwrap_err()
                .to_string()
                .starts_with("no migration files")
        );
    }

    #[test]
    fn prisma_entity_framework_and_typeorm_folders() {
        let prisma = folder(&[
            "20230101000000_init/migration.sql",
            "20230301000000_add_orders/migration.sql",
            "migration_lock.toml",
        ]);
        assert_eq!(read(prisma.path(), Records::Stem).unwrap().newest, "20230301000000_add_orders");
        let ef = folder(&[
            "20230101000000_Init.cs",
            "20230101000000_Init.Designer.cs",
            "20230301000000_AddOrders.cs",
            "20230301000000_AddOrders.Designer.cs",
            "ShopContextModelSnapshot.cs",
        ]);
        let ef = read(ef.path(), Records::Stem).unwrap();
        assert_eq!(ef.history, ["20230101000000_Init.cs", "20230301000000_AddOrders.cs"]);
        assert_eq!(ef.newest, "20230301000000_AddOrders");
        let typeorm = folder(&["1680000000000-add-users.ts", "1690000000000-orders.ts"]);
        std::fs::write(
            typeorm.path().join("1690000000000-orders.ts"),
            "export class CreateOrders1690000000000 implements MigrationInterface {\n",
        )
        .unwrap();
        let read_typeorm = read(typeorm.path(), Records::TypeormClass).unwrap();
        assert_eq!(read_typeorm.newest, "CreateOrders1690000000000", "the class the file exports");
        assert_eq!(read_typeorm.history, ["1680000000000-add-users.ts", "1690000000000-orders.ts"]);
    }
}

//! The console as people meet it: the checks' table fits a 60-column terminal (`COLUMNS`), in
//! colour where colour is forced (`CLICOLOR_FORCE`) and never in a pipe otherwise; several
//! drills end with a line of totals; a closed stdout (`pgdrill run | head -1`) ends quietly
//! with the drill's own exit code, not a panic.

use std::process::{Command, Stdio};

use crate::fleet_gate::text;
use crate::util::{Scratch, pg15_dump, root};

const ITEMS: &str = "CREATE TABLE public.items (id integer NOT NULL, name text);\n\
                     COPY public.items (id, name) FROM stdin;\n1\tone\n2\ttwo\n3\tthree\n\\.\n";

/// `scenarios/NAME.toml`: the three-row dump, with a row count and a check whose words are long.
fn scenario(scratch: &Scratch, name: &str) {
    scratch.scenario(
        &format!("scenarios/{name}.toml"),
        &format!(
            "name = \"{name}\"\n[source]\npath = \"../items.sql\"\n[checks.row_counts.tables]\n\"public.items\" = 3\n\
             [[checks.sql]]\nname = \"every item is named, as the application's listing page expects of each of them\"\n\
             query = \"SELECT count(*) FROM public.items WHERE name IS NOT NULL\"\nexpect = 3\n"
        ),
    );
}

/// `text` without its ANSI colour codes.
fn plain(text: &str) -> String {
    regex::Regex::new("\x1b\\[[0-9;]*m").unwrap().replace_all(text, "").into_owned()
}

#[test]
fn the_table_fits_the_terminal_in_colour_and_several_drills_end_with_totals() {
    let scratch = Scratch::new();
    scratch.write("items.sql", pg15_dump(ITEMS));
    scenario(&scratch, "console-one");
    scenario(&scratch, "console-two");
    let run = |env: &[(&str, &str)]| {
        Command::new(env!("CARGO_BIN_EXE_pgdrill"))
            .args(["run", &scratch.path("scenarios").display().to_string()])
            .args(["--reports", &scratch.path("reports").display().to_string()])
            .env_remove("NO_COLOR")
            .env_remove("CLICOLOR_FORCE")
            .envs(env.iter().copied())
            .current_dir(root())
            .output()
            .expect("run pgdrill")
    };
    let coloured = run(&[("COLUMNS", "60"), ("CLICOLOR_FORCE", "1")]);
    assert_eq!(coloured.status.code(), Some(0), "{}", text(&coloured));
    let stdout = String::from_utf8_lossy(&coloured.stdout);
    assert!(stdout.contains("\x1b["), "colour, forced: {stdout}");
    let shown = plain(&stdout);
    let widest = shown.lines().map(|l| l.chars().count()).max().unwrap_or_default();
    let table: Vec<&str> = shown.lines().filter(|l| l.starts_with(['╭', '│', '├', '╰'])).collect();
    assert!(table.iter().all(|l| l.chars().count() <= 60), "a row wider than 60 columns:\n{shown}");
    assert!(table.len() > 8 && widest > 0, "{shown}");
    assert!(shown.lines().last() == Some("2 drills run: 2 passed"), "the totals come last:\n{shown}");

    // In a pipe, unforced: no colour, and the table is as wide as its cells.
    let piped = run(&[]);
    assert_eq!(piped.status.code(), Some(0), "{}", text(&piped));
    assert!(!String::from_utf8_lossy(&piped.stdout).contains('\x1b'), "{}", text(&piped));
    assert!(!String::from_utf8_lossy(&piped.stderr).contains('\x1b'), "{}", text(&piped));
}

#[test]
fn a_closed_stdout_ends_quietly_with_the_drills_exit_code() {
    let scratch = Scratch::new();
    scratch.write("items.sql", pg15_dump(ITEMS));
    scenario(&scratch, "console-pipe");
    let mut child = Command::new(env!("CARGO_BIN_EXE_pgdrill"))
        .args(["run", &scratch.path("scenarios/console-pipe.toml").display().to_string()])
        .args(["--out", &scratch.path("out").display().to_string()])
        .current_dir(root())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run pgdrill");
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked") && !stderr.contains("Broken pipe"), "{stderr}");
    assert!(scratch.path("out/drill.json").is_file(), "the reports are written: {stderr}");
}

//! The reference page of commands and flags, walked from the clap parser ([`Cli`]): every
//! command that is not hidden, its about text, usage, and each argument with its help, default,
//! possible values and environment variable.

use std::fmt::Write;

use clap::CommandFactory;

use super::GENERATED;
use crate::cli::Cli;

pub(super) fn page() -> String {
    let mut root = Cli::command();
    root.build();
    let mut out = format!("{GENERATED}\n\n# Commands and flags\n\n");
    out.push_str(
        "Every command of `pgdrill` and each of its flags, generated from its command-line parser\n\
         (`pgdrill <command> --help` says the same). Exit codes: see\n\
         [Bad input and exit codes](../guide/bad-input.md#exit-codes).\n\n",
    );
    let commands: Vec<_> = visible(&root).collect();
    for command in &commands {
        let _ =
            writeln!(out, "- [`pgdrill {0}`](#pgdrill-{0}): {1}.\n", command.get_name(), super::prose(&about(command)));
    }
    for command in commands {
        section(&mut out, &["pgdrill"], command);
    }
    out
}

/// The subcommands a user sees: not hidden, not clap's own `help`.
fn visible(command: &clap::Command) -> impl Iterator<Item = &clap::Command> {
    command.get_subcommands().filter(|c| !c.is_hide_set() && c.get_name() != "help")
}

/// A command's one-line about text.
fn about(command: &clap::Command) -> String {
    command.get_about().map(|a| a.to_string()).unwrap_or_default()
}

/// One command's section, then its subcommands'.
fn section(out: &mut String, parents: &[&str], command: &clap::Command) {
    let mut path = parents.to_vec();
    path.push(command.get_name());
    let _ = write!(out, "\n## `{}` {{#{}}}\n\n", path.join(" "), path.join("-"));
    let text = command.get_long_about().or(command.get_about()).map(|a| a.to_string()).unwrap_or_default();
    if !text.is_empty() {
        let _ = write!(out, "{}\n\n", super::prose(text.trim()));
    }
    let usage = command.clone().render_usage().to_string();
    let usage = usage.trim().trim_start_matches("Usage:").trim();
    let _ = write!(out, "```text\n{usage}\n```\n\n");
    let arguments: Vec<_> = command
        .get_arguments()
        .filter(|a| !a.is_hide_set() && !["help", "version"].contains(&a.get_id().as_str()))
        .collect();
    for argument in arguments {
        // A blank line after each: a loose list, one item a paragraph to read on its own.
        let _ = writeln!(out, "- {}\n", argument_line(argument));
    }
    let subcommands: Vec<_> = visible(command).collect();
    if !subcommands.is_empty() {
        let names: Vec<String> =
            subcommands.iter().map(|c| format!("[`{0}`](#{1}-{0})", c.get_name(), path.join("-"))).collect();
        let _ = writeln!(out, "\nIts commands: {}.", names.join(", "));
    }
    for subcommand in subcommands {
        section(out, &path, subcommand);
    }
}

/// One argument: how it is written, its help, default, possible values and variable.
fn argument_line(argument: &clap::Arg) -> String {
    let values: Vec<String> = argument.get_value_names().unwrap_or_default().iter().map(|v| format!("<{v}>")).collect();
    let takes_value = argument.get_num_args().is_some_and(|n| n.takes_values());
    let mut written = match (argument.get_long(), argument.get_short()) {
        (Some(long), Some(short)) => format!("-{short}, --{long}"),
        (Some(long), None) => format!("--{long}"),
        (None, Some(short)) => format!("-{short}"),
        (None, None) => values.join(" "),
    };
    if !argument.is_positional() && takes_value {
        let separator = if argument.is_require_equals_set() { "=" } else { " " };
        let value = values.join(" ");
        written = if argument.get_num_args().is_some_and(|n| n.min_values() == 0) {
            format!("{written}[{separator}{value}]")
        } else {
            format!("{written}{separator}{value}")
        };
    }
    let help = argument.get_long_help().or(argument.get_help()).map(|h| h.to_string()).unwrap_or_default();
    let mut line = format!("`{written}`");
    if argument.is_required_set() {
        line.push_str(" (required)");
    }
    if !help.is_empty() {
        let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
        let stop = if help.ends_with(['.', '?', '!']) { "" } else { "." };
        let _ = write!(line, ": {}{stop}", super::prose(&help));
    }
    let possible: Vec<String> = argument
        .get_possible_values()
        .iter()
        .filter(|v| !v.is_hide_set())
        .map(|v| match v.get_help() {
            Some(h) => format!("`{}` ({})", v.get_name(), super::prose(&h.to_string())),
            None => format!("`{}`", v.get_name()),
        })
        .collect();
    if !possible.is_empty() && argument.get_action().takes_values() {
        let _ = write!(line, " Values: {}.", possible.join(", "));
    }
    let defaults: Vec<String> =
        argument.get_default_values().iter().map(|d| format!("`{}`", d.to_string_lossy())).collect();
    if !defaults.is_empty() && argument.get_action().takes_values() {
        let _ = write!(line, " Default: {}.", defaults.join(" "));
    }
    if let Some(env) = argument.get_env() {
        let _ = write!(line, " Environment: `{}`.", env.to_string_lossy());
    }
    line
}

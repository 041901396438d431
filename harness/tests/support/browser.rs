//! A real browser for the tests of pgdrill's web pages (`report.html`, the fleet's page): Debian's
//! headless Chromium opens a page with no network (in a network namespace of its own, under
//! bubblewrap, with only a loopback), saves a screenshot, prints the page to PDF, and poppler's
//! tools read the PDF back: its text, its page count, and the words of the page that it does not
//! print (what a table too wide for the page loses). Test binaries include this file with
//! `#[path]`. A missing Chromium or poppler fails the test that asks for them: never a skip.

#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// What [`print`] made of a page.
#[derive(Debug)]
pub struct Printed {
    /// The page printed to PDF (A4 unless the page's `@page` says otherwise).
    pub pdf: PathBuf,
    /// A screenshot of the page's top, as a screen shows it.
    pub png: PathBuf,
    /// The PDF's text (`pdftotext -layout`: a table's row on one line while it fits).
    pub text: String,
    /// The PDF's page count (`pdfinfo`).
    pub pages: usize,
    /// Each word of the page's text that the PDF does not hold whole (a table too wide for the
    /// page loses what lies beyond the margin: Chromium prints nothing there).
    pub lost: Vec<String>,
}

/// How long Chromium may take to open and print one page.
const TIMEOUT: Duration = Duration::from_secs(120);

/// Opens `html` in headless Chromium (no network: in a network namespace of its own), saves a
/// screenshot and prints it to PDF in `out`; `text` is the PDF's text (pdftotext), `pages` its
/// page count (pdfinfo), `lost` the words of the page's text missing from the PDF's: what a
/// table that does not fit loses.
pub fn print(html: &Path, out: &Path) -> Printed {
    for (tool, package) in [("chromium", "chromium"), ("bwrap", "bubblewrap"), ("pdftotext", "poppler-utils")] {
        assert!(
            which(tool),
            "`{tool}` is not installed, and the browser tests need it (they never skip): apt-get install -y {package} \
             (Debian's chromium, bubblewrap and poppler-utils)"
        );
    }
    let html = std::fs::canonicalize(html).unwrap_or_else(|e| panic!("no page {}: {e}", html.display()));
    std::fs::create_dir_all(out).unwrap_or_else(|e| panic!("cannot make {}: {e}", out.display()));
    let stem = html.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "page".into());
    let pdf = out.join(format!("{stem}.pdf"));
    let png = out.join(format!("{stem}.png"));
    for stale in [&pdf, &png] {
        let _ = std::fs::remove_file(stale);
    }
    chromium(&html, &format!("--screenshot={}", png.display()), &png, WINDOW);
    chromium(&html, &format!("--print-to-pdf={}", pdf.display()), &pdf, WINDOW);
    let info = run(Command::new("pdfinfo").arg(&pdf));
    let pages = info
        .lines()
        .find_map(|l| l.strip_prefix("Pages:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("pdfinfo gave no page count for {}:\n{info}", pdf.display()));
    let text = run(Command::new("pdftotext").arg("-layout").arg(&pdf).arg("-"));
    let raw = run(Command::new("pdftotext").arg("-raw").arg(&pdf).arg("-"));
    let page = std::fs::read_to_string(&html).unwrap_or_else(|e| panic!("cannot read {}: {e}", html.display()));
    Printed { lost: lost(&page, &raw), pdf, png, text, pages }
}

/// The window a page is opened in, `width,height` in pixels.
const WINDOW: &str = "1280,1800";

/// Opens `html` in headless Chromium as [`print`] does, in a window `width` by `height` pixels,
/// and saves a screenshot of it as `png`.
pub fn screenshot(html: &Path, png: &Path, width: u32, height: u32) {
    assert!(
        which("chromium") && which("bwrap"),
        "`chromium` or `bwrap` is not installed: apt-get install -y chromium bubblewrap"
    );
    let html = std::fs::canonicalize(html).unwrap_or_else(|e| panic!("no page {}: {e}", html.display()));
    let _ = std::fs::remove_file(png);
    chromium(&html, &format!("--screenshot={}", png.display()), png, &format!("{width},{height}"));
}

/// Runs Chromium on `html` with `action` (a screenshot or a print), which writes `made`, in a
/// sandbox of bubblewrap: a network namespace with only a loopback, and a PID namespace that
/// takes every process Chromium started with it when it ends (none is left running), a
/// temporary profile.
fn chromium(html: &Path, action: &str, made: &Path, window: &str) {
    let profile = tempfile::Builder::new().prefix("pgdrill-chromium-").tempdir().expect("a profile folder");
    let mut command = Command::new("bwrap");
    command
        .args(["--dev-bind", "/", "/", "--proc", "/proc", "--unshare-net", "--unshare-pid", "--die-with-parent"])
        .args(["--", "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"])
        .args(["--no-default-browser-check", "--disable-background-networking", "--disable-component-update"])
        .args(["--disable-sync", "--disable-extensions", "--disable-default-apps", "--mute-audio"])
        .args(["--hide-scrollbars", &format!("--window-size={window}"), "--no-pdf-header-footer"])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(action)
        .arg(format!("file://{}", html.display()))
        .env("HOME", profile.path())
        .env("XDG_CONFIG_HOME", profile.path())
        .env("XDG_CACHE_HOME", profile.path())
        .env("DBUS_SESSION_BUS_ADDRESS", "disabled:")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap_or_else(|e| panic!("cannot start bwrap chromium: {e}"));
    let started = Instant::now();
    while child.try_wait().expect("wait for chromium").is_none() {
        if started.elapsed() > TIMEOUT {
            // bwrap is the PID namespace's parent: its end ends Chromium and all it started.
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish {action} of {} in {TIMEOUT:?}", html.display());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let output = child.wait_with_output().expect("chromium's output");
    let left = processes_naming(&profile.path().display().to_string());
    assert!(left.is_empty(), "chromium left processes running: {left:?}");
    assert!(
        output.status.success() && made.is_file(),
        "chromium {action} of {} failed ({}):\n{}",
        html.display(),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Each word of `html`'s text (outside its head and the tooltips of its pictures) that `printed`
/// (`pdftotext -raw`: the PDF's text in the order it was drawn) does not hold, whitespace aside.
/// Chromium draws nothing in a page's margins: of a table too wide, it prints a word cut by the
/// right margin in part and what lies beyond not at all. A word the page breaks over two lines
/// (`overflow-wrap`) is drawn in one piece after the other, so it is found whole.
fn lost(html: &str, printed: &str) -> Vec<String> {
    let squeeze = |s: &str| s.chars().filter(|c| !c.is_whitespace()).collect::<String>();
    let printed = squeeze(printed);
    let mut lost: Vec<String> =
        page_text(html).split_whitespace().filter(|word| !printed.contains(word)).map(str::to_owned).collect();
    lost.dedup();
    lost
}

/// The text an HTML page shows: its tags, its head and the `<title>` and `<desc>` of its
/// pictures (tooltips, never printed) left out, its character references read.
fn page_text(html: &str) -> String {
    let body = html.find("<body").map_or(html, |at| &html[at..]);
    let mut text = String::new();
    let mut rest = body;
    // The element whose text is never shown that the scan is in: `title`, `desc`, `style`, `script`.
    let mut hidden: Option<String> = None;
    while let Some(open) = rest.find('<') {
        if hidden.is_none() {
            text.push_str(&rest[..open]);
        }
        let close = rest[open..].find('>').map_or(rest.len(), |at| open + at + 1);
        let name: String = rest[open + 1..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '/').collect();
        match &hidden {
            None if matches!(name.as_str(), "title" | "desc" | "style" | "script") => hidden = Some(format!("/{name}")),
            Some(end) if *end == name => hidden = None,
            _ => {}
        }
        text.push(' ');
        rest = &rest[close..];
    }
    text.push_str(rest);
    unescape(&text)
}

/// `text` with HTML's character references read (the few pgdrill's pages write, and numeric ones).
fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let reference = rest[at + 1..].find(';').map(|end| &rest[at + 1..at + 1 + end]);
        let read = reference.and_then(|r| match r {
            "lt" => Some('<'),
            "gt" => Some('>'),
            "amp" => Some('&'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            "nbsp" => Some(' '),
            _ => r
                .strip_prefix("#x")
                .map(|hex| u32::from_str_radix(hex, 16))
                .or_else(|| r.strip_prefix('#').map(str::parse))
                .and_then(Result::ok)
                .and_then(char::from_u32),
        });
        match (reference, read) {
            (Some(r), Some(c)) => {
                out.push(c);
                rest = &rest[at + r.len() + 2..];
            }
            _ => {
                out.push('&');
                rest = &rest[at + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The processes whose command line names `text` (Chromium's, by its profile folder).
fn processes_naming(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else { continue };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(text) {
            found.push(format!("{}: {}", entry.file_name().to_string_lossy(), cmdline.trim()));
        }
    }
    found
}

/// Whether `tool` is on the PATH.
fn which(tool: &str) -> bool {
    std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()))
        .unwrap_or(false)
}

/// The standard output of `command`, which must succeed.
fn run(command: &mut Command) -> String {
    let output: Output = command.output().unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

//! The docs' pictures of the reports (`docs/src/pictures/`) show the pages as pgdrill renders
//! them now. Each is taken by headless Chromium from a page the library's snapshot tests pin
//! (`report_html`, `fleet_html`: insta fails when the rendering changes), and
//! `docs/src/pictures/sources.sha256` holds, for each picture, the digest of the page and the
//! window it was taken from. A page that changed makes its picture stale, and this test fails
//! until the pictures are taken again:
//!
//! ```sh
//! PGDRILL_UPDATE_PICTURES=1 cargo nextest run --test drills -E 'test(pictures::)'
//! ```

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::util::{Scratch, root};

/// One picture: the snapshot of the page it shows, how it is taken, and its file.
struct Picture {
    /// The picture, under docs/src/pictures/.
    name: &'static str,
    /// The insta snapshot of the page, from the workspace's root.
    snapshot: &'static str,
    shot: Shot,
}

/// How a picture is taken.
#[derive(Debug, Clone, Copy)]
enum Shot {
    /// The top of the page on a screen this wide and high.
    Screen { width: u32, height: u32 },
    /// The first page of its print to PDF (A4), at this resolution.
    FirstPrintedPage { dpi: u32 },
}

const PICTURES: [Picture; 3] = [
    Picture {
        name: "report-html.png",
        snapshot: "harness/src/report/snapshots/pgdrill__report__snapshots__report_html.snap",
        shot: Shot::Screen { width: 1100, height: 1400 },
    },
    Picture {
        name: "report-html-printed.png",
        snapshot: "harness/src/report/snapshots/pgdrill__report__snapshots__report_html.snap",
        shot: Shot::FirstPrintedPage { dpi: 60 },
    },
    Picture {
        name: "fleet-html.png",
        snapshot: "harness/src/report/fleet_view/snapshots/pgdrill__report__fleet_view__snapshot__fleet_html.snap",
        shot: Shot::Screen { width: 1200, height: 1300 },
    },
];

fn folder() -> PathBuf {
    root().join("docs/src/pictures")
}

/// The page an insta snapshot holds: what follows its header.
fn page(snapshot: &str) -> String {
    let text = std::fs::read_to_string(root().join(snapshot)).unwrap_or_else(|e| panic!("{snapshot}: {e}"));
    let body = text.strip_prefix("---\n").and_then(|t| t.split_once("\n---\n")).map(|(_, body)| body);
    body.unwrap_or_else(|| panic!("{snapshot} has no insta header")).to_owned()
}

/// The digest a picture is taken from: its page and how it is taken.
fn source_digest(picture: &Picture) -> String {
    let mut hash = Sha256::new();
    hash.update(page(picture.snapshot));
    hash.update(format!("{:?}", picture.shot));
    format!("{:x}", hash.finalize())
}

/// The lines of sources.sha256: `DIGEST  PICTURE  SNAPSHOT`.
fn sources_line(picture: &Picture) -> String {
    format!("{}  {}  {}", source_digest(picture), picture.name, picture.snapshot)
}

/// Takes `picture` with Chromium into `png`.
fn take(picture: &Picture, scratch: &Scratch, png: &Path) {
    let html = scratch.path(&picture.name.replace(".png", ".html"));
    std::fs::write(&html, page(picture.snapshot)).unwrap();
    match picture.shot {
        Shot::Screen { width, height } => crate::browser::screenshot(&html, png, width, height),
        Shot::FirstPrintedPage { dpi } => {
            let printed = crate::browser::print(&html, &scratch.path("printed"));
            let stem = png.with_extension("");
            let made = std::process::Command::new("pdftoppm")
                .args(["-png", "-singlefile", "-f", "1", "-l", "1", "-r", &dpi.to_string()])
                .arg(&printed.pdf)
                .arg(&stem)
                .status()
                .expect("run pdftoppm (poppler-utils)");
            assert!(made.success() && png.is_file(), "pdftoppm made no {}", png.display());
        }
    }
}

/// A PNG's width and height, from its header.
fn dimensions(png: &[u8]) -> (u32, u32) {
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 24, "not a PNG");
    let be = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().unwrap());
    (be(16), be(20))
}

#[test]
fn the_docs_pictures_show_the_reports_as_rendered_now() {
    let listed = std::fs::read_to_string(folder().join("sources.sha256")).unwrap_or_default();
    if std::env::var_os("PGDRILL_UPDATE_PICTURES").is_some() {
        let scratch = Scratch::new();
        for picture in &PICTURES {
            take(picture, &scratch, &folder().join(picture.name));
        }
        let lines: Vec<String> = PICTURES.iter().map(sources_line).collect();
        std::fs::write(folder().join("sources.sha256"), lines.join("\n") + "\n").unwrap();
        return;
    }
    let update = "take them again: PGDRILL_UPDATE_PICTURES=1 cargo nextest run --test drills -E 'test(pictures::)'";
    for picture in &PICTURES {
        assert!(
            listed.lines().any(|line| line == sources_line(picture)),
            "docs/src/pictures/{} is stale: its page or how it is taken changed since it was taken; {update}",
            picture.name
        );
        let png = std::fs::read(folder().join(picture.name)).unwrap_or_else(|e| panic!("{}: {e}", picture.name));
        let (width, height) = dimensions(&png);
        if let Shot::Screen { width: w, height: h } = picture.shot {
            assert_eq!((width, height), (w, h), "{} is the window's size", picture.name);
        }
        assert!(width > 300 && height > 300, "{}: {width}x{height}", picture.name);
    }
    let docs = std::fs::read_to_string(root().join("docs/src/guide/html-report.md")).unwrap()
        + &std::fs::read_to_string(root().join("docs/src/guide/fleet.md")).unwrap();
    for picture in &PICTURES {
        assert!(docs.contains(&format!("../pictures/{}", picture.name)), "no docs page shows {}", picture.name);
    }
}

//! Every scenario under `scenarios/` as a test, through the same entry point a user's own
//! repository calls ([`pgdrill::trials::Drills`]): `drill::plur`,
//! `drill::examples::plur_pre_migration`, filtered with `cargo nextest run -E 'test(/plur/)'` or
//! `cargo test --test scenarios -- drill::caracal`, and with `PGDRILL_SCENARIOS`, `PGDRILL_TAGS`
//! and `PGDRILL_REPORTS`.

fn main() -> std::process::ExitCode {
    pgdrill::trials::Drills::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios")).main()
}

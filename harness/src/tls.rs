//! One TLS stack for every client pgdrill builds: rustls on the ring provider, installed once as
//! the process's default for the clients that take it from there (HTTPS and S3 downloads, the
//! app's API). sqlx and the Docker client bring their own ring-backed configuration. With one
//! provider, aws-lc (and its C build, the slowest part of a fresh build) stays out.

/// Installs the ring provider as the process default, once; a default someone else installed
/// first is kept.
pub fn install() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

//! TLS for the application's sessions on a server target, as libpq reads `sslmode`: `disable`
//! sends nothing encrypted; `allow`, `prefer` and `require` encrypt without checking the
//! server's certificate (libpq's own meaning of them: a certificate is checked from `verify-ca`
//! on); `verify-ca` and `verify-full` check it against the URL's `sslrootcert` (and, for
//! `verify-full`, that it names the host). The TLS itself is rustls on the ring provider, like
//! every other client of pgdrill's ([`crate::tls`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sqlx::postgres::PgSslMode;
use tokio_postgres::config::SslMode;

/// How a session encrypts, and the connector that does it.
pub(super) struct Tls {
    pub mode: SslMode,
    pub connector: tokio_postgres_rustls::MakeRustlsConnect,
}

/// Why TLS for the application's sessions cannot be set up.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TlsError {
    /// rustls refused its own safe protocol versions with the crypto provider.
    #[error("cannot set up TLS with rustls's safe protocol versions")]
    Versions {
        #[source]
        source: rustls::Error,
    },
    /// A mode that checks the server's certificate, and no certificate to check it with.
    #[error(
        "the server's URL asks for sslmode=verify-ca or verify-full and names no sslrootcert: the application's sessions need the certificate to check the server with"
    )]
    NoRootCert,
    /// The `sslrootcert` file cannot be read as PEM certificates.
    #[error("cannot read sslrootcert `{}`", path.display())]
    RootCertPem {
        path: PathBuf,
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    /// A certificate of the `sslrootcert` file is not one rustls takes as a root.
    #[error("cannot read sslrootcert `{}`", path.display())]
    RootCert {
        path: PathBuf,
        #[source]
        source: rustls::Error,
    },
}

/// The TLS for `mode` (and `root_cert`, for the modes that check the server's certificate).
pub(super) fn for_mode(mode: PgSslMode, root_cert: Option<&Path>) -> Result<Tls, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|source| TlsError::Versions { source })?;
    let (ssl, config) = match mode {
        // Never used: tokio-postgres does not start TLS with `disable`.
        PgSslMode::Disable => {
            (SslMode::Disable, builder.with_root_certificates(rustls::RootCertStore::empty()).with_no_client_auth())
        }
        PgSslMode::Allow | PgSslMode::Prefer | PgSslMode::Require => {
            let verifier = Arc::new(Unchecked(provider));
            let config = builder.dangerous().with_custom_certificate_verifier(verifier).with_no_client_auth();
            (if matches!(mode, PgSslMode::Require) { SslMode::Require } else { SslMode::Prefer }, config)
        }
        PgSslMode::VerifyCa | PgSslMode::VerifyFull => {
            let path = root_cert.ok_or(TlsError::NoRootCert)?;
            (SslMode::Require, builder.with_root_certificates(roots(path)?).with_no_client_auth())
        }
    };
    Ok(Tls { mode: ssl, connector: tokio_postgres_rustls::MakeRustlsConnect::new(config) })
}

/// The certificates of the PEM file `path`.
fn roots(path: &Path) -> Result<rustls::RootCertStore, TlsError> {
    use rustls::pki_types::pem::PemObject;
    let pem = |source| TlsError::RootCertPem { path: path.to_owned(), source };
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path).map_err(pem)? {
        roots.add(cert.map_err(pem)?).map_err(|source| TlsError::RootCert { path: path.to_owned(), source })?;
    }
    Ok(roots)
}

/// libpq's `require`: the connection is encrypted and the handshake's signatures checked, but
/// not who signed the server's certificate.
#[derive(Debug)]
struct Unchecked(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

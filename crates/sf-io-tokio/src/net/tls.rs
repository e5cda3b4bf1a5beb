//! The rustls client configuration for `wss::`: which roots are trusted
//! (`tls_roots` or the system's), or no verification at all
//! (`tls_verify=unsafe_off`).
//!
//! The ring provider is named explicitly: the library must not depend on a
//! process-wide default provider being installed (and must not install one
//! behind the application's back).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use sf_core::config::{TlsConfig, TlsVerify};

/// Why the TLS client configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    /// The `tls_roots` file could not be read.
    #[error("cannot read tls_roots file {path:?}: {source}")]
    RootsUnreadable {
        /// The configured path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The `tls_roots` file is not valid PEM.
    #[error("tls_roots file {path:?} is not a valid PEM file: {source}")]
    RootsNotPem {
        /// The configured path.
        path: PathBuf,
        /// The PEM parser's error.
        source: rustls::pki_types::pem::Error,
    },
    /// The `tls_roots` file holds no `CERTIFICATE` block.
    #[error("tls_roots file {path:?} holds no PEM CERTIFICATE block")]
    RootsEmpty {
        /// The configured path.
        path: PathBuf,
    },
    /// A certificate in `tls_roots` cannot be a trust anchor.
    #[error(
        "certificate #{index} in tls_roots file {path:?} is not a usable CA certificate: {source}"
    )]
    RootRejected {
        /// The configured path.
        path: PathBuf,
        /// Zero-based index of the certificate in the file.
        index: usize,
        /// Why rustls rejected it.
        source: rustls::Error,
    },
    /// `tls_roots_password` was given: this client reads `tls_roots` as a
    /// PEM file, which has no password (a password-protected JKS or PKCS#12
    /// store is not supported).
    #[error(
        "tls_roots_password is set, but tls_roots is read as a PEM file of CA certificates, \
         which has no password; convert the trust store to PEM and drop the password"
    )]
    RootsPasswordUnsupported,
    /// The ring provider refused the default protocol versions (a build
    /// defect rather than a configuration error).
    #[error("the TLS provider refused the default protocol versions: {0}")]
    Provider(rustls::Error),
}

/// The TLS client configuration for one `Config`, built once and shared by
/// every connection attempt.
#[derive(Debug, Clone)]
pub(crate) struct TlsSetup {
    /// The rustls configuration handed to every handshake.
    pub(crate) client: Arc<ClientConfig>,
    /// `tls_verify=unsafe_off`: each connection logs a WARN.
    pub(crate) verify_off: bool,
}

impl TlsSetup {
    /// Builds the rustls configuration for `tls`. Reads the `tls_roots` file
    /// or the system trust store (blocking file I/O, done once).
    pub(crate) fn new(tls: &TlsConfig) -> Result<TlsSetup, TlsSetupError> {
        if tls.roots_password.is_some() {
            return Err(TlsSetupError::RootsPasswordUnsupported);
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(TlsSetupError::Provider)?;
        let client = match tls.verify {
            TlsVerify::UnsafeOff => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate { provider }))
                .with_no_client_auth(),
            TlsVerify::On => {
                let roots = match &tls.roots {
                    Some(path) => roots_from_pem_file(Path::new(path))?,
                    None => native_roots(),
                };
                builder.with_root_certificates(roots).with_no_client_auth()
            }
        };
        Ok(TlsSetup {
            client: Arc::new(client),
            verify_off: tls.verify == TlsVerify::UnsafeOff,
        })
    }
}

/// `tls_roots`: every `CERTIFICATE` block of a PEM file becomes a trust
/// anchor, replacing the system roots.
fn roots_from_pem_file(path: &Path) -> Result<RootCertStore, TlsSetupError> {
    let pem = std::fs::read(path).map_err(|source| TlsSetupError::RootsUnreadable {
        path: path.to_owned(),
        source,
    })?;
    let mut roots = RootCertStore::empty();
    for (index, cert) in CertificateDer::pem_slice_iter(&pem).enumerate() {
        let cert = cert.map_err(|source| TlsSetupError::RootsNotPem {
            path: path.to_owned(),
            source,
        })?;
        roots
            .add(cert)
            .map_err(|source| TlsSetupError::RootRejected {
                path: path.to_owned(),
                index,
                source,
            })?;
    }
    if roots.is_empty() {
        return Err(TlsSetupError::RootsEmpty {
            path: path.to_owned(),
        });
    }
    Ok(roots)
}

/// The system trust store. Unreadable or unparsable entries are logged and
/// skipped; an empty store is not an error here: every handshake then fails
/// at the `tls` stage with an unknown-issuer error that names the problem,
/// which the core classifies like any other TLS failure.
fn native_roots() -> RootCertStore {
    let found = rustls_native_certs::load_native_certs();
    for error in &found.errors {
        tracing::warn!(%error, "could not load a system root certificate");
    }
    let mut roots = RootCertStore::empty();
    let (added, ignored) = roots.add_parsable_certificates(found.certs);
    if ignored > 0 {
        tracing::warn!(ignored, "system root certificates rejected by rustls");
    }
    if added == 0 {
        tracing::warn!("no system root certificates found: every TLS handshake will fail");
    }
    roots
}

/// `tls_verify=unsafe_off`: any certificate chain and any name are accepted.
/// The handshake signatures are still checked against the presented
/// certificate, so the peer must at least hold the key of the certificate it
/// shows; this keeps the TLS session itself sound while trusting anyone.
#[derive(Debug)]
struct AcceptAnyCertificate {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for AcceptAnyCertificate {
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
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

//! SIP over TLS (RFC 3261 §26.2, RFC 5630; GEN-3): the listener's certificate, which a reload
//! swaps without touching open connections, and the verification of the servers stox connects
//! to (the system's trust store plus `sip.tls.ca_file`).
//!
//! ezk-sip-core runs the sockets (`listen_rustls`, `use_rustls_connector`); this module gives it
//! a `ServerConfig` whose certificate comes from a [`CertResolver`] and a `ClientConfig` whose
//! verifier is a [`Verifier`]. Both hold their current value behind a lock, so a reload changes
//! what the next handshake sees and nothing else.
//!
//! Crypto provider: ring, chosen explicitly (never the process default) so that the build has
//! one provider and no C toolchain beyond `cc`.

use crate::config::TlsConfig;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use std::path::Path;
use std::sync::{Arc, RwLock};
use tracing::{info, warn};

/// The crypto provider of every TLS config stox builds. rustls 0.23.48 deprecates ring's
/// provider for lacking post-quantum key exchange; aws-lc-rs has it but builds a large C
/// library (slow on our 2-core machines). SIP peers negotiate classical X25519/ECDHE today.
#[allow(deprecated)]
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Read a PEM certificate chain and its private key and check that they belong together.
pub fn load_certified_key(cert: &Path, key: &Path) -> Result<CertifiedKey, String> {
    let chain = read_certs(cert)?;
    if chain.is_empty() {
        return Err(format!("{}: no CERTIFICATE in the file", cert.display()));
    }
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        format!(
            "{}: no usable private key: {}",
            key.display(),
            pem_error(&e)
        )
    })?;
    CertifiedKey::from_der(chain, key_der, &provider()).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => format!(
            "{} does not match the certificate in {}",
            key.display(),
            cert.display()
        ),
        e => format!("{}: {e}", key.display()),
    })
}

/// Read a PEM file of CA certificates (at least one).
pub fn load_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = read_certs(path)?;
    if certs.is_empty() {
        return Err(format!("{}: no CERTIFICATE in the file", path.display()));
    }
    let mut store = RootCertStore::empty();
    for c in &certs {
        store
            .add(c.clone())
            .map_err(|e| format!("{}: not a usable CA certificate: {e}", path.display()))?;
    }
    Ok(certs)
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    // Read first, so a missing or unreadable file says so instead of "no certificate".
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: {}", path.display(), pem_error(&e)))
}

fn pem_error(e: &rustls_pki_types::pem::Error) -> String {
    match e {
        rustls_pki_types::pem::Error::Io(io) => io.to_string(),
        rustls_pki_types::pem::Error::NoItemsFound => "no PEM item found".into(),
        other => format!("bad PEM ({other:?})"),
    }
}

/// SHA-256 of a DER certificate as colon-separated upper-case hex (`openssl x509 -fingerprint
/// -sha256` prints the same).
pub fn fingerprint(cert: &CertificateDer<'_>) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(cert.as_ref());
    digest
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The listener's certificate: the current one for every new handshake.
#[derive(Debug, Default)]
pub struct CertResolver {
    current: RwLock<Option<Arc<CertifiedKey>>>,
}

impl CertResolver {
    /// Serve `key` from the next handshake on.
    pub fn set(&self, key: CertifiedKey) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(key));
    }

    /// The certificate served now.
    pub fn current(&self) -> Option<Arc<CertifiedKey>> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Fingerprint of the leaf certificate served now.
    pub fn fingerprint(&self) -> Option<String> {
        self.current()
            .and_then(|k| k.cert.first().map(|c| fingerprint(c)))
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current()
    }
}

/// Verifies servers with the WebPKI rules (chain to a trusted root, name matches, dates) against
/// the current set of roots; a reload replaces the set.
#[derive(Debug)]
pub struct Verifier {
    provider: Arc<CryptoProvider>,
    inner: RwLock<Option<Arc<WebPkiServerVerifier>>>,
}

impl Verifier {
    fn new(provider: Arc<CryptoProvider>) -> Verifier {
        Verifier {
            provider,
            inner: RwLock::new(None),
        }
    }

    fn set(&self, v: Option<Arc<WebPkiServerVerifier>>) {
        *self.inner.write().unwrap_or_else(|e| e.into_inner()) = v;
    }

    fn current(&self) -> Result<Arc<WebPkiServerVerifier>, rustls::Error> {
        self.inner
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer,
            ))
    }
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.current()?.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )
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

/// What a reload will install, loaded and checked before anything changes.
pub struct Prepared {
    key: Option<CertifiedKey>,
    verifier: Option<Arc<WebPkiServerVerifier>>,
    roots: usize,
}

/// The TLS state of a running gateway.
#[derive(Debug)]
pub struct Tls {
    provider: Arc<CryptoProvider>,
    resolver: Arc<CertResolver>,
    verifier: Arc<Verifier>,
}

impl Tls {
    /// Load the certificate (if configured) and the trust roots.
    pub fn new(cfg: &TlsConfig) -> Result<Tls, String> {
        let provider = provider();
        let tls = Tls {
            resolver: Arc::new(CertResolver::default()),
            verifier: Arc::new(Verifier::new(provider.clone())),
            provider,
        };
        let prepared = tls.prepare(cfg)?;
        tls.commit(prepared);
        Ok(tls)
    }

    /// Read the files of `cfg` (every time: a renewed certificate keeps its path) without
    /// changing anything yet.
    pub fn prepare(&self, cfg: &TlsConfig) -> Result<Prepared, String> {
        let key = match (&cfg.cert_file, &cfg.key_file) {
            (Some(c), Some(k)) => Some(load_certified_key(c, k)?),
            _ => None,
        };
        let mut roots = RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        for e in &native.errors {
            warn!(error = %e, "system trust store: some certificates could not be read");
        }
        let (system, _) = roots.add_parsable_certificates(native.certs);
        if let Some(ca) = &cfg.ca_file {
            for c in load_ca_file(ca)? {
                roots.add(c).map_err(|e| format!("{}: {e}", ca.display()))?;
            }
        }
        let count = roots.len();
        let verifier = if roots.is_empty() {
            warn!("no trusted CA certificates (system store empty, no sip.tls.ca_file): outbound TLS will fail");
            None
        } else {
            Some(
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), self.provider.clone())
                    .build()
                    .map_err(|e| format!("trust roots: {e}"))?,
            )
        };
        tracing::debug!(system, total = count, "TLS trust roots loaded");
        Ok(Prepared {
            key,
            verifier,
            roots: count,
        })
    }

    /// Install what [`Tls::prepare`] loaded; returns whether the listener's certificate changed.
    pub fn commit(&self, p: Prepared) -> bool {
        self.verifier.set(p.verifier);
        let before = self.resolver.fingerprint();
        if let Some(key) = p.key {
            self.resolver.set(key);
        }
        let after = self.resolver.fingerprint();
        if let Some(fp) = &after {
            if before.as_ref() != Some(fp) {
                info!(sha256 = %fp, roots = p.roots, "TLS certificate in use for new connections");
            }
        }
        before.is_some() && before != after
    }

    /// The listener's certificate resolver (for tests and status).
    pub fn resolver(&self) -> &Arc<CertResolver> {
        &self.resolver
    }

    /// The acceptor for ezk's TLS listeners: every handshake asks the resolver.
    pub fn acceptor(&self) -> Result<tokio_rustls::TlsAcceptor, String> {
        let config = rustls::ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_no_client_auth()
            .with_cert_resolver(self.resolver.clone());
        Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
    }

    /// The connector for ezk's outbound TLS connections.
    pub fn connector(&self) -> Result<tokio_rustls::TlsConnector, String> {
        // `dangerous()` is rustls' door to a custom verifier; ours is the WebPKI verifier
        // behind a lock, so every check of the default one still happens.
        let config = rustls::ClientConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .dangerous()
            .with_custom_certificate_verifier(self.verifier.clone())
            .with_no_client_auth();
        Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
    }
}

/// The hop to hand ezk for a request of `size` bytes: a `sips:` hop without a transport goes
/// over TLS (ezk would otherwise pick UDP for an address), `sips:…;transport=tcp` means TLS
/// too (RFC 5630 §3), a `sips:` hop over UDP is refused, and a plain hop without a transport
/// goes over TCP when the request is too large for UDP (RFC 3261 §18.1.1).
pub fn hop_with_transport(hop: &str, size: usize, udp_limit: usize) -> Result<String, String> {
    let uri = super::parse_uri(hop)?;
    let transport = uri
        .uri_params
        .get_val("transport")
        .map(|t| t.to_ascii_lowercase());
    let mut hop = hop.trim().to_string();
    if let Some(inner) = hop.strip_prefix('<').and_then(|h| h.strip_suffix('>')) {
        hop = inner.to_string();
    }
    match (uri.sips, transport.as_deref()) {
        (true, None) => hop.push_str(";transport=tls"),
        (true, Some("tls")) | (false, Some(_)) => {}
        (true, Some("tcp")) => {
            let at = find_ignore_case(&hop, ";transport=tcp")
                .ok_or_else(|| format!("{hop}: transport parameter not found"))?;
            hop.replace_range(at..at + ";transport=tcp".len(), ";transport=tls");
        }
        (true, Some(other)) => {
            return Err(format!(
                "{hop}: a sips: next hop needs TLS, not transport={other}"
            ))
        }
        (false, None) if size > udp_limit => hop.push_str(";transport=tcp"),
        (false, None) => {}
    }
    Ok(hop)
}

fn find_ignore_case(hay: &str, needle: &str) -> Option<usize> {
    hay.to_ascii_lowercase().find(needle)
}

#[cfg(test)]
#[path = "tls_tests.rs"]
mod tests;

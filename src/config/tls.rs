//! `[sip.tls]`: certificate and trust for SIP over TLS (RFC 3261 §26.2, RFC 5630; GEN-3).
//!
//! The files are read, parsed and matched at check time (`stox check-config`, startup, every
//! reload) with the same code the running gateway uses ([`crate::sip::tls`]), so a file that
//! passes the check is one the listener can serve.

use serde::Deserialize;
use std::path::PathBuf;

/// `[sip.tls]` section.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain of the TLS listener, the server's own certificate first.
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    /// PEM private key of that certificate (PKCS#8, PKCS#1 or SEC1).
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// PEM CA certificates trusted for outbound TLS besides the system's trust store.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

impl TlsConfig {
    /// Check the section; `listener` says whether `sip.listen` has a `tls:` entry.
    pub(crate) fn validate(&self, listener: bool, problems: &mut Vec<String>) {
        match (&self.cert_file, &self.key_file) {
            (Some(cert), Some(key)) => {
                if let Err(e) = crate::sip::tls::load_certified_key(cert, key) {
                    problems.push(format!("sip.tls: {e}"));
                }
            }
            (None, None) if listener => problems
                .push("sip.tls: a tls: entry in sip.listen needs cert_file and key_file".into()),
            (None, None) => {}
            (Some(_), None) => {
                problems.push("sip.tls: cert_file is set but key_file is not".into())
            }
            (None, Some(_)) => {
                problems.push("sip.tls: key_file is set but cert_file is not".into())
            }
        }
        if let Some(ca) = &self.ca_file {
            if let Err(e) = crate::sip::tls::load_ca_file(ca) {
                problems.push(format!("sip.tls.ca_file: {e}"));
            }
        }
    }
}

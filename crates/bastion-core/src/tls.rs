//! One trust store per process, read once at start-up and shared by every outbound client (the
//! AWS SDK's and each `reqwest` client): loading the system store reads and parses every
//! certificate file, and doing it once per client was most of a cold start.
//!
//! The roots are the system's (Lambda's image trust store, patched with the runtime), not a
//! set compiled into the binary: a CA the distribution distrusts stops being trusted without a
//! rebuild, and an operator's `SSL_CERT_FILE` / `SSL_CERT_DIR` are honoured as they are by
//! OpenSSL. Only the bundle file is read by default: the certificate directory next to it holds
//! the same certificates one file each (hundreds of reads for nothing).

use std::sync::{Arc, OnceLock};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;

use crate::config::{Env, ProcessEnv};

/// The roots every client of this process trusts, loaded on first use.
pub struct Roots {
    store: Arc<RootCertStore>,
    pem: Vec<u8>,
}

static ROOTS: OnceLock<Roots> = OnceLock::new();

/// The process's trust store (loaded once).
pub fn roots() -> &'static Roots {
    ROOTS.get_or_init(|| Roots::from_certs(load_system_certs()))
}

impl Roots {
    /// Keeps every certificate that parses as a trust anchor; the rest are skipped, as the
    /// platform loaders do.
    pub fn from_certs(certs: Vec<CertificateDer<'static>>) -> Self {
        let mut store = RootCertStore::empty();
        let mut pem = Vec::new();
        for cert in certs {
            if store.add(cert.clone()).is_ok() {
                pem.extend_from_slice(b"-----BEGIN CERTIFICATE-----\n");
                pem.extend_from_slice(B64.encode(cert.as_ref()).as_bytes());
                pem.extend_from_slice(b"\n-----END CERTIFICATE-----\n");
            }
        }
        if store.is_empty() {
            tracing::warn!(
                event = "tls_roots",
                "no root certificate found: every TLS connection will fail"
            );
        }
        Self {
            store: Arc::new(store),
            pem,
        }
    }

    pub fn len(&self) -> usize {
        self.store.len()
    }

    pub fn is_empty(&self) -> bool {
        self.store.is_empty()
    }

    /// The trusted certificates as one PEM document (for the AWS SDK's trust store, which takes
    /// PEM); every one of them parsed as a trust anchor.
    pub fn pem(&self) -> &[u8] {
        &self.pem
    }

    /// A rustls client configuration over these roots with the aws-lc provider (the one TLS
    /// stack of the binary), for `reqwest::ClientBuilder::use_preconfigured_tls`.
    pub fn client_config(&self) -> Result<rustls::ClientConfig, rustls::Error> {
        Ok(rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(self.store.clone())
        .with_no_client_auth())
    }
}

/// The system bundle file alone when the platform has one and no `SSL_CERT_*` variable says
/// otherwise; the platform loader (file and directory) in every other case.
fn load_system_certs() -> Vec<CertificateDer<'static>> {
    let operator_chose = ["SSL_CERT_FILE", "SSL_CERT_DIR"]
        .iter()
        .any(|v| ProcessEnv.get(v).is_some());
    if !operator_chose && let Some(file) = openssl_probe::probe().cert_file {
        let found = rustls_native_certs::load_certs_from_paths(Some(&file), None);
        if !found.certs.is_empty() {
            return found.certs;
        }
    }
    let found = rustls_native_certs::load_native_certs();
    if !found.errors.is_empty() {
        tracing::warn!(event = "tls_roots", errors = ?found.errors, "some root certificates could not be read");
    }
    found.certs
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::pem::PemObject;

    #[test]
    fn the_system_store_loads_and_every_kept_root_is_in_the_pem_document() {
        let roots = roots();
        assert!(!roots.is_empty());
        let again: Vec<_> = CertificateDer::pem_slice_iter(roots.pem())
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(again.len(), roots.len());
    }

    #[test]
    fn a_certificate_that_is_not_a_trust_anchor_is_left_out() {
        let junk = CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, 0x00]);
        let roots = Roots::from_certs(vec![junk]);
        assert!(roots.is_empty());
        assert!(roots.pem().is_empty());
    }
}

//! The rustls certificate resolver: picks the certificate for a ClientHello's SNI from
//! the store, and answers ACME TLS-ALPN-01 challenges (RFC 8737) for the `acme-tls/1`
//! protocol. Also holds the pending challenge responses (HTTP-01 tokens too).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::certs::CertStore;

/// The ALPN protocol of TLS-ALPN-01 validation.
pub(crate) const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

/// Challenge responses currently offered.
#[derive(Debug, Default)]
pub(crate) struct Challenges {
    /// HTTP-01: token -> key authorization.
    http: RwLock<HashMap<String, String>>,
    /// TLS-ALPN-01: host -> self-signed certificate carrying the acmeIdentifier.
    alpn: RwLock<HashMap<String, Arc<CertifiedKey>>>,
}

impl Challenges {
    pub(crate) fn http_response(&self, token: &str) -> Option<String> {
        self.http
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(token)
            .cloned()
    }

    pub(crate) fn set_http(&self, token: &str, key_auth: &str) {
        self.http
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(token.to_string(), key_auth.to_string());
    }

    pub(crate) fn remove_http(&self, token: &str) {
        self.http
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(token);
    }

    pub(crate) fn alpn_cert(&self, host: &str) -> Option<Arc<CertifiedKey>> {
        self.alpn
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(host)
            .cloned()
    }

    /// Offers a TLS-ALPN-01 response for `host`: a self-signed certificate whose
    /// critical acmeIdentifier extension holds the SHA-256 of the key authorization.
    pub(crate) fn set_alpn(&self, host: &str, digest: &[u8]) -> Result<(), String> {
        let key = rcgen::KeyPair::generate().map_err(|e| e.to_string())?;
        let mut params =
            rcgen::CertificateParams::new(vec![host.to_string()]).map_err(|e| e.to_string())?;
        params
            .custom_extensions
            .push(rcgen::CustomExtension::new_acme_identifier(digest));
        let cert = params.self_signed(&key).map_err(|e| e.to_string())?;
        let der = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
        let signer =
            rustls::crypto::ring::sign::any_supported_type(&der).map_err(|e| e.to_string())?;
        let ck = Arc::new(CertifiedKey::new(vec![cert.der().clone()], signer));
        self.alpn
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(host.to_string(), ck);
        Ok(())
    }

    pub(crate) fn remove_alpn(&self, host: &str) {
        self.alpn
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(host);
    }
}

/// Resolves certificates by SNI.
#[derive(Debug)]
pub(crate) struct Resolver {
    pub store: Arc<CertStore>,
    pub challenges: Arc<Challenges>,
    /// The name answering handshakes without SNI (`tls.default_sni`).
    pub default_sni: Option<String>,
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        // rustls gives the SNI lowercased and validated as a DNS name (an IP address
        // is no SNI). Without SNI, only `tls.default_sni` answers.
        let sni = hello.server_name().or(self.default_sni.as_deref())?;
        let acme = hello
            .alpn()
            .is_some_and(|mut protos| protos.any(|p| p == ACME_TLS_ALPN));
        if acme {
            return self.challenges.alpn_cert(sni);
        }
        self.store.get(sni).map(|l| l.key.clone())
    }
}

//! The `[tls]` section of `edge.toml`: the HTTPS listener, session resumption,
//! operator-provided certificate files and ACME. TLS is off until `tls.listen` is set.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::{EdgeError, Result};

/// Let's Encrypt's production directory, the default ACME server.
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";

/// HTTPS settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// Address of the HTTPS listener (HTTP/1.1 and HTTP/2 over TLS 1.2/1.3), e.g.
    /// `0.0.0.0:443`. Empty (the default) turns TLS off.
    pub listen: String,
    /// Whether the HTTP listener redirects to HTTPS (except ACME HTTP-01 challenges
    /// and sites whose `site.toml` sets `https_redirect = false`).
    pub redirect_http: bool,
    /// Port written into those redirects; unset means the HTTPS listener's port
    /// (omitted when it is 443). Set it when a port forward sits in front.
    pub redirect_port: Option<u16>,
    /// Time a client has to complete the TLS handshake, in milliseconds.
    pub handshake_timeout_ms: u64,
    /// The name whose certificate answers handshakes without SNI (clients that connect
    /// by IP address); unset refuses them.
    pub default_sni: Option<String>,
    /// Entries in the server-side session cache (TLS 1.2 session IDs and TLS 1.3
    /// stateful resumption); 0 disables it.
    pub session_cache: usize,
    /// Whether to issue session tickets (stateless resumption, keys rotated every 6 hours).
    pub session_tickets: bool,
    /// Certificates from files, for operators who bring their own (wildcards too).
    /// They win over ACME for the names they cover, and are re-read on SIGHUP.
    pub certificates: Vec<CertFiles>,
    /// Automatic certificates.
    pub acme: AcmeConfig,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            listen: String::new(),
            redirect_http: true,
            redirect_port: None,
            handshake_timeout_ms: 10_000,
            default_sni: None,
            session_cache: 100_000,
            session_tickets: true,
            certificates: Vec::new(),
            acme: AcmeConfig::default(),
        }
    }
}

/// One operator-provided certificate: its chain and its private key, both PEM.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertFiles {
    /// The certificate chain, leaf first (`fullchain.pem`).
    pub cert: PathBuf,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// Which ACME challenge proves control of a host.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Challenge {
    /// A file under `/.well-known/acme-challenge/` on the HTTP listener (port 80).
    #[default]
    #[serde(rename = "http-01")]
    Http01,
    /// A certificate for the `acme-tls/1` protocol on the HTTPS listener (port 443).
    #[serde(rename = "tls-alpn-01")]
    TlsAlpn01,
}

/// ACME: which server, which account, when to order and renew.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AcmeConfig {
    /// Whether certificates are ordered for routed hosts that have none.
    pub enabled: bool,
    /// The ACME directory: Let's Encrypt production (the default), its staging
    /// (`https://acme-staging-v02.api.letsencrypt.org/directory`), ZeroSSL
    /// (`https://acme.zerossl.com/v2/DV90`, with EAB) or any RFC 8555 server.
    pub directory_url: String,
    /// Contact URIs for the account, e.g. `mailto:ops@example.com`.
    pub contact: Vec<String>,
    /// A PEM root certificate to trust for the ACME server's own API (test servers).
    pub ca_file: Option<PathBuf>,
    /// External account binding key id (ZeroSSL and other CAs that require EAB).
    pub eab_kid: Option<String>,
    /// External account binding HMAC key, base64url as the CA gives it.
    pub eab_hmac_key: Option<String>,
    /// The challenge to answer.
    pub challenge: Challenge,
    /// Order when a site's host appears in the routing table.
    pub eager: bool,
    /// Order on the first handshake for a routed host that has no certificate.
    pub on_demand: bool,
    /// How long such a first handshake waits for its certificate, in milliseconds.
    pub on_demand_wait_ms: u64,
    /// How often certificates are checked for renewal and routed hosts for missing
    /// certificates, in milliseconds.
    pub check_interval_ms: u64,
    /// Renew at this fraction of a certificate's lifetime (when the server offers no
    /// ACME Renewal Information).
    pub renew_at: f64,
    /// Random spread around that point, as a fraction of the lifetime.
    pub renew_jitter: f64,
    /// Orders allowed per hour for the whole node.
    pub max_orders_per_hour: u32,
    /// Orders allowed per host per day (failed attempts count).
    pub max_orders_per_host_per_day: u32,
    /// Orders in flight at once.
    pub max_concurrent_orders: usize,
    /// First wait after a failed order, in milliseconds; doubled on each further failure.
    pub backoff_initial_ms: u64,
    /// Longest wait between attempts, in milliseconds.
    pub backoff_max_ms: u64,
    /// Time one order may take (validation, finalization, download), in milliseconds.
    pub order_timeout_ms: u64,
}

impl Default for AcmeConfig {
    fn default() -> Self {
        AcmeConfig {
            enabled: true,
            directory_url: LETS_ENCRYPT.into(),
            contact: Vec::new(),
            ca_file: None,
            eab_kid: None,
            eab_hmac_key: None,
            challenge: Challenge::Http01,
            eager: true,
            on_demand: true,
            on_demand_wait_ms: 20_000,
            check_interval_ms: 3_600_000,
            renew_at: 2.0 / 3.0,
            renew_jitter: 0.03,
            max_orders_per_hour: 250,
            max_orders_per_host_per_day: 5,
            max_concurrent_orders: 4,
            backoff_initial_ms: 60_000,
            backoff_max_ms: 6 * 3_600_000,
            order_timeout_ms: 120_000,
        }
    }
}

impl TlsConfig {
    /// Whether the HTTPS listener is on.
    pub fn enabled(&self) -> bool {
        !self.listen.trim().is_empty()
    }

    /// Checks values that serde cannot.
    pub fn validate(&self) -> Result<()> {
        if !self.enabled() {
            return Ok(());
        }
        let bad = |m: &str| Err(EdgeError::Config(format!("tls.{m}")));
        if self.handshake_timeout_ms == 0 {
            return bad("handshake_timeout_ms must be at least 1");
        }
        if let Some(n) = &self.default_sni
            && crate::routing::normalize_host(n).as_deref() != Some(n.as_str())
        {
            return bad("default_sni must be a lowercase host name, e.g. example.com");
        }
        let a = &self.acme;
        if !a.enabled {
            return Ok(());
        }
        if !(a.directory_url.starts_with("https://") || a.directory_url.starts_with("http://")) {
            return bad(
                "acme.directory_url must be an http(s) URL, e.g. https://acme-v02.api.letsencrypt.org/directory",
            );
        }
        if !(0.1..=0.95).contains(&a.renew_at) || !(0.0..=0.2).contains(&a.renew_jitter) {
            return bad(
                "acme.renew_at must be within 0.1..0.95 and acme.renew_jitter within 0..0.2",
            );
        }
        if a.eab_kid.is_some() != a.eab_hmac_key.is_some() {
            return bad("acme.eab_kid and acme.eab_hmac_key go together: set both or neither");
        }
        if a.check_interval_ms == 0
            || a.order_timeout_ms == 0
            || a.max_concurrent_orders == 0
            || a.backoff_initial_ms == 0
        {
            return bad(
                "acme.check_interval_ms, order_timeout_ms, max_concurrent_orders and backoff_initial_ms must be at least 1",
            );
        }
        Ok(())
    }
}

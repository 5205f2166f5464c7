//! HTTPS: the rustls server configuration (TLS 1.2 and 1.3, ALPN h2 and http/1.1,
//! session cache and tickets), the handshake of each connection (unknown SNI refused,
//! on-demand issuance for routed hosts, handshake timeout), and the two request fronts:
//! the HTTP listener's (ACME HTTP-01 answers, redirect to HTTPS) and the HTTPS
//! listener's (421 for a Host the connection's certificate does not cover, HSTS).
//!
//! The server calls [`Tls::accept`], [`http_front`] and [`https_front`]; certificates
//! live in [`certs`], ACME in [`acme`].

pub(crate) mod acme;
pub(crate) mod certs;
mod coalesce;
pub mod config;
pub(crate) mod resolver;

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::LazyConfigAcceptor;
use tokio_rustls::server::TlsStream;

use crate::error::{EdgeError, Result};
use crate::handler::{self, Body};
use crate::state::Shared;
use certs::CertStore;
use resolver::{ACME_TLS_ALPN, Challenges, Resolver};

/// An accepted TLS connection as hyper sees it.
pub(crate) type TlsIo<IO> = coalesce::Coalesce<TlsStream<IO>>;

/// Bytes of HTTP/2 output gathered before they are encrypted and written.
const WRITE_BUFFER: usize = 64 * 1024;

/// What the handshake of one HTTPS connection settled: for request handling (421) and
/// for access events.
#[derive(Debug, Clone)]
pub struct TlsInfo {
    /// The negotiated protocol version: `"TLSv1.3"` or `"TLSv1.2"`.
    pub version: &'static str,
    /// The negotiated ALPN protocol: `"h2"`, `"http/1.1"`, or `""` when none was.
    pub alpn: &'static str,
    /// The SNI name the client asked for (lowercase).
    pub sni: Arc<str>,
    /// Whether the session was resumed (ticket or session cache).
    pub resumed: bool,
    /// Names the connection's certificate covers.
    names: Arc<[String]>,
}

impl TlsInfo {
    /// Whether a request for `host` (normalized) may use this connection.
    fn covers(&self, host: &str) -> bool {
        host == &*self.sni || self.names.iter().any(|n| certs::name_matches(n, host))
    }
}

/// Counters of the TLS layer.
#[derive(Debug, Default)]
pub(crate) struct TlsMetrics {
    pub handshakes: AtomicU64,
    pub resumed: AtomicU64,
    pub handshake_failures: AtomicU64,
    pub handshake_timeouts: AtomicU64,
    pub unknown_sni: AtomicU64,
    pub no_sni: AtomicU64,
    pub misdirected: AtomicU64,
    pub redirects: AtomicU64,
    pub challenges_answered: AtomicU64,
}

/// The node's TLS state, shared by the listeners.
pub(crate) struct Tls {
    server_config: Arc<rustls::ServerConfig>,
    pub store: Arc<CertStore>,
    pub challenges: Arc<Challenges>,
    pub acme: Option<Arc<acme::Acme>>,
    pub metrics: Arc<TlsMetrics>,
    /// `tls.default_sni`.
    default_sni: Option<Arc<str>>,
    /// Port in HTTP -> HTTPS redirects (None: omitted, it is 443).
    redirect_port: std::sync::OnceLock<Option<u16>>,
}

/// Why a TLS connection was not served.
#[derive(Debug)]
pub(crate) enum AcceptError {
    /// No handshake within the timeout.
    Timeout,
    /// The handshake failed (includes refused SNI names).
    Handshake(std::io::Error),
    /// A TLS-ALPN-01 validation connection: done once the handshake is.
    AcmeValidation,
}

impl std::fmt::Display for AcceptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AcceptError::Timeout => f.write_str("handshake timed out"),
            AcceptError::Handshake(e) => write!(f, "handshake failed: {e}"),
            AcceptError::AcmeValidation => f.write_str("TLS-ALPN-01 validation connection"),
        }
    }
}

impl Tls {
    /// Builds the TLS state from the configuration: opens `data/certs`, loads the
    /// operator's certificate files and prepares ACME (nothing is ordered yet).
    pub(crate) fn new(cfg: &crate::config::EdgeConfig) -> Result<Tls> {
        let tc = &cfg.tls;
        let store = Arc::new(CertStore::open(&cfg.data_dir.join("certs"))?);
        if let Some(e) = store.set_files(&tc.certificates).into_iter().next() {
            return Err(EdgeError::Config(format!("tls.certificates: {e}")));
        }
        let challenges = Arc::new(Challenges::default());
        let resolver = Arc::new(Resolver {
            store: store.clone(),
            challenges: challenges.clone(),
            default_sni: tc.default_sni.clone(),
        });
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut sc = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| EdgeError::Config(format!("tls: {e}")))?
            .with_no_client_auth()
            .with_cert_resolver(resolver);
        sc.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec(), ACME_TLS_ALPN.to_vec()];
        sc.session_storage = if tc.session_cache > 0 {
            rustls::server::ServerSessionMemoryCache::new(tc.session_cache)
        } else {
            Arc::new(rustls::server::NoServerSessionStorage {})
        };
        if tc.session_tickets {
            sc.ticketer = rustls::crypto::ring::Ticketer::new()
                .map_err(|e| EdgeError::Config(format!("tls: session tickets: {e}")))?;
        }
        if tc.session_cache == 0 && !tc.session_tickets {
            sc.send_tls13_tickets = 0;
        }
        let metrics = Arc::new(TlsMetrics::default());
        let acme = if tc.acme.enabled {
            Some(Arc::new(acme::Acme::new(
                &tc.acme,
                &cfg.data_dir.join("acme"),
                store.clone(),
                challenges.clone(),
            )?))
        } else {
            None
        };
        tracing::info!(
            certificates = store.len(),
            operator_files = tc.certificates.len(),
            acme = tc.acme.enabled,
            "tls ready"
        );
        Ok(Tls {
            server_config: Arc::new(sc),
            store,
            challenges,
            acme,
            metrics,
            default_sni: tc.default_sni.as_deref().map(Arc::from),
            redirect_port: std::sync::OnceLock::new(),
        })
    }

    /// Records the HTTPS listener's port for redirects.
    pub(crate) fn set_listen_port(&self, cfg: &config::TlsConfig, port: u16) {
        let p = cfg.redirect_port.unwrap_or(port);
        let _ = self.redirect_port.set((p != 443).then_some(p));
    }

    /// Re-reads the operator's certificate files (SIGHUP); a file that fails keeps
    /// nothing of its own but the others apply.
    pub(crate) fn reload_files(&self, cfg: &config::TlsConfig) {
        for e in self.store.set_files(&cfg.certificates) {
            tracing::error!(error = %e, "tls.certificates: file not loaded");
        }
    }

    /// Runs the TLS handshake of one connection (bounded by `handshake_timeout_ms`).
    ///
    /// HTTP/2 connections come back behind [`coalesce::Coalesce`], so responses
    /// finished in the same turn leave in one TLS write.
    pub(crate) async fn accept<IO>(
        &self,
        io: IO,
        shared: &Arc<Shared>,
    ) -> std::result::Result<(TlsIo<IO>, Arc<TlsInfo>), AcceptError>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let timeout = Duration::from_millis(shared.config.load().tls.handshake_timeout_ms);
        let r = tokio::time::timeout(timeout, self.handshake(io, shared)).await;
        let r = match r {
            Ok(r) => r,
            Err(_) => {
                self.metrics.handshake_timeouts.fetch_add(1, Relaxed);
                return Err(AcceptError::Timeout);
            }
        };
        if let Err(AcceptError::Handshake(_)) = &r {
            self.metrics.handshake_failures.fetch_add(1, Relaxed);
        }
        r.map(|(s, info)| {
            let cap = if info.alpn == "h2" { WRITE_BUFFER } else { 0 };
            (coalesce::Coalesce::new(s, cap), info)
        })
    }

    async fn handshake<IO>(
        &self,
        io: IO,
        shared: &Arc<Shared>,
    ) -> std::result::Result<(TlsStream<IO>, Arc<TlsInfo>), AcceptError>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let start = LazyConfigAcceptor::new(rustls::server::Acceptor::default(), io)
            .await
            .map_err(AcceptError::Handshake)?;
        let hello = start.client_hello();
        let sni: Option<Arc<str>> = hello
            .server_name()
            .map(Arc::from)
            .or_else(|| self.default_sni.clone());
        let validation = hello
            .alpn()
            .is_some_and(|mut p| p.any(|p| p == ACME_TLS_ALPN));
        match &sni {
            None => {
                self.metrics.no_sni.fetch_add(1, Relaxed);
            }
            Some(name) if !validation && self.store.get(name).is_none() => {
                self.on_demand(name, shared).await;
            }
            _ => {}
        }
        // An unknown name reaches the resolver, finds nothing, and rustls refuses the
        // handshake with an alert.
        let stream = start
            .into_stream(self.server_config.clone())
            .await
            .map_err(AcceptError::Handshake)?;
        let (_, conn) = stream.get_ref();
        if conn.alpn_protocol() == Some(ACME_TLS_ALPN) {
            return Err(AcceptError::AcmeValidation);
        }
        let version = match conn.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3",
            _ => "TLSv1.2",
        };
        let alpn = match conn.alpn_protocol() {
            Some(b"h2") => "h2",
            Some(b"http/1.1") => "http/1.1",
            _ => "",
        };
        let resumed = matches!(conn.handshake_kind(), Some(rustls::HandshakeKind::Resumed));
        self.metrics.handshakes.fetch_add(1, Relaxed);
        if resumed {
            self.metrics.resumed.fetch_add(1, Relaxed);
        }
        let sni = sni.unwrap_or_else(|| Arc::from(""));
        let names = self
            .store
            .get(&sni)
            .map(|l| l.info.names.clone())
            .unwrap_or_else(|| Arc::from(Vec::new()));
        Ok((
            stream,
            Arc::new(TlsInfo {
                version,
                alpn,
                sni,
                resumed,
                names,
            }),
        ))
    }

    /// A handshake for a name without a certificate: routed hosts get one ordered
    /// (on demand) and the handshake waits for it; other names are counted and refused.
    async fn on_demand(&self, name: &str, shared: &Arc<Shared>) {
        let routed = shared.table.load().site_for_host(name).is_some();
        let cfg = shared.config.load();
        let Some(acme) = self
            .acme
            .as_ref()
            .filter(|_| routed && cfg.tls.acme.on_demand)
        else {
            self.metrics.unknown_sni.fetch_add(1, Relaxed);
            tracing::debug!(sni = name, routed, "handshake refused: no certificate");
            return;
        };
        let wait = Duration::from_millis(cfg.tls.acme.on_demand_wait_ms);
        drop(cfg);
        acme.request(name, acme::Reason::OnDemand);
        let deadline = tokio::time::Instant::now() + wait;
        while tokio::time::Instant::now() < deadline {
            if self.store.get(name).is_some() {
                return;
            }
            if !acme.in_flight(name) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Prometheus lines of the TLS layer and ACME.
    pub(crate) fn render_metrics(&self, shared: &Shared) -> String {
        let mut s = String::with_capacity(2048);
        let m = &self.metrics;
        let counters = [
            (
                "qpage_tls_handshakes_total",
                "Completed TLS handshakes.",
                &m.handshakes,
            ),
            (
                "qpage_tls_resumed_total",
                "Handshakes that resumed a session.",
                &m.resumed,
            ),
            (
                "qpage_tls_handshake_failures_total",
                "Failed TLS handshakes (refused names included).",
                &m.handshake_failures,
            ),
            (
                "qpage_tls_handshake_timeouts_total",
                "TLS handshakes cut off by tls.handshake_timeout_ms.",
                &m.handshake_timeouts,
            ),
            (
                "qpage_tls_unknown_sni_total",
                "Handshakes refused for a name with no certificate that is not routed.",
                &m.unknown_sni,
            ),
            (
                "qpage_tls_no_sni_total",
                "Handshakes without SNI (refused).",
                &m.no_sni,
            ),
            (
                "qpage_tls_misdirected_total",
                "Requests answered 421: Host not covered by the connection's certificate.",
                &m.misdirected,
            ),
            (
                "qpage_tls_http_redirects_total",
                "HTTP requests redirected to HTTPS.",
                &m.redirects,
            ),
            (
                "qpage_acme_http01_answers_total",
                "ACME HTTP-01 challenge requests answered.",
                &m.challenges_answered,
            ),
        ];
        for (name, help, v) in counters {
            let _ = writeln!(
                s,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                v.load(Relaxed)
            );
        }
        let now = acme::unix_now();
        let table = shared.table.load();
        let mut by_state = [0u64; 3];
        let mut soonest: Option<i64> = None;
        for l in self.store.loaded() {
            let i = &l.info;
            let state = if i.not_after <= now {
                2
            } else if acme::renewal_due(i, 2.0 / 3.0, now) {
                1
            } else {
                0
            };
            by_state[state] += 1;
            soonest = Some(soonest.map_or(i.not_after, |s| s.min(i.not_after)));
        }
        let missing = table.hosts().filter(|h| !self.store.has(h)).count();
        let failing = self.acme.as_ref().map_or(0, |a| a.failing());
        let _ = writeln!(
            s,
            "# HELP qpage_tls_certificates Certificates by state (valid, renewal due, expired: loaded ones; missing: routed hosts without one; failing: hosts whose last order failed; unloaded: files not read yet).\n# TYPE qpage_tls_certificates gauge"
        );
        let unloaded = self.store.unloaded();
        for (label, v) in [
            ("valid", by_state[0]),
            ("renewal_due", by_state[1]),
            ("expired", by_state[2]),
            ("missing", missing as u64),
            ("failing", failing as u64),
            ("unloaded", unloaded as u64),
        ] {
            let _ = writeln!(s, "qpage_tls_certificates{{state=\"{label}\"}} {v}");
        }
        if let Some(t) = soonest {
            let _ = writeln!(
                s,
                "# HELP qpage_tls_soonest_expiry_days Days until the soonest-expiring loaded certificate expires.\n# TYPE qpage_tls_soonest_expiry_days gauge\nqpage_tls_soonest_expiry_days {:.3}",
                (t - now) as f64 / 86_400.0
            );
        }
        if let Some(a) = &self.acme {
            a.render_metrics(&mut s);
        }
        s
    }
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(http_body_util::Either::Left(Full::new(body.into())));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn request_host<B>(req: &Request<B>) -> Option<String> {
    let raw = req.uri().authority().map(|a| a.as_str()).or_else(|| {
        req.headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
    })?;
    crate::routing::host_key(raw).map(|h| h.into_owned())
}

/// A request on the plain HTTP listener. Without TLS it is just served; with TLS,
/// ACME HTTP-01 tokens are answered and routed hosts are redirected to HTTPS (308)
/// unless their site sets `https.allow_http`.
pub(crate) async fn http_front<B: 'static>(
    req: Request<B>,
    shared: Arc<Shared>,
    conn: crate::conn::ConnInfo,
) -> Response<Body> {
    let Some(tls) = shared.tls.get() else {
        return handler::handle(req, shared, conn).await;
    };
    if let Some(token) = req
        .uri()
        .path()
        .strip_prefix("/.well-known/acme-challenge/")
    {
        return match tls.challenges.http_response(token) {
            Some(key_auth) => {
                tls.metrics.challenges_answered.fetch_add(1, Relaxed);
                text(StatusCode::OK, key_auth)
            }
            None => text(StatusCode::NOT_FOUND, "Not Found\n"),
        };
    }
    if shared.config.load().tls.redirect_http
        && let Some(host) = request_host(&req)
    {
        let table = shared.table.load();
        if let Some(site) = table.site_for_host(&host)
            && !site.config.https.allow_http
        {
            let port = tls
                .redirect_port
                .get()
                .copied()
                .flatten()
                .map(|p| format!(":{p}"))
                .unwrap_or_default();
            let pq = req
                .uri()
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/");
            let loc = format!("https://{host}{port}{pq}");
            if let Ok(v) = HeaderValue::from_str(&loc) {
                tls.metrics.redirects.fetch_add(1, Relaxed);
                let mut r = text(StatusCode::PERMANENT_REDIRECT, "");
                r.headers_mut().insert(header::LOCATION, v);
                return r;
            }
        }
    }
    handler::handle(req, shared, conn).await
}

/// A request on an HTTPS connection: 421 when its Host is not covered by the
/// connection's certificate (a client reusing a connection for another site), HSTS
/// on the responses of sites that opted in.
pub(crate) async fn https_front<B: 'static>(
    req: Request<B>,
    info: Arc<TlsInfo>,
    shared: Arc<Shared>,
    conn: crate::conn::ConnInfo,
) -> Response<Body> {
    let host = request_host(&req);
    if let Some(h) = &host
        && !info.covers(h)
    {
        if let Some(t) = shared.tls.get() {
            t.metrics.misdirected.fetch_add(1, Relaxed);
        }
        return text(StatusCode::MISDIRECTED_REQUEST, "Misdirected Request\n");
    }
    let mut resp = handler::handle(req, shared.clone(), conn).await;
    if let Some(h) = host
        && let Some(site) = shared.table.load().site_for_host(&h)
    {
        let p = &site.config.https;
        if p.hsts_max_age > 0
            && !resp
                .headers()
                .contains_key(header::STRICT_TRANSPORT_SECURITY)
        {
            let mut v = format!("max-age={}", p.hsts_max_age);
            if p.hsts_include_subdomains {
                v.push_str("; includeSubDomains");
            }
            if p.hsts_preload {
                v.push_str("; preload");
            }
            if let Ok(v) = HeaderValue::from_str(&v) {
                resp.headers_mut()
                    .insert(header::STRICT_TRANSPORT_SECURITY, v);
            }
        }
    }
    resp
}

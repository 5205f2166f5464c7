//! The listeners: accepts connections under the total and per-IP caps, serves them
//! with hyper (HTTP/1.1 and h2c; HTTPS through [`crate::tls`]) under header, idle and
//! write timeouts, runs the admin listener, polls the store for routing changes, and
//! drains on shutdown.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use crate::admin;
use crate::config::EdgeConfig;
use crate::conn::ConnInfo;
use crate::error::{EdgeError, Result};
use crate::routing::RoutingTable;
use crate::state::Shared;
use crate::store::Store;

/// A bound edge server: listeners open, routing loaded, not yet serving.
pub struct Server {
    listener: TcpListener,
    admin: Option<TcpListener>,
    tls: Option<TcpListener>,
    shared: Arc<Shared>,
}

/// A handle on a running server, to reload it or read its counters.
#[derive(Clone)]
pub struct ServerHandle {
    shared: Arc<Shared>,
}

impl ServerHandle {
    /// Reloads the routing table from the store; with `config`, also the header policy,
    /// routing settings and limits (listen addresses and the cache size need a restart).
    /// Returns the number of sites.
    pub async fn reload(&self, config: Option<EdgeConfig>) -> Result<usize> {
        if let Some(c) = &config {
            c.validate()?;
        }
        self.shared.reload(config).await
    }

    /// The node's counters.
    pub fn metrics(&self) -> &crate::metrics::Metrics {
        &self.shared.metrics
    }
}

impl Server {
    /// Opens the store, loads the routing table and binds the listeners.
    pub async fn bind(config: EdgeConfig) -> Result<Server> {
        config.validate()?;
        let store = Store::open(&config.data_dir)?;
        store.recover()?;
        let cfg = config.clone();
        let st = store.clone();
        let table = tokio::task::spawn_blocking(move || RoutingTable::load(&st, &cfg, None))
            .await
            .map_err(|e| EdgeError::Config(format!("loading routes: {e}")))??;
        tracing::info!(sites = table.site_count(), "routing loaded");
        let listener = bind_tcp(&config.listen).await?;
        let admin = if config.admin.trim().is_empty() {
            None
        } else {
            Some(bind_tcp(&config.admin).await?)
        };
        let tls_listener = if config.tls.enabled() {
            let cfg = config.clone();
            let tls = tokio::task::spawn_blocking(move || crate::tls::Tls::new(&cfg))
                .await
                .map_err(|e| EdgeError::Config(format!("loading certificates: {e}")))??;
            let l = bind_tcp(&config.tls.listen).await?;
            let port = l.local_addr().map(|a| a.port()).unwrap_or(443);
            tls.set_listen_port(&config.tls, port);
            Some((l, Arc::new(tls)))
        } else {
            None
        };
        let metrics = crate::metrics::Metrics::default();
        let events =
            crate::events::Events::start(&config.events, &config.data_dir, metrics.events.clone())
                .map_err(|e| EdgeError::Config(format!("starting access events: {e}")))?;
        let shared = Arc::new(Shared::new(config, store, table, metrics, events));
        shared.api.init(&shared.config.load().api, &shared.store)?;
        let tls = tls_listener.map(|(l, t)| {
            let _ = shared.tls.set(t);
            l
        });
        Ok(Server {
            listener,
            admin,
            tls,
            shared,
        })
    }

    /// Address of the public listener.
    pub fn local_addr(&self) -> Result<SocketAddr> {
        self.listener.local_addr().map_err(|e| EdgeError::Listen {
            addr: "public listener".into(),
            source: e,
        })
    }

    /// Address of the HTTPS listener, if TLS is on.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// Address of the admin listener, if enabled.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// A handle to reload the server while it runs.
    pub fn handle(&self) -> ServerHandle {
        ServerHandle {
            shared: self.shared.clone(),
        }
    }

    /// Serves until `shutdown` completes, then stops accepting, lets in-flight
    /// requests finish (up to `limits.drain_timeout_ms`) and returns.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> Result<()> {
        let Server {
            listener,
            admin,
            tls: tls_listener,
            shared,
        } = self;
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let mut tasks = Vec::new();
        if let Some(admin) = admin {
            tasks.push(tokio::spawn(admin::run(
                admin,
                shared.clone(),
                stop_rx.clone(),
            )));
        }
        tasks.push(tokio::spawn(poll_store(shared.clone(), stop_rx.clone())));
        tasks.push(tokio::spawn(crate::api::scheduler(
            shared.clone(),
            stop_rx.clone(),
        )));
        if let Some(acme) = shared.tls.get().and_then(|t| t.acme.clone()) {
            tasks.push(tokio::spawn(acme.run(shared.clone(), stop_rx.clone())));
        }

        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let limiter = Arc::new(IpLimiter::default());
        tokio::pin!(shutdown);
        loop {
            let (accepted, secure) = tokio::select! {
                _ = &mut shutdown => break,
                a = listener.accept() => (a, false),
                a = accept_opt(tls_listener.as_ref()) => (a, true),
            };
            let (stream, peer) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off, keep serving.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            };
            let cfg = shared.config.load();
            let limits = &cfg.limits;
            let open = shared.metrics.open_connections();
            let guard = if open >= limits.max_connections as i64 {
                None
            } else {
                limiter.acquire(peer.ip(), limits.max_connections_per_ip)
            };
            let Some(guard) = guard else {
                shared.metrics.conn_rejected();
                tokio::spawn(reject(stream));
                continue;
            };
            let _ = stream.set_nodelay(true);
            let builder = connection_builder(&cfg);
            let write_timeout = Duration::from_millis(limits.request_timeout_ms);
            let deadline = Duration::from_millis(limits.response_deadline_ms);
            let first_byte = Duration::from_millis(limits.header_read_timeout_ms);
            let h1_limits = crate::h1::Limits {
                header_read_timeout: first_byte,
                max_header_bytes: limits.max_header_bytes.max(8192),
            };
            drop(cfg);
            let tls = if secure {
                shared.tls.get().cloned()
            } else {
                None
            };
            let sh = shared.clone();
            let watcher = graceful.watcher();
            let mut stop = stop_rx.clone();
            sh.metrics.conn_opened();
            tokio::spawn(async move {
                // hyper's protocol detection waits for the first bytes without a timer:
                // a client that connects and sends nothing is cut off here.
                let mut probe = [0u8; 1];
                let first = tokio::select! {
                    r = tokio::time::timeout(first_byte, stream.peek(&mut probe)) => r.ok(),
                    _ = stop.changed() => None,
                };
                if matches!(first, Some(Ok(n)) if n > 0) {
                    let service_shared = sh.clone();
                    let io = StallTimeout::new(stream, write_timeout).with_deadline(deadline);
                    match tls {
                        None => {
                            // Without TLS the front has nothing to do: call the handler
                            // directly (its future is moved less and is smaller).
                            let lean = if service_shared.tls.get().is_none() {
                                crate::h1::serve(io, h1_limits, &mut stop, |req| {
                                    crate::handler::handle(
                                        req,
                                        service_shared.clone(),
                                        ConnInfo::plain(peer),
                                    )
                                })
                                .await
                            } else {
                                crate::h1::serve(io, h1_limits, &mut stop, |req| {
                                    crate::tls::http_front(
                                        req,
                                        service_shared.clone(),
                                        ConnInfo::plain(peer),
                                    )
                                })
                                .await
                            };
                            if let crate::h1::Outcome::Fallback(io) = lean {
                                let service = service_fn(move |req| {
                                    let sh = service_shared.clone();
                                    async move {
                                        Ok::<_, std::convert::Infallible>(
                                            crate::tls::http_front(req, sh, ConnInfo::plain(peer))
                                                .await,
                                        )
                                    }
                                });
                                let conn = builder.serve_connection(TokioIo::new(io), service);
                                if let Err(e) = watcher.watch(conn.into_owned()).await {
                                    tracing::debug!(peer = %peer, error = %e, "connection ended with an error");
                                }
                            }
                        }
                        Some(tls) => match tls.accept(io, &sh).await {
                            Ok((io, info)) => {
                                let conn_info = ConnInfo::tls(peer, info.version);
                                let service = service_fn(move |req| {
                                    let sh = service_shared.clone();
                                    let info = info.clone();
                                    async move {
                                        Ok::<_, std::convert::Infallible>(
                                            crate::tls::https_front(req, info, sh, conn_info).await,
                                        )
                                    }
                                });
                                let conn = builder.serve_connection(TokioIo::new(io), service);
                                if let Err(e) = watcher.watch(conn.into_owned()).await {
                                    tracing::debug!(peer = %peer, error = %e, "connection ended with an error");
                                }
                            }
                            Err(crate::tls::AcceptError::Timeout) => sh.metrics.timeout(),
                            Err(e) => {
                                tracing::debug!(peer = %peer, error = %e, "TLS connection not served")
                            }
                        },
                    }
                } else {
                    sh.metrics.timeout();
                }
                sh.metrics.conn_closed();
                drop(guard);
            });
        }
        drop(listener);
        shared.draining.store(true, Ordering::Relaxed);
        let _ = stop_tx.send(true);
        let drain = Duration::from_millis(shared.config.load().limits.drain_timeout_ms);
        tracing::info!("draining connections");
        if tokio::time::timeout(drain, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("drain timeout: closing the remaining connections");
        }
        for t in tasks {
            let _ = tokio::time::timeout(Duration::from_secs(1), t).await;
        }
        if let Some(events) = &shared.events {
            events.shutdown().await;
        }
        Ok(())
    }
}

/// Accepts on the HTTPS listener, or never when there is none.
async fn accept_opt(l: Option<&TcpListener>) -> std::io::Result<(TcpStream, SocketAddr)> {
    match l {
        Some(l) => l.accept().await,
        None => std::future::pending().await,
    }
}

async fn bind_tcp(addr: &str) -> Result<TcpListener> {
    let l = TcpListener::bind(addr)
        .await
        .map_err(|e| EdgeError::Listen {
            addr: addr.into(),
            source: e,
        })?;
    Ok(l)
}

/// A hyper connection builder configured from the limits.
fn connection_builder(cfg: &EdgeConfig) -> auto::Builder<TokioExecutor> {
    let l = &cfg.limits;
    let mut b = auto::Builder::new(TokioExecutor::new());
    b.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(l.header_read_timeout_ms))
        .max_headers(l.max_headers)
        .max_buf_size(l.max_header_bytes.max(8192))
        .keep_alive(true);
    b.http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(l.max_h2_streams)
        .max_header_list_size(u32::try_from(l.max_header_bytes).unwrap_or(u32::MAX))
        .keep_alive_interval(Duration::from_millis(l.header_read_timeout_ms))
        .keep_alive_timeout(Duration::from_millis(l.header_read_timeout_ms));
    b
}

/// Answers a connection over the caps with a 503 and closes it.
async fn reject(mut stream: TcpStream) {
    let msg = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\ncontent-length: 20\r\nretry-after: 1\r\nconnection: close\r\n\r\nService Unavailable\n";
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        let _ = stream.write_all(msg).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

/// Reloads routing when the store's epoch moves.
async fn poll_store(shared: Arc<Shared>, mut stop: tokio::sync::watch::Receiver<bool>) {
    loop {
        let ms = shared.config.load().routing.reload_poll_ms;
        let wait = Duration::from_millis(if ms == 0 { 1000 } else { ms });
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        if ms == 0 {
            continue;
        }
        let store = shared.store.clone();
        let epoch = tokio::task::spawn_blocking(move || store.epoch())
            .await
            .unwrap_or(0);
        if epoch != shared.table.load().epoch
            && let Err(e) = shared.reload(None).await
        {
            tracing::warn!(error = %e, "routing reload failed; keeping the previous table");
        }
    }
}

/// Open connections per client IP.
#[derive(Default)]
struct IpLimiter {
    counts: Mutex<HashMap<IpAddr, usize>>,
}

struct IpGuard {
    limiter: Arc<IpLimiter>,
    ip: IpAddr,
}

impl IpLimiter {
    fn acquire(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<IpGuard> {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let n = counts.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(IpGuard {
            limiter: self.clone(),
            ip,
        })
    }
}

impl Drop for IpGuard {
    fn drop(&mut self) {
        let mut counts = self
            .limiter
            .counts
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(n) = counts.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

/// A stream whose writes fail once they have made no progress for `limit` (a client
/// that stops reading its response cannot hold the connection forever), or once a
/// response has been written for longer than `total` (a client reading just fast
/// enough to dodge `limit` cannot either: the whole-request deadline, set with
/// [`StallTimeout::with_deadline`]). That clock starts the first time a response's
/// write has to wait for the client and stops at the flush that completes it.
struct StallTimeout {
    inner: TcpStream,
    limit: Duration,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    total: Option<Duration>,
    busy: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl StallTimeout {
    fn new(inner: TcpStream, limit: Duration) -> Self {
        StallTimeout {
            inner,
            limit,
            deadline: None,
            total: None,
            busy: None,
        }
    }

    /// Adds the whole-request deadline (`limits.response_deadline_ms`).
    fn with_deadline(mut self, total: Duration) -> Self {
        self.total = Some(total);
        self
    }

    fn on_write<T>(
        &mut self,
        cx: &mut Context<'_>,
        r: Poll<std::io::Result<T>>,
    ) -> Poll<std::io::Result<T>> {
        match r {
            Poll::Pending => {
                if let Some(total) = self.total {
                    let busy = self
                        .busy
                        .get_or_insert_with(|| Box::pin(tokio::time::sleep(total)));
                    if busy.as_mut().poll(cx).is_ready() {
                        return Poll::Ready(Err(std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            "response deadline passed",
                        )));
                    }
                }
                let limit = self.limit;
                let sleep = self
                    .deadline
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
                if sleep.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "client stopped reading",
                    )));
                }
                Poll::Pending
            }
            ready => {
                self.deadline = None;
                ready
            }
        }
    }
}

impl AsyncRead for StallTimeout {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for StallTimeout {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.on_write(cx, r)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let r = match crate::zerocopy::poll_write(&self.inner, cx, bufs) {
            Some(r) => r,
            None => Pin::new(&mut self.inner).poll_write_vectored(cx, bufs),
        };
        self.on_write(cx, r)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_flush(cx);
        let r = self.on_write(cx, r);
        if matches!(r, Poll::Ready(Ok(()))) {
            // Everything written so far is out: the next write starts a new response.
            self.busy = None;
        }
        r
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

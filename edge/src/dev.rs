//! `qpage dev`'s server: one site, served by the edge's own request handler (the same
//! routing, `_redirects`, `_headers`, clean URLs, 404 page, caching and conditional
//! headers as production) from a store in a scratch folder that is updated file by
//! file as the site is rebuilt. Dev only: every HTML page gets a small live-reload
//! script, `/__qpage/events` streams reload, stylesheet and error events to it
//! (Server-Sent Events), and the script shows build errors over the page. Files are
//! stored without Brotli/gzip variants so an update costs one hash and one write.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body_util::{Either, Full};
use hyper::body::Frame;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio::sync::{broadcast, mpsc};

use crate::config::EdgeConfig;
use crate::error::{EdgeError, Result};
use crate::routing::{Interner, LiveDeploy, RoutingTable};
use crate::rules::{Headers, Redirects};
use crate::state::Shared;
use crate::store::{Deploy, DeployId, FileEntry, SiteConfig, Store, Variant};

/// The name of the one site in the scratch store.
const SITE: &str = "dev";
/// Path prefix of the dev server's own endpoints.
pub const DEV_PREFIX: &str = "/__qpage/";
/// The script tag added to every HTML page.
const SCRIPT_TAG: &str = "<script src=\"/__qpage/live.js\" defer></script>";
const LIVE_JS: &str = include_str!("dev_live.js");

/// A build problem shown over the page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DevError {
    /// The file, relative to the site.
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column, when known.
    pub column: Option<usize>,
    /// What is wrong.
    pub message: String,
    /// What to do.
    pub help: Option<String>,
}

/// What is served, kept twice so that an update costs work proportional to the change
/// (left-right): requests read `front`; an update brings `back` (one update behind, and
/// no longer read by any request) up to date in place, serves it, and keeps the old
/// `front` as the next spare. When a request still holds the spare, the update copies
/// `front` instead.
#[derive(Default)]
struct Served {
    /// What is served (none before the first update).
    front: Option<Arc<LiveDeploy>>,
    /// The previous `front`, lacking the changes in `behind`.
    back: Option<Arc<LiveDeploy>>,
    behind: Vec<(String, Option<FileEntry>)>,
    /// Whether `back` also lacks rule changes (`_redirects`, `_headers`).
    rules_behind: bool,
}

struct DevState {
    served: Mutex<Served>,
    events: broadcast::Sender<Bytes>,
    errors: Mutex<Vec<DevError>>,
    generation: std::sync::atomic::AtomicU64,
    /// When browsers were last told to reload or swap styles (ms since the epoch): a
    /// page whose event stream connects later can tell it missed that.
    changed_ms: std::sync::atomic::AtomicU64,
}

/// The dev server, bound and not yet serving.
pub struct DevServer {
    listener: TcpListener,
    shared: Arc<Shared>,
    state: Arc<DevState>,
}

/// A handle to update what the dev server serves and to tell the browsers.
#[derive(Clone)]
pub struct DevHandle {
    shared: Arc<Shared>,
    state: Arc<DevState>,
}

impl DevServer {
    /// Binds `addr` and prepares an empty site in a store at `data_dir` (a scratch
    /// folder the caller owns).
    pub async fn bind(addr: SocketAddr, data_dir: &Path) -> Result<DevServer> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| EdgeError::Listen {
                addr: addr.to_string(),
                source: e,
            })?;
        let store = Store::open(data_dir)?;
        store.put_site(SITE, &SiteConfig::default())?;
        let mut config = EdgeConfig {
            data_dir: data_dir.to_path_buf(),
            ..EdgeConfig::default()
        };
        // Every response revalidates: an edit shows on the next load.
        config.http.browser_max_age = 0;
        config.http.cdn_max_age = 0;
        config.routing.default_site = Some(SITE.into());
        let shared = Arc::new(Shared::new(
            config,
            store,
            RoutingTable::default(),
            crate::metrics::Metrics::default(),
            None,
        ));
        let (events, _) = broadcast::channel(64);
        Ok(DevServer {
            listener,
            shared,
            state: Arc::new(DevState {
                served: Mutex::new(Served::default()),
                events,
                errors: Mutex::new(Vec::new()),
                generation: std::sync::atomic::AtomicU64::new(0),
                changed_ms: std::sync::atomic::AtomicU64::new(0),
            }),
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> Result<SocketAddr> {
        self.listener.local_addr().map_err(|e| EdgeError::Listen {
            addr: "dev listener".into(),
            source: e,
        })
    }

    /// A handle to update the site while the server runs.
    pub fn handle(&self) -> DevHandle {
        DevHandle {
            shared: self.shared.clone(),
            state: self.state.clone(),
        }
    }

    /// Serves until `shutdown` completes.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> Result<()> {
        tokio::pin!(shutdown);
        let mut conns = tokio::task::JoinSet::new();
        loop {
            let (stream, peer) = tokio::select! {
                _ = &mut shutdown => break,
                a = self.listener.accept() => match a {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let shared = self.shared.clone();
            let state = self.state.clone();
            conns.spawn(async move {
                let conn = crate::conn::ConnInfo::plain(peer);
                let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                    let shared = shared.clone();
                    let state = state.clone();
                    async move { Ok::<_, Infallible>(respond(req, shared, state, conn).await) }
                });
                let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                if let Err(e) = builder
                    .serve_connection(TokioIo::new(stream), service)
                    .await
                {
                    tracing::debug!(error = %e, "dev connection ended");
                }
            });
            while conns.try_join_next().is_some() {}
        }
        conns.abort_all();
        Ok(())
    }
}

type DevBody = Either<crate::handler::Body, EventBody>;

async fn respond(
    req: Request<hyper::body::Incoming>,
    shared: Arc<Shared>,
    state: Arc<DevState>,
    conn: crate::conn::ConnInfo,
) -> Response<DevBody> {
    let path = req.uri().path();
    if let Some(rest) = path.strip_prefix(DEV_PREFIX) {
        return match rest {
            "live.js" => {
                let mut r = Response::new(Either::Left(Either::Left(Full::new(
                    Bytes::from_static(LIVE_JS.as_bytes()),
                ))));
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/javascript; charset=utf-8"),
                );
                r.headers_mut()
                    .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                r
            }
            "events" => events(&state),
            _ => {
                let mut r = Response::new(Either::Left(Either::Left(Full::new(
                    Bytes::from_static(b"Not Found\n"),
                ))));
                *r.status_mut() = StatusCode::NOT_FOUND;
                r
            }
        };
    }
    crate::handler::handle(req, shared, conn)
        .await
        .map(Either::Left)
}

/// An event-stream response: the current errors first, then every event broadcast.
fn events(state: &Arc<DevState>) -> Response<DevBody> {
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    let mut sub = state.events.subscribe();
    let changed_ms = state.changed_ms.load(std::sync::atomic::Ordering::Relaxed);
    let errors = state
        .errors
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    tokio::spawn(async move {
        let first = if errors.is_empty() {
            event("ready", &format!("{{\"changed_ms\":{changed_ms}}}"))
        } else {
            event(
                "errors",
                &serde_json::to_string(&errors).unwrap_or_default(),
            )
        };
        if tx.send(first).await.is_err() {
            return;
        }
        loop {
            let next = tokio::time::timeout(Duration::from_secs(15), sub.recv()).await;
            let msg = match next {
                Ok(Ok(m)) => m,
                Ok(Err(broadcast::error::RecvError::Lagged(_))) => event("reload", "{}"),
                Ok(Err(broadcast::error::RecvError::Closed)) => return,
                // A comment keeps the connection alive and finds closed ones.
                Err(_) => Bytes::from_static(b": keep-alive\n\n"),
            };
            if tx.send(msg).await.is_err() {
                return;
            }
        }
    });
    let mut r = Response::new(Either::Right(EventBody { rx }));
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn event(name: &str, data: &str) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {data}\n\n"))
}

/// The body of an event stream: what the forwarding task sends.
pub(crate) struct EventBody {
    rx: mpsc::Receiver<Bytes>,
}

impl hyper::body::Body for EventBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<std::result::Result<Frame<Bytes>, Infallible>>> {
        self.rx.poll_recv(cx).map(|m| m.map(|b| Ok(Frame::data(b))))
    }
}

impl DevHandle {
    /// Replaces files of the site (site paths without the leading `/`; `None` removes
    /// the file) and makes the result live. HTML pages get the live-reload script.
    pub fn update(&self, changed: &[(String, Option<Arc<[u8]>>)]) -> Result<()> {
        let store = &self.shared.store;
        let mut entries: Vec<(String, Option<FileEntry>)> = Vec::with_capacity(changed.len());
        let (mut redirects, mut headers) = (None, None);
        for (path, bytes) in changed {
            let key = format!("/{path}");
            let text = || {
                bytes
                    .as_ref()
                    .map(|b| String::from_utf8_lossy(b).into_owned())
                    .unwrap_or_default()
            };
            match key.as_str() {
                "/_redirects" => redirects = Some(Redirects::parse(&text())?),
                "/_headers" => headers = Some(Headers::parse(&text())?),
                _ => {}
            }
            let Some(bytes) = bytes else {
                entries.push((key, None));
                continue;
            };
            let served: std::borrow::Cow<'_, [u8]> = if path.ends_with(".html") {
                std::borrow::Cow::Owned(inject(bytes))
            } else {
                std::borrow::Cow::Borrowed(&bytes[..])
            };
            let hash = hex(&Sha256::digest(&served));
            let blob = store.blob_path(&hash, Variant::Identity);
            if !blob.exists() {
                write_blob(&blob, &served)?;
            }
            entries.push((
                key,
                Some(FileEntry {
                    sha256: hash,
                    size: served.len() as u64,
                    content_type: crate::store::guess_content_type(path),
                    br: None,
                    gz: None,
                }),
            ));
        }
        let generation = self
            .state
            .generation
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id = DeployId::parse(&format!("{generation:016x}"))
            .ok_or_else(|| EdgeError::Manifest("bad dev deploy id".into()))?;
        let mut served = self
            .state
            .served
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let rules_changed = redirects.is_some() || headers.is_some();
        let next = match served.front.clone() {
            Some(front) => {
                let copy = |id, redirects, headers| {
                    tracing::debug!("dev server: spare copy in use; copying the file table");
                    Arc::new(front.patched(id, &entries, redirects, headers))
                };
                let next = match served.back.take() {
                    Some(mut back) => match Arc::get_mut(&mut back) {
                        Some(d) => {
                            // Rules the spare lacks are the served ones, unless new.
                            let behind = served.rules_behind;
                            let redirects =
                                redirects.or_else(|| behind.then(|| front.redirects.clone()));
                            let headers = headers.or_else(|| behind.then(|| front.headers.clone()));
                            d.apply(id.clone(), &served.behind, None, None);
                            d.apply(id, &entries, redirects, headers);
                            back
                        }
                        None => copy(id, redirects, headers),
                    },
                    None => copy(id, redirects, headers),
                };
                served.back = Some(front);
                served.behind = entries;
                served.rules_behind = rules_changed;
                next
            }
            None => {
                let deploy = Deploy {
                    id,
                    site: SITE.into(),
                    created: std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_secs())
                        .unwrap_or(0),
                    files: entries
                        .into_iter()
                        .filter_map(|(k, e)| Some((k, e?)))
                        .collect::<BTreeMap<_, _>>(),
                };
                let next = Arc::new(LiveDeploy::load(store, deploy, &mut Interner::default())?);
                served.back = None;
                served.behind = Vec::new();
                served.rules_behind = false;
                next
            }
        };
        served.front = Some(next.clone());
        // Precomputed headers name the deploy's modification time and rules: a new
        // policy generation retires those of the spare copy's untouched files.
        let cfg = self.shared.config.load();
        self.shared
            .policy
            .store(Arc::new(crate::state::Policy::new(&cfg)));
        self.shared
            .table
            .store(Arc::new(RoutingTable::single(SITE, next)));
        Ok(())
    }

    /// Replaces every file of the site with `files` (after a full rebuild).
    pub fn replace_all(&self, files: &[(String, Option<Arc<[u8]>>)]) -> Result<()> {
        *self
            .state
            .served
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Served::default();
        self.update(files)
    }

    fn mark_changed(&self) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        self.state
            .changed_ms
            .store(now, std::sync::atomic::Ordering::Relaxed);
    }

    /// Tells the browsers to reload the page.
    pub fn reload(&self) {
        self.mark_changed();
        let _ = self.state.events.send(event("reload", "{}"));
    }

    /// Tells the browsers to swap these stylesheets (site paths) without a reload.
    pub fn swap_css(&self, paths: &[String]) {
        let data = serde_json::to_string(paths).unwrap_or_else(|_| "[]".into());
        self.mark_changed();
        let _ = self.state.events.send(event("css", &data));
    }

    /// Shows these errors over every page (or clears them when empty).
    pub fn set_errors(&self, errors: Vec<DevError>) {
        let mut current = self
            .state
            .errors
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if *current == errors {
            return;
        }
        let msg = if errors.is_empty() {
            event("ok", "{}")
        } else {
            event(
                "errors",
                &serde_json::to_string(&errors).unwrap_or_default(),
            )
        };
        *current = errors;
        let _ = self.state.events.send(msg);
    }
}

/// The page with the live-reload script before its closing `</body>` (or at its end).
fn inject(html: &[u8]) -> Vec<u8> {
    let at = html
        .windows(7)
        .rposition(|w| w.eq_ignore_ascii_case(b"</body>"))
        .unwrap_or(html.len());
    let mut out = Vec::with_capacity(html.len() + SCRIPT_TAG.len());
    out.extend_from_slice(&html[..at]);
    out.extend_from_slice(SCRIPT_TAG.as_bytes());
    out.extend_from_slice(&html[at..]);
    out
}

fn write_blob(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| EdgeError::io(dir, e))?;
    let tmp = path.with_extension("dev-tmp");
    std::fs::write(&tmp, bytes).map_err(|e| EdgeError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| EdgeError::io(path, e))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_goes_before_body_end() {
        let out = inject(b"<html><body><p>x</p></BODY></html>");
        assert_eq!(
            String::from_utf8_lossy(&out),
            format!("<html><body><p>x</p>{SCRIPT_TAG}</BODY></html>")
        );
        let out = inject(b"<p>no body</p>");
        assert!(String::from_utf8_lossy(&out).ends_with(SCRIPT_TAG));
    }
}

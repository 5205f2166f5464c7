//! One request to one response: method and body checks, Host routing, the site's
//! `_redirects`, file resolution (clean URLs, 404.html), then the response with its
//! caching, conditional, range, encoding and security headers.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;

use crate::conn::ConnInfo;
use crate::events::{self, CacheUse};
use crate::negotiate::{self, RangeResult};
use crate::path;
use crate::routing::{LiveDeploy, Route, ServedFile, SiteClass};
use crate::state::{Policy, Shared};
use crate::store::Variant;

/// The response body type: a body in memory, or a large file streamed from the store.
pub(crate) type Body = http_body_util::Either<Full<Bytes>, FileBody>;

// Parsed once, not on every request.
const SURROGATE_KEY: header::HeaderName = header::HeaderName::from_static("surrogate-key");
const CACHE_TAG: header::HeaderName = header::HeaderName::from_static("cache-tag");
const CDN_CACHE_CONTROL: header::HeaderName = header::HeaderName::from_static("cdn-cache-control");

fn full(b: Bytes) -> Body {
    http_body_util::Either::Left(Full::new(b))
}

/// A response and how its body was found (for the access event).
struct Reply {
    resp: Response<Body>,
    cache: CacheUse,
}

impl From<Response<Body>> for Reply {
    /// A response with no stored body (redirects, errors, built-in pages).
    fn from(resp: Response<Body>) -> Reply {
        Reply {
            resp,
            cache: CacheUse::None,
        }
    }
}

/// Whether a request came from the lean HTTP/1.1 path, whose writer takes prepared
/// header lines ([`crate::hot::WireHead`]).
fn is_lean<B: 'static>() -> bool {
    std::any::TypeId::of::<B>() == std::any::TypeId::of::<crate::h1::LeanBody>()
}

/// Handles one request, recording it in the metrics and, when enabled, as an access
/// event (queued, never waited for).
pub(crate) async fn handle<B: 'static>(
    req: Request<B>,
    shared: Arc<Shared>,
    conn: ConnInfo,
) -> Response<Body> {
    let start = Instant::now();
    let forwarded = shared.events.as_ref().is_some_and(|e| e.keeps_forwarded());
    let wanted = Wanted::scan(req.headers(), forwarded);
    let (class, site, Reply { resp, cache }) = route_and_serve(&req, &wanted, &shared).await;
    let bytes = if req.method() == Method::HEAD {
        0
    } else {
        hyper::body::Body::size_hint(resp.body())
            .exact()
            .unwrap_or(0)
    };
    let took = start.elapsed();
    let status = resp.status().as_u16();
    shared.metrics.request(class, status, bytes, took);
    if let Some(ev) = &shared.events {
        let served = events::Served {
            start,
            duration: took,
            site,
            status,
            bytes,
            cache,
            content_type: resp.headers().get(header::CONTENT_TYPE).or_else(|| {
                resp.extensions()
                    .get::<crate::hot::WireHead>()
                    .and_then(|w| w.content_type.as_ref())
            }),
        };
        ev.emit(&req, &conn, &wanted.event, served);
    }
    resp
}

/// A small text response with no site information.
fn plain(status: StatusCode, text: &'static str) -> Response<Body> {
    let mut r = Response::new(full(Bytes::from_static(text.as_bytes())));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

/// The request headers the handler reads, found in one pass over the map: a request
/// carries a handful of headers, and walking them is cheaper than a hashed lookup per
/// name. The first value of each wins, as `HeaderMap::get` would give. The same pass
/// finds what an access event keeps.
#[derive(Default)]
struct Wanted<'a> {
    /// What an event keeps, `Host` included (the handler reads it there too).
    event: events::EventHeaders<'a>,
    content_length: Option<&'a HeaderValue>,
    transfer_encoding: bool,
    accept_encoding: Option<&'a HeaderValue>,
    if_none_match: Option<&'a HeaderValue>,
    if_modified_since: Option<&'a HeaderValue>,
    range: Option<&'a HeaderValue>,
    if_range: Option<&'a HeaderValue>,
}

impl<'a> Wanted<'a> {
    /// `forwarded`: also find `X-Forwarded-For` and `Forwarded` (for events behind
    /// trusted proxies).
    fn scan(headers: &'a HeaderMap, forwarded: bool) -> Wanted<'a> {
        let mut w = Wanted::default();
        for (name, value) in headers {
            let slot = if name == header::HOST {
                &mut w.event.host
            } else if name == header::ACCEPT_ENCODING {
                &mut w.accept_encoding
            } else if name == header::USER_AGENT {
                &mut w.event.user_agent
            } else if name == header::REFERER {
                &mut w.event.referer
            } else if name == header::CONTENT_LENGTH {
                &mut w.content_length
            } else if name == header::TRANSFER_ENCODING {
                w.transfer_encoding = true;
                continue;
            } else if name == header::IF_NONE_MATCH {
                &mut w.if_none_match
            } else if name == header::IF_MODIFIED_SINCE {
                &mut w.if_modified_since
            } else if name == header::RANGE {
                &mut w.range
            } else if name == header::IF_RANGE {
                &mut w.if_range
            } else if forwarded && name == events::X_FORWARDED_FOR {
                &mut w.event.forwarded_for
            } else if forwarded && name == header::FORWARDED {
                &mut w.event.forwarded
            } else {
                continue;
            };
            if slot.is_none() {
                *slot = Some(value);
            }
        }
        w
    }
}

async fn route_and_serve<B: 'static>(
    req: &Request<B>,
    wanted: &Wanted<'_>,
    shared: &Arc<Shared>,
) -> (SiteClass, Option<Arc<str>>, Reply) {
    let head = req.method() == Method::HEAD;
    if req.method() != Method::GET && !head {
        let mut r = plain(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed\n");
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return (SiteClass::Unknown, None, r.into());
    }
    // Static GETs take no body.
    let has_body =
        wanted.transfer_encoding || wanted.content_length.is_some_and(|v| v.as_bytes() != b"0");
    if has_body {
        let mut r = plain(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Request bodies are not accepted\n",
        );
        r.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return (SiteClass::Unknown, None, r.into());
    }
    let host = req
        .uri()
        .authority()
        .map(|a| a.as_str())
        .or_else(|| wanted.event.host.and_then(|h| h.to_str().ok()));
    if host.is_none() && req.version() == http::Version::HTTP_11 {
        return (
            SiteClass::Unknown,
            None,
            plain(StatusCode::BAD_REQUEST, "Bad Request: no Host\n").into(),
        );
    }
    let route = shared.table.load().route(host);
    let (deploy, class) = match route {
        Route::Live(d, class) => (d, class),
        Route::Preview(site, id) => match Box::pin(shared.preview(&site.name, &id)).await {
            Some(d) => (d, SiteClass::Preview),
            None => return (SiteClass::Unknown, None, not_found_neutral().into()),
        },
        Route::Host(target, site) => {
            let policy = shared.policy.load();
            let path = path::normalize(req.uri().path())
                .map(|p| path::encode(&p))
                .unwrap_or_else(|_| "/".into());
            let mut loc = format!("{}://{}{}", policy.redirect_scheme, target, path);
            if let Some(q) = req.uri().query() {
                loc.push('?');
                loc.push_str(q);
            }
            return (
                SiteClass::Site,
                Some(site),
                redirect(StatusCode::MOVED_PERMANENTLY, &loc).into(),
            );
        }
        Route::Unknown => return (SiteClass::Unknown, None, not_found_neutral().into()),
    };
    let Ok(path) = path::normalize(req.uri().path()) else {
        return (
            class,
            Some(deploy.site.clone()),
            plain(StatusCode::BAD_REQUEST, "Bad Request\n").into(),
        );
    };
    let policy = shared.policy.load();
    let resp = serve_site(req, wanted, shared, &policy, &deploy, &path).await;
    (class, Some(deploy.site.clone()), resp)
}

/// The 404 for hosts the node does not serve: the same bytes whatever the host.
fn not_found_neutral() -> Response<Body> {
    plain(StatusCode::NOT_FOUND, "Not Found\n")
}

fn redirect(status: StatusCode, location: &str) -> Response<Body> {
    let mut r = Response::new(full(Bytes::new()));
    *r.status_mut() = status;
    let loc = HeaderValue::from_str(location).unwrap_or(HeaderValue::from_static("/"));
    r.headers_mut().insert(header::LOCATION, loc);
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    r
}

/// Where a normalized path leads within a deploy.
enum Resolved<'a> {
    File(&'a str, &'a ServedFile),
    /// Clean URL redirect to this (decoded) path.
    Redirect(String),
    Missing,
}

/// Looks a path up: the exact file, `dir/index.html` for `dir/`, a 301 from `dir` to
/// `dir/`, `name.html` for `name`, and a 301 from `name/` to `name` when only
/// `name.html` exists. Rule files are never served.
fn resolve<'a>(deploy: &'a LiveDeploy, path: &str) -> Resolved<'a> {
    let get = |p: &str| -> Option<(&'a str, &'a ServedFile)> {
        if p == "/_redirects" || p == "/_headers" {
            return None;
        }
        deploy.files.get_key_value(p).map(|(k, v)| (&**k, v))
    };
    if path.ends_with('/') {
        if let Some((k, f)) = get(&format!("{path}index.html")) {
            return Resolved::File(k, f);
        }
        let bare = path.trim_end_matches('/');
        if !bare.is_empty() && get(&format!("{bare}.html")).is_some() {
            return Resolved::Redirect(bare.to_string());
        }
        return Resolved::Missing;
    }
    if let Some((k, f)) = get(path) {
        return Resolved::File(k, f);
    }
    if get(&format!("{path}/index.html")).is_some() {
        return Resolved::Redirect(format!("{path}/"));
    }
    if let Some((k, f)) = get(&format!("{path}.html")) {
        return Resolved::File(k, f);
    }
    Resolved::Missing
}

async fn serve_site<B: 'static>(
    req: &Request<B>,
    rh: &Wanted<'_>,
    shared: &Arc<Shared>,
    policy: &Policy,
    deploy: &LiveDeploy,
    path: &str,
) -> Reply {
    let query = req.uri().query();
    if !deploy.redirects.is_empty()
        && let Some(hit) = deploy.redirects.find(path, query, || {
            !matches!(resolve(deploy, path), Resolved::Missing)
        })
    {
        match hit.status {
            200 | 404 | 410 => {
                let status = StatusCode::from_u16(hit.status).unwrap_or(StatusCode::OK);
                let target = hit.target.split('?').next().unwrap_or("/");
                let found = path::normalize(target)
                    .ok()
                    .and_then(|t| match resolve(deploy, &t) {
                        Resolved::File(k, f) => Some((k, f)),
                        // A rewrite serves what the clean-URL redirect would lead to.
                        Resolved::Redirect(r) => {
                            let file = if r.ends_with('/') {
                                format!("{r}index.html")
                            } else {
                                format!("{r}.html")
                            };
                            deploy
                                .files
                                .get_key_value(file.as_str())
                                .map(|(k, v)| (&**k, v))
                        }
                        Resolved::Missing => None,
                    });
                return match found {
                    Some((k, f)) => {
                        file_response(req, rh, shared, policy, deploy, path, k, f, status).await
                    }
                    None if status == StatusCode::OK => {
                        not_found(req, rh, shared, policy, deploy, path).await
                    }
                    None => site_plain(policy, deploy, path, status).into(),
                };
            }
            code => {
                let mut loc = path::safe_location(&hit.target);
                if hit.keep_query
                    && let Some(q) = query
                {
                    loc.push('?');
                    loc.push_str(q);
                }
                let status = StatusCode::from_u16(code).unwrap_or(StatusCode::MOVED_PERMANENTLY);
                let mut r = redirect(status, &loc);
                site_headers(r.headers_mut(), policy, deploy, path);
                return r.into();
            }
        }
    }
    match resolve(deploy, path) {
        Resolved::File(k, f) => {
            file_response(req, rh, shared, policy, deploy, path, k, f, StatusCode::OK).await
        }
        Resolved::Redirect(to) => {
            let mut loc = path::safe_location(&path::encode(&to));
            if let Some(q) = query {
                loc.push('?');
                loc.push_str(q);
            }
            let mut r = redirect(StatusCode::MOVED_PERMANENTLY, &loc);
            site_headers(r.headers_mut(), policy, deploy, path);
            r.into()
        }
        Resolved::Missing => not_found(req, rh, shared, policy, deploy, path).await,
    }
}

async fn not_found<B: 'static>(
    req: &Request<B>,
    rh: &Wanted<'_>,
    shared: &Arc<Shared>,
    policy: &Policy,
    deploy: &LiveDeploy,
    path: &str,
) -> Reply {
    match deploy.files.get_key_value("/404.html") {
        Some((k, f)) => {
            file_response(
                req,
                rh,
                shared,
                policy,
                deploy,
                path,
                k,
                f,
                StatusCode::NOT_FOUND,
            )
            .await
        }
        None => site_plain(policy, deploy, path, StatusCode::NOT_FOUND).into(),
    }
}

fn site_plain(
    policy: &Policy,
    deploy: &LiveDeploy,
    path: &str,
    status: StatusCode,
) -> Response<Body> {
    let text = if status == StatusCode::GONE {
        "Gone\n"
    } else {
        "Not Found\n"
    };
    let mut r = plain(status, text);
    site_headers(r.headers_mut(), policy, deploy, path);
    r.headers_mut()
        .insert(header::CACHE_CONTROL, policy.revalidate.clone());
    r
}

/// Headers every response of a site carries: purge tags, security defaults, then the
/// site's `_headers` for the path (which override the defaults).
fn site_headers(h: &mut HeaderMap, policy: &Policy, deploy: &LiveDeploy, path: &str) {
    h.insert(SURROGATE_KEY, deploy.surrogate_key.clone());
    h.insert(CACHE_TAG, deploy.cache_tag.clone());
    for (name, value) in &policy.security {
        h.insert(name.clone(), value.clone());
    }
    if !deploy.headers.is_empty() {
        for (name, value) in deploy.headers.for_path(path) {
            h.insert(name, value);
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn file_response<B: 'static>(
    req: &Request<B>,
    rh: &Wanted<'_>,
    shared: &Arc<Shared>,
    policy: &Policy,
    deploy: &LiveDeploy,
    path: &str,
    _file_path: &str,
    file: &ServedFile,
    status: StatusCode,
) -> Reply {
    let head = req.method() == Method::HEAD;
    // A plain 200 (no conditional or range headers) reuses the headers it got last time.
    let plain = status == StatusCode::OK
        && rh.if_none_match.is_none()
        && rh.if_modified_since.is_none()
        && rh.range.is_none();
    if plain {
        let variant = negotiate::choose_encoding(
            rh.accept_encoding.map(|v| v.as_bytes()),
            file.br.is_some(),
            file.gz.is_some(),
        );
        // The lean HTTP/1.1 writer takes the prepared lines instead of a header map.
        let wire = if !head && is_lean::<B>() {
            file.hot.get_wire(variant, path, policy.generation)
        } else {
            None
        };
        let headers = match wire {
            Some(_) => Some(HeaderMap::new()),
            None => file.hot.get(variant, path, policy.generation),
        };
        if let Some(h) = headers {
            let enc_len = match variant {
                Variant::Br => file.br.unwrap_or(0),
                Variant::Gzip => file.gz.unwrap_or(0),
                Variant::Identity => file.size,
            };
            let mut r = send_body(
                head,
                shared,
                policy,
                deploy,
                file,
                variant,
                enc_len,
                RangeResult::Full,
                status,
                h,
            )
            .await;
            // An error answer carries its own headers; a body gets the prepared ones.
            if let Some(wire) = wire
                && r.resp.headers().is_empty()
            {
                r.resp.extensions_mut().insert(wire);
            }
            return r;
        }
    }
    let mut h = HeaderMap::with_capacity(16);
    h.insert(header::CONTENT_TYPE, file.content_type.clone());
    h.insert(header::LAST_MODIFIED, deploy.last_modified.clone());
    if file.fingerprinted && status == StatusCode::OK {
        h.insert(header::CACHE_CONTROL, policy.immutable.clone());
    } else {
        h.insert(header::CACHE_CONTROL, policy.revalidate.clone());
        h.insert(CDN_CACHE_CONTROL, policy.cdn.clone());
    }
    let compressible = file.br.is_some() || file.gz.is_some();
    if compressible {
        h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    }
    site_headers(&mut h, policy, deploy, path);

    let ok = status == StatusCode::OK;
    // Conditional requests: If-None-Match wins over If-Modified-Since.
    if ok {
        let not_modified = match rh.if_none_match {
            Some(inm) => negotiate::none_match(inm.as_bytes(), &file.hash),
            None => rh
                .if_modified_since
                .is_some_and(|ims| negotiate::not_modified_since(ims.as_bytes(), deploy.modified)),
        };
        if not_modified {
            h.insert(header::ETAG, file.etag.clone());
            h.remove(header::CONTENT_TYPE);
            let mut r = Response::new(full(Bytes::new()));
            *r.status_mut() = StatusCode::NOT_MODIFIED;
            *r.headers_mut() = h;
            return r.into();
        }
    }

    // Range requests apply to the identity body.
    let mut range = RangeResult::Full;
    if ok && let Some(rv) = rh.range {
        let allowed = rh.if_range.is_none_or(|ir| {
            negotiate::if_range_ok(
                ir.as_bytes(),
                file.etag.as_bytes(),
                deploy.last_modified.as_bytes(),
            )
        });
        if allowed {
            range = negotiate::parse_range(rv.as_bytes(), file.size);
        }
    }
    if ok || status == StatusCode::NOT_FOUND {
        h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    }
    if range == RangeResult::Unsatisfiable {
        h.insert(header::ETAG, file.etag.clone());
        h.insert(
            header::CONTENT_RANGE,
            HeaderValue::from_str(&format!("bytes */{}", file.size))
                .unwrap_or(HeaderValue::from_static("bytes */0")),
        );
        h.remove(header::CONTENT_TYPE);
        let mut r = Response::new(full(Bytes::new()));
        *r.status_mut() = StatusCode::RANGE_NOT_SATISFIABLE;
        *r.headers_mut() = h;
        return r.into();
    }
    let variant = if range == RangeResult::Full {
        negotiate::choose_encoding(
            rh.accept_encoding.map(|v| v.as_bytes()),
            file.br.is_some(),
            file.gz.is_some(),
        )
    } else {
        Variant::Identity
    };
    let (etag, enc_len) = match variant {
        Variant::Br => {
            h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("br"));
            (suffixed(&file.etag, "-br"), file.br.unwrap_or(0))
        }
        Variant::Gzip => {
            h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            (suffixed(&file.etag, "-gz"), file.gz.unwrap_or(0))
        }
        Variant::Identity => (file.etag.clone(), file.size),
    };
    h.insert(header::ETAG, etag);
    if plain {
        file.hot.put(variant, path, policy.generation, &h);
    }
    send_body(
        head, shared, policy, deploy, file, variant, enc_len, range, status, h,
    )
    .await
}

/// The response for a chosen variant and range, its headers built: HEAD, a body
/// streamed from disk, or one from the blob cache (sliced for a range).
#[allow(clippy::too_many_arguments)]
async fn send_body(
    head: bool,
    shared: &Arc<Shared>,
    policy: &Policy,
    deploy: &LiveDeploy,
    file: &ServedFile,
    variant: Variant,
    enc_len: u64,
    range: RangeResult,
    status: StatusCode,
    mut h: HeaderMap,
) -> Reply {
    let mut status = status;
    let mut cache = CacheUse::None;
    let body = if head {
        if let RangeResult::Partial(s, e) = range {
            status = StatusCode::PARTIAL_CONTENT;
            h.insert(header::CONTENT_RANGE, content_range(s, e, file.size));
            h.insert(header::CONTENT_LENGTH, HeaderValue::from(e - s));
        } else {
            h.insert(header::CONTENT_LENGTH, HeaderValue::from(enc_len));
        }
        Bytes::new()
    } else if enc_len > shared.blobs.max_object() {
        // Too large to cache: streamed from disk, never held whole in memory.
        shared.metrics.cache_miss();
        let (start, len) = match range {
            RangeResult::Partial(s, e) => {
                status = StatusCode::PARTIAL_CONTENT;
                h.insert(header::CONTENT_RANGE, content_range(s, e, file.size));
                (s, e - s)
            }
            _ => (0, enc_len),
        };
        let deadline = Instant::now() + policy.response_deadline;
        let path = shared.store.blob_path(&file.hash, variant);
        match Box::pin(FileBody::open(path, start, len, deadline)).await {
            Ok(b) => {
                let mut r = Response::new(http_body_util::Either::Right(b));
                *r.status_mut() = status;
                *r.headers_mut() = h;
                return Reply {
                    resp: r,
                    cache: CacheUse::Miss,
                };
            }
            Err(e) => {
                tracing::error!(site = %deploy.site, hash = %file.hash, error = %e, "blob unreadable");
                return Reply {
                    resp: plain(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error\n"),
                    cache: CacheUse::Miss,
                };
            }
        }
    } else {
        let cached = shared
            .blobs
            .get_cached(&file.hash, variant, &shared.metrics);
        cache = if cached.is_some() {
            CacheUse::Hit
        } else {
            CacheUse::Miss
        };
        let read = async {
            match cached {
                Some(b) => Ok(Ok(b)),
                None => {
                    // Boxed: the cold path's future would otherwise grow every
                    // request's future, which is moved on each call.
                    let read = Box::pin(shared.blobs.get(&file.hash, variant, &shared.metrics));
                    tokio::time::timeout(policy.request_timeout, read).await
                }
            }
        };
        let bytes = match read.await {
            Ok(Ok(b)) => b,
            Err(_) => {
                shared.metrics.timeout();
                tracing::error!(site = %deploy.site, hash = %file.hash, "blob read timed out");
                let resp = plain(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable\n");
                return Reply { resp, cache };
            }
            Ok(Err(e)) => {
                tracing::error!(site = %deploy.site, hash = %file.hash, error = %e, "blob unreadable");
                let resp = plain(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error\n");
                return Reply { resp, cache };
            }
        };
        match range {
            RangeResult::Partial(s, e) => {
                let (s, e) = (s as usize, (e as usize).min(bytes.len()));
                if s >= e {
                    Bytes::new()
                } else {
                    status = StatusCode::PARTIAL_CONTENT;
                    h.insert(
                        header::CONTENT_RANGE,
                        content_range(s as u64, e as u64, file.size),
                    );
                    bytes.slice(s..e)
                }
            }
            _ => bytes,
        }
    };
    let mut r = Response::new(full(body));
    *r.status_mut() = status;
    *r.headers_mut() = h;
    Reply { resp: r, cache }
}

fn content_range(start: u64, end: u64, size: u64) -> HeaderValue {
    HeaderValue::from_str(&format!("bytes {}-{}/{}", start, end - 1, size))
        .unwrap_or(HeaderValue::from_static("bytes */0"))
}

/// `"hash"` -> `"hash-br"`.
fn suffixed(etag: &HeaderValue, suffix: &str) -> HeaderValue {
    let b = etag.as_bytes();
    let inner = &b[..b.len().saturating_sub(1)];
    let mut v = Vec::with_capacity(b.len() + suffix.len());
    v.extend_from_slice(inner);
    v.extend_from_slice(suffix.as_bytes());
    v.push(b'"');
    HeaderValue::from_bytes(&v).unwrap_or_else(|_| etag.clone())
}

/// A byte range of a stored file, read in 64 KiB chunks as the client takes them.
pub(crate) struct FileBody {
    file: tokio::fs::File,
    remaining: u64,
    chunk: Vec<u8>,
    /// The whole-request deadline: past it the stream fails and the connection closes.
    deadline: Instant,
}

impl FileBody {
    async fn open(
        path: std::path::PathBuf,
        start: u64,
        len: u64,
        deadline: Instant,
    ) -> std::io::Result<FileBody> {
        use tokio::io::AsyncSeekExt;
        let mut file = tokio::fs::File::open(path).await?;
        if start > 0 {
            file.seek(std::io::SeekFrom::Start(start)).await?;
        }
        Ok(FileBody {
            file,
            remaining: len,
            chunk: Vec::new(),
            deadline,
        })
    }
}

impl hyper::body::Body for FileBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, std::io::Error>>> {
        use std::task::Poll;
        use tokio::io::AsyncRead;
        let this = &mut *self;
        if this.remaining == 0 {
            return Poll::Ready(None);
        }
        if Instant::now() >= this.deadline {
            return Poll::Ready(Some(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "response deadline passed",
            ))));
        }
        let want = this.remaining.min(64 * 1024) as usize;
        this.chunk.resize(want, 0);
        let mut buf = tokio::io::ReadBuf::new(&mut this.chunk);
        match std::pin::Pin::new(&mut this.file).poll_read(cx, &mut buf) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => Poll::Ready(Some(Err(e))),
            Poll::Ready(Ok(())) => {
                let n = buf.filled().len();
                if n == 0 {
                    return Poll::Ready(Some(Err(std::io::ErrorKind::UnexpectedEof.into())));
                }
                this.remaining -= n as u64;
                let data = Bytes::copy_from_slice(&this.chunk[..n]);
                Poll::Ready(Some(Ok(hyper::body::Frame::data(data))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        hyper::body::SizeHint::with_exact(self.remaining)
    }
}

//! Precomputed response headers for the common request: a plain `200` GET or HEAD of a
//! file (no conditional or range headers). Building a response's dozen headers one
//! hashed insert at a time costs more than the rest of the handler; instead each served
//! file keeps, per encoding variant, the finished header map of its last plain
//! response, and a request clones it.
//!
//! A template is valid for one request path (site `_headers` rules match the path, and
//! a file can be reached by several) and one header policy (`edge.toml` reloads bump
//! [`next_generation`]); anything else rebuilds it. The deploy and the file themselves
//! are immutable, so nothing else can make a template stale. Bodies are not kept here:
//! they stay in the byte-bounded blob cache. Each template also keeps its headers
//! serialized ([`WireHead`]) for the lean HTTP/1.1 writer.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwapOption;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue};

use crate::store::Variant;

static GENERATION: AtomicU64 = AtomicU64::new(1);

/// A fresh header-policy generation.
pub(crate) fn next_generation() -> u64 {
    GENERATION.fetch_add(1, Ordering::Relaxed)
}

struct Template {
    path: Box<str>,
    generation: u64,
    headers: HeaderMap,
    /// The same headers as HTTP/1.1 header lines, for the lean writer.
    wire: WireHead,
}

/// A response's headers already serialized as HTTP/1.1 lines (`name: value\r\n`),
/// carried in a response's extensions with its header map left empty: the lean
/// HTTP/1.1 writer ([`crate::h1`]) sends the lines as they are, which saves cloning,
/// serializing and dropping a dozen headers per request.
#[derive(Clone)]
pub(crate) struct WireHead {
    pub(crate) lines: Bytes,
    /// The response's content type, for access events.
    pub(crate) content_type: Option<HeaderValue>,
}

impl WireHead {
    fn new(headers: &HeaderMap) -> WireHead {
        let mut out = Vec::with_capacity(512);
        for (name, value) in headers {
            out.extend_from_slice(name.as_str().as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        WireHead {
            lines: Bytes::from(out),
            content_type: headers.get(http::header::CONTENT_TYPE).cloned(),
        }
    }
}

/// One template slot per encoding variant of a served file.
#[derive(Default)]
pub(crate) struct HotHeaders([ArcSwapOption<Template>; 3]);

impl std::fmt::Debug for HotHeaders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HotHeaders")
    }
}

fn slot(v: Variant) -> usize {
    match v {
        Variant::Identity => 0,
        Variant::Br => 1,
        Variant::Gzip => 2,
    }
}

impl HotHeaders {
    /// What `pick` takes from the template of the plain response for `path` under
    /// policy `generation`, if it was built already.
    fn lookup<T>(
        &self,
        v: Variant,
        path: &str,
        generation: u64,
        pick: impl FnOnce(&Template) -> T,
    ) -> Option<T> {
        let t = self.0[slot(v)].load();
        match &*t {
            Some(t) if t.generation == generation && &*t.path == path => Some(pick(t)),
            _ => None,
        }
    }

    /// The headers of the plain response for `path` under policy `generation`, if
    /// they were built already.
    pub(crate) fn get(&self, v: Variant, path: &str, generation: u64) -> Option<HeaderMap> {
        self.lookup(v, path, generation, |t| t.headers.clone())
    }

    /// Like [`HotHeaders::get`], as serialized lines.
    pub(crate) fn get_wire(&self, v: Variant, path: &str, generation: u64) -> Option<WireHead> {
        self.lookup(v, path, generation, |t| t.wire.clone())
    }

    /// Remembers the headers built for `path` under policy `generation`.
    pub(crate) fn put(&self, v: Variant, path: &str, generation: u64, headers: &HeaderMap) {
        self.0[slot(v)].store(Some(Arc::new(Template {
            path: path.into(),
            generation,
            headers: headers.clone(),
            wire: WireHead::new(headers),
        })));
    }
}

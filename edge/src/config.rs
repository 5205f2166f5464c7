//! `edge.toml`: the node's configuration. Every field has a default that works, so an
//! empty file (or no file) is a valid configuration.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{EdgeError, Result};

/// The whole configuration of an edge node (`edge.toml`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EdgeConfig {
    /// Address of the public HTTP listener (HTTP/1.1 and h2c). Port 0 picks a free port.
    pub listen: String,
    /// Address of the admin listener (`/healthz`, `/metrics`); empty disables it.
    pub admin: String,
    /// The data directory (blobs, sites, deploys).
    pub data_dir: PathBuf,
    /// Worker threads; 0 means one per available core.
    pub workers: usize,
    /// The in-memory blob cache.
    pub cache: CacheConfig,
    /// Connection and request limits.
    pub limits: LimitsConfig,
    /// Host routing.
    pub routing: RoutingConfig,
    /// Response headers.
    pub http: HttpConfig,
    /// The publish API on the admin listener (docs/publish-api.md).
    pub api: crate::api::ApiConfig,
    /// Access events (docs/events.md).
    pub events: crate::events::EventsConfig,
    /// HTTPS and ACME (docs/tls.md); off until `tls.listen` is set.
    pub tls: crate::tls::config::TlsConfig,
}

impl Default for EdgeConfig {
    fn default() -> Self {
        EdgeConfig {
            listen: "127.0.0.1:8080".into(),
            admin: "127.0.0.1:9090".into(),
            data_dir: PathBuf::from("./qpage-data"),
            workers: 0,
            cache: CacheConfig::default(),
            limits: LimitsConfig::default(),
            routing: RoutingConfig::default(),
            http: HttpConfig::default(),
            api: crate::api::ApiConfig::default(),
            events: crate::events::EventsConfig::default(),
            tls: crate::tls::config::TlsConfig::default(),
        }
    }
}

/// The in-memory cache of blobs and their compressed variants.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    /// Upper bound of the cache, in bytes of cached bodies.
    pub max_bytes: u64,
    /// Bodies larger than this are read from disk on each request and never cached.
    pub max_object_bytes: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            max_bytes: 256 * 1024 * 1024,
            max_object_bytes: 8 * 1024 * 1024,
        }
    }
}

/// Limits that keep the node up under slow, greedy or hostile clients.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Time a client has to send a request's headers, in milliseconds; also the idle
    /// time allowed between requests on a kept-alive connection.
    pub header_read_timeout_ms: u64,
    /// Time a response may go without progress: a body read from disk, or a write to a
    /// client that stopped reading (the connection is then closed).
    pub request_timeout_ms: u64,
    /// Maximum size of a request's start line and headers, in bytes (431 beyond).
    pub max_header_bytes: usize,
    /// Maximum number of request headers (431 beyond).
    pub max_headers: usize,
    /// Maximum open client connections; beyond, a new connection gets a 503 and is closed.
    pub max_connections: usize,
    /// Maximum open connections from one client IP; beyond, a 503 and close.
    pub max_connections_per_ip: usize,
    /// Maximum concurrent HTTP/2 streams per connection.
    pub max_h2_streams: u32,
    /// On shutdown, time given to in-flight requests to finish, in milliseconds.
    pub drain_timeout_ms: u64,
    /// Whole-request deadline: time from a request's headers to its response's last
    /// byte, in milliseconds, however steadily the client reads (the connection is
    /// then closed). Header reading has its own limit, `header_read_timeout_ms`.
    pub response_deadline_ms: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            header_read_timeout_ms: 10_000,
            request_timeout_ms: 60_000,
            max_header_bytes: 16 * 1024,
            max_headers: 64,
            max_connections: 20_000,
            max_connections_per_ip: 512,
            max_h2_streams: 128,
            drain_timeout_ms: 10_000,
            response_deadline_ms: 300_000,
        }
    }
}

/// How a request's Host finds its site.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RoutingConfig {
    /// Wildcard preview domains: `SITE.<domain>` serves site SITE's live deploy and
    /// `DEPLOY--SITE.<domain>` one of its deploys, e.g. `preview.example.net`.
    pub preview_domains: Vec<String>,
    /// Site served for unknown hosts; unset means a neutral 404.
    pub default_site: Option<String>,
    /// Scheme of the `Location` of host redirects (www/apex).
    pub redirect_scheme: String,
    /// How often the store is checked for routing changes, in milliseconds (0: never;
    /// SIGHUP still reloads).
    pub reload_poll_ms: u64,
}

impl Default for RoutingConfig {
    fn default() -> Self {
        RoutingConfig {
            preview_domains: Vec::new(),
            default_site: None,
            redirect_scheme: "https".into(),
            reload_poll_ms: 1000,
        }
    }
}

/// Response header policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// `max-age` for browsers on HTML and other non-fingerprinted files (0: revalidate each time).
    pub browser_max_age: u64,
    /// How long CDNs may keep HTML and other non-fingerprinted files
    /// (`s-maxage` and `CDN-Cache-Control`); they purge by `Cache-Tag`/`Surrogate-Key`.
    pub cdn_max_age: u64,
    /// Headers added to every response from a site, unless its `_headers` sets them.
    pub security_headers: BTreeMap<String, String>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        let mut security_headers = BTreeMap::new();
        security_headers.insert("x-content-type-options".into(), "nosniff".into());
        security_headers.insert(
            "referrer-policy".into(),
            "strict-origin-when-cross-origin".into(),
        );
        security_headers.insert("x-frame-options".into(), "SAMEORIGIN".into());
        HttpConfig {
            browser_max_age: 0,
            cdn_max_age: 300,
            security_headers,
        }
    }
}

impl EdgeConfig {
    /// Reads `edge.toml`; a missing field takes its default.
    pub fn from_file(path: &Path) -> Result<EdgeConfig> {
        let text = std::fs::read_to_string(path).map_err(|e| EdgeError::io(path, e))?;
        Self::from_toml(&text).map_err(|e| match e {
            EdgeError::Config(m) => EdgeError::Parse {
                path: path.to_path_buf(),
                message: m,
            },
            other => other,
        })
    }

    /// Parses the text of an `edge.toml`.
    pub fn from_toml(text: &str) -> Result<EdgeConfig> {
        let cfg: EdgeConfig = toml::from_str(text).map_err(|e| EdgeError::Config(e.to_string()))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks values that serde cannot.
    pub fn validate(&self) -> Result<()> {
        if self.limits.max_header_bytes < 1024 {
            return Err(EdgeError::Config(
                "limits.max_header_bytes must be at least 1024".into(),
            ));
        }
        if self.limits.max_connections == 0 || self.limits.max_connections_per_ip == 0 {
            return Err(EdgeError::Config(
                "limits.max_connections and limits.max_connections_per_ip must be at least 1"
                    .into(),
            ));
        }
        if self.limits.header_read_timeout_ms == 0
            || self.limits.request_timeout_ms == 0
            || self.limits.response_deadline_ms == 0
        {
            return Err(EdgeError::Config("timeouts must be at least 1 ms".into()));
        }
        if self.routing.redirect_scheme != "http" && self.routing.redirect_scheme != "https" {
            return Err(EdgeError::Config(
                "routing.redirect_scheme must be \"http\" or \"https\"".into(),
            ));
        }
        self.events.validate().map_err(EdgeError::Config)?;
        self.tls.validate()?;
        for (name, value) in &self.http.security_headers {
            if http::HeaderName::from_bytes(name.as_bytes()).is_err()
                || http::HeaderValue::from_str(value).is_err()
            {
                return Err(EdgeError::Config(format!(
                    "http.security_headers: invalid header {name}: {value}"
                )));
            }
        }
        Ok(())
    }
}

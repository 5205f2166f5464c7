//! qpage-edge: serves many built sites (`dist/`) from one node.
//!
//! - [`Store`] is the content-addressed data directory: [`Store::import_dir`] turns a
//!   `dist/` into a deploy, [`Store::activate`] makes it live (one atomic rename).
//! - [`Server`] serves the store over HTTP/1.1 and h2c, and over HTTPS (HTTP/1.1 and
//!   HTTP/2, certificates from ACME or files) when `tls.listen` is set: [`Server::bind`] with an
//!   [`EdgeConfig`], then [`Server::run_until`]. Tests and `qpage dev` bind port 0
//!   in-process and read [`Server::local_addr`].
//! - [`serve_blocking`] is the whole `qpage edge serve` command: a runtime, SIGTERM
//!   drain and SIGHUP reload.
//!
//! - [`dev`] is `qpage dev`'s server: one site updated file by file, served by the same
//!   handler, with live reload.
//!
//! Request paths are never joined to filesystem paths: they are normalized
//! ([`path`]) and looked up in the deploy's manifest.

mod admin;
pub mod api;
mod cache;
pub mod client;
mod config;
mod conn;
pub mod dev;
mod error;
mod events;
mod h1;
mod handler;
mod hot;
mod metrics;
mod negotiate;
pub mod path;
pub mod publish;
mod routing;
pub mod rules;
mod server;
mod signals;
mod state;
mod store;
mod tls;
mod zerocopy;

pub use config::{CacheConfig, EdgeConfig, HttpConfig, LimitsConfig, RoutingConfig};
pub use error::{EdgeError, Result};
pub use events::{ClickHouseSinkConfig, EventsConfig, FileSinkConfig, NatsSinkConfig};
pub use metrics::{EventCounts, Metrics, SINK_CLICKHOUSE, SINK_FILE, SINK_NATS, SinkCounts};
pub use routing::{SiteClass, normalize_host};
pub use server::{Server, ServerHandle};
pub use signals::{ServeOptions, serve_blocking};
pub use store::{
    Deploy, DeployId, FileEntry, HttpsPolicy, SiteConfig, Store, WwwPolicy, check_site_name,
};
pub use tls::TlsInfo;
pub use tls::config::{AcmeConfig, CertFiles, Challenge, TlsConfig};

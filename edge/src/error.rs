//! Errors of the edge library: one enum, each variant saying what went wrong and where.

use std::path::PathBuf;

/// Everything that can fail in the edge library.
#[derive(Debug, thiserror::Error)]
pub enum EdgeError {
    /// A file or directory operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The path that was being read or written.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A listener could not be bound or accepted on.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address given.
        addr: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The configuration is invalid.
    #[error("configuration: {0}")]
    Config(String),
    /// A site name is not a valid DNS label.
    #[error(
        "invalid site name {0:?}: use 1-63 lowercase letters, digits and single hyphens (not at either end)"
    )]
    SiteName(String),
    /// A host name is not valid.
    #[error("invalid host {0:?}: use a DNS name such as example.com")]
    Host(String),
    /// A host is already routed to another site.
    #[error("host {host} already belongs to site {site}")]
    HostTaken {
        /// The host.
        host: String,
        /// The site that owns it.
        site: String,
    },
    /// The site does not exist in the store.
    #[error("unknown site {0:?}: add it first with `qpage edge add-site`")]
    UnknownSite(String),
    /// The deploy does not exist for this site.
    #[error("site {site} has no deploy {deploy}")]
    UnknownDeploy {
        /// The site.
        site: String,
        /// The deploy id asked for.
        deploy: String,
    },
    /// A site's `_redirects` or `_headers` file has a line that cannot be parsed.
    #[error("{file}:{line}: {message}")]
    Rule {
        /// `_redirects` or `_headers`.
        file: &'static str,
        /// 1-based line number.
        line: usize,
        /// What is wrong with the line.
        message: String,
    },
    /// The manifest of a built site does not match its files.
    #[error("{0}")]
    Manifest(String),
    /// The request conflicts with the store's state (e.g. a deploy whose blobs are
    /// not all uploaded yet).
    #[error("{0}")]
    Conflict(String),
    /// A stored file (site.toml, deploy JSON) could not be parsed.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
}

impl EdgeError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        EdgeError::Io {
            path: path.into(),
            source,
        }
    }
}

/// Result alias for the edge library.
pub type Result<T, E = EdgeError> = std::result::Result<T, E>;

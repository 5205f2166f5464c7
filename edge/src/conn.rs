//! What a request's handler knows about its connection: the peer address and, on a
//! TLS listener, the negotiated TLS version. The HTTP protocol is per request
//! (`Request::version`: HTTP/1.0, HTTP/1.1 or HTTP/2), so it is not kept here.

use std::net::SocketAddr;

/// The connection a request arrived on. Copied into each request's handler.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnInfo {
    /// The socket's peer (a proxy's address when one is in front).
    pub peer: SocketAddr,
    /// The TLS version, on a TLS listener; `None` for plain HTTP.
    pub tls: Option<TlsVersion>,
}

impl ConnInfo {
    /// A plain-HTTP connection from `peer`.
    pub(crate) fn plain(peer: SocketAddr) -> ConnInfo {
        ConnInfo { peer, tls: None }
    }
}

/// A negotiated TLS version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(dead_code)] // Filled in by the TLS listener.
pub(crate) enum TlsVersion {
    /// TLS 1.2.
    Tls12,
    /// TLS 1.3.
    Tls13,
}

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

    /// A TLS connection from `peer` that negotiated `version` (`"TLSv1.3"`, `"TLSv1.2"`).
    pub(crate) fn tls(peer: SocketAddr, version: &str) -> ConnInfo {
        let tls = match version {
            "TLSv1.2" => TlsVersion::Tls12,
            _ => TlsVersion::Tls13,
        };
        ConnInfo {
            peer,
            tls: Some(tls),
        }
    }
}

/// A negotiated TLS version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TlsVersion {
    /// TLS 1.2.
    Tls12,
    /// TLS 1.3.
    Tls13,
}

//! TLS test kit: a test CA issuing leaf certificates (rcgen), an HTTPS client over
//! tokio-rustls + hyper (HTTP/1.1 or HTTP/2, chosen by ALPN), and Pebble — the ACME
//! test server — with pebble-challtestsrv as its DNS, started on free loopback ports
//! and killed on drop.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

/// A certificate authority for tests.
pub struct TestCa {
    key: rcgen::KeyPair,
    params: rcgen::CertificateParams,
    pub pem: String,
}

impl TestCa {
    pub fn new(cn: &str) -> TestCa {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).unwrap();
        TestCa {
            pem: cert.pem(),
            key,
            params,
        }
    }

    /// A leaf for `names` valid from `now - age` to `now + left`: (chain PEM, key PEM).
    pub fn leaf(&self, names: &[&str], age: Duration, left: Duration) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut p =
            rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        let now = time::OffsetDateTime::from(SystemTime::now());
        p.not_before = now - age;
        p.not_after = now + left;
        p.distinguished_name
            .push(rcgen::DnType::CommonName, names[0]);
        p.use_authority_key_identifier_extension = true;
        let issuer = rcgen::Issuer::from_params(&self.params, &self.key);
        let cert = p.signed_by(&key, &issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    pub fn roots(&self) -> rustls::RootCertStore {
        roots_from_pem(&self.pem)
    }
}

pub fn roots_from_pem(pem: &str) -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    roots
}

/// What one HTTPS exchange saw.
#[derive(Debug)]
pub struct Fetched {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
    pub version: http::Version,
    pub tls_version: Option<rustls::ProtocolVersion>,
    pub alpn: Option<Vec<u8>>,
    pub resumed: bool,
    /// The server's leaf certificate.
    pub leaf: Vec<u8>,
}

/// A client configuration trusting `roots`, offering `alpn`.
pub fn client_config(
    roots: rustls::RootCertStore,
    alpn: &[&[u8]],
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut c = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    c.alpn_protocols = alpn.iter().map(|a| a.to_vec()).collect();
    Arc::new(c)
}

/// A TLS handshake with SNI `sni`; the error when it fails.
pub async fn handshake(
    addr: SocketAddr,
    sni: &str,
    cfg: Arc<rustls::ClientConfig>,
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let name = ServerName::try_from(sni.to_string()).unwrap();
    tokio::time::timeout(
        Duration::from_secs(30),
        tokio_rustls::TlsConnector::from(cfg).connect(name, tcp),
    )
    .await
    .map_err(|_| std::io::Error::other("handshake timed out"))?
}

/// GET `path` for `host` on a connection whose SNI is `sni`.
pub async fn https_get(
    addr: SocketAddr,
    sni: &str,
    host: &str,
    path: &str,
    cfg: Arc<rustls::ClientConfig>,
) -> std::io::Result<Fetched> {
    let tls = handshake(addr, sni, cfg).await?;
    let (_, conn) = tls.get_ref();
    let tls_version = conn.protocol_version();
    let alpn = conn.alpn_protocol().map(|a| a.to_vec());
    let resumed = conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
    let leaf = conn
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.to_vec())
        .unwrap_or_default();
    let h2 = alpn.as_deref() == Some(b"h2");
    let (status, headers, body, version) = request(tls, h2, host, path).await?;
    Ok(Fetched {
        status,
        headers,
        body,
        version,
        tls_version,
        alpn,
        resumed,
        leaf,
    })
}

/// Sends requests for `hosts` in turn over one connection (HTTP/1.1 keep-alive or
/// HTTP/2), returning their statuses.
pub async fn statuses_on_one_connection<S>(io: S, h2: bool, hosts: &[&str]) -> Vec<u16>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let io = hyper_util::rt::TokioIo::new(io);
    let mut out = Vec::new();
    if h2 {
        let (mut send, conn) =
            hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io)
                .await
                .unwrap();
        tokio::spawn(conn);
        for h in hosts {
            let req = http::Request::get(format!("https://{h}/"))
                .body(Empty::<Bytes>::new())
                .unwrap();
            out.push(send.send_request(req).await.unwrap().status().as_u16());
        }
    } else {
        let (mut send, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
        tokio::spawn(conn);
        for h in hosts {
            let req = http::Request::get("/")
                .header("host", *h)
                .body(Empty::<Bytes>::new())
                .unwrap();
            send.ready().await.expect("connection still open");
            let r = send.send_request(req).await.unwrap();
            out.push(r.status().as_u16());
            let _ = r.into_body().collect().await;
        }
    }
    out
}

async fn request<S>(
    io: S,
    h2: bool,
    host: &str,
    path: &str,
) -> std::io::Result<(u16, http::HeaderMap, Bytes, http::Version)>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let io = hyper_util::rt::TokioIo::new(io);
    let resp = if h2 {
        let (mut send, conn) =
            hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io)
                .await
                .map_err(std::io::Error::other)?;
        tokio::spawn(conn);
        let req = http::Request::get(format!("https://{host}{path}"))
            .body(Empty::<Bytes>::new())
            .unwrap();
        send.send_request(req)
            .await
            .map_err(std::io::Error::other)?
    } else {
        let (mut send, conn) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(std::io::Error::other)?;
        tokio::spawn(conn);
        let req = http::Request::get(path)
            .header("host", host)
            .body(Empty::<Bytes>::new())
            .unwrap();
        send.send_request(req)
            .await
            .map_err(std::io::Error::other)?
    };
    let status = resp.status().as_u16();
    let version = resp.version();
    let headers = resp.headers().clone();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(std::io::Error::other)?
        .to_bytes();
    Ok((status, headers, body, version))
}

/// A plain HTTP/1.1 GET: (status, location header, body).
pub async fn http_get(addr: SocketAddr, host: &str, path: &str) -> (u16, Option<String>, Bytes) {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (status, h, b, _) = request(tcp, false, host, path).await.unwrap();
    (
        status,
        h.get("location")
            .and_then(|v| v.to_str().ok())
            .map(String::from),
        b,
    )
}

/// A free loopback TCP port (bound, then released: a small race, fine for tests).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The path of a tool: `$VAR`, else PATH; a clear failure when missing.
pub fn tool(var: &str, name: &str, install: &str) -> PathBuf {
    if let Ok(p) = std::env::var(var) {
        return PathBuf::from(p);
    }
    for dir in std::env::var("PATH").unwrap_or_default().split(':') {
        let p = Path::new(dir).join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!("{name} is missing: {install} (or run scripts/test.sh, which installs it)");
}

/// A running Pebble with its DNS.
pub struct Pebble {
    _dir: tempfile::TempDir,
    /// The ACME directory URL.
    pub directory: String,
    /// The CA file to trust for Pebble's own API.
    pub api_ca: PathBuf,
    mgmt: SocketAddr,
    api_roots: rustls::RootCertStore,
    children: Vec<Child>,
}

impl Pebble {
    /// Starts Pebble validating HTTP-01 on `http_port` and TLS-ALPN-01 on `tls_port`
    /// of 127.0.0.1, issuing certificates valid for `validity` (Pebble's default when None).
    pub fn start(http_port: u16, tls_port: u16, validity: Option<Duration>) -> Pebble {
        Self::start_with(http_port, tls_port, validity, None)
    }

    /// Like [`Pebble::start`]; with `eab` (key id, base64url HMAC key) Pebble requires
    /// external account binding with that key.
    pub fn start_with(
        http_port: u16,
        tls_port: u16,
        validity: Option<Duration>,
        eab: Option<(&str, &str)>,
    ) -> Pebble {
        let pebble = tool("QPAGE_PEBBLE", "pebble", "sudo apt-get install -y pebble");
        let dns_bin = tool(
            "QPAGE_PEBBLE_CHALLTESTSRV",
            "pebble-challtestsrv",
            "sudo apt-get install -y pebble",
        );
        let dir = tempfile::tempdir().unwrap();
        let ca = TestCa::new("pebble api test CA");
        let (leaf, key) = ca.leaf(
            &["localhost", "127.0.0.1"],
            Duration::from_secs(3600),
            Duration::from_secs(30 * 86_400),
        );
        let api_ca = dir.path().join("ca.pem");
        std::fs::write(&api_ca, &ca.pem).unwrap();
        std::fs::write(dir.path().join("cert.pem"), leaf).unwrap();
        std::fs::write(dir.path().join("key.pem"), key).unwrap();
        let (api, mgmt, dns, dns_mgmt) = (free_port(), free_port(), free_port(), free_port());
        let mut cfg = serde_json::json!({"pebble": {
            "listenAddress": format!("127.0.0.1:{api}"),
            "managementListenAddress": format!("127.0.0.1:{mgmt}"),
            "certificate": dir.path().join("cert.pem"),
            "privateKey": dir.path().join("key.pem"),
            "httpPort": http_port,
            "tlsPort": tls_port,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false
        }});
        if let Some(v) = validity {
            cfg["pebble"]["certificateValidityPeriod"] = serde_json::json!(v.as_secs());
        }
        if let Some((kid, key)) = eab {
            cfg["pebble"]["externalAccountBindingRequired"] = serde_json::json!(true);
            cfg["pebble"]["externalAccountMACKeys"] = serde_json::json!({ kid: key });
        }
        std::fs::write(dir.path().join("pebble.json"), cfg.to_string()).unwrap();
        let log = |n: &str| std::fs::File::create(dir.path().join(n)).unwrap();
        let dns_child = Command::new(dns_bin)
            .args(["-dns01", &format!("127.0.0.1:{dns}")])
            .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
            .args(["-management", &format!("127.0.0.1:{dns_mgmt}")])
            .args(["-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""])
            .stdout(Stdio::from(log("dns.log")))
            .stderr(Stdio::from(log("dns.err")))
            .spawn()
            .expect("starting pebble-challtestsrv");
        let pebble_child = Command::new(pebble)
            .arg("-config")
            .arg(dir.path().join("pebble.json"))
            .args(["-dnsserver", &format!("127.0.0.1:{dns}")])
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .env("PEBBLE_AUTHZREUSE", "0")
            .stdout(Stdio::from(log("pebble.log")))
            .stderr(Stdio::from(log("pebble.err")))
            .spawn()
            .expect("starting pebble");
        let me = Pebble {
            directory: format!("https://127.0.0.1:{api}/dir"),
            api_ca,
            mgmt: format!("127.0.0.1:{mgmt}").parse().unwrap(),
            api_roots: ca.roots(),
            children: vec![pebble_child, dns_child],
            _dir: dir,
        };
        me.wait_ready();
        me
    }

    fn wait_ready(&self) {
        let api: SocketAddr = self
            .directory
            .trim_start_matches("https://")
            .trim_end_matches("/dir")
            .parse()
            .unwrap();
        for _ in 0..200 {
            if std::net::TcpStream::connect(api).is_ok()
                && std::net::TcpStream::connect(self.mgmt).is_ok()
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("pebble did not start listening on {api} within 10 s");
    }

    /// Pebble's current root, which issued certificates chain to.
    pub async fn root_pem(&self) -> String {
        let cfg = client_config(
            self.api_roots.clone(),
            &[b"http/1.1"],
            &[&rustls::version::TLS13, &rustls::version::TLS12],
        );
        let f = https_get(self.mgmt, "localhost", "localhost", "/roots/0", cfg)
            .await
            .expect("fetching pebble's root");
        assert_eq!(f.status, 200);
        String::from_utf8(f.body.to_vec()).unwrap()
    }

    /// The log Pebble wrote so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("pebble.log")).unwrap_or_default()
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

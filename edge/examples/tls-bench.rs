//! Tools of the TLS benchmark (benches/tls/run.sh):
//!
//! ```text
//! tls-bench gen --out DIR --count N
//!     a test CA (DIR/ca.pem), N certificates h00000.bench.test.. in DIR/certs/ as the
//!     edge stores them (key + chain, one file each), DIR/names.txt, and bench.test
//!     as a separate chain + key (DIR/bench.crt, DIR/bench.key) for both servers
//! tls-bench handshakes --addr IP:PORT --names FILE --secs S --conc C [--resume]
//!     new TLS 1.3 connections (full or resumed handshakes) with a random SNI from
//!     FILE, each carrying one `HEAD /` with `Connection: close`, C at a time, for S
//!     seconds; prints handshakes/s. The client skips certificate
//!     verification (it measures the server, not the client's signature checks).
//!     --prime: first one handshake per name, in order (reported apart: the first pass
//!     over a lazily loaded store; with --resume it also fills the ticket cache).
//!     --cpu-pid PID: report the server's CPU time per measured handshake.
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Err(e) = run(&args) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn run(args: &[String]) -> Res<()> {
    match args.first().map(String::as_str) {
        Some("gen") => {
            let out = std::path::PathBuf::from(flag(args, "--out").ok_or("missing --out")?);
            let count: usize = flag(args, "--count").ok_or("missing --count")?.parse()?;
            generate(&out, count)
        }
        Some("handshakes") => {
            let addr: std::net::SocketAddr = flag(args, "--addr").ok_or("missing --addr")?.parse()?;
            let names = std::fs::read_to_string(flag(args, "--names").ok_or("missing --names")?)?;
            let names: Vec<String> = names.lines().map(String::from).collect();
            let secs: f64 = flag(args, "--secs").unwrap_or("5".into()).parse()?;
            let conc: usize = flag(args, "--conc").unwrap_or("16".into()).parse()?;
            let resume = args.iter().any(|a| a == "--resume");
            let prime = args.iter().any(|a| a == "--prime");
            let cpu_pid = flag(args, "--cpu-pid").map(|p| p.parse()).transpose()?;
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            rt.block_on(handshakes(addr, names, secs, conc, resume, prime, cpu_pid))
        }
        _ => Err("usage: tls-bench gen --out DIR --count N | handshakes --addr A --names FILE [--secs S] [--conc C] [--resume] [--prime] [--cpu-pid PID]".into()),
    }
}

fn generate(out: &std::path::Path, count: usize) -> Res<()> {
    std::fs::create_dir_all(out.join("certs"))?;
    let ca_key = rcgen::KeyPair::generate()?;
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "qpage bench CA");
    let ca_cert = ca.self_signed(&ca_key)?;
    std::fs::write(out.join("ca.pem"), ca_cert.pem())?;
    let issuer = rcgen::Issuer::from_params(&ca, &ca_key);
    let now = time::OffsetDateTime::from(SystemTime::now());
    let leaf = |name: &str| -> Res<(String, String)> {
        let key = rcgen::KeyPair::generate()?;
        let mut p = rcgen::CertificateParams::new(vec![name.to_string()])?;
        p.not_before = now - Duration::from_secs(86_400);
        p.not_after = now + Duration::from_secs(90 * 86_400);
        p.distinguished_name.push(rcgen::DnType::CommonName, name);
        let cert = p.signed_by(&key, &issuer)?;
        Ok((cert.pem(), key.serialize_pem()))
    };
    let (chain, key) = leaf("bench.test")?;
    std::fs::write(out.join("bench.crt"), &chain)?;
    std::fs::write(out.join("bench.key"), &key)?;
    let mut names = String::new();
    for i in 0..count {
        let name = format!("h{i:05}.bench.test");
        let (chain, key) = leaf(&name)?;
        std::fs::write(
            out.join("certs").join(format!("{name}.pem")),
            format!("{key}{chain}"),
        )?;
        names.push_str(&name);
        names.push('\n');
    }
    std::fs::write(out.join("names.txt"), names)?;
    Ok(())
}

/// Accepts any server certificate: the benchmark measures the server's handshake cost.
#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }
    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

async fn handshakes(
    addr: std::net::SocketAddr,
    names: Vec<String>,
    secs: f64,
    conc: usize,
    resume: bool,
    prime: bool,
    cpu_pid: Option<u32>,
) -> Res<()> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    if !resume {
        cfg.resumption = rustls::client::Resumption::disabled();
    } else {
        cfg.resumption = rustls::client::Resumption::in_memory_sessions(names.len().max(256) * 2);
    }
    let cfg = Arc::new(cfg);
    let names = Arc::new(names);
    if prime {
        let (n, _, errors, took) =
            phase(addr, cfg.clone(), names.clone(), conc, 600.0, true).await?;
        println!(
            "prime: handshakes_per_s={:.0} handshakes={n} errors={errors}",
            n as f64 / took
        );
    }
    let cpu0 = cpu_pid.and_then(cpu_ticks);
    let (n, resumed, errors, took) = phase(addr, cfg, names, conc, secs, false).await?;
    let cpu1 = cpu_pid.and_then(cpu_ticks);
    let cpu = match (cpu0, cpu1) {
        (Some(a), Some(b)) if n > 0 => {
            let secs = (b - a) as f64 / 100.0;
            format!(
                " server_cpu_us_per_handshake={:.1} server_cpu_util={:.2}",
                secs * 1e6 / n as f64,
                secs / took
            )
        }
        _ => String::new(),
    };
    println!(
        "handshakes_per_s={:.0} handshakes={n} resumed={resumed} errors={errors} secs={took:.2}{cpu}",
        n as f64 / took
    );
    Ok(())
}

/// utime + stime of a process, in clock ticks (100 per second on Linux).
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = after.split(' ').collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// Runs handshakes for `secs` (or, with `once`, one per name) and returns
/// (completed, resumed, errors, seconds).
async fn phase(
    addr: std::net::SocketAddr,
    cfg: Arc<rustls::ClientConfig>,
    names: Arc<Vec<String>>,
    conc: usize,
    secs: f64,
    once: bool,
) -> Res<(u64, u64, u64, f64)> {
    let ok = Arc::new(AtomicU64::new(0));
    let resumed = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let next = Arc::new(AtomicU64::new(0));
    let end = Instant::now() + Duration::from_secs_f64(secs);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..conc {
        let (cfg, names, ok, resumed, errors, next) = (
            cfg.clone(),
            names.clone(),
            ok.clone(),
            resumed.clone(),
            errors.clone(),
            next.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut x: u64 =
                0x9E37_79B9_7F4A_7C15 ^ (t as u64 + 1).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            let connector = tokio_rustls::TlsConnector::from(cfg);
            while Instant::now() < end {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                // --once: every name once, in order; otherwise a random name.
                let i = if once {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= names.len() as u64 {
                        break;
                    }
                    i
                } else {
                    x % names.len() as u64
                };
                let name = &names[i as usize];
                let Ok(sn) = rustls::pki_types::ServerName::try_from(name.clone()) else {
                    errors.fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                let r = async {
                    let tcp = tokio::net::TcpStream::connect(addr).await?;
                    tcp.set_nodelay(true)?;
                    let mut s = connector.connect(sn, tcp).await?;
                    let was_resumed =
                        s.get_ref().1.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
                    // One small request (HEAD, Connection: close), read to the end: the
                    // session tickets a TLS 1.3 server sends after the handshake are
                    // read on the way, in both modes.
                    use tokio::io::{AsyncReadExt, AsyncWriteExt};
                    let req =
                        format!("HEAD / HTTP/1.1\r\nhost: {name}\r\nconnection: close\r\n\r\n");
                    s.write_all(req.as_bytes()).await?;
                    let mut buf = [0u8; 512];
                    let mut got = 0;
                    tokio::time::timeout(Duration::from_secs(5), async {
                        loop {
                            match s.read(&mut buf).await {
                                Ok(0) | Err(_) => break,
                                Ok(n) => got += n,
                            }
                        }
                    })
                    .await
                    .map_err(|_| std::io::Error::other("response timed out"))?;
                    if got == 0 {
                        return Err(std::io::Error::other("no response"));
                    }
                    Ok::<bool, std::io::Error>(was_resumed)
                }
                .await;
                match r {
                    Ok(r) => {
                        ok.fetch_add(1, Ordering::Relaxed);
                        if r {
                            resumed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Err(_) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await?;
    }
    let took = started.elapsed().as_secs_f64();
    Ok((
        ok.load(Ordering::Relaxed),
        resumed.load(Ordering::Relaxed),
        errors.load(Ordering::Relaxed),
        took,
    ))
}

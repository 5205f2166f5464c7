//! ACME against a real Pebble (Debian's `pebble`, with `pebble-challtestsrv` answering
//! every name with 127.0.0.1): issuance by HTTP-01 and by TLS-ALPN-01, HTTPS verified
//! against Pebble's root, renewal, a failed challenge that keeps the old certificate,
//! unknown SNI refused without an order, and a restart that loads from disk.

mod common;
#[path = "support/edge.rs"]
mod edge;
#[path = "support/tlskit.rs"]
mod tlskit;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use edge::{TlsRunning, eventually};
use qpage_edge::{Challenge, EdgeConfig};
use tlskit::{Pebble, TestCa, client_config, free_port, handshake, https_get, roots_from_pem};

const BOTH: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];
const ISSUED: &str = "qpage_acme_orders_total{result=\"issued\"}";
const FAILED: &str = "qpage_acme_orders_total{result=\"failed\"}";

/// An edge config on fixed ports (Pebble must know them before it starts), ACME on.
fn acme_config(data: &Path, http: u16, https: u16, pebble: &Pebble) -> EdgeConfig {
    let mut cfg = common::config(data);
    cfg.listen = format!("127.0.0.1:{http}");
    cfg.tls.listen = format!("127.0.0.1:{https}");
    let a = &mut cfg.tls.acme;
    a.enabled = true;
    a.directory_url = pebble.directory.clone();
    a.ca_file = Some(pebble.api_ca.clone());
    a.contact = vec!["mailto:ops@example.test".into()];
    a.check_interval_ms = 300;
    a.backoff_initial_ms = 60_000;
    a.order_timeout_ms = 30_000;
    a.eager = false;
    cfg
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn account_file(data: &Path) -> std::path::PathBuf {
    std::fs::read_dir(data.join("acme"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .expect("an account file in data/acme")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http01_issuance_unknown_sni_and_restart() {
    let f = common::fixture();
    let (http, https) = (free_port(), free_port());
    let pebble = Pebble::start(http, https, None);
    let mut cfg = acme_config(&f.data, http, https, &pebble);
    cfg.tls.acme.eager = true;
    cfg.tls.acme.challenge = Challenge::Http01;
    let s = TlsRunning::start(cfg.clone()).await;

    // Eager: every routed host of the fixture (alpha: 3, beta: 2) gets a certificate.
    let cert = f.data.join("certs/alpha.test.pem");
    eventually(
        Duration::from_secs(60),
        "certificates for the routed hosts",
        || async { s.metric(ISSUED).await >= 5.0 },
    )
    .await;
    assert_eq!(s.metric(FAILED).await, 0.0, "{}", pebble.log());
    assert!(s.metric("qpage_acme_http01_answers_total").await >= 5.0);
    assert_eq!(mode(&cert), 0o600);
    assert_eq!(mode(&account_file(&f.data)), 0o600);
    assert_eq!(mode(&f.data.join("certs")), 0o700);

    // HTTPS verified against Pebble's root, over HTTP/2.
    let roots = roots_from_pem(&pebble.root_pem().await);
    let h2 = client_config(roots.clone(), &[b"h2", b"http/1.1"], BOTH);
    let r = https_get(s.https, "alpha.test", "alpha.test", "/", h2.clone())
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.version, http::Version::HTTP_2);
    assert!(String::from_utf8_lossy(&r.body).contains("alpha home"));
    let served = r.leaf.clone();

    // A stranger's SNI: refused, and no order is placed for it.
    let started = s
        .metric("qpage_acme_orders_started_total{reason=\"on-demand\"}")
        .await;
    assert!(
        handshake(s.https, "stranger.test", h2.clone())
            .await
            .is_err()
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        s.metric("qpage_acme_orders_started_total{reason=\"on-demand\"}")
            .await,
        started
    );
    assert!(!f.data.join("certs/stranger.test.pem").exists());
    assert!(s.metric("qpage_tls_unknown_sni_total").await >= 1.0);
    let issued = s.metric(ISSUED).await;
    s.stop().await;

    // Restart: the certificates come from disk, nothing is ordered again.
    let s = TlsRunning::start(cfg).await;
    let r = https_get(s.https, "alpha.test", "alpha.test", "/", h2.clone())
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.leaf, served, "the same certificate, loaded from disk");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let text = s.metrics().await;
    for reason in ["eager", "on-demand", "renewal"] {
        let line = format!("qpage_acme_orders_started_total{{reason=\"{reason}\"}} 0");
        assert!(text.contains(&line), "{line} in\n{text}");
    }
    assert_eq!(issued, 5.0);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_alpn01_on_demand_issuance() {
    let f = common::fixture();
    let (http, https) = (free_port(), free_port());
    let pebble = Pebble::start(http, https, None);
    let mut cfg = acme_config(&f.data, http, https, &pebble);
    cfg.tls.acme.challenge = Challenge::TlsAlpn01;
    cfg.tls.acme.on_demand = true;
    let s = TlsRunning::start(cfg).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        s.metric(ISSUED).await,
        0.0,
        "eager is off: nothing ordered yet"
    );

    // The first handshake for a routed host waits for its certificate.
    let roots = roots_from_pem(&pebble.root_pem().await);
    let h1 = client_config(roots, &[b"http/1.1"], BOTH);
    let r = https_get(s.https, "www.beta.test", "www.beta.test", "/", h1.clone())
        .await
        .unwrap_or_else(|e| panic!("on-demand handshake: {e}\n{}", pebble.log()));
    assert_eq!(r.status, 200);
    assert!(String::from_utf8_lossy(&r.body).contains("beta home"));
    assert_eq!(s.metric(ISSUED).await, 1.0);
    assert_eq!(
        s.metric("qpage_acme_orders_started_total{reason=\"on-demand\"}")
            .await,
        1.0
    );
    assert_eq!(
        s.metric("qpage_acme_http01_answers_total").await,
        0.0,
        "validated over TLS-ALPN-01"
    );
    assert!(f.data.join("certs/www.beta.test.pem").exists());
    assert!(
        !f.data.join("certs/beta.test.pem").exists(),
        "only the asked-for host"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewal_replaces_the_certificate() {
    let f = common::fixture();
    let (http, https) = (free_port(), free_port());
    // Short-lived certificates: renewal at 2/3 of 30 s.
    let pebble = Pebble::start(http, https, Some(Duration::from_secs(30)));
    let mut cfg = acme_config(&f.data, http, https, &pebble);
    cfg.tls.acme.renew_jitter = 0.0;
    let s = TlsRunning::start(cfg).await;
    let roots = roots_from_pem(&pebble.root_pem().await);
    let h1 = client_config(roots.clone(), &[b"http/1.1"], BOTH);
    let first = https_get(s.https, "alpha.test", "alpha.test", "/", h1.clone())
        .await
        .unwrap();
    assert_eq!(first.status, 200);
    eventually(Duration::from_secs(40), "a renewal", || async {
        s.metric("qpage_acme_orders_started_total{reason=\"renewal\"}")
            .await
            >= 1.0
            && s.metric(ISSUED).await >= 2.0
    })
    .await;
    // A new client: a resumed session would not show the certificate again.
    let fresh = client_config(roots, &[b"http/1.1"], BOTH);
    let second = https_get(s.https, "alpha.test", "alpha.test", "/", fresh)
        .await
        .unwrap();
    assert_eq!(second.status, 200);
    assert_ne!(second.leaf, first.leaf, "the renewed certificate is served");
    // Debian's Pebble offers no ARI: the fraction-of-lifetime schedule was used.
    assert_eq!(s.metric("qpage_acme_ari_offered").await, 0.0);
    assert_eq!(s.metric(FAILED).await, 0.0, "{}", pebble.log());
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_challenge_keeps_the_old_certificate() {
    let f = common::fixture();
    let (http, https) = (free_port(), free_port());
    // Pebble validates HTTP-01 on a port where nothing listens: every challenge fails.
    let pebble = Pebble::start(free_port(), free_port(), None);
    let cfg = acme_config(&f.data, http, https, &pebble);
    // An old certificate, past two thirds of its life: due for renewal.
    let ca = TestCa::new("previous CA");
    let (chain, key) = ca.leaf(
        &["alpha.test"],
        Duration::from_secs(20 * 86_400),
        Duration::from_secs(86_400),
    );
    std::fs::create_dir_all(f.data.join("certs")).unwrap();
    std::fs::write(f.data.join("certs/alpha.test.pem"), format!("{key}{chain}")).unwrap();
    let s = TlsRunning::start(cfg).await;
    eventually(Duration::from_secs(40), "the failed renewal", || async {
        s.metric(FAILED).await >= 1.0
    })
    .await;
    assert_eq!(s.metric("qpage_acme_failures_total").await, 1.0);
    assert_eq!(
        s.metric("qpage_tls_certificates{state=\"failing\"}").await,
        1.0
    );
    assert_eq!(s.metric(ISSUED).await, 0.0);
    // The old certificate keeps serving.
    let h1 = client_config(ca.roots(), &[b"http/1.1"], BOTH);
    let r = https_get(s.https, "alpha.test", "alpha.test", "/", h1)
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    // Backoff: no second attempt within the first backoff interval.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(
        s.metric("qpage_acme_orders_started_total{reason=\"renewal\"}")
            .await,
        1.0
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_account_binding_and_the_node_wide_limit() {
    let f = common::fixture();
    let (http, https) = (free_port(), free_port());
    let key = "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W";
    let pebble = Pebble::start_with(http, https, None, Some(("kid-1", key)));

    // Without EAB credentials the server refuses the account: counted as a failure.
    let mut cfg = acme_config(&f.data, http, https, &pebble);
    cfg.tls.acme.eager = true;
    cfg.tls.acme.max_orders_per_hour = 1;
    let s = TlsRunning::start(cfg.clone()).await;
    eventually(Duration::from_secs(20), "the refused account", || async {
        s.metric(FAILED).await >= 1.0
    })
    .await;
    // Five routed hosts, one order allowed per hour: the other four wait.
    assert_eq!(
        s.metric("qpage_acme_orders_started_total{reason=\"eager\"}")
            .await,
        1.0
    );
    assert!(s.metric("qpage_acme_rate_limited_total").await >= 4.0);
    assert!(
        !f.data.join("acme").read_dir().unwrap().any(|e| e
            .unwrap()
            .path()
            .extension()
            .is_some_and(|x| x == "json"))
    );
    s.stop().await;

    // With them, the account is created and a certificate issued.
    cfg.tls.acme.eab_kid = Some("kid-1".into());
    cfg.tls.acme.eab_hmac_key = Some(key.into());
    cfg.tls.acme.max_orders_per_hour = 250;
    let s = TlsRunning::start(cfg).await;
    eventually(Duration::from_secs(60), "certificates with EAB", || async {
        s.metric(ISSUED).await >= 5.0
    })
    .await;
    assert_eq!(mode(&account_file(&f.data)), 0o600);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_host_limit_holds_back_retries() {
    let f = common::fixture();
    let (http, https) = (free_port(), free_port());
    // Validation goes to a port where nothing listens: every order fails.
    let pebble = Pebble::start(free_port(), free_port(), None);
    let mut cfg = acme_config(&f.data, http, https, &pebble);
    cfg.tls.acme.eager = true;
    cfg.tls.acme.backoff_initial_ms = 100;
    cfg.tls.acme.max_orders_per_host_per_day = 1;
    let s = TlsRunning::start(cfg).await;
    eventually(
        Duration::from_secs(30),
        "the five failed orders",
        || async { s.metric(FAILED).await >= 5.0 },
    )
    .await;
    // The backoff (100 ms) passes, but each host has used its one order of the day.
    eventually(Duration::from_secs(10), "retries held back", || async {
        s.metric("qpage_acme_rate_limited_total").await >= 5.0
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        s.metric("qpage_acme_orders_started_total{reason=\"eager\"}")
            .await,
        5.0
    );
    assert_eq!(s.metric(FAILED).await, 5.0);
    assert_eq!(
        s.metric("qpage_tls_certificates{state=\"missing\"}").await,
        5.0
    );
    assert_eq!(
        s.metric("qpage_tls_certificates{state=\"failing\"}").await,
        5.0
    );
    s.stop().await;
}

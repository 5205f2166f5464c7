//! Starting an edge server with TLS for tests, and reading its metrics.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use qpage_edge::{EdgeConfig, Server, ServerHandle};

pub struct TlsRunning {
    pub http: SocketAddr,
    pub https: SocketAddr,
    pub admin: SocketAddr,
    pub handle: ServerHandle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<qpage_edge::Result<()>>>,
}

impl TlsRunning {
    pub async fn start(cfg: EdgeConfig) -> TlsRunning {
        let server = Server::bind(cfg).await.unwrap();
        let http = server.local_addr().unwrap();
        let https = server.tls_addr().expect("tls listener");
        let admin = server.admin_addr().unwrap();
        let handle = server.handle();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(server.run_until(async move {
            let _ = rx.await;
        }));
        TlsRunning {
            http,
            https,
            admin,
            handle,
            stop: Some(tx),
            task: Some(task),
        }
    }

    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(15), t)
                .await
                .expect("server stops")
                .unwrap()
                .unwrap();
        }
    }

    /// The admin `/metrics` text.
    pub async fn metrics(&self) -> String {
        let r = crate::common::raw(
            self.admin,
            b"GET /metrics HTTP/1.1\r\nhost: admin\r\nconnection: close\r\n\r\n",
        )
        .await;
        assert_eq!(r.status, 200);
        r.text()
    }

    /// One sample of the metrics, e.g. `qpage_acme_orders_total{result="issued"}`.
    pub async fn metric(&self, name: &str) -> f64 {
        let text = self.metrics().await;
        text.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("metric {name} not found in:\n{text}"))
    }
}

/// Polls `check` every 100 ms until it returns true or `limit` passes.
pub async fn eventually<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let end = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < end {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out after {limit:?} waiting for: {what}");
}

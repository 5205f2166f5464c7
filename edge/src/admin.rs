//! The admin listener (loopback by default): `/healthz` and Prometheus `/metrics`.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

use crate::state::Shared;

/// Serves the admin endpoints until `stop` turns true.
pub(crate) async fn run(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            _ = stop.changed() => return,
            a = listener.accept() => a,
        };
        let Ok((stream, peer)) = accepted else {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            continue;
        };
        let sh = shared.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let sh = sh.clone();
                async move {
                    if req.uri().path().starts_with("/v1/") {
                        return Ok::<_, std::convert::Infallible>(
                            crate::api::handle(req, peer, sh).await,
                        );
                    }
                    Ok::<_, std::convert::Infallible>(answer(&req, &sh))
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(std::time::Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn answer<B>(req: &Request<B>, shared: &Shared) -> Response<Full<Bytes>> {
    let (status, ctype, body) = match req.uri().path() {
        "/healthz" => {
            if shared.draining.load(Ordering::Relaxed) {
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "text/plain",
                    "draining\n".to_string(),
                )
            } else {
                let sites = shared.table.load().site_count();
                (StatusCode::OK, "text/plain", format!("ok {sites} sites\n"))
            }
        }
        "/metrics" => {
            let sites = shared.table.load().site_count() as f64;
            let cache_bytes = shared.blobs.weighted_size() as f64;
            let cache_entries = shared.blobs.entry_count() as f64;
            let mut text = shared.metrics.render(&[
                ("qpage_sites", "Sites in the routing table.", sites),
                (
                    "qpage_cache_bytes",
                    "Bytes held by the blob cache.",
                    cache_bytes,
                ),
                (
                    "qpage_cache_entries",
                    "Entries in the blob cache.",
                    cache_entries,
                ),
            ]);
            text.push_str(&shared.api.render_metrics());
            if let Some(tls) = shared.tls.get() {
                text.push_str(&tls.render_metrics(shared));
            }
            (StatusCode::OK, "text/plain; version=0.0.4", text)
        }
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found\n".to_string(),
        ),
    };
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

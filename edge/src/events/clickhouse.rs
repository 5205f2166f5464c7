//! The ClickHouse sink: one `INSERT INTO <table> FORMAT JSONEachRow` over ClickHouse's
//! HTTP interface (hyper's client, kept-alive connections) carries one or several
//! batches back to back, without copying them (the worker gathers them, see
//! [`super::batcher`]). Any
//! answer but 200 is a failure and the batch is retried (then spooled). With the
//! `ReplacingMergeTree` table of docs/events.md, a batch inserted twice (sent, then
//! the answer lost) collapses on merges; `SELECT ... FINAL` or `uniqExact(id)`
//! deduplicates before that.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Method, Request, header};
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, SizeHint};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::config::ClickHouseSinkConfig;
use super::queue::Batch;

pub(crate) struct ClickHouseSink {
    cfg: ClickHouseSinkConfig,
    uri: String,
    client: Client<HttpConnector, Chunks>,
}

/// A request body made of several buffers, sent one after the other.
struct Chunks(VecDeque<Bytes>);

impl Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.0.pop_front().map(|b| Ok(Frame::data(b))))
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.0.iter().map(|b| b.len() as u64).sum())
    }
}

impl ClickHouseSink {
    pub(crate) fn new(cfg: &ClickHouseSinkConfig) -> ClickHouseSink {
        let query = format!("INSERT INTO {} FORMAT JSONEachRow", cfg.table);
        let q: String =
            percent_encoding::utf8_percent_encode(&query, percent_encoding::NON_ALPHANUMERIC)
                .collect();
        let uri = format!("{}/?query={q}", cfg.url.trim_end_matches('/'));
        let mut conn = HttpConnector::new();
        conn.set_nodelay(true);
        conn.set_connect_timeout(Some(std::time::Duration::from_secs(2)));
        ClickHouseSink {
            cfg: cfg.clone(),
            uri,
            client: Client::builder(TokioExecutor::new()).build(conn),
        }
    }

    pub(crate) fn config(&self) -> &ClickHouseSinkConfig {
        &self.cfg
    }

    /// Inserts `batches` with one request.
    pub(crate) async fn deliver(&mut self, batches: &[&Batch]) -> Result<(), String> {
        let body: VecDeque<Bytes> = batches
            .iter()
            .filter(|b| !b.data.is_empty())
            .map(|b| b.data.clone())
            .collect();
        if body.is_empty() {
            return Ok(());
        }
        let mut req = Request::builder()
            .method(Method::POST)
            .uri(&self.uri)
            .header(header::CONTENT_TYPE, "application/x-ndjson");
        if !self.cfg.user.is_empty() {
            req = req.header("x-clickhouse-user", &self.cfg.user);
        }
        if !self.cfg.password.is_empty() {
            req = req.header("x-clickhouse-key", &self.cfg.password);
        }
        let req = req
            .body(Chunks(body))
            .map_err(|e| format!("request: {e}"))?;
        let resp = self
            .client
            .request(req)
            .await
            .map_err(|e| format!("{}: {e}", self.cfg.url))?;
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        if status.is_success() {
            Ok(())
        } else {
            let text = String::from_utf8_lossy(&body[..body.len().min(500)]).into_owned();
            Err(format!("ClickHouse answered {status}: {}", text.trim()))
        }
    }
}

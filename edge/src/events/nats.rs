//! The NATS JetStream sink. Connects lazily (and the client reconnects by itself),
//! creates the stream if it is missing (subjects `<prefix>.>`, file storage), and
//! publishes each batch as one message per site on `<prefix>.<site>` (`_` for requests
//! that matched no site), each message carrying that site's NDJSON lines (split past
//! 512 KiB). All messages of a batch are sent before their acknowledgements are
//! awaited. Each message has a `Nats-Msg-Id` made of its first event id and its line
//! count, so the server drops a replayed duplicate within the stream's duplicate
//! window; consumers can deduplicate by event id beyond it.

use std::collections::HashMap;
use std::time::Duration;

use async_nats::jetstream;
use bytes::Bytes;

use super::config::NatsSinkConfig;
use super::queue::Batch;

const MAX_MESSAGE: usize = 512 * 1024;

pub(crate) struct NatsSink {
    cfg: NatsSinkConfig,
    js: Option<jetstream::Context>,
    stream_ready: bool,
}

impl NatsSink {
    pub(crate) fn new(cfg: &NatsSinkConfig) -> NatsSink {
        NatsSink {
            cfg: cfg.clone(),
            js: None,
            stream_ready: false,
        }
    }

    async fn context(&mut self) -> Result<jetstream::Context, String> {
        if self.js.is_none() {
            let client = async_nats::ConnectOptions::new()
                .connection_timeout(Duration::from_secs(2))
                .name("qpage-edge events")
                .connect(self.cfg.url.as_str())
                .await
                .map_err(|e| format!("connecting to {}: {e}", self.cfg.url))?;
            let mut js = jetstream::new(client);
            js.set_timeout(Duration::from_secs(5));
            self.js = Some(js);
        }
        let js = self.js.clone().ok_or("no connection")?;
        if !self.stream_ready {
            js.get_or_create_stream(jetstream::stream::Config {
                name: self.cfg.stream.clone(),
                subjects: vec![format!("{}.>", self.cfg.subject_prefix)],
                storage: jetstream::stream::StorageType::File,
                ..Default::default()
            })
            .await
            .map_err(|e| format!("stream {}: {e}", self.cfg.stream))?;
            self.stream_ready = true;
        }
        Ok(js)
    }

    pub(crate) async fn deliver(&mut self, batch: &Batch) -> Result<(), String> {
        if batch.data.is_empty() {
            return Ok(());
        }
        let js = match self.context().await {
            Ok(js) => js,
            Err(e) => {
                self.stream_ready = false;
                return Err(e);
            }
        };
        let mut acks = Vec::new();
        for (site, payload, first_id, count) in messages(&batch.data) {
            let subject = format!("{}.{}", self.cfg.subject_prefix, site);
            let mut headers = async_nats::HeaderMap::new();
            headers.insert(
                async_nats::header::NATS_MESSAGE_ID,
                format!("{first_id}:{count}").as_str(),
            );
            let ack = js
                .publish_with_headers(subject, headers, payload)
                .await
                .map_err(|e| {
                    self.stream_ready = false;
                    format!("publish: {e}")
                })?;
            acks.push(ack);
        }
        for ack in acks {
            ack.await.map_err(|e| {
                self.stream_ready = false;
                format!("publish acknowledgement: {e}")
            })?;
        }
        Ok(())
    }
}

/// The event id: the encoder starts every line with `{"v":1,"id":"<32 hex>"`.
fn event_id(line: &[u8]) -> &[u8] {
    const AT: usize = b"{\"v\":1,\"id\":\"".len();
    line.get(AT..AT + 32).unwrap_or(b"")
}

/// A batch's lines grouped by site, in order within each site, cut into messages.
/// Yields (subject token, payload, first event id, lines).
fn messages(data: &Bytes) -> Vec<(String, Bytes, String, usize)> {
    let finder = memchr::memmem::Finder::new(b",\"site\":\"");
    // site -> index in groups: (site, buffer, first id, lines)
    let mut index: HashMap<&[u8], usize> = HashMap::new();
    let mut groups: Vec<(&[u8], Vec<u8>, String, usize)> = Vec::new();
    let mut out = Vec::new();
    let mut start = 0;
    for end in memchr::memchr_iter(b'\n', data) {
        let line = &data[start..=end];
        start = end + 1;
        // Site names need no escaping, so the value ends at the next quote.
        let site = finder
            .find(line)
            .map(|i| &line[i + 9..])
            .and_then(|rest| memchr::memchr(b'"', rest).map(|e| &rest[..e]))
            .filter(|s| !s.is_empty())
            .unwrap_or(b"_");
        let pos = *index.entry(site).or_insert_with(|| {
            groups.push((site, Vec::new(), String::new(), 0));
            groups.len() - 1
        });
        let g = &mut groups[pos];
        if !g.1.is_empty() && g.1.len() + line.len() > MAX_MESSAGE {
            out.push((
                String::from_utf8_lossy(g.0).into_owned(),
                Bytes::from(std::mem::take(&mut g.1)),
                std::mem::take(&mut g.2),
                std::mem::take(&mut g.3),
            ));
        }
        if g.3 == 0 {
            g.2 = String::from_utf8_lossy(event_id(line)).into_owned();
        }
        g.1.extend_from_slice(line);
        g.3 += 1;
    }
    for (site, buf, id, n) in groups {
        if n > 0 {
            out.push((
                String::from_utf8_lossy(site).into_owned(),
                Bytes::from(buf),
                id,
                n,
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_lines_by_site() {
        let data = Bytes::from_static(
            b"{\"v\":1,\"id\":\"a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1\",\"ts\":1,\"node\":\"n\",\"site\":\"alpha\",\"x\":1}\n\
{\"v\":1,\"id\":\"b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1\",\"ts\":1,\"node\":\"n\",\"site\":\"\",\"x\":1}\n\
{\"v\":1,\"id\":\"a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2\",\"ts\":1,\"node\":\"n\",\"site\":\"alpha\",\"x\":1}\n",
        );
        let m = messages(&data);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].0, "alpha");
        assert_eq!(m[0].2, "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1");
        assert_eq!(m[0].3, 2);
        assert_eq!(m[0].1.iter().filter(|b| **b == b'\n').count(), 2);
        assert_eq!(m[1].0, "_");
        assert_eq!(m[1].2, "b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1");
    }
}

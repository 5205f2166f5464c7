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

/// Where the site field can start at the earliest: after `{"v":1,"id":"<32 hex>","ts":`.
const SITE_FROM: usize = 52;

/// One site's lines waiting to become a message: a range of the batch while they lie
/// back to back in it, copied into a buffer once they do not.
struct Group<'a> {
    site: &'a [u8],
    range: (usize, usize),
    buf: Vec<u8>,
    first_id: String,
    lines: usize,
}

impl Group<'_> {
    fn len(&self) -> usize {
        if self.buf.is_empty() {
            self.range.1 - self.range.0
        } else {
            self.buf.len()
        }
    }

    fn push(&mut self, data: &[u8], s: usize, e: usize) {
        if self.lines == 0 {
            self.range = (s, e);
        } else if self.buf.is_empty() && self.range.1 == s {
            self.range.1 = e;
        } else {
            if self.buf.is_empty() {
                self.buf
                    .extend_from_slice(&data[self.range.0..self.range.1]);
            }
            self.buf.extend_from_slice(&data[s..e]);
        }
        self.lines += 1;
    }

    /// The message so far (site, payload, first id, lines); empties the group.
    fn take(&mut self, data: &Bytes) -> (String, Bytes, String, usize) {
        let payload = if self.buf.is_empty() {
            data.slice(self.range.0..self.range.1)
        } else {
            Bytes::from(std::mem::take(&mut self.buf))
        };
        let lines = std::mem::take(&mut self.lines);
        (
            String::from_utf8_lossy(self.site).into_owned(),
            payload,
            std::mem::take(&mut self.first_id),
            lines,
        )
    }
}

/// A batch's lines grouped by site, in order within each site, cut into messages.
/// Yields (subject token, payload, first event id, lines). Lines of one site that lie
/// back to back in the batch (all of them, when a batch has one site) are sent as a
/// slice of it, without a copy.
fn messages(data: &Bytes) -> Vec<(String, Bytes, String, usize)> {
    let finder = memchr::memmem::Finder::new(b",\"site\":\"");
    // site -> index in groups
    let mut index: HashMap<&[u8], usize> = HashMap::new();
    let mut groups: Vec<Group<'_>> = Vec::new();
    let mut last: Option<(&[u8], usize)> = None;
    let mut out = Vec::new();
    let mut start = 0;
    for end in memchr::memchr_iter(b'\n', data) {
        let (s, e) = (start, end + 1);
        let line = &data[s..e];
        start = e;
        // Site names need no escaping, so the value ends at the next quote.
        let from = if line.len() > SITE_FROM { SITE_FROM } else { 0 };
        let site = finder
            .find(&line[from..])
            .map(|i| &line[from + i + 9..])
            .and_then(|rest| memchr::memchr(b'"', rest).map(|e| &rest[..e]))
            .filter(|s| !s.is_empty())
            .unwrap_or(b"_");
        let pos = match last {
            Some((l, p)) if l == site => p,
            _ => *index.entry(site).or_insert_with(|| {
                groups.push(Group {
                    site,
                    range: (0, 0),
                    buf: Vec::new(),
                    first_id: String::new(),
                    lines: 0,
                });
                groups.len() - 1
            }),
        };
        last = Some((site, pos));
        let g = &mut groups[pos];
        if g.lines > 0 && g.len() + line.len() > MAX_MESSAGE {
            out.push(g.take(data));
        }
        if g.lines == 0 {
            g.first_id = String::from_utf8_lossy(event_id(line)).into_owned();
        }
        g.push(data, s, e);
    }
    for mut g in groups {
        if g.lines > 0 {
            out.push(g.take(data));
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
        assert_eq!(m[1].3, 1);
        // Interleaved sites: copied, in order.
        let lines: Vec<&[u8]> = data.split(|b| *b == b'\n').collect();
        assert_eq!(&m[0].1[..], [lines[0], b"\n", lines[2], b"\n"].concat());
    }

    #[test]
    fn one_site_s_batch_is_sent_without_a_copy_and_cut_past_the_limit() {
        let line = |i: usize| {
            format!(
                "{{\"v\":1,\"id\":\"{i:032x}\",\"ts\":1,\"node\":\"n\",\"site\":\"alpha\",\"pad\":\"{}\"}}\n",
                "x".repeat(1000)
            )
        };
        let data = Bytes::from((0..1000).map(line).collect::<String>());
        let m = messages(&data);
        assert!(m.len() >= 2, "cut at 512 KiB");
        assert_eq!(m.iter().map(|x| x.3).sum::<usize>(), 1000);
        assert_eq!(m[0].1.as_ptr(), data.as_ptr(), "a slice of the batch");
        assert!(m.iter().all(|x| x.1.len() <= MAX_MESSAGE));
        assert_eq!(m[1].2, format!("{:032x}", m[0].3));
        let joined: Vec<u8> = m.iter().flat_map(|x| x.1.iter().copied()).collect();
        assert_eq!(joined, &data[..]);
    }
}

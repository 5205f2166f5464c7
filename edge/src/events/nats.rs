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
        for (site, payload, first_id, count) in messages(batch) {
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

    /// Adds `lines` whole lines, `data[s..e]`.
    fn push(&mut self, data: &[u8], s: usize, e: usize, lines: usize) {
        if self.lines == 0 {
            self.range = (s, e);
            self.first_id = String::from_utf8_lossy(event_id(&data[s..e])).into_owned();
        } else if self.buf.is_empty() && self.range.1 == s {
            self.range.1 = e;
        } else {
            if self.buf.is_empty() {
                self.buf
                    .extend_from_slice(&data[self.range.0..self.range.1]);
            }
            self.buf.extend_from_slice(&data[s..e]);
        }
        self.lines += lines;
    }

    /// The message so far (site, payload, first id, lines); empties the group.
    fn take(&mut self, data: &Bytes) -> Message {
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

/// A message: subject token (the site, `_` for none), payload, first event id, lines.
type Message = (String, Bytes, String, usize);

/// Cuts a batch's lines, site by site and in order within each, into messages of at
/// most [`MAX_MESSAGE`] bytes (greedily, line by line).
struct Messages<'a> {
    data: &'a Bytes,
    /// site -> index in groups
    index: HashMap<&'a [u8], usize>,
    groups: Vec<Group<'a>>,
    last: Option<(&'a [u8], usize)>,
    out: Vec<Message>,
}

impl<'a> Messages<'a> {
    fn new(data: &'a Bytes) -> Messages<'a> {
        Messages {
            data,
            index: HashMap::new(),
            groups: Vec::new(),
            last: None,
            out: Vec::new(),
        }
    }

    fn group(&mut self, site: &'a [u8]) -> usize {
        let site = if site.is_empty() { b"_" } else { site };
        let pos = match self.last {
            Some((l, p)) if l == site => p,
            _ => *self.index.entry(site).or_insert_with(|| {
                self.groups.push(Group {
                    site,
                    range: (0, 0),
                    buf: Vec::new(),
                    first_id: String::new(),
                    lines: 0,
                });
                self.groups.len() - 1
            }),
        };
        self.last = Some((site, pos));
        pos
    }

    /// Adds the line `data[s..e]` of `site`.
    fn line(&mut self, site: &'a [u8], s: usize, e: usize) {
        let pos = self.group(site);
        let g = &mut self.groups[pos];
        if g.lines > 0 && g.len() + (e - s) > MAX_MESSAGE {
            self.out.push(g.take(self.data));
        }
        g.push(self.data, s, e, 1);
    }

    /// Adds `lines` lines of `site`, `data[s..e]`: at once when they fit in the
    /// site's message, else line by line (so that messages are cut as
    /// [`Messages::line`] alone would cut them).
    fn run(&mut self, site: &'a [u8], s: usize, e: usize, lines: usize) {
        let pos = self.group(site);
        let g = &mut self.groups[pos];
        if g.len() + (e - s) <= MAX_MESSAGE {
            g.push(self.data, s, e, lines);
            return;
        }
        let data: &'a [u8] = self.data;
        let mut start = s;
        for nl in memchr::memchr_iter(b'\n', &data[s..e]) {
            self.line(site, start, s + nl + 1);
            start = s + nl + 1;
        }
    }

    fn finish(mut self) -> Vec<Message> {
        for g in &mut self.groups {
            if g.lines > 0 {
                self.out.push(g.take(self.data));
            }
        }
        self.out
    }
}

/// A batch's lines grouped by site, in order within each site, cut into messages.
/// Lines of one site that lie back to back in the batch (all of them, when a batch
/// has one site) are sent as a slice of it, without a copy. The batcher's
/// [`SiteRun`]s say where each site's lines are; a batch without them (replayed from
/// the spool) is read line by line.
fn messages(batch: &Batch) -> Vec<Message> {
    let data = &batch.data;
    let mut m = Messages::new(data);
    let bytes: &[u8] = data;
    let mut start = 0;
    if !batch.sites.is_empty() {
        for r in &batch.sites {
            let end = (r.end as usize).min(bytes.len());
            let at = r.site_at as usize;
            let site = bytes.get(at..at + r.site_len as usize).unwrap_or(b"");
            m.run(site, start, end, r.lines as usize);
            start = end;
        }
        return m.finish();
    }
    let finder = memchr::memmem::Finder::new(b",\"site\":\"");
    for end in memchr::memchr_iter(b'\n', bytes) {
        let (s, e) = (start, end + 1);
        let line = &bytes[s..e];
        start = e;
        // Site names need no escaping, so the value ends at the next quote.
        let from = if line.len() > SITE_FROM { SITE_FROM } else { 0 };
        let site = finder
            .find(&line[from..])
            .map(|i| &line[from + i + 9..])
            .and_then(|rest| memchr::memchr(b'"', rest).map(|e| &rest[..e]))
            .unwrap_or(b"");
        m.line(site, s, e);
    }
    m.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::batcher::SiteRuns;

    /// `data` as a batch, without site runs (as replayed from the spool) or with the
    /// runs the batcher would note for it.
    fn batch(data: &Bytes, runs: bool) -> Batch {
        let mut sites = SiteRuns::default();
        if runs {
            let mut at = 0;
            for line in data.split_inclusive(|b| *b == b'\n') {
                let s = memchr::memmem::find(line, b"\"site\":\"").unwrap() + 8;
                let len = memchr::memchr(b'"', &line[s..]).unwrap();
                sites.note(&data[..at + line.len()], at + s, len);
                at += line.len();
            }
        }
        Batch {
            key: (0, 0),
            data: data.clone(),
            events: 0,
            sites: sites.take(),
        }
    }

    #[test]
    fn groups_lines_by_site() {
        let data = Bytes::from_static(
            b"{\"v\":1,\"id\":\"a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1\",\"ts\":1,\"node\":\"n\",\"site\":\"alpha\",\"x\":1}\n\
{\"v\":1,\"id\":\"b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1\",\"ts\":1,\"node\":\"n\",\"site\":\"\",\"x\":1}\n\
{\"v\":1,\"id\":\"a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2\",\"ts\":1,\"node\":\"n\",\"site\":\"alpha\",\"x\":1}\n",
        );
        for runs in [false, true] {
            let m = messages(&batch(&data, runs));
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
    }

    fn line(i: usize, site: &str, pad: usize) -> String {
        format!(
            "{{\"v\":1,\"id\":\"{i:032x}\",\"ts\":1,\"node\":\"n\",\"site\":\"{site}\",\"pad\":\"{}\"}}\n",
            "x".repeat(pad)
        )
    }

    #[test]
    fn one_site_s_batch_is_sent_without_a_copy_and_cut_past_the_limit() {
        let data = Bytes::from(
            (0..1000)
                .map(|i| line(i, "alpha", 1000))
                .collect::<String>(),
        );
        for runs in [false, true] {
            let b = batch(&data, runs);
            assert_eq!(b.sites.len() > 1, runs, "runs of at most 64 KiB");
            let m = messages(&b);
            assert!(m.len() >= 2, "cut at 512 KiB");
            assert_eq!(m.iter().map(|x| x.3).sum::<usize>(), 1000);
            assert_eq!(m[0].1.as_ptr(), data.as_ptr(), "a slice of the batch");
            assert!(m.iter().all(|x| x.1.len() <= MAX_MESSAGE));
            assert_eq!(m[1].2, format!("{:032x}", m[0].3));
            let joined: Vec<u8> = m.iter().flat_map(|x| x.1.iter().copied()).collect();
            assert_eq!(joined, &data[..]);
        }
    }

    /// A replayed batch (no runs) must be cut into the same messages as the batch
    /// first sent (with runs), so that the server's duplicate window recognises them.
    #[test]
    fn site_runs_cut_messages_as_reading_line_by_line_does() {
        let sites = ["alpha", "beta", "", "gamma-2"];
        let mut x = 0x2545_f491_u64;
        let mut next = |m: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % m) as usize
        };
        let mut text = String::new();
        let mut site = 0;
        for i in 0..4000 {
            // Bursts of one site, then a switch.
            if next(8) == 0 {
                site = next(sites.len() as u64);
            }
            text.push_str(&line(i, sites[site], 50 + next(1500)));
        }
        let data = Bytes::from(text);
        let with_runs = batch(&data, true);
        assert!(with_runs.sites.len() > 100);
        let a = messages(&batch(&data, false));
        let b = messages(&with_runs);
        assert!(a.len() > sites.len(), "some sites were cut: {}", a.len());
        assert_eq!(a, b);
        assert_eq!(b.iter().map(|m| m.3).sum::<usize>(), 4000);
    }
}

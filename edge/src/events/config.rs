//! The `[events]` section of `edge.toml`: the queue, the batcher, trusted proxies and
//! the sinks. The defaults write NDJSON files under the data directory's `events/`.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Access events (docs/events.md). Changes need a restart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EventsConfig {
    /// Emit an event per request at all.
    pub enabled: bool,
    /// This node's id in every event; empty means the host name.
    pub node_id: String,
    /// Bytes of events waiting for the batcher, per worker thread (an event takes
    /// about 70 bytes plus its path, host, user agent, referrer and content type); a
    /// request finding its thread's ring full drops its event (counted) instead of
    /// waiting. The batcher is woken each time a thread has written an eighth of this.
    pub queue_max_bytes: usize,
    /// How often the batcher takes the queued events, in milliseconds.
    pub flush_interval_ms: u64,
    /// Most events in one batch.
    pub batch_max_events: usize,
    /// Peers (addresses or CIDR ranges) whose `X-Forwarded-For` / `Forwarded` headers
    /// give the client address, e.g. a CDN's ranges. Empty: always the socket's peer.
    pub trusted_proxies: Vec<String>,
    /// Where spools and the visitor salt live; empty means `<data_dir>/events`.
    pub dir: Option<PathBuf>,
    /// Disk each sink may use to hold batches while it is down or slow, in bytes;
    /// beyond it new batches are dropped (counted).
    pub spool_max_bytes: u64,
    /// Batches a sink may hold in memory before it spools to disk, in bytes.
    pub memory_max_bytes: u64,
    /// NDJSON files.
    pub file: FileSinkConfig,
    /// NATS JetStream.
    pub nats: NatsSinkConfig,
    /// ClickHouse over HTTP.
    pub clickhouse: ClickHouseSinkConfig,
}

impl Default for EventsConfig {
    fn default() -> Self {
        EventsConfig {
            enabled: true,
            node_id: String::new(),
            queue_max_bytes: 8 << 20,
            flush_interval_ms: 200,
            batch_max_events: 4096,
            trusted_proxies: Vec::new(),
            dir: None,
            spool_max_bytes: 1 << 30,
            memory_max_bytes: 64 << 20,
            file: FileSinkConfig::default(),
            nats: NatsSinkConfig::default(),
            clickhouse: ClickHouseSinkConfig::default(),
        }
    }
}

/// NDJSON files in `<events dir>/files/`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FileSinkConfig {
    /// Write event files.
    pub enabled: bool,
    /// Close the current file once it holds this many bytes.
    pub max_bytes: u64,
    /// Close the current file once it is this old, in seconds.
    pub max_age_secs: u64,
    /// Compress closed files with gzip (`.ndjson.gz`).
    pub gzip: bool,
}

impl Default for FileSinkConfig {
    fn default() -> Self {
        FileSinkConfig {
            enabled: true,
            max_bytes: 64 << 20,
            max_age_secs: 3600,
            gzip: false,
        }
    }
}

/// NATS JetStream: one message per site and batch on `<subject_prefix>.<site>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NatsSinkConfig {
    /// Server URL, e.g. `nats://127.0.0.1:4222`; empty disables the sink.
    pub url: String,
    /// Stream name; created (file storage) if missing.
    pub stream: String,
    /// Subject prefix; events of site S go to `<prefix>.S`.
    pub subject_prefix: String,
}

impl Default for NatsSinkConfig {
    fn default() -> Self {
        NatsSinkConfig {
            url: String::new(),
            stream: "QPAGE_EVENTS".into(),
            subject_prefix: "qpage.events".into(),
        }
    }
}

/// ClickHouse's HTTP interface: `INSERT INTO <table> FORMAT JSONEachRow` per batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClickHouseSinkConfig {
    /// Base URL, e.g. `http://127.0.0.1:8123`; empty disables the sink.
    pub url: String,
    /// Table (see docs/events.md for its DDL), optionally `database.table`.
    pub table: String,
    /// User (`X-ClickHouse-User`); empty: the server's default.
    pub user: String,
    /// Password (`X-ClickHouse-Key`).
    pub password: String,
    /// Shortest time between the starts of two inserts while events flow, in
    /// milliseconds: each insert carries what queued up meanwhile (ClickHouse makes a
    /// part of every insert and advises about one a second).
    pub insert_interval_ms: u64,
    /// Most bytes of encoded events in one insert; an insert's worth queued ends the
    /// wait early.
    pub insert_max_bytes: u64,
}

impl Default for ClickHouseSinkConfig {
    fn default() -> Self {
        ClickHouseSinkConfig {
            url: String::new(),
            table: "qpage_events".into(),
            user: String::new(),
            password: String::new(),
            insert_interval_ms: 1000,
            insert_max_bytes: 32 << 20,
        }
    }
}

/// An address range: an address and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `10.0.0.0/8`, `2001:db8::/32` or a bare address.
    pub(crate) fn parse(s: &str) -> Option<Cidr> {
        let (a, p) = match s.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s.trim(), None),
        };
        let addr: IpAddr = a.parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max)?,
            None => max,
        };
        Some(Cidr { addr, prefix })
    }

    /// Whether `ip` is in the range (IPv4-mapped IPv6 addresses count as IPv4).
    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(_), IpAddr::V4(ip)) => self.contains_v4(ip),
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }

    /// [`Cidr::contains`] for an IPv4 address, which the caller need not wrap in an
    /// [`IpAddr`] (built just before, its bytes are reloaded at a stall).
    pub(crate) fn contains_v4(&self, ip: Ipv4Addr) -> bool {
        let IpAddr::V4(net) = self.addr else {
            return false;
        };
        let mask = u32::MAX
            .checked_shl(32 - u32::from(self.prefix))
            .unwrap_or(0);
        net.to_bits() & mask == ip.to_bits() & mask
    }
}

/// Most events in one batch: a batch's offsets are 32-bit (see `queue::SiteRun`), and
/// this many of the longest possible lines (some 31 KiB each) stay under 4 GiB.
const BATCH_MAX_EVENTS: usize = 100_000;

impl EventsConfig {
    /// Checks the values serde cannot; the message names the field.
    pub(crate) fn validate(&self) -> Result<(), String> {
        if !self.enabled {
            return Ok(());
        }
        if self.queue_max_bytes < 64 << 10 {
            return Err(format!(
                "events.queue_max_bytes: {} is too small; use at least 65536 (default 8388608)",
                self.queue_max_bytes
            ));
        }
        if self.batch_max_events == 0 || self.batch_max_events > BATCH_MAX_EVENTS {
            return Err(format!(
                "events.batch_max_events: {} is out of range; use 1 to {BATCH_MAX_EVENTS} (default 4096)",
                self.batch_max_events
            ));
        }
        if self.flush_interval_ms == 0 {
            return Err("events.flush_interval_ms must be at least 1".into());
        }
        if self.file.max_bytes == 0 || self.file.max_age_secs == 0 {
            return Err(
                "events.file.max_bytes and events.file.max_age_secs must be at least 1".into(),
            );
        }
        for p in &self.trusted_proxies {
            if Cidr::parse(p).is_none() {
                return Err(format!(
                    "events.trusted_proxies: {p:?} is not an address or CIDR range (e.g. 10.0.0.0/8)"
                ));
            }
        }
        if !self.nats.url.is_empty() {
            if self.nats.stream.is_empty() || self.nats.stream.contains(['.', ' ', '*', '>']) {
                return Err(format!(
                    "events.nats.stream: {:?} is not a valid stream name (no dots, spaces, * or >)",
                    self.nats.stream
                ));
            }
            if self.nats.subject_prefix.is_empty()
                || self.nats.subject_prefix.contains([' ', '*', '>'])
                || self.nats.subject_prefix.ends_with('.')
            {
                return Err(format!(
                    "events.nats.subject_prefix: {:?} is not a valid subject prefix",
                    self.nats.subject_prefix
                ));
            }
        }
        if !self.clickhouse.url.is_empty() {
            if !self.clickhouse.url.starts_with("http://") {
                return Err(format!(
                    "events.clickhouse.url: {:?}: use http://HOST:PORT of ClickHouse's HTTP interface",
                    self.clickhouse.url
                ));
            }
            if self.clickhouse.insert_max_bytes == 0 {
                return Err("events.clickhouse.insert_max_bytes must be at least 1".into());
            }
            let t = &self.clickhouse.table;
            if t.is_empty()
                || !t
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
            {
                return Err(format!(
                    "events.clickhouse.table: {t:?}: use letters, digits, _ and one . (database.table)"
                ));
            }
        }
        Ok(())
    }

    /// The parsed trusted-proxy ranges (validated before).
    pub(crate) fn trusted(&self) -> Vec<Cidr> {
        self.trusted_proxies
            .iter()
            .filter_map(|p| Cidr::parse(p))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_ranges() {
        let c = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(c.contains("10.1.200.3".parse().unwrap()));
        assert!(!c.contains("10.2.0.1".parse().unwrap()));
        assert!(c.contains("::ffff:10.1.0.9".parse().unwrap()));
        let one = Cidr::parse("192.0.2.7").unwrap();
        assert!(one.contains("192.0.2.7".parse().unwrap()));
        assert!(!one.contains("192.0.2.8".parse().unwrap()));
        let v6 = Cidr::parse("2001:db8::/32").unwrap();
        assert!(v6.contains("2001:db8:1::1".parse().unwrap()));
        assert!(!v6.contains("2001:db9::1".parse().unwrap()));
        assert!(
            Cidr::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        assert!(Cidr::parse("10.0.0.0/33").is_none());
        assert!(Cidr::parse("example.com").is_none());
    }

    #[test]
    fn bad_values_are_named() {
        let c = EventsConfig {
            trusted_proxies: vec!["nope".into()],
            ..Default::default()
        };
        assert!(c.validate().unwrap_err().contains("events.trusted_proxies"));
        let mut c = EventsConfig::default();
        c.clickhouse.url = "https://x".into();
        assert!(c.validate().unwrap_err().contains("events.clickhouse.url"));
        let mut c = EventsConfig::default();
        c.nats.url = "nats://127.0.0.1:4222".into();
        c.nats.stream = "a.b".into();
        assert!(c.validate().unwrap_err().contains("events.nats.stream"));
        for n in [0, 100_001] {
            let c = EventsConfig {
                batch_max_events: n,
                ..Default::default()
            };
            assert!(
                c.validate()
                    .unwrap_err()
                    .contains("events.batch_max_events")
            );
        }
        let c = EventsConfig {
            batch_max_events: 100_000,
            ..Default::default()
        };
        assert_eq!(c.validate(), Ok(()));
    }
}

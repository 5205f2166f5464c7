//! ACME (RFC 8555) through instant-acme: the account (created once, kept in
//! `data/acme/`, mode 0600), orders answered by HTTP-01 or TLS-ALPN-01, and the
//! schedule: eager orders for newly routed hosts, on-demand orders from handshakes,
//! renewal at about two thirds of a certificate's lifetime with jitter (or inside the
//! server's ACME Renewal Information window when it offers ARI, RFC 9773), per-host and
//! node-wide rate limits, and exponential backoff after failures while the old
//! certificate keeps serving. Only hosts in the routing table are ever ordered for.

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI8, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, ChallengeType, ExternalAccountKey,
    Identifier, NewAccount, NewOrder, OrderStatus, RetryPolicy,
};

use super::certs::{CertInfo, CertStore, create_private_dir, write_private};
use super::config::{AcmeConfig, Challenge};
use super::resolver::Challenges;
use crate::error::{EdgeError, Result};
use crate::state::Shared;

/// Why an order is placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reason {
    /// A routed host without a certificate appeared.
    Eager,
    /// A handshake asked for a routed host without a certificate.
    OnDemand,
    /// The certificate is due for renewal.
    Renewal,
}

impl Reason {
    fn as_str(self) -> &'static str {
        match self {
            Reason::Eager => "eager",
            Reason::OnDemand => "on-demand",
            Reason::Renewal => "renewal",
        }
    }
}

/// What the scheduler knows about one host.
#[derive(Debug, Default)]
struct HostState {
    in_flight: bool,
    failures: u32,
    next_attempt: Option<Instant>,
    /// Order attempts in the last 24 hours (the per-host limit).
    attempts: VecDeque<Instant>,
    /// The reason to retry with once the backoff has passed.
    retry: Option<Reason>,
    /// The renewal time chosen for the certificate expiring at `.0`: `.1`, Unix seconds.
    renew_at: Option<(i64, i64)>,
    /// When to ask the server's ARI again.
    ari_next: Option<Instant>,
}

/// The ACME client and its schedule.
pub(crate) struct Acme {
    cfg: AcmeConfig,
    dir: PathBuf,
    account: tokio::sync::Mutex<Option<Account>>,
    store: Arc<CertStore>,
    challenges: Arc<Challenges>,
    hosts: Mutex<HashMap<String, HostState>>,
    global: Mutex<VecDeque<Instant>>,
    permits: Arc<tokio::sync::Semaphore>,
    issued: AtomicU64,
    failed: AtomicU64,
    rate_limited: AtomicU64,
    orders_by_reason: [AtomicU64; 3],
    /// -1 unknown, 0 no, 1 yes: whether the server offers ARI.
    ari: AtomicI8,
}

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A uniform random number in [0, 1) (no cryptographic use: jitter only).
fn random_unit() -> f64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// The point at `fraction` of a certificate's lifetime, moved by `jitter` lifetimes.
fn renew_point(info: &CertInfo, fraction: f64, jitter: f64) -> i64 {
    let life = (info.not_after - info.not_before).max(0) as f64;
    info.not_before + (life * (fraction + jitter)) as i64
}

/// Whether a certificate is past `fraction` of its lifetime (no jitter, no ARI).
pub(crate) fn renewal_due(info: &CertInfo, fraction: f64, now: i64) -> bool {
    now >= renew_point(info, fraction, 0.0)
}

impl Acme {
    pub(crate) fn new(
        cfg: &AcmeConfig,
        dir: &Path,
        store: Arc<CertStore>,
        challenges: Arc<Challenges>,
    ) -> Result<Acme> {
        create_private_dir(dir)?;
        if let Some(ca) = &cfg.ca_file
            && !ca.is_file()
        {
            return Err(EdgeError::Config(format!(
                "tls.acme.ca_file: {} is not a file",
                ca.display()
            )));
        }
        Ok(Acme {
            cfg: cfg.clone(),
            dir: dir.to_path_buf(),
            account: tokio::sync::Mutex::new(None),
            store,
            challenges,
            hosts: Mutex::new(HashMap::new()),
            global: Mutex::new(VecDeque::new()),
            permits: Arc::new(tokio::sync::Semaphore::new(cfg.max_concurrent_orders)),
            issued: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            rate_limited: AtomicU64::new(0),
            orders_by_reason: Default::default(),
            ari: AtomicI8::new(-1),
        })
    }

    fn lock_hosts(&self) -> std::sync::MutexGuard<'_, HashMap<String, HostState>> {
        self.hosts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether an order for `host` is running.
    pub(crate) fn in_flight(&self, host: &str) -> bool {
        self.lock_hosts().get(host).is_some_and(|s| s.in_flight)
    }

    /// Hosts whose last order failed.
    pub(crate) fn failing(&self) -> usize {
        self.lock_hosts()
            .values()
            .filter(|s| s.failures > 0)
            .count()
    }

    /// Starts an order for `host` unless one runs, its backoff has not passed, or a
    /// rate limit says no. Returns whether an order is running for it afterwards.
    pub(crate) fn request(self: &Arc<Self>, host: &str, reason: Reason) -> bool {
        let now = Instant::now();
        let mut hosts = self.lock_hosts();
        let st = hosts.entry(host.to_string()).or_default();
        if st.in_flight {
            return true;
        }
        if st.next_attempt.is_some_and(|t| now < t) {
            st.retry.get_or_insert(reason);
            return false;
        }
        let day = Duration::from_secs(86_400);
        while st
            .attempts
            .front()
            .is_some_and(|t| now.duration_since(*t) > day)
        {
            st.attempts.pop_front();
        }
        if st.attempts.len() >= self.cfg.max_orders_per_host_per_day as usize {
            self.rate_limited.fetch_add(1, Relaxed);
            let until = st.attempts.front().map(|t| *t + day).unwrap_or(now + day);
            st.next_attempt = Some(until);
            st.retry = Some(reason);
            tracing::warn!(host, "ACME: per-host order limit reached; waiting");
            return false;
        }
        {
            let mut g = self.global.lock().unwrap_or_else(|p| p.into_inner());
            let hour = Duration::from_secs(3600);
            while g.front().is_some_and(|t| now.duration_since(*t) > hour) {
                g.pop_front();
            }
            if g.len() >= self.cfg.max_orders_per_hour as usize {
                self.rate_limited.fetch_add(1, Relaxed);
                st.retry = Some(reason);
                st.next_attempt = g.front().map(|t| *t + hour);
                tracing::warn!(host, "ACME: node-wide order limit reached; waiting");
                return false;
            }
            g.push_back(now);
        }
        st.attempts.push_back(now);
        st.in_flight = true;
        st.retry = None;
        drop(hosts);
        let idx = match reason {
            Reason::Eager => 0,
            Reason::OnDemand => 1,
            Reason::Renewal => 2,
        };
        self.orders_by_reason[idx].fetch_add(1, Relaxed);
        let me = self.clone();
        let host = host.to_string();
        tokio::spawn(async move { me.run_order(host, reason).await });
        true
    }

    async fn run_order(self: Arc<Self>, host: String, reason: Reason) {
        let permit = self.permits.clone().acquire_owned().await;
        tracing::info!(
            host,
            reason = reason.as_str(),
            "ACME: ordering a certificate"
        );
        let timeout = Duration::from_millis(self.cfg.order_timeout_ms);
        let result = match tokio::time::timeout(timeout, self.order(&host, reason)).await {
            Ok(r) => r,
            Err(_) => Err("the order timed out (tls.acme.order_timeout_ms)".to_string()),
        };
        drop(permit);
        let mut hosts = self.lock_hosts();
        let st = hosts.entry(host.clone()).or_default();
        st.in_flight = false;
        match result {
            Ok(info) => {
                st.failures = 0;
                st.next_attempt = None;
                st.retry = None;
                st.renew_at = None;
                st.ari_next = None;
                self.issued.fetch_add(1, Relaxed);
                tracing::info!(
                    host,
                    reason = reason.as_str(),
                    not_after = info.not_after,
                    "ACME: certificate issued and installed"
                );
            }
            Err(e) => {
                st.failures += 1;
                let shift = (st.failures - 1).min(20);
                let wait = self
                    .cfg
                    .backoff_initial_ms
                    .saturating_mul(1u64 << shift)
                    .min(self.cfg.backoff_max_ms);
                st.next_attempt = Some(Instant::now() + Duration::from_millis(wait));
                st.retry = Some(reason);
                self.failed.fetch_add(1, Relaxed);
                let keeps = self.store.get(&host).is_some();
                tracing::warn!(
                    host,
                    reason = reason.as_str(),
                    error = %e,
                    failures = st.failures,
                    retry_in_ms = wait,
                    old_certificate_serving = keeps,
                    "ACME: order failed"
                );
            }
        }
    }

    /// The account: loaded from `data/acme/` or created there.
    async fn account(&self) -> std::result::Result<Account, String> {
        let mut g = self.account.lock().await;
        if let Some(a) = &*g {
            return Ok(a.clone());
        }
        let builder = || match &self.cfg.ca_file {
            Some(p) => Account::builder_with_root(p),
            None => Account::builder(),
        };
        let path = self.account_path();
        let account = if path.is_file() {
            let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let creds: AccountCredentials =
                serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
            builder()
                .map_err(|e| e.to_string())?
                .from_credentials(creds)
                .await
                .map_err(|e| format!("ACME account from {}: {e}", path.display()))?
        } else {
            let eab = match (&self.cfg.eab_kid, &self.cfg.eab_hmac_key) {
                (Some(kid), Some(key)) => {
                    let raw =
                        base64_url_decode(key).ok_or("tls.acme.eab_hmac_key is not base64url")?;
                    Some(ExternalAccountKey::new(kid.clone(), &raw))
                }
                _ => None,
            };
            let contact: Vec<&str> = self.cfg.contact.iter().map(String::as_str).collect();
            let (account, creds) = builder()
                .map_err(|e| e.to_string())?
                .create(
                    &NewAccount {
                        contact: &contact,
                        terms_of_service_agreed: true,
                        only_return_existing: false,
                    },
                    self.cfg.directory_url.clone(),
                    eab.as_ref(),
                )
                .await
                .map_err(|e| format!("creating the ACME account: {e}"))?;
            let json = serde_json::to_vec_pretty(&creds).map_err(|e| e.to_string())?;
            write_private(&path, &json).map_err(|e| e.to_string())?;
            tracing::info!(directory = %self.cfg.directory_url, path = %path.display(), "ACME: account created");
            account
        };
        *g = Some(account.clone());
        Ok(account)
    }

    /// One account file per directory URL, so switching CA does not reuse a key
    /// registered elsewhere.
    fn account_path(&self) -> PathBuf {
        use sha2::Digest;
        let d = sha2::Sha256::digest(self.cfg.directory_url.as_bytes());
        self.dir
            .join(format!("account-{}.json", &crate::store::hex(&d)[..16]))
    }

    async fn order(&self, host: &str, reason: Reason) -> std::result::Result<CertInfo, String> {
        let account = self.account().await?;
        let ids = [Identifier::Dns(host.to_string())];
        let mut new = NewOrder::new(&ids);
        let replaces = (reason == Reason::Renewal && self.ari.load(Relaxed) == 1)
            .then(|| self.store.get_managed(host))
            .flatten()
            .and_then(|l| l.info.ari_id.clone());
        if let Some(id) = replaces {
            new = new.replaces(id);
        }
        let mut order = account
            .new_order(&new)
            .await
            .map_err(|e| format!("new order: {e}"))?;
        let mut offered = Offered::default();
        let result = self.authorize(&mut order, host, &mut offered).await;
        let result = match result {
            Ok(()) => order
                .poll_ready(
                    &RetryPolicy::new().timeout(Duration::from_millis(self.cfg.order_timeout_ms)),
                )
                .await
                .map_err(|e| format!("waiting for validation: {e}")),
            Err(e) => Err(e),
        };
        for t in &offered.tokens {
            self.challenges.remove_http(t);
        }
        for h in &offered.alpn {
            self.challenges.remove_alpn(h);
        }
        let status = result?;
        if status != OrderStatus::Ready {
            let detail = order
                .state()
                .error
                .as_ref()
                .map(|p| p.to_string())
                .unwrap_or_default();
            let mut why = String::new();
            let mut auths = order.authorizations();
            while let Some(Ok(a)) = auths.next().await {
                for c in &a.challenges {
                    if let Some(err) = &c.error {
                        let _ = write!(why, " {:?}: {err}", c.r#type);
                    }
                }
            }
            return Err(format!("order {status:?}: {detail}{why}"));
        }
        let key_pem = order
            .finalize()
            .await
            .map_err(|e| format!("finalize: {e}"))?;
        let chain = order
            .poll_certificate(
                &RetryPolicy::new().timeout(Duration::from_millis(self.cfg.order_timeout_ms)),
            )
            .await
            .map_err(|e| format!("downloading the certificate: {e}"))?;
        let store = self.store.clone();
        let name = host.to_string();
        let loaded = tokio::task::spawn_blocking(move || store.install(&name, &key_pem, &chain))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("storing the certificate: {e}"))?;
        Ok(loaded.info.clone())
    }

    async fn authorize(
        &self,
        order: &mut instant_acme::Order,
        host: &str,
        offered: &mut Offered,
    ) -> std::result::Result<(), String> {
        let mut auths = order.authorizations();
        while let Some(a) = auths.next().await {
            let mut a = a.map_err(|e| format!("authorization: {e}"))?;
            match a.status {
                AuthorizationStatus::Pending => {}
                AuthorizationStatus::Valid => continue,
                other => return Err(format!("authorization is {other:?}")),
            }
            let (want, other) = match self.cfg.challenge {
                Challenge::Http01 => (ChallengeType::Http01, ChallengeType::TlsAlpn01),
                Challenge::TlsAlpn01 => (ChallengeType::TlsAlpn01, ChallengeType::Http01),
            };
            let ty = if a.challenges.iter().any(|c| c.r#type == want) {
                want
            } else if a.challenges.iter().any(|c| c.r#type == other) {
                other
            } else {
                return Err("the server offers neither http-01 nor tls-alpn-01".into());
            };
            let Some(mut ch) = a.challenge(ty.clone()) else {
                return Err("challenge vanished".into());
            };
            let key_auth = ch.key_authorization();
            if ty == ChallengeType::Http01 {
                self.challenges.set_http(&ch.token, key_auth.as_str());
                offered.tokens.push(ch.token.clone());
            } else {
                self.challenges
                    .set_alpn(host, key_auth.digest().as_ref())
                    .map_err(|e| format!("tls-alpn-01 certificate: {e}"))?;
                offered.alpn.push(host.to_string());
            }
            ch.set_ready()
                .await
                .map_err(|e| format!("challenge ready: {e}"))?;
        }
        Ok(())
    }

    /// The scheduler: eager orders when the routing table changes, retries after
    /// backoff, renewal checks every `check_interval_ms`; and a one-time background
    /// load of every stored certificate (expiry for metrics and renewal).
    pub(crate) async fn run(
        self: Arc<Self>,
        shared: Arc<Shared>,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        let store = self.store.clone();
        let warm = tokio::task::spawn_blocking(move || store.warm());
        let mut warm = Some(warm);
        let mut last_table: Option<Arc<crate::routing::RoutingTable>> = None;
        let interval = Duration::from_millis(self.cfg.check_interval_ms);
        let tick = interval.min(Duration::from_secs(1));
        let mut next_check = Instant::now();
        loop {
            let table = shared.table.load_full();
            let changed = last_table.as_ref().is_none_or(|t| !Arc::ptr_eq(t, &table));
            if changed && self.cfg.eager {
                for host in table.hosts() {
                    if !self.store.has(host) {
                        self.request(host, Reason::Eager);
                    }
                }
            }
            last_table = Some(table.clone());
            self.retry_due(&table);
            if let Some(w) = warm.take_if(|w| w.is_finished())
                && let Ok(n) = w.await
            {
                tracing::info!(loaded = n, "certificates loaded in the background");
            }
            if Instant::now() >= next_check && warm.is_none() {
                next_check = Instant::now() + interval;
                self.check_renewals(&table).await;
            }
            tokio::select! {
                _ = stop.changed() => return,
                _ = tokio::time::sleep(tick) => {}
            }
        }
    }

    /// Re-requests hosts whose backoff has passed, if they are still routed.
    fn retry_due(self: &Arc<Self>, table: &crate::routing::RoutingTable) {
        let now = Instant::now();
        let due: Vec<(String, Reason)> = self
            .lock_hosts()
            .iter()
            .filter(|(_, s)| !s.in_flight && s.next_attempt.is_none_or(|t| now >= t))
            .filter_map(|(h, s)| s.retry.map(|r| (h.clone(), r)))
            .collect();
        for (host, reason) in due {
            if table.site_for_host(&host).is_some() {
                self.request(&host, reason);
            } else {
                self.lock_hosts().remove(&host);
            }
        }
    }

    async fn check_renewals(self: &Arc<Self>, table: &crate::routing::RoutingTable) {
        let now = unix_now();
        for name in self.store.managed_names() {
            // Only routed hosts are renewed; operator files take over names they cover.
            if table.site_for_host(&name).is_none() || self.store.operator_covers(&name) {
                continue;
            }
            let Some(loaded) = self.store.get_managed(&name) else {
                continue;
            };
            let info = &loaded.info;
            let at = self.renewal_time(&name, info).await;
            if now >= at {
                tracing::info!(host = %name, not_after = info.not_after, "certificate due for renewal");
                self.request(&name, Reason::Renewal);
            }
        }
    }

    /// When to renew: inside the ARI window when the server offers ARI, else at
    /// `renew_at` of the lifetime plus jitter. Chosen once per certificate.
    async fn renewal_time(&self, name: &str, info: &CertInfo) -> i64 {
        let (cached, ask_ari) = {
            let hosts = self.lock_hosts();
            let st = hosts.get(name);
            let cached = st
                .and_then(|s| s.renew_at)
                .filter(|(na, _)| *na == info.not_after)
                .map(|(_, t)| t);
            let ask = self.ari.load(Relaxed) != 0
                && info.ari_id.is_some()
                && st
                    .and_then(|s| s.ari_next)
                    .is_none_or(|t| Instant::now() >= t);
            (cached, ask)
        };
        let mut at = cached;
        if ask_ari && let Some(id) = &info.ari_id {
            match self.account().await {
                Ok(account) => match account.renewal_info(id).await {
                    Ok((ri, retry_after)) => {
                        self.ari.store(1, Relaxed);
                        let start = ri.suggested_window.start.unix_timestamp();
                        let end = ri.suggested_window.end.unix_timestamp().max(start);
                        let t = start + ((end - start) as f64 * random_unit()) as i64;
                        at = Some(t);
                        let mut hosts = self.lock_hosts();
                        let st = hosts.entry(name.to_string()).or_default();
                        st.renew_at = Some((info.not_after, t));
                        st.ari_next = Some(
                            Instant::now()
                                + retry_after
                                    .clamp(Duration::from_secs(60), Duration::from_secs(86_400)),
                        );
                    }
                    Err(instant_acme::Error::Unsupported(_)) => {
                        if self.ari.swap(0, Relaxed) != 0 {
                            tracing::info!(
                                "ACME server offers no renewal information (ARI): renewing at a fraction of the lifetime"
                            );
                        }
                    }
                    Err(e) => {
                        tracing::debug!(host = name, error = %e, "ARI query failed");
                        let mut hosts = self.lock_hosts();
                        hosts.entry(name.to_string()).or_default().ari_next =
                            Some(Instant::now() + Duration::from_secs(3600));
                    }
                },
                Err(e) => tracing::debug!(error = %e, "ACME account unavailable for ARI"),
            }
        }
        if let Some(t) = at {
            return t;
        }
        let jitter = (random_unit() * 2.0 - 1.0) * self.cfg.renew_jitter;
        let margin = ((info.not_after - info.not_before) / 10).min(3600);
        let t = renew_point(info, self.cfg.renew_at, jitter).min(info.not_after - margin);
        self.lock_hosts()
            .entry(name.to_string())
            .or_default()
            .renew_at = Some((info.not_after, t));
        t
    }

    pub(crate) fn render_metrics(&self, s: &mut String) {
        let _ = writeln!(
            s,
            "# HELP qpage_acme_orders_total ACME orders by outcome.\n# TYPE qpage_acme_orders_total counter\nqpage_acme_orders_total{{result=\"issued\"}} {}\nqpage_acme_orders_total{{result=\"failed\"}} {}",
            self.issued.load(Relaxed),
            self.failed.load(Relaxed)
        );
        let _ = writeln!(
            s,
            "# HELP qpage_acme_orders_started_total ACME orders started, by reason.\n# TYPE qpage_acme_orders_started_total counter"
        );
        for (i, r) in ["eager", "on-demand", "renewal"].iter().enumerate() {
            let _ = writeln!(
                s,
                "qpage_acme_orders_started_total{{reason=\"{r}\"}} {}",
                self.orders_by_reason[i].load(Relaxed)
            );
        }
        let in_flight = self.lock_hosts().values().filter(|s| s.in_flight).count();
        let _ = writeln!(
            s,
            "# HELP qpage_acme_failures_total Failed ACME orders.\n# TYPE qpage_acme_failures_total counter\nqpage_acme_failures_total {}\n# HELP qpage_acme_rate_limited_total Orders held back by the per-host or node-wide limit.\n# TYPE qpage_acme_rate_limited_total counter\nqpage_acme_rate_limited_total {}\n# HELP qpage_acme_orders_in_flight ACME orders running.\n# TYPE qpage_acme_orders_in_flight gauge\nqpage_acme_orders_in_flight {in_flight}\n# HELP qpage_acme_ari_offered Whether the ACME server offers renewal information (1 yes, 0 no, -1 not known yet).\n# TYPE qpage_acme_ari_offered gauge\nqpage_acme_ari_offered {}",
            self.failed.load(Relaxed),
            self.rate_limited.load(Relaxed),
            self.ari.load(Relaxed)
        );
    }
}

/// Challenge responses set up for one order, removed when it ends.
#[derive(Default)]
struct Offered {
    tokens: Vec<String>,
    alpn: Vec<String>,
}

/// Decodes base64url (padding optional), as CAs hand out EAB keys.
fn base64_url_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.trim().trim_end_matches('=').bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' | b'+' => 62,
            b'_' | b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url() {
        assert_eq!(base64_url_decode("aGVsbG8").unwrap(), b"hello");
        assert_eq!(base64_url_decode("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(base64_url_decode("_-8").unwrap(), [0xff, 0xef]);
        assert!(base64_url_decode("a b").is_none());
    }

    #[test]
    fn renewal_point_is_two_thirds() {
        let info = CertInfo {
            names: Arc::from(vec!["a.test".to_string()]),
            not_before: 0,
            not_after: 90 * 86_400,
            ari_id: None,
        };
        assert_eq!(renew_point(&info, 2.0 / 3.0, 0.0), 60 * 86_400);
        assert!(!renewal_due(&info, 2.0 / 3.0, 59 * 86_400));
        assert!(renewal_due(&info, 2.0 / 3.0, 60 * 86_400));
        let r = random_unit();
        assert!((0.0..1.0).contains(&r));
    }
}

//! A client of the publish API (what `qpage publish` runs): hashes a built `dist/`,
//! sends its manifest, uploads only the blobs the edge lacks (in parallel, with retries
//! and exponential backoff), finalizes, and reports the deploy id and live URL.
//!
//! Plain `http://` only: reach a remote edge's admin listener through a TLS-terminating
//! tunnel or proxy (docs/publish-api.md).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::publish::{ManifestFile, PublishManifest};
use crate::store::{DeployId, collect_files, hex, read_regular};

/// Errors of the publish client.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Reading the built site failed.
    #[error(transparent)]
    Dist(#[from] crate::error::EdgeError),
    /// The edge URL cannot be used.
    #[error("edge URL {0:?}: use http://HOST:PORT of the edge's admin listener")]
    Url(String),
    /// The edge answered with an error.
    #[error("{method} {path}: {status}: {message}")]
    Status {
        /// Method of the call.
        method: String,
        /// Path of the call.
        path: String,
        /// HTTP status.
        status: u16,
        /// The edge's message.
        message: String,
    },
    /// The edge could not be reached (after retries).
    #[error("{path}: {message}")]
    Transport {
        /// Path of the call.
        path: String,
        /// What failed.
        message: String,
    },
}

/// What to publish where.
#[derive(Debug, Clone)]
pub struct PublishOptions {
    /// Base URL of the edge's admin listener, e.g. `http://127.0.0.1:9090`.
    pub edge: String,
    /// Site name.
    pub site: String,
    /// Bearer token (operator or the site's token).
    pub token: String,
    /// Parallel uploads.
    pub concurrency: usize,
    /// Attempts per call beyond the first, on connection errors and 5xx/408/429.
    pub retries: u32,
    /// First retry delay; doubled on each attempt (with jitter), capped at 10 s.
    pub backoff: Duration,
    /// Go live at this time (seconds since the Unix epoch) instead of now.
    pub activate_at: Option<u64>,
    /// Go live at all (false: finalize only; activate later).
    pub activate: bool,
}

impl PublishOptions {
    /// Options with defaults: 8 parallel uploads, 5 retries from 200 ms, go live now.
    pub fn new(edge: &str, site: &str, token: &str) -> PublishOptions {
        PublishOptions {
            edge: edge.trim_end_matches('/').to_string(),
            site: site.to_string(),
            token: token.to_string(),
            concurrency: 8,
            retries: 5,
            backoff: Duration::from_millis(200),
            activate_at: None,
            activate: true,
        }
    }
}

/// Progress of a publish, for a progress bar.
#[derive(Debug, Clone)]
pub enum Progress {
    /// Files hashed so far, of the total.
    Hashed(u64, u64),
    /// Uploads are starting: blobs and bytes to send.
    Uploading {
        /// Blobs to upload.
        blobs: u64,
        /// Their bytes.
        bytes: u64,
    },
    /// One blob finished uploading (its size).
    Uploaded(u64),
    /// A call is being retried (what, attempt).
    Retry(String, u32),
    /// Finalizing.
    Finalizing,
}

/// What a publish did.
#[derive(Debug, Clone)]
pub struct PublishReport {
    /// The deploy's id.
    pub deploy: DeployId,
    /// Files in the deploy.
    pub files: usize,
    /// Blobs uploaded.
    pub blobs_uploaded: u64,
    /// Bytes of blobs uploaded.
    pub blob_bytes: u64,
    /// All request body bytes sent (manifest, blobs, finalize).
    pub bytes_sent: u64,
    /// Whether the deploy is live now.
    pub live: bool,
    /// When it goes live, if scheduled.
    pub activate_at: Option<u64>,
    /// `https://<first host>/` of the site.
    pub url: Option<String>,
    /// Time spent hashing the build.
    pub hash_time: Duration,
    /// Time of the finalize call (the edge makes variants it lacks and swaps the deploy).
    pub finalize_time: Duration,
    /// Whole publish.
    pub elapsed: Duration,
}

#[derive(Deserialize)]
struct BeginAnswer {
    deploy: DeployId,
    missing: Vec<String>,
}

#[derive(Deserialize)]
struct FinalizeAnswer {
    live: bool,
    #[serde(default)]
    activate_at: Option<u64>,
}

#[derive(Deserialize)]
struct SiteAnswer {
    hosts: Vec<String>,
}

struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
    base: String,
    token: String,
    retries: u32,
    backoff: Duration,
    sent: AtomicU64,
}

impl Http {
    /// One call with retries; returns status and body. 4xx (but 408/429) is final.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Bytes,
        gzip: bool,
        progress: &(dyn Fn(Progress) + Send + Sync),
    ) -> Result<(StatusCode, Bytes), ClientError> {
        let uri = format!("{}{path}", self.base);
        let mut attempt = 0u32;
        loop {
            let mut b = Request::builder()
                .method(method.clone())
                .uri(&uri)
                .header(header::AUTHORIZATION, format!("Bearer {}", self.token))
                .header(header::CONTENT_LENGTH, body.len());
            if gzip {
                b = b.header(header::CONTENT_ENCODING, "gzip");
            }
            let req = b
                .body(Full::new(body.clone()))
                .map_err(|_| ClientError::Url(self.base.clone()))?;
            self.sent.fetch_add(body.len() as u64, Relaxed);
            let outcome = match self.client.request(req).await {
                Ok(resp) => {
                    let status = resp.status();
                    match resp.into_body().collect().await {
                        Ok(c) => Ok((status, c.to_bytes())),
                        Err(e) => Err(e.to_string()),
                    }
                }
                Err(e) => Err(format!("{e}: {:?}", std::error::Error::source(&e))),
            };
            let retryable = match &outcome {
                Ok((s, _)) => {
                    s.is_server_error()
                        || *s == StatusCode::REQUEST_TIMEOUT
                        || *s == StatusCode::TOO_MANY_REQUESTS
                }
                Err(_) => true,
            };
            if !retryable || attempt >= self.retries {
                return match outcome {
                    Ok((s, body)) if s.is_success() => Ok((s, body)),
                    Ok((s, body)) => Err(ClientError::Status {
                        method: method.to_string(),
                        path: path.to_string(),
                        status: s.as_u16(),
                        message: serde_json::from_slice::<serde_json::Value>(&body)
                            .ok()
                            .and_then(|v| v.get("error")?.as_str().map(str::to_string))
                            .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned()),
                    }),
                    Err(message) => Err(ClientError::Transport {
                        path: path.to_string(),
                        message,
                    }),
                };
            }
            attempt += 1;
            progress(Progress::Retry(path.to_string(), attempt));
            let base = self.backoff.saturating_mul(1 << attempt.min(10));
            let jitter = jitter_ms(base.as_millis() as u64 / 2 + 1);
            tokio::time::sleep((base + Duration::from_millis(jitter)).min(Duration::from_secs(10)))
                .await;
        }
    }
}

fn jitter_ms(max: u64) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0);
    nanos % max.max(1)
}

/// A file of the build: where it is and what it hashes to.
struct Local {
    fs_path: PathBuf,
    entry: ManifestFile,
}

/// Hashes every file of `dist` (in parallel threads), as the edge would import it.
fn hash_dist(
    dist: &Path,
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> Result<Vec<Local>, ClientError> {
    let files = collect_files(dist)?;
    let total = files.len() as u64;
    let done = AtomicU64::new(0);
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(1, 8);
    let chunk = files.len().div_ceil(threads).max(1);
    let results: Vec<Result<Vec<Local>, ClientError>> = std::thread::scope(|s| {
        let handles: Vec<_> = files
            .chunks(chunk)
            .map(|part| {
                let done = &done;
                s.spawn(move || {
                    let mut out = Vec::with_capacity(part.len());
                    for f in part {
                        let bytes = read_regular(&f.fs_path)?;
                        let sha = hex(&Sha256::digest(&bytes));
                        out.push(Local {
                            fs_path: f.fs_path.clone(),
                            entry: ManifestFile {
                                path: f.site_path.clone(),
                                sha256: sha,
                                size: bytes.len() as u64,
                                content_type: f
                                    .expected
                                    .as_ref()
                                    .and_then(|e| e.content_type.clone()),
                            },
                        });
                        let n = done.fetch_add(1, Relaxed) + 1;
                        if n & 255 == 0 || n == total {
                            progress(Progress::Hashed(n, total));
                        }
                    }
                    Ok(out)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(ClientError::Transport {
                        path: dist.display().to_string(),
                        message: "a hashing thread panicked".into(),
                    })
                })
            })
            .collect()
    });
    let mut all = Vec::with_capacity(files.len());
    for r in results {
        all.extend(r?);
    }
    Ok(all)
}

/// Publishes `dist` as a new deploy of the site (see the module docs).
pub async fn publish(
    dist: &Path,
    opts: &PublishOptions,
    progress: Arc<dyn Fn(Progress) + Send + Sync>,
) -> Result<PublishReport, ClientError> {
    let started = Instant::now();
    let base = opts.edge.trim_end_matches('/').to_string();
    if !base.starts_with("http://") || base.len() <= "http://".len() {
        return Err(ClientError::Url(opts.edge.clone()));
    }
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(Duration::from_secs(10)));
    let http = Arc::new(Http {
        client: Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector),
        base,
        token: opts.token.clone(),
        retries: opts.retries,
        backoff: opts.backoff,
        sent: AtomicU64::new(0),
    });

    let t = Instant::now();
    let dist2 = dist.to_path_buf();
    let p2 = progress.clone();
    let locals = tokio::task::spawn_blocking(move || hash_dist(&dist2, &*p2))
        .await
        .map_err(|e| ClientError::Transport {
            path: dist.display().to_string(),
            message: e.to_string(),
        })??;
    let hash_time = t.elapsed();

    let manifest = PublishManifest {
        files: locals.iter().map(|l| l.entry.clone()).collect(),
    };
    let json = serde_json::to_vec(&manifest).unwrap_or_default();
    let gz = {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
        let _ = enc.write_all(&json);
        enc.finish().unwrap_or_default()
    };
    let site = &opts.site;
    let (_, body) = http
        .call(
            Method::POST,
            &format!("/v1/sites/{site}/deploys"),
            Bytes::from(gz),
            true,
            &*progress,
        )
        .await?;
    let begin: BeginAnswer = parse_json(&body, "deploys")?;

    // The first local file of each missing hash.
    let mut by_hash: BTreeMap<&str, &Local> = BTreeMap::new();
    for l in &locals {
        by_hash.entry(l.entry.sha256.as_str()).or_insert(l);
    }
    let todo: Vec<(String, PathBuf, u64)> = begin
        .missing
        .iter()
        .filter_map(|h| {
            by_hash
                .get(h.as_str())
                .map(|l| (h.clone(), l.fs_path.clone(), l.entry.size))
        })
        .collect();
    let blob_bytes: u64 = todo.iter().map(|t| t.2).sum();
    progress(Progress::Uploading {
        blobs: todo.len() as u64,
        bytes: blob_bytes,
    });
    let sem = Arc::new(tokio::sync::Semaphore::new(opts.concurrency.max(1)));
    let mut set = tokio::task::JoinSet::new();
    for (hash, path, _size) in &todo {
        let (hash, path) = (hash.clone(), path.clone());
        let http = http.clone();
        let sem = sem.clone();
        let progress = progress.clone();
        let site = site.clone();
        set.spawn(async move {
            let _permit = sem.acquire_owned().await;
            let bytes = tokio::fs::read(&path)
                .await
                .map_err(|e| ClientError::Dist(crate::error::EdgeError::io(&path, e)))?;
            let n = bytes.len() as u64;
            http.call(
                Method::PUT,
                &format!("/v1/sites/{site}/blobs/{hash}"),
                Bytes::from(bytes),
                false,
                &*progress,
            )
            .await?;
            progress(Progress::Uploaded(n));
            Ok::<(), ClientError>(())
        });
    }
    while let Some(r) = set.join_next().await {
        match r {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                set.abort_all();
                return Err(e);
            }
            Err(e) => {
                return Err(ClientError::Transport {
                    path: "upload".into(),
                    message: e.to_string(),
                });
            }
        }
    }

    progress(Progress::Finalizing);
    let fin_body = serde_json::json!({
        "activate": opts.activate,
        "activate_at": opts.activate_at,
    });
    let t = Instant::now();
    let (_, body) = http
        .call(
            Method::POST,
            &format!("/v1/sites/{site}/deploys/{}/finalize", begin.deploy),
            Bytes::from(fin_body.to_string()),
            false,
            &*progress,
        )
        .await?;
    let finalize_time = t.elapsed();
    let fin: FinalizeAnswer = parse_json(&body, "finalize")?;
    let url = match http
        .call(
            Method::GET,
            &format!("/v1/sites/{site}"),
            Bytes::new(),
            false,
            &*progress,
        )
        .await
    {
        Ok((_, body)) => parse_json::<SiteAnswer>(&body, "site")
            .ok()
            .and_then(|s| s.hosts.first().map(|h| format!("https://{h}/"))),
        Err(_) => None,
    };
    Ok(PublishReport {
        deploy: begin.deploy,
        files: locals.len(),
        blobs_uploaded: todo.len() as u64,
        blob_bytes,
        bytes_sent: http.sent.load(Relaxed),
        live: fin.live,
        activate_at: fin.activate_at,
        url,
        hash_time,
        finalize_time,
        elapsed: started.elapsed(),
    })
}

/// [`publish`] on a runtime of its own, for the command line.
pub fn publish_blocking(
    dist: &Path,
    opts: &PublishOptions,
    progress: Arc<dyn Fn(Progress) + Send + Sync>,
) -> Result<PublishReport, ClientError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| ClientError::Transport {
            path: "runtime".into(),
            message: e.to_string(),
        })?;
    rt.block_on(publish(dist, opts, progress))
}

fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8], what: &str) -> Result<T, ClientError> {
    serde_json::from_slice(body).map_err(|e| ClientError::Transport {
        path: what.into(),
        message: format!("unexpected answer: {e}"),
    })
}

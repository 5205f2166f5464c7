//! `qpage edge serve` as a library call: builds the runtime, loads the configuration
//! with command-line overrides, drains on SIGTERM/SIGINT and reloads on SIGHUP.

use std::path::PathBuf;

use crate::config::EdgeConfig;
use crate::error::{EdgeError, Result};
use crate::server::Server;

/// Options of `qpage edge serve`; set fields override the configuration file.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// `edge.toml`; without it every setting takes its default.
    pub config: Option<PathBuf>,
    /// Overrides `data_dir`.
    pub data_dir: Option<PathBuf>,
    /// Overrides `listen`.
    pub listen: Option<String>,
    /// Overrides `admin`.
    pub admin: Option<String>,
}

impl ServeOptions {
    /// The configuration: the file (if any) with the overrides applied.
    pub fn load(&self) -> Result<EdgeConfig> {
        let mut cfg = match &self.config {
            Some(p) => EdgeConfig::from_file(p)?,
            None => EdgeConfig::default(),
        };
        if let Some(d) = &self.data_dir {
            cfg.data_dir = d.clone();
        }
        if let Some(l) = &self.listen {
            cfg.listen = l.clone();
        }
        if let Some(a) = &self.admin {
            cfg.admin = a.clone();
        }
        cfg.validate()?;
        Ok(cfg)
    }
}

/// Runs an edge node until SIGTERM or SIGINT, reloading on SIGHUP.
pub fn serve_blocking(opts: ServeOptions) -> Result<()> {
    let cfg = opts.load()?;
    let mut rt = if cfg.workers == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        if cfg.workers > 1 {
            b.worker_threads(cfg.workers);
        }
        b
    };
    let rt = rt
        .enable_all()
        .build()
        .map_err(|e| EdgeError::Config(format!("cannot start the runtime: {e}")))?;
    rt.block_on(run(opts, cfg))
}

async fn run(opts: ServeOptions, cfg: EdgeConfig) -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let sig = |kind| signal(kind).map_err(|e| EdgeError::Config(format!("signal handler: {e}")));
    let mut term = sig(SignalKind::terminate())?;
    let mut int = sig(SignalKind::interrupt())?;
    let mut hup = sig(SignalKind::hangup())?;
    let server = Server::bind(cfg).await?;
    let addr = server.local_addr()?;
    tracing::info!(%addr, https = ?server.tls_addr(), admin = ?server.admin_addr(), "serving");
    let handle = server.handle();
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            let cfg = match opts.load() {
                Ok(c) => Some(c),
                Err(e) => {
                    tracing::error!(error = %e, "SIGHUP: configuration not reloaded");
                    None
                }
            };
            match handle.reload(cfg).await {
                Ok(n) => tracing::info!(sites = n, "SIGHUP: reloaded"),
                Err(e) => tracing::error!(error = %e, "SIGHUP: reload failed"),
            }
        }
    });
    server
        .run_until(async move {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM: draining"),
                _ = int.recv() => tracing::info!("SIGINT: draining"),
            }
        })
        .await
}

//! qpage-dev: `qpage dev SITE`, the site owner's preview. Builds the site once
//! ([`qpage_generator::incremental::Session`]), serves it with the edge's own request
//! handler ([`qpage_edge::dev`]), watches the site folder ([`watch`]) and on every
//! change rebuilds only what depends on the changed files, pushes the changed output
//! files to the server and tells the browser to reload (or to swap a stylesheet, or to
//! show the build errors over the page). A bad edit never stops the server.

pub mod watch;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use qpage_edge::dev::{DevError, DevHandle, DevServer};
use qpage_generator::incremental::{Mode, Session, Update};
use qpage_generator::{BuildOptions, Diagnostic};

/// The port tried first when none is given.
pub const DEFAULT_PORT: u16 = 4000;

/// What `qpage dev` was asked to do.
#[derive(Debug, Clone)]
pub struct DevOptions {
    /// The site folder.
    pub site_dir: PathBuf,
    /// Where the preview build is written (default `SITE/.qpage-cache/dev`).
    pub output: Option<PathBuf>,
    /// The port; `None` tries [`DEFAULT_PORT`], then any free port.
    pub port: Option<u16>,
    /// The address to listen on (default: loopback).
    pub bind: IpAddr,
    /// Include drafts.
    pub drafts: bool,
    /// Include pages dated in the future.
    pub future: bool,
    /// How long the folder must be quiet before a batch of changes is rebuilt.
    pub debounce: Duration,
}

impl DevOptions {
    /// Options for a site with the defaults.
    pub fn new(site_dir: impl Into<PathBuf>) -> DevOptions {
        DevOptions {
            site_dir: site_dir.into(),
            output: None,
            port: None,
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            drafts: false,
            future: false,
            debounce: Duration::from_millis(10),
        }
    }
}

/// Why `qpage dev` could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The folder is not a site.
    #[error("{0} has no site.toml: give the folder of a site (see `qpage new`)")]
    NotASite(PathBuf),
    /// The port could not be bound.
    #[error("cannot listen on {addr}: {source} (pick another with --port)")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The server could not be set up.
    #[error("dev server: {0}")]
    Edge(#[from] qpage_edge::EdgeError),
    /// The folder cannot be watched.
    #[error("cannot watch {path}: {source}")]
    Watch {
        /// The folder.
        path: PathBuf,
        /// Why.
        source: notify::Error,
    },
    /// Something else.
    #[error("{0}")]
    Other(String),
}

/// A running dev server. Dropping it does not stop it: call [`Running::stop`].
pub struct Running {
    addr: SocketAddr,
    output: PathBuf,
    stop: Arc<AtomicBool>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<std::thread::JoinHandle<()>>,
    watcher: Option<std::thread::JoinHandle<()>>,
    _scratch: tempfile::TempDir,
}

impl Running {
    /// The address the site is served on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The site's URL.
    pub fn url(&self) -> String {
        match self.addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => {
                format!("http://127.0.0.1:{}/", self.addr.port())
            }
            IpAddr::V6(ip) if ip.is_unspecified() => format!("http://[::1]:{}/", self.addr.port()),
            IpAddr::V6(ip) => format!("http://[{ip}]:{}/", self.addr.port()),
            IpAddr::V4(ip) => format!("http://{ip}:{}/", self.addr.port()),
        }
    }

    /// Where the preview build is written.
    pub fn output(&self) -> &std::path::Path {
        &self.output
    }

    /// Stops watching and serving, and waits for both.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.watcher.take() {
            let _ = t.join();
        }
        if let Some(t) = self.server.take() {
            let _ = t.join();
        }
    }

    /// Blocks until the server stops (it does not stop by itself: for the CLI, which
    /// ends on Ctrl-C).
    pub fn wait(mut self) {
        if let Some(t) = self.server.take() {
            let _ = t.join();
        }
    }
}

/// Builds the site, starts serving and watching. The first build may fail: the server
/// still starts and shows the errors.
pub fn start(opts: DevOptions) -> Result<Running, StartError> {
    if !opts.site_dir.join("site.toml").is_file() {
        return Err(StartError::NotASite(opts.site_dir.clone()));
    }
    let site_dir = opts
        .site_dir
        .canonicalize()
        .map_err(|e| StartError::Other(format!("{}: {e}", opts.site_dir.display())))?;
    let output = opts
        .output
        .clone()
        .unwrap_or_else(|| site_dir.join(".qpage-cache").join("dev"));
    let build = BuildOptions {
        site_dir: site_dir.clone(),
        output: Some(output.clone()),
        drafts: opts.drafts,
        future: opts.future,
        dev: true,
        ..BuildOptions::default()
    };
    let scratch = tempfile::Builder::new()
        .prefix("qpage-dev-")
        .tempdir()
        .map_err(|e| StartError::Other(format!("cannot make a scratch folder: {e}")))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| StartError::Other(format!("cannot start the runtime: {e}")))?;
    let server = runtime.block_on(bind(&opts, scratch.path()))?;
    let addr = server.local_addr()?;
    let (mut session, first) =
        Session::start(build).map_err(|e| StartError::Other(e.to_string()))?;
    report(&first);
    session.defer_manifest(true);

    let handle = server.handle();
    serve_all(&session, &handle)?;
    handle.set_errors(dev_errors(&first.errors));

    let (shutdown_tx, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
    let server_thread = std::thread::Builder::new()
        .name("qpage-dev-server".into())
        .spawn(move || {
            let result = runtime.block_on(server.run_until(async {
                tokio::select! {
                    _ = shutdown_rx => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }));
            if let Err(e) = result {
                tracing::error!(error = %e, "dev server stopped");
            }
        })
        .map_err(|e| StartError::Other(format!("cannot start the server thread: {e}")))?;

    let ignore = vec![
        output.clone(),
        site_dir.join(".qpage-cache"),
        site_dir.join("dist"),
        site_dir.join(".git"),
    ];
    let watcher = watch::SiteWatcher::new(&site_dir, ignore, opts.debounce).map_err(|source| {
        StartError::Watch {
            path: site_dir.clone(),
            source,
        }
    })?;
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let watcher_thread = std::thread::Builder::new()
        .name("qpage-dev-watch".into())
        .spawn(move || {
            while !stop2.load(Ordering::SeqCst) {
                let Some(batch) = watcher.next_batch(Duration::from_millis(200)) else {
                    // Quiet for a while: the manifest (not served, and the largest
                    // file an update rewrites) catches up on disk.
                    session.flush();
                    continue;
                };
                rebuild(&mut session, &handle, &batch);
            }
            session.flush();
        })
        .map_err(|e| StartError::Other(format!("cannot start the watcher thread: {e}")))?;

    Ok(Running {
        addr,
        output,
        stop,
        shutdown: Some(shutdown_tx),
        server: Some(server_thread),
        watcher: Some(watcher_thread),
        _scratch: scratch,
    })
}

/// Binds the requested port, or the default one, or any free one.
async fn bind(opts: &DevOptions, scratch: &std::path::Path) -> Result<DevServer, StartError> {
    let try_bind = |port: u16| {
        let addr = SocketAddr::new(opts.bind, port);
        async move {
            DevServer::bind(addr, scratch).await.map_err(|e| match e {
                qpage_edge::EdgeError::Listen { source, .. } => StartError::Bind { addr, source },
                other => StartError::Edge(other),
            })
        }
    };
    match opts.port {
        Some(p) => try_bind(p).await,
        None => match try_bind(DEFAULT_PORT).await {
            Ok(s) => Ok(s),
            Err(StartError::Bind { addr, source }) => {
                tracing::info!(%addr, error = %source, "default port taken; picking a free one");
                try_bind(0).await
            }
            Err(e) => Err(e),
        },
    }
}

/// One batch of changes: rebuild, push the changed files, tell the browsers.
fn rebuild(session: &mut Session, handle: &DevHandle, batch: &[PathBuf]) {
    let start = std::time::Instant::now();
    let update = session.update(batch);
    if update.mode == Mode::Nothing {
        return;
    }
    report(&update);
    let t = std::time::Instant::now();
    let served = if matches!(update.mode, Mode::Full(_)) {
        serve_all(session, handle)
    } else {
        handle.update(&update.changed)
    };
    if let Err(e) = served {
        tracing::error!(error = %e, "cannot serve the new files");
        return;
    }
    tracing::debug!(
        took = ?t.elapsed(),
        since_batch = ?start.elapsed(),
        "served the new files"
    );
    handle.set_errors(dev_errors(&update.errors));
    if update.changed.is_empty() {
        return;
    }
    if update.css_only {
        let paths: Vec<String> = update
            .changed
            .iter()
            .map(|(p, _)| format!("/{p}"))
            .collect();
        handle.swap_css(&paths);
    } else {
        handle.reload();
    }
}

/// Serves every file of the session's last good build; with none (the site has not
/// built yet), a page that shows the errors.
fn serve_all(session: &Session, handle: &DevHandle) -> Result<(), qpage_edge::EdgeError> {
    let mut all: Vec<(String, Option<Arc<[u8]>>)> = session
        .files()
        .map(|(p, b)| (p.to_string(), Some(b.clone())))
        .collect();
    if all.is_empty() {
        let page: Arc<[u8]> = Arc::from(
            &b"<!doctype html><html><head><meta charset=\"utf-8\"><title>qpage dev</title></head><body><p>The site does not build yet.</p></body></html>\n"[..],
        );
        all.push(("index.html".into(), Some(page.clone())));
        all.push(("404.html".into(), Some(page)));
    }
    handle.replace_all(&all)
}

/// The terminal's account of an update: what was rebuilt and how, and every error.
fn report(u: &Update) {
    let ms = u.took.as_secs_f64() * 1000.0;
    let files = u.changed.len();
    match &u.mode {
        Mode::Nothing => {}
        Mode::Incremental => {
            tracing::info!(
                "rebuilt {} pages, {files} files changed, in {ms:.1} ms",
                u.rendered
            )
        }
        Mode::Rerender(why) => tracing::info!(
            "re-rendered all {} pages ({why}), {files} files changed, in {ms:.1} ms",
            u.rendered
        ),
        Mode::Full(why) => tracing::info!(
            "full rebuild ({why}): {} pages, {files} files changed, in {ms:.1} ms",
            u.rendered
        ),
    }
    for d in &u.errors {
        tracing::error!("{d}");
    }
    if !u.errors.is_empty() {
        tracing::error!(
            "{} error{}: the last good version of the affected pages is served; fix and save",
            u.errors.len(),
            if u.errors.len() == 1 { "" } else { "s" }
        );
    }
}

fn dev_errors(diags: &[Diagnostic]) -> Vec<DevError> {
    diags
        .iter()
        .map(|d| DevError {
            file: d.file.display().to_string(),
            line: d.line,
            column: d.column,
            message: d.message.clone(),
            help: d.help.clone(),
        })
        .collect()
}

/// Opens `url` in the desktop's browser.
pub fn open_browser(url: &str) -> std::io::Result<()> {
    let mut cmd = if cfg!(target_os = "macos") {
        std::process::Command::new("open")
    } else if cfg!(windows) {
        let mut c = std::process::Command::new("cmd");
        c.args(["/C", "start", ""]);
        c
    } else {
        std::process::Command::new("xdg-open")
    };
    cmd.arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map(|_| ())
}

//! `qpage publish DIST --edge URL --site NAME`: argument parsing and the progress bar;
//! the work is `qpage_edge::client::publish`.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use qpage_edge::client::{Progress, PublishOptions, publish_blocking};

/// Arguments of `qpage publish`.
#[derive(Debug, Args)]
pub struct PublishArgs {
    /// The built site directory.
    pub dist: PathBuf,
    /// The edge's admin listener, e.g. http://127.0.0.1:9090.
    #[arg(long)]
    pub edge: String,
    /// Site name on the edge.
    #[arg(long)]
    pub site: String,
    /// File holding the API token (otherwise the QPAGE_TOKEN environment variable).
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Parallel uploads.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Go live at this time (seconds since the Unix epoch) instead of now.
    #[arg(long, value_name = "UNIX_SECONDS", conflicts_with = "no_activate")]
    pub activate_at: Option<u64>,
    /// Upload and finalize, but do not go live (activate later).
    #[arg(long)]
    pub no_activate: bool,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Runs `qpage publish`.
pub fn run(args: PublishArgs) -> anyhow::Result<()> {
    let token = match &args.token_file {
        Some(p) => std::fs::read_to_string(p)
            .with_context(|| format!("reading the token file {}", p.display()))?
            .trim()
            .to_string(),
        None => std::env::var("QPAGE_TOKEN")
            .map(|t| t.trim().to_string())
            .unwrap_or_default(),
    };
    if token.is_empty() {
        anyhow::bail!("no API token: set QPAGE_TOKEN or pass --token-file FILE");
    }
    let mut opts = PublishOptions::new(&args.edge, &args.site, &token);
    opts.concurrency = args.concurrency.max(1);
    opts.activate_at = args.activate_at;
    opts.activate = !args.no_activate;
    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(0)
    };
    bar.set_style(
        ProgressStyle::with_template("{msg:12} {bar:40} {bytes}/{total_bytes} {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let b2 = bar.clone();
    let progress = Arc::new(move |p: Progress| match p {
        Progress::Hashed(n, total) => {
            b2.set_message("hashing");
            b2.set_length(total);
            b2.set_position(n);
        }
        Progress::Uploading { bytes, .. } => {
            b2.set_message("uploading");
            b2.set_length(bytes);
            b2.set_position(0);
        }
        Progress::Uploaded(n) => b2.inc(n),
        Progress::Retry(what, attempt) => {
            b2.suspend(|| eprintln!("retrying {what} (attempt {attempt})"));
        }
        Progress::Finalizing => b2.set_message("finalizing"),
    });
    let report = publish_blocking(&args.dist, &opts, progress)
        .with_context(|| format!("publishing {}", args.dist.display()))?;
    bar.finish_and_clear();
    println!(
        "deploy {} of site {}: {} files, uploaded {} blobs ({} bytes), sent {} bytes in {:.2?}",
        report.deploy,
        args.site,
        report.files,
        report.blobs_uploaded,
        report.blob_bytes,
        report.bytes_sent,
        report.elapsed
    );
    match (report.live, report.activate_at) {
        (true, _) => println!(
            "live: {}",
            report.url.as_deref().unwrap_or("(the site has no host)")
        ),
        (false, Some(at)) => println!("scheduled to go live at {at} (Unix time)"),
        (false, None) => println!(
            "not live yet: POST /v1/sites/{}/deploys/{}/activate",
            args.site, report.deploy
        ),
    }
    Ok(())
}

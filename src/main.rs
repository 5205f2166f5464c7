//! The `qpage` command line: parses arguments and calls the libraries. No logic lives here.

mod check_cmd;
mod dev_cmd;
mod edge_cmd;
mod ingest_cmd;
mod publish_cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use qpage_generator::{BuildError, BuildOptions, BuildReport};

#[derive(Debug, Parser)]
#[command(
    name = "qpage",
    version,
    about = "Static-site generator and multi-tenant edge server"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Build a site (or every site under a folder with --sites).
    Build {
        /// The site folder (holding site.toml).
        #[arg(default_value = ".", conflicts_with_all = ["sites", "bundle"])]
        site: PathBuf,
        /// Where to write the site (default: SITE/dist).
        #[arg(short, long, conflicts_with = "sites")]
        output: Option<PathBuf>,
        /// Build every site folder under DIR, each into its own dist/.
        #[arg(long, value_name = "DIR", conflicts_with = "bundle")]
        sites: Option<PathBuf>,
        /// Build straight from an AI content bundle (JSON) into --output (default: dist).
        #[arg(long, value_name = "BUNDLE.json")]
        bundle: Option<PathBuf>,
        /// Include draft pages.
        #[arg(long)]
        drafts: bool,
        /// Include pages dated in the future.
        #[arg(long)]
        future: bool,
    },
    /// Preview a site: build, serve on localhost, rebuild and reload on every change.
    Dev(dev_cmd::DevArgs),
    /// Create a new site folder that builds.
    New {
        /// Folder to create.
        name: PathBuf,
    },
    /// Audit a built site for SEO problems.
    Check(check_cmd::CheckArgs),
    /// Write an AI content bundle (JSON) into a site folder.
    Ingest(ingest_cmd::IngestArgs),
    /// Serve many sites from one node.
    #[command(subcommand)]
    Edge(edge_cmd::EdgeCmd),
    /// Publish a built site to an edge node over its publish API.
    Publish(publish_cmd::PublishArgs),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    match run(cli.cmd) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cmd: Cmd) -> anyhow::Result<ExitCode> {
    match cmd {
        Cmd::Build {
            site,
            output,
            sites,
            bundle,
            drafts,
            future,
        } => {
            if let Some(bundle) = bundle {
                let out = output.unwrap_or_else(|| PathBuf::from("dist"));
                let opts = BuildOptions {
                    drafts,
                    future,
                    ..Default::default()
                };
                return match qpage_generator::bundle::build_bundle_with(&bundle, &out, &opts) {
                    Ok(b) => {
                        print_report(&b.build);
                        Ok(ExitCode::SUCCESS)
                    }
                    Err(e) => {
                        eprintln!("{e}");
                        Ok(ExitCode::FAILURE)
                    }
                };
            }
            let opts = BuildOptions {
                site_dir: site,
                output,
                drafts,
                future,
                ..Default::default()
            };
            match sites {
                Some(dir) => build_many(&dir, &opts),
                None => Ok(build_one(&opts)),
            }
        }
        Cmd::New { name } => {
            qpage_generator::new_site(&name).map_err(|d| anyhow::anyhow!("{d}"))?;
            println!("created {0}\n  build it:  qpage build {0}", name.display());
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Dev(args) => dev_cmd::run(args),
        Cmd::Check(args) => check_cmd::run(args),
        Cmd::Ingest(args) => ingest_cmd::run(args),
        Cmd::Edge(cmd) => edge_cmd::run(cmd).map(|()| ExitCode::SUCCESS),
        Cmd::Publish(args) => publish_cmd::run(args).map(|()| ExitCode::SUCCESS),
    }
}

fn build_one(opts: &BuildOptions) -> ExitCode {
    match qpage_generator::build(opts) {
        Ok(report) => {
            print_report(&report);
            ExitCode::SUCCESS
        }
        Err(e) => {
            print_errors(&opts.site_dir, &e);
            ExitCode::FAILURE
        }
    }
}

fn print_report(r: &BuildReport) {
    for w in &r.warnings {
        eprintln!("warning: {w}");
    }
    if r.sanitized > 0 {
        eprintln!(
            "note: removed {} unsafe piece(s) of raw HTML from content (set unsafe_html = true to keep raw HTML)",
            r.sanitized
        );
    }
    let phases: Vec<String> = r
        .timings
        .iter()
        .map(|(name, d)| format!("{name} {:.0?}", d))
        .collect();
    println!(
        "built {} pages, {} sections, {} records -> {} files ({} KiB) in {} in {:.0?} ({})",
        r.pages,
        r.sections,
        r.records,
        r.files,
        r.bytes / 1024,
        r.output.display(),
        r.total(),
        phases.join(", ")
    );
}

/// Prints every error with its path as seen from the current folder, so it can be
/// opened directly.
fn print_errors(site: &std::path::Path, e: &BuildError) {
    for d in &e.diagnostics {
        let mut d = d.clone();
        if d.file.is_relative() && site != std::path::Path::new(".") {
            d.file = site.join(&d.file);
        }
        eprintln!("error: {d}");
    }
    let n = e.diagnostics.len();
    eprintln!(
        "{}: build failed with {n} error{}; nothing was written",
        site.display(),
        if n == 1 { "" } else { "s" }
    );
}

fn build_many(dir: &std::path::Path, opts: &BuildOptions) -> anyhow::Result<ExitCode> {
    let total = qpage_generator::multi::find_sites(dir)
        .map_err(|d| anyhow::anyhow!("{d}"))?
        .len() as u64;
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} sites {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let outcomes = qpage_generator::build_sites(dir, opts, &|o| {
        if let Err(e) = &o.result {
            bar.suspend(|| print_errors(&o.site_dir, e));
        }
        bar.inc(1);
    })
    .map_err(|d| anyhow::anyhow!("{d}"))?;
    bar.finish_and_clear();
    let failed: Vec<_> = outcomes.iter().filter(|o| o.result.is_err()).collect();
    let pages: usize = outcomes
        .iter()
        .filter_map(|o| o.result.as_ref().ok())
        .map(|r| r.pages + r.records)
        .sum();
    println!(
        "built {} of {} sites ({} pages); {} failed",
        outcomes.len() - failed.len(),
        outcomes.len(),
        pages,
        failed.len()
    );
    for f in &failed {
        println!("  failed: {}", f.site_dir.display());
    }
    Ok(if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

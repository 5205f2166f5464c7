//! `qpage ingest BUNDLE.json --site DIR`: argument parsing; the logic lives in
//! qpage-generator's `bundle` module.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use qpage_generator::bundle::{self, BundleError, IngestOptions};

/// Arguments of `qpage ingest`.
#[derive(Debug, Args)]
pub struct IngestArgs {
    /// The AI content bundle (JSON, see docs/bundle.schema.json).
    pub bundle: PathBuf,
    /// The site folder to write.
    #[arg(long)]
    pub site: PathBuf,
    /// Replace site.toml, content/ and data/ of a site folder that is not empty
    /// (static/ and templates/ are kept).
    #[arg(long)]
    pub force: bool,
}

/// Runs the ingest: prints what was written, or every error (one per line,
/// `BUNDLE.json: /pages/3/slug: message`) and exits non-zero.
pub fn run(args: IngestArgs) -> anyhow::Result<ExitCode> {
    let opts = IngestOptions {
        force: args.force,
        ..Default::default()
    };
    let name = args.bundle.display().to_string();
    match bundle::ingest(&args.bundle, &args.site, &opts) {
        Ok(report) => {
            for w in &report.warnings {
                eprintln!("warning: {name}: {w}");
            }
            for f in &report.files {
                println!("  {}", report.site_dir.join(&f.path).display());
            }
            println!(
                "{} {}: {} pages, {} products, {} reviews{}, {} files",
                if report.replaced {
                    "replaced the content of"
                } else {
                    "wrote"
                },
                report.site_dir.display(),
                report.pages,
                report.products,
                report.reviews,
                if report.business { ", business" } else { "" },
                report.files.len()
            );
            println!("  build it:  qpage build {}", report.site_dir.display());
            Ok(ExitCode::SUCCESS)
        }
        Err(e @ (BundleError::Invalid { .. } | BundleError::Build { .. })) => {
            for line in e.lines() {
                eprintln!("{line}");
            }
            let n = e.problems().len();
            eprintln!(
                "{n} error{} in {name}; nothing was written",
                if n == 1 { "" } else { "s" }
            );
            Ok(ExitCode::FAILURE)
        }
        Err(e) => {
            eprintln!("error: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

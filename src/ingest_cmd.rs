//! `qpage ingest BUNDLE.json --site DIR`: argument parsing; the logic lives in
//! qpage-generator's `bundle` module.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

/// Arguments of `qpage ingest`.
#[derive(Debug, Args)]
pub struct IngestArgs {
    /// The AI content bundle (JSON).
    pub bundle: PathBuf,
    /// The site folder to write.
    #[arg(long)]
    pub site: PathBuf,
}

/// Runs the ingest.
pub fn run(args: IngestArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("qpage ingest is not built yet ({})", args.bundle.display())
}

//! `qpage check SITE`: argument parsing for the SEO audit; the logic lives in
//! qpage-generator's `check` module.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

/// Arguments of `qpage check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The site folder (holding site.toml); its built dist/ is audited.
    #[arg(default_value = ".")]
    pub site: PathBuf,
}

/// Runs the audit.
pub fn run(args: CheckArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("qpage check is not built yet (site {})", args.site.display())
}

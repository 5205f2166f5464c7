//! `qpage check SITE`: argument parsing for the SEO audit; the logic lives in
//! qpage-generator's `check` module.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use qpage_generator::check::{self, CheckError, CheckOptions};

/// Arguments of `qpage check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The site folder (holding site.toml); its built dist/ is audited.
    #[arg(default_value = ".")]
    pub site: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Build the site first (it is built anyway when dist/ is missing).
    #[arg(long)]
    pub build: bool,
    /// Audit this built folder instead of SITE/dist (a build writes there).
    #[arg(long, value_name = "DIR")]
    pub dist: Option<PathBuf>,
}

/// How findings are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One line per finding, then a summary.
    Text,
    /// One JSON document.
    Json,
}

/// Runs the audit; exits 1 when there are errors.
pub fn run(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let opts = CheckOptions {
        build: args.build,
        dist: args.dist,
    };
    let report = match check::audit(&args.site, &opts) {
        Ok(r) => r,
        Err(e) => {
            for mut d in e.diagnostics() {
                if d.file.is_relative() && args.site != std::path::Path::new(".") {
                    d.file = args.site.join(&d.file);
                }
                eprintln!("error: {d}");
            }
            if let CheckError::Build(_) = e {
                eprintln!("{}: build failed; nothing to check", args.site.display());
            }
            return Ok(ExitCode::FAILURE);
        }
    };
    match args.format {
        Format::Json => println!("{}", report.to_json()),
        Format::Text => {
            for f in &report.findings {
                println!("{f}");
            }
            println!("{}", report.summary());
        }
    }
    Ok(if report.errors() > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

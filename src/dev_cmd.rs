//! `qpage dev`: arguments for the preview server; the work is in the qpage-dev crate.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

/// Arguments of `qpage dev`.
#[derive(Debug, Args)]
pub struct DevArgs {
    /// The site folder (holding site.toml).
    #[arg(default_value = ".")]
    site: PathBuf,
    /// Port to listen on (default: 4000, or a free port when 4000 is taken).
    #[arg(short, long)]
    port: Option<u16>,
    /// Address to listen on; the default keeps the preview on this machine.
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,
    /// Open the site in the browser once it is served.
    #[arg(long)]
    open: bool,
    /// Include draft pages.
    #[arg(long)]
    drafts: bool,
    /// Include pages dated in the future.
    #[arg(long)]
    future: bool,
    /// Where to write the preview build (default: SITE/.qpage-cache/dev).
    #[arg(short, long)]
    output: Option<PathBuf>,
}

pub fn run(args: DevArgs) -> anyhow::Result<ExitCode> {
    let mut opts = qpage_dev::DevOptions::new(&args.site);
    opts.port = args.port;
    opts.bind = args.bind;
    opts.drafts = args.drafts;
    opts.future = args.future;
    opts.output = args.output;
    let running = qpage_dev::start(opts)?;
    let url = running.url();
    eprintln!("serving {} at {url} (Ctrl-C to stop)", args.site.display());
    if args.open
        && let Err(e) = qpage_dev::open_browser(&url)
    {
        eprintln!("warning: cannot open a browser ({e}); open {url} yourself");
    }
    running.wait();
    Ok(ExitCode::SUCCESS)
}

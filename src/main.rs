//! The `qpage` command line: parses arguments and calls the libraries. No logic lives here.

mod edge_cmd;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "qpage", version, about = "Static-site generator and multi-tenant edge server")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Serve many sites from one node.
    #[command(subcommand)]
    Edge(edge_cmd::EdgeCmd),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Edge(cmd) => edge_cmd::run(cmd),
    }
}

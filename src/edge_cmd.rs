//! `qpage edge ...`: argument parsing for the edge server; the logic lives in qpage-edge.

use clap::Subcommand;

/// Edge subcommands.
#[derive(Debug, Subcommand)]
pub enum EdgeCmd {}

/// Runs one edge subcommand.
pub fn run(cmd: EdgeCmd) -> anyhow::Result<()> {
    match cmd {}
}

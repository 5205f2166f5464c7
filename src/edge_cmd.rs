//! `qpage edge ...`: argument parsing for the edge server; the logic lives in qpage-edge.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Subcommand, ValueEnum};
use qpage_edge::{ServeOptions, SiteConfig, Store, WwwPolicy};

/// Edge subcommands.
#[derive(Debug, Subcommand)]
pub enum EdgeCmd {
    /// Import a built site (dist/) as a site's new live deploy, creating the site if needed.
    AddSite {
        /// Site name: lowercase letters, digits and single hyphens.
        name: String,
        /// Host that serves the site (repeatable).
        #[arg(long = "host", required = true)]
        hosts: Vec<String>,
        /// Another host that serves the same site, e.g. www.example.com (repeatable).
        #[arg(long = "alias")]
        aliases: Vec<String>,
        /// www/apex redirect policy.
        #[arg(long, value_enum, default_value = "apex")]
        www: Www,
        /// Data directory of the edge node.
        #[arg(long, default_value = "./qpage-data", env = "QPAGE_DATA")]
        data: PathBuf,
        /// The built site directory.
        dist: PathBuf,
    },
    /// Serve the sites of a data directory.
    Serve {
        /// Data directory (overrides the config file).
        #[arg(long)]
        data: Option<PathBuf>,
        /// Public listen address, e.g. 127.0.0.1:8080 (overrides the config file).
        #[arg(long)]
        listen: Option<String>,
        /// Admin listen address for /healthz and /metrics; "" disables it.
        #[arg(long)]
        admin: Option<String>,
        /// Configuration file (edge.toml).
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

/// The www/apex policy on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Www {
    /// www.HOST redirects to HOST.
    Apex,
    /// HOST redirects to www.HOST.
    Www,
    /// No redirect.
    Off,
}

/// Runs one edge subcommand.
pub fn run(cmd: EdgeCmd) -> anyhow::Result<()> {
    match cmd {
        EdgeCmd::AddSite {
            name,
            hosts,
            aliases,
            www,
            data,
            dist,
        } => {
            let store = Store::open(&data)?;
            let www = match www {
                Www::Apex => WwwPolicy::Apex,
                Www::Www => WwwPolicy::Www,
                Www::Off => WwwPolicy::Off,
            };
            store.put_site(
                &name,
                &SiteConfig {
                    hosts,
                    aliases,
                    www,
                },
            )?;
            let id = store
                .import_dir(&name, &dist)
                .with_context(|| format!("importing {}", dist.display()))?;
            store.activate(&name, &id)?;
            println!("site {name}: deploy {id} is live");
            Ok(())
        }
        EdgeCmd::Serve {
            data,
            listen,
            admin,
            config,
        } => {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env()
                        .unwrap_or_else(|_| "info".into()),
                )
                .try_init();
            qpage_edge::serve_blocking(ServeOptions {
                config,
                data_dir: data,
                listen,
                admin,
            })?;
            Ok(())
        }
    }
}

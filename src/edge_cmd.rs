//! `qpage edge ...`: argument parsing for the edge server; the logic lives in qpage-edge.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Subcommand, ValueEnum};
use qpage_edge::{DeployId, ServeOptions, SiteConfig, Store, WwwPolicy};

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
        www: WwwArg,
        /// Send HSTS with this max-age (seconds) on HTTPS; 0 turns it off. Unset keeps
        /// the site's current setting.
        #[arg(long)]
        hsts_max_age: Option<u64>,
        /// Serve plain HTTP instead of redirecting it to HTTPS (when the node has TLS on).
        #[arg(long)]
        allow_http: bool,
        /// Data directory of the edge node.
        #[arg(long, default_value = "./qpage-data", env = "QPAGE_DATA")]
        data: PathBuf,
        /// The built site directory.
        dist: PathBuf,
    },
    /// Make one of a site's deploys live (to roll back, or forward).
    Activate {
        /// Site name.
        name: String,
        /// Deploy id, as `qpage edge deploys NAME` lists them.
        deploy: String,
        /// Data directory of the edge node.
        #[arg(long, default_value = "./qpage-data", env = "QPAGE_DATA")]
        data: PathBuf,
    },
    /// List a site's deploys, oldest first; `*` marks the live one.
    Deploys {
        /// Site name.
        name: String,
        /// Data directory of the edge node.
        #[arg(long, default_value = "./qpage-data", env = "QPAGE_DATA")]
        data: PathBuf,
    },
    /// List the sites of a data directory with their hosts and live deploy.
    Sites {
        /// Data directory of the edge node.
        #[arg(long, default_value = "./qpage-data", env = "QPAGE_DATA")]
        data: PathBuf,
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
pub enum WwwArg {
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
            hsts_max_age,
            allow_http,
            data,
            dist,
        } => {
            let store = Store::open(&data)?;
            // Re-adding a site keeps its HTTPS settings unless the flags change them.
            let mut https = store
                .site_config(&name)
                .map(|c| c.https)
                .unwrap_or_default();
            if let Some(age) = hsts_max_age {
                https.hsts_max_age = age;
            }
            https.allow_http = allow_http;
            let www = match www {
                WwwArg::Apex => WwwPolicy::Apex,
                WwwArg::Www => WwwPolicy::Www,
                WwwArg::Off => WwwPolicy::Off,
            };
            store.put_site(
                &name,
                &SiteConfig {
                    hosts,
                    aliases,
                    www,
                    https,
                },
            )?;
            let id = store
                .import_dir(&name, &dist)
                .with_context(|| format!("importing {}", dist.display()))?;
            store.activate(&name, &id)?;
            println!("site {name}: deploy {id} is live");
            Ok(())
        }
        EdgeCmd::Activate { name, deploy, data } => {
            let store = Store::open(&data)?;
            let id = DeployId::parse(&deploy)
                .with_context(|| format!("{deploy:?} is not a deploy id (16 hex digits)"))?;
            store.activate(&name, &id)?;
            println!("site {name}: deploy {id} is live");
            Ok(())
        }
        EdgeCmd::Deploys { name, data } => {
            let store = Store::open(&data)?;
            let live = store.live(&name)?;
            for (id, created) in store.deploys(&name)? {
                let mark = if live.as_ref() == Some(&id) { "*" } else { " " };
                println!("{mark} {id}  imported {created}");
            }
            Ok(())
        }
        EdgeCmd::Sites { data } => {
            let store = Store::open(&data)?;
            for name in store.list_sites()? {
                let cfg = store.site_config(&name)?;
                let live = store
                    .live(&name)?
                    .map_or_else(|| "-".to_string(), |d| d.to_string());
                let mut hosts = cfg.hosts.clone();
                hosts.extend(cfg.aliases.iter().cloned());
                println!("{name}\t{live}\t{}", hosts.join(" "));
            }
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

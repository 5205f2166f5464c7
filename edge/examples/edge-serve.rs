//! The two `qpage edge` commands the benchmark needs, without the generator: builds in
//! a fraction of the time of the full `qpage` binary and runs the same library calls
//! (`Store::import_dir` + `Store::activate`, `serve_blocking`).
//!
//! ```text
//! edge-serve add-site NAME --host HOST --data DIR DIST
//! edge-serve serve --config edge.toml
//! ```

use std::path::PathBuf;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Err(e) = run(&args) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn run(args: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    match args.first().map(String::as_str) {
        Some("add-site") => {
            let name = args.get(1).ok_or("missing NAME")?;
            let host = flag(args, "--host").ok_or("missing --host")?;
            let data = flag(args, "--data").unwrap_or_else(|| "./qpage-data".into());
            let dist = args.last().ok_or("missing DIST")?;
            let store = qpage_edge::Store::open(&data)?;
            store.put_site(
                name,
                &qpage_edge::SiteConfig {
                    hosts: vec![host],
                    ..Default::default()
                },
            )?;
            let id = store.import_dir(name, std::path::Path::new(dist))?;
            store.activate(name, &id)?;
            println!("site {name}: deploy {id} is live");
            Ok(())
        }
        Some("serve") => {
            qpage_edge::serve_blocking(qpage_edge::ServeOptions {
                config: flag(args, "--config").map(PathBuf::from),
                ..Default::default()
            })?;
            Ok(())
        }
        _ => Err(
            "usage: edge-serve add-site NAME --host HOST --data DIR DIST | serve --config FILE"
                .into(),
        ),
    }
}

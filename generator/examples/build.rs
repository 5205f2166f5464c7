//! Builds one site with the library alone: `cargo run -p qpage-generator --example build -- SITE [OUT]`.

fn main() {
    let mut args = std::env::args().skip(1);
    let site_dir = args.next().unwrap_or_else(|| ".".into()).into();
    let output = args.next().map(Into::into);
    let opts = qpage_generator::BuildOptions {
        site_dir,
        output,
        ..Default::default()
    };
    match qpage_generator::build(&opts) {
        Ok(r) => println!(
            "{} pages, {} files in {:?}: {:?}",
            r.pages,
            r.files,
            r.total(),
            r.timings
        ),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
}

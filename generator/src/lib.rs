//! qpage-generator: turns a site folder (site.toml, content/, data/, static/, templates/)
//! into a complete static site in `dist/`, in parallel.
//!
//! The pipeline: [`config`] -> [`templates`] (theme + overrides, parsed once) ->
//! [`data`] and [`content`] (parsed in parallel; Markdown in [`markdown`], shortcodes in
//! [`shortcode`]) -> [`site`] (the immutable model) -> [`render`] (parallel) ->
//! [`output`] (atomic write + manifest). [`build`] runs it for one site, [`multi`] for many.

pub mod build;
pub mod bundle;
pub mod check;
pub mod config;
pub mod content;
pub mod data;
pub mod error;
pub mod feed;
pub mod finish;
pub mod frontmatter;
pub mod images;
pub mod imageset;
pub mod incremental;
pub mod markdown;
pub mod multi;
pub mod output;
pub mod render;
pub mod rewrite;
pub mod sanitize;
pub mod scaffold;
pub mod seo;
pub mod shortcode;
pub mod site;
pub mod sitemap;
pub mod templates;

pub use build::{BuildOptions, BuildReport, ThemeCache, build, build_with};
pub use error::{BuildError, Diagnostic};
pub use multi::{SiteOutcome, build_sites};
pub use scaffold::new_site;

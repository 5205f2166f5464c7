//! AI content bundles: one JSON document (site settings, pages, products, business,
//! reviews) that the orchestrator's AI pipeline produces, turned into a qpage site folder.
//!
//! The bundle's shape is `docs/bundle.schema.json` (draft 2020-12, embedded here as
//! [`SCHEMA`]), written so that it can be handed unchanged to an LLM as its
//! structured-output schema. [`ingest`] checks a bundle in three steps and writes nothing
//! unless all pass:
//!
//! 1. the schema: every error, each at the JSON pointer of the offending value
//!    (`/pages/3/slug`), saying what is wrong and what is expected;
//! 2. meaning: slugs normalised with the `slug` crate, two records with the same URL,
//!    real calendar dates, references between records, images without alt text...;
//! 3. the site: files are composed in memory (front matter through the `toml`
//!    serializer and read back with qpage's own front-matter parser), written to a
//!    temporary folder and renamed into place.
//!
//! [`build_bundle`] ingests into a temporary site and builds it, for
//! `qpage build --bundle`.

mod model;
mod plan;
mod schema;
mod write;

use std::fmt;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use serde_json::Value;

use crate::build::{BuildOptions, BuildReport};

pub use schema::SCHEMA;

/// One problem found in a bundle, at a JSON pointer (RFC 6901) into it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where: `/pages/3/slug`; empty for the whole document.
    pub pointer: String,
    /// What is wrong and what is expected.
    pub message: String,
}

impl Problem {
    /// A problem at `pointer`.
    pub fn new(pointer: impl Into<String>, message: impl Into<String>) -> Self {
        Problem {
            pointer: pointer.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.pointer.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.pointer, self.message)
        }
    }
}

/// Where a bundle comes from.
#[derive(Debug, Clone)]
pub enum BundleInput {
    /// A JSON file.
    File(PathBuf),
    /// An already parsed document (named `bundle` in messages).
    Json(Value),
}

impl From<&Path> for BundleInput {
    fn from(p: &Path) -> Self {
        BundleInput::File(p.to_path_buf())
    }
}

impl From<PathBuf> for BundleInput {
    fn from(p: PathBuf) -> Self {
        BundleInput::File(p)
    }
}

impl From<&PathBuf> for BundleInput {
    fn from(p: &PathBuf) -> Self {
        BundleInput::File(p.clone())
    }
}

impl From<Value> for BundleInput {
    fn from(v: Value) -> Self {
        BundleInput::Json(v)
    }
}

impl BundleInput {
    /// How the bundle is named in messages: its path, or `bundle`.
    pub fn name(&self) -> String {
        match self {
            BundleInput::File(p) => p.display().to_string(),
            BundleInput::Json(_) => "bundle".into(),
        }
    }
}

/// How to ingest.
#[derive(Debug, Clone, Default)]
pub struct IngestOptions {
    /// Replace `site.toml`, `content/` and `data/` of a site folder that is not empty
    /// (anything else in it, such as `static/` and `templates/`, is kept).
    pub force: bool,
    /// The date that counts as today, for warnings about future dates (default: the
    /// system's).
    pub today: Option<NaiveDate>,
}

/// One file written by an ingest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenFile {
    /// Relative to the site folder, e.g. `content/blog/hello.md`.
    pub path: PathBuf,
    /// The JSON pointer of the bundle value it was made from (`/pages/0`, `/site`...).
    pub source: String,
}

/// A file composed in memory: where it goes and its bytes.
pub type ComposedFile = (WrittenFile, Vec<u8>);

/// What a successful ingest did.
#[derive(Debug, Clone)]
pub struct IngestReport {
    /// The site folder written.
    pub site_dir: PathBuf,
    /// Every file written, in path order.
    pub files: Vec<WrittenFile>,
    /// Content pages written (articles, pages, FAQ and review pages; not sections).
    pub pages: usize,
    /// Product records written.
    pub products: usize,
    /// Site-wide reviews written.
    pub reviews: usize,
    /// Whether a business record was written.
    pub business: bool,
    /// Whether an existing site's content was replaced (`force`).
    pub replaced: bool,
    /// Things that did not stop the ingest but deserve a look (normalised slugs,
    /// undated articles, future dates).
    pub warnings: Vec<Problem>,
}

impl IngestReport {
    /// The bundle value a site file was made from (`content/blog/x.md` -> `/pages/2`).
    pub fn source_of(&self, rel: &Path) -> Option<&str> {
        self.files
            .iter()
            .find(|f| f.path == rel)
            .map(|f| f.source.as_str())
    }
}

/// Why an ingest (or a bundle build) failed. Nothing was written in any case.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// The bundle is not valid JSON, does not match the schema, or makes no sense.
    #[error("{}", lines(bundle, problems))]
    Invalid {
        /// The bundle's name (its path).
        bundle: String,
        /// Every problem, each at its JSON pointer.
        problems: Vec<Problem>,
    },
    /// The site folder has files in it and `force` was not given.
    #[error(
        "{}: the folder is not empty; use --force to replace its site.toml, content/ and data/",
        site_dir.display()
    )]
    NotEmpty {
        /// The site folder.
        site_dir: PathBuf,
    },
    /// Reading the bundle or writing the site failed.
    #[error("{}: {message}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The ingested site did not build (`build_bundle`): every build error, located at
    /// the bundle value its file came from where known.
    #[error("{}", lines(bundle, problems))]
    Build {
        /// The bundle's name.
        bundle: String,
        /// The build's errors.
        problems: Vec<Problem>,
    },
}

fn lines(bundle: &str, problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("{bundle}: {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

impl BundleError {
    /// The problems, for `Invalid` and `Build`; empty otherwise.
    pub fn problems(&self) -> &[Problem] {
        match self {
            BundleError::Invalid { problems, .. } | BundleError::Build { problems, .. } => problems,
            _ => &[],
        }
    }

    /// One line per problem: `BUNDLE.json: /pages/3/slug: message`.
    pub fn lines(&self) -> Vec<String> {
        self.to_string().lines().map(String::from).collect()
    }

    fn io(path: &Path, e: impl fmt::Display) -> Self {
        BundleError::Io {
            path: path.to_path_buf(),
            message: e.to_string(),
        }
    }
}

/// Reads and checks a bundle (schema, then meaning) without writing anything: the
/// files that [`ingest`] would write, with the warnings.
pub fn check(
    input: impl Into<BundleInput>,
    opts: &IngestOptions,
) -> Result<(Vec<ComposedFile>, IngestReport), BundleError> {
    let input = input.into();
    let name = input.name();
    let value = match input {
        BundleInput::Json(v) => v,
        BundleInput::File(path) => {
            let text = std::fs::read_to_string(&path).map_err(|e| BundleError::io(&path, e))?;
            serde_json::from_str(&text).map_err(|e| BundleError::Invalid {
                bundle: name.clone(),
                problems: vec![Problem::new(
                    "",
                    format!(
                        "not valid JSON at line {}, column {}: {}",
                        e.line(),
                        e.column(),
                        strip_position(&e.to_string())
                    ),
                )],
            })?
        }
    };
    let invalid = |problems| BundleError::Invalid {
        bundle: name.clone(),
        problems,
    };
    let problems = schema::validate(&value);
    if !problems.is_empty() {
        return Err(invalid(problems));
    }
    let bundle: model::Bundle = serde_json::from_value(value.clone())
        .map_err(|e| invalid(vec![Problem::new("", e.to_string())]))?;
    let today = opts
        .today
        .unwrap_or_else(|| chrono::Local::now().date_naive());
    let plan = plan::plan(&value, &bundle, today).map_err(invalid)?;
    let report = IngestReport {
        site_dir: PathBuf::new(),
        files: plan.files.iter().map(|(f, _)| f.clone()).collect(),
        pages: plan.pages,
        products: plan.products,
        reviews: plan.reviews,
        business: plan.business,
        replaced: false,
        warnings: plan.warnings,
    };
    Ok((plan.files, report))
}

/// Validates `input` and writes it into `site_dir` as a qpage site: `site.toml`,
/// `content/` and `data/`. Nothing is written unless the bundle is valid; the site
/// appears (or its content is replaced, with `force`) by renames, so a failure leaves
/// no half-written site.
pub fn ingest(
    input: impl Into<BundleInput>,
    site_dir: &Path,
    opts: &IngestOptions,
) -> Result<IngestReport, BundleError> {
    let (files, mut report) = check(input, opts)?;
    report.replaced = write::write_site(site_dir, &files, opts.force)?;
    report.site_dir = site_dir.to_path_buf();
    Ok(report)
}

/// What [`build_bundle`] did.
#[derive(Debug, Clone)]
pub struct BundleBuild {
    /// The ingest (its `site_dir` was temporary and is gone).
    pub ingest: IngestReport,
    /// The build.
    pub build: BuildReport,
}

/// Ingests `bundle_path` into a temporary site folder and builds it into `output_dir`
/// with the default options (`qpage build --bundle`).
pub fn build_bundle(bundle_path: &Path, output_dir: &Path) -> Result<BundleBuild, BundleError> {
    build_bundle_with(bundle_path, output_dir, &BuildOptions::default())
}

/// [`build_bundle`] with build options (`site_dir` and `output` are ignored).
pub fn build_bundle_with(
    input: impl Into<BundleInput>,
    output_dir: &Path,
    opts: &BuildOptions,
) -> Result<BundleBuild, BundleError> {
    let input = input.into();
    let name = input.name();
    let tmp = tempfile::Builder::new()
        .prefix("qpage-bundle-")
        .tempdir()
        .map_err(|e| BundleError::io(&std::env::temp_dir(), e))?;
    let site_dir = tmp.path().join("site");
    let ingest_opts = IngestOptions {
        force: false,
        today: opts.today,
    };
    let report = ingest(input, &site_dir, &ingest_opts)?;
    let build_opts = BuildOptions {
        site_dir: site_dir.clone(),
        output: Some(output_dir.to_path_buf()),
        ..opts.clone()
    };
    match crate::build::build(&build_opts) {
        Ok(build) => Ok(BundleBuild {
            ingest: report,
            build,
        }),
        Err(e) => Err(BundleError::Build {
            bundle: name,
            problems: e
                .diagnostics
                .iter()
                .map(|d| build_problem(&report, &site_dir, d))
                .collect(),
        }),
    }
}

/// A build diagnostic about an ingested file, located at the bundle value the file came
/// from.
fn build_problem(report: &IngestReport, site_dir: &Path, d: &crate::Diagnostic) -> Problem {
    let rel = d.file.strip_prefix(site_dir).unwrap_or(&d.file);
    let mut at = rel.display().to_string();
    if let Some(line) = d.line {
        at.push_str(&format!(":{line}"));
        if let Some(col) = d.column {
            at.push_str(&format!(":{col}"));
        }
    }
    let mut message = format!("{} (in the generated {at})", d.message);
    if let Some(help) = &d.help {
        message.push_str(&format!("; {help}"));
    }
    Problem::new(report.source_of(rel).unwrap_or(""), message)
}

/// serde_json's message without its trailing " at line L column C".
fn strip_position(msg: &str) -> &str {
    msg.rfind(" at line ").map_or(msg, |i| &msg[..i])
}

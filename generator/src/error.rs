//! Diagnostics: every problem the generator finds, located at file:line:column with a
//! hint saying what to do, and the error type that carries all of them at once.

use std::fmt;
use std::path::{Path, PathBuf};

/// One problem found in a site, located as precisely as the source allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file the problem is in (relative to the site when possible).
    pub file: PathBuf,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column, when known.
    pub column: Option<usize>,
    /// What is wrong.
    pub message: String,
    /// What to do about it.
    pub help: Option<String>,
}

impl Diagnostic {
    /// A problem with a whole file (no line known).
    pub fn file(file: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Diagnostic {
            file: file.into(),
            line: None,
            column: None,
            message: message.into(),
            help: None,
        }
    }

    /// A problem at a line and column of a file.
    pub fn at(
        file: impl Into<PathBuf>,
        line: usize,
        column: usize,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            line: Some(line),
            column: Some(column),
            ..Diagnostic::file(file, message)
        }
    }

    /// Adds the advice shown under the message.
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// An I/O failure on a path.
    pub fn io(path: &Path, err: &std::io::Error) -> Self {
        Diagnostic::file(path, format!("cannot read or write: {err}"))
            .help("check that the file exists and that qpage may read or write it")
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(col) = self.column {
                write!(f, ":{col}")?;
            }
        }
        write!(f, ": {}", self.message)?;
        if let Some(help) = &self.help {
            write!(f, "\n  help: {help}")?;
        }
        Ok(())
    }
}

/// A build that could not complete: every error found, not just the first.
#[derive(Debug, thiserror::Error)]
pub struct BuildError {
    /// The errors, in file order.
    pub diagnostics: Vec<Diagnostic>,
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.diagnostics {
            writeln!(f, "error: {d}")?;
        }
        let n = self.diagnostics.len();
        write!(
            f,
            "build failed with {n} error{}; nothing was written",
            if n == 1 { "" } else { "s" }
        )
    }
}

impl BuildError {
    /// Wraps a list of diagnostics, sorted for stable output.
    pub fn new(mut diagnostics: Vec<Diagnostic>) -> Self {
        diagnostics.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
        diagnostics.dedup();
        BuildError { diagnostics }
    }

    /// One diagnostic as an error.
    pub fn one(d: Diagnostic) -> Self {
        BuildError::new(vec![d])
    }
}

/// Converts a byte offset in `text` to a 1-based (line, column).
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..floor_char_boundary(text, offset)];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
        assert_eq!(line_col("é\nx", 3), (2, 1));
    }

    #[test]
    fn display_names_file_line_and_help() {
        let d = Diagnostic::at("content/a.md", 3, 7, "bad").help("fix it");
        assert_eq!(d.to_string(), "content/a.md:3:7: bad\n  help: fix it");
    }
}

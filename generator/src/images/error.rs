//! [`ImageError`]: everything that can go wrong with one image, naming the image.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::Diagnostic;

/// A problem with one image. Every variant names the image; the caller adds the page that
/// referenced it. Converts to a [`Diagnostic`] with [`ImageError::to_diagnostic`].
#[derive(Debug)]
#[non_exhaustive]
pub enum ImageError {
    /// The `[images]` table of site.toml is invalid.
    Settings {
        /// What is wrong, naming the key.
        message: String,
    },
    /// The image file does not exist.
    Missing {
        /// The image.
        path: PathBuf,
    },
    /// The image file exists but cannot be read.
    Io {
        /// The image.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The bytes are not JPEG, PNG, WebP or GIF.
    Unsupported {
        /// The image.
        path: PathBuf,
        /// What the bytes look like, when known.
        detail: String,
    },
    /// The image is truncated or corrupt.
    Corrupt {
        /// The image.
        path: PathBuf,
        /// The decoder's message.
        detail: String,
    },
    /// The image has more pixels than `max_pixels` or needs more memory than allowed to
    /// decode (a decompression bomb, or simply a huge original).
    TooLarge {
        /// The image.
        path: PathBuf,
        /// Declared width (0 when the decoder refused before telling).
        width: u32,
        /// Declared height.
        height: u32,
        /// The configured limit.
        max_pixels: u64,
    },
    /// An encoder failed (should not happen with valid settings).
    Encode {
        /// The image.
        path: PathBuf,
        /// The encoder's message.
        detail: String,
    },
    /// The image cache could not be read or written.
    Cache {
        /// The cache file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl ImageError {
    /// The image (or cache file) the error is about; `None` for settings errors.
    pub fn path(&self) -> Option<&Path> {
        match self {
            ImageError::Settings { .. } => None,
            ImageError::Missing { path }
            | ImageError::Io { path, .. }
            | ImageError::Unsupported { path, .. }
            | ImageError::Corrupt { path, .. }
            | ImageError::TooLarge { path, .. }
            | ImageError::Encode { path, .. }
            | ImageError::Cache { path, .. } => Some(path),
        }
    }

    /// What to do about it.
    pub fn help(&self) -> &'static str {
        match self {
            ImageError::Settings { .. } => {
                "valid keys of [images]: widths, avif_quality, avif_speed, avif_subsampling \
                 (\"4:2:0\" or \"4:4:4\"), avif_bit_depth (8 or 10), jpeg_quality, \
                 png_level, max_pixels, placeholder (see docs/images.md)"
            }
            ImageError::Missing { .. } => {
                "check the image path: it is resolved against the page's folder, or the site's \
                 static/ folder when it starts with /"
            }
            ImageError::Io { .. } => "check that qpage may read the file",
            ImageError::Unsupported { .. } => {
                "convert the image to JPEG, PNG, WebP or GIF (SVG and other files are copied \
                 as they are when not referenced as a processed image)"
            }
            ImageError::Corrupt { .. } => {
                "the file is truncated or damaged: export it again from the original"
            }
            ImageError::TooLarge { .. } => {
                "downscale the original, or raise `max_pixels` in the [images] table of \
                 site.toml if the image is trusted"
            }
            ImageError::Encode { .. } => "report this as a bug in qpage, with the image",
            ImageError::Cache { .. } => {
                "check that the image cache folder is writable, or delete it to start afresh"
            }
        }
    }

    /// This error as a [`Diagnostic`] located at `file` (the page that referenced the
    /// image, or the image itself when `None`).
    pub fn to_diagnostic(&self, file: Option<&Path>) -> Diagnostic {
        let file = file
            .or_else(|| self.path())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("site.toml"));
        Diagnostic::file(file, self.to_string()).help(self.help())
    }
}

impl fmt::Display for ImageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImageError::Settings { message } => write!(f, "invalid [images] settings: {message}"),
            ImageError::Missing { path } => write!(f, "image {}: file not found", path.display()),
            ImageError::Io { path, source } => {
                write!(f, "image {}: cannot read: {source}", path.display())
            }
            ImageError::Unsupported { path, detail } => write!(
                f,
                "image {}: unsupported format ({detail}); qpage processes JPEG, PNG, WebP and GIF",
                path.display()
            ),
            ImageError::Corrupt { path, detail } => {
                write!(
                    f,
                    "image {}: truncated or corrupt: {detail}",
                    path.display()
                )
            }
            ImageError::TooLarge {
                path,
                width,
                height,
                max_pixels,
            } => {
                if *width == 0 {
                    write!(
                        f,
                        "image {}: refused, decoding would need more memory than allowed for \
                         {max_pixels} pixels (possible decompression bomb)",
                        path.display()
                    )
                } else {
                    write!(
                        f,
                        "image {}: refused, {width}x{height} is {} pixels, more than max_pixels \
                         = {max_pixels} (possible decompression bomb)",
                        path.display(),
                        u64::from(*width) * u64::from(*height)
                    )
                }
            }
            ImageError::Encode { path, detail } => {
                write!(f, "image {}: encoding failed: {detail}", path.display())
            }
            ImageError::Cache { path, source } => {
                write!(f, "image cache {}: {source}", path.display())
            }
        }
    }
}

impl std::error::Error for ImageError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ImageError::Io { source, .. } | ImageError::Cache { source, .. } => Some(source),
            _ => None,
        }
    }
}

//! The image pipeline: originals (JPEG, PNG, WebP, GIF) -> upright, metadata-free,
//! responsive AVIF variants plus a fallback (JPEG, or PNG through oxipng when the original
//! is a PNG or has transparency), through a content-addressed cache shared by every site of
//! a build, and the `<picture>` markup that serves them.
//!
//! ```no_run
//! use qpage_generator::images::{ImageCache, ImageSettings, PictureOptions, picture_html, process_file};
//! # fn main() -> Result<(), qpage_generator::images::ImageError> {
//! let cache = ImageCache::open(".qpage-cache/images")?;          // once per build (Sync)
//! let settings = ImageSettings::from_config(&Default::default())?; // site.toml's [images]
//! let processed = process_file(&cache, &settings, "content/blog/photo.jpg".as_ref())?;
//! for variant in &processed.variants {
//!     // copy variant.path (in the cache) to dist/images/<variant.file_name>
//! }
//! let html = picture_html(&processed, &PictureOptions { alt: Some("A photo"), url_prefix: "/images/", ..Default::default() });
//! # Ok(()) }
//! ```
//!
//! Rules:
//! - never upscaled: widths above the original's are dropped, and the original width is
//!   used when it is below the largest configured width;
//! - never larger than what it replaces: an AVIF that is not smaller than the fallback at
//!   the same width is dropped (the `<source>` then lists the fallback at that width); a
//!   fallback at the original's size that is larger than the original uses the original's
//!   bytes with its metadata removed (JPEG) or losslessly re-optimized (PNG);
//! - all metadata (EXIF with GPS, XMP, IPTC, comments, text chunks) is gone from every
//!   output: pixels are re-encoded, and passed-through originals are stripped;
//! - AVIF encodes run on one thread each (rav1e with one thread and one tile, ravif with
//!   `with_num_threads(Some(1))`; ravif/rav1e and oxipng are built without their rayon
//!   features): parallelism comes from the build calling [`process`] for many images on
//!   its rayon pool, bounded by the cache's [`EncodeBudget`] (memory and count).
//!
//! # Parallelism
//!
//! [`process`] may block its thread (on the per-original lock that makes two sites share
//! one encode, and on the encode budget), so it never waits on rayon itself: a rayon
//! worker that waits for a job steals other jobs meanwhile, and a stolen job that blocks on
//! a lock or permit held lower on the same thread's stack would deadlock. Call it from
//! `par_iter` over images; the widths of one image are encoded one after the other.

mod avif;
mod budget;
mod cache;
mod codec;
mod error;
mod html;
mod settings;

use std::path::{Path, PathBuf};
use std::sync::PoisonError;
use std::sync::atomic::Ordering;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use avif::{AvifOptions, Subsampling};
pub use budget::{AVIF_BYTES_BASE, AVIF_BYTES_PER_PIXEL, EncodeBudget, Permit};
pub use cache::{CacheStats, ImageCache};
pub use error::ImageError;
pub use html::{PictureOptions, escape_attr, picture_html};
pub use settings::{AvifSubsampling, DEFAULT_WIDTHS, ImageSettings, MAX_DIMENSION};

use cache::key_of;
use codec::Decoded;

/// An encoded image format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// AV1 in HEIF (image/avif).
    Avif,
    /// JPEG.
    Jpeg,
    /// PNG.
    Png,
    /// WebP (inputs only).
    Webp,
    /// GIF (inputs only; the first frame is used).
    Gif,
}

impl Format {
    /// The MIME type.
    pub fn mime(self) -> &'static str {
        match self {
            Format::Avif => "image/avif",
            Format::Jpeg => "image/jpeg",
            Format::Png => "image/png",
            Format::Webp => "image/webp",
            Format::Gif => "image/gif",
        }
    }

    /// The file extension, without a dot.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Avif => "avif",
            Format::Jpeg => "jpg",
            Format::Png => "png",
            Format::Webp => "webp",
            Format::Gif => "gif",
        }
    }
}

/// One encoded file to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variant {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Format.
    pub format: Format,
    /// Content-hashed file name, e.g. `photo-1a2b3c4d-960.avif` (stem of the original,
    /// first 8 hex digits of the sha256 of these bytes, width).
    pub file_name: String,
    /// sha256 of the bytes (hex), e.g. for the deploy manifest.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// Where the bytes are, inside the cache: copy or hard-link it into `dist/`.
    pub path: PathBuf,
}

impl Variant {
    /// Reads the bytes from the cache.
    pub fn read(&self) -> std::io::Result<Vec<u8>> {
        std::fs::read(&self.path)
    }
}

/// The result of processing one original.
#[derive(Debug, Clone, PartialEq)]
pub struct Processed {
    /// The original, as given.
    pub source: PathBuf,
    /// Width of the original after EXIF orientation.
    pub width: u32,
    /// Height of the original after EXIF orientation.
    pub height: u32,
    /// Whether the original has transparent pixels.
    pub alpha: bool,
    /// Every file to publish: for each width, the fallback, then the AVIF when it is
    /// smaller than the fallback. Sorted by width.
    pub variants: Vec<Variant>,
    /// A tiny blurred placeholder (an SVG `data:` URI) when settings ask for one.
    pub placeholder: Option<String>,
}

impl Processed {
    /// The fallback variants (JPEG or PNG), smallest width first.
    pub fn fallbacks(&self) -> impl Iterator<Item = &Variant> {
        self.variants.iter().filter(|v| v.format != Format::Avif)
    }

    /// The AVIF variants, smallest width first.
    pub fn avifs(&self) -> impl Iterator<Item = &Variant> {
        self.variants.iter().filter(|v| v.format == Format::Avif)
    }

    /// The widest fallback: the `<img src>`, and its `width`/`height`.
    pub fn fallback(&self) -> &Variant {
        self.fallbacks()
            .last()
            .expect("every processed image has a fallback per width")
    }

    /// For each width, the smallest file at that width (AVIF when kept, else the fallback):
    /// the `<source type="image/avif">` candidates.
    pub fn best_per_width(&self) -> Vec<&Variant> {
        let mut out: Vec<&Variant> = Vec::new();
        for v in &self.variants {
            match out.last_mut() {
                Some(last) if last.width == v.width => {
                    if v.size < last.size {
                        *last = v;
                    }
                }
                _ => out.push(v),
            }
        }
        out
    }
}

/// Encodes pixels to AVIF exactly as the pipeline does (one thread; opaque images with
/// rav1e at `options`' subsampling and depth, images with transparency with ravif at 4:4:4),
/// without cache or budget: for benchmarks and callers that manage their own parallelism.
/// [`ImageSettings::avif_options`] gives a site's options.
pub fn encode_avif(
    image: &image::DynamicImage,
    options: &AvifOptions,
) -> Result<Vec<u8>, ImageError> {
    if !(1.0..=100.0).contains(&options.quality) || !(1..=10).contains(&options.speed) {
        return Err(ImageError::Settings {
            message: format!(
                "AVIF quality {} / speed {} out of range",
                options.quality, options.speed
            ),
        });
    }
    codec::encode_avif(Path::new("<pixels>"), image, options)
}

/// Oriented dimensions and kind of an original, cached by source hash.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SourceRecord {
    width: u32,
    height: u32,
    alpha: bool,
    format: Format,
}

/// One encoded blob of a width entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct BlobRecord {
    sha256: String,
    size: u64,
    format: Format,
    width: u32,
    height: u32,
}

/// One width of one original.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct WidthRecord {
    fallback: BlobRecord,
    avif: Option<BlobRecord>,
}

/// Reads the original at `path` and processes it; a missing file is
/// [`ImageError::Missing`].
pub fn process_file(
    cache: &ImageCache,
    settings: &ImageSettings,
    path: &Path,
) -> Result<Processed, ImageError> {
    let bytes = std::fs::read(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            ImageError::Missing {
                path: path.to_path_buf(),
            }
        } else {
            ImageError::Io {
                path: path.to_path_buf(),
                source,
            }
        }
    })?;
    process(cache, settings, path, &bytes)
}

/// Processes an original (`path` names it in errors and file names; `bytes` are its
/// content). Everything already in the cache is reused without decoding; the rest is
/// decoded once and encoded on this thread (call it for many images in parallel).
pub fn process(
    cache: &ImageCache,
    settings: &ImageSettings,
    path: &Path,
    bytes: &[u8],
) -> Result<Processed, ImageError> {
    settings.validate()?;
    let source_hash: [u8; 32] = Sha256::digest(bytes).into();
    let source_key = hex::encode(source_hash);
    let lock = cache.source_lock(&source_hash);
    let _guard = lock.lock().unwrap_or_else(PoisonError::into_inner);

    let params = encode_params(settings);
    let width_key = |w: u32| key_of(&[&source_hash, b"width", &w.to_le_bytes(), &params]);
    let placeholder_key = key_of(&[&source_hash, b"placeholder"]);

    // Everything from the cache, when it is all there.
    let mut decoded: Option<Decoded> = None;
    let record: SourceRecord = match cache.get::<SourceRecord>("src", &source_key) {
        Some(record) => record,
        None => {
            let d = decode_counted(cache, settings, path, bytes)?;
            let record = SourceRecord {
                width: d.image.width(),
                height: d.image.height(),
                alpha: d.alpha,
                format: d.format,
            };
            cache.put("src", &source_key, &record)?;
            decoded = Some(d);
            record
        }
    };
    let widths = settings.target_widths(record.width);
    let mut entries: Vec<Option<WidthRecord>> = widths
        .iter()
        .map(|&w| {
            cache
                .get::<WidthRecord>("var", &width_key(w))
                .filter(|r| blobs_present(cache, r))
        })
        .collect();
    let mut placeholder: Option<String> = if settings.placeholder {
        cache.get::<String>("ph", &placeholder_key)
    } else {
        None
    };
    let counters = &cache.counters;
    let cached = entries.iter().filter(|e| e.is_some()).count() as u64
        + u64::from(settings.placeholder && placeholder.is_some());
    counters.hits.fetch_add(cached, Ordering::Relaxed);

    let missing: Vec<usize> = (0..widths.len())
        .filter(|&i| entries[i].is_none())
        .collect();
    let need_placeholder = settings.placeholder && placeholder.is_none();
    if !missing.is_empty() || need_placeholder {
        counters.misses.fetch_add(
            missing.len() as u64 + u64::from(need_placeholder),
            Ordering::Relaxed,
        );
        let d = match decoded.take() {
            Some(d) => d,
            None => decode_counted(cache, settings, path, bytes)?,
        };
        // Sequential on purpose: see "Parallelism" in the module docs.
        let computed: Vec<(usize, WidthRecord)> = missing
            .iter()
            .map(|&i| {
                let record = encode_width(cache, settings, path, bytes, &d, widths[i])?;
                cache.put("var", &width_key(widths[i]), &record)?;
                Ok((i, record))
            })
            .collect::<Result<_, ImageError>>()?;
        for (i, record) in computed {
            entries[i] = Some(record);
        }
        if need_placeholder {
            let uri = html::placeholder_uri(
                &codec::tiny_png(path, &d.image, 10)?,
                d.image.width(),
                d.image.height(),
            );
            cache.put("ph", &placeholder_key, &uri)?;
            placeholder = Some(uri);
        }
    }

    let stem = file_stem(path);
    let mut variants = Vec::new();
    for entry in entries.into_iter().flatten() {
        variants.push(variant(cache, &stem, &entry.fallback));
        if let Some(avif) = &entry.avif {
            variants.push(variant(cache, &stem, avif));
        }
    }
    Ok(Processed {
        source: path.to_path_buf(),
        width: record.width,
        height: record.height,
        alpha: record.alpha,
        variants,
        placeholder: if settings.placeholder {
            placeholder
        } else {
            None
        },
    })
}

/// The settings that change encoded bytes, as key material.
fn encode_params(settings: &ImageSettings) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(&settings.avif_quality.to_le_bytes());
    p.push(settings.avif_speed);
    p.push(match settings.avif_subsampling {
        AvifSubsampling::Yuv420 => 0,
        AvifSubsampling::Yuv444 => 1,
    });
    p.push(settings.avif_bit_depth);
    p.push(settings.jpeg_quality);
    p.push(settings.png_level);
    p
}

fn blobs_present(cache: &ImageCache, record: &WidthRecord) -> bool {
    cache.has_blob(&record.fallback.sha256, record.fallback.size)
        && record
            .avif
            .as_ref()
            .is_none_or(|a| cache.has_blob(&a.sha256, a.size))
}

fn decode_counted(
    cache: &ImageCache,
    settings: &ImageSettings,
    path: &Path,
    bytes: &[u8],
) -> Result<Decoded, ImageError> {
    cache.counters.decodes.fetch_add(1, Ordering::Relaxed);
    codec::decode(path, bytes, settings.max_pixels)
}

/// Encodes one width: the fallback, then the AVIF (kept only when smaller).
fn encode_width(
    cache: &ImageCache,
    settings: &ImageSettings,
    path: &Path,
    original: &[u8],
    d: &Decoded,
    width: u32,
) -> Result<WidthRecord, ImageError> {
    let counters = &cache.counters;
    let resized = codec::resize(&d.image, width);
    let (w, h) = (resized.width(), resized.height());
    let full_size = w == d.image.width();
    let png = d.alpha || d.format == Format::Png;

    counters.fallback_encodes.fetch_add(1, Ordering::Relaxed);
    let (mut fallback, fallback_format) = if png {
        (
            codec::encode_png(path, &resized, settings.png_level)?,
            Format::Png,
        )
    } else {
        (
            codec::encode_jpeg(path, &resized, settings.jpeg_quality)?,
            Format::Jpeg,
        )
    };
    // Never larger than the original at the same size: use its bytes, without metadata.
    if full_size && d.upright && fallback.len() > original.len() {
        let stripped = match (d.format, fallback_format) {
            (Format::Jpeg, Format::Jpeg) => codec::strip_jpeg_metadata(original),
            (Format::Png, Format::Png) => {
                codec::optimize_png(path, original, settings.png_level).ok()
            }
            _ => None,
        };
        if let Some(stripped) = stripped.filter(|s| s.len() < fallback.len()) {
            fallback = stripped;
        }
    }

    let avif = {
        let _permit = cache.budget().acquire(EncodeBudget::estimate_avif(w, h));
        counters.avif_encodes.fetch_add(1, Ordering::Relaxed);
        codec::encode_avif(path, &resized, &settings.avif_options())?
    };
    let fallback = BlobRecord {
        size: fallback.len() as u64,
        sha256: cache.put_blob(&fallback)?,
        format: fallback_format,
        width: w,
        height: h,
    };
    let avif = if (avif.len() as u64) < fallback.size {
        Some(BlobRecord {
            size: avif.len() as u64,
            sha256: cache.put_blob(&avif)?,
            format: Format::Avif,
            width: w,
            height: h,
        })
    } else {
        None
    };
    Ok(WidthRecord { fallback, avif })
}

/// The original's file stem as a URL-safe slug (at most 48 characters), or `image`.
fn file_stem(path: &Path) -> String {
    let stem = path
        .file_stem()
        .map(|s| slug::slugify(s.to_string_lossy()))
        .unwrap_or_default();
    let mut stem: String = stem.chars().take(48).collect();
    while stem.ends_with('-') {
        stem.pop();
    }
    if stem.is_empty() {
        "image".into()
    } else {
        stem
    }
}

fn variant(cache: &ImageCache, stem: &str, blob: &BlobRecord) -> Variant {
    Variant {
        width: blob.width,
        height: blob.height,
        format: blob.format,
        file_name: format!(
            "{stem}-{}-{}.{}",
            &blob.sha256[..8],
            blob.width,
            blob.format.extension()
        ),
        sha256: blob.sha256.clone(),
        size: blob.size,
        path: cache.blob_path(&blob.sha256),
    }
}

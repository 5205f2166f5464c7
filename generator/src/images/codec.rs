//! Decoding (with limits and EXIF orientation), resizing and encoding.

use std::io::Cursor;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::{CompressionType, FilterType as PngFilter, PngEncoder};
use image::imageops::FilterType;
use image::{
    DynamicImage, ImageDecoder, ImageEncoder, ImageError as ImgError, ImageFormat, ImageReader,
    Limits, Rgba32FImage,
};

use super::avif::{self, AvifOptions};
use super::{Format, ImageError};

/// An original, decoded and upright.
pub(crate) struct Decoded {
    pub image: DynamicImage,
    pub format: Format,
    /// Whether EXIF orientation was already upright (so original bytes may stand in).
    pub upright: bool,
    /// Whether some pixel is not fully opaque.
    pub alpha: bool,
}

/// Runs `f`, turning a panic inside a codec into an error instead of taking the build down.
pub(crate) fn guarded<T>(
    f: impl FnOnce() -> Result<T, ImageError>,
    on_panic: impl FnOnce(String) -> ImageError,
) -> Result<T, ImageError> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(payload) => {
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(on_panic(format!("codec panicked: {msg}")))
        }
    }
}

/// What the first bytes of an unsupported file look like, for the error message.
fn describe(bytes: &[u8]) -> String {
    let head = &bytes[..bytes.len().min(256)];
    let text = String::from_utf8_lossy(head).to_ascii_lowercase();
    if bytes.is_empty() {
        "the file is empty".into()
    } else if text.contains("<svg") || text.starts_with("<?xml") {
        "SVG / XML".into()
    } else if let Ok(format) = image::guess_format(bytes) {
        format!("{format:?}")
    } else {
        "not an image format qpage recognizes".into()
    }
}

/// The format of `bytes` by content (not by file extension).
pub(crate) fn sniff(path: &Path, bytes: &[u8]) -> Result<Format, ImageError> {
    match image::guess_format(bytes) {
        Ok(ImageFormat::Jpeg) => Ok(Format::Jpeg),
        Ok(ImageFormat::Png) => Ok(Format::Png),
        Ok(ImageFormat::WebP) => Ok(Format::Webp),
        Ok(ImageFormat::Gif) => Ok(Format::Gif),
        _ => Err(ImageError::Unsupported {
            path: path.to_path_buf(),
            detail: describe(bytes),
        }),
    }
}

/// Bytes a decoder may allocate for an image of `max_pixels`: 16-bit RGBA plus slack.
fn alloc_limit(max_pixels: u64) -> u64 {
    max_pixels.saturating_mul(8).saturating_add(64 << 20)
}

fn map_decode_error(path: &Path, max_pixels: u64, err: ImgError) -> ImageError {
    let path = path.to_path_buf();
    match err {
        ImgError::Limits(_) => ImageError::TooLarge {
            path,
            width: 0,
            height: 0,
            max_pixels,
        },
        ImgError::Unsupported(e) => ImageError::Unsupported {
            path,
            detail: e.to_string(),
        },
        ImgError::IoError(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            ImageError::Corrupt {
                path,
                detail: "unexpected end of file".into(),
            }
        }
        other => ImageError::Corrupt {
            path,
            detail: other.to_string(),
        },
    }
}

/// A JPEG whose last scan has no end-of-image marker after it was cut short (entropy-coded
/// data cannot contain FF D9, and zune-jpeg fills missing data with grey instead of failing).
fn jpeg_truncated(bytes: &[u8]) -> bool {
    let last_sos = bytes.windows(2).rposition(|w| w == [0xFF, 0xDA]);
    match last_sos {
        Some(pos) => !bytes[pos..].windows(2).any(|w| w == [0xFF, 0xD9]),
        None => true,
    }
}

/// Decodes an original: format by content, pixel and memory limits checked before pixels
/// are allocated, first frame of a GIF, EXIF orientation applied.
pub(crate) fn decode(path: &Path, bytes: &[u8], max_pixels: u64) -> Result<Decoded, ImageError> {
    let format = sniff(path, bytes)?;
    if format == Format::Jpeg && jpeg_truncated(bytes) {
        return Err(ImageError::Corrupt {
            path: path.to_path_buf(),
            detail: "the JPEG data ends before its end-of-image marker".into(),
        });
    }
    let image_format = match format {
        Format::Jpeg => ImageFormat::Jpeg,
        Format::Png => ImageFormat::Png,
        Format::Webp => ImageFormat::WebP,
        Format::Gif => ImageFormat::Gif,
        Format::Avif => unreachable!("sniff never returns AVIF"),
    };
    guarded(
        || {
            let mut reader = ImageReader::with_format(Cursor::new(bytes), image_format);
            let mut limits = Limits::default();
            limits.max_alloc = Some(alloc_limit(max_pixels));
            reader.limits(limits);
            let mut decoder = reader
                .into_decoder()
                .map_err(|e| map_decode_error(path, max_pixels, e))?;
            let (width, height) = decoder.dimensions();
            if width == 0 || height == 0 {
                return Err(ImageError::Corrupt {
                    path: path.to_path_buf(),
                    detail: format!("{width}x{height} has no pixels"),
                });
            }
            if u64::from(width) * u64::from(height) > max_pixels {
                return Err(ImageError::TooLarge {
                    path: path.to_path_buf(),
                    width,
                    height,
                    max_pixels,
                });
            }
            // An unreadable EXIF block is not worth failing over: treat it as upright.
            let orientation = decoder
                .orientation()
                .unwrap_or(image::metadata::Orientation::NoTransforms);
            let mut image = DynamicImage::from_decoder(decoder)
                .map_err(|e| map_decode_error(path, max_pixels, e))?;
            let upright = orientation == image::metadata::Orientation::NoTransforms;
            image.apply_orientation(orientation);
            let image = normalize(image);
            let alpha = image.color().has_alpha() && has_transparency(&image);
            let image = if image.color().has_alpha() && !alpha {
                // An all-opaque alpha channel: drop it.
                if image.color().has_color() {
                    DynamicImage::ImageRgb8(image.to_rgb8())
                } else {
                    DynamicImage::ImageLuma8(image.to_luma8())
                }
            } else {
                image
            };
            Ok(Decoded {
                image,
                format,
                upright,
                alpha,
            })
        },
        |detail| ImageError::Corrupt {
            path: path.to_path_buf(),
            detail,
        },
    )
}

/// 8-bit Luma, Rgb or Rgba: what the encoders take.
fn normalize(image: DynamicImage) -> DynamicImage {
    match image {
        DynamicImage::ImageLuma8(_) | DynamicImage::ImageRgb8(_) | DynamicImage::ImageRgba8(_) => {
            image
        }
        other => {
            let color = other.color();
            match (color.has_color(), color.has_alpha()) {
                (false, false) => DynamicImage::ImageLuma8(other.to_luma8()),
                (true, false) => DynamicImage::ImageRgb8(other.to_rgb8()),
                _ => DynamicImage::ImageRgba8(other.to_rgba8()),
            }
        }
    }
}

fn has_transparency(image: &DynamicImage) -> bool {
    match image {
        DynamicImage::ImageRgba8(buf) => buf.pixels().any(|p| p.0[3] < 255),
        _ => true,
    }
}

/// Height for `width` keeping the aspect ratio of `w0` x `h0`, at least 1.
pub(crate) fn scaled_height(w0: u32, h0: u32, width: u32) -> u32 {
    let h = (u64::from(h0) * u64::from(width) + u64::from(w0) / 2) / u64::from(w0);
    (h as u32).max(1)
}

/// Resizes to `width` (Lanczos3). Transparent images are resized premultiplied, so that
/// the colour of invisible pixels does not bleed into edges.
pub(crate) fn resize(image: &DynamicImage, width: u32) -> DynamicImage {
    let (w0, h0) = (image.width(), image.height());
    if width == w0 {
        return image.clone();
    }
    let height = scaled_height(w0, h0, width);
    match image {
        DynamicImage::ImageRgba8(_) => {
            let mut f = image.to_rgba32f();
            for p in f.pixels_mut() {
                let a = p.0[3];
                p.0[0] *= a;
                p.0[1] *= a;
                p.0[2] *= a;
            }
            let mut r: Rgba32FImage =
                image::imageops::resize(&f, width, height, FilterType::Lanczos3);
            for p in r.pixels_mut() {
                let a = p.0[3].clamp(0.0, 1.0);
                p.0[3] = a;
                for c in &mut p.0[..3] {
                    *c = if a > 0.0 {
                        (*c / a).clamp(0.0, 1.0)
                    } else {
                        0.0
                    };
                }
            }
            DynamicImage::ImageRgba8(DynamicImage::ImageRgba32F(r).to_rgba8())
        }
        _ => image.resize_exact(width, height, FilterType::Lanczos3),
    }
}

fn encode_error(path: &Path) -> impl Fn(String) -> ImageError + '_ {
    move |detail| ImageError::Encode {
        path: path.to_path_buf(),
        detail,
    }
}

/// Baseline JPEG (grey or RGB).
pub(crate) fn encode_jpeg(
    path: &Path,
    image: &DynamicImage,
    quality: u8,
) -> Result<Vec<u8>, ImageError> {
    guarded(
        || {
            let mut out = Vec::new();
            let encoder = JpegEncoder::new_with_quality(&mut out, quality);
            let result = match image {
                DynamicImage::ImageLuma8(buf) => encoder.write_image(
                    buf.as_raw(),
                    buf.width(),
                    buf.height(),
                    image::ExtendedColorType::L8,
                ),
                other => {
                    let buf = other.to_rgb8();
                    encoder.write_image(
                        buf.as_raw(),
                        buf.width(),
                        buf.height(),
                        image::ExtendedColorType::Rgb8,
                    )
                }
            };
            result.map_err(|e| encode_error(path)(e.to_string()))?;
            Ok(out)
        },
        encode_error(path),
    )
}

/// PNG, then oxipng at `level` with every ancillary chunk stripped.
pub(crate) fn encode_png(
    path: &Path,
    image: &DynamicImage,
    level: u8,
) -> Result<Vec<u8>, ImageError> {
    guarded(
        || {
            let mut raw = Vec::new();
            let encoder =
                PngEncoder::new_with_quality(&mut raw, CompressionType::Fast, PngFilter::Adaptive);
            image
                .write_with_encoder(encoder)
                .map_err(|e| encode_error(path)(e.to_string()))?;
            optimize_png(path, &raw, level)
        },
        encode_error(path),
    )
}

/// oxipng over existing PNG bytes, stripping every ancillary chunk (EXIF, text, time...).
pub(crate) fn optimize_png(path: &Path, png: &[u8], level: u8) -> Result<Vec<u8>, ImageError> {
    let mut options = oxipng::Options::from_preset(level);
    options.strip = oxipng::StripChunks::All;
    options.force = true;
    oxipng::optimize_from_memory(png, &options).map_err(|e| encode_error(path)(e.to_string()))
}

/// AVIF on one thread (the build's rayon pool supplies the parallelism): opaque images
/// through [`avif::encode_rgb`](super::avif) (4:2:0 or 4:4:4), images with transparency
/// through ravif (4:4:4, alpha as a second AV1 image).
pub(crate) fn encode_avif(
    path: &Path,
    image: &DynamicImage,
    options: &AvifOptions,
) -> Result<Vec<u8>, ImageError> {
    guarded(
        || {
            let (w, h) = (image.width() as usize, image.height() as usize);
            match image {
                DynamicImage::ImageRgba8(buf) => {
                    let encoder = ravif::Encoder::new()
                        .with_quality(options.quality)
                        .with_alpha_quality(options.quality)
                        .with_speed(options.speed)
                        .with_bit_depth(if options.ten_bit {
                            ravif::BitDepth::Ten
                        } else {
                            ravif::BitDepth::Eight
                        })
                        .with_num_threads(Some(1));
                    let px: Vec<ravif::RGBA8> = buf
                        .pixels()
                        .map(|p| ravif::RGBA8::new(p.0[0], p.0[1], p.0[2], p.0[3]))
                        .collect();
                    encoder
                        .encode_rgba(ravif::Img::new(&px[..], w, h))
                        .map(|encoded| encoded.avif_file)
                        .map_err(|e| encode_error(path)(e.to_string()))
                }
                other => {
                    let buf = other.to_rgb8();
                    avif::encode_rgb(buf.as_raw(), w, h, options).map_err(encode_error(path))
                }
            }
        },
        encode_error(path),
    )
}

/// A JPEG with every APPn segment except JFIF (APP0) and ICC profiles (APP2 `ICC_PROFILE`)
/// and every comment removed: EXIF, XMP, IPTC, maker notes, GPS. `None` when the bytes are
/// not a JPEG this simple parser understands.
pub(crate) fn strip_jpeg_metadata(bytes: &[u8]) -> Option<Vec<u8>> {
    if bytes.len() < 4 || bytes[0] != 0xFF || bytes[1] != 0xD8 {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len());
    out.extend_from_slice(&bytes[..2]);
    let mut i = 2;
    loop {
        if i + 4 > bytes.len() || bytes[i] != 0xFF {
            return None;
        }
        let marker = bytes[i + 1];
        if marker == 0xFF {
            i += 1; // fill byte
            continue;
        }
        let len = usize::from(u16::from_be_bytes([bytes[i + 2], bytes[i + 3]]));
        if len < 2 || i + 2 + len > bytes.len() {
            return None;
        }
        let segment = &bytes[i..i + 2 + len];
        if marker == 0xDA {
            // Start of scan: the rest is image data (and later markers we keep).
            out.extend_from_slice(&bytes[i..]);
            return Some(out);
        }
        let keep = match marker {
            0xE0 => true,
            0xE2 => segment[4..].starts_with(b"ICC_PROFILE\0"),
            0xE1 | 0xE3..=0xEF | 0xFE => false,
            _ => true,
        };
        if keep {
            out.extend_from_slice(segment);
        }
        i += 2 + len;
    }
}

/// A tiny PNG (longest side `side` px) for the blurred placeholder.
pub(crate) fn tiny_png(
    path: &Path,
    image: &DynamicImage,
    side: u32,
) -> Result<Vec<u8>, ImageError> {
    let (w, h) = (image.width(), image.height());
    let (tw, th) = if w >= h {
        (side.min(w), scaled_height(w, h, side.min(w)))
    } else {
        let th = side.min(h);
        (scaled_height(h, w, th), th)
    };
    let small = image.resize_exact(tw, th, FilterType::Triangle);
    let small = match small {
        DynamicImage::ImageRgba8(_) => small,
        DynamicImage::ImageLuma8(_) => small,
        other => DynamicImage::ImageRgb8(other.to_rgb8()),
    };
    encode_png(path, &small, 2)
}

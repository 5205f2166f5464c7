//! [`ImageSettings`]: the `[images]` table of site.toml, with defaults from measurement.

use serde::{Deserialize, Serialize};

use super::ImageError;
use super::avif::{AvifOptions, Subsampling};

/// Per-site image pipeline settings, read from the `[images]` table of site.toml.
///
/// Every key is optional; unknown keys are refused. The defaults come from the measurements
/// in docs/images.md.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ImageSettings {
    /// Widths (CSS pixels at 1x) of the responsive variants. Widths above an original's
    /// width are dropped (never upscaled); the original's width is used instead.
    pub widths: Vec<u32>,
    /// AVIF quality, 1..=100 (ravif's scale).
    pub avif_quality: f32,
    /// AVIF encoder speed, 1 (slowest, smallest) ..= 10 (fastest).
    pub avif_speed: u8,
    /// Chroma subsampling of opaque AVIFs: `"4:2:0"` or `"4:4:4"` (images with
    /// transparency are always 4:4:4).
    pub avif_subsampling: AvifSubsampling,
    /// Bits per sample in the AVIF: 8 or 10.
    pub avif_bit_depth: u8,
    /// JPEG fallback quality, 1..=100.
    pub jpeg_quality: u8,
    /// oxipng optimization level for PNG fallbacks, 0..=6.
    pub png_level: u8,
    /// Originals with more pixels than this are refused (decompression bombs).
    pub max_pixels: u64,
    /// Compute a tiny blurred placeholder (an SVG data: URI) shown while the image loads.
    pub placeholder: bool,
}

/// `avif_subsampling`: how the colour planes of an opaque AVIF are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum AvifSubsampling {
    /// `"4:2:0"`: colour at half the width and height, as in nearly every JPEG photo.
    Yuv420,
    /// `"4:4:4"`: colour at full resolution.
    Yuv444,
}

impl TryFrom<String> for AvifSubsampling {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        match value.as_str() {
            "4:2:0" => Ok(AvifSubsampling::Yuv420),
            "4:4:4" => Ok(AvifSubsampling::Yuv444),
            other => Err(format!(
                "`avif_subsampling` = \"{other}\" is neither \"4:2:0\" nor \"4:4:4\""
            )),
        }
    }
}

impl From<AvifSubsampling> for String {
    fn from(value: AvifSubsampling) -> String {
        match value {
            AvifSubsampling::Yuv420 => "4:2:0".into(),
            AvifSubsampling::Yuv444 => "4:4:4".into(),
        }
    }
}

/// Default widths of the responsive variants.
pub const DEFAULT_WIDTHS: [u32; 3] = [480, 960, 1600];

impl Default for ImageSettings {
    fn default() -> Self {
        ImageSettings {
            widths: DEFAULT_WIDTHS.to_vec(),
            avif_quality: 75.0,
            avif_speed: 4,
            avif_subsampling: AvifSubsampling::Yuv444,
            avif_bit_depth: 10,
            jpeg_quality: 80,
            png_level: 2,
            max_pixels: 50_000_000,
            placeholder: false,
        }
    }
}

/// Largest width or height qpage produces.
pub const MAX_DIMENSION: u32 = 16_384;

impl ImageSettings {
    /// Reads the `[images]` table (as kept by the config: a JSON map). Missing keys take
    /// their defaults; unknown keys and out-of-range values are errors naming the key.
    pub fn from_config(
        table: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Self, ImageError> {
        let settings: ImageSettings =
            serde_json::from_value(serde_json::Value::Object(table.clone())).map_err(|e| {
                ImageError::Settings {
                    message: e.to_string(),
                }
            })?;
        settings.validate()?;
        Ok(settings)
    }

    /// Checks ranges; [`ImageSettings::from_config`] calls it, and so does
    /// [`process`](super::process), so hand-built settings are checked too.
    pub fn validate(&self) -> Result<(), ImageError> {
        let bad = |message: String| Err(ImageError::Settings { message });
        if self.widths.is_empty() {
            return bad("`widths` must list at least one width".into());
        }
        if let Some(w) = self.widths.iter().find(|&&w| w == 0 || w > MAX_DIMENSION) {
            return bad(format!("`widths`: {w} is not within 1..={MAX_DIMENSION}"));
        }
        if !(1.0..=100.0).contains(&self.avif_quality) {
            return bad(format!(
                "`avif_quality` = {} is not within 1..=100",
                self.avif_quality
            ));
        }
        if !(1..=10).contains(&self.avif_speed) {
            return bad(format!(
                "`avif_speed` = {} is not within 1..=10",
                self.avif_speed
            ));
        }
        if ![8, 10].contains(&self.avif_bit_depth) {
            return bad(format!(
                "`avif_bit_depth` = {} is neither 8 nor 10",
                self.avif_bit_depth
            ));
        }
        if !(1..=100).contains(&self.jpeg_quality) {
            return bad(format!(
                "`jpeg_quality` = {} is not within 1..=100",
                self.jpeg_quality
            ));
        }
        if self.png_level > 6 {
            return bad(format!(
                "`png_level` = {} is not within 0..=6",
                self.png_level
            ));
        }
        if self.max_pixels == 0 {
            return bad("`max_pixels` must be positive".into());
        }
        Ok(())
    }

    /// The AVIF encoder's options for these settings.
    pub fn avif_options(&self) -> AvifOptions {
        AvifOptions {
            quality: self.avif_quality,
            speed: self.avif_speed,
            subsampling: match self.avif_subsampling {
                AvifSubsampling::Yuv420 => Subsampling::Yuv420,
                AvifSubsampling::Yuv444 => Subsampling::Yuv444,
            },
            ten_bit: self.avif_bit_depth == 10,
            psychovisual: true,
        }
    }

    /// The widths to produce for an original `width` pixels wide: the configured widths
    /// below it, plus the original width when it is below the largest configured one
    /// (never upscaled). Sorted, without duplicates.
    pub fn target_widths(&self, width: u32) -> Vec<u32> {
        let largest = self.widths.iter().copied().max().unwrap_or(width);
        let mut out: Vec<u32> = self
            .widths
            .iter()
            .copied()
            .filter(|&w| w <= width)
            .collect();
        if width < largest {
            out.push(width);
        }
        out.sort_unstable();
        out.dedup();
        out
    }
}

//! AVIF encoding of opaque images: RGB -> YCbCr (BT.601, full range) at 4:2:0 or 4:4:4,
//! 8 or 10 bits, one AV1 still frame from rav1e on the calling thread, wrapped in an AVIF
//! container by avif-serialize. (ravif, which does the same at 4:4:4 only, encodes images
//! with transparency.)

use rav1e::prelude::{
    ChromaSamplePosition, ChromaSampling, ColorDescription, ColorPrimaries, Config, Context,
    EncoderConfig, EncoderStatus, FrameType, MatrixCoefficients, Pixel, PixelRange, Rational,
    SceneDetectionSpeed, SpeedSettings, TransferCharacteristics, Tune,
};

/// How the colour (chroma) planes are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subsampling {
    /// Chroma at half the width and height (as in nearly every JPEG photo).
    Yuv420,
    /// Chroma at full resolution.
    Yuv444,
}

/// Everything that changes the bytes of an AVIF encode.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AvifOptions {
    /// 1..=100, ravif's scale (mapped to the AV1 quantizer the same way).
    pub quality: f32,
    /// rav1e speed preset, 1 (slowest) ..= 10 (fastest).
    pub speed: u8,
    /// Chroma subsampling of opaque images.
    pub subsampling: Subsampling,
    /// 10-bit (`true`) or 8-bit samples in the AV1 stream.
    pub ten_bit: bool,
    /// rav1e's psychovisual tuning (`true`) or plain PSNR (`false`).
    pub psychovisual: bool,
}

/// The AV1 quantizer (0..=255) for a quality 1..=100, on ravif's scale, so that a site's
/// `avif_quality` means the same whichever of the two encoders runs.
pub(crate) fn quantizer(quality: f32) -> u8 {
    let q = quality / 100.0;
    let x = if q >= 0.82 {
        (1.0 - q) * 2.6
    } else if q > 0.25 {
        0.875 - 0.5 * q
    } else {
        1.0 - q
    };
    (x * 255.0).round().clamp(0.0, 255.0) as u8
}

const KR: f32 = 0.299;
const KB: f32 = 0.114;
const KG: f32 = 1.0 - KR - KB;

/// Full-range BT.601 Y, Cb, Cr of one pixel, each in 0.0..=255.0.
fn ycbcr(r: u8, g: u8, b: u8) -> (f32, f32, f32) {
    let (r, g, b) = (f32::from(r), f32::from(g), f32::from(b));
    let y = KR * r + KG * g + KB * b;
    let cb = (b - y) * (0.5 / (1.0 - KB)) + 127.5;
    let cr = (r - y) * (0.5 / (1.0 - KR)) + 127.5;
    (y, cb, cr)
}

/// The three planes, row-major and tightly packed, as samples of `bits` bits.
struct Planes {
    y: Vec<u16>,
    cb: Vec<u16>,
    cr: Vec<u16>,
    chroma_width: usize,
}

/// Converts 8-bit RGB pixels to YCbCr planes; with 4:2:0 each chroma sample is the mean of
/// its 2x2 block (edge blocks of odd sizes average what they have).
fn to_planes(rgb: &[u8], width: usize, height: usize, sub: Subsampling, bits: u32) -> Planes {
    let scale = ((1u32 << bits) - 1) as f32 / 255.0;
    let quantize = |v: f32| (v * scale).round().clamp(0.0, ((1u32 << bits) - 1) as f32) as u16;
    let mut y = Vec::with_capacity(width * height);
    let mut cb_full = Vec::with_capacity(width * height);
    let mut cr_full = Vec::with_capacity(width * height);
    for px in rgb.chunks_exact(3) {
        let (l, b, r) = ycbcr(px[0], px[1], px[2]);
        y.push(quantize(l));
        cb_full.push(b);
        cr_full.push(r);
    }
    match sub {
        Subsampling::Yuv444 => Planes {
            y,
            cb: cb_full.into_iter().map(quantize).collect(),
            cr: cr_full.into_iter().map(quantize).collect(),
            chroma_width: width,
        },
        Subsampling::Yuv420 => {
            let (cw, ch) = (width.div_ceil(2), height.div_ceil(2));
            let mut cb = Vec::with_capacity(cw * ch);
            let mut cr = Vec::with_capacity(cw * ch);
            for cy in 0..ch {
                let rows = (2 * cy)..(2 * cy + 2).min(height);
                for cx in 0..cw {
                    let cols = (2 * cx)..(2 * cx + 2).min(width);
                    let (mut sb, mut sr, mut n) = (0.0f32, 0.0f32, 0.0f32);
                    for row in rows.clone() {
                        for col in cols.clone() {
                            sb += cb_full[row * width + col];
                            sr += cr_full[row * width + col];
                            n += 1.0;
                        }
                    }
                    cb.push(quantize(sb / n));
                    cr.push(quantize(sr / n));
                }
            }
            Planes {
                y,
                cb,
                cr,
                chroma_width: cw,
            }
        }
    }
}

/// rav1e's preset for `speed`, trimmed for one still picture (no lookahead, no scene
/// detection, no inter-frame references).
fn speed_settings(speed: u8) -> SpeedSettings {
    let mut s = SpeedSettings::from_preset(speed);
    s.multiref = false;
    s.rdo_lookahead_frames = 1;
    s.scene_detection_mode = SceneDetectionSpeed::None;
    s.motion.include_near_mvs = false;
    s
}

fn config(width: usize, height: usize, options: &AvifOptions) -> Config {
    let mut enc = EncoderConfig::with_speed_preset(options.speed);
    enc.width = width;
    enc.height = height;
    enc.time_base = Rational::new(1, 1);
    enc.bit_depth = if options.ten_bit { 10 } else { 8 };
    enc.chroma_sampling = match options.subsampling {
        Subsampling::Yuv420 => ChromaSampling::Cs420,
        Subsampling::Yuv444 => ChromaSampling::Cs444,
    };
    enc.chroma_sample_position = ChromaSamplePosition::Unknown;
    enc.pixel_range = PixelRange::Full;
    enc.color_description = Some(ColorDescription {
        transfer_characteristics: TransferCharacteristics::SRGB,
        color_primaries: ColorPrimaries::BT709,
        matrix_coefficients: MatrixCoefficients::BT601,
    });
    enc.still_picture = true;
    enc.min_key_frame_interval = 0;
    enc.max_key_frame_interval = 0;
    enc.low_latency = false;
    let q = usize::from(quantizer(options.quality));
    enc.quantizer = q;
    enc.min_quantizer = q as u8;
    enc.bitrate = 0;
    enc.tune = if options.psychovisual {
        Tune::Psychovisual
    } else {
        Tune::Psnr
    };
    enc.tiles = 1;
    enc.speed_settings = speed_settings(options.speed);
    Config::new().with_encoder_config(enc).with_threads(1)
}

/// One AV1 key frame from the planes.
fn encode_frame<P: Pixel>(
    planes: &Planes,
    width: usize,
    height: usize,
    options: &AvifOptions,
) -> Result<Vec<u8>, String> {
    let mut ctx: Context<P> = config(width, height, options)
        .new_context()
        .map_err(|e| format!("rav1e configuration: {e}"))?;
    let mut frame = ctx.new_frame();
    let bytewidth = std::mem::size_of::<P>();
    let raw = |samples: &[u16]| -> Vec<u8> {
        if bytewidth == 1 {
            samples.iter().map(|&s| s as u8).collect()
        } else {
            samples.iter().flat_map(|s| s.to_ne_bytes()).collect()
        }
    };
    let strides = [width, planes.chroma_width, planes.chroma_width];
    for ((plane, samples), stride) in frame
        .planes
        .iter_mut()
        .zip([&planes.y, &planes.cb, &planes.cr])
        .zip(strides)
    {
        plane.copy_from_raw_u8(&raw(samples), stride * bytewidth, bytewidth);
    }
    ctx.send_frame(frame)
        .map_err(|e| format!("rav1e send_frame: {e}"))?;
    ctx.flush();
    let mut out = Vec::new();
    loop {
        match ctx.receive_packet() {
            Ok(packet) => {
                if packet.frame_type == FrameType::KEY {
                    out.extend_from_slice(&packet.data);
                }
            }
            Err(EncoderStatus::Encoded) => continue,
            Err(EncoderStatus::LimitReached) => break,
            Err(e) => return Err(format!("rav1e: {e}")),
        }
    }
    if out.is_empty() {
        return Err("rav1e produced no frame".into());
    }
    Ok(out)
}

/// Encodes opaque 8-bit RGB pixels (`rgb.len() == 3 * width * height`) to an AVIF file.
pub(crate) fn encode_rgb(
    rgb: &[u8],
    width: usize,
    height: usize,
    options: &AvifOptions,
) -> Result<Vec<u8>, String> {
    if width == 0 || height == 0 || rgb.len() != 3 * width * height {
        return Err(format!(
            "{width}x{height} does not match {} bytes of RGB",
            rgb.len()
        ));
    }
    let bits = if options.ten_bit { 10 } else { 8 };
    let planes = to_planes(rgb, width, height, options.subsampling, bits);
    let av1 = if options.ten_bit {
        encode_frame::<u16>(&planes, width, height, options)?
    } else {
        encode_frame::<u8>(&planes, width, height, options)?
    };
    let mut container = avif_serialize::Aviffy::new();
    container
        .set_matrix_coefficients(avif_serialize::constants::MatrixCoefficients::Bt601)
        .set_full_color_range(true);
    if options.subsampling == Subsampling::Yuv420 {
        // 4:2:0 is AV1's Main profile (0); 4:4:4 needs High (1), the serializer's default.
        container
            .set_chroma_subsampling((true, true))
            .set_seq_profile(0);
    }
    let mut out = Vec::new();
    container
        .write(
            &mut out,
            &av1,
            None,
            width as u32,
            height as u32,
            bits as u8,
        )
        .map_err(|e| format!("AVIF container: {e}"))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantizer_follows_ravifs_scale() {
        assert_eq!(quantizer(100.0), 0);
        assert_eq!(quantizer(75.0), ((0.875 - 0.375) * 255.0f32).round() as u8);
        assert_eq!(quantizer(1.0), 252);
        assert!(quantizer(60.0) > quantizer(80.0));
    }

    #[test]
    fn grey_has_neutral_chroma_and_420_averages_blocks() {
        let (y, cb, cr) = ycbcr(200, 200, 200);
        assert!((y - 200.0).abs() < 0.01 && (cb - 127.5).abs() < 0.01 && (cr - 127.5).abs() < 0.01);
        // 3x1 image: red, blue, green -> chroma plane 2x1, first sample the mean of red+blue.
        let rgb = [255, 0, 0, 0, 0, 255, 0, 255, 0];
        let p = to_planes(&rgb, 3, 1, Subsampling::Yuv420, 8);
        assert_eq!((p.y.len(), p.cb.len(), p.chroma_width), (3, 2, 2));
        let (_, cb_r, cr_r) = ycbcr(255, 0, 0);
        let (_, cb_b, cr_b) = ycbcr(0, 0, 255);
        assert_eq!(p.cb[0], ((cb_r + cb_b) / 2.0).round() as u16);
        assert_eq!(p.cr[0], ((cr_r + cr_b) / 2.0).round() as u16);
        let p10 = to_planes(&rgb, 3, 1, Subsampling::Yuv444, 10);
        assert_eq!(p10.cb.len(), 3);
        assert!(p10.y.iter().all(|&v| v <= 1023));
    }
}

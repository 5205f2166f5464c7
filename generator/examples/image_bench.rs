//! Image benchmark driver for benches/images/run.sh (not a test). Run it in release mode:
//! `cargo run --release -p qpage-generator --example image_bench`.
//!
//! - `QPAGE_BENCH_MODE=encode`: every PNG in `QPAGE_BENCH_IN` encoded to AVIF at each
//!   setting of `QPAGE_BENCH_SETTINGS` (comma-separated
//!   `[ravif:]quality:speed[:420|444[:8|10[:psy|psnr]]]`, omitted parts as the defaults;
//!   `ravif:` is ravif 0.13's 4:4:4 encoder for comparison), one thread,
//!   `QPAGE_BENCH_RUNS` times (median kept); files in `QPAGE_BENCH_OUT/<name>/`
//!   (`q75-s6-420-10-psy`), one CSV line per encode on stdout
//!   (`qpage,<name>,<image>,<pixels>,<bytes>,<seconds>`).
//! - `QPAGE_BENCH_MODE=rebuild`: every file in `QPAGE_BENCH_IN` processed with the default
//!   settings through the cache in `QPAGE_BENCH_CACHE` (a cold build when empty), then
//!   `QPAGE_BENCH_RUNS` rebuilds with a fresh cache handle each (a new build process).

use std::path::PathBuf;

use qpage_generator::images::{
    AvifOptions, ImageCache, ImageSettings, Subsampling, encode_avif, process_file,
};
use rayon::prelude::*;

#[derive(Clone, Copy)]
enum Encoder {
    /// The pipeline's encoder (`qpage_generator::images::encode_avif`).
    Qpage,
    /// ravif 0.13 as the pipeline used it before (10-bit 4:4:4), for comparison.
    Ravif,
}

/// `[ravif:]quality:speed[:420|444[:8|10[:psy|psnr]]]`, the rest as the defaults.
fn parse_setting(setting: &str) -> (Encoder, AvifOptions) {
    let (encoder, rest) = match setting.strip_prefix("ravif:") {
        Some(rest) => (Encoder::Ravif, rest),
        None => (Encoder::Qpage, setting),
    };
    let mut options = ImageSettings::default().avif_options();
    for (i, part) in rest.split(':').enumerate() {
        match (i, part) {
            (0, q) => options.quality = q.parse().expect("quality"),
            (1, s) => options.speed = s.parse().expect("speed"),
            (2, "420") => options.subsampling = Subsampling::Yuv420,
            (2, "444") => options.subsampling = Subsampling::Yuv444,
            (3, "8") => options.ten_bit = false,
            (3, "10") => options.ten_bit = true,
            (4, "psy") => options.psychovisual = true,
            (4, "psnr") => options.psychovisual = false,
            _ => panic!("bad setting {setting}: [ravif:]Q:S[:420|444[:8|10[:psy|psnr]]]"),
        }
    }
    (encoder, options)
}

/// The folder / CSV name of a setting, e.g. `q75-s6-420-10-psy` or `ravif-q75-s6-444-10`.
fn setting_name(encoder: Encoder, o: &AvifOptions) -> String {
    let sub = match o.subsampling {
        Subsampling::Yuv420 => "420",
        Subsampling::Yuv444 => "444",
    };
    let depth = if o.ten_bit { 10 } else { 8 };
    match encoder {
        Encoder::Qpage => {
            let tune = if o.psychovisual { "psy" } else { "psnr" };
            format!("q{}-s{}-{sub}-{depth}-{tune}", o.quality, o.speed)
        }
        Encoder::Ravif => format!("ravif-q{}-s{}-444-{depth}", o.quality, o.speed),
    }
}

fn ravif_444(img: &image::DynamicImage, o: &AvifOptions) -> Vec<u8> {
    let rgb = img.to_rgb8();
    let px: Vec<ravif::RGB8> = rgb
        .pixels()
        .map(|p| ravif::RGB8::new(p.0[0], p.0[1], p.0[2]))
        .collect();
    let depth = if o.ten_bit {
        ravif::BitDepth::Ten
    } else {
        ravif::BitDepth::Eight
    };
    ravif::Encoder::new()
        .with_quality(o.quality)
        .with_speed(o.speed)
        .with_bit_depth(depth)
        .with_num_threads(Some(1))
        .encode_rgb(ravif::Img::new(
            &px[..],
            rgb.width() as usize,
            rgb.height() as usize,
        ))
        .unwrap()
        .avif_file
}

fn main() {
    use std::time::Instant;
    let mode =
        std::env::var("QPAGE_BENCH_MODE").expect("set QPAGE_BENCH_MODE to encode or rebuild");
    let var = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k} not set"));
    let runs: usize = std::env::var("QPAGE_BENCH_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(var("QPAGE_BENCH_IN"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    inputs.sort();
    let median = |mut v: Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    match mode.as_str() {
        "encode" => {
            let out = PathBuf::from(var("QPAGE_BENCH_OUT"));
            for setting in var("QPAGE_BENCH_SETTINGS").split(',') {
                let (encoder, options) = parse_setting(setting);
                let dir = out.join(setting_name(encoder, &options));
                std::fs::create_dir_all(&dir).unwrap();
                for input in &inputs {
                    let img = image::open(input).unwrap();
                    let img = match img.color().has_alpha() {
                        true => image::DynamicImage::ImageRgba8(img.to_rgba8()),
                        false => image::DynamicImage::ImageRgb8(img.to_rgb8()),
                    };
                    let mut times = Vec::new();
                    let mut bytes = Vec::new();
                    for _ in 0..runs {
                        let t = Instant::now();
                        bytes = match encoder {
                            Encoder::Qpage => encode_avif(&img, &options).unwrap(),
                            Encoder::Ravif => ravif_444(&img, &options),
                        };
                        times.push(t.elapsed().as_secs_f64());
                    }
                    let name = input.file_stem().unwrap().to_string_lossy().to_string();
                    std::fs::write(dir.join(format!("{name}.avif")), &bytes).unwrap();
                    println!(
                        "qpage,{},{name},{},{},{:.4}",
                        setting_name(encoder, &options),
                        img.width() * img.height(),
                        bytes.len(),
                        median(times)
                    );
                }
            }
        }
        "rebuild" => {
            let cache_dir = PathBuf::from(var("QPAGE_BENCH_CACHE"));
            let settings = ImageSettings::default();
            let build = || {
                let cache = ImageCache::open(&cache_dir).unwrap();
                let t = Instant::now();
                let total: u64 = inputs
                    .par_iter()
                    .map(|p| {
                        let r = process_file(&cache, &settings, p).unwrap();
                        r.variants.iter().map(|v| v.size).sum::<u64>()
                    })
                    .sum();
                (t.elapsed().as_secs_f64(), cache.stats(), total)
            };
            let (cold, st, total) = build();
            println!(
                "rebuild,first,{},{cold:.3},{},{},{},{}",
                inputs.len(),
                st.decodes,
                st.encodes(),
                st.hits,
                total
            );
            let mut warm = Vec::new();
            for _ in 0..runs {
                let (t, st, _) = build();
                assert_eq!(st.encodes(), 0);
                assert_eq!(st.decodes, 0);
                println!(
                    "rebuild,warm,{},{t:.4},{},{},{}",
                    inputs.len(),
                    st.decodes,
                    st.encodes(),
                    st.hits
                );
                warm.push(t);
            }
            println!("rebuild,median_warm,{},{:.4}", inputs.len(), median(warm));
        }
        other => panic!("unknown QPAGE_BENCH_MODE {other}"),
    }
}

//! Image benchmark driver for benches/images/run.sh (not a test). Run it in release mode:
//! `cargo run --release -p qpage-generator --example image_bench`.
//!
//! - `QPAGE_BENCH_MODE=encode`: every PNG in `QPAGE_BENCH_IN` encoded to AVIF at each
//!   `quality:speed` of `QPAGE_BENCH_SETTINGS`, one thread, `QPAGE_BENCH_RUNS` times
//!   (median kept); files in `QPAGE_BENCH_OUT/q<Q>-s<S>/`, one CSV line per encode on stdout
//!   (`qpage,<quality>,<speed>,<name>,<pixels>,<bytes>,<seconds>`).
//! - `QPAGE_BENCH_MODE=rebuild`: every file in `QPAGE_BENCH_IN` processed with the default
//!   settings through the cache in `QPAGE_BENCH_CACHE` (a cold build when empty), then
//!   `QPAGE_BENCH_RUNS` rebuilds with a fresh cache handle each (a new build process).

use std::path::PathBuf;

use qpage_generator::images::{ImageCache, ImageSettings, process_file};
use rayon::prelude::*;

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
                let (q, s) = setting.split_once(':').unwrap();
                let (q, s): (f32, u8) = (q.parse().unwrap(), s.parse().unwrap());
                let dir = out.join(format!("q{q}-s{s}"));
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
                        bytes = qpage_generator::images::encode_avif(&img, q, s).unwrap();
                        times.push(t.elapsed().as_secs_f64());
                    }
                    let name = input.file_stem().unwrap().to_string_lossy().to_string();
                    std::fs::write(dir.join(format!("{name}.avif")), &bytes).unwrap();
                    println!(
                        "qpage,{q},{s},{name},{},{},{:.4}",
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

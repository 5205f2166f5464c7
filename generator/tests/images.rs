//! The image pipeline: variants, formats, orientation, metadata, never-larger, cache,
//! bad input, markup. Fixtures: tests/fixtures/images (see make.sh there).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use qpage_generator::images::{
    AvifSubsampling, EncodeBudget, Format, ImageCache, ImageError, ImageSettings, PictureOptions,
    Processed, picture_html, process, process_file,
};
use rayon::prelude::*;
use sha2::{Digest, Sha256};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/images")
        .join(name)
}

/// Small, fast settings: test images are at most 300 px wide.
fn settings() -> ImageSettings {
    ImageSettings {
        widths: vec![120, 240, 1600],
        avif_speed: 10,
        ..ImageSettings::default()
    }
}

fn new_cache() -> (tempfile::TempDir, ImageCache) {
    let dir = tempfile::tempdir().unwrap();
    let cache = ImageCache::open(dir.path().join("cache")).unwrap();
    (dir, cache)
}

fn run(cache: &ImageCache, name: &str) -> Processed {
    process_file(cache, &settings(), &fixture(name)).unwrap()
}

fn is_avif(b: &[u8]) -> bool {
    b.len() > 12 && &b[4..8] == b"ftyp" && (&b[8..12] == b"avif" || &b[8..12] == b"avis")
}
fn is_jpeg(b: &[u8]) -> bool {
    b.starts_with(&[0xFF, 0xD8, 0xFF])
}
fn is_png(b: &[u8]) -> bool {
    b.starts_with(b"\x89PNG\r\n\x1a\n")
}

/// Width and height from the AVIF `ispe` property.
fn avif_dims(b: &[u8]) -> (u32, u32) {
    let i = b.windows(4).position(|w| w == b"ispe").expect("ispe box");
    let u = |o: usize| u32::from_be_bytes(b[o..o + 4].try_into().unwrap());
    (u(i + 8), u(i + 12))
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// No EXIF, XMP, GPS or camera tags from the fixtures in any output.
fn assert_no_metadata(bytes: &[u8], what: &str) {
    for needle in [
        &b"Exif\0\0"[..],
        b"QpageTestCam",
        b"Secret-Model-X",
        b"Jane-Doe-Secret",
        b"eXIf",
        b"tEXt",
        b"zTXt",
        b"iTXt",
        b"http://ns.adobe.com/xap",
    ] {
        assert!(
            !contains(bytes, needle),
            "{what} still contains {:?}",
            String::from_utf8_lossy(needle)
        );
    }
}

/// Checks every variant: bytes exist with the recorded hash and size, format by magic
/// bytes, dimensions by decoding (or AVIF's ispe), no metadata, content-hashed name, and
/// every AVIF smaller than the fallback at its width.
fn check_variants(p: &Processed, stem: &str) {
    assert!(!p.variants.is_empty());
    for v in &p.variants {
        let bytes = v.read().unwrap();
        assert_eq!(bytes.len() as u64, v.size, "{}", v.file_name);
        assert_eq!(hex::encode(Sha256::digest(&bytes)), v.sha256);
        assert_eq!(
            v.file_name,
            format!(
                "{stem}-{}-{}.{}",
                &v.sha256[..8],
                v.width,
                v.format.extension()
            )
        );
        let expected_h = ((u64::from(p.height) * u64::from(v.width) + u64::from(p.width) / 2)
            / u64::from(p.width)) as u32;
        assert_eq!(v.height, expected_h.max(1), "{}", v.file_name);
        match v.format {
            Format::Avif => {
                assert!(is_avif(&bytes), "{} is not AVIF", v.file_name);
                assert_eq!(avif_dims(&bytes), (v.width, v.height));
                let fallback = p
                    .fallbacks()
                    .find(|f| f.width == v.width)
                    .expect("a fallback at every width");
                assert!(v.size < fallback.size, "AVIF kept though not smaller");
            }
            Format::Jpeg | Format::Png => {
                if v.format == Format::Jpeg {
                    assert!(is_jpeg(&bytes), "{} is not JPEG", v.file_name);
                } else {
                    assert!(is_png(&bytes), "{} is not PNG", v.file_name);
                }
                let img = image::load_from_memory(&bytes).unwrap();
                assert_eq!((img.width(), img.height()), (v.width, v.height));
            }
            other => panic!("unexpected output format {other:?}"),
        }
        assert_no_metadata(&bytes, &v.file_name);
        assert!(v.width <= p.width, "upscaled: {}", v.file_name);
    }
    // Exactly one fallback per width, sorted, the widest is fallback().
    let widths: Vec<u32> = p.fallbacks().map(|v| v.width).collect();
    let mut sorted = widths.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(widths, sorted);
    assert_eq!(p.fallback().width, *widths.last().unwrap());
}

#[test]
fn settings_defaults_unknown_keys_and_ranges() {
    let empty = serde_json::Map::new();
    let s = ImageSettings::from_config(&empty).unwrap();
    assert_eq!(s, ImageSettings::default());
    assert_eq!(s.widths, vec![480, 960, 1600]);

    let table: serde_json::Value =
        serde_json::json!({"widths": [320, 640], "avif_quality": 70, "placeholder": true});
    let s = ImageSettings::from_config(table.as_object().unwrap()).unwrap();
    assert_eq!(s.widths, vec![320, 640]);
    assert_eq!(s.avif_quality, 70.0);
    assert!(s.placeholder);
    assert_eq!(s.avif_speed, ImageSettings::default().avif_speed);
    let table = serde_json::json!({"avif_subsampling": "4:4:4", "avif_bit_depth": 8});
    let s = ImageSettings::from_config(table.as_object().unwrap()).unwrap();
    assert_eq!(s.avif_subsampling, AvifSubsampling::Yuv444);
    assert_eq!(s.avif_bit_depth, 8);

    let bad = serde_json::json!({"avif_qualty": 70});
    let err = ImageSettings::from_config(bad.as_object().unwrap()).unwrap_err();
    assert!(matches!(err, ImageError::Settings { .. }));
    assert!(err.to_string().contains("avif_qualty"), "{err}");

    for (key, value) in [
        ("avif_quality", serde_json::json!(0)),
        ("avif_quality", serde_json::json!(101)),
        ("avif_speed", serde_json::json!(11)),
        ("avif_subsampling", serde_json::json!("4:2:2")),
        ("avif_bit_depth", serde_json::json!(12)),
        ("jpeg_quality", serde_json::json!(0)),
        ("png_level", serde_json::json!(7)),
        ("widths", serde_json::json!([])),
        ("widths", serde_json::json!([0])),
        ("max_pixels", serde_json::json!(0)),
    ] {
        let mut t = serde_json::Map::new();
        t.insert(key.into(), value.clone());
        let err = ImageSettings::from_config(&t).unwrap_err();
        assert!(err.to_string().contains(key), "{key}={value}: {err}");
    }
}

#[test]
fn target_widths_never_upscale() {
    let s = ImageSettings::default();
    assert_eq!(s.target_widths(4000), vec![480, 960, 1600]);
    assert_eq!(s.target_widths(1600), vec![480, 960, 1600]);
    assert_eq!(s.target_widths(1200), vec![480, 960, 1200]);
    assert_eq!(s.target_widths(960), vec![480, 960]);
    assert_eq!(s.target_widths(300), vec![300]);
    assert_eq!(s.target_widths(1), vec![1]);
}

#[test]
fn jpeg_photo_variants_formats_dimensions_and_no_metadata() {
    let (_d, cache) = new_cache();
    let p = run(&cache, "photo.jpg");
    assert_eq!((p.width, p.height), (300, 200));
    assert!(!p.alpha);
    let widths: Vec<u32> = p.fallbacks().map(|v| v.width).collect();
    assert_eq!(
        widths,
        vec![120, 240, 300],
        "1600 dropped, original width added"
    );
    assert!(p.fallbacks().all(|v| v.format == Format::Jpeg));
    // A real photograph: AVIF wins at every width.
    let avif_widths: Vec<u32> = p.avifs().map(|v| v.width).collect();
    assert_eq!(avif_widths, vec![120, 240, 300]);
    check_variants(&p, "photo");
    assert_eq!((p.fallback().width, p.fallback().height), (300, 200));
    let original = std::fs::metadata(fixture("photo.jpg")).unwrap().len();
    assert!(p.variants.iter().all(|v| v.size < original));
    assert!(p.placeholder.is_none());
}

#[test]
fn exif_orientation_is_applied() {
    let (_d, cache) = new_cache();
    let p = run(&cache, "rotated.jpg");
    // Stored 64x32 with orientation 6: displayed 32x64.
    assert_eq!((p.width, p.height), (32, 64));
    check_variants(&p, "rotated");
    let img = image::load_from_memory(&p.fallback().read().unwrap())
        .unwrap()
        .to_rgb8();
    assert_eq!(img.dimensions(), (32, 64));
    let top = img.get_pixel(16, 8).0;
    let bottom = img.get_pixel(16, 56).0;
    assert!(top[0] > 150 && top[2] < 100, "top should be red: {top:?}");
    assert!(
        bottom[2] > 150 && bottom[0] < 100,
        "bottom should be blue: {bottom:?}"
    );
}

#[test]
fn png_with_alpha_keeps_transparency_and_loses_metadata() {
    let (_d, cache) = new_cache();
    let p = run(&cache, "alpha.png");
    assert!(p.alpha);
    assert_eq!(p.width, 300);
    assert!(p.fallbacks().all(|v| v.format == Format::Png));
    check_variants(&p, "alpha");
    let img = image::load_from_memory(&p.fallback().read().unwrap())
        .unwrap()
        .to_rgba8();
    assert!(
        img.pixels().any(|px| px.0[3] == 0),
        "transparent pixels kept"
    );
    assert!(img.pixels().any(|px| px.0[3] == 255), "opaque pixels kept");
}

#[test]
fn gif_first_frame_and_webp_decode() {
    let (_d, cache) = new_cache();
    let gif = run(&cache, "anim.gif");
    assert_eq!((gif.width, gif.height), (40, 30));
    check_variants(&gif, "anim");
    let img = image::load_from_memory(&gif.fallback().read().unwrap())
        .unwrap()
        .to_rgb8();
    let px = img.get_pixel(20, 15).0;
    assert!(px[0] > 200 && px[2] < 60, "first frame is red: {px:?}");

    let webp = run(&cache, "photo.webp");
    assert_eq!((webp.width, webp.height), (240, 160));
    assert!(webp.fallbacks().all(|v| v.format == Format::Jpeg));
    check_variants(&webp, "photo");
}

#[test]
fn never_larger_than_the_original_at_the_same_size() {
    let (_d, cache) = new_cache();
    let original = std::fs::read(fixture("lowq.jpg")).unwrap();
    let p = run(&cache, "lowq.jpg");
    assert_eq!(p.width, 240);
    check_variants(&p, "lowq");
    let full = p.fallback();
    assert_eq!(full.width, 240);
    assert!(
        full.size < original.len() as u64,
        "full-size fallback {} >= original {}",
        full.size,
        original.len()
    );
    // A q=25 original re-encoded at q=80 would be larger: the original's scan data is
    // used instead, with its EXIF segment (GPS, camera) removed.
    let bytes = full.read().unwrap();
    let sos = |b: &[u8]| b.windows(2).position(|w| w == [0xFF, 0xDA]).unwrap();
    assert_eq!(&bytes[sos(&bytes)..], &original[sos(&original)..]);
    assert!(contains(&original, b"QpageTestCam"));
    // And the re-encode really would have been larger (the rule did something).
    let reencoded = image::load_from_memory(&original).unwrap();
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 80)
        .encode_image(&reencoded)
        .unwrap();
    assert!(out.len() > original.len());
}

#[test]
fn rebuild_with_no_change_encodes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = settings();
    let names = ["photo.jpg", "alpha.png", "rotated.jpg"];
    let first: Vec<Processed> = {
        let cache = ImageCache::open(dir.path()).unwrap();
        let out: Vec<Processed> = names
            .iter()
            .map(|n| process_file(&cache, &s, &fixture(n)).unwrap())
            .collect();
        let st = cache.stats();
        assert_eq!(st.hits, 0);
        assert_eq!(st.decodes, 3);
        assert_eq!(
            st.misses,
            3 + 3 + 1,
            "photo: 3 widths; alpha: 3; rotated: 1"
        );
        assert_eq!(st.fallback_encodes, 7);
        assert_eq!(st.avif_encodes, 7);
        out
    };
    // A new build (a new cache handle on the same folder): nothing decoded or encoded.
    let cache = ImageCache::open(dir.path()).unwrap();
    let second: Vec<Processed> = names
        .iter()
        .map(|n| process_file(&cache, &s, &fixture(n)).unwrap())
        .collect();
    let st = cache.stats();
    assert_eq!(st.encodes(), 0, "{st:?}");
    assert_eq!(st.decodes, 0, "{st:?}");
    assert_eq!(st.misses, 0, "{st:?}");
    assert_eq!(st.hits, 7, "{st:?}");
    assert_eq!(first, second);

    // Another parameter: misses again (key = source hash + every parameter).
    let other = ImageSettings {
        jpeg_quality: 60,
        ..s.clone()
    };
    let p = process_file(&cache, &other, &fixture("photo.jpg")).unwrap();
    let st2 = cache.stats();
    assert_eq!(st2.misses, 3);
    assert_eq!(st2.decodes, 1);
    assert_ne!(p.fallback().sha256, first[0].fallback().sha256);

    // Adding a width encodes only that width.
    let more = ImageSettings {
        widths: vec![120, 180, 240, 1600],
        ..s.clone()
    };
    let before = cache.stats();
    let p = process_file(&cache, &more, &fixture("photo.jpg")).unwrap();
    let after = cache.stats();
    assert_eq!(after.misses - before.misses, 1);
    assert_eq!(after.fallback_encodes - before.fallback_encodes, 1);
    assert_eq!(p.fallbacks().count(), 4);

    // A cache whose blob vanished recomputes instead of pointing at nothing.
    std::fs::remove_file(&first[1].fallback().path).unwrap();
    let before = cache.stats();
    let again = process_file(&cache, &s, &fixture("alpha.png")).unwrap();
    assert_eq!(cache.stats().misses - before.misses, 1);
    assert!(again.fallback().path.exists());
    assert_eq!(again, first[1]);
}

#[test]
fn shared_cache_encodes_each_image_once_across_sites() {
    let (_d, cache) = new_cache();
    let s = settings();
    // Two "sites" x three references each to the same photo, all at once.
    (0..6).into_par_iter().for_each(|_| {
        process_file(&cache, &s, &fixture("photo.jpg")).unwrap();
    });
    let st = cache.stats();
    assert_eq!(st.decodes, 1, "{st:?}");
    assert_eq!(st.avif_encodes, 3, "{st:?}");
    assert_eq!(st.hits, 15, "{st:?}");
}

#[test]
fn output_is_deterministic() {
    let (_a, c1) = new_cache();
    let (_b, c2) = new_cache();
    let p1 = run(&c1, "photo.jpg");
    let p2 = run(&c2, "photo.jpg");
    let names = |p: &Processed| {
        p.variants
            .iter()
            .map(|v| v.file_name.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&p1), names(&p2));
}

#[test]
fn encode_budget_bounds_concurrency_by_memory() {
    // A budget that fits one photo encode at a time, with four slots: memory decides.
    let one = EncodeBudget::estimate_avif(300, 200);
    let dir = tempfile::tempdir().unwrap();
    let cache =
        ImageCache::open_with_budget(dir.path(), EncodeBudget::new(one + one / 2, 4)).unwrap();
    let s = settings();
    ["photo.jpg", "lowq.jpg", "photo.webp", "alpha.png"]
        .par_iter()
        .for_each(|n| {
            process_file(&cache, &s, &fixture(n)).unwrap();
        });
    let (bytes, running) = cache.budget().peaks();
    assert!(bytes <= one + one / 2, "{bytes} over budget");
    assert!(running >= 1);

    // The semaphore itself: with room for two, three threads never hold more than two.
    let budget = EncodeBudget::new(200, 8);
    let now = AtomicUsize::new(0);
    let max = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..6 {
            scope.spawn(|| {
                for _ in 0..20 {
                    let _p = budget.acquire(100);
                    let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                    max.fetch_max(n, Ordering::SeqCst);
                    std::thread::yield_now();
                    now.fetch_sub(1, Ordering::SeqCst);
                }
            });
        }
    });
    assert!(max.load(Ordering::SeqCst) <= 2);
    assert_eq!(budget.peaks().0, 200);
    // An encode larger than the whole budget still runs (alone).
    drop(budget.acquire(10_000));
}

fn expect_err(name: &str, bytes: &[u8], s: &ImageSettings) -> ImageError {
    let (_d, cache) = new_cache();
    let path = Path::new("content/posts").join(name);
    let err = process(&cache, s, &path, bytes).unwrap_err();
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "message names the image: {err}"
    );
    assert!(!err.help().is_empty());
    let diag = err.to_diagnostic(Some(Path::new("content/posts/page.md")));
    assert_eq!(diag.file, Path::new("content/posts/page.md"));
    assert!(diag.message.contains(name));
    assert_eq!(cache.stats().encodes(), 0);
    err
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let mut body = kind.to_vec();
    body.extend_from_slice(data);
    out.extend_from_slice(&body);
    out.extend_from_slice(&crc32(&body).to_be_bytes());
}

/// A PNG header declaring `w` x `h` grey pixels, with a tiny IDAT: a decompression bomb's
/// shape (the pixels would be allocated before the data is found missing).
fn png_bomb(w: u32, h: u32) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]);
    png_chunk(&mut out, b"IHDR", &ihdr);
    png_chunk(
        &mut out,
        b"IDAT",
        &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
    );
    png_chunk(&mut out, b"IEND", &[]);
    out
}

#[test]
fn every_bad_input_gives_a_clear_error() {
    let s = settings();

    // Missing file.
    let (_d, cache) = new_cache();
    let missing = fixture("no-such-photo.jpg");
    let err = process_file(&cache, &s, &missing).unwrap_err();
    assert!(matches!(err, ImageError::Missing { .. }), "{err:?}");
    assert!(err.to_string().contains("no-such-photo.jpg"));

    // Truncated JPEG and PNG.
    let jpeg = std::fs::read(fixture("photo.jpg")).unwrap();
    let err = expect_err("cut.jpg", &jpeg[..jpeg.len() / 2], &s);
    assert!(matches!(err, ImageError::Corrupt { .. }), "{err:?}");
    assert!(err.to_string().contains("truncated or corrupt"));
    let png = std::fs::read(fixture("alpha.png")).unwrap();
    let err = expect_err("cut.png", &png[..png.len() / 2], &s);
    assert!(matches!(err, ImageError::Corrupt { .. }), "{err:?}");

    // Corrupt data behind a valid signature.
    let mut garbage = b"\x89PNG\r\n\x1a\n".to_vec();
    garbage.extend(std::iter::repeat_n(0x5Au8, 200));
    let err = expect_err("garbage.png", &garbage, &s);
    assert!(matches!(err, ImageError::Corrupt { .. }), "{err:?}");
    let mut bad_jpeg = jpeg.clone();
    let sos = bad_jpeg.windows(2).position(|w| w == [0xFF, 0xDB]).unwrap();
    bad_jpeg.truncate(sos + 4);
    bad_jpeg.extend_from_slice(&[0xFF, 0xD9]);
    let err = expect_err("mangled.jpg", &bad_jpeg, &s);
    assert!(matches!(err, ImageError::Corrupt { .. }), "{err:?}");

    // Unsupported formats, recognised or not.
    let err = expect_err("logo.svg", b"<svg xmlns='http://www.w3.org/2000/svg'/>", &s);
    assert!(matches!(err, ImageError::Unsupported { .. }), "{err:?}");
    assert!(err.to_string().contains("SVG"), "{err}");
    let err = expect_err("scan.tiff", b"II*\0\x08\0\0\0\0\0\0\0\0\0\0\0", &s);
    assert!(matches!(err, ImageError::Unsupported { .. }), "{err:?}");
    assert!(err.to_string().contains("Tiff"), "{err}");
    let err = expect_err("notes.jpg", b"just some text, not a picture", &s);
    assert!(matches!(err, ImageError::Unsupported { .. }), "{err:?}");
    let err = expect_err("empty.png", b"", &s);
    assert!(err.to_string().contains("empty"), "{err}");

    // Decompression bombs: refused from the header, before any pixel is allocated.
    let err = expect_err("bomb.png", &png_bomb(100_000, 100_000), &s);
    match &err {
        ImageError::TooLarge { width, height, .. } => {
            assert_eq!((*width, *height), (100_000, 100_000))
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    assert!(err.to_string().contains("decompression bomb"));
    let small_limit = ImageSettings {
        max_pixels: 10_000,
        ..s.clone()
    };
    let err = expect_err("photo.jpg", &jpeg, &small_limit);
    assert!(
        matches!(
            err,
            ImageError::TooLarge {
                width: 300,
                height: 200,
                max_pixels: 10_000,
                ..
            }
        ),
        "{err:?}"
    );
    // Invalid settings are refused before anything is read.
    let bad = ImageSettings {
        avif_quality: 0.0,
        ..s.clone()
    };
    let (_d, cache) = new_cache();
    let err = process(&cache, &bad, Path::new("photo.jpg"), &jpeg).unwrap_err();
    assert!(matches!(err, ImageError::Settings { .. }), "{err:?}");
    assert!(err.to_string().contains("avif_quality"), "{err}");
}

#[test]
fn picture_markup_attributes_and_escaping() {
    let (_d, cache) = new_cache();
    let p = run(&cache, "photo.jpg");
    let html = picture_html(
        &p,
        &PictureOptions {
            alt: Some(r#"A "cup" <of> coffee & 'cake'"#),
            url_prefix: "/img/",
            attrs: vec![
                ("class", "hero \"x\""),
                ("onclick", "alert(1)"),
                ("src", "evil"),
            ],
            ..Default::default()
        },
    );
    assert!(
        html.starts_with("<picture><source type=\"image/avif\" srcset=\""),
        "{html}"
    );
    assert!(html.ends_with("></picture>"));
    let avif: Vec<&str> = p.avifs().map(|v| v.file_name.as_str()).collect();
    let srcset = avif
        .iter()
        .zip([120, 240, 300])
        .map(|(f, w)| format!("/img/{f} {w}w"))
        .collect::<Vec<_>>()
        .join(", ");
    assert!(html.contains(&format!("srcset=\"{srcset}\"")), "{html}");
    assert!(html.contains(&format!("<img src=\"/img/{}\"", p.fallback().file_name)));
    assert!(html.contains(r#"width="300" height="200""#));
    assert!(html.contains(r#"sizes="(max-width: 300px) 100vw, 300px""#));
    assert!(
        html.contains(r#"alt="A &quot;cup&quot; &lt;of&gt; coffee &amp; &#39;cake&#39;""#),
        "{html}"
    );
    assert!(html.contains(r#"loading="lazy" decoding="async""#));
    assert!(html.contains(r#"class="hero &quot;x&quot;""#));
    assert!(!html.contains("onclick"));
    assert!(!html.contains("evil"));
    assert_eq!(html.matches("<img ").count(), 1);

    let eager = picture_html(
        &p,
        &PictureOptions {
            alt: Some(""),
            sizes: Some("50vw"),
            url_prefix: "https://cdn.example/a b,c/",
            eager: true,
            ..Default::default()
        },
    );
    assert!(
        eager.contains(r#"loading="eager" fetchpriority="high""#),
        "{eager}"
    );
    assert!(eager.contains(r#"sizes="50vw""#));
    assert!(eager.contains(r#"alt="""#));
    assert!(eager.contains("https://cdn.example/a%20b%2Cc/"), "{eager}");
    assert!(!eager.contains("loading=\"lazy\""));
}

#[test]
fn source_lists_fallback_where_avif_was_dropped() {
    // The GIF's flat colours: whatever the codecs do, each width's <source> candidate is
    // the smaller file, and every width is offered.
    let (_d, cache) = new_cache();
    let p = run(&cache, "anim.gif");
    let best = p.best_per_width();
    assert_eq!(best.len(), p.fallbacks().count());
    for b in &best {
        let f = p.fallbacks().find(|f| f.width == b.width).unwrap();
        assert!(b.size <= f.size);
    }
}

#[test]
fn placeholder_is_a_tiny_blurred_svg_and_cached() {
    let dir = tempfile::tempdir().unwrap();
    let s = ImageSettings {
        placeholder: true,
        ..settings()
    };
    let cache = ImageCache::open(dir.path()).unwrap();
    let p = process_file(&cache, &s, &fixture("photo.jpg")).unwrap();
    let uri = p.placeholder.clone().expect("placeholder");
    assert!(uri.starts_with("data:image/svg+xml,"), "{uri}");
    assert!(uri.contains("feGaussianBlur"));
    assert!(uri.contains("data:image/png;base64,"));
    assert!(uri.len() < 2000, "placeholder is {} bytes", uri.len());
    assert!(!uri.contains('"') && !uri.contains('<'));
    let html = picture_html(&p, &PictureOptions::default());
    assert!(
        html.contains(
            "style=\"background-size:cover;background-image:url(&quot;data:image/svg+xml,"
        )
    );

    let cache = ImageCache::open(dir.path()).unwrap();
    let again = process_file(&cache, &s, &fixture("photo.jpg")).unwrap();
    assert_eq!(again.placeholder.as_deref(), Some(uri.as_str()));
    assert_eq!(cache.stats().decodes, 0);
    assert_eq!(cache.stats().hits, 4);
}

/// The `av1C` property of an AVIF: (seq_profile, high_bitdepth, monochrome, subsampling x, y).
fn av1c(b: &[u8]) -> (u8, bool, bool, bool, bool) {
    let i = b.windows(4).position(|w| w == b"av1C").expect("av1C box") + 4;
    let bit = |byte: u8, n: u8| byte >> n & 1 == 1;
    (
        b[i + 1] >> 5,
        bit(b[i + 2], 6),
        bit(b[i + 2], 4),
        bit(b[i + 2], 3),
        bit(b[i + 2], 2),
    )
}

/// `avifdec` (Debian's libavif-bin; `QPAGE_AVIFDEC` overrides), the reference decoder.
fn avifdec() -> PathBuf {
    if let Some(p) = std::env::var_os("QPAGE_AVIFDEC") {
        return PathBuf::from(p);
    }
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("avifdec"))
            .find(|p| p.is_file())
    });
    found.expect(
        "avifdec not found: run `bash scripts/test.sh` (it installs libavif-bin) or \
         `apt-get install libavif-bin`, or set QPAGE_AVIFDEC",
    )
}

/// Decodes AVIF bytes with avifdec; RGB8 pixels.
fn decode_avif(bytes: &[u8]) -> image::RgbImage {
    let dir = tempfile::tempdir().unwrap();
    let (input, output) = (dir.path().join("in.avif"), dir.path().join("out.png"));
    std::fs::write(&input, bytes).unwrap();
    let status = std::process::Command::new(avifdec())
        .arg(&input)
        .arg(&output)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "avifdec refused the AVIF");
    image::open(&output).unwrap().to_rgb8()
}

#[test]
fn avif_subsampling_and_depth_decode_right_and_are_cache_parameters() {
    let original = image::open(fixture("photo.jpg")).unwrap().to_rgb8();
    let dir = tempfile::tempdir().unwrap();
    let cache = ImageCache::open(dir.path()).unwrap();
    let mut seen = Vec::new();
    for (sub, depth, profile) in [
        (AvifSubsampling::Yuv420, 10, 0),
        (AvifSubsampling::Yuv444, 10, 1),
        (AvifSubsampling::Yuv420, 8, 0),
    ] {
        let s = ImageSettings {
            avif_subsampling: sub,
            avif_bit_depth: depth,
            avif_quality: 80.0,
            ..settings()
        };
        let before = cache.stats();
        let p = process_file(&cache, &s, &fixture("photo.jpg")).unwrap();
        let after = cache.stats();
        // Each setting is its own cache entry: three widths encoded again.
        assert_eq!(
            after.avif_encodes - before.avif_encodes,
            3,
            "{sub:?} {depth}"
        );
        let full = p.avifs().find(|v| v.width == 300);
        let avif = full.expect("AVIF smaller than the JPEG").read().unwrap();
        let (seq_profile, high_bitdepth, mono, sx, sy) = av1c(&avif);
        assert_eq!(seq_profile, profile, "{sub:?}");
        assert_eq!(high_bitdepth, depth == 10);
        assert!(!mono);
        assert_eq!(
            (sx, sy),
            (
                sub == AvifSubsampling::Yuv420,
                sub == AvifSubsampling::Yuv420
            )
        );
        // The reference decoder reads it back as the photo: right size, colours in place
        // (a swapped or misplaced chroma plane would be far off).
        let decoded = decode_avif(&avif);
        assert_eq!(decoded.dimensions(), original.dimensions());
        let mut err = [0u64; 3];
        for (a, b) in decoded.pixels().zip(original.pixels()) {
            for ((e, x), y) in err.iter_mut().zip(a.0).zip(b.0) {
                *e += u64::from(x.abs_diff(y));
            }
        }
        let n = u64::from(original.width() * original.height());
        for (c, e) in err.iter().enumerate() {
            let mean = *e as f64 / n as f64;
            assert!(
                mean < 6.0,
                "{sub:?} {depth}-bit channel {c}: mean error {mean:.2}"
            );
        }
        assert!(
            !seen.contains(&avif),
            "{sub:?} {depth}: same bytes as another setting"
        );
        seen.push(avif);
    }
    // The same settings again: all hits.
    let before = cache.stats();
    let s = ImageSettings {
        avif_quality: 80.0,
        ..settings()
    };
    process_file(&cache, &s, &fixture("photo.jpg")).unwrap();
    assert_eq!(cache.stats().encodes() - before.encodes(), 0);
}

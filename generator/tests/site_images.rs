//! The image pipeline inside a whole build: originals from `static/` and page bundles
//! become `<picture>`s with published variants, metadata never reaches `dist/`, bad and
//! missing images are warnings naming the page, and the cache makes rebuilds (and other
//! sites) encode nothing.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use qpage_generator::images::ImageCache;
use qpage_generator::{BuildOptions, BuildReport, build, build_sites};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/images")
        .join(name)
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, bytes).expect("write");
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

const BASE_HTML: &str = r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{{ page.title }}</title>{{ page_head | safe }}</head><body><main>{% block main %}{{ page.content | safe }}{% endblock %}</main></body></html>"#;

/// A site with a JPEG carrying GPS/camera EXIF in static/, a PNG with alpha used from a
/// template through `image()`, a WebP, a truncated JPEG and a page bundle.
fn make_site(dir: &Path) {
    write(
        &dir.join("site.toml"),
        b"base_url = \"https://img.example\"\ntitle = \"Img\"\ntaxonomies = []\nminify = false\n\n[images]\nwidths = [120, 240]\navif_speed = 10\n",
    );
    write(&dir.join("templates/page.html"), BASE_HTML.as_bytes());
    write(
        &dir.join("templates/index.html"),
        BASE_HTML.replace("page.", "section.").as_bytes(),
    );
    write(
        &dir.join("templates/photo.html"),
        br#"<!DOCTYPE html><html lang="en"><head><title>{{ page.title }}</title></head><body><main>{{ image(src="/alpha.png", alt="Logo", sizes="50vw", eager=true) }}{{ image(src="/photo.webp", alt="Web photo", class="wide") }}</main></body></html>"#,
    );
    for (name, to) in [
        ("photo.jpg", "static/photo.jpg"),
        ("alpha.png", "static/alpha.png"),
        ("photo.webp", "static/photo.webp"),
        ("rotated.jpg", "content/post/rotated.jpg"),
    ] {
        let bytes = std::fs::read(fixture(name)).expect("fixture");
        write(&dir.join(to), &bytes);
    }
    let photo = std::fs::read(fixture("photo.jpg")).expect("fixture");
    write(&dir.join("static/broken.jpg"), &photo[..photo.len() / 3]);
    write(
        &dir.join("content/_index.md"),
        b"+++\ntitle = \"Home\"\n+++\nWelcome.\n",
    );
    write(
        &dir.join("content/post/index.md"),
        b"+++\ntitle = \"Post\"\n[extra]\nimage = \"/photo.jpg\"\n+++\n\n![A bench](rotated.jpg)\n\n![The shop](/photo.jpg)\n\n![gone](/missing.jpg)\n\n![broken](/broken.jpg)\n",
    );
    write(
        &dir.join("content/gallery.md"),
        b"+++\ntitle = \"Gallery\"\ntemplate = \"photo.html\"\n+++\n",
    );
}

fn build_site(dir: &Path, cache: Option<Arc<ImageCache>>) -> BuildReport {
    build(&BuildOptions {
        site_dir: dir.to_path_buf(),
        image_cache: cache,
        ..Default::default()
    })
    .unwrap_or_else(|e| panic!("build failed: {e}"))
}

fn read(dist: &Path, rel: &str) -> String {
    String::from_utf8(std::fs::read(dist.join(rel)).expect(rel)).expect("utf8")
}

/// Every `/img/...` URL in `html`.
fn variant_urls(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(i) = rest.find("/img/") {
        let tail = &rest[i..];
        let end = tail.find(['"', ' ', ',']).unwrap_or(tail.len());
        out.push(tail[..end].to_string());
        rest = &tail[end..];
    }
    out.sort();
    out.dedup();
    out
}

#[test]
fn images_become_pictures_with_published_metadata_free_variants() {
    let tmp = tempfile::tempdir().expect("tmp");
    let site = tmp.path().join("site");
    make_site(&site);
    let report = build_site(&site, None);
    let dist = site.join("dist");
    assert_eq!(report.images, 4, "jpg, png, webp and the bundle's jpg");
    assert!(report.image_encodes > 0);

    // The page bundle's relative image and the static one: <picture> with an AVIF source,
    // and width/height/alt on the <img>; the first image eager, the next lazy.
    let post = read(&dist, "post/index.html");
    assert_eq!(post.matches("<picture>").count(), 2, "{post}");
    assert!(
        post.contains(r#"<source type="image/avif" srcset="/img/rotated-"#),
        "{post}"
    );
    assert!(post.contains(r#"alt="A bench""#), "{post}");
    assert!(post.contains(r#"alt="The shop""#), "{post}");
    assert!(
        post.contains(r#"loading="eager" fetchpriority="high""#),
        "first image is the LCP candidate: {post}"
    );
    assert!(post.contains(r#"loading="lazy""#), "{post}");
    // rotated.jpg is stored sideways with an EXIF orientation: the <img> carries the
    // upright aspect ratio.
    let (stored_w, stored_h) = image::image_dimensions(fixture("rotated.jpg")).expect("dims");
    let pic = &post[post.find("/img/rotated-").expect("rotated picture")..];
    let attr = |name: &str| -> u32 {
        let at = pic.find(&format!(" {name}=\"")).expect(name) + name.len() + 3;
        pic[at..at + pic[at..].find('"').expect("quote")]
            .parse()
            .expect("number")
    };
    let (w, h) = (attr("width"), attr("height"));
    assert_eq!(w, stored_h.min(240), "never upscaled, upright width");
    let ratio = f64::from(w) / f64::from(h);
    let upright = f64::from(stored_h) / f64::from(stored_w);
    assert!(
        (ratio - upright).abs() < 0.02,
        "{w}x{h} vs upright {upright}"
    );
    // Missing and broken images keep their plain <img>.
    assert!(
        post.contains(r#"<img src="/missing.jpg" alt="gone""#),
        "{post}"
    );
    assert!(
        post.contains(r#"<img src="/broken.jpg" alt="broken""#),
        "{post}"
    );

    // Every variant URL is published, with the right magic bytes and no metadata.
    let urls = variant_urls(&post);
    assert!(urls.len() >= 4, "{urls:?}");
    for url in &urls {
        let bytes = std::fs::read(dist.join(url.trim_start_matches('/'))).expect(url);
        if url.ends_with(".avif") {
            assert_eq!(&bytes[4..8], b"ftyp", "{url}");
        } else {
            assert!(bytes.starts_with(&[0xFF, 0xD8, 0xFF]), "{url}");
        }
        assert!(!contains(&bytes, b"Exif\0\0"), "{url} carries EXIF");
    }

    // The JPEG original is still published at its URL, without its EXIF (GPS, camera);
    // the WebP original only as variants; the broken file as it was.
    let original = std::fs::read(fixture("photo.jpg")).expect("fixture");
    assert!(contains(&original, b"Exif\0\0"), "fixture has EXIF");
    let published = std::fs::read(dist.join("photo.jpg")).expect("photo.jpg");
    assert!(published.starts_with(&[0xFF, 0xD8, 0xFF]));
    for needle in [&b"Exif\0\0"[..], b"QpageTestCam", b"Secret-Model-X"] {
        assert!(!contains(&published, needle), "metadata leaked");
    }
    assert!(!dist.join("photo.webp").exists());
    assert!(dist.join("broken.jpg").exists());

    // og:image names the published file and its dimensions.
    assert!(
        post.contains(r#"<meta property="og:image" content="https://img.example/photo.jpg">"#),
        "{post}"
    );
    let (w, h) = image::image_dimensions(dist.join("photo.jpg")).expect("dims");
    assert!(
        post.contains(&format!(
            r#"<meta property="og:image:width" content="{w}"><meta property="og:image:height" content="{h}">"#
        )),
        "{post}"
    );

    // The image() template function: sizes, eager and class carried over.
    let gallery = read(&dist, "gallery/index.html");
    assert_eq!(gallery.matches("<picture>").count(), 2, "{gallery}");
    assert!(gallery.contains(r#"sizes="50vw""#), "{gallery}");
    assert!(gallery.contains(r#"alt="Logo""#));
    assert!(gallery.contains(r#"class="wide""#), "{gallery}");
    assert!(
        !gallery.contains("data-qp-sizes"),
        "marker consumed: {gallery}"
    );
    for url in variant_urls(&gallery) {
        assert!(dist.join(url.trim_start_matches('/')).is_file(), "{url}");
    }
    // The PNG with alpha keeps a PNG fallback.
    assert!(
        variant_urls(&gallery)
            .iter()
            .any(|u| u.starts_with("/img/alpha-") && u.ends_with(".png")),
        "{gallery}"
    );

    // Warnings: the missing image and the broken one, each naming the page.
    let warnings: Vec<String> = report.warnings.iter().map(|d| d.to_string()).collect();
    let missing = warnings
        .iter()
        .find(|w| w.contains("/missing.jpg"))
        .unwrap_or_else(|| panic!("no warning for the missing image: {warnings:?}"));
    assert!(missing.contains("content/post/index.md"), "{missing}");
    let broken = warnings
        .iter()
        .find(|w| w.contains("broken.jpg"))
        .unwrap_or_else(|| panic!("no warning for the broken image: {warnings:?}"));
    assert!(
        broken.contains("shown on content/post/index.md"),
        "{broken}"
    );

    // The sitemap lists the page's images.
    let sitemap = read(&dist, "sitemap.xml");
    assert!(
        sitemap.contains("<image:loc>https://img.example/img/rotated-"),
        "{sitemap}"
    );
}

#[test]
fn rebuilds_and_other_sites_encode_nothing() {
    let tmp = tempfile::tempdir().expect("tmp");
    let cache = Arc::new(ImageCache::open(tmp.path().join("cache")).expect("cache"));
    let a = tmp.path().join("a");
    make_site(&a);
    let first = build_site(&a, Some(Arc::clone(&cache)));
    assert!(first.image_encodes > 0);
    let before = read(&a.join("dist"), "post/index.html");

    let again = build_site(&a, Some(Arc::clone(&cache)));
    assert_eq!(again.image_encodes, 0, "a rebuild with no image change");
    assert_eq!(before, read(&a.join("dist"), "post/index.html"));

    // Another site with the same originals, sharing the cache.
    let b = tmp.path().join("b");
    make_site(&b);
    let other = build_site(&b, Some(Arc::clone(&cache)));
    assert_eq!(other.image_encodes, 0, "same photos on another site");

    // Changing one original re-encodes that one only.
    let png = std::fs::read(fixture("alpha.png")).expect("fixture");
    let mut img = image::load_from_memory(&png).expect("png").to_rgba8();
    img.put_pixel(0, 0, image::Rgba([1, 2, 3, 255]));
    img.save(b.join("static/alpha.png")).expect("save");
    let changed = build_site(&b, Some(Arc::clone(&cache)));
    assert!(changed.image_encodes > 0);
    assert!(
        changed.image_encodes < first.image_encodes,
        "{} encodes for one changed image, {} for all",
        changed.image_encodes,
        first.image_encodes
    );
}

#[test]
fn multi_site_builds_share_one_cache() {
    let tmp = tempfile::tempdir().expect("tmp");
    let sites = tmp.path().join("sites");
    make_site(&sites.join("one"));
    make_site(&sites.join("two"));
    let outcomes = build_sites(&sites, &BuildOptions::default(), &|_| {}).expect("sites");
    assert_eq!(outcomes.len(), 2);
    for o in &outcomes {
        let report = o.result.as_ref().expect("built");
        assert_eq!(report.images, 4);
        let post = read(&o.site_dir.join("dist"), "post/index.html");
        assert!(post.contains("<picture>"), "{post}");
    }
    assert!(sites.join(".qpage-cache/images").is_dir());
    assert!(
        !sites.join("one/.qpage-cache").exists(),
        "no per-site cache"
    );
}

//! `qpage new NAME`: a small working site to start from.

use std::path::Path;

use crate::error::Diagnostic;

const FILES: &[(&str, &str)] = &[
    (
        "site.toml",
        r#"base_url = "https://example.com"
title = "{title}"
description = "A new site made with qpage"
language = "en"
paginate_by = 10
taxonomies = ["tags", "categories"]

[[menus.main]]
name = "Home"
url = "/"
weight = 1

[[menus.main]]
name = "Blog"
url = "/blog/"
weight = 2

[[menus.main]]
name = "About"
url = "/about/"
weight = 3
"#,
    ),
    (
        "content/_index.md",
        "+++\ntitle = \"{title}\"\ndescription = \"Welcome to {title}\"\n+++\nWelcome! Edit `content/_index.md` to change this text.\n",
    ),
    (
        "content/about.md",
        "+++\ntitle = \"About\"\ndescription = \"About {title}\"\n+++\nWho we are and what we do.\n",
    ),
    (
        "content/blog/_index.md",
        "+++\ntitle = \"Blog\"\ndescription = \"News and notes\"\nsort_by = \"date\"\n+++\n",
    ),
    (
        "content/blog/hello-world.md",
        "+++\ntitle = \"Hello, world\"\ndescription = \"The first post of {title}\"\ndate = 2025-01-01\n[taxonomies]\ntags = [\"news\"]\ncategories = [\"general\"]\n+++\nThis is the first post. Write Markdown here.\n\n## Next steps\n\n- Edit `site.toml`\n- Add posts to `content/blog/`\n",
    ),
    ("static/.keep", ""),
    ("data/.keep", ""),
];

/// Creates a site in `dir`, which must not exist or be empty.
pub fn new_site(dir: &Path) -> Result<(), Diagnostic> {
    if dir.exists()
        && std::fs::read_dir(dir)
            .map_err(|e| Diagnostic::io(dir, &e))?
            .next()
            .is_some()
    {
        return Err(Diagnostic::file(dir, "folder exists and is not empty")
            .help("choose a new name, or empty the folder first"));
    }
    let title = dir
        .file_name()
        .map_or("My site".into(), |n| n.to_string_lossy().into_owned());
    for (rel, text) in FILES {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Diagnostic::io(parent, &e))?;
        }
        std::fs::write(&path, text.replace("{title}", &title))
            .map_err(|e| Diagnostic::io(&path, &e))?;
    }
    Ok(())
}

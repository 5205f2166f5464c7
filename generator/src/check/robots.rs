//! robots.txt as RFC 9309 reads it: groups by user agent, Allow/Disallow with `*` and
//! `$`, the longest match wins and Allow wins a tie.

/// A parsed robots.txt.
#[derive(Debug, Default)]
pub(crate) struct Robots {
    groups: Vec<Group>,
    /// `Sitemap:` URLs.
    pub sitemaps: Vec<String>,
}

#[derive(Debug, Default)]
struct Group {
    agents: Vec<String>,
    rules: Vec<(bool, String)>,
}

impl Robots {
    pub fn parse(text: &str) -> Robots {
        let mut r = Robots::default();
        let mut open = false; // the last group still takes user-agent lines
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("").trim();
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let key = key.trim().to_ascii_lowercase();
            let value = value.trim();
            match key.as_str() {
                "user-agent" => {
                    if !open {
                        r.groups.push(Group::default());
                        open = true;
                    }
                    if let Some(g) = r.groups.last_mut() {
                        g.agents.push(value.to_ascii_lowercase());
                    }
                }
                "allow" | "disallow" => {
                    open = false;
                    if let Some(g) = r.groups.last_mut()
                        && !value.is_empty()
                    {
                        g.rules.push((key == "allow", value.to_string()));
                    }
                }
                "sitemap" => r.sitemaps.push(value.to_string()),
                _ => {}
            }
        }
        r
    }

    /// The rule that blocks `path` (path and query) for `agent`, if any.
    pub fn blocked_by(&self, agent: &str, path: &str) -> Option<&str> {
        let agent = agent.to_ascii_lowercase();
        let pick = |name: &str| -> Vec<&Group> {
            self.groups
                .iter()
                .filter(|g| g.agents.iter().any(|a| a == name))
                .collect()
        };
        let mut groups = pick(&agent);
        if groups.is_empty() {
            groups = pick("*");
        }
        let mut best: Option<(usize, bool, &str)> = None;
        for (allow, pattern) in groups.iter().flat_map(|g| g.rules.iter()) {
            if matches(pattern, path) {
                let len = pattern.len();
                let better = match best {
                    None => true,
                    Some((l, a, _)) => len > l || (len == l && *allow && !a),
                };
                if better {
                    best = Some((len, *allow, pattern));
                }
            }
        }
        match best {
            Some((_, false, p)) => Some(p),
            _ => None,
        }
    }
}

/// Whether a robots.txt path pattern matches a path from its start.
fn matches(pattern: &str, path: &str) -> bool {
    let (pattern, anchored) = match pattern.strip_suffix('$') {
        Some(p) => (p, true),
        None => (pattern, false),
    };
    fn go(p: &[u8], s: &[u8], anchored: bool) -> bool {
        match p.split_first() {
            None => !anchored || s.is_empty(),
            Some((b'*', rest)) => (0..=s.len()).any(|i| go(rest, &s[i..], anchored)),
            Some((c, rest)) => s.first() == Some(c) && go(rest, &s[1..], anchored),
        }
    }
    go(pattern.as_bytes(), path.as_bytes(), anchored)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_and_precedence() {
        let r = Robots::parse(
            "User-agent: *\nDisallow: /private/\nAllow: /private/ok$\n\n\
             User-agent: GPTBot\nUser-agent: Other\nDisallow: /\n\
             Sitemap: https://x.test/sitemap.xml\n",
        );
        assert_eq!(r.blocked_by("*", "/private/a"), Some("/private/"));
        assert_eq!(r.blocked_by("Googlebot", "/private/a"), Some("/private/"));
        assert_eq!(r.blocked_by("*", "/private/ok"), None);
        assert_eq!(r.blocked_by("*", "/private/okay"), Some("/private/"));
        assert_eq!(r.blocked_by("*", "/public/"), None);
        assert_eq!(r.blocked_by("gptbot", "/public/"), Some("/"));
        assert_eq!(r.blocked_by("other", "/public/"), Some("/"));
        assert_eq!(r.sitemaps, vec!["https://x.test/sitemap.xml"]);
        assert!(matches("/*.pdf$", "/a/b.pdf"));
        assert!(!matches("/*.pdf$", "/a/b.pdf?x"));
        assert_eq!(
            Robots::parse("User-agent: *\nDisallow:\n").blocked_by("*", "/"),
            None
        );
    }
}

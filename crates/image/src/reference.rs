//! Image names (`[host[:port]/]path[:tag]`): a pure parser, no I/O.

use std::fmt;

use crate::error::{Error, Result};

/// A normalized image name: repository plus tag (default `latest`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImageName {
    pub repository: String,
    pub tag: String,
}

impl ImageName {
    pub fn parse(s: &str) -> Result<ImageName> {
        let bad = |reason: &str| Error::invalid("image name", format!("{s:?}: {reason}"));
        if s.is_empty() {
            return Err(bad("empty"));
        }
        if s.len() > 255 {
            return Err(bad("longer than 255 characters"));
        }
        if s.contains('@') {
            return Err(bad(
                "digests are not names; refer to the image by ID instead",
            ));
        }
        // A ':' after the last '/' starts the tag; one before it is a registry port.
        let last_slash = s.rfind('/').map_or(0, |i| i + 1);
        let (repo, tag) = match s[last_slash..].rfind(':') {
            Some(i) => (&s[..last_slash + i], &s[last_slash + i + 1..]),
            None => (s, "latest"),
        };
        // The limit holds for the stored form, `:latest` included.
        if repo.len() + 1 + tag.len() > 255 {
            return Err(bad(
                "longer than 255 characters with its tag (`:latest` when none is given)",
            ));
        }
        if !valid_tag(tag) {
            return Err(bad(
                "a tag is 1-128 of [A-Za-z0-9_.-] and does not start with . or -",
            ));
        }
        let mut parts = repo.split('/').peekable();
        let mut first = true;
        while let Some(part) = parts.next() {
            let is_host = first
                && parts.peek().is_some()
                && (part.contains('.') || part.contains(':') || part == "localhost");
            let ok = if is_host {
                valid_host(part)
            } else {
                valid_component(part)
            };
            if !ok {
                return Err(bad(
                    "path components are lowercase letters, digits and single separators (. _ __ -)",
                ));
            }
            first = false;
        }
        Ok(ImageName {
            repository: repo.to_owned(),
            tag: tag.to_owned(),
        })
    }
}

impl fmt::Display for ImageName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.repository, self.tag)
    }
}

fn valid_tag(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 128
        && !t.starts_with(['.', '-'])
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() || !b[0].is_ascii_alphanumeric() || !b[b.len() - 1].is_ascii_alphanumeric() {
        return false;
    }
    let mut prev_sep = 0usize;
    for &ch in b {
        if ch.is_ascii_lowercase() || ch.is_ascii_digit() {
            prev_sep = 0;
        } else if matches!(ch, b'.' | b'_' | b'-') {
            prev_sep += 1;
            // Allow "__" and runs of '-', as the distribution grammar does.
            if prev_sep > 1 && ch != b'-' && ch != b'_' {
                return false;
            }
        } else {
            return false;
        }
    }
    true
}

fn valid_host(h: &str) -> bool {
    let (host, port) = match h.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (h, None),
    };
    let host_ok = !host.is_empty()
        && host
            .split('.')
            .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
    host_ok
        && port
            .is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> String {
        ImageName::parse(s)
            .map(|n| n.to_string())
            .unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn defaults_tag_to_latest() {
        assert_eq!(ok("demo"), "demo:latest");
        assert_eq!(ok("org/app:1.0"), "org/app:1.0");
        assert_eq!(ok("localhost:5000/app"), "localhost:5000/app:latest");
        assert_eq!(
            ok("registry.example/a/b_c:v2-rc.1"),
            "registry.example/a/b_c:v2-rc.1"
        );
    }

    #[test]
    fn rejects_bad_names() {
        for s in [
            "",
            "Demo",
            "a//b",
            "/abs",
            "a/../b",
            "..",
            "a:",
            "a:-x",
            "x@sha256:00",
            "a b",
            "a/b:c:d",
            "café",
        ] {
            assert!(ImageName::parse(s).is_err(), "{s:?} should be refused");
        }
    }

    #[test]
    fn length_limit_counts_the_default_tag() {
        let name = "a".repeat(248);
        assert_eq!(ok(&name).len(), 255);
        assert!(ImageName::parse(&"a".repeat(249)).is_err());
        assert!(ImageName::parse(&format!("{}:v", "a".repeat(254))).is_err());
        for s in ["a".repeat(249), "a".repeat(300)] {
            if let Ok(n) = ImageName::parse(&s) {
                assert!(n.to_string().len() <= 255);
            }
        }
    }
}

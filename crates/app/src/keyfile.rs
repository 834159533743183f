//! The key-file format of desktop entries and Flatpak's `metadata`, read
//! the way GLib's `GKeyFile` reads it, which is what the host and Flatpak
//! act on: lines, `[Group]` headers, `#` comments, `Key[locale] = value`
//! with spaces around `=` ignored, and no line continuation.
//!
//! Written here because the crates at hand differ from GLib where it
//! matters (freedesktop_entry_parser joins lines at any backslash, as
//! systemd does; freedesktop-desktop-entry needs gettext), and a parser
//! that reads a file differently from GLib is how a hidden `Exec` or a
//! hidden permission gets through. Stricter than GLib: duplicate keys or
//! groups and malformed lines are errors, not last-one-wins.

use crate::text::is_unsafe;

pub struct Group<'a> {
    pub title: &'a str,
    /// (key, locale, value), in file order.
    pub attrs: Vec<(String, Option<String>, String)>,
}

impl Group<'_> {
    /// The unlocalized value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, p, _)| n == key && p.is_none())
            .map(|(_, _, v)| v.as_str())
    }
}

/// Parse `text`; `key_ok` says which key names the caller accepts.
/// Errors name the line.
pub fn parse<'a>(text: &'a str, key_ok: &dyn Fn(&str) -> bool) -> Result<Vec<Group<'a>>, String> {
    let mut groups: Vec<Group<'_>> = Vec::new();
    // (group, key, locale) seen: a set, so a hostile file of many keys
    // costs linear time.
    let mut seen: std::collections::HashSet<(usize, String, Option<String>)> =
        std::collections::HashSet::new();
    let mut titles: std::collections::HashSet<&str> = std::collections::HashSet::new();
    for (n, line) in text.split('\n').enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        let at = |what: &str| format!("line {}: {what}", n + 1);
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if let Some(rest) = line.strip_prefix('[') {
            let title = rest
                .strip_suffix(']')
                .filter(|t| !t.is_empty() && !t.contains(['[', ']']) && !t.chars().any(is_unsafe))
                .ok_or_else(|| at("malformed group header"))?;
            if !titles.insert(title) {
                return Err(at(&format!("group [{title}] appears twice")));
            }
            groups.push(Group {
                title,
                attrs: Vec::new(),
            });
            continue;
        }
        let (k, v) = line
            .split_once('=')
            .ok_or_else(|| at("neither a group, a key nor a comment"))?;
        let gi = groups
            .len()
            .checked_sub(1)
            .ok_or_else(|| at("a key before the first group"))?;
        let k = k.trim_end();
        let v = v.trim_start();
        let (name, param) = match k.split_once('[') {
            Some((name, rest)) => (
                name,
                Some(
                    rest.strip_suffix(']')
                        .ok_or_else(|| at("malformed locale"))?
                        .to_owned(),
                ),
            ),
            None => (k, None),
        };
        if name.is_empty() || name.chars().any(is_unsafe) || !key_ok(name) {
            return Err(at(&format!("bad key name {:?}", crate::text::escape(k))));
        }
        if !seen.insert((gi, name.to_owned(), param.clone())) {
            return Err(at(&format!("key {} appears twice", crate::text::escape(k))));
        }
        groups[gi]
            .attrs
            .push((name.to_owned(), param, v.to_owned()));
    }
    Ok(groups)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn reads_as_glib_and_refuses_what_glib_would_read_differently() {
        let any = |_: &str| true;
        let g = parse("# c\n[A]\nk = v \nk[de]=w\n\n[B]\nx=1=2\n", &any).unwrap();
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].get("k"), Some("v "));
        assert_eq!(g[1].get("x"), Some("1=2"));
        for bad in [
            "k=v\n",
            "[A]\nk=1\nk=2\n",
            "[A]\n[A]\n",
            "[A]\nnokey\n",
            "[A\n",
            "[A]\nk[de=v\n",
            "[A]\n=v\n",
            "[A]\nk\u{202e}=v\n",
        ] {
            assert!(parse(bad, &any).is_err(), "{bad:?}");
        }
        assert!(parse("[A]\na.b=c\n", &|k: &str| !k.contains('.')).is_err());
    }
}

//! AppStream metainfo: what software centres (GNOME Software, KDE
//! Discover) list apps by. An image's metainfo file is hostile input, so
//! it is never copied: `parse` reads a few fields from it (no DTD, no
//! entities, no translations), and `generate` writes a fresh file under
//! the app's berth ID, with its name as reviewed and a launchable naming
//! the menu entry berth exported. quick-xml reads; the output is small
//! enough to write by hand, every value escaped.

use quick_xml::events::Event;
use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
#[error("AppStream metainfo: {0}")]
pub struct MetainfoError(String);

fn err(s: impl Into<String>) -> MetainfoError {
    MetainfoError(s.into())
}

/// A paragraph or a list in a description.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Block {
    Para(String),
    List(Vec<String>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Release {
    pub version: String,
    pub date: Option<String>,
}

/// The fields berth takes from an image's metainfo.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Metainfo {
    pub metadata_license: Option<String>,
    pub project_license: Option<String>,
    pub summary: Option<String>,
    pub description: Vec<Block>,
    pub homepage: Option<String>,
    pub developer: Option<String>,
    pub categories: Vec<String>,
    pub keywords: Vec<String>,
    pub releases: Vec<Release>,
}

const MAX_TEXT: usize = 2000;
const MAX_ITEMS: usize = 50;

fn squash(s: &str) -> String {
    let mut out = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if out.chars().count() > MAX_TEXT {
        out = out.chars().take(MAX_TEXT).collect::<String>() + "…";
    }
    out
}

/// An SPDX expression's characters only.
fn license_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 200
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b" .+-_()".contains(&b))
}

fn token_ok(s: &str, extra: &[u8]) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || extra.contains(&b))
}

fn url_ok(s: &str) -> bool {
    (s.starts_with("https://") || s.starts_with("http://"))
        && s.len() <= 500
        && s.bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'<' && b != b'>')
}

fn date_ok(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b.iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        })
}

/// Read the fields berth uses from one `<component>`. Translated elements
/// (`xml:lang`) are skipped; so is everything not listed here.
pub fn parse(xml: &str) -> Result<Metainfo, MetainfoError> {
    let mut r = quick_xml::Reader::from_str(xml);
    let mut m = Metainfo::default();
    let mut stack: Vec<String> = Vec::new();
    // Depth at which a translated element began: skip until it closes.
    let mut skip: Option<usize> = None;
    let mut text = String::new();
    let mut list: Vec<String> = Vec::new();
    let mut url_type: Option<String> = None;
    loop {
        let ev = r
            .read_event()
            .map_err(|e| err(format!("not well-formed: {e}")))?;
        match ev {
            Event::Eof => break,
            Event::DocType(_) => return Err(err("a DOCTYPE is not allowed")),
            Event::PI(_) => return Err(err("processing instructions are not allowed")),
            Event::CData(_) => return Err(err("CDATA is not allowed")),
            Event::Decl(_) | Event::Comment(_) => {}
            Event::GeneralRef(g) => {
                let Some(c) = crate::desktop::xml_reference(&g) else {
                    return Err(err("only the predefined entities are allowed"));
                };
                if skip.is_none() && text.len() < 4 * MAX_TEXT {
                    text.push(c);
                }
            }
            Event::Text(t) => {
                // Bounded: a field keeps MAX_TEXT characters at most.
                if skip.is_none() && text.len() < 4 * MAX_TEXT {
                    text.push_str(&t.xml10_content());
                }
            }
            Event::Start(ref e) | Event::Empty(ref e) => {
                let name = e.name().as_ref().to_owned();
                let empty = matches!(ev, Event::Empty(_));
                if stack.is_empty() && name != "component" {
                    return Err(err(format!(
                        "the root element is <{name}>, not <component>"
                    )));
                }
                if stack.len() > 16 {
                    return Err(err("elements nest too deeply"));
                }
                let mut attrs = Vec::new();
                for a in e.attributes() {
                    let a = a.map_err(|e| err(format!("bad attribute: {e}")))?;
                    let v = a
                        .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                        .map_err(|e| err(format!("bad attribute value: {e}")))?;
                    attrs.push((a.key.as_ref().to_owned(), v.into_owned()));
                }
                let attr = |k: &str| attrs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
                if skip.is_none() && attr("xml:lang").is_some() {
                    skip = Some(stack.len());
                }
                let path: Vec<&str> = stack.iter().map(String::as_str).collect();
                if skip.is_none() {
                    match (path.as_slice(), name.as_str()) {
                        (["component", "releases"], "release") if m.releases.len() < 20 => {
                            if let Some(v) = attr("version").filter(|v| token_ok(v, b".+~:-_")) {
                                m.releases.push(Release {
                                    version: v,
                                    date: attr("date")
                                        .map(|d| d.chars().take(10).collect::<String>())
                                        .filter(|d| date_ok(d)),
                                });
                            }
                        }
                        (["component"], "url") => url_type = attr("type"),
                        (["component", "description"], "ul" | "ol") => list.clear(),
                        // Inline markup in a paragraph keeps its text.
                        (p, "em" | "code") if p.last().is_some_and(|l| *l == "p" || *l == "li") => {
                        }
                        _ => text.clear(),
                    }
                }
                if !empty {
                    stack.push(name);
                } else if stack.is_empty() {
                    break;
                }
                if empty && skip == Some(stack.len()) {
                    skip = None;
                }
            }
            Event::End(_) => {
                let Some(name) = stack.pop() else {
                    return Err(err("an element closes that never opened"));
                };
                if skip == Some(stack.len()) {
                    skip = None;
                    text.clear();
                    continue;
                }
                if skip.is_some() {
                    continue;
                }
                // Inline markup ends inside a paragraph: its text stays in
                // the buffer, squashed once when the paragraph ends.
                if matches!(name.as_str(), "em" | "code") {
                    continue;
                }
                let path: Vec<&str> = stack.iter().map(String::as_str).collect();
                let t = squash(&text);
                match (path.as_slice(), name.as_str()) {
                    (["component"], "summary") if !t.is_empty() => m.summary = Some(t),
                    (["component"], "metadata_license") if license_ok(&t) => {
                        m.metadata_license = Some(t)
                    }
                    (["component"], "project_license") if license_ok(&t) => {
                        m.project_license = Some(t)
                    }
                    (["component"], "developer_name") if !t.is_empty() => m.developer = Some(t),
                    (["component", "developer"], "name") if !t.is_empty() => m.developer = Some(t),
                    (["component"], "url")
                        if url_type.as_deref() == Some("homepage") && url_ok(&t) =>
                    {
                        m.homepage = Some(t)
                    }
                    (["component", "description"], "p")
                        if !t.is_empty() && m.description.len() < MAX_ITEMS =>
                    {
                        m.description.push(Block::Para(t))
                    }
                    (["component", "description", "ul" | "ol"], "li")
                        if !t.is_empty() && list.len() < MAX_ITEMS =>
                    {
                        list.push(t)
                    }
                    (["component", "description"], "ul" | "ol")
                        if !list.is_empty() && m.description.len() < MAX_ITEMS =>
                    {
                        m.description.push(Block::List(std::mem::take(&mut list)))
                    }
                    (["component", "categories"], "category")
                        if token_ok(&t, b"-_") && m.categories.len() < 20 =>
                    {
                        m.categories.push(t)
                    }
                    (["component", "keywords"], "keyword")
                        if !t.is_empty() && t.len() <= 64 && m.keywords.len() < MAX_ITEMS =>
                    {
                        m.keywords.push(t)
                    }
                    _ => {}
                }
                text.clear();
                if stack.is_empty() {
                    break;
                }
            }
        }
    }
    if !stack.is_empty() {
        return Err(err("the file ends inside an element"));
    }
    Ok(m)
}

/// Text for XML: control and invisible formatting characters made
/// visible (as everywhere berth shows image text), then XML-escaped.
fn x(s: &str) -> String {
    let shown = crate::text::escape(s);
    // What XML 1.0 cannot hold at all (U+FFFE, U+FFFF, lone controls the
    // display escape left) is written as visible text too: one such
    // character must not break the catalog every app shares.
    let safe: String = shown
        .chars()
        .map(|c| {
            if xml_char(c) {
                c.to_string()
            } else {
                format!("\\u{{{:x}}}", c as u32)
            }
        })
        .collect();
    quick_xml::escape::escape(safe.as_str()).into_owned()
}

/// XML 1.0's `Char` production.
pub fn xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..)
}

/// What goes into the generated file besides the image's metainfo.
pub struct Component<'a> {
    /// The app's berth ID (also its exported entry's name).
    pub id: &'a str,
    /// The name the user reviewed.
    pub name: &'a str,
    /// Used when the metainfo has no summary (the entry's Comment).
    pub fallback_summary: &'a str,
    /// The icon's name, when one was exported.
    pub icon: Option<&'a str>,
}

/// The `<component>` element, indented for a metainfo file or a catalog.
/// An image metainfo without a `metadata_license` is not used (its text
/// may not be passed on): the component then has only what berth knows.
pub fn component(c: &Component, m: Option<&Metainfo>) -> String {
    let m = m.filter(|m| m.metadata_license.is_some());
    let mut o = String::from("  <component type=\"desktop-application\">\n");
    let mut line = |tag: &str, v: &str| o.push_str(&format!("    <{tag}>{}</{tag}>\n", x(v)));
    line("id", c.id);
    line(
        "metadata_license",
        m.and_then(|m| m.metadata_license.as_deref())
            .unwrap_or("CC0-1.0"),
    );
    if let Some(l) = m.and_then(|m| m.project_license.as_deref()) {
        line("project_license", l);
    }
    line("name", c.name);
    let summary = m
        .and_then(|m| m.summary.as_deref())
        .unwrap_or(c.fallback_summary);
    line("summary", summary);
    if let Some(d) = m.and_then(|m| m.developer.as_deref()) {
        line("developer_name", d);
    }
    // Software centres need a description: berth's own words when the
    // image gives none.
    let ours = [Block::Para(format!(
        "{}: {}. Installed with berth, it runs in a sandbox with only the permissions you granted.",
        c.name,
        summary.trim_end_matches('.')
    ))];
    let description = match m {
        Some(m) if !m.description.is_empty() => m.description.as_slice(),
        _ => &ours,
    };
    {
        o.push_str("    <description>\n");
        for b in description {
            match b {
                Block::Para(p) => o.push_str(&format!("      <p>{}</p>\n", x(p))),
                Block::List(items) => {
                    o.push_str("      <ul>\n");
                    for i in items {
                        o.push_str(&format!("        <li>{}</li>\n", x(i)));
                    }
                    o.push_str("      </ul>\n");
                }
            }
        }
        o.push_str("    </description>\n");
    }
    o.push_str(&format!(
        "    <launchable type=\"desktop-id\">{}.desktop</launchable>\n",
        x(c.id)
    ));
    if let Some(i) = c.icon {
        o.push_str(&format!("    <icon type=\"stock\">{}</icon>\n", x(i)));
    }
    if let Some(u) = m.and_then(|m| m.homepage.as_deref()) {
        o.push_str(&format!("    <url type=\"homepage\">{}</url>\n", x(u)));
    }
    for (tag, item, values) in [
        ("categories", "category", m.map(|m| &m.categories)),
        ("keywords", "keyword", m.map(|m| &m.keywords)),
    ] {
        if let Some(v) = values.filter(|v| !v.is_empty()) {
            o.push_str(&format!("    <{tag}>\n"));
            for i in v {
                o.push_str(&format!("      <{item}>{}</{item}>\n", x(i)));
            }
            o.push_str(&format!("    </{tag}>\n"));
        }
    }
    if let Some(r) = m.map(|m| &m.releases).filter(|r| !r.is_empty()) {
        o.push_str("    <releases>\n");
        for rel in r {
            match &rel.date {
                Some(d) => o.push_str(&format!(
                    "      <release version=\"{}\" date=\"{}\"/>\n",
                    x(&rel.version),
                    x(d)
                )),
                None => o.push_str(&format!(
                    "      <release version=\"{}\"/>\n",
                    x(&rel.version)
                )),
            }
        }
        o.push_str("    </releases>\n");
    }
    o.push_str("    <custom>\n      <value key=\"berth::installed\">true</value>\n    </custom>\n");
    o.push_str("  </component>\n");
    o
}

/// The mark of a file berth generated.
pub const GENERATED: &str = "<!-- Generated by berth; not copied from the image. -->";

/// A metainfo file (`share/metainfo/ID.metainfo.xml`).
pub fn metainfo_file(component: &str) -> String {
    let body: String = component
        .lines()
        .map(|l| l.strip_prefix("  ").unwrap_or(l))
        .map(|l| format!("{l}\n"))
        .collect();
    format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{GENERATED}\n{body}")
}

/// A catalog (`share/swcatalog/xml/berth.xml`) of the metainfo files
/// `metainfo_file` wrote.
pub fn catalog(files: &[String]) -> String {
    let mut o = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<components version=\"0.16\" origin=\"berth\">\n",
    );
    for f in files {
        for l in f
            .lines()
            .filter(|l| !l.starts_with("<?xml") && !l.starts_with("<!--"))
        {
            o.push_str(&format!("  {l}\n"));
        }
    }
    o.push_str("</components>\n");
    o
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const SAMPLE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<component type="desktop-application">
  <id>org.upstream.Editor</id>
  <metadata_license>CC0-1.0</metadata_license>
  <project_license>GPL-3.0-or-later</project_license>
  <name>Upstream Name</name>
  <summary>Edit &amp; save text</summary>
  <summary xml:lang="de">Text bearbeiten</summary>
  <description>
    <p>An editor for <em>plain</em> text.</p>
    <p xml:lang="de">Ein Editor.</p>
    <ul><li>Fast</li><li>Small</li></ul>
  </description>
  <url type="homepage">https://example.org/editor</url>
  <url type="bugtracker">javascript:alert(1)</url>
  <developer_name>Example Devs</developer_name>
  <categories><category>Utility</category><category>Text Editor</category></categories>
  <releases><release version="1.2" date="2026-01-02T00:00:00Z"/></releases>
  <launchable type="desktop-id">evil.desktop</launchable>
</component>"#;

    #[test]
    fn reads_only_the_untranslated_allowlisted_fields() {
        let m = parse(SAMPLE).unwrap();
        assert_eq!(m.summary.as_deref(), Some("Edit & save text"));
        assert_eq!(
            m.description,
            [
                Block::Para("An editor for plain text.".into()),
                Block::List(vec!["Fast".into(), "Small".into()])
            ]
        );
        assert_eq!(m.homepage.as_deref(), Some("https://example.org/editor"));
        assert_eq!(
            m.categories,
            ["Utility"],
            "a category with a space is dropped"
        );
        assert_eq!(m.releases[0].date.as_deref(), Some("2026-01-02"));
        assert_eq!(m.project_license.as_deref(), Some("GPL-3.0-or-later"));
    }

    #[test]
    fn generated_under_the_berth_id_with_its_own_launchable() {
        let m = parse(SAMPLE).unwrap();
        let c = component(
            &Component {
                id: "org.example.Editor",
                name: "Example <Editor>",
                fallback_summary: "unused",
                icon: None,
            },
            Some(&m),
        );
        assert!(c.contains("<id>org.example.Editor</id>"));
        assert!(c.contains("<name>Example &lt;Editor&gt;</name>"));
        assert!(c.contains("org.example.Editor.desktop</launchable>"));
        assert!(!c.contains("evil") && !c.contains("Upstream") && !c.contains("javascript"));
        assert!(c.contains("<summary>Edit &amp; save text</summary>"));
    }

    #[test]
    fn hostile_files_are_refused_or_defused() {
        for bad in [
            "<!DOCTYPE x [<!ENTITY a \"b\">]><component/>",
            "<component><summary>&a;</summary></component>",
            "<components><component/></components>",
            "<component><summary><![CDATA[x]]></summary></component>",
            "<component><summary>open",
            "<?php x ?><component/>",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        let m = parse("<component><metadata_license>CC0-1.0</metadata_license><summary>a\u{1b}[2J\u{202e}b</summary></component>").unwrap();
        let c = component(
            &Component {
                id: "org.a.B",
                name: "B",
                fallback_summary: "",
                icon: None,
            },
            Some(&m),
        );
        assert!(!c.contains('\u{1b}') && !c.contains('\u{202e}'), "{c}");
        let m = parse("<component><metadata_license>CC0-1.0</metadata_license><summary>a&#xFFFF;b\u{fffe}</summary></component>").unwrap();
        let c = component(
            &Component {
                id: "org.a.B",
                name: "B\u{ffff}",
                fallback_summary: "",
                icon: None,
            },
            Some(&m),
        );
        assert!(c.chars().all(xml_char), "{c:?}");
        // Inline markup repeated many times costs linear time.
        let big = format!(
            "<component><description><p>{}</p></description></component>",
            "<em>a </em>".repeat(200_000)
        );
        let t = std::time::Instant::now();
        let m = parse(&big).unwrap();
        assert!(t.elapsed() < std::time::Duration::from_secs(5));
        assert!(matches!(&m.description[0], Block::Para(p) if p.chars().count() <= MAX_TEXT + 1));
        // Without a metadata license the image's text is not used.
        let m = parse("<component><summary>theirs</summary></component>").unwrap();
        let c = component(
            &Component {
                id: "org.a.B",
                name: "B",
                fallback_summary: "ours",
                icon: None,
            },
            Some(&m),
        );
        assert!(c.contains("<summary>ours</summary>") && c.contains("CC0-1.0"));
    }
}

//! What berth puts in the user's menu, generated rather than copied: the
//! host runs these files (GLib starts Exec, the MIME database steers file
//! opening, icons are decoded by the shell), so an image's files never
//! reach it as they are. The app's desktop entry is parsed, and a fresh
//! one is written from an allowlist of keys with berth's own Exec; MIME
//! XML is parsed and re-emitted; icons are checked by content. Pure: text
//! in, text out; the caller does the I/O.

use std::fmt::Write;

use quick_xml::events::Event;

use crate::text::is_unsafe;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ExportError {
    #[error("desktop entry: {0}")]
    Entry(String),
    #[error("MIME XML: {0}")]
    Mime(String),
    #[error("icon: {0}")]
    Icon(String),
}

fn entry_err(s: impl Into<String>) -> ExportError {
    ExportError::Entry(s.into())
}

/// Keys copied from the app's entry (values checked); every other key,
/// `Exec`, `TryExec`, `DBusActivatable`, `X-*` autostart keys, `Type=Link`
/// and `URL` among them, is dropped.
const LOCALIZED: &[&str] = &["Name", "GenericName", "Comment", "Keywords"];
const PLAIN: &[&str] = &["Categories", "MimeType", "StartupWMClass"];
const BOOLEANS: &[&str] = &["StartupNotify", "Terminal", "NoDisplay"];
/// Field codes berth passes on to the app (files and URLs).
const FIELD_CODES: &[&str] = &["%f", "%F", "%u", "%U"];

/// What the generated entry holds, besides the text: the keys dropped,
/// for a note to the developer.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Generated {
    pub text: String,
    pub dropped: Vec<String>,
}

/// The command a menu entry runs: berth, the app, and the arguments.
pub struct Launch<'a> {
    /// berth's own path.
    pub exe: &'a str,
    /// The install key (`ID` or `ID@CHANNEL`), also the icon name.
    pub key: &'a str,
    /// The icon name to use (the app ID).
    pub icon: &'a str,
    /// The name from the image's labels, used when the entry has none.
    pub name: &'a str,
}

fn valid_locale(l: &str) -> bool {
    !l.is_empty()
        && l.len() <= 32
        && l.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'@' | b'.' | b'-'))
}

/// A string value's checks: no control or invisible characters, and no
/// escape that GLib turns into one (`\n`, `\t`, `\r`).
fn check_value(key: &str, v: &str) -> Result<(), ExportError> {
    if v.chars().any(is_unsafe) {
        return Err(entry_err(format!(
            "{key} holds control or invisible formatting characters: {:?}",
            v
        )));
    }
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('s' | '\\' | ';') => {}
                other => {
                    return Err(entry_err(format!(
                        "{key} has the escape \\{} , which is not allowed",
                        other.map(String::from).unwrap_or_default()
                    )));
                }
            }
        }
    }
    Ok(())
}

fn check_list_item(key: &str, item: &str) -> Result<(), ExportError> {
    let ok = match key {
        "MimeType" => valid_mime_type(item),
        "Categories" => item
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        _ => true,
    };
    if ok {
        Ok(())
    } else {
        Err(entry_err(format!("{key} has an invalid item {item:?}")))
    }
}

/// `type/subtype`, in the characters shared-mime-info uses.
pub fn valid_mime_type(t: &str) -> bool {
    let ok = |s: &str| {
        !s.is_empty()
            && s.len() <= 127
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'+' | b'-' | b'_'))
    };
    matches!(t.split_once('/'), Some((a, b)) if ok(a) && ok(b))
}

/// Split an Exec value into arguments, by the Desktop Entry spec: the
/// key-file escapes first, then double-quote quoting.
fn split_exec(v: &str) -> Result<Vec<String>, ExportError> {
    let mut unescaped = String::new();
    let mut it = v.chars();
    while let Some(c) = it.next() {
        if c == '\\' {
            match it.next() {
                Some('s') => unescaped.push(' '),
                Some('\\') => unescaped.push('\\'),
                Some(o) => {
                    unescaped.push('\\');
                    unescaped.push(o);
                }
                None => return Err(entry_err("Exec ends with a backslash")),
            }
        } else {
            unescaped.push(c);
        }
    }
    let mut args = Vec::new();
    let mut cur: Option<String> = None;
    let mut it = unescaped.chars();
    while let Some(c) = it.next() {
        match c {
            ' ' | '\t' => {
                if let Some(a) = cur.take() {
                    args.push(a);
                }
            }
            '"' => {
                let a = cur.get_or_insert_with(String::new);
                loop {
                    match it.next() {
                        Some('"') => break,
                        Some('\\') => match it.next() {
                            Some(e @ ('"' | '`' | '$' | '\\')) => a.push(e),
                            _ => return Err(entry_err("Exec has a bad escape in quotes")),
                        },
                        Some(o) => a.push(o),
                        None => return Err(entry_err("Exec has an unclosed quote")),
                    }
                }
            }
            o => cur.get_or_insert_with(String::new).push(o),
        }
    }
    if let Some(a) = cur {
        args.push(a);
    }
    Ok(args)
}

/// One argument, quoted for an Exec value and then key-file escaped; the
/// field codes `%f %F %u %U` pass as codes.
pub fn quote_arg(a: &str) -> String {
    if FIELD_CODES.contains(&a) {
        return a.to_owned();
    }
    quote_literal(a)
}

/// One argument as literal text: `%` is escaped too.
pub fn quote_literal(a: &str) -> String {
    let a = a.replace('%', "%%");
    let plain = !a.is_empty()
        && a.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_/.,:@+=-%".contains(&b));
    let quoted = if plain {
        a
    } else {
        let mut q = String::from("\"");
        for c in a.chars() {
            if matches!(c, '"' | '`' | '$' | '\\') {
                q.push('\\');
            }
            q.push(c);
        }
        q.push('"');
        q
    };
    // Key-file level: a literal backslash is written `\\`.
    quoted.replace('\\', "\\\\")
}

/// The Exec berth writes: `berth run KEY [-- ARGS]`, where ARGS are the
/// app's own arguments without its program, keeping only whole-argument
/// file and URL field codes and literal arguments. A file code goes between
/// `@@` markers (`@@u` for URLs), as Flatpak's `--file-forwarding` writes
/// them: berth hands those files to the app through the document portal.
/// The app's own `@@` arguments are dropped, so only berth's mark files.
fn exec_line(l: &Launch<'_>, app_exec: Option<&str>) -> Result<String, ExportError> {
    let mut args = Vec::new();
    // Which of `args` are literal text, not field codes.
    let mut lits = Vec::new();
    if let Some(v) = app_exec {
        let mut field_code = false;
        for a in split_exec(v)?.into_iter().skip(1) {
            if FIELD_CODES.contains(&a.as_str()) {
                // One file/URL code per command line, as the spec says.
                if !field_code {
                    let open = if a == "%u" || a == "%U" { "@@u" } else { "@@" };
                    lits.push(args.len());
                    args.push(open.to_owned());
                    args.push(a);
                    lits.push(args.len());
                    args.push("@@".to_owned());
                    field_code = true;
                }
            } else if a == "@@" || a == "@@u" {
                continue;
            } else if a.chars().any(is_unsafe) {
                return Err(entry_err("Exec has control characters"));
            } else if a.contains('%') {
                // %i %c %k, deprecated codes, or codes inside an argument:
                // they would expand to text berth has not checked.
                let lit = a.replace("%%", "");
                if !lit.contains('%') {
                    lits.push(args.len());
                    args.push(a.replace("%%", "%"));
                }
            } else {
                lits.push(args.len());
                args.push(a);
            }
        }
    }
    let mut line = format!("{} run {}", quote_arg(l.exe), quote_arg(l.key));
    if !args.is_empty() {
        line.push_str(" --");
        for (i, a) in args.iter().enumerate() {
            line.push(' ');
            // A literal `%f` (written `%%f`) stays literal.
            line.push_str(&if lits.contains(&i) {
                quote_literal(a)
            } else {
                quote_arg(a)
            });
        }
    }
    Ok(line)
}

use crate::keyfile::Group;

/// A desktop entry's groups, read as GLib reads them (see
/// [`crate::keyfile`]); key names are letters, digits and `-`.
fn parse_groups(text: &str) -> Result<Vec<Group<'_>>, ExportError> {
    crate::keyfile::parse(text, &|k: &str| {
        k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    })
    .map_err(ExportError::Entry)
}

fn write_group(
    out: &mut String,
    dropped: &mut Vec<String>,
    g: &Group<'_>,
    allowed: &dyn Fn(&str) -> bool,
) -> Result<(), ExportError> {
    for (name, param, value) in &g.attrs {
        if !allowed(name) || (param.is_some() && !LOCALIZED.contains(&name.as_str())) {
            dropped.push(name.clone());
            continue;
        }
        check_value(name, value)?;
        if BOOLEANS.contains(&name.as_str()) && value != "true" && value != "false" {
            return Err(entry_err(format!("{name} must be true or false")));
        }
        if matches!(name.as_str(), "Categories" | "MimeType" | "Keywords") {
            for item in value.split(';').filter(|i| !i.is_empty()) {
                check_list_item(name, item)?;
            }
        }
        match param {
            Some(p) if valid_locale(p) => {
                let _ = writeln!(out, "{name}[{p}]={value}");
            }
            Some(p) => return Err(entry_err(format!("{name} has a bad locale {p:?}"))),
            None => {
                let _ = writeln!(out, "{name}={value}");
            }
        }
    }
    Ok(())
}

/// The plain `Name=` of a desktop entry's main group, when the entry
/// reads and the name is fit to show.
pub fn entry_name(text: &str) -> Option<String> {
    let groups = parse_groups(text).ok()?;
    let name = groups
        .iter()
        .find(|g| g.title == "Desktop Entry")?
        .get("Name")?
        .trim();
    (!name.is_empty() && check_value("Name", name).is_ok()).then(|| name.to_owned())
}

/// Generate the menu entry. `app_entry` is the image's desktop entry
/// (`None`: a minimal one from the labels).
pub fn generate_entry(l: &Launch<'_>, app_entry: Option<&str>) -> Result<Generated, ExportError> {
    let mut out = String::from("[Desktop Entry]\nType=Application\n");
    let mut dropped = Vec::new();
    check_value("Name", l.name)?;
    let Some(text) = app_entry else {
        let _ = writeln!(out, "Name={}", l.name);
        let _ = writeln!(out, "Exec={}", exec_line(l, None)?);
        let _ = writeln!(
            out,
            "Icon={}\nTerminal=false\nX-Berth-App={}",
            l.icon, l.key
        );
        return Ok(Generated { text: out, dropped });
    };
    let groups = parse_groups(text)?;
    let main = groups
        .iter()
        .find(|g| g.title == "Desktop Entry")
        .ok_or_else(|| entry_err("missing the [Desktop Entry] group"))?;
    let get = |g: &Group<'_>, k: &str| {
        g.attrs
            .iter()
            .find(|(n, p, _)| n == k && p.is_none())
            .map(|(_, _, v)| v.clone())
    };
    if let Some(t) = get(main, "Type").filter(|t| t != "Application") {
        return Err(entry_err(format!(
            "Type={t}: only Type=Application is exported"
        )));
    }
    if get(main, "Hidden").as_deref() == Some("true") {
        return Err(entry_err(
            "Hidden=true: the entry would be deleted, not shown",
        ));
    }
    let actions: Vec<String> = get(main, "Actions")
        .unwrap_or_default()
        .split(';')
        .filter(|a| !a.is_empty())
        .map(str::to_owned)
        .collect();
    for a in &actions {
        if !a.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(entry_err(format!("action name {a:?} is not allowed")));
        }
    }
    if get(main, "Name").is_none() {
        let _ = writeln!(out, "Name={}", l.name);
    }
    write_group(&mut out, &mut dropped, main, &|k| {
        LOCALIZED.contains(&k) || PLAIN.contains(&k) || BOOLEANS.contains(&k)
    })?;
    let _ = writeln!(out, "Exec={}", exec_line(l, get(main, "Exec").as_deref())?);
    let _ = writeln!(out, "Icon={}", l.icon);
    let mut kept = Vec::new();
    let mut action_text = String::new();
    for a in &actions {
        let Some(g) = groups
            .iter()
            .find(|g| g.title.strip_prefix("Desktop Action ") == Some(a))
        else {
            dropped.push(format!("Actions={a} (no [Desktop Action {a}] group)"));
            continue;
        };
        if get(g, "Name").is_none() {
            return Err(entry_err(format!("action {a} has no Name")));
        }
        let _ = writeln!(action_text, "\n[Desktop Action {a}]");
        write_group(&mut action_text, &mut dropped, g, &|k| {
            k == "Name" || LOCALIZED.contains(&k) && k != "Comment"
        })?;
        let _ = writeln!(
            action_text,
            "Exec={}",
            exec_line(l, get(g, "Exec").as_deref())?
        );
        let _ = writeln!(action_text, "Icon={}", l.icon);
        kept.push(a.clone());
    }
    if !kept.is_empty() {
        let _ = writeln!(out, "Actions={};", kept.join(";"));
    }
    let _ = writeln!(out, "X-Berth-App={}", l.key);
    out.push_str(&action_text);
    for g in &groups {
        if g.title != "Desktop Entry" && !g.title.starts_with("Desktop Action ") {
            dropped.push(format!("[{}]", crate::text::escape(g.title)));
        }
    }
    dropped.retain(|d| !matches!(d.as_str(), "Type" | "Exec" | "Icon" | "Actions" | "TryExec"));
    Ok(Generated { text: out, dropped })
}

// ---- MIME ----------------------------------------------------------------

const MIME_NS: &str = "http://www.freedesktop.org/standards/shared-mime-info";
/// Highest glob weight an app's type may claim: above it, the app's type
/// would win over the host's for files the host already knows.
const MAX_GLOB_WEIGHT: u32 = 50;

#[derive(Debug, Default, PartialEq, Eq)]
pub struct MimeType {
    pub name: String,
    pub comments: Vec<(Option<String>, String)>,
    pub globs: Vec<(String, Option<u32>)>,
    pub sub_class_of: Vec<String>,
    pub aliases: Vec<String>,
}

fn mime_err(s: impl Into<String>) -> ExportError {
    ExportError::Mime(s.into())
}

/// A character reference or one of XML's five predefined entities; any
/// other entity is refused by the parsers of image XML (no DTD, so no
/// entity expansion attacks).
pub(crate) fn xml_reference(g: &quick_xml::events::BytesRef) -> Option<char> {
    match g.resolve_char_ref() {
        Ok(Some(c)) => Some(c),
        Ok(None) => match &*g.clone().into_inner() {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => None,
        },
        Err(_) => None,
    }
}

/// Parse an app's shared-mime-info XML: no DTD, no entities beyond the
/// five predefined and character references, no processing instructions;
/// only `mime-type` with `comment`, `glob`, `sub-class-of`, `alias`. Magic
/// (content sniffing rules) and everything else is dropped.
pub fn parse_mime(xml: &str) -> Result<Vec<MimeType>, ExportError> {
    let mut r = quick_xml::Reader::from_str(xml);
    let mut out: Vec<MimeType> = Vec::new();
    // Open elements from the root, to know where text belongs.
    let mut stack: Vec<String> = Vec::new();
    let mut text = String::new();
    let mut lang: Option<String> = None;
    loop {
        let ev = r
            .read_event()
            .map_err(|e| mime_err(format!("not well-formed: {e}")))?;
        match ev {
            Event::Eof => break,
            Event::DocType(_) => return Err(mime_err("a DOCTYPE is not allowed")),
            Event::PI(_) => return Err(mime_err("processing instructions are not allowed")),
            Event::Decl(_) | Event::Comment(_) => {}
            Event::GeneralRef(g) => {
                if stack.last().map(String::as_str) != Some("comment") {
                    continue;
                }
                let Some(c) = xml_reference(&g) else {
                    return Err(mime_err(format!(
                        "entity &{}; is not allowed",
                        g.clone().into_inner()
                    )));
                };
                text.push(c);
            }
            Event::Text(t) => {
                if stack.last().map(String::as_str) == Some("comment") {
                    text.push_str(&t.xml10_content());
                }
            }
            Event::CData(_) => return Err(mime_err("CDATA is not allowed")),
            Event::Start(ref e) | Event::Empty(ref e) => {
                let name = e.name().as_ref().to_owned();
                let empty = matches!(ev, Event::Empty(_));
                let mut attrs = Vec::new();
                for a in e.attributes() {
                    let a = a.map_err(|e| mime_err(format!("bad attribute: {e}")))?;
                    let v = a
                        .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                        .map_err(|e| mime_err(format!("bad attribute value: {e}")))?;
                    if v.chars().any(is_unsafe) {
                        return Err(mime_err("control characters in an attribute"));
                    }
                    attrs.push((a.key.as_ref().to_owned(), v.into_owned()));
                }
                let attr = |k: &str| attrs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
                let depth = stack.len();
                match (depth, name.as_str()) {
                    (0, "mime-info") if attr("xmlns").as_deref() == Some(MIME_NS) => {}
                    (0, _) => {
                        return Err(mime_err("the root must be shared-mime-info's mime-info"));
                    }
                    (1, "mime-type") => {
                        let t = attr("type").unwrap_or_default();
                        if !valid_mime_type(&t) {
                            return Err(mime_err(format!("bad type name {t:?}")));
                        }
                        out.push(MimeType {
                            name: t,
                            ..MimeType::default()
                        });
                    }
                    (2, child) if stack[1] == "mime-type" => {
                        let Some(m) = out.last_mut() else { continue };
                        match child {
                            "comment" => lang = attr("xml:lang"),
                            "glob" => {
                                let p = attr("pattern").unwrap_or_default();
                                if p.is_empty() || p.len() > 255 || p.contains('/') {
                                    return Err(mime_err(format!("bad glob pattern {p:?}")));
                                }
                                let w = attr("weight").and_then(|w| w.parse::<u32>().ok());
                                // Only `*.EXT` with a literal extension, at no
                                // more than the default weight: wildcards
                                // (`*.*`, `?*`) and literal names (`Makefile`,
                                // matched before any glob) would take the
                                // host's files. Others are dropped, not capped.
                                let literal_ext = p.strip_prefix("*.").is_some_and(|e| {
                                    !e.is_empty()
                                        && e.bytes().all(|b| {
                                            b.is_ascii_alphanumeric()
                                                || matches!(b, b'.' | b'_' | b'+' | b'-')
                                        })
                                });
                                if w.is_none_or(|w| w <= MAX_GLOB_WEIGHT) && literal_ext {
                                    m.globs.push((p, w));
                                }
                            }
                            "sub-class-of" | "alias" => {
                                let t = attr("type").unwrap_or_default();
                                if !valid_mime_type(&t) {
                                    return Err(mime_err(format!("bad type name {t:?}")));
                                }
                                if child == "alias" {
                                    m.aliases.push(t);
                                } else {
                                    m.sub_class_of.push(t);
                                }
                            }
                            _ => {}
                        }
                    }
                    _ => {}
                }
                if !empty {
                    stack.push(name);
                }
                text.clear();
            }
            Event::End(_) => {
                if stack.last().map(String::as_str) == Some("comment") && stack.len() == 3 {
                    if text.chars().any(is_unsafe) {
                        return Err(mime_err("control characters in a comment"));
                    }
                    if let Some(m) = out.last_mut() {
                        m.comments.push((lang.take(), text.trim().to_owned()));
                    }
                }
                text.clear();
                stack.pop();
            }
        }
    }
    Ok(out)
}

fn esc(s: &str) -> std::borrow::Cow<'_, str> {
    quick_xml::escape::escape(s)
}

/// Re-emit the types an app may define: those the host does not already
/// define (`host_defines`). Returns the XML and the types left out.
pub fn emit_mime(
    types: &[MimeType],
    host_defines: &dyn Fn(&str) -> bool,
) -> (Option<String>, Vec<String>) {
    let mut skipped = Vec::new();
    let mut body = String::new();
    for t in types {
        if host_defines(&t.name) {
            skipped.push(t.name.clone());
            continue;
        }
        let _ = writeln!(body, "  <mime-type type=\"{}\">", esc(&t.name));
        for (lang, c) in &t.comments {
            match lang.as_deref().filter(|l| valid_locale(l)) {
                Some(l) => {
                    let _ = writeln!(
                        body,
                        "    <comment xml:lang=\"{}\">{}</comment>",
                        esc(l),
                        esc(c)
                    );
                }
                None if lang.is_none() => {
                    let _ = writeln!(body, "    <comment>{}</comment>", esc(c));
                }
                None => {}
            }
        }
        for s in &t.sub_class_of {
            let _ = writeln!(body, "    <sub-class-of type=\"{}\"/>", esc(s));
        }
        for a in &t.aliases {
            if !host_defines(a) {
                let _ = writeln!(body, "    <alias type=\"{}\"/>", esc(a));
            }
        }
        for (p, w) in &t.globs {
            match w {
                Some(w) => {
                    let _ = writeln!(body, "    <glob pattern=\"{}\" weight=\"{w}\"/>", esc(p));
                }
                None => {
                    let _ = writeln!(body, "    <glob pattern=\"{}\"/>", esc(p));
                }
            }
        }
        body.push_str("  </mime-type>\n");
    }
    if body.is_empty() {
        return (None, skipped);
    }
    (
        Some(format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<mime-info xmlns=\"{MIME_NS}\">\n{body}</mime-info>\n"
        )),
        skipped,
    )
}

// ---- icons ---------------------------------------------------------------

#[derive(Debug, PartialEq, Eq)]
pub enum IconKind {
    /// A square PNG of this many pixels a side.
    Png(u32),
    Svg,
}

impl IconKind {
    /// The hicolor size directory and the file extension.
    pub fn place(&self) -> (String, &'static str) {
        match self {
            IconKind::Png(n) => (format!("{n}x{n}"), "png"),
            IconKind::Svg => ("scalable".into(), "svg"),
        }
    }
}

/// Largest icon file berth exports.
pub const MAX_ICON_BYTES: usize = 1 << 20;

/// What the icon file is, by its content (its name is not trusted): a
/// square PNG up to 1024 px, or an SVG without scripts, external
/// references or entities. Anything else (XPM, JPEG, a renamed file) is
/// refused.
pub fn check_icon(bytes: &[u8]) -> Result<IconKind, ExportError> {
    let ierr = |s: &str| ExportError::Icon(s.to_owned());
    if bytes.len() > MAX_ICON_BYTES {
        return Err(ierr("larger than 1 MiB"));
    }
    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n";
    if let Some(rest) = bytes.strip_prefix(PNG) {
        // The first chunk must be IHDR: length 13, then width and height.
        if rest.len() < 25 || &rest[..8] != b"\0\0\0\x0dIHDR" {
            return Err(ierr("a PNG without a valid header"));
        }
        let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        let (w, h) = (be(&rest[8..12]), be(&rest[12..16]));
        if w != h || w == 0 || w > 1024 {
            return Err(ierr(&format!(
                "a {w}x{h} PNG; icons are square, at most 1024 px"
            )));
        }
        return Ok(IconKind::Png(w));
    }
    let text = std::str::from_utf8(bytes).map_err(|_| ierr("neither a PNG nor an SVG"))?;
    check_svg(text)?;
    Ok(IconKind::Svg)
}

/// CSS or attribute text that loads something: any `url(` that is not a
/// fragment of the same file, `@import`, or a script URL.
fn refers_outside(v: &str) -> bool {
    let v: String = v.chars().filter(|c| !c.is_whitespace()).collect();
    v.contains("@import")
        || v.contains("javascript:")
        || v.match_indices("url(").any(|(i, _)| {
            let rest = v[i + 4..].trim_start_matches(['"', '\'']);
            !rest.starts_with('#')
        })
}

fn check_svg(text: &str) -> Result<(), ExportError> {
    let ierr = |s: String| ExportError::Icon(s);
    let mut r = quick_xml::Reader::from_str(text);
    let mut root = true;
    loop {
        match r
            .read_event()
            .map_err(|e| ierr(format!("SVG not well-formed: {e}")))?
        {
            Event::Eof => break,
            Event::DocType(_) => return Err(ierr("SVG with a DOCTYPE (entities)".into())),
            Event::PI(_) => return Err(ierr("SVG with processing instructions".into())),
            Event::GeneralRef(g) => {
                let n = g.into_inner();
                if !n.starts_with('#') && !matches!(&*n, "amp" | "lt" | "gt" | "quot" | "apos") {
                    return Err(ierr(format!("SVG with the entity &{n};")));
                }
            }
            // Style sheets: @import and url() reach outside too.
            Event::Text(t) if refers_outside(&t.xml10_content().to_ascii_lowercase()) => {
                return Err(ierr("SVG style referring outside itself".into()));
            }
            Event::CData(t) if refers_outside(&t.as_ref().to_ascii_lowercase()) => {
                return Err(ierr("SVG style referring outside itself".into()));
            }
            Event::Start(e) | Event::Empty(e) => {
                let name = e.local_name();
                let name = name.as_ref().to_ascii_lowercase();
                if root && name != "svg" {
                    return Err(ierr("neither a PNG nor an SVG".into()));
                }
                root = false;
                if matches!(
                    name.as_str(),
                    "script"
                        | "foreignobject"
                        | "iframe"
                        | "embed"
                        | "object"
                        | "handler"
                        | "listener"
                ) {
                    return Err(ierr(format!("SVG with a <{name}> element")));
                }
                for a in e.attributes() {
                    let a = a.map_err(|e| ierr(format!("SVG attribute: {e}")))?;
                    let key = a.key.local_name().as_ref().to_ascii_lowercase();
                    let v = a
                        .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                        .map_err(|e| ierr(format!("SVG attribute: {e}")))?;
                    if key.starts_with("on") {
                        return Err(ierr(format!("SVG with an event handler {key}")));
                    }
                    let v = v.trim().to_ascii_lowercase();
                    let external = |v: &str| {
                        !(v.starts_with('#')
                            || v.starts_with("data:image/png")
                            || v.starts_with("data:image/jpeg"))
                    };
                    if key == "href" && external(&v) {
                        return Err(ierr(format!("SVG referring to {v:?}")));
                    }
                    if refers_outside(&v) {
                        return Err(ierr(format!("SVG referring outside itself in {key}")));
                    }
                }
            }
            _ => {}
        }
    }
    if root {
        return Err(ierr("an empty SVG".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn launch() -> Launch<'static> {
        Launch {
            exe: "/usr/bin/berth",
            key: "org.example.Viewer",
            icon: "org.example.Viewer",
            name: "Viewer",
        }
    }

    fn entry(s: &str) -> Result<Generated, ExportError> {
        generate_entry(&launch(), Some(s))
    }

    fn execs(text: &str) -> Vec<&str> {
        text.lines()
            .filter(|l| l.split('=').next().map(str::trim) == Some("Exec"))
            .collect()
    }

    #[test]
    fn exec_is_berths_and_arguments_are_kept() {
        let g = entry(
            "[Desktop Entry]\nName=Viewer\nName[de]=Betrachter\nExec=/usr/bin/viewer --new \"a b\" %f\nTryExec=viewer\nIcon=viewer\nMimeType=image/png;\nX-GNOME-Autostart-enabled=true\nDBusActivatable=true\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            execs(&g.text),
            vec!["Exec=/usr/bin/berth run org.example.Viewer -- --new \"a b\" @@ %f @@"]
        );
        assert!(g.text.contains("Name[de]=Betrachter\n"));
        assert!(g.text.contains("Icon=org.example.Viewer\n"));
        for k in ["TryExec", "DBusActivatable", "X-GNOME", "Icon=viewer"] {
            assert!(!g.text.contains(k), "{k} in {}", g.text);
        }
        // A literal `%f` (written `%%f`) is not turned into a field code.
        let lit =
            entry("[Desktop Entry]\nName=A\nExec=a %%f %U\n").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            execs(&lit.text),
            vec!["Exec=/usr/bin/berth run org.example.Viewer -- %%f @@u %U @@"]
        );
        let plain = generate_entry(&launch(), None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            execs(&plain.text),
            vec!["Exec=/usr/bin/berth run org.example.Viewer"]
        );
    }

    #[test]
    fn spaced_exec_keys_and_injected_lines_give_no_command() {
        for attack in [
            "[Desktop Entry]\nName=A\nExec =sh -c evil\n",
            "[Desktop Entry]\nName=A\nExec\t=sh -c evil\n",
            "[Desktop Entry]\nName=A\\nExec=sh -c evil\n",
            "[Desktop Entry]\nName=A\nExec=app\nExec=sh -c evil\n",
            "[Desktop Entry]\nName=A\nExec=app \"$(evil)\" `evil` %k %c %i --x=%f\n",
        ] {
            // Refusing is fine; what comes out has berth's Exec only.
            if let Ok(g) = entry(attack) {
                let e = execs(&g.text);
                assert_eq!(e.len(), 1, "{attack:?}: {}", g.text);
                assert!(
                    e[0].starts_with("Exec=/usr/bin/berth run org.example.Viewer"),
                    "{}",
                    g.text
                );
                assert!(!g.text.contains("sh -c"), "{}", g.text);
            }
        }
        let bad_name = Launch {
            name: "A\nExec=sh",
            ..launch()
        };
        assert!(generate_entry(&bad_name, None).is_err());
        for bad in [
            "[Desktop Entry]\nType=Link\nURL=file:///etc/passwd\nName=A\n",
            "[Desktop Entry]\nName=A\u{1b}[2K\n",
            "[Desktop Entry]\nName=A\\rB\n",
            "[Desktop Entry]\nName=A\nTerminal=maybe\n",
            "[Desktop Entry]\nName=A\nMimeType=x;\n",
            "Name=A\n",
        ] {
            assert!(entry(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn quoting_survives_odd_paths() {
        let l = Launch {
            exe: "/opt/my tools/be$rth\"x",
            ..launch()
        };
        let g = generate_entry(
            &l,
            Some("[Desktop Entry]\nName=A\nExec=a 100%% \"q\\\\\\\\x\"\n"),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let e = execs(&g.text)[0].strip_prefix("Exec=").unwrap_or_default();
        assert_eq!(
            split_exec(e).ok(),
            Some(vec![
                "/opt/my tools/be$rth\"x".to_owned(),
                "run".into(),
                "org.example.Viewer".into(),
                "--".into(),
                "100%%".into(),
                "q\\x".into(),
            ])
        );
    }

    #[test]
    fn actions_are_regenerated() {
        let g = entry(
            "[Desktop Entry]\nName=A\nExec=a\nActions=new;gone;\n\n[Desktop Action new]\nName=New\nExec=a --new\nIcon=x\n\n[Desktop Action other]\nName=O\nExec=sh\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(g.text.contains("Actions=new;\n"), "{}", g.text);
        assert!(g.text.contains("[Desktop Action new]\nName=New\nExec=/usr/bin/berth run org.example.Viewer -- --new\nIcon=org.example.Viewer\n"), "{}", g.text);
        assert!(!g.text.contains("Desktop Action other"));
    }

    #[test]
    fn mime_is_parsed_and_reemitted() {
        let xml = r#"<?xml version="1.0"?>
<mime-info xmlns="http://www.freedesktop.org/standards/shared-mime-info">
  <mime-type type="application/x-viewer">
    <comment>Viewer &amp; co</comment>
    <comment xml:lang="de">Betrachter</comment>
    <glob pattern="*.vwr"/>
    <glob pattern="*.txt" weight="100"/>
    <glob pattern="*.*"/>
    <glob pattern="Makefile"/>
    <magic priority="90"><match type="string" offset="0" value="%PDF"/></magic>
    <sub-class-of type="text/plain"/>
  </mime-type>
  <mime-type type="text/html"><glob pattern="*.html"/></mime-type>
</mime-info>"#;
        let t = parse_mime(xml).unwrap_or_else(|e| panic!("{e}"));
        let (out, skipped) = emit_mime(&t, &|n| n == "text/html");
        let out = out.unwrap_or_default();
        assert_eq!(skipped, vec!["text/html"]);
        assert!(out.contains("<comment>Viewer &amp; co</comment>"), "{out}");
        assert!(
            out.contains("*.vwr") && !out.contains("*.txt") && !out.contains("magic"),
            "{out}"
        );
        assert!(parse_mime(&out).is_ok());
        for bad in [
            "<!DOCTYPE x [<!ENTITY a \"b\">]><mime-info xmlns=\"http://www.freedesktop.org/standards/shared-mime-info\"/>",
            "<mime-info xmlns=\"http://www.freedesktop.org/standards/shared-mime-info\"><mime-type type=\"a/b\"><comment>&a;</comment></mime-type></mime-info>",
            "<mime-info xmlns=\"http://www.freedesktop.org/standards/shared-mime-info\"><mime-type type=\"a b\"/></mime-info>",
            "<other/>",
        ] {
            assert!(parse_mime(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn icons_are_checked_by_content() {
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        png.extend_from_slice(&64u32.to_be_bytes());
        png.extend_from_slice(&64u32.to_be_bytes());
        png.extend_from_slice(&[8, 6, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(check_icon(&png), Ok(IconKind::Png(64)));
        assert_eq!(IconKind::Png(64).place(), ("64x64".into(), "png"));
        let svg = br##"<svg xmlns="http://www.w3.org/2000/svg"><rect fill="url(#g)"/><use href="#a"/></svg>"##;
        assert_eq!(check_icon(svg), Ok(IconKind::Svg));
        for bad in [
            &b"/* XPM */\nstatic char *x[] = {\"1 1 1 1\"};"[..],
            b"<svg><script>alert(1)</script></svg>",
            b"<svg onload=\"x()\"/>",
            b"<svg><image href=\"file:///etc/passwd\"/></svg>",
            b"<!DOCTYPE svg [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><svg>&x;</svg>",
            b"<html/>",
            b"\xff\xd8\xff\xe0 jpeg",
            b"<svg><rect fill=\"url(#a) url(http://x/y.svg#f)\"/></svg>",
            b"<svg><style>@import url(http://x/a.css);</style></svg>",
            b"<svg><style><![CDATA[rect { fill: url(file:///etc/passwd) }]]></style></svg>",
        ] {
            assert!(check_icon(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    mod fuzz {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(3000))]

            /// Whatever the image's entry holds, the output's only commands
            /// are berth's, one per group, and it reads back the same.
            #[test]
            fn only_berth_commands_come_out(lines in prop::collection::vec(
                prop::string::string_regex("(\\[Desktop Entry\\]|\\[Desktop Action a\\]|Exec|Name|Actions|Type|Icon|MimeType|TryExec| |\\t|=|\\\\|\\r|\\x1b|;|a|%f|%k|\"|sh -c x|\\[de\\]){0,8}").unwrap_or_else(|e| panic!("{e}")),
                0..10,
            )) {
                let text = lines.join("\n");
                if let Ok(g) = generate_entry(&launch(), Some(&text)) {
                    let groups = parse_groups(&g.text);
                    prop_assert!(groups.is_ok(), "{:?}", g.text);
                    for gr in groups.unwrap_or_default() {
                        let ex: Vec<_> = gr.attrs.iter().filter(|(n, _, _)| n == "Exec").collect();
                        prop_assert_eq!(ex.len(), 1, "{}", g.text);
                        prop_assert!(ex[0].2.starts_with("/usr/bin/berth run org.example.Viewer"));
                        prop_assert!(gr.attrs.iter().all(|(n, _, _)| n != "TryExec" && n != "Type" || gr.title == "Desktop Entry"));
                    }
                    prop_assert!(!g.text.chars().any(|c| is_unsafe(c) && c != '\n'));
                }
            }
        }
    }
}

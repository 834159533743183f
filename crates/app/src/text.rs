//! Text from images and registries, made safe to show. A terminal obeys
//! escape sequences, and bidi overrides reorder what the eye reads, so an
//! app name could erase or fake review lines (the CVE-2023-28101 class).
//! Every such character is rendered visibly as `\uXXXX`, a form that is
//! also a valid JSON string escape.

use std::borrow::Cow;
use std::fmt::Write;

/// Characters that change how a terminal or a bidi renderer shows the
/// text around them: C0/C1 controls, DEL, bidi embeddings, overrides,
/// isolates and marks, zero-width characters, line and paragraph
/// separators, the BOM and tag characters.
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{206F}'
                | '\u{061C}'
                | '\u{FEFF}'
                | '\u{FFF9}'..='\u{FFFB}'
                | '\u{E0000}'..='\u{E007F}'
        )
}

fn push_escaped(out: &mut String, c: char) {
    let mut buf = [0u16; 2];
    for u in c.encode_utf16(&mut buf) {
        let _ = write!(out, "\\u{u:04X}");
    }
}

/// `s` with every unsafe character escaped, newlines and tabs included:
/// for a value shown on one line (a name, a path, a table cell).
pub fn escape(s: &str) -> Cow<'_, str> {
    escape_keep(s, false)
}

/// Like `escape`, but keeps `\n` and `\t`: for whole messages whose line
/// breaks are berth's own.
pub fn escape_lines(s: &str) -> Cow<'_, str> {
    escape_keep(s, true)
}

fn escape_keep(s: &str, keep_lines: bool) -> Cow<'_, str> {
    let bad = |c: char| is_unsafe(c) && !(keep_lines && (c == '\n' || c == '\t'));
    if !s.chars().any(bad) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        if bad(c) {
            push_escaped(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_a_terminal_would_obey() {
        let attack = "Fine\u{1b}[1A\u{1b}[2K\r\u{9b}31m\u{202e}gpj.exe\u{7}\u{200b}";
        let e = escape(attack);
        assert!(!e.chars().any(is_unsafe), "{e}");
        assert_eq!(
            e,
            "Fine\\u001B[1A\\u001B[2K\\u000D\\u009B31m\\u202Egpj.exe\\u0007\\u200B"
        );
        assert_eq!(escape("a\nb"), "a\\u000Ab");
        assert_eq!(escape_lines("a\nb\tc\u{1b}"), "a\nb\tc\\u001B");
        assert!(matches!(escape("plain ünïcode ✓"), Cow::Borrowed(_)));
        assert_eq!(escape("\u{E0041}"), "\\uDB40\\uDC41");
        // The escaped form is a JSON string escape of the same text.
        let json = format!("\"{}\"", escape("x\u{202e}y"));
        assert_eq!(
            serde_json::from_str::<String>(&json).ok().as_deref(),
            Some("x\u{202e}y")
        );
    }
}

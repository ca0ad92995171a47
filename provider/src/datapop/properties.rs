//! Writing `key=value` lines that `java.util.Properties.load` reads back
//! exactly: what the Data Population tool (a Java program) does with the
//! staged `database.properties`.
//!
//! `load` reads ISO 8859-1 and treats `\` as an escape, `=`, `:` and
//! whitespace as the end of a key, `#` and `!` at the start of a line as a
//! comment, leading whitespace of a value as padding, and a trailing `\`
//! as a line continuation. So, as `Properties.store` does: `\` becomes
//! `\\`; `=`, `:`, `#` and `!` are escaped; every space in a key and a
//! leading space of a value are escaped; tab, line feed, carriage return
//! and form feed become `\t`, `\n`, `\r`, `\f`; and every other character
//! outside printable ASCII becomes `\uXXXX` (UTF-16 units, so a character
//! beyond the BMP is a surrogate pair).

use std::fmt::Write;

fn escape(s: &str, is_key: bool) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for (i, c) in s.chars().enumerate() {
        match c {
            '\\' => out.push_str("\\\\"),
            '=' | ':' | '#' | '!' => {
                out.push('\\');
                out.push(c);
            }
            ' ' if is_key || i == 0 => out.push_str("\\ "),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    // Writing into a String cannot fail.
                    let _ = write!(out, "\\u{u:04X}");
                }
            }
        }
    }
    out
}

/// `key` escaped for the key position.
pub fn escape_key(key: &str) -> String {
    escape(key, true)
}

/// `value` escaped for the value position.
pub fn escape_value(value: &str) -> String {
    escape(value, false)
}

/// One `key=value` line, with its line feed.
pub fn line(key: &str, value: &str) -> String {
    format!("{}={}\n", escape_key(key), escape_value(value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `Properties.load` for one logical line, as its documentation
    /// specifies it: the reference the escaping is tested against.
    fn load_line(line: &str) -> Option<(String, String)> {
        let chars: Vec<char> = line.chars().collect();
        let mut i = 0;
        let ws = |c: char| c == ' ' || c == '\t' || c == '\u{c}';
        while i < chars.len() && ws(chars[i]) {
            i += 1;
        }
        if i == chars.len() || chars[i] == '#' || chars[i] == '!' {
            return None;
        }
        // The key runs to the first unescaped separator.
        let start = i;
        while i < chars.len() {
            match chars[i] {
                '\\' => i += 2,
                '=' | ':' => break,
                c if ws(c) => break,
                _ => i += 1,
            }
        }
        let key_end = i.min(chars.len());
        while i < chars.len() && ws(chars[i]) {
            i += 1;
        }
        if i < chars.len() && (chars[i] == '=' || chars[i] == ':') {
            i += 1;
        }
        while i < chars.len() && ws(chars[i]) {
            i += 1;
        }
        let raw_key: String = chars[start..key_end].iter().collect();
        let raw_value: String = chars[i.min(chars.len())..].iter().collect();
        Some((unescape(&raw_key), unescape(&raw_value)))
    }

    fn unescape(s: &str) -> String {
        let mut units: Vec<u16> = Vec::new();
        let mut it = s.chars().peekable();
        while let Some(c) = it.next() {
            if c != '\\' {
                let mut b = [0u16; 2];
                units.extend_from_slice(c.encode_utf16(&mut b));
                continue;
            }
            match it.next() {
                Some('t') => units.push(9),
                Some('n') => units.push(10),
                Some('r') => units.push(13),
                Some('f') => units.push(12),
                Some('u') => {
                    let hex: String = (0..4).filter_map(|_| it.next()).collect();
                    units.push(u16::from_str_radix(&hex, 16).expect("four hex digits"));
                }
                Some(other) => {
                    let mut b = [0u16; 2];
                    units.extend_from_slice(other.encode_utf16(&mut b));
                }
                None => {}
            }
        }
        String::from_utf16(&units).expect("valid UTF-16")
    }

    #[test]
    fn what_java_would_misread_is_escaped() {
        assert_eq!(escape_value(r"a\b"), r"a\\b");
        assert_eq!(escape_value("k=v:w#x!y"), r"k\=v\:w\#x\!y");
        assert_eq!(escape_value("  two"), r"\  two");
        assert_eq!(escape_value("in side "), "in side ");
        assert_eq!(escape_value("a\nb\r\tc\u{c}"), r"a\nb\r\tc\f");
        assert_eq!(escape_value("ü€"), r"\u00FC\u20AC");
        assert_eq!(escape_value("😀"), r"\uD83D\uDE00");
        assert_eq!(escape_value("end\\"), r"end\\", "no line continuation");
        assert_eq!(escape_key("a key"), r"a\ key");
        assert_eq!(
            line("data.population.password", "#!p w"),
            "data.population.password=\\#\\!p w\n"
        );
    }

    #[test]
    fn a_hostile_password_reads_back_unchanged() {
        let pw = " \\=:#! p\tw\"'ü€😀\\";
        let text = line("data.population.password", pw);
        assert_eq!(text.lines().count(), 1);
        assert!(text.is_ascii());
        assert_eq!(
            load_line(text.trim_end_matches('\n')),
            Some(("data.population.password".to_owned(), pw.to_owned()))
        );
    }

    proptest! {
        #[test]
        fn every_string_reads_back_unchanged(key in "\\PC{1,12}", value in "\\PC{0,24}|[ \\\\=:#!\t\n\r]{0,8}") {
            let text = line(&key, &value);
            prop_assert!(text.is_ascii());
            prop_assert_eq!(text.lines().count(), 1);
            prop_assert_eq!(load_line(text.trim_end_matches('\n')), Some((key, value)));
        }
    }
}

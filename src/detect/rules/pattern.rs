//! The values of `content` and `pcre`: what bytes a rule looks for.
//!
//! A content string mixes text and hex (`"GET |20|/"`), with `\"`, `\;`,
//! `\\` and `\:` escaping those characters. A pcre value is `"/regex/flags"`;
//! its flags are kept as they are for the matcher to interpret.

use super::buffer::{pcre_flag, Buffer};
use super::Inspected;
use super::RuleErrorKind;

/// One `content` match with its modifiers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Content {
    /// The bytes.
    pub bytes: Vec<u8>,
    /// `!"..."`: the bytes must not be present.
    pub negated: bool,
    /// Case-insensitive (ASCII).
    pub nocase: bool,
    /// Bytes from the start of the buffer the match may begin at, at least.
    pub offset: Option<u32>,
    /// Bytes from `offset` within which the match must end.
    pub depth: Option<u32>,
    /// Bytes after the previous match's end the match may begin at, at least
    /// (may be negative).
    pub distance: Option<i32>,
    /// Bytes after the previous match's end within which the match must end.
    pub within: Option<u32>,
    /// `startswith`: the match begins the buffer.
    pub startswith: bool,
    /// `endswith`: the match ends the buffer.
    pub endswith: bool,
    /// `fast_pattern`: the rule's prefilter pattern is this one.
    pub fast_pattern: bool,
    /// What it inspects.
    pub inspected: Inspected,
}

impl Content {
    /// True when `distance` or `within` ties this match to the previous one.
    pub fn is_relative(&self) -> bool {
        self.distance.is_some() || self.within.is_some()
    }
}

/// One `pcre` match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pcre {
    /// The expression between the slashes.
    pub pattern: String,
    /// `i`: case-insensitive.
    pub caseless: bool,
    /// `s`: dot matches newline.
    pub dotall: bool,
    /// `m`: `^` and `$` at line ends.
    pub multiline: bool,
    /// `x`: extended (white space in the pattern ignored).
    pub extended: bool,
    /// `R`: matched from the end of the previous match.
    pub relative: bool,
    /// `!"/.../"`: the expression must not match.
    pub negated: bool,
    /// What it inspects (set by an HTTP flag or the sticky buffer).
    pub inspected: Inspected,
}

/// Decodes a content value (quotes already removed).
pub fn parse_content(text: &str) -> Result<Vec<u8>, RuleErrorKind> {
    let mut bytes = Vec::with_capacity(text.len());
    let mut chars = text.chars();
    let mut in_hex = false;
    let mut hex_digit: Option<u8> = None;
    while let Some(c) = chars.next() {
        if in_hex {
            match c {
                '|' => {
                    if hex_digit.is_some() {
                        return Err(RuleErrorKind::BadHex(text.to_owned()));
                    }
                    in_hex = false;
                }
                ' ' => {
                    if hex_digit.is_some() {
                        return Err(RuleErrorKind::BadHex(text.to_owned()));
                    }
                }
                c => {
                    let value = c
                        .to_digit(16)
                        .ok_or_else(|| RuleErrorKind::BadHex(text.to_owned()))?
                        as u8;
                    match hex_digit.take() {
                        Some(high) => bytes.push(high << 4 | value),
                        None => hex_digit = Some(value),
                    }
                }
            }
            continue;
        }
        match c {
            '|' => in_hex = true,
            '\\' => match chars.next() {
                Some(e @ ('"' | ';' | '\\' | ':' | '|')) => bytes.push(e as u8),
                other => {
                    return Err(RuleErrorKind::Syntax(format!(
                        "bad escape \\{} in content",
                        other.map(String::from).unwrap_or_default()
                    )))
                }
            },
            '"' => {
                return Err(RuleErrorKind::Syntax(
                    "unescaped quote inside content".into(),
                ))
            }
            c => {
                let mut buf = [0u8; 4];
                bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    if in_hex {
        return Err(RuleErrorKind::BadHex(text.to_owned()));
    }
    if bytes.is_empty() {
        return Err(RuleErrorKind::Syntax("empty content".into()));
    }
    Ok(bytes)
}

/// Parses a pcre value (quotes removed): `/regex/flags`. Besides
/// `i s m x R`, the HTTP buffer flags (`U I P Q H D M C S Y V W Z`) set the
/// buffer, and `O` (match limit override) and `B` (raw bytes) change
/// nothing here; other flags are returned as unsupported.
pub fn parse_pcre(text: &str, negated: bool) -> Result<Pcre, RuleErrorKind> {
    let bad = || RuleErrorKind::Syntax(format!("pcre must be /regex/flags: {text:?}"));
    let body = text.strip_prefix('/').ok_or_else(bad)?;
    let end = body.rfind('/').ok_or_else(bad)?;
    let (pattern, flags) = (&body[..end], &body[end + 1..]);
    let mut pcre = Pcre {
        pattern: pattern.to_owned(),
        caseless: false,
        dotall: false,
        multiline: false,
        extended: false,
        relative: false,
        negated,
        inspected: Inspected::default(),
    };
    for flag in flags.chars() {
        match flag {
            'i' => pcre.caseless = true,
            's' => pcre.dotall = true,
            'm' => pcre.multiline = true,
            'x' => pcre.extended = true,
            'R' => pcre.relative = true,
            'O' | 'B' => {}
            flag if pcre_flag(flag).is_some() => {
                pcre.inspected.buffer = pcre_flag(flag).map_or(Buffer::Payload, Buffer::Http);
            }
            other => return Err(RuleErrorKind::Unsupported(format!("pcre flag {other}"))),
        }
    }
    Ok(pcre)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_mixes_text_hex_and_escapes() {
        assert_eq!(parse_content("GET |20 2f|x").unwrap(), b"GET  /x");
        assert_eq!(parse_content("a\\;b\\\"c\\\\").unwrap(), b"a;b\"c\\");
        assert_eq!(parse_content("|0D0A|").unwrap(), b"\r\n");
    }

    #[test]
    fn bad_hex_is_an_error() {
        assert!(matches!(
            parse_content("|0G|"),
            Err(RuleErrorKind::BadHex(_))
        ));
        assert!(matches!(
            parse_content("|0|"),
            Err(RuleErrorKind::BadHex(_))
        ));
        assert!(matches!(
            parse_content("|41"),
            Err(RuleErrorKind::BadHex(_))
        ));
        assert!(parse_content("").is_err());
    }

    #[test]
    fn pcre_keeps_its_flags_and_reads_buffer_ones() {
        let p = parse_pcre("/^GET\\s+\\/x/smiR", false).unwrap();
        assert_eq!(p.pattern, "^GET\\s+\\/x");
        assert!(p.dotall && p.multiline && p.caseless && p.relative && !p.extended);
        assert_eq!(
            parse_pcre("/a/Ui", false).unwrap().inspected.buffer,
            Buffer::Http(crate::detect::rules::HttpBuffer::Uri)
        );
        assert_eq!(
            parse_pcre("/a/G", false).unwrap_err(),
            RuleErrorKind::Unsupported("pcre flag G".into())
        );
        assert!(parse_pcre("abc", false).is_err());
    }
}

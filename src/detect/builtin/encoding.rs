//! The encodings tools wrap their data in, read back: base64 (standard and
//! URL-safe, line-wrapped or not), Cobalt Strike's NetBIOS nibbles,
//! `application/x-www-form-urlencoded` bodies, and the tell-tale of data
//! XOR-ed with a key written in hex digits.

use std::borrow::Cow;

use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;

use crate::detect::rules::buffer::url_decode;

const CONFIG: GeneralPurposeConfig = GeneralPurposeConfig::new()
    .with_decode_allow_trailing_bits(true)
    .with_decode_padding_mode(DecodePaddingMode::Indifferent);
const STANDARD: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::STANDARD, CONFIG);
const URL_SAFE: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::URL_SAFE, CONFIG);

/// `text` decoded as base64 when all of it is (standard or URL-safe
/// alphabet, padding optional, line breaks allowed) and it holds at least
/// `min` bytes.
pub fn base64(text: &[u8], min: usize) -> Option<Vec<u8>> {
    let text = trim(text);
    if text.len() < (min.div_ceil(3) * 4).saturating_sub(2) {
        return None;
    }
    let (mut standard, mut url_safe, mut breaks) = (false, false, false);
    for (i, &b) in text.iter().enumerate() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' => {}
            b'+' | b'/' => standard = true,
            b'-' | b'_' => url_safe = true,
            b'=' if text[i..].iter().all(|&p| matches!(p, b'=' | b'\r' | b'\n')) => {}
            b'\r' | b'\n' => breaks = true,
            _ => return None,
        }
    }
    if standard && url_safe {
        return None;
    }
    let joined;
    let text = if breaks {
        joined = text
            .iter()
            .copied()
            .filter(|b| !matches!(b, b'\r' | b'\n'))
            .collect::<Vec<u8>>();
        &joined[..]
    } else {
        text
    };
    let unpadded = text.iter().rposition(|&b| b != b'=').map_or(0, |p| p + 1);
    if unpadded % 4 == 1 {
        return None;
    }
    let engine = if url_safe { &URL_SAFE } else { &STANDARD };
    engine
        .decode(&text[..unpadded])
        .ok()
        .filter(|d| d.len() >= min)
}

/// `text` without white space around it.
pub fn trim(text: &[u8]) -> &[u8] {
    let start = text
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(text.len());
    let end = text
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &text[start..end]
}

/// `text` decoded from NetBIOS encoding: each byte as two letters from `a`
/// (or `A`) up, high nibble first.
pub fn netbios(text: &[u8]) -> Option<Vec<u8>> {
    if text.is_empty() || text.len() % 2 == 1 {
        return None;
    }
    let base = if text[0].is_ascii_uppercase() {
        b'A'
    } else {
        b'a'
    };
    text.chunks(2)
        .map(|pair| {
            let high = pair[0].checked_sub(base).filter(|n| *n < 16)?;
            let low = pair[1].checked_sub(base).filter(|n| *n < 16)?;
            Some(high << 4 | low)
        })
        .collect()
}

/// True when every byte of `text` is a hex digit (and there is one).
pub fn is_hex(text: &[u8]) -> bool {
    !text.is_empty() && text.iter().all(u8::is_ascii_hexdigit)
}

/// Share of `bytes` that is not printable text (tabs and line ends are
/// text), from 0 to 1.
pub fn binary_share(bytes: &[u8]) -> f64 {
    if bytes.is_empty() {
        return 0.0;
    }
    let binary = bytes
        .iter()
        .filter(|&&b| !(b.is_ascii_graphic() || matches!(b, b' ' | b'\t' | b'\r' | b'\n')))
        .count();
    binary as f64 / bytes.len() as f64
}

/// True when `payload` starts with `known` XOR-ed with a key of hex
/// digits: each byte of `payload` XOR the known byte is a hex digit.
/// Tools that derive their key from an MD5 in hex (Godzilla, Behinder)
/// leak it this way over any plaintext they always send, whatever the key.
pub fn xor_hex_key(payload: &[u8], known: &[u8]) -> bool {
    payload.len() > known.len()
        && payload
            .iter()
            .zip(known)
            .all(|(p, k)| (p ^ k).is_ascii_hexdigit())
}

/// The parameters of a form body (`name=value&...`), URL-decoded; only
/// those with escapes are copied.
pub fn form(body: &[u8]) -> impl Iterator<Item = (Cow<'_, [u8]>, Cow<'_, [u8]>)> {
    fn decoded(bytes: &[u8]) -> Cow<'_, [u8]> {
        if bytes.iter().any(|&b| b == b'%' || b == b'+') {
            Cow::Owned(url_decode(bytes))
        } else {
            Cow::Borrowed(bytes)
        }
    }
    body.split(|&b| b == b'&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (name, value) = match pair.iter().position(|&b| b == b'=') {
                Some(at) => (&pair[..at], &pair[at + 1..]),
                None => (pair, &[][..]),
            };
            (decoded(name), decoded(value))
        })
}

/// Where `needle` first is in `haystack`, ASCII case ignored.
pub fn find_ignore_case(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    let (&first, rest) = needle.split_first()?;
    let last = haystack.len().checked_sub(needle.len())?;
    memchr::memchr2_iter(
        first.to_ascii_lowercase(),
        first.to_ascii_uppercase(),
        &haystack[..=last],
    )
    .find(|&at| haystack[at + 1..at + needle.len()].eq_ignore_ascii_case(rest))
}

/// True when `needle` is in `haystack`, ASCII case ignored.
pub fn contains_ignore_case(haystack: &[u8], needle: &[u8]) -> bool {
    find_ignore_case(haystack, needle).is_some()
}

/// Bytes the least repeated: how many distinct byte values `bytes` has.
pub fn distinct(bytes: &[u8]) -> usize {
    let mut seen = [false; 256];
    for &b in bytes {
        seen[usize::from(b)] = true;
    }
    seen.iter().filter(|s| **s).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_in_its_forms() {
        assert_eq!(
            base64(b"aGVsbG8gd29ybGQ=", 4).as_deref(),
            Some(&b"hello world"[..])
        );
        assert_eq!(
            base64(b"aGVsbG8gd29ybGQ", 4).as_deref(),
            Some(&b"hello world"[..])
        );
        assert_eq!(
            base64(b"aGVsbG8g\r\nd29ybGQ=", 4).as_deref(),
            Some(&b"hello world"[..])
        );
        assert_eq!(base64(b"-_-_", 1).as_deref(), Some(&[0xfb, 0xff, 0xbf][..]));
        assert_eq!(base64(b"aGVs bG8=", 1), None);
        assert_eq!(base64(b"+/-_", 1), None, "mixed alphabets");
        assert_eq!(base64(b"aGVsbG8=", 10), None, "too short");
        assert_eq!(base64(b"a=b=", 1), None);
    }

    #[test]
    fn netbios_nibbles() {
        assert_eq!(netbios(b"gigj").as_deref(), Some(&b"hi"[..]));
        assert_eq!(netbios(b"GIGJ").as_deref(), Some(&b"hi"[..]));
        assert_eq!(netbios(b"gigz"), None);
        assert_eq!(netbios(b"gig"), None);
    }

    #[test]
    fn a_hex_key_shows_through_known_plaintext() {
        let mut seed = 17u64;
        for _ in 0..100 {
            let key: Vec<u8> = (0..16)
                .map(|_| {
                    seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                    b"0123456789abcdef"[(seed >> 60) as usize]
                })
                .collect();
            let plain = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03compressed";
            let cipher: Vec<u8> = plain
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ key[(i + 1) & 15])
                .collect();
            assert!(xor_hex_key(&cipher, &plain[..8]));
            let other: Vec<u8> = cipher.iter().map(|b| b ^ 0x80).collect();
            assert!(!xor_hex_key(&other, &plain[..8]));
        }
    }

    #[test]
    fn case_is_ignored_in_searches() {
        assert_eq!(find_ignore_case(b"cd /tmp; WGet http", b"wget"), Some(9));
        assert_eq!(find_ignore_case(b"wge", b"wget"), None);
        assert_eq!(find_ignore_case(b"xxWGET", b"wget"), Some(2));
        assert_eq!(find_ignore_case(b"wwwwget", b"wget"), Some(3));
        assert!(!contains_ignore_case(b"widget", b"wget"));
    }

    #[test]
    fn form_bodies_are_split_and_decoded() {
        assert_eq!(
            form(b"a=%40eval(x)&b=1+2&flag")
                .map(|(name, value)| (name.into_owned(), value.into_owned()))
                .collect::<Vec<_>>(),
            vec![
                (b"a".to_vec(), b"@eval(x)".to_vec()),
                (b"b".to_vec(), b"1 2".to_vec()),
                (b"flag".to_vec(), Vec::new()),
            ]
        );
    }
}

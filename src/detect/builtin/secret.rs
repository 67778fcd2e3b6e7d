//! Secrets seen in traffic (passwords, access keys) as findings show them:
//! never in full. A secret is written as its first and last character and
//! its length, `s…e (12 chars)`, or as its length alone when it is four
//! characters or shorter (its ends would be most of it). With
//! `[detectors] secret_hash_key` set, a keyed hash follows (HMAC-SHA256 of
//! the secret, its first 8 bytes in hex), so that two sightings of one
//! secret can be matched without either being readable.

use std::borrow::Cow;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::credentials::{field_name, is_password_field};
use super::secret_leak;

/// Shortest secret whose first and last characters are shown.
const MIN_SHOWN: usize = 5;

/// Masks secrets, with the keyed hash when a key is set.
#[derive(Clone, Default)]
pub struct Masker {
    key: Option<Vec<u8>>,
}

impl std::fmt::Debug for Masker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Masker")
            .field("keyed", &self.key.is_some())
            .finish()
    }
}

impl Masker {
    /// A masker hashing with `key` (none when empty).
    pub fn new(key: &str) -> Self {
        Self {
            key: (!key.is_empty()).then(|| key.as_bytes().to_vec()),
        }
    }

    /// `secret` as findings may show it.
    pub fn mask(&self, secret: &[u8]) -> String {
        let text = String::from_utf8_lossy(secret);
        let chars: Vec<char> = text.chars().collect();
        let mut shown = match chars.as_slice() {
            [first, .., last] if chars.len() >= MIN_SHOWN => {
                format!(
                    "{}…{} ({} chars)",
                    printable(*first),
                    printable(*last),
                    chars.len()
                )
            }
            _ => format!("({} chars)", chars.len()),
        };
        if let Some(key) = &self.key {
            let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
            mac.update(secret);
            let digest = mac.finalize().into_bytes();
            shown.push_str(", hmac ");
            for b in &digest[..8] {
                shown.push_str(&format!("{b:02x}"));
            }
        }
        shown
    }
}

/// `text` with its secrets masked: the values of password fields in its
/// query (`?user=bob&password=...`), and the credentials
/// [`secret_leak::find`] finds in it.
pub fn redact(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    let mut spans: Vec<(usize, usize)> = Vec::new();
    if let Some(query) = memchr::memchr(b'?', bytes) {
        let mut at = query + 1;
        for pair in bytes[query + 1..].split(|&b| b == b'&') {
            if let Some(eq) = memchr::memchr(b'=', pair) {
                if eq + 1 < pair.len() && is_password_field(&field_name(&pair[..eq])) {
                    spans.push((at + eq + 1, at + pair.len()));
                }
            }
            at += pair.len() + 1;
        }
    }
    secret_leak::find(bytes, |leak, _| {
        let start = leak.secret.as_ptr() as usize - bytes.as_ptr() as usize;
        spans.push((start, start + leak.secret.len()));
    });
    if spans.is_empty() {
        return Cow::Borrowed(text);
    }
    spans.sort_unstable();
    let masker = Masker::default();
    let mut out = String::with_capacity(text.len());
    let mut done = 0;
    for (start, end) in spans {
        if start < done {
            continue;
        }
        out.push_str(&String::from_utf8_lossy(&bytes[done..start]));
        out.push('[');
        out.push_str(&masker.mask(&bytes[start..end]));
        out.push(']');
        done = end;
    }
    out.push_str(&String::from_utf8_lossy(&bytes[done..]));
    Cow::Owned(out)
}

/// A character as metadata shows it: itself when printable, else `.`.
fn printable(c: char) -> char {
    if c.is_control() {
        '.'
    } else {
        c
    }
}

#[cfg(test)]
mod tests {
    use super::super::variants::Random;
    use super::*;

    #[test]
    fn a_secret_is_never_shown_in_full() {
        let masker = Masker::default();
        assert_eq!(masker.mask(b"SecurePasswordHere"), "S…e (18 chars)");
        assert_eq!(masker.mask(b"admin"), "a…n (5 chars)");
        assert_eq!(masker.mask(b"dbps"), "(4 chars)");
        assert_eq!(masker.mask(b""), "(0 chars)");
        let mut random = Random::new(3);
        for _ in 0..500 {
            let secret = random.word_of(5, 30);
            let shown = masker.mask(secret.as_bytes());
            assert!(!shown.contains(&secret[1..secret.len() - 1]), "{shown}");
        }
    }

    #[test]
    fn redacted_text_keeps_all_but_its_secrets() {
        let uri = "/login?user=bob&password=Hunter22x&next=/home";
        assert_eq!(
            redact(uri),
            "/login?user=bob&password=[H…x (9 chars)]&next=/home"
        );
        let key = "AIzaSyB1c2D3e4F5g6H7i8J9k0LmNoPqRsTuVwX";
        assert_eq!(
            redact(&format!("/geo?key={key}&q=x")),
            "/geo?key=[A…X (39 chars)]&q=x"
        );
        assert_eq!(redact("/index.html?page=2"), "/index.html?page=2");
    }

    #[test]
    fn the_keyed_hash_matches_sightings_and_depends_on_the_key() {
        let one = Masker::new("fleet key");
        let other = Masker::new("another key");
        let a = one.mask(b"hunter22");
        assert_eq!(a, one.mask(b"hunter22"));
        assert_ne!(a, one.mask(b"hunter23"));
        assert_ne!(a, other.mask(b"hunter22"));
        // RFC 4231 test case 2: HMAC-SHA256("Jefe", "what do ya want for
        // nothing?") begins 5bdcc146bf60754e.
        assert!(Masker::new("Jefe")
            .mask(b"what do ya want for nothing?")
            .ends_with(", hmac 5bdcc146bf60754e"));
    }
}

//! What makes a password weak. Each rule can be turned off in
//! `[detectors.credentials]`:
//!
//! - it is in the dictionary (`signatures/weak-passwords.txt`: the most
//!   common passwords, vendor and device defaults), case ignored;
//! - it equals the user name or contains it (names of three characters or
//!   more), case ignored;
//! - it is digits only;
//! - it is a keyboard run (`qwerty`, `1qaz2wsx`, `asdf`), an alphabet or
//!   number run (`abcdef`, `987654`) or one character repeated;
//! - it is shorter than `min_length`.

use std::collections::HashSet;
use std::path::Path;

use rustc_hash::FxBuildHasher;

/// Keyboard rows and columns, and the alphabet: a password inside one of
/// them (or inside one reversed) is a run.
const RUNS: &[&[u8]] = &[
    b"`1234567890-=",
    b"qwertyuiop[]\\",
    b"asdfghjkl;'",
    b"zxcvbnm,./",
    b"1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik,9ol.0p;/-['=]",
    b"qazwsxedcrfvtgbyhnujmikolp",
    b"abcdefghijklmnopqrstuvwxyz",
    b"01234567890",
];

/// Shortest password that counts as a run (shorter ones are short anyway).
const MIN_RUN: usize = 4;

/// Which rules apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    pub dictionary: bool,
    pub user_name: bool,
    pub digits_only: bool,
    pub keyboard_run: bool,
    /// Shorter than this is weak (0: no length rule).
    pub min_length: usize,
}

/// The dictionary and the rules.
#[derive(Debug, Default)]
pub struct Policy {
    words: HashSet<Vec<u8>, FxBuildHasher>,
    rules: Option<Rules>,
}

impl Policy {
    /// The rules over the dictionary `words` (one password per line; `#`
    /// starts a comment line).
    pub fn new(rules: Rules, words: &str) -> Self {
        let words = words
            .lines()
            .filter(|line| !line.starts_with('#'))
            .map(|line| line.trim_end_matches(['\r', '\n']))
            .filter(|line| !line.is_empty())
            .map(|line| line.as_bytes().to_ascii_lowercase())
            .collect();
        Self {
            words,
            rules: Some(rules),
        }
    }

    /// The rules over the dictionary file `path`; an unreadable file leaves
    /// the dictionary empty and says so in `problems`.
    pub fn load(rules: Rules, path: &Path, problems: &mut Vec<String>) -> Self {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::new(rules, &text),
            Err(error) => {
                problems.push(format!(
                    "{}: {error}; weak passwords are not looked up in a dictionary",
                    path.display()
                ));
                Self::new(rules, "")
            }
        }
    }

    /// Passwords in the dictionary.
    pub fn dictionary_len(&self) -> usize {
        self.words.len()
    }

    /// Why `password` of `user` is weak, when it is.
    pub fn weakness(&self, user: &[u8], password: &[u8]) -> Option<&'static str> {
        let rules = self.rules.as_ref()?;
        let lower = password.to_ascii_lowercase();
        let user = user.to_ascii_lowercase();
        if rules.dictionary && self.words.contains(&lower) {
            return Some("dictionary");
        }
        if rules.user_name && !user.is_empty() {
            if lower == user {
                return Some("user-name");
            }
            if user.len() >= 3 && memchr::memmem::find(&lower, &user).is_some() {
                return Some("contains-user-name");
            }
        }
        if rules.digits_only && password.iter().all(u8::is_ascii_digit) {
            return Some("digits-only");
        }
        if rules.keyboard_run && run(&lower) {
            return Some("keyboard-run");
        }
        if chars(password) < rules.min_length {
            return Some("short");
        }
        None
    }
}

/// Characters of UTF-8 text (bytes of anything else).
fn chars(bytes: &[u8]) -> usize {
    std::str::from_utf8(bytes).map_or(bytes.len(), |text| text.chars().count())
}

/// True for a keyboard, alphabet or number run, or one character repeated.
fn run(lower: &[u8]) -> bool {
    if lower.len() < MIN_RUN {
        return false;
    }
    if lower.iter().all(|&b| b == lower[0]) {
        return true;
    }
    let reversed: Vec<u8> = lower.iter().rev().copied().collect();
    RUNS.iter().any(|row| {
        memchr::memmem::find(row, lower).is_some() || memchr::memmem::find(row, &reversed).is_some()
    })
}

#[cfg(test)]
mod tests {
    use super::super::variants::Random;
    use super::*;

    fn all() -> Rules {
        Rules {
            dictionary: true,
            user_name: true,
            digits_only: true,
            keyboard_run: true,
            min_length: 8,
        }
    }

    #[test]
    fn each_rule_names_its_reason() {
        let policy = Policy::new(all(), "# common\n123456\nPassword\nadmin\n");
        let weak =
            |user: &str, password: &str| policy.weakness(user.as_bytes(), password.as_bytes());
        assert_eq!(weak("root", "password"), Some("dictionary"));
        assert_eq!(weak("root", "ADMIN"), Some("dictionary"));
        assert_eq!(weak("operator", "Operator"), Some("user-name"));
        assert_eq!(weak("jsmith", "xjsmith!2024"), Some("contains-user-name"));
        assert_eq!(weak("root", "8675309123"), Some("digits-only"));
        assert_eq!(weak("root", "1qaz2wsx3edc"), Some("keyboard-run"));
        assert_eq!(weak("root", "poiuytrewq"), Some("keyboard-run"));
        assert_eq!(weak("root", "zzzzzzzzzz"), Some("keyboard-run"));
        assert_eq!(weak("root", "dbps"), Some("short"));
        assert_eq!(weak("ccso", "SecurePasswordHere"), None);
        assert_eq!(weak("fergus", "RolandDeschain"), None);
        assert_eq!(weak("", "seasonedcop"), None);
    }

    #[test]
    fn rules_turned_off_do_not_apply() {
        let none = Rules {
            dictionary: false,
            user_name: false,
            digits_only: false,
            keyboard_run: false,
            min_length: 0,
        };
        let policy = Policy::new(none, "admin\n");
        for (user, password) in [("admin", "admin"), ("x", "123"), ("x", "qwerty")] {
            assert_eq!(policy.weakness(user.as_bytes(), password.as_bytes()), None);
        }
    }

    #[test]
    fn random_long_passwords_are_not_weak_and_their_digit_forms_are() {
        let policy = Policy::new(all(), "");
        let mut random = Random::new(11);
        for _ in 0..1_000 {
            let user = random.word_of(4, 6);
            let password = random.string(b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ", 14);
            if !password.to_ascii_lowercase().contains(&user) {
                assert_eq!(
                    policy.weakness(user.as_bytes(), password.as_bytes()),
                    None,
                    "{password}"
                );
            }
            let digits = random.string(b"0123456789", 12);
            assert!(policy
                .weakness(user.as_bytes(), digits.as_bytes())
                .is_some());
        }
    }
}

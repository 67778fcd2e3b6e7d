//! Generated variants for the detectors' tests: keys, passwords, names,
//! sizes and intervals drawn from a seeded generator, so that each test
//! runs a mechanism over many values instead of one constant.

/// A small deterministic generator (a 64-bit LCG, high bits out).
#[derive(Debug, Clone)]
pub struct Random(u64);

/// Lower-case hex digits.
pub const HEX: &[u8] = b"0123456789abcdef";
/// Lower-case letters.
pub const LETTERS: &[u8] = b"abcdefghijklmnopqrstuvwxyz";

impl Random {
    /// A generator started at `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 31 random bits.
    pub fn draw(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    /// A number from `min` to `min + spread - 1`.
    pub fn between(&mut self, min: usize, spread: usize) -> usize {
        min + self.draw() as usize % spread.max(1)
    }

    /// `len` random bytes.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.draw() as u8).collect()
    }

    /// `min` to `min + spread - 1` random bytes.
    pub fn bytes_of(&mut self, min: usize, spread: usize) -> Vec<u8> {
        let len = self.between(min, spread);
        self.bytes(len)
    }

    /// `len` characters of `alphabet`.
    pub fn text(&mut self, alphabet: &[u8], len: usize) -> Vec<u8> {
        (0..len)
            .map(|_| alphabet[self.draw() as usize % alphabet.len()])
            .collect()
    }

    /// `min` to `min + spread - 1` characters of `alphabet`.
    pub fn text_of(&mut self, alphabet: &[u8], min: usize, spread: usize) -> Vec<u8> {
        let len = self.between(min, spread);
        self.text(alphabet, len)
    }

    /// `len` characters of `alphabet`, as a string.
    pub fn string(&mut self, alphabet: &[u8], len: usize) -> String {
        String::from_utf8_lossy(&self.text(alphabet, len)).into_owned()
    }

    /// A lower-case word of `len` letters.
    pub fn word(&mut self, len: usize) -> String {
        self.string(LETTERS, len)
    }

    /// A lower-case word of `min` to `min + spread - 1` letters.
    pub fn word_of(&mut self, min: usize, spread: usize) -> String {
        let len = self.between(min, spread);
        self.word(len)
    }

    /// A key of 16 hex digits, as tools derive from an MD5.
    pub fn hex_key(&mut self) -> Vec<u8> {
        self.text(HEX, 16)
    }
}

//! Verifies a rule's payload matches (`content` and `pcre`, in rule order)
//! over one buffer, with Suricata's positional semantics.
//!
//! Absolute contents search `[offset, offset + depth)`; relative ones
//! (`distance`, `within`) search from the end of the previous match plus
//! `distance`, ending `within` bytes after that. When a relative match fails,
//! the previous content is tried at its next occurrence (Suricata's
//! backtracking), so `content:"a"; content:"b"; distance:0; within:1;` finds
//! the "ab" in "a-ab". Negated items must be absent from their window and do
//! not move the match position. `pcre` runs through PCRE2 itself (the
//! engine Suricata uses, JIT-compiled where available), so back-references
//! and look-around work; `R` anchors its search at the previous match end.
//! Each pcre runs within Suricata's default PCRE2 limits
//! ([`PCRE_MATCH_LIMIT`], [`PCRE_DEPTH_LIMIT`]): a pattern that backtracks
//! past them counts as no match, and [`pcre_limit_hits`] counts it.

use std::cell::Cell;

use memchr::memmem;
use pcre2::bytes::{Regex, RegexBuilder};

use super::rules::{
    Base64Decode, ByteJump, ByteOp, ByteRead, ByteTest, Content, Dsize, Entropy, IsDataAt, Match,
    Pcre,
};

/// Most occurrences of one content tried before giving up on a rule (bounds
/// backtracking on adversarial buffers).
const MAX_TRIES: usize = 64;

/// PCRE2's match limit for every pcre (Suricata's `match-limit` default):
/// bounds the backtracking of a pathological pattern on a hostile buffer.
pub const PCRE_MATCH_LIMIT: u32 = 3_500;
/// PCRE2's depth limit for every pcre (Suricata's `match-limit-recursion`
/// default; JIT-compiled patterns are bounded by their stack instead).
pub const PCRE_DEPTH_LIMIT: u32 = 1_500;

thread_local! {
    /// Pcre runs this thread gave up at the limits (each worker is a thread).
    static LIMIT_HITS: Cell<u64> = const { Cell::new(0) };
}

/// Pcre runs the calling thread (a worker) gave up at PCRE2's limits.
pub fn pcre_limit_hits() -> u64 {
    LIMIT_HITS.with(Cell::get)
}

/// PCRE2's start-of-pattern options, which must come before anything else.
const START_OPTIONS: &[&str] = &[
    "UTF",
    "UCP",
    "NO_AUTO_POSSESS",
    "NO_DOTSTAR_ANCHOR",
    "NO_JIT",
    "NO_START_OPT",
    "NOTEMPTY",
    "NOTEMPTY_ATSTART",
    "CR",
    "LF",
    "CRLF",
    "ANYCRLF",
    "ANY",
    "NUL",
    "BSR_ANYCRLF",
    "BSR_UNICODE",
    "LIMIT_MATCH",
    "LIMIT_DEPTH",
    "LIMIT_RECURSION",
    "LIMIT_HEAP",
];

/// `pattern` with Suricata's limits after its own start-of-pattern
/// options: where a rule sets a limit itself, the later one, ours, holds.
fn with_limits(pattern: &str) -> String {
    let mut at = 0;
    while let Some(rest) = pattern[at..].strip_prefix("(*") {
        let Some(end) = rest.find(')') else { break };
        let name = rest[..end].split('=').next().unwrap_or_default();
        if !START_OPTIONS.contains(&name) {
            break;
        }
        at += end + 3;
    }
    format!(
        "{}(*LIMIT_MATCH={PCRE_MATCH_LIMIT})(*LIMIT_DEPTH={PCRE_DEPTH_LIMIT}){}",
        &pattern[..at],
        &pattern[at..]
    )
}

/// A pcre run's outcome: an error (a limit reached) is counted and is no
/// match.
fn limited<T>(outcome: Result<Option<T>, pcre2::Error>) -> Option<T> {
    outcome.unwrap_or_else(|_| {
        LIMIT_HITS.with(|hits| hits.set(hits.get() + 1));
        None
    })
}

/// A rule's payload matches ready to run.
#[derive(Debug, Clone)]
pub struct PayloadProgram {
    items: Vec<Item>,
}

#[derive(Debug, Clone)]
enum Item {
    Content(Content, Needle),
    Pcre {
        regex: Regex,
        relative: bool,
        negated: bool,
    },
    Bsize(Dsize),
    IsDataAt(IsDataAt),
    ByteTest(ByteTest),
    ByteJump(ByteJump),
    Entropy(Entropy),
    Base64Decode(Base64Decode),
    Base64Data,
}

/// A pcre that PCRE2 refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("pcre {pattern:?}: {reason}")]
pub struct PcreError {
    /// The expression.
    pub pattern: String,
    /// Why.
    pub reason: String,
}

fn compile_pcre(pcre: &Pcre) -> Result<Regex, PcreError> {
    let pattern = with_limits(&pcre.pattern);
    RegexBuilder::new()
        .caseless(pcre.caseless)
        .dotall(pcre.dotall)
        .multi_line(pcre.multiline)
        .extended(pcre.extended)
        .jit_if_available(true)
        .build(&pattern)
        .map_err(|e| PcreError {
            pattern: pcre.pattern.clone(),
            reason: e.to_string(),
        })
}

impl PayloadProgram {
    /// Compiles a rule's matches.
    pub fn new(matches: &[Match]) -> Result<Self, PcreError> {
        // Dataset lookups run after the matches hold (the engine's part).
        let items = matches
            .iter()
            .filter_map(|m| {
                Some(match m {
                    Match::Content(c) => Ok(Item::Content(c.clone(), Needle::new(c))),
                    Match::Pcre(p) => compile_pcre(p).map(|regex| Item::Pcre {
                        regex,
                        relative: p.relative,
                        negated: p.negated,
                    }),
                    Match::Bsize(size, _) => Ok(Item::Bsize(*size)),
                    Match::IsDataAt(at, _) => Ok(Item::IsDataAt(*at)),
                    Match::ByteTest(test, _) => Ok(Item::ByteTest(*test)),
                    Match::ByteJump(jump, _) => Ok(Item::ByteJump(*jump)),
                    Match::Entropy(entropy, _) => Ok(Item::Entropy(*entropy)),
                    Match::Base64Decode(decode, _) => Ok(Item::Base64Decode(*decode)),
                    Match::Base64Data(_) => Ok(Item::Base64Data),
                    Match::Dataset(..) => return None,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { items })
    }

    /// True when there is nothing to match (header-only rules).
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Where the matches succeed in `buffer`: the end of the last positive
    /// match (0 when none moved the position), or `None`.
    pub fn run(&self, buffer: &[u8]) -> Option<usize> {
        self.run_past(buffer, 0)
    }

    /// Like [`PayloadProgram::run`], but a match only counts when it ends
    /// past `min_end` (data before it was inspected already); earlier
    /// occurrences are skipped in favour of later ones.
    pub fn run_past(&self, buffer: &[u8], min_end: usize) -> Option<usize> {
        let mut search = Search {
            tries: 0,
            min_end,
            decoded: Vec::new(),
            decoded_end: 0,
        };
        self.step(0, buffer, 0, &mut search)
    }

    fn step(
        &self,
        index: usize,
        buffer: &[u8],
        prev_end: usize,
        search: &mut Search,
    ) -> Option<usize> {
        let Some(item) = self.items.get(index) else {
            let fresh = prev_end > search.min_end || search.min_end == 0;
            return fresh.then_some(prev_end);
        };
        match item {
            Item::Content(content, needle) => {
                let window = window(content, buffer.len(), prev_end);
                if content.negated {
                    // No room for it counts as absent.
                    if window
                        .is_some_and(|(start, end)| needle.find(&buffer[start..end], 0).is_some())
                    {
                        return None;
                    }
                    return self.step(index + 1, buffer, prev_end, search);
                }
                let (start, end) = window?;
                let mut from = 0;
                while let Some(at) = needle.find(&buffer[start..end], from) {
                    let match_end = start + at + content.bytes.len();
                    if content.endswith && match_end != buffer.len() {
                        from = at + 1;
                        continue;
                    }
                    if let Some(done) = self.step(index + 1, buffer, match_end, search) {
                        return Some(done);
                    }
                    search.tries += 1;
                    let retry = search.min_end > 0 || self.later_is_relative(index);
                    if search.tries >= MAX_TRIES || !retry {
                        return None;
                    }
                    from = at + 1;
                }
                None
            }
            Item::Bsize(size) => {
                if !size.matches(buffer.len() as u32) {
                    return None;
                }
                self.step(index + 1, buffer, prev_end, search)
            }
            Item::Base64Decode(decode) => {
                let base = if decode.relative { prev_end } else { 0 };
                let start = (base + decode.offset as usize).min(buffer.len());
                let end = decode
                    .bytes
                    .map_or(buffer.len(), |n| (start + n as usize).min(buffer.len()));
                let (decoded, consumed) = base64_prefix(&buffer[start..end]);
                search.decoded = decoded;
                search.decoded_end = start + consumed;
                self.step(index + 1, buffer, prev_end, search)
            }
            Item::Base64Data => {
                // The rest reads the decoded bytes; in this buffer the match
                // ends where the base64 text did.
                let decoded = std::mem::take(&mut search.decoded);
                if decoded.is_empty() {
                    return None;
                }
                let end = search.decoded_end;
                let min_end = std::mem::take(&mut search.min_end);
                let done = self.step(index + 1, &decoded, 0, search);
                search.min_end = min_end;
                done.filter(|_| end > min_end || min_end == 0).map(|_| end)
            }
            Item::Entropy(entropy) => {
                if !entropy.matches(buffer) {
                    return None;
                }
                self.step(index + 1, buffer, prev_end, search)
            }
            Item::IsDataAt(at) => {
                // As Suricata counts: relative, N more bytes after the
                // match; absolute, a byte at offset N.
                let offset = at.offset as usize;
                let present = if at.relative {
                    prev_end + offset <= buffer.len()
                } else {
                    offset < buffer.len()
                };
                if present == at.negated {
                    return None;
                }
                self.step(index + 1, buffer, prev_end, search)
            }
            Item::ByteTest(test) => {
                if !byte_test(test, buffer, prev_end) {
                    return None;
                }
                self.step(index + 1, buffer, prev_end, search)
            }
            Item::ByteJump(jump) => {
                let to = byte_jump(jump, buffer, prev_end)?;
                self.step(index + 1, buffer, to, search)
            }
            Item::Pcre {
                regex,
                relative,
                negated,
            } => {
                // A relative pcre sees the buffer from the previous match on,
                // so `^` anchors there, as in Suricata.
                let start = if *relative {
                    prev_end.min(buffer.len())
                } else {
                    0
                };
                // A match error (PCRE2's limits) counts as no match.
                let hay = &buffer[start..];
                if *negated {
                    return match limited(regex.find(hay)) {
                        Some(_) => None,
                        None => self.step(index + 1, buffer, prev_end, search),
                    };
                }
                // Like a content, a pcre is tried at its later matches when
                // what follows it fails.
                let mut from = 0;
                while let Some(m) = limited(regex.find_at(hay, from)) {
                    if let Some(done) = self.step(index + 1, buffer, start + m.end(), search) {
                        return Some(done);
                    }
                    search.tries += 1;
                    let retry = search.min_end > 0 || self.later_is_relative(index);
                    if search.tries >= MAX_TRIES || !retry || m.start() >= hay.len() {
                        return None;
                    }
                    from = m.start() + 1;
                }
                None
            }
        }
    }

    /// Backtracking only helps when a later item depends on this position.
    fn later_is_relative(&self, index: usize) -> bool {
        self.items[index + 1..].iter().any(|item| match item {
            Item::Content(c, _) => c.is_relative(),
            Item::Pcre { relative, .. } => *relative,
            Item::IsDataAt(at) => at.relative,
            Item::ByteTest(test) => test.read.relative,
            Item::ByteJump(jump) => jump.read.relative,
            Item::Bsize(_) | Item::Entropy(_) | Item::Base64Data => false,
            Item::Base64Decode(decode) => decode.relative,
        })
    }
}

/// Backtracking budget and the freshness bar of one run, and what the last
/// `base64_decode` decoded.
struct Search {
    tries: usize,
    min_end: usize,
    decoded: Vec<u8>,
    /// Where the decoded base64 text ends in the buffer.
    decoded_end: usize,
}

/// The base64 text at the start of `text` decoded (up to the first byte
/// outside the alphabet, padding included, whole characters only), and how
/// many bytes of `text` that was.
fn base64_prefix(text: &[u8]) -> (Vec<u8>, usize) {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    use base64::Engine as _;
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new()
            .with_decode_allow_trailing_bits(true)
            .with_decode_padding_mode(DecodePaddingMode::RequireNone),
    );
    let mut len = text
        .iter()
        .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/'))
        .count();
    if len % 4 == 1 {
        len -= 1;
    }
    (LENIENT.decode(&text[..len]).unwrap_or_default(), len)
}

/// Reads a number as `read` says: its value (masked) and the position just
/// past it, or `None` when the bytes are not there or are not a number.
fn read_number(read: &ByteRead, buffer: &[u8], prev_end: usize) -> Option<(u64, usize)> {
    let base = if read.relative { prev_end as i64 } else { 0 };
    let start = usize::try_from(base + i64::from(read.offset)).ok()?;
    let rest = buffer.get(start..)?;
    let (value, len) = match read.base {
        Some(radix) => {
            let most = if read.bytes == 0 {
                rest.len()
            } else {
                usize::from(read.bytes)
            };
            let digits = rest
                .iter()
                .take(most)
                .take_while(|b| (**b as char).is_digit(radix))
                .count();
            if digits == 0 || read.bytes != 0 && digits < usize::from(read.bytes) {
                return None;
            }
            let text = std::str::from_utf8(&rest[..digits]).ok()?;
            (u64::from_str_radix(text, radix).ok()?, digits)
        }
        None => {
            let bytes = rest.get(..usize::from(read.bytes))?;
            let fold = |acc: u64, b: &u8| acc << 8 | u64::from(*b);
            let value = if read.little {
                bytes.iter().rev().fold(0, fold)
            } else {
                bytes.iter().fold(0, fold)
            };
            (value, bytes.len())
        }
    };
    let value = match read.bitmask {
        Some(mask) if mask != 0 => (value & mask) >> mask.trailing_zeros(),
        _ => value,
    };
    Some((value, start + len))
}

/// The position a `byte_jump` moves to, when inside the buffer.
fn byte_jump(jump: &ByteJump, buffer: &[u8], prev_end: usize) -> Option<usize> {
    let (value, after) = read_number(&jump.read, buffer, prev_end)?;
    let distance = i64::try_from(value.checked_mul(jump.multiplier)?).ok()?;
    let mut to = if jump.from_beginning {
        distance
    } else if jump.from_end {
        (buffer.len() as i64).checked_sub(distance)?
    } else {
        (after as i64).checked_add(distance)?
    };
    if jump.align {
        to = to.checked_add(3)? / 4 * 4;
    }
    to = to.checked_add(jump.post_offset)?;
    usize::try_from(to).ok().filter(|&to| to <= buffer.len())
}

/// Reads a `byte_test` number from `buffer` and compares it; false when
/// the bytes are not there or do not read as a number.
fn byte_test(test: &ByteTest, buffer: &[u8], prev_end: usize) -> bool {
    let Some((value, _)) = read_number(&test.read, buffer, prev_end) else {
        return false;
    };
    let holds = match test.op {
        ByteOp::Less => value < test.value,
        ByteOp::Greater => value > test.value,
        ByteOp::Equal => value == test.value,
        ByteOp::AtMost => value <= test.value,
        ByteOp::AtLeast => value >= test.value,
        ByteOp::And => value & test.value != 0,
        ByteOp::Xor => value ^ test.value != 0,
    };
    holds != test.negated
}

/// The byte range `[start, end)` a content may occupy.
fn window(content: &Content, len: usize, prev_end: usize) -> Option<(usize, usize)> {
    let size = content.bytes.len();
    let (start, mut end) = if content.is_relative() {
        let start = prev_end as i64 + i64::from(content.distance.unwrap_or(0));
        let start = start.max(0) as usize;
        let end = match content.within {
            Some(within) => {
                (prev_end as i64 + i64::from(content.distance.unwrap_or(0)) + i64::from(within))
                    .max(0) as usize
            }
            None => len,
        };
        (start, end)
    } else {
        let start = content.offset.unwrap_or(0) as usize;
        let end = match content.depth {
            Some(depth) => start + depth as usize,
            None => len,
        };
        (start, end)
    };
    if content.startswith {
        end = end.min(start + size);
    }
    end = end.min(len);
    (start <= end && end - start >= size).then_some((start, end))
}

/// A content's bytes, ready to be searched for.
#[derive(Debug, Clone)]
enum Needle {
    /// Case-sensitive: memchr's vectorized substring search (boxed: its
    /// tables are large).
    Exact(Box<memmem::Finder<'static>>),
    /// ASCII case-insensitive: compared where either case of the first
    /// byte occurs.
    Caseless(Vec<u8>),
}

impl Needle {
    fn new(content: &Content) -> Self {
        if content.nocase {
            Needle::Caseless(content.bytes.clone())
        } else {
            Needle::Exact(Box::new(memmem::Finder::new(&content.bytes).into_owned()))
        }
    }

    /// The first occurrence in `hay` at or after `from`.
    fn find(&self, hay: &[u8], from: usize) -> Option<usize> {
        let hay = hay.get(from..)?;
        let at = match self {
            Needle::Exact(finder) if finder.needle().is_empty() => None,
            Needle::Exact(finder) => finder.find(hay),
            Needle::Caseless(needle) => {
                let (&first, rest) = needle.split_first()?;
                let last = hay.len().checked_sub(needle.len())?;
                let (lower, upper) = (first.to_ascii_lowercase(), first.to_ascii_uppercase());
                memchr::memchr2_iter(lower, upper, &hay[..=last])
                    .find(|&i| hay[i + 1..i + needle.len()].eq_ignore_ascii_case(rest))
            }
        };
        at.map(|i| i + from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limits_follow_a_pattern_s_own_start_options() {
        assert_eq!(
            with_limits("(*UTF)(*LIMIT_MATCH=99999999)a(*FAIL)"),
            "(*UTF)(*LIMIT_MATCH=99999999)(*LIMIT_MATCH=3500)(*LIMIT_DEPTH=1500)a(*FAIL)"
        );
        assert_eq!(
            with_limits("(*FAIL)|x"),
            "(*LIMIT_MATCH=3500)(*LIMIT_DEPTH=1500)(*FAIL)|x"
        );
        // A rule's own higher limit does not lift ours.
        let program = program(r#"pcre:"/(*LIMIT_MATCH=100000000)(a+)+$/";"#);
        let before = pcre_limit_hits();
        let mut hay = vec![b'a'; 2_000];
        hay.push(b'!');
        assert_eq!(program.run(&hay), None);
        assert!(pcre_limit_hits() > before);
    }

    #[test]
    fn a_pcre_past_the_pcre2_limits_is_no_match_and_is_counted() {
        let program = program(r#"pcre:"/(a+)+$/";"#);
        let before = pcre_limit_hits();
        let mut hay = vec![b'a'; 2_000];
        hay.push(b'!');
        assert_eq!(program.run(&hay), None);
        assert!(pcre_limit_hits() > before);
        let hits = pcre_limit_hits();
        assert!(program.run(b"aaaa").is_some(), "a match within the limits");
        assert_eq!(pcre_limit_hits(), hits);
    }
    use crate::detect::rules::parse::parse_rule;
    use crate::detect::rules::Vars;

    #[test]
    fn needles_are_found_as_a_plain_search_finds_them() {
        let hays: [&[u8]; 5] = [b"", b"ab", b"xxABcabABc", b"\x00Ab\x00aB", b"abcabcabc"];
        for bytes in [&b"ab"[..], b"Bc", b"\x00ab", b"abcabcabcd"] {
            for nocase in [false, true] {
                let content = Content {
                    bytes: bytes.to_vec(),
                    nocase,
                    ..Default::default()
                };
                let needle = Needle::new(&content);
                for hay in hays {
                    for from in 0..=hay.len() + 1 {
                        let plain = hay.get(from..).and_then(|rest| {
                            rest.windows(bytes.len())
                                .position(|w| {
                                    if nocase {
                                        w.eq_ignore_ascii_case(bytes)
                                    } else {
                                        w == bytes
                                    }
                                })
                                .map(|i| i + from)
                        });
                        assert_eq!(
                            needle.find(hay, from),
                            plain,
                            "{bytes:?} {nocase} {hay:?} {from}"
                        );
                    }
                }
            }
        }
    }

    fn program(options: &str) -> PayloadProgram {
        let text = format!("alert tcp any any -> any any ({options} sid:1;)");
        let rule = parse_rule(&text, &Vars::default(), None).result.unwrap();
        PayloadProgram::new(&rule.matches).unwrap()
    }

    #[test]
    fn base64_data_matches_what_base64_decode_decoded() {
        // "password=secret", encoded.
        let body = b"a=1&x=cGFzc3dvcmQ9c2VjcmV0&y=2";
        let p = program(
            r#"content:"x="; base64_decode:offset 0,relative; base64_data; content:"password"; content:"secret"; distance:1;"#,
        );
        assert_eq!(p.run(body), Some(26), "ends where the base64 text does");
        assert!(p.run(b"a=1&x=bm90aGluZw==").is_none());
        assert!(p.run(b"x=!!!!").is_none());
        let bytes = program(r#"base64_decode:bytes 8; base64_data; content:"pass"; depth:4;"#);
        assert!(bytes.run(b"cGFzc3dvcmQ9").is_some());
        let short = program(r#"base64_decode:bytes 4; base64_data; content:"pass";"#);
        assert!(short.run(b"cGFzc3dvcmQ9").is_none());
        let text = "alert tcp any any -> any any (base64_data; content:\"x\"; sid:1;)";
        assert!(parse_rule(text, &Vars::default(), None).result.is_err());
    }

    #[test]
    fn depth_and_offset_bound_absolute_contents() {
        let p = program(r#"content:"GET"; depth:3;"#);
        assert!(p.run(b"GET /").is_some());
        assert!(p.run(b" GET /").is_none());
        let p = program(r#"content:"b"; offset:2; depth:1;"#);
        assert!(p.run(b"abb").is_some());
        assert!(p.run(b"bba").is_none());
    }

    #[test]
    fn relative_contents_backtrack_to_a_later_occurrence() {
        let p = program(r#"content:"a"; content:"b"; distance:0; within:1;"#);
        assert!(p.run(b"a-ab").is_some());
        assert!(p.run(b"a-a-b").is_none());
        let p = program(r#"content:"x"; content:"y"; distance:2;"#);
        assert!(p.run(b"x12y").is_some());
        assert!(p.run(b"x1y").is_none());
    }

    #[test]
    fn negated_content_and_nocase() {
        let p = program(r#"content:"user"; nocase; content:!"admin";"#);
        assert!(p.run(b"USER bob").is_some());
        assert!(p.run(b"USER admin").is_none());
    }

    #[test]
    fn startswith_endswith() {
        let p = program(r#"content:"/x"; startswith; content:".php"; endswith;"#);
        assert!(p.run(b"/x/a.php").is_some());
        assert!(p.run(b"a/x.php").is_none());
        assert!(p.run(b"/x.php?").is_none());
    }

    #[test]
    fn negated_content_without_room_is_absent() {
        assert_eq!(program(r#"content:!"u";"#).run(b""), Some(0));
        assert_eq!(
            program(r#"content:"ab"; content:!"cd"; within:2;"#).run(b"xab"),
            Some(3)
        );
    }

    #[test]
    fn byte_test_reads_binary_and_text_numbers() {
        assert_eq!(
            program("byte_test:2,>,0x0100,1;").run(b"\x00\x01\x01"),
            Some(0)
        );
        assert_eq!(
            program("byte_test:2,>,0x0100,1;").run(b"\x00\x01\x00"),
            None
        );
        assert_eq!(
            program("byte_test:2,=,1,0,little;").run(b"\x01\x00"),
            Some(0)
        );
        let p = program(r#"content:"len="; byte_test:3,<,500,0,relative,string,dec;"#);
        assert_eq!(p.run(b"x len=499;"), Some(6));
        assert_eq!(p.run(b"x len=500;"), None);
        assert_eq!(p.run(b"x len=ab;"), None, "not digits");
        assert_eq!(program("byte_test:1,!&,0x80,0;").run(b"\x7f"), Some(0));
        assert_eq!(
            program("byte_test:1,=,3,0,bitmask 0x30;").run(b"\x30"),
            Some(0)
        );
        assert_eq!(
            program("byte_test:4,>,1,-2;").run(b"abcd"),
            None,
            "before the buffer"
        );
    }

    #[test]
    fn byte_jump_moves_the_position() {
        // A 2-byte length, then that many bytes, then "END".
        let p = program(r#"content:"LEN"; byte_jump:2,0,relative; content:"END"; within:3;"#);
        assert_eq!(p.run(b"LEN\x00\x03abcEND"), Some(11));
        assert_eq!(p.run(b"LEN\x00\x02abcEND"), None);
        let p = program(
            r#"content:"n="; byte_jump:2,0,relative,string,dec,post_offset 1; content:"!"; within:1;"#,
        );
        assert_eq!(p.run(b"n=03xyzQ!"), Some(9));
        assert_eq!(program("byte_jump:1,0;").run(b"\xff"), None, "past the end");
        let huge = "byte_jump:8,0,multiplier 1,post_offset 9223372036854775807;";
        assert_eq!(program(huge).run(b"\x7f\xff\xff\xff\xff\xff\xff\xff"), None);
    }

    #[test]
    fn bsize_and_isdataat() {
        let p = program(r#"content:"abc"; isdataat:2,relative; bsize:<10;"#);
        assert_eq!(p.run(b"abcde"), Some(3));
        assert_eq!(p.run(b"abcd"), None, "only 1 byte after the match");
        assert_eq!(p.run(b"xxabcdefghij"), None, "too long");
        let p = program(r#"content:"abc"; isdataat:!1,relative;"#);
        assert_eq!(p.run(b"abc"), Some(3));
        assert_eq!(p.run(b"abcde"), None);
        assert_eq!(program("isdataat:4;").run(b"abcd"), None);
    }

    #[test]
    fn pcre_is_tried_at_its_later_matches() {
        let p = program(r#"pcre:"/super/"; content:"nova"; within:7;"#);
        assert_eq!(p.run(b"a_super_duper_nova_in_super_nova"), Some(32));
    }

    #[test]
    fn pcre_relative_and_negated() {
        let p = program(r#"content:"id="; pcre:"/^[0-9]+&/R";"#);
        assert!(p.run(b"?id=42&x").is_some());
        assert!(p.run(b"?id=4a&x").is_none());
        let p = program(r#"content:"cmd"; pcre:!"/whoami/i";"#);
        assert!(p.run(b"cmd=ls").is_some());
        assert!(p.run(b"cmd=WHOAMI").is_none());
    }

    #[test]
    fn run_past_skips_matches_already_inspected() {
        let p = program(r#"content:"abc";"#);
        let buffer = b"abc--abc";
        assert_eq!(p.run_past(buffer, 3), Some(8));
        assert_eq!(p.run_past(buffer, 8), None);
        let anchored = program(r#"content:"abc"; depth:3;"#);
        assert_eq!(anchored.run_past(buffer, 3), None);
    }

    #[test]
    fn hex_content_with_binary_bytes() {
        let p = program(r#"content:"|00 ff|ab|0d 0a|";"#);
        assert!(p.run(b"\x01\x00\xffab\r\n").is_some());
    }
}

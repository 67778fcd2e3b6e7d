//! The option keywords of the supported subset, one table entry each: the
//! name, where what it parses goes, and its parser.
//!
//! Sticky buffers, their transforms and the HTTP content modifiers select
//! buffers rather than add conditions; [`super::buffer`] names those.

use super::buffer::{Buffer, HttpBuffer, Transforms};
use super::dataset;
use super::parse::{
    parse_byte_jump, parse_byte_test, parse_dsize, parse_entropy, parse_flow, parse_flowbits,
    parse_stream_size, parse_tcp_flags, parse_threshold,
};
use super::pattern::{parse_content, parse_pcre, Content};
use super::{
    Base64Decode, DatasetMatch, Inspected, IsDataAt, Match, Rule, RuleErrorKind, ThresholdKind,
};

/// One option as written: its keyword and value, for parsers and their
/// errors.
#[derive(Debug, Clone, Copy)]
pub struct Arg<'a> {
    /// The keyword.
    pub keyword: &'a str,
    /// Its value, when it has one.
    pub value: Option<&'a str>,
}

impl<'a> Arg<'a> {
    /// The value, or an error when there is none.
    pub fn required(&self) -> Result<&'a str, RuleErrorKind> {
        self.value.ok_or_else(|| self.bad(""))
    }

    /// The value as a number.
    pub fn number<T: std::str::FromStr>(&self) -> Result<T, RuleErrorKind> {
        let value = self.required()?;
        value.trim().parse().map_err(|_| self.bad(value))
    }

    /// The error for `value` given to this keyword.
    pub fn bad(&self, value: &str) -> RuleErrorKind {
        RuleErrorKind::BadValue {
            keyword: self.keyword.to_owned(),
            value: value.to_owned(),
        }
    }
}

/// Where a keyword puts what it parses.
#[derive(Clone, Copy)]
pub enum Placement {
    /// A property of the whole rule: what names it, a condition on the
    /// packet or flow checked before any buffer, or what a match does.
    Rule(fn(&mut Rule, Arg<'_>) -> Result<(), RuleErrorKind>),
    /// A match appended to the rule's list, on the buffer selected at that
    /// point of the rule (given with the rule so far).
    Match(fn(&Rule, Arg<'_>, &Inspected) -> Result<Match, RuleErrorKind>),
    /// A modifier of the content before it.
    Content(fn(&mut Content, Arg<'_>) -> Result<(), RuleErrorKind>),
}

/// One option keyword.
pub struct Keyword {
    /// As written in rules.
    pub name: &'static str,
    /// Where its result goes, with its parser.
    pub placement: Placement,
}

/// The keyword called `name`.
pub fn find(name: &str) -> Option<&'static Keyword> {
    KEYWORDS.iter().find(|k| k.name == name)
}

/// Every option keyword the parser reads.
pub const KEYWORDS: &[Keyword] = &[
    rule("msg", |r, a| {
        r.msg = unquote(a.required()?).replace("\\;", ";");
        Ok(())
    }),
    rule("sid", |r, a| {
        r.sid = a.number()?;
        Ok(())
    }),
    rule("rev", |r, a| {
        r.rev = a.number()?;
        Ok(())
    }),
    rule("gid", |r, a| {
        r.gid = a.number()?;
        Ok(())
    }),
    rule("classtype", |r, a| {
        r.classtype = Some(a.required()?.to_owned());
        Ok(())
    }),
    rule("priority", |r, a| {
        r.priority = Some(a.number()?);
        Ok(())
    }),
    rule("reference", |r, a| {
        r.references.push(a.required()?.to_owned());
        Ok(())
    }),
    rule("metadata", |r, a| {
        for entry in a.required()?.split(',').map(str::trim) {
            match entry.split_once(char::is_whitespace) {
                Some((key, val)) => r.metadata.push((key.trim().into(), val.trim().into())),
                None if !entry.is_empty() => r.metadata.push((entry.into(), String::new())),
                None => {}
            }
        }
        Ok(())
    }),
    // Which end of an alert is the target: output only.
    rule("target", |_, _| Ok(())),
    rule("flow", |r, a| {
        r.flow = parse_flow(a.required()?)?;
        Ok(())
    }),
    rule("dsize", |r, a| {
        r.dsize = Some(parse_dsize(a)?);
        Ok(())
    }),
    rule("itype", |r, a| {
        r.itype = Some(parse_dsize(a)?);
        Ok(())
    }),
    rule("icode", |r, a| {
        r.icode = Some(parse_dsize(a)?);
        Ok(())
    }),
    rule("flags", |r, a| {
        r.tcp_flags = Some(parse_tcp_flags(a.required()?)?);
        Ok(())
    }),
    rule("stream_size", |r, a| {
        r.stream_size = Some(parse_stream_size(a)?);
        Ok(())
    }),
    rule("urilen", |r, a| {
        let value = a.required()?;
        let (size, form) = value.split_once(',').unwrap_or((value, "norm"));
        let raw = match form.trim() {
            "raw" => true,
            "norm" => false,
            other => return Err(a.bad(other)),
        };
        let size = Arg {
            value: Some(size),
            ..a
        };
        r.urilen = Some((parse_dsize(size)?, raw));
        Ok(())
    }),
    rule("flowbits", |r, a| parse_flowbits(r, a.required()?)),
    // As `flowbits:noalert`: the rule only sets state.
    rule("noalert", |r, _| {
        r.noalert = true;
        Ok(())
    }),
    rule("threshold", |r, a| {
        r.threshold = Some(parse_threshold(a)?);
        Ok(())
    }),
    rule("detection_filter", |r, a| {
        let mut filter = parse_threshold(a)?;
        filter.kind = ThresholdKind::DetectionFilter;
        r.detection_filter = Some(filter);
        Ok(())
    }),
    matcher("content", |_, a, sticky| content(a, sticky.clone())),
    matcher("uricontent", |_, a, _| {
        content(
            a,
            Inspected {
                buffer: Buffer::Http(HttpBuffer::Uri),
                transforms: Transforms::default(),
            },
        )
    }),
    matcher("pcre", |_, a, sticky| {
        let (negated, raw) = negation(a.required()?);
        let mut pcre = parse_pcre(unquote(raw), negated)?;
        if pcre.inspected.buffer == Buffer::Payload {
            pcre.inspected = sticky.clone();
        }
        Ok(Match::Pcre(pcre))
    }),
    matcher("bsize", |_, a, sticky| {
        Ok(Match::Bsize(parse_dsize(a)?, sticky.clone()))
    }),
    matcher("isdataat", |_, a, sticky| {
        let value = a.required()?;
        let (offset, flags) = value.split_once(',').unwrap_or((value, ""));
        let (negated, offset) = negation(offset.trim());
        let at = IsDataAt {
            offset: offset.trim().parse().map_err(|_| a.bad(value))?,
            relative: flags.split(',').any(|f| f.trim() == "relative"),
            negated,
        };
        Ok(Match::IsDataAt(at, sticky.clone()))
    }),
    matcher("byte_jump", |_, a, sticky| {
        Ok(Match::ByteJump(
            parse_byte_jump(a.required()?)?,
            sticky.clone(),
        ))
    }),
    matcher("byte_test", |_, a, sticky| {
        Ok(Match::ByteTest(
            parse_byte_test(a.required()?)?,
            sticky.clone(),
        ))
    }),
    matcher("base64_decode", |_, a, sticky| {
        let mut decode = Base64Decode::default();
        for option in a.value.unwrap_or_default().split(',').map(str::trim) {
            let number = |n: &str| n.trim().parse::<u32>().map_err(|_| a.bad(option));
            match option.split_once(char::is_whitespace) {
                _ if option.is_empty() => {}
                _ if option == "relative" => decode.relative = true,
                Some(("bytes", n)) => decode.bytes = Some(number(n)?),
                Some(("offset", n)) => decode.offset = number(n)?,
                _ => return Err(a.bad(option)),
            }
        }
        Ok(Match::Base64Decode(decode, sticky.clone()))
    }),
    matcher("base64_data", |r, _, sticky| {
        let decoded = r
            .matches
            .iter()
            .any(|m| matches!(m, Match::Base64Decode(_, i) if i == sticky));
        if !decoded {
            return Err(RuleErrorKind::Syntax(
                "base64_data without a base64_decode before it".into(),
            ));
        }
        Ok(Match::Base64Data(sticky.clone()))
    }),
    matcher("entropy", |_, a, sticky| {
        Ok(Match::Entropy(
            parse_entropy(a.required()?)?,
            sticky.clone(),
        ))
    }),
    matcher("dataset", |_, a, sticky| {
        lookup(a, sticky, dataset::parse_dataset(a.required()?)?)
    }),
    matcher("datarep", |_, a, sticky| {
        lookup(a, sticky, dataset::parse_datarep(a.required()?)?)
    }),
    modifier("nocase", |c, _| {
        c.nocase = true;
        Ok(())
    }),
    // Suricata's raw stream is what the payload buffer already is.
    modifier("rawbytes", |_, _| Ok(())),
    modifier("fast_pattern", |c, _| {
        c.fast_pattern = true;
        Ok(())
    }),
    modifier("startswith", |c, _| {
        c.startswith = true;
        Ok(())
    }),
    modifier("endswith", |c, _| {
        c.endswith = true;
        Ok(())
    }),
    modifier("depth", |c, a| {
        c.depth = Some(a.number()?);
        Ok(())
    }),
    modifier("offset", |c, a| {
        c.offset = Some(a.number()?);
        Ok(())
    }),
    modifier("distance", |c, a| {
        c.distance = Some(a.number()?);
        Ok(())
    }),
    modifier("within", |c, a| {
        c.within = Some(a.number()?);
        Ok(())
    }),
];

const fn rule(
    name: &'static str,
    apply: fn(&mut Rule, Arg<'_>) -> Result<(), RuleErrorKind>,
) -> Keyword {
    Keyword {
        name,
        placement: Placement::Rule(apply),
    }
}

const fn matcher(
    name: &'static str,
    parse: fn(&Rule, Arg<'_>, &Inspected) -> Result<Match, RuleErrorKind>,
) -> Keyword {
    Keyword {
        name,
        placement: Placement::Match(parse),
    }
}

const fn modifier(
    name: &'static str,
    apply: fn(&mut Content, Arg<'_>) -> Result<(), RuleErrorKind>,
) -> Keyword {
    Keyword {
        name,
        placement: Placement::Content(apply),
    }
}

/// Strips one pair of surrounding quotes.
pub fn unquote(value: &str) -> &str {
    value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value)
}

/// A leading `!` and the rest.
fn negation(value: &str) -> (bool, &str) {
    match value.strip_prefix('!') {
        Some(rest) => (true, rest.trim()),
        None => (false, value),
    }
}

/// `content` (or `uricontent`) on `inspected`.
fn content(arg: Arg<'_>, inspected: Inspected) -> Result<Match, RuleErrorKind> {
    let (negated, raw) = negation(arg.required()?);
    if !(raw.len() >= 2 && raw.starts_with('"') && raw.ends_with('"')) {
        return Err(RuleErrorKind::Syntax("content must be quoted".into()));
    }
    Ok(Match::Content(Content {
        bytes: parse_content(&raw[1..raw.len() - 1])?,
        negated,
        inspected,
        ..Content::default()
    }))
}

/// `dataset` or `datarep`, which need an application buffer.
fn lookup(arg: Arg<'_>, sticky: &Inspected, lookup: DatasetMatch) -> Result<Match, RuleErrorKind> {
    if sticky.buffer == Buffer::Payload {
        return Err(RuleErrorKind::Unsupported(format!(
            "{} on the payload",
            arg.keyword
        )));
    }
    Ok(Match::Dataset(lookup, sticky.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_keyword_is_declared_once_and_is_no_buffer_name() {
        for (i, keyword) in KEYWORDS.iter().enumerate() {
            assert_eq!(find(keyword.name).map(|k| k.name), Some(keyword.name));
            assert!(
                KEYWORDS[i + 1..].iter().all(|k| k.name != keyword.name),
                "{} twice",
                keyword.name
            );
            assert!(super::super::buffer::sticky(keyword.name).is_none());
            assert!(super::super::buffer::modifier(keyword.name).is_none());
            assert!(!super::super::buffer::is_transform(keyword.name));
        }
    }

    #[test]
    fn the_rules_guide_describes_every_keyword() {
        let guide = include_str!("../../../docs/rules.md");
        for keyword in KEYWORDS {
            assert!(
                guide.contains(&format!("`{}`", keyword.name)),
                "docs/rules.md does not name `{}`",
                keyword.name
            );
        }
    }
}

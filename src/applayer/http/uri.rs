//! The normalised request URI, as rules see it in `http.uri`.
//!
//! As Suricata's HTTP parser does by default: an absolute URI keeps only its
//! path and query; the path is percent-decoded (`%XX`; malformed escapes are
//! kept as they are), its `.` and `..` segments are resolved and runs of `/`
//! compressed; the query is percent-decoded and otherwise left alone. The
//! raw target stays available as `http.uri.raw`.

/// The normalised form of a request target.
pub fn normalize(target: &[u8]) -> Vec<u8> {
    let target = strip_scheme_and_authority(target);
    let (path, query) = match target.iter().position(|&b| b == b'?') {
        Some(at) => (&target[..at], Some(&target[at..])),
        None => (target, None),
    };
    let mut out = resolve_dots(&percent_decode(path));
    if let Some(query) = query {
        out.extend_from_slice(&percent_decode(query));
    }
    out
}

/// `http://host:port/path` → `/path`; anything else as it is.
fn strip_scheme_and_authority(target: &[u8]) -> &[u8] {
    let lower_starts = |prefix: &[u8]| {
        target.len() >= prefix.len() && target[..prefix.len()].eq_ignore_ascii_case(prefix)
    };
    for scheme in [&b"http://"[..], b"https://"] {
        if lower_starts(scheme) {
            let rest = &target[scheme.len()..];
            return match rest.iter().position(|&b| b == b'/' || b == b'?') {
                Some(at) => &rest[at..],
                None => b"/",
            };
        }
    }
    target
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// `%XX` to its byte; a `%` not followed by two hex digits stays.
pub fn percent_decode(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

/// Resolves `.` and `..` segments and compresses repeated `/`.
fn resolve_dots(path: &[u8]) -> Vec<u8> {
    if !path.starts_with(b"/") {
        return path.to_vec();
    }
    let mut segments: Vec<&[u8]> = Vec::new();
    let parts: Vec<&[u8]> = path[1..].split(|&b| b == b'/').collect();
    let last = parts.len() - 1;
    let mut trailing_slash = false;
    for (i, part) in parts.iter().enumerate() {
        match *part {
            b"" => trailing_slash = i == last,
            b"." => trailing_slash = i == last,
            b".." => {
                segments.pop();
                trailing_slash = i == last;
            }
            segment => {
                segments.push(segment);
                trailing_slash = false;
            }
        }
    }
    let mut out = Vec::with_capacity(path.len());
    for segment in &segments {
        out.push(b'/');
        out.extend_from_slice(segment);
    }
    if trailing_slash || out.is_empty() {
        out.push(b'/');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> String {
        String::from_utf8(normalize(s.as_bytes())).unwrap()
    }

    #[test]
    fn decodes_and_resolves_the_path() {
        assert_eq!(
            norm("/a/%2e%2e/b//c/./d.php?x=%41&y=1"),
            "/b/c/d.php?x=A&y=1"
        );
        assert_eq!(norm("/dir/"), "/dir/");
        assert_eq!(norm("/../../etc/passwd"), "/etc/passwd");
        assert_eq!(norm("/"), "/");
        assert_eq!(norm("/a/b/.."), "/a/");
    }

    #[test]
    fn keeps_bad_escapes_and_strips_absolute_form() {
        assert_eq!(norm("/100%/%zz%4"), "/100%/%zz%4");
        assert_eq!(norm("http://Example.com:8080/x?y"), "/x?y");
        assert_eq!(norm("HTTP://example.com"), "/");
        assert_eq!(norm("*"), "*");
    }
}

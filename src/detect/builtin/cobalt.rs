//! Cobalt Strike stagers: the URI a stager fetches its beacon from is four
//! characters whose byte sum modulo 256 is 92 (x86) or 93 (x64), the
//! "checksum8" of Cobalt Strike's documentation and of public scanners.
//! About one four-character path in a hundred has such a sum by chance, so
//! the answer must also be what a team server sends: a 200 with an
//! `application/octet-stream` body.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{AppData, Detector, Finding, Signature};
use crate::applayer::{AppEvent, HttpStage};

/// A stager fetching its beacon.
const STAGER: Signature = Signature {
    sid: 9_200_001,
    msg: "MIRADOR C2 Cobalt Strike stager fetch (checksum8 URI)",
    family: "c2",
    classtype: "command-and-control",
    priority: 1,
};

/// Checksum8 of x86 stager URIs.
const X86: u32 = 92;
/// Checksum8 of x64 stager URIs.
const X64: u32 = 93;

/// The architecture a URI path asks a stager for, when it is one.
fn stager_arch(uri: &[u8]) -> Option<&'static str> {
    let path = uri.strip_prefix(b"/")?;
    let path = path.split(|&b| b == b'?').next().unwrap_or(path);
    if path.len() != 4 || !path.iter().all(u8::is_ascii_alphanumeric) {
        return None;
    }
    match path.iter().map(|&b| u32::from(b)).sum::<u32>() % 256 {
        X86 => Some("x86"),
        X64 => Some("x64"),
        _ => None,
    }
}

/// `[detectors.cobalt]`: nothing to set yet.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CobaltSettings {}

/// Cobalt Strike's HTTP stagers.
#[derive(Debug, Default)]
pub struct CobaltStrike;

impl Detector for CobaltStrike {
    const SIDS: std::ops::RangeInclusive<u32> = 9_200_000..=9_200_099;
    const SIGNATURES: &'static [Signature] = &[STAGER];
    type Settings = CobaltSettings;
    type Flow = ();
    type Shared = ();

    fn new(_: &CobaltSettings, _: &Arc<()>) -> Self {
        Self
    }

    fn app(&mut self, _: &mut (), data: &AppData<'_>, out: &mut impl FnMut(Finding)) {
        let AppEvent::Http(tx, HttpStage::ResponseHeaders) = data.event else {
            return;
        };
        let binary = tx
            .response
            .header(b"content-type")
            .is_some_and(|t| t.eq_ignore_ascii_case(b"application/octet-stream"));
        if !tx.method.eq_ignore_ascii_case(b"GET") || tx.status != b"200" || !binary {
            return;
        }
        if let Some(arch) = stager_arch(&tx.uri) {
            let metadata = format!(
                "tool cobalt-strike, arch {arch}, uri {}",
                String::from_utf8_lossy(&tx.uri)
            );
            out(Finding::new(&STAGER, metadata, &tx.request.start_line));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum8_names_the_architecture() {
        // "/aaa9": 97 * 3 + 57 = 348, 348 % 256 = 92.
        assert_eq!(stager_arch(b"/aaa9"), Some("x86"));
        assert_eq!(stager_arch(b"/aaa:"), None, "not alphanumeric");
        assert_eq!(stager_arch(b"/aab9"), Some("x64"));
        assert_eq!(stager_arch(b"/aab9?x=1"), Some("x64"));
        assert_eq!(stager_arch(b"/aaa8"), None);
        assert_eq!(stager_arch(b"/aaaa9"), None, "five characters");
        assert_eq!(stager_arch(b"/"), None);
    }
}

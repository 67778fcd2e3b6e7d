//! Interactive reverse shells on raw TCP: the side that connected speaks
//! first, and what it says is a shell's banner and prompt.
//!
//! A reverse shell (`nc -e cmd.exe`, a PowerShell one-liner, `bash -i >&
//! /dev/tcp/...`, a payload's shell) connects out and hands the listener a
//! prompt before the listener sends anything. Clients of ordinary protocols
//! either wait for the server or send a request, never a prompt. So the
//! initiator's bytes, until the responder first sends, are read (up to
//! 1 KiB); when their last line is a prompt (`C:\...>`, `PS C:\...>`,
//! `user@host:~$`, `[user@host dir]#`, `bash-5.1$`, or a bare `$`/`#`
//! after a shell's job-control warning), the flow is reported once, with
//! the shell and any banner it showed.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::encoding::contains_ignore_case;
use super::{printable, Detector, Events, Finding, Signature, StreamData};

const SHELL: Signature = Signature {
    sid: 9_200_801,
    msg: "MIRADOR C2 reverse shell: the connecting side sends a shell prompt first",
    family: "c2",
    classtype: "trojan-activity",
    priority: 1,
};

/// Initiator bytes read at most before the responder speaks.
const MAX_BYTES: usize = 1 << 10;

/// `[detectors.reverse_shell]`: nothing to set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReverseShellSettings {}

/// The initiator's first words.
#[derive(Debug, Default)]
pub enum FirstWords {
    /// Nothing read yet.
    #[default]
    Unread,
    /// The initiator's bytes so far, before any answer.
    Reading(Box<Vec<u8>>),
    /// Not a shell, or reported.
    Done,
}

/// Reverse shells.
#[derive(Debug, Default)]
pub struct ReverseShell;

impl Detector for ReverseShell {
    const SIDS: std::ops::RangeInclusive<u32> = 9_200_800..=9_200_899;
    const SIGNATURES: &'static [Signature] = &[SHELL];
    const EVENTS: Events = Events::STREAM;
    type Settings = ReverseShellSettings;
    type Flow = FirstWords;
    type Shared = ();

    fn new(_: &ReverseShellSettings, _: &Arc<()>) -> Self {
        Self
    }

    fn stream(
        &mut self,
        flow: &mut FirstWords,
        data: &StreamData<'_>,
        out: &mut impl FnMut(Finding),
    ) {
        let kept = match flow {
            FirstWords::Done => return,
            FirstWords::Unread => 0,
            FirstWords::Reading(bytes) => bytes.len(),
        };
        // An answer, or lost bytes, end the first words; a shell's are
        // text, and no protocol's request.
        if data.stream.dir == 1
            || data.offset as usize != kept
            || data.offset == 0 && !shell_like(data.bytes)
        {
            *flow = FirstWords::Done;
            return;
        }
        if let FirstWords::Reading(bytes) = flow {
            let room = MAX_BYTES.saturating_sub(bytes.len());
            bytes.extend_from_slice(&data.bytes[..data.bytes.len().min(room)]);
        }
        let seen: &[u8] = match flow {
            FirstWords::Reading(bytes) => bytes,
            _ => data.bytes,
        };
        if let Some(shell) = prompt(seen) {
            let metadata = format!(
                "tool reverse-shell, shell {shell}, banner {}, prompt {}, bytes {}",
                banner(seen),
                printable(last_line(seen), 80),
                seen.len()
            );
            out(Finding::new(&SHELL, metadata, seen));
            *flow = FirstWords::Done;
            return;
        }
        match flow {
            FirstWords::Unread => {
                let first = data.bytes[..data.bytes.len().min(MAX_BYTES)].to_vec();
                *flow = FirstWords::Reading(Box::new(first));
            }
            FirstWords::Reading(bytes) if bytes.len() >= MAX_BYTES => *flow = FirstWords::Done,
            _ => {}
        }
    }

    fn stream_done(&self, flow: &FirstWords, _: &StreamData<'_>) -> bool {
        matches!(flow, FirstWords::Done)
    }
}

/// True when a direction's first bytes may be a shell's: text in any
/// encoding (no control bytes but line ends and tabs), and not an HTTP
/// request.
fn shell_like(first: &[u8]) -> bool {
    let head = &first[..first.len().min(64)];
    // Counted without a branch per byte: most first bytes are binary.
    let controls: usize = head
        .iter()
        .map(|&b| {
            let control = (b < 0x20) & (b != b'\t') & (b != b'\r') & (b != b'\n');
            usize::from(control | (b == 0x7f))
        })
        .sum();
    controls * 10 < head.len().max(1) && !crate::applayer::http::looks_like_http(first)
}

/// The last line of `text` that is not blank, without its line end and
/// trailing spaces.
fn last_line(text: &[u8]) -> &[u8] {
    let end = text
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |e| e + 1);
    let start = text[..end]
        .iter()
        .rposition(|&b| b == b'\n' || b == b'\r')
        .map_or(0, |s| s + 1);
    &text[start..end]
}

/// The shell whose prompt ends `text`, when one does.
fn prompt(text: &[u8]) -> Option<&'static str> {
    let line = last_line(text);
    if line.is_empty() || line.len() > 256 {
        return None;
    }
    let (powershell, path) = match line.strip_prefix(b"PS ") {
        Some(rest) => (true, rest),
        None => (false, line),
    };
    if windows_prompt(path) {
        return Some(if powershell { "powershell" } else { "cmd" });
    }
    let last = *line.last()?;
    if !matches!(last, b'$' | b'#' | b'%' | b'>') {
        return None;
    }
    let body = &line[..line.len() - 1];
    let word = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_');
    // user@host:path$ (the path from the home or the root)
    if let Some(at) = body.iter().position(|&b| b == b'@') {
        if let Some(colon) = body[at..].iter().position(|&b| b == b':') {
            let (user, host) = (&body[..at], &body[at + 1..at + colon]);
            let path = &body[at + colon + 1..];
            if !user.is_empty()
                && !host.is_empty()
                && user.iter().all(word)
                && host.iter().all(word)
                && matches!(path.first(), Some(b'~' | b'/'))
            {
                return Some("sh");
            }
        }
    }
    // [user@host dir]$
    if body.first() == Some(&b'[') && body.last() == Some(&b']') && body.contains(&b'@') {
        return Some("sh");
    }
    // sh-4.2$, bash-5.1#
    for shell in [&b"bash-"[..], b"sh-", b"zsh-"] {
        if let Some(version) = body.strip_prefix(shell) {
            if !version.is_empty() && version.iter().all(|b| b.is_ascii_digit() || *b == b'.') {
                return Some("sh");
            }
        }
    }
    // A bare prompt after a shell's warning that it has no terminal.
    let bare = body.iter().all(u8::is_ascii_whitespace) && matches!(last, b'$' | b'#');
    let warned = || {
        [&b"job control"[..], b"can't access tty", b"no tty"]
            .iter()
            .any(|w| contains_ignore_case(text, w))
    };
    (bare && warned()).then_some("sh")
}

/// `X:\path>`: a Windows command prompt.
fn windows_prompt(line: &[u8]) -> bool {
    let [drive, b':', b'\\', rest @ ..] = line else {
        return false;
    };
    drive.is_ascii_alphabetic()
        && rest.last() == Some(&b'>')
        && !rest[..rest.len() - 1]
            .iter()
            .any(|b| matches!(b, b'<' | b'>' | b'|' | b'"' | b'?' | b'*' | b'\r' | b'\n'))
}

/// What banner the shell showed before its prompt.
fn banner(text: &[u8]) -> &'static str {
    let has = |what: &[u8]| text.windows(what.len()).any(|w| w == what);
    if has(b"Windows PowerShell") {
        "powershell"
    } else if has(b"Microsoft Windows") || has(b"Microsoft Corporation") {
        "windows"
    } else if has(b"job control") || has(b"can't access tty") {
        "unix"
    } else {
        "none"
    }
}

#[cfg(test)]
mod tests {
    use super::super::variants::Random;
    use super::*;
    use crate::reassembly::StreamId;

    fn run(chunks: &[(usize, &[u8])]) -> Vec<Finding> {
        let mut detector = ReverseShell;
        let mut flow = FirstWords::default();
        let stream = StreamId {
            flow_id: 1,
            dir: 0,
            src: "10.0.0.5:50000".parse().unwrap(),
            dst: "203.0.113.8:8888".parse().unwrap(),
            carrier: Default::default(),
        };
        let mut offsets = [0u64; 2];
        let mut found = Vec::new();
        for (dir, bytes) in chunks {
            let id = stream.toward(*dir);
            let data = StreamData {
                ts_ns: 0,
                stream: &id,
                offset: offsets[*dir],
                bytes,
            };
            detector.stream(&mut flow, &data, &mut |f| found.push(f));
            offsets[*dir] += bytes.len() as u64;
        }
        found
    }

    #[test]
    fn shells_are_found_whatever_their_host_user_and_path() {
        let mut random = Random::new(31);
        for _ in 0..50 {
            let dir = random.word_of(1, 12);
            let user = random.word_of(1, 10);
            let host = random.word_of(1, 12).to_uppercase();
            let drive = char::from(b'C' + random.draw() as u8 % 5);
            let shells = [
                (format!("Microsoft Windows [Version 10.0.{}]\r\n(c) Microsoft Corporation. All rights reserved.\r\n\r\n{drive}:\\Users\\{user}>", random.between(10_000, 9_000)), "cmd"),
                (format!("Windows PowerShell\r\nCopyright (C) Microsoft Corporation.\r\n\r\nPS {drive}:\\{dir}> "), "powershell"),
                (format!("{user}@{host}:~/{dir}$ "), "sh"),
                (format!("bash: cannot set terminal process group: Inappropriate ioctl\nbash: no job control in this shell\n[{user}@{host} {dir}]# "), "sh"),
                ("sh: 0: can't access tty; job control turned off\n$ ".to_owned(), "sh"),
                (format!("bash-{}.{}$ ", random.between(3, 3), random.between(0, 3)), "sh"),
            ];
            for (text, shell) in shells {
                let bytes = text.as_bytes();
                let cut = random.between(1, bytes.len() - 1);
                let found = run(&[(0, &bytes[..cut]), (0, &bytes[cut..]), (1, b"whoami\n")]);
                assert_eq!(found.len(), 1, "{text:?}");
                assert!(
                    found[0].metadata.contains(&format!("shell {shell}")),
                    "{}",
                    found[0].metadata
                );
            }
        }
    }

    #[test]
    fn clients_that_wait_or_request_are_not_shells() {
        assert!(run(&[(1, b"220 mail ESMTP\r\n"), (0, b"EHLO x\r\n")]).is_empty());
        assert!(run(&[(0, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")]).is_empty());
        assert!(run(&[(0, b"<?xml version='1.0'?><stream:stream to='a'>")]).is_empty());
        assert!(run(&[(0, b"SSH-2.0-OpenSSH_9.6\r\n")]).is_empty());
        assert!(
            run(&[(1, b"C:\\>"), (0, b"dir\r\n")]).is_empty(),
            "a bind shell answers"
        );
        assert!(run(&[(0, b"price: 5$")]).is_empty());
        assert!(run(&[(0, b"From alice@example: hello #")]).is_empty());
    }
}

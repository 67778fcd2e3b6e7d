//! Standard input as a capture source: read on a thread of its own, so that
//! a replay waiting for bytes that may never come still notices a stop
//! (SIGINT, SIGTERM) and ends, writing its open flows, instead of blocking
//! in `read` until the writer at the other end of the pipe goes away.

use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError};

/// Bytes one read of standard input asks for.
const CHUNK: usize = 256 << 10;
/// Chunks read ahead of the replay.
const AHEAD: usize = 4;
/// How often a reader waiting for bytes looks at the stop flag.
const STOP_POLL: Duration = Duration::from_millis(100);

/// Standard input, read ahead by a thread; ends when the input does, or
/// once `stop` is set while it waits.
pub struct StdinReader {
    chunks: Receiver<io::Result<Vec<u8>>>,
    current: Vec<u8>,
    at: usize,
    stop: Arc<AtomicBool>,
}

impl StdinReader {
    /// Starts the thread that reads standard input.
    pub fn spawn(stop: Arc<AtomicBool>) -> io::Result<Self> {
        let (sender, chunks) = bounded(AHEAD);
        std::thread::Builder::new()
            .name("mirador-stdin".into())
            .spawn(move || {
                let mut input = io::stdin().lock();
                loop {
                    let mut chunk = vec![0; CHUNK];
                    let read = match input.read(&mut chunk) {
                        Ok(0) => break,
                        Ok(n) => {
                            chunk.truncate(n);
                            Ok(chunk)
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => Err(e),
                    };
                    let failed = read.is_err();
                    if sender.send(read).is_err() || failed {
                        break;
                    }
                }
            })?;
        Ok(Self {
            chunks,
            current: Vec::new(),
            at: 0,
            stop,
        })
    }
}

impl Read for StdinReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.at == self.current.len() {
            match self.chunks.recv_timeout(STOP_POLL) {
                Ok(chunk) => {
                    self.current = chunk?;
                    self.at = 0;
                }
                Err(RecvTimeoutError::Timeout) if self.stop.load(Ordering::Relaxed) => {
                    return Ok(0)
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return Ok(0),
            }
        }
        let n = out.len().min(self.current.len() - self.at);
        out[..n].copy_from_slice(&self.current[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

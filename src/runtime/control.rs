//! The control socket of a live run (`control.socket`): `mirador ctl`
//! sends one command line over a Unix stream socket and reads the answer
//! until the socket closes. An answer's first word is `ok` or `error`.
//!
//! The socket's thread only carries requests: each is handed over a
//! channel to the run's control loop, which does the work (a reload
//! compiles there, off the worker cores) and sends the answer back.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{bounded, Receiver, Sender};

/// How long a request waits for the control loop (a reload compiles).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(120);
/// Bytes of a command line read at most.
const MAX_LINE: u64 = 256;
/// How often the listening thread looks whether the run is ending.
const POLL: Duration = Duration::from_millis(100);

/// What `mirador ctl` can ask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Load the rules again and swap them in.
    Reload,
    /// The run's counters, as the metrics text.
    Stats,
    /// The running build.
    Version,
}

impl Command {
    /// The command's word on the socket.
    pub fn word(self) -> &'static str {
        match self {
            Self::Reload => "reload",
            Self::Stats => "stats",
            Self::Version => "version",
        }
    }

    /// The command a word names.
    pub fn parse(word: &str) -> Option<Self> {
        [Self::Reload, Self::Stats, Self::Version]
            .into_iter()
            .find(|c| c.word() == word)
    }
}

/// One request waiting for its answer.
#[derive(Debug)]
pub struct Request {
    /// What is asked.
    pub command: Command,
    reply: Sender<String>,
}

impl Request {
    /// Sends the answer to the waiting client.
    pub fn answer(self, text: String) {
        // The client may have gone; nothing to do then.
        let _ = self.reply.send(text);
    }
}

/// The listening socket; removed when dropped.
#[derive(Debug)]
pub struct ControlSocket {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    /// A copy of the requests' receiver, to answer those left at the end.
    pending: Receiver<Request>,
}

impl ControlSocket {
    /// Listens at `path` (a socket left by an earlier run is replaced);
    /// requests arrive on the receiver.
    pub fn start(path: &Path) -> std::io::Result<(Self, Receiver<Request>)> {
        let stale = std::fs::symlink_metadata(path)
            .is_ok_and(|m| m.file_type().is_socket() && UnixStream::connect(path).is_err());
        if stale {
            std::fs::remove_file(path)?;
        }
        let listener = UnixListener::bind(path)?;
        // Reloading rules is for the sensor's owner.
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        listener.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let (requests, receiver) = bounded(4);
        let stopping = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("mirador-control".into())
            .spawn(move || listen(&listener, &requests, &stopping))?;
        Ok((
            Self {
                path: path.to_owned(),
                stop,
                thread: Some(thread),
                pending: receiver.clone(),
            },
            receiver,
        ))
    }
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            while !thread.is_finished() {
                for request in self.pending.try_iter() {
                    request.answer("error the run is ending\n".into());
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = thread.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

fn listen(listener: &UnixListener, requests: &Sender<Request>, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, _)) => serve(stream, requests),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(POLL),
            Err(e) => {
                tracing::warn!("control socket: {e}");
                std::thread::sleep(POLL);
            }
        }
    }
}

fn serve(stream: UnixStream, requests: &Sender<Request>) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut line = String::new();
    if BufReader::new((&stream).take(MAX_LINE))
        .read_line(&mut line)
        .is_err()
    {
        return;
    }
    let answer = match Command::parse(line.trim()) {
        None => format!(
            "error unknown command {:?}: try reload, stats or version\n",
            line.trim()
        ),
        Some(command) => {
            let (reply, answer) = bounded(1);
            requests
                .send_timeout(Request { command, reply }, ANSWER_TIMEOUT)
                .ok()
                .and_then(|()| answer.recv_timeout(ANSWER_TIMEOUT).ok())
                .unwrap_or_else(|| "error the run did not answer\n".to_owned())
        }
    };
    let mut stream = stream;
    let _ = stream.write_all(answer.as_bytes());
}

/// Sends `command` to the run listening at `socket` and returns its answer.
pub fn send(socket: &Path, command: Command) -> std::io::Result<String> {
    let mut stream = UnixStream::connect(socket)?;
    stream.set_read_timeout(Some(ANSWER_TIMEOUT + Duration::from_secs(5)))?;
    writeln!(stream, "{}", command.word())?;
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut stream, &mut answer)?;
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_reaches_the_loop_and_its_answer_the_client() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ctl.sock");
        let (socket, requests) = ControlSocket::start(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let answering = std::thread::spawn(move || {
            let request = requests.recv().unwrap();
            assert_eq!(request.command, Command::Version);
            request.answer("ok mirador\n".into());
        });
        assert_eq!(send(&path, Command::Version).unwrap(), "ok mirador\n");
        answering.join().unwrap();
        let mut raw = UnixStream::connect(&path).unwrap();
        writeln!(raw, "shutdown").unwrap();
        let mut answer = String::new();
        std::io::Read::read_to_string(&mut raw, &mut answer).unwrap();
        assert!(answer.starts_with("error unknown command"), "{answer}");
        drop(socket);
        assert!(!path.exists(), "the socket is removed with the run");
    }
}

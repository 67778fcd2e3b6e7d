//! Runtimes: how packet sources, workers and writers are wired together.
//!
//! [`replay`] reads capture files on the calling thread and runs one worker
//! over them; the run's outcome is a [`RunSummary`] whose `Display` is the
//! readable end-of-run report.

pub mod replay;
mod summary;

pub use replay::{replay, ReplayOptions};
pub use summary::RunSummary;

/// A run that could not start or could not finish writing.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The output could not be set up or written.
    #[error(transparent)]
    Output(#[from] crate::output::OutputError),
    /// An input path could not be listed.
    #[error(transparent)]
    Capture(#[from] crate::capture::CaptureError),
}

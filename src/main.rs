//! The `mirador` command line.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use mirador::config::Config;
use mirador::runtime::{self, ReplayOptions};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Network detection sensor: flows and detections into Parquet.
#[derive(Debug, Parser)]
#[command(name = "mirador", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Replay capture files (pcap or pcapng; folders are read in full) in
    /// timestamp order and write their flow records.
    Replay {
        /// Output folder [config: output.dir, default: out].
        #[arg(long)]
        out: Option<PathBuf>,
        /// Sensor name on records and file names [config: sensor, default: mirador].
        #[arg(long)]
        sensor: Option<String>,
        /// TOML configuration file (see mirador.example.toml).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Capture files or folders.
        #[arg(required = true, value_name = "PCAP|DIR")]
        inputs: Vec<PathBuf>,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Replay {
            out,
            sensor,
            config,
            inputs,
        } => {
            let mut config = match config {
                Some(path) => Config::load(&path)?,
                None => Config::default(),
            };
            if let Some(out) = out {
                config.output.dir = out;
            }
            if let Some(sensor) = sensor {
                config.sensor = sensor;
            }
            let stop = Arc::new(AtomicBool::new(false));
            for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
                signal_hook::flag::register(signal, Arc::clone(&stop))
                    .context("installing the signal handler")?;
            }
            let summary = runtime::replay(ReplayOptions {
                inputs,
                config,
                progress: std::io::stderr().is_terminal(),
                stop,
            })?;
            print!("{summary}");
            Ok(if summary.read_nothing() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
    }
}

//! The `mirador` command line.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use mirador::config::{Config, ConfigSource};
use mirador::detect::rules::RuleSet;
use mirador::export::{export, resolve_date, ExportReport, ExportRequest};
use mirador::runtime::control as ctl;
use mirador::runtime::{self, ReplayOptions, RunOptions, RunSummary};

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
        #[command(flatten)]
        common: CommonArgs,
        /// Capture files or folders; `-` reads a capture streamed on
        /// standard input (`tcpdump -w - | mirador replay -`).
        #[arg(required = true, value_name = "PCAP|DIR")]
        inputs: Vec<PathBuf>,
    },
    /// Capture from DPDK ports with one run-to-completion worker per lcore,
    /// until SIGINT/SIGTERM or until every net_pcap file is read.
    Run {
        #[command(flatten)]
        common: CommonArgs,
        /// EAL arguments as one string, split on white space
        /// [config: dpdk.eal, default: the bundled samples through net_pcap].
        #[arg(long, value_name = "EAL ARGS", allow_hyphen_values = true)]
        eal: Option<String>,
        /// Only receive and free packets (measures the capture path alone;
        /// nothing is decoded or written).
        #[arg(long)]
        rx_only: bool,
    },
    /// Signature tools.
    #[command(subcommand)]
    Rules(RulesCommand),
    /// Talk to a running `mirador run` over its control socket.
    Ctl {
        /// The socket [config: control.socket].
        #[arg(long)]
        socket: Option<PathBuf>,
        /// TOML configuration file, for control.socket.
        #[arg(long)]
        config: Option<PathBuf>,
        /// reload: load the rules again and swap them in without a restart
        /// (a set that fails to load leaves the running one); stats: the
        /// run's counters; version: the running build.
        #[arg(value_parser = ["reload", "stats", "version"])]
        command: String,
    },
    /// Ship one day of output to a data lake: compact each table's hourly
    /// files into large ones sorted by time, check their row counts, upload
    /// them as TABLE/date=DAY/sensor=NAME/part-N.parquet with a manifest,
    /// and only then mark the day exported. Re-running a day replaces it.
    Export {
        /// The day: YYYY-MM-DD, or yesterday or today (UTC).
        #[arg(long)]
        date: String,
        /// Output folder to read [config: output.dir, default: out].
        #[arg(long)]
        from: Option<PathBuf>,
        /// Destination: s3://BUCKET/PREFIX, gs://..., az://... or
        /// file:///PATH [config: export.to].
        #[arg(long, env = "MIRADOR_EXPORT_TO")]
        to: Option<String>,
        /// Remove the day's local files once exported [config: export.delete].
        #[arg(long)]
        delete: bool,
        /// TOML configuration file (see mirador.example.toml).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Set any configuration key (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
    },
}

/// What `mirador rules` does.
#[derive(Debug, Subcommand)]
enum RulesCommand {
    /// Load rule files (or folders of *.rules) and report what loaded, what
    /// was skipped for keywords outside the supported subset, and what is
    /// malformed. Exits 1 when a rule is malformed.
    Check {
        /// TOML configuration file, for address and port groups.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Rule files or folders.
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
    },
}

/// Options every subcommand takes.
#[derive(Debug, clap::Args)]
struct CommonArgs {
    /// Output folder [config: output.dir, default: out].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Sensor name on records and file names [config: sensor, default: mirador].
    #[arg(long)]
    sensor: Option<String>,
    /// TOML configuration file (see mirador.example.toml) [default: the
    /// file MIRADOR_CONFIG names (empty: none), else
    /// /etc/mirador/mirador.toml if it exists, else the built-in defaults
    /// with the signatures of the checkout mirador was built from].
    #[arg(long)]
    config: Option<PathBuf>,
    /// Rule file or folder of *.rules, repeatable [config: rules.paths,
    /// default: signatures].
    #[arg(long = "rules", value_name = "PATH")]
    rules: Vec<PathBuf>,
    /// Reassemble TCP flows whose handshake was not seen [config:
    /// reassembly.midstream].
    #[arg(long)]
    midstream: bool,
    /// Check TCP, UDP and ICMP checksums and skip packets that fail
    /// [config: decode.checksum_validation, default: off].
    #[arg(long, value_name = "on|off", value_parser = ["on", "off"])]
    checksum_validation: Option<String>,
    /// Set any configuration key, e.g. `--set reassembly.depth_bytes=0`
    /// (repeatable; applied after --config, before the other flags).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
}

/// The configuration file given, or else the one [`Config::discover`] finds.
fn load_config(path: Option<PathBuf>) -> anyhow::Result<Config> {
    let (config, source) = match path {
        Some(path) => (Config::load(&path)?, ConfigSource::File(path)),
        None => Config::discover()?,
    };
    tracing::info!("configuration: {source}");
    Ok(config)
}

impl CommonArgs {
    fn config(self) -> anyhow::Result<Config> {
        let mut config = load_config(self.config)?;
        for assignment in &self.set {
            config.set(assignment)?;
        }
        if let Some(out) = self.out {
            config.output.dir = out;
        }
        if let Some(sensor) = self.sensor {
            config.sensor = sensor;
        }
        if !self.rules.is_empty() {
            config.rules.paths = self.rules;
        }
        if self.midstream {
            config.reassembly.midstream = true;
        }
        if let Some(mode) = self.checksum_validation {
            config.decode.checksum_validation = mode == "on";
        }
        Ok(config)
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
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
    if let Command::Rules(RulesCommand::Check { config, paths }) = cli.command {
        let config = load_config(config)?;
        return Ok(check_rules(&paths, &config));
    }
    if let Command::Export {
        date,
        from,
        to,
        delete,
        config,
        set,
    } = cli.command
    {
        let mut config = load_config(config)?;
        for assignment in &set {
            config.set(assignment)?;
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let request = ExportRequest {
            date: resolve_date(&date, now)?,
            from: from.unwrap_or(config.output.dir),
            to: to
                .or(config.export.to)
                .context("no destination: give --to URL or set export.to")?,
            target_bytes: config.export.target_mib.saturating_mul(1 << 20),
            delete: delete || config.export.delete,
            options: config.export.options,
        };
        let report = export(&request)?;
        print_export(&request, &report);
        return Ok(ExitCode::SUCCESS);
    }
    if let Command::Ctl {
        socket,
        config,
        command,
    } = cli.command
    {
        let socket = match socket {
            Some(socket) => socket,
            None => load_config(config)?.control.socket,
        };
        anyhow::ensure!(
            !socket.as_os_str().is_empty(),
            "no control socket: give --socket PATH or set control.socket"
        );
        let command = ctl::Command::parse(&command).context("unknown command")?;
        let answer = ctl::send(&socket, command)
            .with_context(|| format!("control socket {}", socket.display()))?;
        print!("{answer}");
        return Ok(if answer.starts_with("ok") {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .context("installing the signal handler")?;
    }
    let summary = match cli.command {
        Command::Replay { common, inputs } => runtime::replay(ReplayOptions {
            inputs,
            config: common.config()?,
            progress: std::io::stderr().is_terminal(),
            stop,
        })?,
        Command::Run {
            common,
            eal,
            rx_only,
        } => {
            let mut config = common.config()?;
            if let Some(eal) = eal {
                config.dpdk.eal = eal.split_whitespace().map(String::from).collect();
            }
            // SIGHUP reloads the rules of a live run; registered before
            // anything starts, so that an early one does not end the run.
            let reload = Arc::new(AtomicBool::new(false));
            signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&reload))
                .context("installing the SIGHUP handler")?;
            runtime::run(RunOptions {
                config,
                stop,
                rx_only,
                reload,
            })?
        }
        Command::Rules(_) | Command::Export { .. } | Command::Ctl { .. } => {
            unreachable!("handled above")
        }
    };
    Ok(report(&summary))
}

fn print_export(request: &ExportRequest, report: &ExportReport) {
    println!("mirador export {} -> {}", request.date, request.to);
    for m in &report.manifests {
        let bytes: u64 = m.files.iter().map(|f| f.bytes).sum();
        println!(
            "  {:<11} sensor {:<12} {} rows from {} hourly file(s) in {} part(s), {} bytes",
            m.table,
            m.sensor,
            m.rows,
            m.sources.len(),
            m.files.len(),
            bytes
        );
    }
    println!(
        "  uploaded    {} part(s), {} already there, {} stale object(s) removed",
        report.uploaded, report.skipped, report.removed
    );
    println!(
        "  marked      {}",
        request
            .from
            .join(".exported")
            .join(format!("{}.json", request.date))
            .display()
    );
    if request.delete {
        println!("  deleted     {} local file(s)", report.deleted_local);
    }
}

fn report(summary: &RunSummary) -> ExitCode {
    print!("{summary}");
    if summary.read_nothing() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn check_rules(paths: &[PathBuf], config: &Config) -> ExitCode {
    let set = RuleSet::load(paths, &config.rule_vars());
    for skipped in set.skipped() {
        eprintln!("warning: {skipped}; rule skipped");
    }
    let (skipped, errors) = (set.skipped().count(), set.errors().count());
    let read = set.rules.len() + skipped + errors;
    println!("mirador rules check");
    println!("  files         {}", set.files.len());
    println!(
        "  rules         {read} read: {} loaded, {skipped} skipped (unsupported keyword), {errors} malformed",
        set.rules.len()
    );
    if read > 0 {
        println!(
            "  loaded share  {:.1}%",
            100.0 * set.rules.len() as f64 / read as f64
        );
    }
    let keywords = set.unsupported_keywords();
    if !keywords.is_empty() {
        println!("  unsupported keyword                        rules using it");
        for (keyword, count) in &keywords {
            println!("    {keyword:<40} {count}");
        }
    }
    for error in set.errors() {
        println!("  error         {error}");
    }
    if errors > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

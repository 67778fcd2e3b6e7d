//! Writes the sample captures in `pcaps/` that mirador's tests and demo use.
//!
//! Every packet is built here byte by byte (with valid checksums), so each
//! file holds exactly the situations it is named for and nothing else:
//!
//! - `basic.pcap`: Ethernet, little-endian, microseconds. TCP sessions that
//!   close with FIN, are rejected, go unanswered, reuse their ports, last
//!   past the active timeout, or carry IPv4 options; IPv6 with a hop-by-hop
//!   header; DNS over UDP; ICMP echo and unreachable; 802.1Q, QinQ and MPLS;
//!   an ARP frame and a frame cut inside its TCP header.
//! - `tunnels.pcapng`: two interfaces (Ethernet with nanosecond timestamps,
//!   raw IP with microseconds). VXLAN, GRE, ERSPAN II and III carrying TCP;
//!   IPv4 and IPv6 datagrams fragmented and sent out of order.
//! - `cooked-sll.pcap`: Linux SLL, big-endian, microseconds.
//! - `cooked-sll2.pcap`: Linux SLL2, little-endian, nanoseconds.
//! - `stream.pcap`: Ethernet. TCP that needs reassembly: sequence numbers
//!   wrapping past 2^32, segments out of order, retransmitted and re-sent
//!   overlapping, and a session with bytes lost to the capture.
//! - `evasion.pcap`: Ethernet. One marker per TCP session, hidden by
//!   segmentation (two segments, one byte each), reordering, a conflicting
//!   overlap, a gap, sequence wrap, the 1 MiB reassembly depth, and a
//!   request re-sent with other bytes before the server acknowledged it.
//! - `tls.pcap`: Ethernet. A TLS 1.2 handshake's hellos with GREASE values,
//!   for SNI, JA3 and JA3S, and the server's certificate.
//! - `webshell.pcap`: Ethernet. China Chopper, AntSword, Behinder and
//!   Godzilla sessions, each with its request out of order.
//! - `c2.pcap`: Ethernet. Cobalt Strike beacon, output POST and stager
//!   fetch; a plain HTTP trojan's check-in.
//! - `mining.pcap`: Ethernet. Stratum, XMRig's login, a pool name lookup,
//!   a Swarm Bee node's API.
//! - `mirai.pcap`: Ethernet. Scanner SYNs, a telnet login with a default
//!   credential, an attack command.
//! - `covert.pcap`: Ethernet. A DNS tunnel (TXT questions with data
//!   labels) and ICMP tunnels (replies unlike requests, IP inside echo).
//! - `benign.pcap`: Ethernet. Ordinary traffic shaped like those families
//!   (a login form, a jQuery API call, JSON-RPC, a base64 upload, CDN host
//!   names, a large ping).
//! - `credentials.pcap`: Ethernet. Clear-text logins over FTP, POP3, IMAP,
//!   SMTP (`AUTH PLAIN`, `AUTH LOGIN`), Redis and HTTP (Basic, form, JSON),
//!   weak and strong, accepted and refused.
//! - `leaks.pcap`: Ethernet. Cloud access keys with their secrets, API
//!   tokens and a private key in HTTP and raw TCP, and look-alikes that
//!   are no leak (an id alone, a documentation example, a browser key).
//! - `services.pcap`: Ethernet. High-risk services (SSH, Telnet, VNC, RDP,
//!   SMB, MySQL, MSSQL, PostgreSQL, Redis, Memcached, MongoDB, Docker,
//!   Elasticsearch, Kubernetes, kubelet, etcd, YARN, Jenkins) on internal
//!   hosts answering outside and inside clients, open and authenticating,
//!   and look-alikes that are none.
//!
//! Usage: `cargo run -p pcapgen -- [OUT_DIR]` (default `pcaps`).
//!
//! It also streams captures to standard output, for `mirador replay -`:
//! `pcapgen soak` an endless mix of ordinary traffic (see [`soak`]), and
//! `pcapgen flood KIND` traffic made to exhaust one kind of state (see
//! [`flood`]).

mod build;
mod families;
mod files;
mod flood;
mod logins;
mod services;
mod soak;
mod stream;

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    about = "Writes mirador's sample captures, or streams generated traffic",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Folder the sample captures are written to.
    #[arg(default_value = "pcaps")]
    dir: PathBuf,
}

#[derive(Subcommand)]
enum Command {
    /// Streams a mix of ordinary traffic, a new client in every flow.
    Soak {
        /// Flows to write; 0 for no end.
        #[arg(long, default_value_t = 0)]
        flows: u64,
        /// New flows per second of packet time.
        #[arg(long, default_value_t = 5_000)]
        rate: u64,
        /// Keep packet time with the wall clock, starting now.
        #[arg(long)]
        realtime: bool,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Streams traffic made to exhaust one kind of state.
    Flood {
        kind: flood::Kind,
        /// How many of the flood's units (see each kind).
        #[arg(long, default_value_t = 1_000_000)]
        count: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

fn main() -> std::io::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Soak {
            flows,
            rate,
            realtime,
            seed,
        }) => soak::Soak {
            flows,
            rate,
            realtime,
            seed,
        }
        .run(),
        Some(Command::Flood { kind, count, seed }) => flood::run(kind, count, seed),
        None => samples(&cli.dir),
    }
}

/// Writes every sample capture into `dir`.
fn samples(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    files::basic(&dir.join("basic.pcap"))?;
    files::tunnels(&dir.join("tunnels.pcapng"))?;
    files::cooked(&dir.join("cooked-sll.pcap"), &dir.join("cooked-sll2.pcap"))?;
    files::stream(&dir.join("stream.pcap"))?;
    files::evasion(&dir.join("evasion.pcap"))?;
    files::tls(&dir.join("tls.pcap"))?;
    families::webshell(&dir.join("webshell.pcap"))?;
    families::c2(&dir.join("c2.pcap"))?;
    families::mining(&dir.join("mining.pcap"))?;
    families::mirai(&dir.join("mirai.pcap"))?;
    families::covert(&dir.join("covert.pcap"))?;
    families::benign(&dir.join("benign.pcap"))?;
    logins::credentials(&dir.join("credentials.pcap"))?;
    logins::leaks(&dir.join("leaks.pcap"))?;
    services::services(&dir.join("services.pcap"))?;
    Ok(())
}

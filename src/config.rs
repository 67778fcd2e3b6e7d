//! The sensor's configuration: one typed struct read from TOML.
//!
//! Every key has a default (see `mirador.example.toml`, which a test keeps
//! equal to [`Config::default`]); a file only names what it changes, and
//! command-line flags override the file.
//!
//! Relative paths mean what their source means: in a file, its folder; on
//! the command line, the working folder. Without a file, [`Config::discover`]
//! takes the installed one ([`INSTALLED_CONFIG`]) or else the defaults, whose
//! bundled files (signatures, sample captures) are those of the checkout the
//! binary was built from, and whose output and state folders are in the
//! working folder.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::applayer::HttpLimits;
use crate::decode::fragment::DefragConfig;
use crate::detect::builtin::DetectorsConfig;
use crate::detect::rules::Vars;
use crate::detect::DetectLimits;
use crate::evidence::EvidenceConfig;
use crate::flow::table::FlowConfig;
use crate::output::eve::{EveConfig, EveTarget};
use crate::output::services::ServicesConfig;
use crate::output::{OutputConfig, WhenFull};
use crate::reassembly::ReassemblyConfig;
use crate::worker::WorkerConfig;

const MIB: u64 = 1 << 20;

/// The configuration a package installs, used when none is given.
pub const INSTALLED_CONFIG: &str = "/etc/mirador/mirador.toml";
/// The checkout this binary was built from: where the defaults' bundled
/// files are when no configuration is installed.
const BUILD_CHECKOUT: &str = env!("CARGO_MANIFEST_DIR");
/// The environment variable that names the configuration file when
/// `--config` is not given; set but empty, no file is read.
pub const CONFIG_ENV: &str = "MIRADOR_CONFIG";
/// Options of DPDK's `--vdev` devices that name files.
const VDEV_FILE_KEYS: [&str; 2] = ["rx_pcap", "tx_pcap"];

/// Where a run's configuration came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    /// A file: given, named by `MIRADOR_CONFIG`, or installed.
    File(PathBuf),
    /// The defaults, with bundled files from this folder (`None`: the
    /// checkout is gone, and they are looked for in the working folder).
    Defaults(Option<PathBuf>),
}

impl std::fmt::Display for ConfigSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::File(path) => write!(f, "{}", path.display()),
            Self::Defaults(Some(dir)) => write!(f, "defaults, bundled files in {}", dir.display()),
            Self::Defaults(None) => write!(f, "defaults, bundled files in the working folder"),
        }
    }
}

/// What a path of the configuration names, which decides what a relative
/// default is taken from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PathKind {
    /// Files shipped with mirador: signatures, indicator lists, samples.
    Bundled,
    /// What a run writes or keeps: output, caches, saved state.
    State,
}

/// A configuration file or `--set` that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// `--set` wants `KEY=VALUE`.
    #[error("--set {0:?}: expected KEY=VALUE (KEY a dotted path such as reassembly.depth_bytes)")]
    SetSyntax(String),
    /// The key or value of a `--set` does not fit the configuration.
    #[error("--set {assignment:?}: {reason}")]
    Set {
        /// The assignment as given.
        assignment: String,
        /// Why.
        reason: String,
    },
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// `HOME_NET` is no address expression.
    #[error("rules.address_groups.HOME_NET: {0}")]
    HomeNet(String),
    /// The file is not valid TOML for this schema.
    #[error("{path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The cause, with line and column.
        source: toml::de::Error,
    },
}

/// Everything the sensor can be told.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Name of this sensor, written on every record and in file names.
    pub sensor: String,
    /// Output files.
    pub output: OutputSection,
    /// Flow tracking.
    pub flow: FlowConfig,
    /// IP fragment reassembly.
    pub defrag: DefragConfig,
    /// Capture-file replay.
    pub replay: ReplaySection,
    /// Live capture through DPDK (`mirador run`).
    pub dpdk: DpdkSection,
    /// Packet decoding.
    pub decode: DecodeSection,
    /// TCP stream reassembly.
    pub reassembly: ReassemblyConfig,
    /// HTTP parsing.
    pub http: HttpLimits,
    /// Built-in detectors, each in its own section.
    pub detectors: DetectorsConfig,
    /// Signatures.
    pub rules: RulesSection,
    /// Detections as Suricata EVE alert lines.
    pub eve: EveSection,
    /// `mirador export`.
    pub export: ExportSection,
    /// Prometheus metrics of a run.
    pub metrics: MetricsSection,
    /// The control socket of `mirador run`.
    pub control: ControlSection,
    /// Evidence captures of the flows that raise detections.
    pub evidence: EvidenceConfig,
    /// Who `mirador run` runs as once its ports are up.
    pub run: RunSection,
}

/// `[run]`
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunSection {
    /// User `mirador run` switches to once DPDK and its ports are up
    /// (keeping no capability); empty: it stays who started it.
    pub user: String,
    /// Group it switches to; empty: the user's own.
    pub group: String,
}

/// `[control]`
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ControlSection {
    /// Unix socket `mirador run` takes `mirador ctl` commands on; empty:
    /// none (SIGHUP still reloads the rules).
    pub socket: PathBuf,
}

/// `[metrics]`
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsSection {
    /// `HOST:PORT` where a run (or a replay) serves `/metrics`; empty: not
    /// served.
    pub listen: String,
}

/// `[export]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExportSection {
    /// Destination URL (also `--to`): `s3://`, `gs://`, `az://`, `file://`.
    pub to: Option<String>,
    /// Size a compacted file grows to before the next starts, MiB.
    pub target_mib: u64,
    /// Remove a day's local files once exported (also `--delete`).
    pub delete: bool,
    /// Settings of the destination's client over those of the environment
    /// (`object_store` keys such as `region`, `endpoint`, `allow_http`).
    pub options: BTreeMap<String, String>,
}

impl Default for ExportSection {
    fn default() -> Self {
        Self {
            to: None,
            target_mib: 256,
            delete: false,
            options: BTreeMap::new(),
        }
    }
}

/// `[eve]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EveSection {
    /// Write detections as EVE alert lines too.
    pub enabled: bool,
    /// `file` (rotated), `unix_stream` or `unix_dgram`.
    pub target: EveTarget,
    /// The file (relative: under the output folder) or the socket.
    pub path: PathBuf,
    /// The file is rotated past this size, MiB.
    pub rotate_mib: u64,
    /// Rotated files kept.
    pub keep: u32,
}

impl Default for EveSection {
    fn default() -> Self {
        Self {
            enabled: false,
            target: EveTarget::File,
            path: PathBuf::from("eve.json"),
            rotate_mib: 100,
            keep: 5,
        }
    }
}

/// `[decode]`
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DecodeSection {
    /// Check TCP, UDP and ICMP checksums; packets that fail are counted
    /// (`bad_checksum`) and skipped. Off by default: captures often carry
    /// checksums the NIC never filled in (also `--checksum-validation`).
    pub checksum_validation: bool,
}

impl Default for RulesSection {
    fn default() -> Self {
        Self {
            paths: vec![PathBuf::from("signatures")],
            limits: DetectLimits::default(),
            cache_dir: Some(PathBuf::from(".mirador-cache")),
            data_dir: PathBuf::from(".mirador-data"),
            address_groups: BTreeMap::new(),
            port_groups: BTreeMap::new(),
        }
    }
}

/// `[rules]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RulesSection {
    /// Rule files or folders of `*.rules` (also `--rules`).
    pub paths: Vec<PathBuf>,
    /// Inspection's memory and output bounds, keys of this section.
    #[serde(flatten)]
    pub limits: DetectLimits,
    /// Where compiled Hyperscan databases are cached between runs; unset:
    /// no cache.
    pub cache_dir: Option<PathBuf>,
    /// Folder of the datasets rules `save` (written at shutdown) and keep
    /// `state` in; relative names in rules are taken from here.
    pub data_dir: PathBuf,
    /// Address groups rules name as `$NAME`, over Suricata's defaults
    /// (`HOME_NET` = the RFC 1918 networks, `EXTERNAL_NET` = `!$HOME_NET` ...).
    pub address_groups: BTreeMap<String, String>,
    /// Port groups rules name as `$NAME`, over Suricata's defaults
    /// (`HTTP_PORTS` = 80 ...).
    pub port_groups: BTreeMap<String, String>,
}

/// `[output]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutputSection {
    /// Output folder.
    pub dir: PathBuf,
    /// Width of a time partition and file rotation interval, seconds.
    pub rotate_secs: u64,
    /// A file is closed once its rows pass this size in Arrow's format (its
    /// journal), MiB; the Parquet file is several times smaller.
    pub max_file_mib: u64,
    /// Records a worker collects before handing them to the writer.
    pub chunk_records: usize,
    /// Chunks the writer's channel holds; beyond it, `when_full` applies.
    pub channel_chunks: usize,
    /// Server endpoints the `services` table gathers at once at most;
    /// beyond it the least recently seen are written early.
    pub max_service_endpoints: usize,
}

/// `[replay]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReplaySection {
    /// Packets read per batch.
    pub batch_packets: usize,
    /// What to do when the writer falls behind: `block` (lose nothing) or `drop`.
    pub when_full: WhenFull,
}

/// `[dpdk]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DpdkSection {
    /// EAL arguments, one per element (cores, memory, devices).
    pub eal: Vec<String>,
    /// Ports to capture from, by DPDK name (`0000:3b:00.0`, `net_pcap0`);
    /// empty: every port EAL found.
    pub ports: Vec<String>,
    /// Receive queues per port; 0: one per worker on NICs, and every queue a
    /// virtual device offers (one per `rx_pcap` file, `qpairs` of `net_af_packet`).
    pub rx_queues: u16,
    /// Descriptors per receive queue.
    pub ring_size: u16,
    /// Mbufs in the packet pool every port receives into.
    pub mempool_mbufs: u32,
    /// Per-lcore cache of each pool.
    pub mempool_cache: u32,
    /// Packet bytes one mbuf holds; longer frames span chained mbufs (drivers
    /// that cannot chain, like net_pcap looping a file, need it larger).
    pub mbuf_data_room: u16,
    /// Packets asked for per receive call (at most 256).
    pub burst: u16,
    /// Seconds between two statistics log lines; 0: none.
    pub stats_interval_secs: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            sensor: "mirador".into(),
            output: OutputSection::default(),
            flow: FlowConfig::default(),
            defrag: DefragConfig::default(),
            replay: ReplaySection::default(),
            dpdk: DpdkSection::default(),
            decode: DecodeSection::default(),
            reassembly: ReassemblyConfig::default(),
            http: HttpLimits::default(),
            detectors: DetectorsConfig::default(),
            rules: RulesSection::default(),
            eve: EveSection::default(),
            export: ExportSection::default(),
            metrics: MetricsSection::default(),
            control: ControlSection::default(),
            run: RunSection::default(),
            evidence: EvidenceConfig::default(),
        }
    }
}

impl Default for OutputSection {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("out"),
            rotate_secs: 3_600,
            max_file_mib: 256,
            chunk_records: 1_024,
            channel_chunks: 256,
            max_service_endpoints: 65_536,
        }
    }
}

impl Default for ReplaySection {
    fn default() -> Self {
        Self {
            batch_packets: 256,
            when_full: WhenFull::Block,
        }
    }
}

impl Default for DpdkSection {
    fn default() -> Self {
        let eal = [
            "-l",
            "0-1",
            "--no-huge",
            "--no-pci",
            "--no-shconf",
            // The samples, one queue each: ordinary traffic, the threat
            // families, clear-text logins, leaked keys and exposed
            // services, and look-alikes that must raise nothing.
            "--vdev=net_pcap0,rx_pcap=pcaps/basic.pcap,rx_pcap=pcaps/webshell.pcap,\
             rx_pcap=pcaps/c2.pcap,rx_pcap=pcaps/mining.pcap,rx_pcap=pcaps/mirai.pcap,\
             rx_pcap=pcaps/covert.pcap,rx_pcap=pcaps/credentials.pcap,rx_pcap=pcaps/leaks.pcap,\
             rx_pcap=pcaps/services.pcap,rx_pcap=pcaps/benign.pcap",
        ];
        Self {
            eal: eal.into_iter().map(String::from).collect(),
            ports: Vec::new(),
            rx_queues: 0,
            ring_size: 1_024,
            mempool_mbufs: 8_191,
            mempool_cache: 256,
            mbuf_data_room: 2_048,
            burst: 32,
            stats_interval_secs: 10,
        }
    }
}

impl Config {
    /// Reads a TOML file; keys it leaves out keep their defaults. The
    /// relative paths the file sets are taken from its folder; those it
    /// leaves to the defaults are taken as without a file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        Self::load_with(path, bundle_root())
    }

    fn load_with(path: &Path, checkout: Option<&Path>) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let parse_error = |source| ConfigError::Parse {
            path: path.to_owned(),
            source,
        };
        let mut config = Self::parse(&text).map_err(parse_error)?;
        let table: toml::Table = toml::from_str(&text).map_err(parse_error)?;
        let folder = path.parent().unwrap_or(Path::new(""));
        config.resolve(Some((&table, folder)), checkout);
        Ok(config)
    }

    /// The configuration of a run given no `--config`: the file
    /// `MIRADOR_CONFIG` names (empty: none), else the installed one when
    /// there is one, else the defaults with the bundled files of the
    /// checkout this binary was built from.
    pub fn discover() -> Result<(Self, ConfigSource), ConfigError> {
        let installed = match std::env::var_os(CONFIG_ENV) {
            Some(path) if path.is_empty() => None,
            Some(path) => Some(PathBuf::from(path)),
            None => Some(PathBuf::from(INSTALLED_CONFIG)).filter(|p| p.exists()),
        };
        Self::discover_in(installed.as_deref(), bundle_root())
    }

    fn discover_in(
        file: Option<&Path>,
        checkout: Option<&Path>,
    ) -> Result<(Self, ConfigSource), ConfigError> {
        if let Some(file) = file {
            let config = Self::load_with(file, checkout)?;
            return Ok((config, ConfigSource::File(file.to_owned())));
        }
        let mut config = Self::default();
        config.resolve(None, checkout);
        Ok((config, ConfigSource::Defaults(checkout.map(Path::to_owned))))
    }

    /// Makes relative paths absolute where their source says: those `file`
    /// sets, from its folder; bundled files left to the defaults, from the
    /// checkout; the rest stay relative to the working folder.
    fn resolve(&mut self, file: Option<(&toml::Table, &Path)>, checkout: Option<&Path>) {
        for (key, kind, slot) in self.path_slots() {
            let base = match file {
                Some((table, folder)) if is_set(table, &key) => Some(folder),
                _ if kind == PathKind::Bundled => checkout,
                _ => None,
            };
            if let Some(base) = base {
                slot.resolve(base);
            }
        }
    }

    /// Every path the configuration holds, with its key and kind.
    fn path_slots(&mut self) -> Vec<(Vec<&'static str>, PathKind, Slot<'_>)> {
        let mut slots = Vec::new();
        for path in &mut self.rules.paths {
            slots.push((vec!["rules", "paths"], PathKind::Bundled, Slot::Path(path)));
        }
        for (name, field, path) in self.detectors.paths_mut() {
            slots.push((
                vec!["detectors", name, field],
                PathKind::Bundled,
                Slot::Path(path),
            ));
        }
        slots.push((
            vec!["dpdk", "eal"],
            PathKind::Bundled,
            Slot::Eal(&mut self.dpdk.eal),
        ));
        slots.push((
            vec!["output", "dir"],
            PathKind::State,
            Slot::Path(&mut self.output.dir),
        ));
        slots.push((
            vec!["rules", "data_dir"],
            PathKind::State,
            Slot::Path(&mut self.rules.data_dir),
        ));
        if let Some(dir) = &mut self.rules.cache_dir {
            slots.push((vec!["rules", "cache_dir"], PathKind::State, Slot::Path(dir)));
        }
        slots
    }

    /// Applies `KEY=VALUE` (`--set`): KEY is a dotted path into the
    /// configuration, VALUE a TOML value (a bare word is taken as a string).
    pub fn set(&mut self, assignment: &str) -> Result<(), ConfigError> {
        let (key, value) = assignment
            .split_once('=')
            .ok_or_else(|| ConfigError::SetSyntax(assignment.to_owned()))?;
        let fail = |reason: String| ConfigError::Set {
            assignment: assignment.to_owned(),
            reason,
        };
        let value: toml::Value = toml::from_str::<toml::Table>(&format!("v = {value}"))
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| toml::Value::String(value.trim().to_owned()));
        let mut tree = toml::Value::try_from(&*self).map_err(|e| fail(e.to_string()))?;
        let mut node = &mut tree;
        let parts: Vec<&str> = key.trim().split('.').collect();
        for (i, part) in parts.iter().enumerate() {
            let table = node
                .as_table_mut()
                .ok_or_else(|| fail(format!("{} is not a section", parts[..i].join("."))))?;
            if i + 1 == parts.len() {
                if !table.contains_key(*part)
                    && !matches!(
                        parts[..i],
                        ["rules", "address_groups" | "port_groups"]
                            | ["reassembly", "host_os_policy"]
                            | ["export", "options"]
                    )
                {
                    return Err(fail(format!("unknown key {key}")));
                }
                table.insert((*part).to_owned(), value.clone());
                break;
            }
            node = table
                .entry((*part).to_owned())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        }
        *self = tree
            .try_into()
            .map_err(|e: toml::de::Error| fail(e.message().to_owned()))?;
        Ok(())
    }

    /// Parses TOML text.
    pub fn parse(text: &str) -> Result<Self, toml::de::Error> {
        toml::from_str(text)
    }

    /// The worker limits this configuration sets.
    pub fn worker(&self) -> WorkerConfig {
        WorkerConfig {
            flow: self.flow.clone(),
            reassembly: self.reassembly.clone(),
            checksum_validation: self.decode.checksum_validation,
            http: self.http,
            defrag: self.defrag,
            evidence: self.evidence.clone(),
        }
    }

    /// The rule variables: Suricata's defaults with the configured groups over them.
    pub fn rule_vars(&self) -> Vars {
        let mut vars = Vars::default();
        for (name, value) in &self.rules.address_groups {
            vars.set_address(name, value);
        }
        for (name, value) in &self.rules.port_groups {
            vars.set_port(name, value);
        }
        vars
    }

    /// The output settings this configuration sets.
    pub fn output(&self) -> Result<OutputConfig, ConfigError> {
        let home_net = self
            .rule_vars()
            .address("$HOME_NET")
            .map_err(|e| ConfigError::HomeNet(e.to_string()))?;
        Ok(OutputConfig {
            dir: self.output.dir.clone(),
            sensor: self.sensor.clone(),
            rotate_secs: self.output.rotate_secs,
            max_file_bytes: self.output.max_file_mib.saturating_mul(MIB),
            channel_chunks: self.output.channel_chunks,
            eve: self.eve.enabled.then(|| EveConfig {
                target: self.eve.target,
                path: self.eve.path.clone(),
                rotate_bytes: self.eve.rotate_mib.saturating_mul(MIB),
                keep: self.eve.keep,
            }),
            services: ServicesConfig {
                home_net,
                max_endpoints: self.output.max_service_endpoints,
            },
        })
    }
}

/// The checkout this binary was built from, while it holds the bundled
/// signatures.
fn bundle_root() -> Option<&'static Path> {
    Some(Path::new(BUILD_CHECKOUT)).filter(|dir| dir.join("signatures").is_dir())
}

/// True when `key` (a dotted path) is set in `table`.
fn is_set(table: &toml::Table, key: &[&str]) -> bool {
    let Some((last, sections)) = key.split_last() else {
        return false;
    };
    let mut node = table;
    for section in sections {
        match node.get(*section) {
            Some(toml::Value::Table(inner)) => node = inner,
            _ => return false,
        }
    }
    node.contains_key(*last)
}

/// One path of the configuration, to be made absolute.
enum Slot<'a> {
    Path(&'a mut PathBuf),
    /// EAL arguments: the files `--vdev` devices name.
    Eal(&'a mut Vec<String>),
}

impl Slot<'_> {
    fn resolve(self, base: &Path) {
        match self {
            Slot::Path(path) => {
                if path.is_relative() && !path.as_os_str().is_empty() {
                    *path = base.join(&*path);
                }
            }
            Slot::Eal(args) => {
                let mut after_vdev = false;
                for arg in args.iter_mut() {
                    if let Some(device) = arg.strip_prefix("--vdev=") {
                        *arg = format!("--vdev={}", resolve_vdev_files(device, base));
                    } else if after_vdev {
                        *arg = resolve_vdev_files(arg, base);
                    }
                    after_vdev = arg == "--vdev";
                }
            }
        }
    }
}

/// A DPDK virtual device (`net_pcap0,rx_pcap=a.pcap`) with the relative
/// files its options name (`rx_pcap=`, `tx_pcap=`) taken from `base`.
fn resolve_vdev_files(device: &str, base: &Path) -> String {
    let options: Vec<String> = device
        .split(',')
        .map(|option| match option.split_once('=') {
            Some((key, file)) if VDEV_FILE_KEYS.contains(&key) && Path::new(file).is_relative() => {
                format!("{key}={}", base.join(file).display())
            }
            _ => option.to_owned(),
        })
        .collect();
    options.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::inspect::Encrypted;
    use crate::flow::table::Timeouts;
    use crate::reassembly::OverlapPolicy;

    #[test]
    fn paths_a_file_sets_are_taken_from_its_folder_and_defaults_as_without_it() {
        let dir = tempfile::tempdir().unwrap();
        let checkout = dir.path().join("checkout");
        let file = dir.path().join("conf/sensor.toml");
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(
            &file,
            "[rules]\npaths = [\"rules\", \"/abs/et.rules\"]\n\
             [output]\ndir = \"/var/out\"\n\
             [detectors.mining]\npools = \"pools.txt\"\n\
             [dpdk]\neal = [\"-l\", \"0-1\", \"--vdev=net_pcap0,rx_pcap=a.pcap\"]\n",
        )
        .unwrap();
        let config = Config::load_with(&file, Some(&checkout)).unwrap();
        let conf = dir.path().join("conf");
        assert_eq!(
            config.rules.paths,
            [conf.join("rules"), PathBuf::from("/abs/et.rules")]
        );
        assert_eq!(config.output.dir, PathBuf::from("/var/out"));
        assert_eq!(config.detectors.mining.pools, conf.join("pools.txt"));
        assert_eq!(
            config.dpdk.eal[2],
            format!("--vdev=net_pcap0,rx_pcap={}", conf.join("a.pcap").display())
        );
        // Left to the defaults: bundled files from the checkout, state in
        // the working folder.
        assert_eq!(config.detectors.ioc.dir, checkout.join("signatures/ioc"));
        assert_eq!(config.rules.data_dir, PathBuf::from(".mirador-data"));
    }

    #[test]
    fn discovery_takes_the_file_else_the_checkout_defaults() {
        let root = tempfile::tempdir().unwrap();
        let checkout = root.path().join("src");
        let (config, source) = Config::discover_in(None, None).unwrap();
        assert_eq!(source, ConfigSource::Defaults(None));
        assert_eq!(config, Config::default());

        let (config, source) = Config::discover_in(None, Some(&checkout)).unwrap();
        assert_eq!(source, ConfigSource::Defaults(Some(checkout.clone())));
        assert_eq!(config.rules.paths, [checkout.join("signatures")]);
        assert_eq!(
            config.detectors.credentials.dictionary,
            checkout.join("signatures/weak-passwords.txt")
        );
        assert!(config.dpdk.eal[5].contains(&format!(
            "rx_pcap={}",
            checkout.join("pcaps/basic.pcap").display()
        )));
        assert_eq!(
            config.output.dir,
            PathBuf::from("out"),
            "state stays in the working folder"
        );
        assert_eq!(
            config.rules.cache_dir,
            Some(PathBuf::from(".mirador-cache"))
        );

        let installed = root.path().join("etc/mirador.toml");
        std::fs::create_dir_all(installed.parent().unwrap()).unwrap();
        std::fs::write(&installed, "sensor = \"edge\"\n[output]\ndir = \"out\"\n").unwrap();
        let (config, source) = Config::discover_in(Some(&installed), Some(&checkout)).unwrap();
        assert_eq!(source, ConfigSource::File(installed.clone()));
        assert_eq!(config.sensor, "edge");
        assert_eq!(config.output.dir, root.path().join("etc/out"));
        assert_eq!(config.rules.paths, [checkout.join("signatures")]);
    }

    #[test]
    fn vdev_files_resolve_and_other_arguments_stay() {
        let mut eal = [
            "-l",
            "0-1",
            "--vdev=net_pcap0,rx_pcap=a.pcap,rx_pcap=/b.pcap,infinite_rx=1",
            "--vdev",
            "net_pcap1,tx_pcap=c.pcap",
            "--vdev=net_af_packet0,iface=veth0",
        ]
        .map(String::from)
        .to_vec();
        Slot::Eal(&mut eal).resolve(Path::new("/opt/m"));
        assert_eq!(
            eal,
            [
                "-l",
                "0-1",
                "--vdev=net_pcap0,rx_pcap=/opt/m/a.pcap,rx_pcap=/b.pcap,infinite_rx=1",
                "--vdev",
                "net_pcap1,tx_pcap=/opt/m/c.pcap",
                "--vdev=net_af_packet0,iface=veth0",
            ]
        );
    }

    #[test]
    fn example_file_states_the_defaults() {
        let text = include_str!("../mirador.example.toml");
        assert_eq!(Config::parse(text).unwrap(), Config::default());
    }

    #[test]
    fn partial_file_keeps_other_defaults() {
        let config = Config::parse("sensor = \"edge-1\"\n[flow]\nmax_flows = 10\n").unwrap();
        assert_eq!(config.sensor, "edge-1");
        assert_eq!(config.flow.max_flows, 10);
        assert_eq!(config.flow.timeouts, Timeouts::default());
    }

    #[test]
    fn host_os_policies_name_prefixes_per_policy() {
        let config = Config::parse(
            "[reassembly]\ninline = false\n[reassembly.host_os_policy]\nwindows = [\"0.0.0.0/0\"]\nold-linux = [\"2.2.2.2\"]\n",
        )
        .unwrap();
        let mut set = Config::default();
        set.set("reassembly.host_os_policy.windows=[\"0.0.0.0/0\"]")
            .unwrap();
        set.set("reassembly.host_os_policy.old-linux=[\"2.2.2.2\"]")
            .unwrap();
        set.set("reassembly.inline=false").unwrap();
        assert_eq!(set, config);
        let reassembly = config.worker().reassembly;
        assert!(!reassembly.inline);
        let policy = |a: &str| reassembly.policy_for(a.parse().unwrap());
        assert_eq!(policy("2.2.2.2"), OverlapPolicy::OldLinux);
        assert_eq!(policy("1.1.1.1"), OverlapPolicy::Windows);
        assert!(Config::parse("[reassembly.host_os_policy]\nlinux = [\"10.0.0.0/40\"]\n").is_err());
        assert!(Config::parse("[reassembly.host_os_policy]\nbeos = [\"10.0.0.0/8\"]\n").is_err());
    }

    #[test]
    fn set_assigns_dotted_keys_with_toml_values() {
        let mut config = Config::default();
        config.set("reassembly.depth_bytes=4096").unwrap();
        config.set("reassembly.overlap_policy=last").unwrap();
        config.set("flow.timeouts.udp_new = 5").unwrap();
        config
            .set("rules.address_groups.HOME_NET=[10.0.0.0/8]")
            .unwrap();
        config.set("sensor=\"edge 2\"").unwrap();
        assert_eq!(config.reassembly.depth, 4096);
        assert_eq!(config.reassembly.policy, OverlapPolicy::Last);
        assert_eq!(config.flow.timeouts.udp_new_ns, 5_000_000_000);
        assert_eq!(config.rules.address_groups["HOME_NET"], "[10.0.0.0/8]");
        assert_eq!(config.sensor, "edge 2");
        assert!(config
            .set("reassembly.depth=1")
            .unwrap_err()
            .to_string()
            .contains("unknown key"));
        assert!(config.set("reassembly.depth_bytes=lots").is_err());
        assert!(config.set("no-equals").is_err());
    }

    #[test]
    fn rule_limits_are_keys_of_the_rules_section() {
        let config = Config::parse(
            "[rules]\nstream_window_kib = 32\nwindow_memcap_mib = 8\nalerts_per_packet = 3\nencrypted = \"bypass\"\n",
        )
        .unwrap();
        let limits = config.rules.limits;
        assert_eq!(limits.window_bytes, 32 << 10);
        assert_eq!(limits.window_memcap, 8 << 20);
        assert_eq!(limits.alerts_per_inspection, 3);
        assert_eq!(limits.encrypted, Encrypted::Bypass);
        assert_eq!(
            limits.threshold_entries,
            DetectLimits::default().threshold_entries
        );
        let mut set = Config::default();
        set.set("rules.encrypted=\"inspect\"").unwrap();
        assert_eq!(set.rules.limits.encrypted, Encrypted::Inspect);
        let error = Config::parse("[rules]\nstream_window = 32\n").unwrap_err();
        assert!(error.to_string().contains("stream_window"), "{error}");
        assert!(Config::parse("[rules]\nencrypted = \"drop\"\n").is_err());
    }

    #[test]
    fn unknown_key_is_an_error_with_its_line() {
        let error = Config::parse("[flow]\nmax_flow = 10\n").unwrap_err();
        assert!(error.to_string().contains("max_flow"), "{error}");
        assert!(error.to_string().contains("line 2"), "{error}");
    }
}

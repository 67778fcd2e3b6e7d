//! Loading the rules a run inspects with: parse, report, compile.

use std::path::PathBuf;
use std::sync::Arc;

use super::summary::DetectSummary;
use super::RuntimeError;
use crate::config::Config;
use crate::detect::builtin::{Builtin, DetectorsConfig, Shared};
use crate::detect::dataset::WorkerSets;
use crate::detect::rules::{RuleError, RuleSet};
use crate::detect::{DetectLimits, Engine, Inspector};

/// Skipped rules named one by one in the log before the rest are counted.
const SKIPPED_SHOWN: usize = 20;

/// The compiled rules of a run (none when no rule loaded and the built-in
/// detectors are off).
#[derive(Debug, Clone)]
pub struct LoadedRules {
    engine: Option<Arc<Engine>>,
    limits: DetectLimits,
    detectors: DetectorsConfig,
    shared: Arc<Shared>,
    data_dir: PathBuf,
}

impl LoadedRules {
    /// True when workers get an inspector (rules, or built-in detectors).
    pub fn has_inspector(&self) -> bool {
        self.engine.is_some()
    }

    /// The set a reload swapped in: its datasets are the ones saved, and
    /// the old set's databases are let go.
    pub fn replace_engine(&mut self, engine: Arc<Engine>) {
        self.engine = Some(engine);
    }

    /// An inspector for one worker, when there are rules or built-in
    /// detectors.
    pub fn inspector(&self) -> Option<Inspector> {
        self.engine.as_ref().map(|engine| {
            let builtin = Builtin::new(&self.detectors, &self.shared);
            Inspector::new(Arc::clone(engine), self.limits, builtin)
        })
    }

    /// Writes the datasets rules `save`, from the workers' copies; a set
    /// that cannot be written is logged, and the others are still written.
    pub fn save_datasets(&self, workers: &[WorkerSets]) {
        let Some(engine) = &self.engine else { return };
        if engine.datasets.is_empty() {
            return;
        }
        match engine.datasets.save(&self.data_dir, workers) {
            Ok(0) => {}
            Ok(saved) => {
                tracing::info!(saved, dir = %self.data_dir.display(), "datasets saved")
            }
            Err(error) => tracing::error!("{error}; dataset not saved"),
        }
    }
}

/// Why a reload keeps the rules that run.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// A rules path is gone, or the databases could not be built.
    #[error(transparent)]
    Load(#[from] RuntimeError),
    /// Rules did not parse or compile: the first few, and how many.
    #[error("{count} rule(s) malformed, the first: {first}")]
    Malformed {
        /// How many.
        count: usize,
        /// The first ones, with file and line.
        first: String,
    },
}

/// Loads `rules.paths` again for a reload, strictly: a missing path or a
/// malformed rule keeps the running set, and says why. What loaded is
/// logged as at the start.
pub fn reload(config: &Config) -> Result<(Arc<Engine>, DetectSummary), ReloadError> {
    let (engine, set, rejected) = compile(config)?;
    let errors: Vec<String> = set
        .errors()
        .map(ToString::to_string)
        .chain(rejected.iter().map(ToString::to_string))
        .collect();
    if !errors.is_empty() {
        return Err(ReloadError::Malformed {
            count: errors.len(),
            first: errors
                .iter()
                .take(3)
                .cloned()
                .collect::<Vec<_>>()
                .join("; "),
        });
    }
    let summary = DetectSummary {
        rules: engine.rules.len(),
        skipped: set.skipped().count(),
        malformed: 0,
        stats: Default::default(),
    };
    Ok((Arc::new(engine), summary))
}

/// Reads `rules.paths` (each must exist), compiles what loaded, and gives
/// its datasets their saved state: the engine, the set as read, and the
/// rules the compiler rejected. The start and reloads share it.
fn compile(config: &Config) -> Result<(Engine, RuleSet, Vec<RuleError>), RuntimeError> {
    if let Some(missing) = config.rules.paths.iter().find(|path| !path.exists()) {
        return Err(RuntimeError::RulesPath(missing.clone()));
    }
    let set = RuleSet::load(&config.rules.paths, &config.rule_vars());
    let (mut engine, rejected) = Engine::compile(&set, config.rules.cache_dir.as_deref())?;
    if let Err(error) = engine.datasets.load_state(&config.rules.data_dir) {
        tracing::error!("{error}; the set starts empty");
    }
    Ok((engine, set, rejected))
}

/// Loads `rules.paths`, logging what was skipped and what is malformed.
pub fn load(config: &Config) -> Result<(LoadedRules, DetectSummary), RuntimeError> {
    let (engine, set, rejected) = compile(config)?;
    let shared = if config.detectors.enabled {
        let (shared, problems) = Shared::load(&config.detectors);
        for problem in &problems {
            tracing::error!("{problem}");
        }
        shared
    } else {
        Shared::default()
    };
    let build = &engine.build;
    if engine.rules.is_empty() {
        let looked_in: Vec<String> = config
            .rules
            .paths
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        tracing::warn!("no rules loaded; looked in [{}]", looked_in.join(", "));
    } else {
        tracing::info!(
            rules = engine.rules.len(),
            ms = build.elapsed.as_millis() as u64,
            cached = build.cached,
            packet_db_bytes = build.packet_bytes,
            stream_db_bytes = build.stream_bytes,
            app_db_bytes = build.app_bytes,
            stream_state_bytes = build.stream_state_bytes,
            "rules compiled"
        );
    }
    let skipped: Vec<_> = set.skipped().collect();
    for rule in skipped.iter().take(SKIPPED_SHOWN) {
        tracing::warn!("{rule}; rule skipped");
    }
    if skipped.len() > SKIPPED_SHOWN {
        tracing::warn!(
            "{} more rules skipped for unsupported keywords (`mirador rules check` lists them)",
            skipped.len() - SKIPPED_SHOWN
        );
    }
    let mut malformed = 0;
    for error in set.errors().chain(rejected.iter()) {
        tracing::error!("{error}; rule not loaded");
        malformed += 1;
    }
    let summary = DetectSummary {
        rules: engine.rules.len(),
        skipped: skipped.len(),
        malformed,
        stats: Default::default(),
    };
    let loaded = LoadedRules {
        // Built-in detectors run even without rules.
        engine: (!engine.rules.is_empty() || config.detectors.enabled).then(|| Arc::new(engine)),
        limits: config.rules.limits,
        detectors: config.detectors.clone(),
        shared: Arc::new(shared),
        data_dir: config.rules.data_dir.clone(),
    };
    Ok((loaded, summary))
}

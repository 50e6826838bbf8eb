//! The TOML run file: everything a run needs, validated before any model runs.
//!
//! ```toml
//! [parameters.intercept]
//! prior = { dist = "normal", mean = 0.0, std = 5.0 }
//!
//! [parameters.slope]
//! prior = { dist = "uniform", lower = 0.0, upper = 5.0 }
//! transform = "logit"      # identity (default) | log | logit
//! unit = "K/yr"
//!
//! [model]
//! name = "linear"          # see climcal::models::registry::MODEL_NAMES
//! options = { t_end = 20 }
//!
//! [target]
//! reference_period = [0, 5]            # optional, applies to every variable
//! [target.variables.y]
//! file = "toy_linear.csv"              # relative to this file
//! time_column = "year"                 # default "year"
//! column = "y"                         # default: the variable's name
//! sigma = "y_sigma"                    # a column, a number, or { lower = "lo", upper = "hi" } (95% range)
//! time_range = [0, 20]                 # optional
//!
//! [likelihood]
//! kind = "gaussian"                    # default; or "ar1" (AR(1) residuals, exact, O(n))
//! relative_error = 0.0                 # default 0
//! # kind = "ar1" only: a number or the name of a sampled [parameters.NAME]
//! # rho = 0.5                          # lag-1 autocorrelation per unit time, [0, 1) (default 0)
//! # sigma_extra = "sigma_extra"        # extra error in quadrature (default none)
//! # [likelihood.variables."Surface Temperature"]   # per-variable rho / sigma_extra
//! # rho = "rho_T"
//!
//! [sampler]
//! n_walkers = 32        # default max(2·n_params, 32)
//! n_steps = 2000        # default 1000
//! thin = 1              # default 1
//! seed = 42             # default: drawn from the clock and recorded in the chain file
//! init = "prior"        # default; or a table:
//! # init = { method = "ball", center = { intercept = 0.0, slope = 1.0 }, radius = 1e-3 }
//!
//! [output]
//! path = "run.h5"       # default: the run file's name with .h5, next to it
//! checkpoint_every = 100 # default 100 steps (0 = only at the end)
//! blobs = true          # store the model at the observation times (default true)
//! derived = true        # store the model's derived quantities, e.g. ECS, TCR (default true)
//! ```
//!
//! Unknown keys anywhere are errors naming the key and its line. Paths are
//! relative to the run file's directory.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use indexmap::IndexMap;
use rand::RngCore;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

use crate::density::LogDensity;
use crate::distribution::PriorSpec;
use crate::error::{Error, Result};
use crate::executor::Executor;
use crate::likelihood::GaussianLikelihood;
use crate::models::registry::{build_model, BuiltModel, ModelContext};
use crate::parameter::{ParameterSet, Transform};
use crate::posterior::Posterior;
use crate::sampler::ensemble::default_n_walkers;
use crate::sampler::moves::Moves;
use crate::sampler::rng::walker_rngs;
use crate::sampler::{EnsembleSampler, RunOptions, SamplerState};
use crate::target::{read_csv_variable, SigmaSource, Target};

/// The parsed run file (the TOML structure, before anything is built).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunFile {
    /// Parameters in file order: name → prior, transform, unit. May be empty for
    /// density models (`gaussian`, `rosenbrock`), whose parameters are then `p0, p1, …`
    /// with a flat prior.
    #[serde(default)]
    pub parameters: IndexMap<String, ParameterConfig>,
    /// `[model]`: name and options.
    pub model: ModelConfig,
    /// `[target]`: observations (needed by runner models, not by density models).
    pub target: Option<TargetConfig>,
    /// `[likelihood]` (default Gaussian with no relative error).
    #[serde(default)]
    pub likelihood: LikelihoodConfig,
    /// `[sampler]`.
    #[serde(default)]
    pub sampler: SamplerConfig,
    /// `[output]`.
    #[serde(default)]
    pub output: OutputConfig,
    /// `[ensemble]`: prior-ensemble settings and constraints (`climcal ensemble`;
    /// see [`crate::ensemble::spec`]).
    pub ensemble: Option<crate::ensemble::spec::EnsembleSpec>,
}

/// One `[parameters.NAME]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParameterConfig {
    /// The prior, e.g. `{ dist = "normal", mean = 3.0, std = 0.5 }`.
    pub prior: PriorSpec,
    /// `identity` (default), `log` or `logit`.
    #[serde(default)]
    pub transform: Transform,
    /// Unit for tables and chain files (default empty).
    #[serde(default)]
    pub unit: String,
}

/// `[model]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// A name known to [`crate::models::registry`].
    pub name: String,
    /// Model-specific options (default empty).
    #[serde(default)]
    pub options: toml::Table,
}

/// `[target]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    /// Anomalies relative to the mean over `[start, end]` for every variable without its own.
    pub reference_period: Option<[f64; 2]>,
    /// Observed variables by model output name.
    #[serde(default)]
    pub variables: IndexMap<String, VariableConfig>,
}

/// `[target.variables.NAME]`: one observed variable read from a CSV file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariableConfig {
    /// CSV file with a header row (relative to the run file).
    pub file: PathBuf,
    /// Time column (default `"year"`).
    #[serde(default = "default_time_column")]
    pub time_column: String,
    /// Value column (default: the variable's name).
    pub column: Option<String>,
    /// 1-σ uncertainty: a column name, a number, or `{ lower, upper }` columns of a 95% range.
    pub sigma: SigmaConfig,
    /// Keep rows with `start <= time <= end` (default: all).
    pub time_range: Option<[f64; 2]>,
    /// This variable's own reference period.
    pub reference_period: Option<[f64; 2]>,
}

fn default_time_column() -> String {
    "year".into()
}

/// Where σ comes from (see [`SigmaSource`]).
#[derive(Debug, Clone, PartialEq)]
pub struct SigmaConfig(pub SigmaSource);

impl<'de> Deserialize<'de> for SigmaConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Range {
            lower: String,
            upper: String,
        }
        impl<'de> Visitor<'de> for V {
            type Value = SigmaConfig;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a column name, a number, or { lower = \"col\", upper = \"col\" } (95% range)")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<SigmaConfig, E> {
                Ok(SigmaConfig(SigmaSource::Column(v.to_string())))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> std::result::Result<SigmaConfig, E> {
                Ok(SigmaConfig(SigmaSource::Constant(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<SigmaConfig, E> {
                Ok(SigmaConfig(SigmaSource::Constant(v as f64)))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> std::result::Result<SigmaConfig, A::Error> {
                let r = Range::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(SigmaConfig(SigmaSource::Range95 { lower: r.lower, upper: r.upper }))
            }
        }
        d.deserialize_any(V)
    }
}

/// `[likelihood]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LikelihoodConfig {
    /// `"gaussian"` (default; the only kind so far).
    #[serde(default = "default_likelihood")]
    pub kind: String,
    /// Extra error proportional to the observed value (default `0.0`).
    #[serde(default)]
    pub relative_error: f64,
    /// `kind = "ar1"`: lag-1 autocorrelation per unit time of every variable's
    /// residuals, a number in `[0, 1)` or the name of a sampled parameter (default `0`).
    pub rho: Option<LikelihoodSetting>,
    /// `kind = "ar1"`: extra error added in quadrature to every σ, a number or a parameter name (default none).
    pub sigma_extra: Option<LikelihoodSetting>,
    /// `kind = "ar1"`: per-variable `rho` / `sigma_extra` overriding the two above.
    #[serde(default)]
    pub variables: IndexMap<String, LikelihoodVariableConfig>,
}

/// A likelihood setting in a run file: a number or the name of a `[parameters.NAME]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum LikelihoodSetting {
    /// A constant.
    Number(f64),
    /// A sampled parameter.
    Param(String),
}

/// `[likelihood.variables.NAME]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LikelihoodVariableConfig {
    pub rho: Option<LikelihoodSetting>,
    pub sigma_extra: Option<LikelihoodSetting>,
}

fn setting(s: &LikelihoodSetting) -> crate::likelihood::ar1::Setting {
    match s {
        LikelihoodSetting::Number(x) => crate::likelihood::ar1::Setting::Fixed(*x),
        LikelihoodSetting::Param(p) => crate::likelihood::ar1::Setting::Param(p.clone()),
    }
}

impl LikelihoodConfig {
    /// The likelihood this section describes (`gaussian` or `ar1`), checked against `target`.
    pub fn build(&self, target: &Target) -> Result<Arc<dyn crate::likelihood::LikelihoodFn>> {
        use crate::likelihood::ar1::Ar1Likelihood;
        match self.kind.as_str() {
            "gaussian" => {
                if self.rho.is_some() || self.sigma_extra.is_some() || !self.variables.is_empty() {
                    return Err(Error::Config(
                        "[likelihood] rho, sigma_extra and variables belong to kind = \"ar1\"; set kind = \"ar1\" or remove them"
                            .into(),
                    ));
                }
                Ok(Arc::new(GaussianLikelihood::new(self.relative_error)?))
            }
            "ar1" => {
                let per = self
                    .variables
                    .iter()
                    .map(|(n, v)| (n.clone(), v.rho.as_ref().map(setting), v.sigma_extra.as_ref().map(setting)));
                let lik = Ar1Likelihood::with_defaults(
                    self.relative_error,
                    self.rho.as_ref().map(setting),
                    self.sigma_extra.as_ref().map(setting),
                    per.collect(),
                )?;
                let unknown = lik.unknown_variables(target);
                if !unknown.is_empty() {
                    return Err(Error::Config(format!(
                        "[likelihood.variables] names {unknown:?}, which are not target variables; the target has {:?}",
                        target.variables().keys().collect::<Vec<_>>()
                    )));
                }
                Ok(Arc::new(lik))
            }
            other => {
                Err(Error::Config(format!("[likelihood] kind = '{other}' is not known; the known kinds are: gaussian, ar1")))
            }
        }
    }
}

fn default_likelihood() -> String {
    "gaussian".into()
}

impl Default for LikelihoodConfig {
    fn default() -> Self {
        Self { kind: default_likelihood(), relative_error: 0.0, rho: None, sigma_extra: None, variables: IndexMap::new() }
    }
}

/// `[sampler]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamplerConfig {
    /// Walkers (default `max(2·n_params, 32)`); even and at least `2·n_params`.
    pub n_walkers: Option<usize>,
    /// Steps (default `1000`).
    #[serde(default = "default_steps")]
    pub n_steps: u64,
    /// Store every `thin`-th step (default `1`).
    #[serde(default = "default_thin")]
    pub thin: usize,
    /// Seed (default: drawn from the clock; the chain file records it).
    pub seed: Option<u64>,
    /// How walkers start (default `"prior"`).
    #[serde(default)]
    pub init: InitConfig,
    /// Stretch-move scale `a` (default `2.0`).
    #[serde(default = "default_a")]
    pub stretch_scale: f64,
    /// Proposal moves, e.g. `[{ kind = "de", weight = 0.8 }, { kind = "de_snooker", weight = 0.2 }]`
    /// (default: the stretch move with `stretch_scale`; see `sampler::moves`).
    #[serde(default)]
    pub moves: Option<Vec<toml::Value>>,
}

fn default_steps() -> u64 {
    1000
}
fn default_thin() -> usize {
    1
}
fn default_a() -> f64 {
    2.0
}

impl Default for SamplerConfig {
    fn default() -> Self {
        Self { n_walkers: None, n_steps: 1000, thin: 1, seed: None, init: InitConfig::Prior, stretch_scale: 2.0, moves: None }
    }
}

/// `[sampler] init`: `"prior"` or a table with `method`.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum InitConfig {
    /// Independent prior draws (default).
    #[default]
    Prior,
    /// A Gaussian ball of `radius` (sampler space, default `1e-3`) around `center`
    /// (physical values, by parameter name or as a list).
    Ball { center: CenterSpec, radius: f64 },
    /// A ball of `radius` (default `1e-3`) around the best fit: read from `file`
    /// (written by `climcal optimize -o`), or found by `climcal run` with L-BFGS
    /// before sampling when no file is given. `init = "best"` is the short form.
    Best { file: Option<PathBuf>, radius: f64 },
}

/// A ball centre: `{ name = value, … }` or `[v0, v1, …]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum CenterSpec {
    Map(IndexMap<String, f64>),
    List(Vec<f64>),
}

#[derive(Deserialize)]
#[serde(tag = "method", rename_all = "snake_case", deny_unknown_fields)]
enum InitTable {
    Prior,
    Ball {
        center: CenterSpec,
        #[serde(default = "default_radius")]
        radius: f64,
    },
    Best {
        file: Option<PathBuf>,
        #[serde(default = "default_radius")]
        radius: f64,
    },
}

fn default_radius() -> f64 {
    1e-3
}

impl<'de> Deserialize<'de> for InitConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = InitConfig;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("\"prior\" or a table { method = \"ball\", center = {...}, radius = ... }")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<InitConfig, E> {
                match v {
                    "prior" => Ok(InitConfig::Prior),
                    "best" => Ok(InitConfig::Best { file: None, radius: default_radius() }),
                    "ball" => Err(E::custom(
                        "init = \"ball\" needs a centre: write init = { method = \"ball\", center = { name = value, ... }, radius = 1e-3 }",
                    )),
                    other => Err(E::custom(format!("unknown init '{other}'; use \"prior\", \"best\" or {{ method = \"ball\", ... }}"))),
                }
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> std::result::Result<InitConfig, A::Error> {
                Ok(match InitTable::deserialize(de::value::MapAccessDeserializer::new(map))? {
                    InitTable::Prior => InitConfig::Prior,
                    InitTable::Ball { center, radius } => InitConfig::Ball { center, radius },
                    InitTable::Best { file, radius } => InitConfig::Best { file, radius },
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// `[output]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputConfig {
    /// Chain file (default: the run file's name with `.h5`, next to it).
    pub path: Option<PathBuf>,
    /// Checkpoint every this many steps (default `100`; `0` = only at the end).
    #[serde(default = "default_ckpt")]
    pub checkpoint_every: usize,
    /// Store the model's values at the observation times with every sample (default `true`).
    #[serde(default = "default_true")]
    pub blobs: bool,
    /// Store the model's derived quantities ([`crate::derived`]) with every sample (default `true`).
    #[serde(default = "default_true")]
    pub derived: bool,
}

fn default_ckpt() -> usize {
    100
}
fn default_true() -> bool {
    true
}

impl Default for OutputConfig {
    fn default() -> Self {
        Self { path: None, checkpoint_every: 100, blobs: true, derived: true }
    }
}

/// A run file with its text and location: parse with [`RunConfig::load`] or
/// [`RunConfig::from_toml_str`], then [`RunConfig::build_problem`].
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// The parsed structure.
    pub file: RunFile,
    /// The TOML text as given (stored in chain files).
    pub text: String,
    /// Directory that relative paths are resolved against.
    pub base_dir: PathBuf,
    /// The file it was read from, if any.
    pub source: Option<PathBuf>,
}

/// 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].bytes().filter(|&b| b == b'\n').count() + 1
}

/// 1-based line where `key` is assigned (`key = …`, `key.x = …`) or used as a table header.
fn line_of_key(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|l| {
            let t = l.trim_start().trim_start_matches('[').trim_start();
            t.strip_prefix(key).or_else(|| t.strip_prefix(&format!("\"{key}\""))).is_some_and(|rest| {
                let r = rest.trim_start();
                r.starts_with('=') || r.starts_with('.') || r.starts_with(']')
            })
        })
        .map(|i| i + 1)
        .or_else(|| {
            // inline tables: `options = { key = 1 }`
            text.lines().position(|l| l.contains(&format!("{key} =")) || l.contains(&format!("{key}="))).map(|i| i + 1)
        })
}

impl RunConfig {
    /// Read and parse a run file (paths in it are relative to its directory).
    pub fn load(path: &Path) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).map_err(|e| Error::Config(format!("cannot read run file {}: {e}", path.display())))?;
        let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let base = abs.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."));
        let mut c = Self::parse(&text, base, Some(path))?;
        c.source = Some(path.to_path_buf());
        Ok(c)
    }

    /// Parse TOML text; relative paths resolve against `base_dir`.
    pub fn from_toml_str(text: &str, base_dir: impl Into<PathBuf>) -> Result<Self> {
        Self::parse(text, base_dir.into(), None)
    }

    fn parse(text: &str, base_dir: PathBuf, source: Option<&Path>) -> Result<Self> {
        let file: RunFile = toml::from_str(text).map_err(|e| {
            let place = match source {
                Some(p) => format!("{}", p.display()),
                None => "run file".into(),
            };
            let line = e.span().map(|s| format!(" line {}:", line_of(text, s.start))).unwrap_or_default();
            Error::Config(format!("{place}:{line} {}", e.message().trim()))
        })?;
        Ok(Self { file, text: text.to_string(), base_dir, source: None })
    }

    /// Resolve a path from the run file.
    pub fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base_dir.join(p)
        }
    }

    /// The chain file: `[output] path`, else the run file's name with `.h5` next
    /// to it, else `chain.h5` in the base directory.
    pub fn output_path(&self) -> PathBuf {
        if let Some(p) = &self.file.output.path {
            return self.resolve(p);
        }
        match &self.source {
            Some(s) => self.resolve(&PathBuf::from(s.file_name().unwrap_or_default()).with_extension("h5")),
            None => self.base_dir.join("chain.h5"),
        }
    }

    /// Run options from `[sampler]` and `[output]` (no checkpoint path: the caller
    /// decides where rows go).
    pub fn run_options(&self) -> RunOptions {
        RunOptions {
            thin: self.file.sampler.thin,
            checkpoint_every: self.file.output.checkpoint_every,
            checkpoint_path: None,
            stop: None,
            store_blobs: self.file.output.blobs || self.file.output.derived,
        }
    }

    fn model_error(&self, e: Error) -> Error {
        // Add the line of a named option to model-option errors.
        let msg = e.to_string();
        if let (Error::Config(_), Some(start)) = (&e, msg.find('`')) {
            if let Some(len) = msg[start + 1..].find('`') {
                let key = &msg[start + 1..start + 1 + len];
                if let Some(l) = line_of_key(&self.text, key) {
                    return Error::Config(format!("{} (line {l})", msg.trim_start_matches("config error: ")));
                }
            }
        }
        e
    }

    /// Build everything the run needs — parameters, model, target, likelihood —
    /// checking all of it (priors, data files, model options, walkers, init)
    /// before any model runs.
    pub fn build_problem(&self) -> Result<Problem> {
        let f = &self.file;
        // Parameters.
        let params = if f.parameters.is_empty() {
            None
        } else {
            Some(ParameterSet::from_specs(
                f.parameters.iter().map(|(n, p)| (n.as_str(), &p.prior, p.transform, p.unit.as_str())),
            )?)
        };
        let names_given: Vec<String> = f.parameters.keys().cloned().collect();
        let ctx = ModelContext { base_dir: &self.base_dir, param_names: &names_given };
        let model = build_model(&f.model.name, &f.model.options, &ctx).map_err(|e| self.model_error(e))?;
        if !["gaussian", "ar1"].contains(&f.likelihood.kind.as_str()) {
            return Err(Error::Config(format!(
                "[likelihood] kind = '{}' is not known; the known kinds are: gaussian, ar1",
                f.likelihood.kind
            )));
        }
        let (density, posterior): (Arc<dyn LogDensity>, Option<Posterior>) = match model {
            BuiltModel::Density(d) => {
                if f.target.as_ref().is_some_and(|t| !t.variables.is_empty()) {
                    return Err(Error::Config(format!(
                        "model '{}' is a complete density and takes no [target]; remove the [target] section or use a model that simulates the target variables",
                        f.model.name
                    )));
                }
                match &params {
                    Some(p) => (Arc::new(PriorTimesDensity { params: p.clone(), inner: d }), None),
                    None => (d, None),
                }
            }
            BuiltModel::Runner(runner) => {
                let params = params.clone().ok_or_else(|| {
                    Error::Config(format!(
                        "model '{}' needs priors: add a [parameters.NAME] section for each of {:?}",
                        f.model.name,
                        runner.param_names()
                    ))
                })?;
                let target = self.build_target()?;
                let lik = f.likelihood.build(&target)?;
                let post = Posterior::new(params, target, runner, lik)?.with_blobs(f.output.blobs).with_derived(f.output.derived);
                (Arc::new(post.clone()), Some(post))
            }
        };
        let dim = density.dim();
        let names = density.param_names();
        let (units, priors, transforms) = match &params {
            Some(_) => (
                f.parameters.values().map(|p| p.unit.clone()).collect(),
                f.parameters.values().map(|p| Some(p.prior.clone())).collect(),
                f.parameters.values().map(|p| p.transform).collect(),
            ),
            None => (vec![String::new(); dim], vec![None; dim], vec![Transform::Identity; dim]),
        };
        // Sampler settings.
        let s = &f.sampler;
        let n_walkers = s.n_walkers.unwrap_or_else(|| default_n_walkers(dim));
        if s.thin == 0 {
            return Err(Error::InvalidSampler("[sampler] thin must be >= 1".into()));
        }
        if !(s.stretch_scale > 1.0 && s.stretch_scale.is_finite()) {
            return Err(Error::InvalidSampler(format!("[sampler] stretch_scale must be > 1, got {}", s.stretch_scale)));
        }
        let init = match &s.init {
            InitConfig::Prior => {
                if params.is_none() {
                    return Err(Error::Config(format!(
                        "init = \"prior\" needs priors, but model '{}' has no [parameters]; add [parameters.NAME] sections or use init = {{ method = \"ball\", center = [...], radius = 1e-3 }}",
                        f.model.name
                    )));
                }
                Init::Prior
            }
            InitConfig::Best { file, radius } => {
                if !(*radius > 0.0 && radius.is_finite()) {
                    return Err(Error::InvalidSampler(format!("[sampler] init.radius must be > 0, got {radius}")));
                }
                Init::Best { file: file.as_ref().map(|p| self.resolve(p)), radius: *radius }
            }
            InitConfig::Ball { center, radius } => {
                let c = match center {
                    CenterSpec::List(v) => {
                        if v.len() != dim {
                            return Err(Error::LengthMismatch {
                                what: "[sampler] init.center vs parameters".into(),
                                expected: dim,
                                found: v.len(),
                            });
                        }
                        v.clone()
                    }
                    CenterSpec::Map(m) => {
                        for k in m.keys() {
                            if !names.contains(k) {
                                return Err(Error::Config(format!(
                                    "[sampler] init.center: '{k}' is not a parameter; the parameters are {names:?}"
                                )));
                            }
                        }
                        names
                            .iter()
                            .map(|n| {
                                m.get(n).copied().ok_or_else(|| {
                                    Error::Config(format!("[sampler] init.center has no value for parameter '{n}'"))
                                })
                            })
                            .collect::<Result<Vec<_>>>()?
                    }
                };
                if let Some(p) = &params {
                    for (def, x) in p.defs().zip(&c) {
                        if def.prior.ln_pdf(*x) == f64::NEG_INFINITY {
                            return Err(Error::Config(format!(
                                "[sampler] init.center: {} = {x} is outside its prior's support {:?}",
                                def.name,
                                def.prior.bounds()
                            )));
                        }
                    }
                }
                if !(*radius > 0.0 && radius.is_finite()) {
                    return Err(Error::InvalidSampler(format!("[sampler] init.radius must be > 0, got {radius}")));
                }
                Init::Ball { center: c, radius: *radius }
            }
        };
        // Check the walker count and the moves now (before any model runs).
        let check = EnsembleSampler::new(density.clone(), 0).with_n_walkers(n_walkers)?;
        if let Some(m) = self.moves()? {
            check.with_moves(m)?;
        }
        let blob_names = match &posterior {
            Some(p) if f.output.blobs => {
                p.blob_layout().into_iter().flat_map(|(n, ts)| ts.into_iter().map(move |t| format!("{n}@{t}"))).collect()
            }
            _ => Vec::new(),
        };
        let fingerprint = serde_json::json!({
            "model": f.model.name,
            "model_options": toml::to_string(&f.model.options).unwrap_or_default(),
            "names": names,
            "priors": priors,
            "transforms": transforms,
            "n_blobs": density.n_blobs(),
            "target": posterior.as_ref().map(|p| target_digest(p.target())),
        })
        .to_string();
        Ok(Problem {
            density,
            params,
            posterior,
            names,
            units,
            priors,
            transforms,
            model_name: f.model.name.clone(),
            blob_names,
            n_walkers,
            init,
            fingerprint,
        })
    }

    fn build_target(&self) -> Result<Target> {
        let t = self.file.target.as_ref().filter(|t| !t.variables.is_empty()).ok_or_else(|| {
            Error::Config(format!(
                "model '{}' needs observations: add [target.variables.NAME] sections (file, column, sigma)",
                self.file.model.name
            ))
        })?;
        let mut target = Target::new();
        for (name, v) in &t.variables {
            let path = self.resolve(&v.file);
            let col = v.column.clone().unwrap_or_else(|| name.clone());
            let c = read_csv_variable(&path, name, &v.time_column, &col, &v.sigma.0, v.time_range.map(|[a, b]| (a, b)))?;
            target.push_variable(name, c.times, c.values, c.sigmas)?;
        }
        if let Some([a, b]) = t.reference_period {
            target = target.with_reference_period(a, b)?;
        }
        for (name, v) in &t.variables {
            if let Some([a, b]) = v.reference_period {
                target = target.with_variable_reference_period(name, a, b)?;
            }
        }
        Ok(target)
    }

    /// The seed to use: `[sampler] seed`, else one drawn from the clock.
    pub fn seed_or_random(&self) -> u64 {
        self.file.sampler.seed.unwrap_or_else(|| {
            let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            (t.as_nanos() as u64) ^ (std::process::id() as u64).rotate_left(32)
        })
    }

    /// A sampler for `problem` with this file's walkers, stretch scale and moves.
    pub fn sampler(
        &self,
        problem: &Problem,
        seed: u64,
        executor: Arc<dyn Executor>,
    ) -> Result<EnsembleSampler<Arc<dyn LogDensity>>> {
        let s = EnsembleSampler::new(problem.density.clone(), seed)
            .with_n_walkers(problem.n_walkers)?
            .with_stretch_scale(self.file.sampler.stretch_scale)?;
        let s = match self.moves()? {
            Some(m) => s.with_moves(m)?,
            None => s,
        };
        Ok(s.with_executor(executor))
    }

    /// `[sampler] moves`, parsed (`None` when absent). `stretch_scale` and `moves`
    /// together are refused: the stretch move's `a` goes in its table.
    pub fn moves(&self) -> Result<Option<Moves>> {
        let s = &self.file.sampler;
        let Some(list) = &s.moves else { return Ok(None) };
        if s.stretch_scale != 2.0 {
            return Err(Error::Config(
                "[sampler] stretch_scale and moves are both set; put the scale in the move: moves = [{ kind = \"stretch\", a = …}]"
                    .into(),
            ));
        }
        let values = list
            .iter()
            .map(|v| serde_json::to_value(v).map_err(|e| Error::Config(format!("[sampler] moves: {e}"))))
            .collect::<Result<Vec<_>>>()?;
        Moves::from_values(values).map(Some).map_err(|e| Error::Config(format!("[sampler] {e}")))
    }

    /// The semantic content that must match for a resume: everything but
    /// `[output]` and `[sampler] n_steps`, as a TOML table.
    pub fn resume_key(&self) -> toml::Table {
        let mut t: toml::Table = self.text.parse().unwrap_or_default();
        t.remove("output");
        if let Some(toml::Value::Table(s)) = t.get_mut("sampler") {
            s.remove("n_steps");
        }
        t
    }

    /// Keys (dotted) whose values differ between this run file and `other` for a resume.
    pub fn resume_differences(&self, other: &RunConfig) -> Vec<String> {
        let mut out = Vec::new();
        diff_tables("", &self.resume_key(), &other.resume_key(), &mut out);
        out
    }
}

fn diff_tables(prefix: &str, a: &toml::Table, b: &toml::Table, out: &mut Vec<String>) {
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    for k in keys {
        let p = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
        match (a.get(k), b.get(k)) {
            (Some(toml::Value::Table(x)), Some(toml::Value::Table(y))) => diff_tables(&p, x, y, out),
            (Some(x), Some(y)) if x == y => {}
            (Some(toml::Value::Integer(i)), Some(toml::Value::Float(f)))
            | (Some(toml::Value::Float(f)), Some(toml::Value::Integer(i)))
                if *i as f64 == *f => {}
            _ => out.push(p),
        }
    }
}

/// FNV-1a digest of a target's data (times, values, σ), so a resume notices changed data files.
pub(crate) fn target_digest(t: &Target) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            h ^= *b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    for (name, o) in t.variables() {
        eat(name.as_bytes());
        for v in o.times.iter().chain(&o.values).chain(&o.sigmas) {
            eat(&v.to_le_bytes());
        }
    }
    format!("{h:016x}")
}

/// How the walkers start (resolved from [`InitConfig`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Init {
    /// Prior draws, each walker from its own stream.
    Prior,
    /// Gaussian ball in sampler space around a physical centre.
    Ball { center: Vec<f64>, radius: f64 },
    /// A ball around the best fit (from `file`, or optimised first); `climcal run`
    /// turns it into [`Init::Ball`] before sampling.
    Best { file: Option<PathBuf>, radius: f64 },
}

/// Everything built from a run file: the density the sampler sees and its metadata.
#[derive(Clone)]
pub struct Problem {
    /// The log-density in sampler space.
    pub density: Arc<dyn LogDensity>,
    /// The priors, when `[parameters]` are given.
    pub params: Option<ParameterSet>,
    /// The calibration posterior, for runner models.
    pub posterior: Option<Posterior>,
    /// Parameter names.
    pub names: Vec<String>,
    /// Parameter units (empty strings when not given).
    pub units: Vec<String>,
    /// Priors as given (None for density models without `[parameters]`).
    pub priors: Vec<Option<PriorSpec>>,
    /// Transforms.
    pub transforms: Vec<Transform>,
    /// `[model] name`.
    pub model_name: String,
    /// One label per blob value, `variable@time`.
    pub blob_names: Vec<String>,
    /// Walkers to use.
    pub n_walkers: usize,
    /// How walkers start.
    pub init: Init,
    /// A JSON description of what a resumed run must match (names, priors, model, data).
    pub fingerprint: String,
}

impl Problem {
    /// Place and evaluate the walkers of `sampler` as `[sampler] init` says; every
    /// draw comes from the walker's own stream.
    pub fn initial_state(&self, sampler: &EnsembleSampler<Arc<dyn LogDensity>>) -> Result<SamplerState> {
        let (nw, dim) = (sampler.n_walkers(), self.density.dim());
        let mut rngs = walker_rngs(sampler.seed(), nw);
        let mut pos = vec![0.0; nw * dim];
        match &self.init {
            Init::Prior => {
                let params = self.params.as_ref().ok_or_else(|| Error::Config("init = \"prior\" needs [parameters]".into()))?;
                let mut x = vec![0.0; dim];
                for (k, rng) in rngs.iter_mut().enumerate() {
                    draw_prior(params, rng, &mut x);
                    params.to_sampler(&x, &mut pos[k * dim..(k + 1) * dim]);
                }
            }
            Init::Ball { center, radius } => {
                let mut c = vec![0.0; dim];
                self.density.to_sampler(center, &mut c);
                for (k, rng) in rngs.iter_mut().enumerate() {
                    for i in 0..dim {
                        let g: f64 = rand_distr::Distribution::sample(&rand_distr::StandardNormal, rng);
                        pos[k * dim + i] = c[i] + radius * g;
                    }
                }
            }
            Init::Best { .. } => {
                return Err(Error::Config(
                    "init = \"best\" needs the best fit first: `climcal run` finds it; from the library, run \
                     optimizer::PointEstimator and start with InitMethod::Ball { center: best.best_physical(), .. }"
                        .into(),
                ))
            }
        }
        sampler.state_from_positions(pos, rngs)
    }
}

fn draw_prior(params: &ParameterSet, rng: &mut dyn RngCore, out: &mut [f64]) {
    for (i, d) in params.defs().enumerate() {
        out[i] = d.prior.sample(1, rng)[0];
    }
}

/// A density model with priors from `[parameters]`: `ln p(u) = ln prior(u) + ln f(x(u))`.
#[derive(Clone)]
pub struct PriorTimesDensity {
    params: ParameterSet,
    inner: Arc<dyn LogDensity>,
}

impl LogDensity for PriorTimesDensity {
    fn dim(&self) -> usize {
        self.params.len()
    }
    fn ln_prob(&self, u: &[f64]) -> f64 {
        let lp = self.params.ln_prior_sampler(u);
        if lp == f64::NEG_INFINITY {
            return lp;
        }
        if !self.params.has_transforms() {
            return lp + self.inner.ln_prob(u);
        }
        let mut x = vec![0.0; u.len()];
        self.params.to_physical(u, &mut x);
        lp + self.inner.ln_prob(&x)
    }
    fn to_physical(&self, u: &[f64], out: &mut [f64]) {
        self.params.to_physical(u, out)
    }
    fn to_sampler(&self, x: &[f64], out: &mut [f64]) {
        self.params.to_sampler(x, out)
    }
    fn param_names(&self) -> Vec<String> {
        self.params.names()
    }
}

#[cfg(test)]
mod tests;

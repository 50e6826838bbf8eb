//! The `[ensemble]` section of a run file, as plain data (parsed by
//! [`crate::config`], checked and resolved by [`super::plan`]).
//!
//! ```toml
//! [ensemble]
//! members = 1_000_000          # default for --members
//! sampling = "sobol"           # random (default) | lhs | sobol
//! seed = 2024                  # default: [sampler] seed, else drawn and recorded
//! batch = 8192                 # members per batch (and per commit), default 8192
//!
//! # Scalars stored per member: a model output at a year, or a period mean
//! # (optionally relative to another period's mean).
//! [ensemble.outputs]
//! T2024 = { variable = "Surface Temperature", at = 2024 }
//! gsat_2004_2023 = { variable = "Surface Temperature", mean = [2004, 2023], relative_to = [1850, 1900] }
//!
//! # Hard filters, applied in order: a member must pass all of them.
//! [[ensemble.filters]]
//! rmse = "Surface Temperature"  # RMSE of the model against that target variable
//! below = 0.19
//! [[ensemble.filters]]
//! quantity = "ecs"             # any parameter, output, derived quantity, rmse:VAR or loglike:VAR
//! above = 0.5
//! below = 10.0
//!
//! # Assessed distributions to match (histogram weighting).
//! [ensemble.targets]
//! ecs = { dist = "quantiles", q05 = 2.0, q50 = 3.0, q95 = 5.0 }   # fitted skew-normal
//! tcr = { dist = "normal", mean = 1.8, ci90 = 0.6 }               # 5–95 % = mean ± ci90
//! x = { dist = "skew_normal", shape = 2.0, loc = 1.0, scale = 0.5, bins = 50 }
//!
//! [ensemble.weighting]
//! method = "histogram"         # histogram (default when targets are given) | likelihood | none
//! iterations = 30              # histogram matching passes (default 30)
//! # variables = ["Surface Temperature"]  # likelihood: which target variables (default all)
//!
//! [ensemble.draw]
//! members = 841                # size of the constrained ensemble
//! replace = false              # default false
//! seed = 10099                 # default: the ensemble seed
//! min_ess = 841                # fail (exit 1) when the effective sample size is below
//! ```

use indexmap::IndexMap;
use serde::Deserialize;

use super::sampling::Sampling;

/// `[ensemble]`.
#[derive(Debug, Clone, Deserialize, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EnsembleSpec {
    /// Members (overridden by `--members`).
    pub members: Option<u64>,
    /// Design (overridden by `--sampling`; default random).
    pub sampling: Option<Sampling>,
    /// Seed (default: `[sampler] seed`, else drawn and recorded).
    pub seed: Option<u64>,
    /// Members per batch and per commit (default 8192).
    pub batch: Option<usize>,
    /// Scalars stored per member, by name.
    #[serde(default)]
    pub outputs: IndexMap<String, OutputSpec>,
    /// Hard filters.
    #[serde(default)]
    pub filters: Vec<FilterSpec>,
    /// Target distributions by quantity name.
    #[serde(default)]
    pub targets: IndexMap<String, TargetSpec>,
    /// How members are weighted.
    #[serde(default)]
    pub weighting: WeightingSpec,
    /// The constrained draw.
    pub draw: Option<DrawSpec>,
}

/// One `[ensemble.outputs] NAME = { … }`: a model output at one time (`at`) or
/// its mean over `[start, end]` (`mean`), minus its mean over `relative_to`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    /// Model output name.
    pub variable: String,
    /// A time on the model's axis.
    pub at: Option<f64>,
    /// An inclusive period to average over.
    pub mean: Option<[f64; 2]>,
    /// An inclusive period whose mean is subtracted.
    pub relative_to: Option<[f64; 2]>,
    /// Unit, for tables (default empty).
    #[serde(default)]
    pub unit: String,
}

/// One `[[ensemble.filters]]`: `rmse = VAR` or `quantity = NAME`, with `below`
/// and/or `above` (strict inequalities: a member passes when `above < value < below`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FilterSpec {
    pub rmse: Option<String>,
    pub quantity: Option<String>,
    pub below: Option<f64>,
    pub above: Option<f64>,
}

/// A target distribution, `{ dist = "…", … }`, with optional histogram `bins`
/// (default 100) and `range` (default: its 0.01 %–99.99 % quantiles):
///
/// - `normal`: `mean` with `std`, or with `ci90` = the 5–95 % half-width (std = ci90 / 1.645);
/// - `skew_normal`: Azzalini's skew-normal with `shape` α, `loc` and `scale`;
/// - `quantiles`: the skew-normal whose 5, 50 and 95 % quantiles are `q05`, `q50`,
///   `q95` (as fair-calibrate fits its assessed ranges).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TargetSpec {
    pub dist: String,
    pub mean: Option<f64>,
    pub std: Option<f64>,
    pub ci90: Option<f64>,
    pub shape: Option<f64>,
    pub loc: Option<f64>,
    pub scale: Option<f64>,
    pub q05: Option<f64>,
    pub q50: Option<f64>,
    pub q95: Option<f64>,
    pub bins: Option<usize>,
    pub range: Option<[f64; 2]>,
}

/// `[ensemble.weighting]`.
#[derive(Debug, Clone, Deserialize, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WeightingSpec {
    /// `histogram`, `likelihood` or `none` (default: histogram when targets are
    /// given, else none).
    pub method: Option<String>,
    /// Histogram-matching passes (default 30, as fair-calibrate).
    pub iterations: Option<usize>,
    /// Likelihood weighting: the target variables whose log-likelihoods count (default all).
    pub variables: Option<Vec<String>>,
}

/// `[ensemble.draw]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DrawSpec {
    pub members: usize,
    #[serde(default)]
    pub replace: bool,
    pub seed: Option<u64>,
    pub min_ess: Option<f64>,
}

//! The model registry: maps a run file's `[model] name` and `options` table to a
//! model. Adding a model is one `match` arm in [`build_model`] and one entry in
//! [`MODEL_NAMES`].
//!
//! A model is either a complete log-density ([`BuiltModel::Density`], e.g. the toy
//! `gaussian`, usable without a `[target]`) or a [`ModelRunner`]
//! ([`BuiltModel::Runner`]) that the config ties to priors, a target and a
//! likelihood in a [`crate::posterior::Posterior`].

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::density::LogDensity;
use crate::error::{Error, Result};
use crate::models::toy::{Gaussian, Rosenbrock};
use crate::models::work::{self, Work, Working};
use crate::runner::{ModelOutput, ModelRunner};

/// Names accepted in `[model] name`.
pub const MODEL_NAMES: &[&str] = &["gaussian", "rosenbrock", "linear", "two_layer", "command", "python", "rscm"];

/// What a model needs to know about the run file it comes from.
#[derive(Debug, Clone, Copy)]
pub struct ModelContext<'a> {
    /// Directory of the run file: relative paths in `options` are relative to it.
    pub base_dir: &'a Path,
    /// Names of the parameters in `[parameters]`, in order (may be empty for
    /// density models, which then name theirs `p0, p1, …`).
    pub param_names: &'a [String],
}

impl ModelContext<'_> {
    /// Resolve a path from the run file against [`ModelContext::base_dir`].
    pub fn resolve(&self, p: &Path) -> std::path::PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base_dir.join(p)
        }
    }
}

/// A model built from a run file.
#[derive(Clone)]
pub enum BuiltModel {
    /// A log-density over physical values (a prior from `[parameters]`, if any, is added).
    Density(Arc<dyn LogDensity>),
    /// A model to calibrate against a `[target]`.
    Runner(Arc<dyn ModelRunner>),
}

/// Build model `name` from its `options` table.
///
/// Errors: an unknown name (listing the known ones), or options the model does not
/// accept (naming the option).
pub fn build_model(name: &str, options: &toml::Table, ctx: &ModelContext<'_>) -> Result<BuiltModel> {
    match name {
        "gaussian" => gaussian(options, ctx),
        "rosenbrock" => rosenbrock(options, ctx),
        "linear" => linear(options),
        "two_layer" => {
            Ok(BuiltModel::Runner(Arc::new(crate::models::two_layer::TwoLayerModel::from_options(options, ctx.base_dir)?)))
        }
        "command" => command(options, ctx),
        "python" => crate::models::python::from_options(options, ctx),
        #[cfg(feature = "rscm")]
        "rscm" => crate::models::rscm::from_options(options, ctx),
        #[cfg(not(feature = "rscm"))]
        "rscm" => Err(Error::Config(
            "model 'rscm': this build of climcal has no RSCM support; rebuild with `cargo build --release --features rscm`"
                .into(),
        )),
        _ => Err(Error::Config(format!("unknown model '{name}' in [model] name; known models are {}", MODEL_NAMES.join(", ")))),
    }
}

/// Deserialize a model's `options` table into its own struct (which should use
/// `#[serde(deny_unknown_fields)]`); errors name the model and the option.
pub fn parse_options<T: DeserializeOwned>(model: &str, options: &toml::Table) -> Result<T> {
    toml::Value::Table(options.clone())
        .try_into::<T>()
        .map_err(|e| Error::Config(format!("[model.options] of model '{model}': {}", e.message())))
}

/// A number or one number per dimension.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ScalarOrVec {
    Scalar(f64),
    Vec(Vec<f64>),
}

impl ScalarOrVec {
    fn expand(&self, what: &str, dim: usize) -> Result<Vec<f64>> {
        match self {
            ScalarOrVec::Scalar(v) => Ok(vec![*v; dim]),
            ScalarOrVec::Vec(v) if v.len() == dim => Ok(v.clone()),
            ScalarOrVec::Vec(v) => Err(Error::LengthMismatch { what: what.into(), expected: dim, found: v.len() }),
        }
    }
}

fn density_dim(model: &str, dim: Option<usize>, default: usize, ctx: &ModelContext<'_>) -> Result<usize> {
    let np = ctx.param_names.len();
    let d = match (dim, np) {
        (Some(d), 0) => d,
        (Some(d), n) if d == n => d,
        (Some(d), n) => {
            return Err(Error::Config(format!(
                "model '{model}': options.dim = {d} but [parameters] defines {n} parameters; drop dim or make them agree"
            )))
        }
        (None, 0) => default,
        (None, n) => n,
    };
    if d == 0 {
        return Err(Error::Config(format!("model '{model}': dim must be >= 1")));
    }
    if d > crate::limits::MAX_DIM {
        return Err(Error::Config(format!("model '{model}': dim = {d} is too large (at most {})", crate::limits::MAX_DIM)));
    }
    Ok(d)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GaussianOptions {
    dim: Option<usize>,
    #[serde(default = "zero")]
    mean: ScalarOrVec,
    #[serde(default = "one")]
    std: ScalarOrVec,
    #[serde(default)]
    cost_us: f64,
    #[serde(default)]
    sleep_us: f64,
    #[serde(default)]
    work_us: f64,
    #[serde(default = "one_f")]
    work_spread: f64,
}

fn one_f() -> f64 {
    1.0
}
fn zero() -> ScalarOrVec {
    ScalarOrVec::Scalar(0.0)
}
fn one() -> ScalarOrVec {
    ScalarOrVec::Scalar(1.0)
}

/// `gaussian`: independent normal with options `dim` (default: the number of
/// `[parameters]`, else 2), `mean` (default `0.0`), `std` (default `1.0`), each a
/// number or one per dimension. To mimic a costly model in tests and benchmarks
/// (default `0` for each): `work_us` does that many microseconds of fixed CPU work
/// per evaluation (a loop calibrated once per process: what a real model costs;
/// use it for scaling), `work_spread` (default `1`) makes that work grow with the
/// first parameter from `work_us` to `work_spread × work_us` across the density
/// ([`crate::models::work`]); `cost_us` busy-waits on the wall clock and `sleep_us`
/// sleeps, which model waiting on another program or on I/O (they keep their
/// length when the core is taken away, so they flatter oversubscribed layouts).
fn gaussian(options: &toml::Table, ctx: &ModelContext<'_>) -> Result<BuiltModel> {
    let o: GaussianOptions = parse_options("gaussian", options)?;
    let dim = density_dim("gaussian", o.dim, 2, ctx)?;
    let mean = o.mean.expand("gaussian options.mean", dim)?;
    let std = o.std.expand("gaussian options.std", dim)?;
    if let Some(s) = std.iter().find(|s| !(**s > 0.0 && s.is_finite())) {
        return Err(Error::Config(format!("model 'gaussian': options.std must be finite and > 0, got {s}")));
    }
    work::check_us("gaussian", "cost_us", o.cost_us)?;
    work::check_us("gaussian", "sleep_us", o.sleep_us)?;
    let work_us = work::check_us("gaussian", "work_us", o.work_us)?;
    let spread = work::check_spread("gaussian", "work_spread", o.work_spread)?;
    let work = Work::micros(work_us).with_spread(spread, mean[0], std[0]);
    let g = Gaussian { mean, inv_var: std.iter().map(|s| 1.0 / (s * s)).collect() };
    Ok(BuiltModel::Density(Arc::new(Working::new(Costly::new(g, o.cost_us, o.sleep_us), work))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RosenbrockOptions {
    dim: Option<usize>,
    #[serde(default = "twenty")]
    scale: f64,
}

fn twenty() -> f64 {
    20.0
}

/// `rosenbrock`: options `dim` (default: the number of `[parameters]`, else 2) and
/// `scale` (default `20.0`, as in emcee's examples).
fn rosenbrock(options: &toml::Table, ctx: &ModelContext<'_>) -> Result<BuiltModel> {
    let o: RosenbrockOptions = parse_options("rosenbrock", options)?;
    let dim = density_dim("rosenbrock", o.dim, 2, ctx)?;
    if dim < 2 {
        return Err(Error::Config("model 'rosenbrock': dim must be >= 2".into()));
    }
    if !(o.scale > 0.0 && o.scale.is_finite()) {
        return Err(Error::Config(format!("model 'rosenbrock': scale must be > 0, got {}", o.scale)));
    }
    Ok(BuiltModel::Density(Arc::new(Rosenbrock { dim, scale: o.scale })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LinearOptions {
    #[serde(default)]
    t_start: f64,
    #[serde(default = "t_end_default")]
    t_end: f64,
    #[serde(default)]
    t0: f64,
    #[serde(default)]
    sleep_us: f64,
    #[serde(default)]
    work_us: f64,
}

fn t_end_default() -> f64 {
    20.0
}

/// `linear`: a toy [`ModelRunner`] with parameters `intercept` and `slope` and one
/// output `y(t) = intercept + slope·(t − t0)` on integer times `t_start..=t_end`.
/// Options: `t_start` (default `0`), `t_end` (default `20`), `t0` (default `0`),
/// `sleep_us` (default `0`, sleep per run), `work_us` (default `0`, fixed CPU work
/// per run, see [`crate::models::work`]).
fn linear(options: &toml::Table) -> Result<BuiltModel> {
    let o: LinearOptions = parse_options("linear", options)?;
    if !(o.t_end >= o.t_start) || !o.t_start.is_finite() || !o.t_end.is_finite() {
        return Err(Error::Config(format!("model 'linear': t_end ({}) must be >= t_start ({})", o.t_end, o.t_start)));
    }
    work::check_us("linear", "sleep_us", o.sleep_us)?;
    let n = crate::limits::time_points("model 'linear': options t_start..t_end", o.t_start, o.t_end)?;
    let times: Vec<f64> = (0..n).map(|i| o.t_start + i as f64).collect();
    Ok(BuiltModel::Runner(Arc::new(LinearModel {
        times: Arc::new(times),
        names: Arc::new(vec!["y".to_string()]),
        t0: o.t0,
        sleep: micros(o.sleep_us),
        work: Work::micros(work::check_us("linear", "work_us", o.work_us)?),
    })))
}

/// `us` µs as a Duration (0 for negative or NaN, saturating; options are checked
/// with [`work::check_us`] first).
fn micros(us: f64) -> Duration {
    Duration::try_from_secs_f64(us * 1e-6).unwrap_or(if us > 0.0 { Duration::MAX } else { Duration::ZERO })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CommandOptions {
    program: String,
    #[serde(default)]
    args: Vec<String>,
    timeout_seconds: Option<f64>,
}

/// `command`: an external program run once per evaluation
/// ([`crate::runner::CommandRunner`]). Options: `program` (a path with a `/` is
/// relative to the run file; a bare name is looked up on `PATH`), `args` (given
/// before the `name=value` parameters), `timeout_seconds` (a run that takes longer
/// is killed and counts as a failed evaluation; no limit by default).
fn command(options: &toml::Table, ctx: &ModelContext<'_>) -> Result<BuiltModel> {
    let o: CommandOptions = parse_options("command", options)?;
    if ctx.param_names.is_empty() {
        return Err(Error::Config("model 'command' needs [parameters]: they are passed to the program as name=value".into()));
    }
    let program = if o.program.contains('/') {
        ctx.resolve(Path::new(&o.program)).to_string_lossy().into_owned()
    } else {
        o.program.clone()
    };
    let mut runner = crate::runner::CommandRunner::new(&program, &o.args, ctx.param_names);
    if let Some(t) = o.timeout_seconds {
        if !(t > 0.0 && t.is_finite()) {
            return Err(Error::Config(format!("model 'command': timeout_seconds must be > 0, got {t}")));
        }
        runner = runner.with_timeout(Duration::from_secs_f64(t));
    }
    Ok(BuiltModel::Runner(Arc::new(runner)))
}

/// The `linear` toy model (see [`build_model`]).
#[derive(Debug, Clone)]
pub struct LinearModel {
    times: Arc<Vec<f64>>,
    names: Arc<Vec<String>>,
    t0: f64,
    sleep: Duration,
    work: Work,
}

impl ModelRunner for LinearModel {
    fn param_names(&self) -> Vec<String> {
        vec!["intercept".into(), "slope".into()]
    }
    fn output_names(&self) -> Vec<String> {
        (*self.names).clone()
    }
    fn run(&self, p: &[f64]) -> Result<ModelOutput> {
        self.work.spend(p);
        if !self.sleep.is_zero() {
            std::thread::sleep(self.sleep);
        }
        let y = self.times.iter().map(|t| p[0] + p[1] * (t - self.t0)).collect();
        ModelOutput::from_shared(self.times.clone(), self.names.clone(), vec![y])
    }
}

/// A density that spends extra time per evaluation: `cost_us` busy-waiting and
/// `sleep_us` sleeping (both default to 0 in the registry's options).
#[derive(Debug, Clone)]
pub struct Costly<D> {
    inner: D,
    busy: Duration,
    sleep: Duration,
}

impl<D> Costly<D> {
    /// Wrap `inner`, busy-waiting `cost_us` and sleeping `sleep_us` µs per evaluation.
    pub fn new(inner: D, cost_us: f64, sleep_us: f64) -> Self {
        Self { inner, busy: micros(cost_us), sleep: micros(sleep_us) }
    }
}

impl<D: LogDensity> LogDensity for Costly<D> {
    fn dim(&self) -> usize {
        self.inner.dim()
    }
    fn ln_prob(&self, x: &[f64]) -> f64 {
        if !self.busy.is_zero() {
            let t = Instant::now();
            while t.elapsed() < self.busy {
                std::hint::spin_loop();
            }
        }
        if !self.sleep.is_zero() {
            std::thread::sleep(self.sleep);
        }
        self.inner.ln_prob(x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(s: &str) -> toml::Table {
        s.parse().unwrap()
    }

    #[test]
    fn unknown_model_lists_known_ones() {
        let ctx = ModelContext { base_dir: Path::new("."), param_names: &[] };
        let e = build_model("nope", &toml::Table::new(), &ctx).err().unwrap().to_string();
        assert!(e.contains("unknown model 'nope'") && e.contains("gaussian, rosenbrock, linear"), "{e}");
    }

    #[test]
    fn unknown_option_is_named() {
        let ctx = ModelContext { base_dir: Path::new("."), param_names: &[] };
        let e = build_model("gaussian", &table("dimm = 3"), &ctx).err().unwrap().to_string();
        assert!(e.contains("dimm"), "{e}");
    }

    #[test]
    fn gaussian_uses_mean_and_std() {
        let ctx = ModelContext { base_dir: Path::new("."), param_names: &[] };
        let BuiltModel::Density(d) = build_model("gaussian", &table("dim = 2\nmean = [1.0, 2.0]\nstd = 2.0"), &ctx).unwrap()
        else {
            panic!("density expected")
        };
        assert_eq!(d.dim(), 2);
        assert_eq!(d.ln_prob(&[1.0, 2.0]), 0.0);
        assert_eq!(d.ln_prob(&[3.0, 2.0]), -0.5);
    }

    #[test]
    fn command_options_are_checked() {
        let names = ["a".to_string()];
        let ctx = ModelContext { base_dir: Path::new("runs"), param_names: &names };
        assert!(matches!(build_model("command", &table("program = 'true'"), &ctx), Ok(BuiltModel::Runner(_))));
        let e = build_model("command", &table("program = 'true'\ntimeout_seconds = 0"), &ctx).err().unwrap().to_string();
        assert!(e.contains("timeout_seconds"), "{e}");
        let e = build_model("command", &table("program = 'true'\ntimeout = 3"), &ctx).err().unwrap().to_string();
        assert!(e.contains("timeout"), "{e}");
        let ctx0 = ModelContext { base_dir: Path::new("."), param_names: &[] };
        let e = build_model("command", &table("program = 'true'"), &ctx0).err().unwrap().to_string();
        assert!(e.contains("[parameters]"), "{e}");
    }

    #[test]
    fn work_options_are_checked_and_keep_the_value() {
        let ctx = ModelContext { base_dir: Path::new("."), param_names: &[] };
        for bad in
            ["work_us = -1.0", "work_us = nan", "work_us = inf", "work_us = 1e300", "work_spread = 0.5", "work_spread = inf"]
        {
            let e = build_model("gaussian", &table(bad), &ctx).err().unwrap();
            assert!(e.is_bad_input(), "{bad}");
            let key = bad.split(' ').next().unwrap();
            assert!(e.to_string().contains(key), "{bad}: {e}");
        }
        let e = build_model("linear", &table("work_us = -5.0"), &ctx).err().unwrap().to_string();
        assert!(e.contains("'linear'") && e.contains("work_us"), "{e}");
        let BuiltModel::Density(d) = build_model("gaussian", &table("dim = 2\nwork_us = 5\nwork_spread = 10"), &ctx).unwrap()
        else {
            panic!("density expected")
        };
        assert_eq!(d.ln_prob(&[1.0, 0.0]), -0.5);
    }

    #[test]
    fn linear_runs() {
        let BuiltModel::Runner(m) =
            build_model("linear", &table("t_end = 3"), &ModelContext { base_dir: Path::new("."), param_names: &[] }).unwrap()
        else {
            panic!("runner expected")
        };
        let out = m.run(&[1.0, 2.0]).unwrap();
        assert_eq!(out.get("y").unwrap(), &[1.0, 3.0, 5.0, 7.0]);
    }
}

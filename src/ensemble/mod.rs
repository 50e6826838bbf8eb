//! Prior ensembles at scale, as fair-calibrate calibrates FaIR: draw `N` members
//! from the priors ([`sampling`]), evaluate them in batches through any
//! [`Executor`] (threads, MPI ranks) and stream per-member results to a
//! [`MemberSink`] (the HDF5 ensemble file, [`crate::storage::ensemble`]); then
//! filter ([`constraints::Filter`]), weight ([`weights`]: histogram matching or
//! likelihood importance weights) and draw a constrained ensemble of `M` members.
//!
//! Member `i` depends only on the seed and `i`, evaluation is a pure function of
//! the member, and batches are committed in order, so the stored ensemble does not
//! depend on the number of threads or ranks and a run killed at any moment and
//! resumed gives the same data.

pub mod constraints;
pub mod model;
pub mod sampling;
pub mod spec;
pub mod weights;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crate::error::{Error, Result};
use crate::executor::{EvalStats, Executor};
use constraints::{BinnedTarget, Filter, TargetDistribution};
use model::EnsembleModel;
use sampling::MemberSampler;
use spec::EnsembleSpec;

/// Default members per batch (and per commit).
pub const DEFAULT_BATCH: usize = 8192;

/// Where evaluated batches go, in member order.
pub trait MemberSink {
    /// Members committed so far (the next batch starts here).
    fn committed(&self) -> u64;
    /// Store members `start..start + n`: parameters (`n × dim`), total
    /// log-likelihoods (`n`) and blob values (`n × n_blobs`), then commit.
    fn append(&mut self, start: u64, params: &[f64], ln_like: &[f64], blobs: &[f64], failures: u64) -> Result<()>;
}

/// Reads whole columns of a finished ensemble, one at a time.
pub trait ColumnSource {
    /// Members.
    fn n_members(&self) -> u64;
    /// Column by name: a parameter, `loglike:VAR`, `rmse:VAR`, an output, or `loglike` (the total).
    fn column(&self, name: &str) -> Result<Vec<f64>>;
}

/// Progress of a running ensemble.
#[derive(Debug, Clone, Copy)]
pub struct EnsembleProgress {
    /// Members committed (including those of earlier runs).
    pub done: u64,
    pub total: u64,
    /// Members per second in this run.
    pub rate: f64,
    /// Failed evaluations in this run.
    pub failures: u64,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnsembleOutcome {
    Completed,
    Interrupted,
}

/// Evaluate members `sink.committed()..n_members` in batches of `batch`, appending
/// each batch to `sink` as it finishes. Stops after the current batch when `stop`
/// is raised.
pub fn run_members(
    model: &EnsembleModel,
    sampler: &MemberSampler,
    executor: &dyn Executor,
    sink: &mut dyn MemberSink,
    batch: usize,
    stop: Option<&AtomicBool>,
    mut progress: impl FnMut(&EnsembleProgress),
) -> Result<(EnsembleOutcome, EvalStats)> {
    use crate::density::LogDensity;
    let n = sampler.n_members();
    let dim = sampler.dim();
    let nb = model.n_blobs();
    let batch = batch.max(1);
    let mut stats = EvalStats::default();
    let t0 = Instant::now();
    let first = sink.committed();
    let (mut points, mut lp, mut blobs) = (Vec::with_capacity(batch * dim), vec![0.0; batch], vec![0.0; batch * nb]);
    let mut start = first;
    while start < n {
        if stop.is_some_and(|s| s.load(Ordering::SeqCst)) {
            return Ok((EnsembleOutcome::Interrupted, stats));
        }
        let m = batch.min((n - start) as usize);
        points.clear();
        sampler.block(start, m, &mut points);
        let s = executor.evaluate(model, &points, &mut lp[..m], &mut blobs[..m * nb]);
        stats += s;
        sink.append(start, &points, &lp[..m], &blobs[..m * nb], s.failures)?;
        start += m as u64;
        let dt = t0.elapsed().as_secs_f64();
        progress(&EnsembleProgress {
            done: start,
            total: n,
            rate: if dt > 0.0 { (start - first) as f64 / dt } else { 0.0 },
            failures: stats.failures,
        });
    }
    Ok((EnsembleOutcome::Completed, stats))
}

/// The weighting method.
#[derive(Debug, Clone, PartialEq)]
pub enum Weighting {
    None,
    Histogram { iterations: usize },
    Likelihood { variables: Vec<String> },
}

/// The constraint stage, resolved against the stored columns.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub filters: Vec<Filter>,
    pub targets: Vec<BinnedTarget>,
    pub weighting: Weighting,
    /// `(members, replace, seed, min_ess)` of the constrained draw.
    pub draw: Option<(usize, bool, u64, Option<f64>)>,
}

impl Plan {
    /// Check `[ensemble]` filters, targets, weighting and draw against the columns
    /// an ensemble stores (`columns`) and its target variables.
    pub fn new(spec: &EnsembleSpec, columns: &[String], variables: &[String], seed: u64) -> Result<Self> {
        let known = |c: &str, what: &str| -> Result<()> {
            if columns.iter().any(|k| k == c) {
                Ok(())
            } else {
                Err(Error::Config(format!("{what}: '{c}' is not a stored quantity; the quantities are {columns:?}")))
            }
        };
        let mut filters = Vec::new();
        for (k, f) in spec.filters.iter().enumerate() {
            let what = format!("[[ensemble.filters]] #{}", k + 1);
            let column = match (&f.rmse, &f.quantity) {
                (Some(v), None) => {
                    if !variables.contains(v) {
                        return Err(Error::Config(format!(
                            "{what}: rmse = '{v}' is not a target variable; they are {variables:?}"
                        )));
                    }
                    format!("rmse:{v}")
                }
                (None, Some(q)) => {
                    known(q, &what)?;
                    q.clone()
                }
                _ => return Err(Error::Config(format!("{what}: give exactly one of `rmse = \"VAR\"` or `quantity = \"NAME\"`"))),
            };
            if f.below.is_none() && f.above.is_none() {
                return Err(Error::Config(format!("{what}: give `below`, `above` or both")));
            }
            let (above, below) = (f.above.unwrap_or(f64::NEG_INFINITY), f.below.unwrap_or(f64::INFINITY));
            if !(above < below) {
                return Err(Error::Config(format!("{what}: above = {above} must be less than below = {below}")));
            }
            filters.push(Filter { column, above, below });
        }
        let mut targets = Vec::new();
        for (name, t) in &spec.targets {
            known(name, "[ensemble.targets]")?;
            let dist = TargetDistribution::from_spec(name, t)?;
            targets.push(BinnedTarget::new(name, dist, t.bins.unwrap_or(100), t.range)?);
        }
        let w = &spec.weighting;
        let method = w.method.clone().unwrap_or_else(|| if targets.is_empty() { "none".into() } else { "histogram".into() });
        let weighting = match method.as_str() {
            "none" => Weighting::None,
            "histogram" => {
                if targets.is_empty() {
                    return Err(Error::Config(
                        "[ensemble.weighting] method = \"histogram\" needs [ensemble.targets] to match".into(),
                    ));
                }
                Weighting::Histogram { iterations: w.iterations.unwrap_or(30) }
            }
            "likelihood" => {
                let vars = w.variables.clone().unwrap_or_else(|| variables.to_vec());
                for v in &vars {
                    if !variables.contains(v) {
                        return Err(Error::Config(format!(
                            "[ensemble.weighting] variables: '{v}' is not a target variable; they are {variables:?}"
                        )));
                    }
                }
                Weighting::Likelihood { variables: vars }
            }
            other => {
                return Err(Error::Config(format!(
                    "[ensemble.weighting] method = '{other}' is not known; use histogram, likelihood or none"
                )))
            }
        };
        if let Weighting::Histogram { iterations: 0 } = weighting {
            return Err(Error::Config("[ensemble.weighting] iterations must be >= 1".into()));
        }
        let draw = match &spec.draw {
            Some(d) => {
                if d.members == 0 {
                    return Err(Error::Config("[ensemble.draw] members must be >= 1".into()));
                }
                Some((d.members, d.replace, d.seed.unwrap_or(seed), d.min_ess))
            }
            None => None,
        };
        Ok(Self { filters, targets, weighting, draw })
    }
}

/// What the constraint stage found.
#[derive(Debug, Clone, PartialEq)]
pub struct Constrained {
    /// Members that passed every filter (and evaluated without failure).
    pub passed: Vec<bool>,
    pub n_passed: u64,
    /// Weight of every member (0 for those that did not pass).
    pub weights: Vec<f64>,
    /// Kish's effective sample size of the weights.
    pub ess: f64,
    /// fair-calibrate's `⌊Σ min(w, 1)⌋` (histogram weighting only).
    pub ess_fair: Option<f64>,
    /// Goodness of fit per histogram pass and target.
    pub gofs: Vec<Vec<f64>>,
    /// Indices of the drawn members (increasing).
    pub drawn: Vec<u64>,
}

/// Apply `plan` to the ensemble in `src`.
pub fn constrain(plan: &Plan, src: &dyn ColumnSource) -> Result<Constrained> {
    let n = src.n_members() as usize;
    let total = src.column("loglike")?;
    let mut passed: Vec<bool> = total.iter().map(|l| l.is_finite()).collect();
    for f in &plan.filters {
        let col = src.column(&f.column)?;
        for (p, v) in passed.iter_mut().zip(&col) {
            *p &= f.passes(*v);
        }
    }
    let n_passed = passed.iter().filter(|p| **p).count() as u64;
    let (weights, gofs, ess_fair) = match &plan.weighting {
        Weighting::None => (passed.iter().map(|&p| p as u8 as f64).collect::<Vec<f64>>(), Vec::new(), None),
        Weighting::Likelihood { variables } => {
            let mut ll = vec![0.0; n];
            for v in variables {
                for (a, b) in ll.iter_mut().zip(src.column(&format!("loglike:{v}"))?) {
                    *a += b;
                }
            }
            (weights::likelihood_weights(&ll, &passed), Vec::new(), None)
        }
        Weighting::Histogram { iterations } => {
            let codes = plan
                .targets
                .iter()
                .map(|t| Ok(src.column(&t.column)?.iter().map(|&v| t.code(v)).collect::<Vec<u8>>()))
                .collect::<Result<Vec<_>>>()?;
            let (w, g) = weights::histogram_weights(&plan.targets, &codes, &passed, *iterations, weights::FAIR_REFERENCE_COUNT)?;
            let f = weights::fair_ess(&w);
            (w, g, Some(f))
        }
    };
    let ess = weights::kish_ess(&weights);
    let drawn = match plan.draw {
        Some((m, replace, seed, min_ess)) => {
            if let Some(min) = min_ess {
                let have = ess_fair.unwrap_or(ess);
                if have < min {
                    return Err(Error::InvalidSampler(format!(
                        "the effective sample size {have:.1} is below [ensemble.draw] min_ess = {min}: run more members, loosen the constraints or lower min_ess"
                    )));
                }
            }
            weights::draw(&weights, m, replace, seed)?
        }
        None => Vec::new(),
    };
    Ok(Constrained { passed, n_passed, weights, ess, ess_fair, gofs, drawn })
}

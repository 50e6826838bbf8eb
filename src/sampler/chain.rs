//! The chain: stored rows of walker positions (physical values) and log-probabilities.

use ndarray::{Array2, ArrayView2, ArrayView3, Axis};

use crate::diagnostics;
use crate::executor::EvalStats;

/// Stored samples of an ensemble run, in emcee's layout: `(rows, walkers, dim)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Chain {
    names: Vec<String>,
    n_walkers: usize,
    dim: usize,
    n_blobs: usize,
    thin: usize,
    samples: Vec<f64>,
    ln_probs: Vec<f64>,
    blobs: Vec<f64>,
    /// Steps taken in total (over all runs of this chain).
    n_steps: u64,
    accepted: Vec<u64>,
    failures: u64,
    stats: EvalStats,
    wall_seconds: f64,
    n_evals: u64,
}

/// Result of [`Chain::is_converged`].
#[derive(Debug, Clone, PartialEq)]
pub struct ConvergenceReport {
    pub converged: bool,
    pub r_hat: Vec<f64>,
    pub r_hat_threshold: f64,
    /// Autocorrelation times when the τ rule was asked for.
    pub tau: Option<Vec<f64>>,
    /// Human-readable reasons it has not converged.
    pub reasons: Vec<String>,
}

impl Chain {
    /// An empty chain.
    pub fn new(names: Vec<String>, n_walkers: usize, dim: usize, n_blobs: usize, thin: usize) -> Self {
        Self {
            names,
            n_walkers,
            dim,
            n_blobs,
            thin,
            samples: Vec::new(),
            ln_probs: Vec::new(),
            blobs: Vec::new(),
            n_steps: 0,
            accepted: vec![0; n_walkers],
            failures: 0,
            stats: EvalStats::default(),
            wall_seconds: 0.0,
            n_evals: 0,
        }
    }

    /// Build from stored arrays (readers use this).
    #[allow(clippy::too_many_arguments)]
    pub fn from_parts(
        names: Vec<String>,
        n_walkers: usize,
        dim: usize,
        samples: Vec<f64>,
        ln_probs: Vec<f64>,
        blobs: Vec<f64>,
        n_blobs: usize,
        n_steps: u64,
        accepted: Vec<u64>,
        thin: usize,
        failures: u64,
    ) -> crate::Result<Self> {
        let rows = ln_probs.len() / n_walkers.max(1);
        let check = |what: &str, expected: usize, found: usize| {
            if expected != found {
                Err(crate::Error::LengthMismatch { what: what.into(), expected, found })
            } else {
                Ok(())
            }
        };
        check("chain log_prob", rows * n_walkers, ln_probs.len())?;
        check("chain samples", rows * n_walkers * dim, samples.len())?;
        check("chain blobs", rows * n_walkers * n_blobs, blobs.len())?;
        check("accepted", n_walkers, accepted.len())?;
        check("parameter names", dim, names.len())?;
        Ok(Self {
            names,
            n_walkers,
            dim,
            n_blobs,
            thin,
            samples,
            ln_probs,
            blobs,
            n_steps,
            accepted,
            failures,
            stats: EvalStats::default(),
            wall_seconds: 0.0,
            n_evals: 0,
        })
    }

    pub(crate) fn reserve(&mut self, rows: usize) {
        self.samples.reserve(rows * self.n_walkers * self.dim);
        self.ln_probs.reserve(rows * self.n_walkers);
        self.blobs.reserve(rows * self.n_walkers * self.n_blobs);
    }

    /// Append one row (all walkers).
    pub fn push_row(&mut self, positions: &[f64], ln_probs: &[f64], blobs: &[f64]) {
        self.push_row_with(|samples| samples.extend_from_slice(positions), ln_probs, blobs);
    }

    /// As [`Chain::push_row`], with the positions appended by `extend` (one copy
    /// fewer than mapping them into a buffer first).
    pub(crate) fn push_row_with(&mut self, extend: impl FnOnce(&mut Vec<f64>), ln_probs: &[f64], blobs: &[f64]) {
        let start = self.samples.len();
        extend(&mut self.samples);
        assert_eq!(self.samples.len(), start + self.n_walkers * self.dim, "a row has n_walkers × dim values");
        self.ln_probs.extend_from_slice(ln_probs);
        if self.n_blobs > 0 {
            self.blobs.extend_from_slice(blobs);
        }
    }

    /// Append the rows of `other` (a later run of the same chain) and take its totals.
    pub fn extend(&mut self, other: &Chain) {
        assert_eq!((self.n_walkers, self.dim), (other.n_walkers, other.dim));
        self.samples.extend_from_slice(&other.samples);
        self.ln_probs.extend_from_slice(&other.ln_probs);
        self.blobs.extend_from_slice(&other.blobs);
        self.n_steps = other.n_steps;
        self.accepted = other.accepted.clone();
        self.failures = other.failures;
    }

    pub(crate) fn set_totals(&mut self, n_steps: u64, accepted: Vec<u64>, failures: u64) {
        self.n_steps = n_steps;
        self.accepted = accepted;
        self.failures = failures;
    }

    /// As `set_totals`, copying `accepted` in place (no allocation per step).
    pub(crate) fn set_totals_from(&mut self, n_steps: u64, accepted: &[u64], failures: u64) {
        self.n_steps = n_steps;
        self.accepted.clear();
        self.accepted.extend_from_slice(accepted);
        self.failures = failures;
    }

    pub(crate) fn set_timing(&mut self, stats: EvalStats, wall: f64, n_evals: u64) {
        self.stats = stats;
        self.wall_seconds = wall;
        self.n_evals = n_evals;
    }

    /// Parameter names.
    pub fn names(&self) -> &[String] {
        &self.names
    }
    /// Number of walkers.
    pub fn n_walkers(&self) -> usize {
        self.n_walkers
    }
    /// Number of parameters.
    pub fn dim(&self) -> usize {
        self.dim
    }
    /// Stored rows.
    pub fn n_rows(&self) -> usize {
        self.ln_probs.len() / self.n_walkers.max(1)
    }
    /// Steps taken (stored rows × thin, plus any not stored).
    pub fn n_steps(&self) -> u64 {
        self.n_steps
    }
    /// Thinning of stored rows.
    pub fn thin(&self) -> usize {
        self.thin
    }
    /// Blob values per walker per row.
    pub fn n_blobs(&self) -> usize {
        self.n_blobs
    }
    /// Accepted proposals per walker.
    pub fn accepted(&self) -> &[u64] {
        &self.accepted
    }
    /// Failed evaluations (model errors, NaN, panics).
    pub fn failures(&self) -> u64 {
        self.failures
    }
    /// Evaluation/communication time of the run that produced this chain.
    pub fn eval_stats(&self) -> EvalStats {
        self.stats
    }
    /// Wall time (s) and evaluations of the run that produced this chain.
    pub fn run_timing(&self) -> (f64, u64) {
        (self.wall_seconds, self.n_evals)
    }

    /// Samples as `(rows, walkers, dim)`.
    pub fn samples(&self) -> ArrayView3<'_, f64> {
        ArrayView3::from_shape((self.n_rows(), self.n_walkers, self.dim), &self.samples).expect("consistent shape")
    }
    /// Flat sample buffer (rows × walkers × dim).
    pub fn samples_raw(&self) -> &[f64] {
        &self.samples
    }
    /// Log-probabilities as `(rows, walkers)`.
    pub fn ln_probs(&self) -> ArrayView2<'_, f64> {
        ArrayView2::from_shape((self.n_rows(), self.n_walkers), &self.ln_probs).expect("consistent shape")
    }
    /// Blobs as `(rows, walkers, n_blobs)`.
    pub fn blobs(&self) -> ArrayView3<'_, f64> {
        ArrayView3::from_shape((self.n_rows(), self.n_walkers, self.n_blobs), &self.blobs).expect("consistent shape")
    }
    /// Flat blob buffer.
    pub fn blobs_raw(&self) -> &[f64] {
        &self.blobs
    }
    /// Flat log-prob buffer.
    pub fn ln_probs_raw(&self) -> &[f64] {
        &self.ln_probs
    }

    /// Samples after dropping the first `discard` stored rows, flattened to
    /// `(rows·walkers, dim)` (row-major over rows then walkers, as emcee's `flat=True`).
    pub fn flat_samples(&self, discard: usize) -> Array2<f64> {
        let d = discard.min(self.n_rows());
        let s = self.samples().slice_move(ndarray::s![d.., .., ..]).to_owned();
        let n = s.len_of(Axis(0)) * self.n_walkers;
        s.into_shape_with_order((n, self.dim)).expect("contiguous")
    }

    /// Per-parameter draws arranged as `(walkers, rows)` after `discard` rows.
    pub fn param_by_walker(&self, param: usize, discard: usize) -> Array2<f64> {
        let d = discard.min(self.n_rows());
        self.samples().slice(ndarray::s![d.., .., param]).t().to_owned()
    }

    /// Accepted fraction per walker.
    pub fn acceptance_fraction(&self) -> Vec<f64> {
        let n = self.n_steps.max(1) as f64;
        self.accepted.iter().map(|&a| a as f64 / n).collect()
    }

    /// Mean of [`Chain::acceptance_fraction`].
    pub fn mean_acceptance_rate(&self) -> f64 {
        let f = self.acceptance_fraction();
        f.iter().sum::<f64>() / f.len().max(1) as f64
    }

    /// Integrated autocorrelation time per parameter (emcee's `integrated_time`,
    /// c = 5, in *stored rows*; multiply by `thin` for steps). Errors when the chain
    /// is shorter than 50 τ, carrying the estimate.
    pub fn autocorr_time(&self, discard: usize) -> Result<Vec<f64>, diagnostics::AutocorrError> {
        let d = discard.min(self.n_rows());
        diagnostics::integrated_time(self.samples().slice(ndarray::s![d.., .., ..]), 5.0, 50.0)
    }

    /// As [`Chain::autocorr_time`] but returns the estimate even for short chains.
    pub fn autocorr_time_quiet(&self, discard: usize) -> Vec<f64> {
        match self.autocorr_time(discard) {
            Ok(t) => t,
            Err(e) => e.tau,
        }
    }

    /// Rank-normalised split R-hat per parameter (walkers as chains), as ArviZ `rhat`.
    pub fn r_hat(&self, discard: usize) -> Vec<f64> {
        (0..self.dim).map(|p| diagnostics::rhat(self.param_by_walker(p, discard).view())).collect()
    }

    /// Bulk effective sample size per parameter, as ArviZ `ess(method="bulk")`.
    pub fn ess(&self, discard: usize) -> Vec<f64> {
        (0..self.dim).map(|p| diagnostics::ess_bulk(self.param_by_walker(p, discard).view())).collect()
    }

    /// Converged when every R-hat < `r_hat_threshold` (DESIGN.md: 1.1) and, when
    /// `use_tau`, the chain is longer than 50 τ for every parameter (emcee's rule).
    pub fn is_converged(&self, discard: usize, r_hat_threshold: f64, use_tau: bool) -> ConvergenceReport {
        let r_hat = self.r_hat(discard);
        let mut reasons = Vec::new();
        for (n, r) in self.names.iter().zip(&r_hat) {
            if !(r < &r_hat_threshold) {
                reasons.push(format!("R-hat of {n} is {r:.3} (threshold {r_hat_threshold})"));
            }
        }
        let tau = use_tau.then(|| self.autocorr_time_quiet(discard));
        if let Some(t) = &tau {
            let n = self.n_rows().saturating_sub(discard) as f64;
            for (name, ti) in self.names.iter().zip(t) {
                if !(n > 50.0 * ti) {
                    reasons.push(format!("{name}: {n} rows is not > 50 τ = {:.0}", 50.0 * ti));
                }
            }
        }
        ConvergenceReport { converged: reasons.is_empty(), r_hat, r_hat_threshold, tau, reasons }
    }
}

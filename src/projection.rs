//! Projections: stored parameter draws (of a chain or a constrained ensemble) run
//! forward under scenario forcing.
//!
//! A [`Projector`] takes the calibrated model and, for each scenario, builds the
//! same model on the historical forcing continued by the scenario's
//! ([`scenario::join_forcing`]), through [`ModelRunner::with_forcing`]: the
//! parameters, their order and the forcing scales are the calibration's, so an
//! aerosol scale of 1.2 multiplies the scenario's aerosol ERF as it multiplied the
//! historical one. Because the historical forcing is kept as it is and the model is
//! integrated year by year from the same start, the projection's outputs for the
//! calibration's years are the calibration run's, bit for bit (tested).
//!
//! Evaluation goes through the ordinary [`Executor`]s (serial, rayon, MPI): the
//! [`Projector`] is a [`LogDensity`] whose point is `[scenario index, parameters…]`,
//! whose log-density is 0 (NaN when the model fails, which executors count) and
//! whose blob is the projected series, output after output. The result does not
//! depend on how the draws are split over threads or ranks.
//!
//! ```
//! use std::sync::Arc;
//! use climcal::models::forcing::Forcing;
//! use climcal::models::two_layer::{Feedback, TwoLayerModel};
//! use climcal::projection::{Projector, scenario::{Join, Scenario}};
//! use climcal::executor::SerialExecutor;
//! # fn main() -> climcal::Result<()> {
//! let years: Vec<f64> = (1750..=2024).map(f64::from).collect();
//! let n = years.len();
//! let hist = Forcing::from_components(years, vec![1.0; n], vec![-0.5; n], vec![0.0; n])?;
//! let model = TwoLayerModel::builder(hist).feedback(Feedback::Lambda).build()?;
//! let p = Projector::new(Arc::new(model), vec![Scenario::builtin("ssp245")?], Join::default())?;
//! // one draw: lambda, C, C_d, gamma, epsilon, aerosol_scale, nonaerosol_scale
//! let draws = [1.2, 8.0, 100.0, 0.6, 1.3, 1.0, 1.0];
//! let proj = p.run(0, &draws, &SerialExecutor);
//! assert_eq!(proj.years.last(), Some(&2100.0));
//! let w = proj.change("Surface Temperature", (2081.0, 2100.0), (1850.0, 1900.0))?;
//! assert!(w[0] > 1.0);
//! # Ok(()) }
//! ```

use std::sync::Arc;

use crate::density::LogDensity;
use crate::derived::{mean, period_indices};
use crate::diagnostics::quantile;
use crate::error::{Error, Result};
use crate::executor::{EvalStats, Executor};
use crate::runner::{run_catching, ModelRunner};

pub mod scenario;

use scenario::{join_forcing, Join, JoinReport, Scenario};

/// Period of the end-of-century warming AR6 assesses (inclusive years).
pub const LATE_CENTURY: (f64, f64) = (2081.0, 2100.0);
/// Baseline of the warming (AR6: 1850–1900).
pub const BASELINE: (f64, f64) = (1850.0, 1900.0);

/// The calibrated model run under scenarios.
pub struct Projector {
    scenarios: Vec<Scenario>,
    models: Vec<Arc<dyn ModelRunner>>,
    reports: Vec<JoinReport>,
    join: Join,
    years: Vec<f64>,
    n_history: usize,
    outputs: Vec<String>,
    param_names: Vec<String>,
}

impl Projector {
    /// The model `base` (as calibrated) under each of `scenarios`, joined as `join` says.
    ///
    /// Errors: a model that cannot be re-forced ([`ModelRunner::with_forcing`]), a
    /// scenario that does not cover the join and the end year, no scenarios.
    pub fn new(base: Arc<dyn ModelRunner>, scenarios: Vec<Scenario>, join: Join) -> Result<Self> {
        if scenarios.is_empty() {
            return Err(Error::Config("no scenario to project: give at least one (e.g. ssp245)".into()));
        }
        let history = base.forcing().ok_or_else(|| {
            Error::Unsupported(
                "this model cannot be projected: it is not driven by a forcing by component that a scenario can continue (only the built-in two_layer model with forcing read from a file is; constant/step forcing, command, python and rscm models are not)".into(),
            )
        })?;
        let n_history = history.len();
        let mut models = Vec::with_capacity(scenarios.len());
        let mut reports = Vec::with_capacity(scenarios.len());
        for s in &scenarios {
            let (f, r) = join_forcing(history, s, &join)?;
            models.push(base.with_forcing(f)?);
            reports.push(r);
        }
        let years = models[0].forcing().map(|f| f.years().to_vec()).unwrap_or_default();
        let outputs = base.output_names();
        if outputs.is_empty() {
            return Err(Error::Unsupported("this model declares no outputs to project".into()));
        }
        Ok(Self { scenarios, models, reports, join, years, n_history, outputs, param_names: base.param_names() })
    }

    /// The scenarios, in order.
    pub fn scenarios(&self) -> &[Scenario] {
        &self.scenarios
    }

    /// How each scenario joined the history.
    pub fn reports(&self) -> &[JoinReport] {
        &self.reports
    }

    /// The join settings.
    pub fn join(&self) -> Join {
        self.join
    }

    /// Years of the projected series (the calibration's forcing years, then the scenario's).
    pub fn years(&self) -> &[f64] {
        &self.years
    }

    /// Number of leading years that are the calibration's own forcing.
    pub fn n_history(&self) -> usize {
        self.n_history
    }

    /// The model outputs projected, in blob order.
    pub fn outputs(&self) -> &[String] {
        &self.outputs
    }

    /// The model's parameter names (the order of a draw).
    pub fn param_names(&self) -> &[String] {
        &self.param_names
    }

    /// The model of scenario `i` (history + scenario forcing).
    pub fn model(&self, i: usize) -> &Arc<dyn ModelRunner> {
        &self.models[i]
    }

    /// Values per draw: outputs × years.
    pub fn series_len(&self) -> usize {
        self.outputs.len() * self.years.len()
    }

    /// Project one draw under scenario `i` into `out` (output-major:
    /// `out[o · n_years + t]`).
    pub fn project_into(&self, i: usize, params: &[f64], out: &mut [f64]) -> Result<()> {
        let model = self.models.get(i).ok_or_else(|| Error::Config(format!("no scenario {i}")))?;
        let run = run_catching(&**model, params)?;
        let ny = self.years.len();
        for (o, name) in self.outputs.iter().enumerate() {
            let s = run
                .get(name)
                .filter(|s| s.len() == ny)
                .ok_or_else(|| Error::Model(format!("the projected run has no '{name}' on the projection's years")))?;
            out[o * ny..(o + 1) * ny].copy_from_slice(s);
        }
        Ok(())
    }

    /// Project `draws` (row-major, each of [`Projector::param_names`] length) under
    /// scenario `i` on `executor`. A draw whose run fails is NaN and flagged.
    pub fn run(&self, i: usize, draws: &[f64], executor: &dyn Executor) -> Projection {
        let np = self.param_names.len();
        let n = draws.len().checked_div(np).unwrap_or(0);
        let mut points = Vec::with_capacity(n * (np + 1));
        for d in draws.chunks_exact(np.max(1)).take(n) {
            points.push(i as f64);
            points.extend_from_slice(d);
        }
        let mut lp = vec![0.0; n];
        let mut values = vec![0.0; n * self.series_len()];
        let stats = executor.evaluate(self, &points, &mut lp, &mut values);
        let failed: Vec<bool> = lp.iter().map(|v| !v.is_finite()).collect();
        let ns = self.series_len();
        for (k, f) in failed.iter().enumerate() {
            if *f {
                values[k * ns..(k + 1) * ns].fill(f64::NAN);
            }
        }
        Projection {
            scenario: self.scenarios[i].name.clone(),
            years: self.years.clone(),
            outputs: self.outputs.clone(),
            values,
            failed,
            stats,
        }
    }
}

impl LogDensity for Projector {
    fn dim(&self) -> usize {
        1 + self.param_names.len()
    }

    /// 0 when the draw projects under the scenario, NaN when it fails.
    fn ln_prob(&self, x: &[f64]) -> f64 {
        let mut buf = vec![0.0; self.series_len()];
        self.ln_prob_with_blob(x, &mut buf)
    }

    fn n_blobs(&self) -> usize {
        self.series_len()
    }

    fn ln_prob_with_blob(&self, x: &[f64], blob: &mut [f64]) -> f64 {
        let i = x[0];
        if !(i >= 0.0 && (i as usize) < self.models.len() && i.fract() == 0.0) {
            blob.fill(f64::NAN);
            return f64::NAN;
        }
        match self.project_into(i as usize, &x[1..], blob) {
            Ok(()) => 0.0,
            Err(_) => {
                blob.fill(f64::NAN);
                f64::NAN
            }
        }
    }

    fn param_names(&self) -> Vec<String> {
        std::iter::once("scenario".to_string()).chain(self.param_names.iter().cloned()).collect()
    }
}

/// Projected series of one scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Projection {
    pub scenario: String,
    pub years: Vec<f64>,
    pub outputs: Vec<String>,
    /// `n_draws × outputs × years`, row-major; NaN for failed draws.
    pub values: Vec<f64>,
    /// Per draw: the model failed.
    pub failed: Vec<bool>,
    /// What the evaluation cost.
    pub stats: EvalStats,
}

impl Projection {
    /// Number of draws.
    pub fn n_draws(&self) -> usize {
        self.failed.len()
    }

    /// Series of `output` for draw `k`.
    pub fn series(&self, k: usize, output: &str) -> Option<&[f64]> {
        let o = self.outputs.iter().position(|n| n == output)?;
        let ny = self.years.len();
        let base = (k * self.outputs.len() + o) * ny;
        self.values.get(base..base + ny)
    }

    /// Per draw: the mean of `output` over `period` minus its mean over `baseline`
    /// (inclusive years; NaN for failed draws).
    pub fn change(&self, output: &str, period: (f64, f64), baseline: (f64, f64)) -> Result<Vec<f64>> {
        let missing = |p: (f64, f64)| {
            Error::Config(format!(
                "the projection ({}–{}) does not cover {}–{}",
                self.years.first().unwrap_or(&f64::NAN),
                self.years.last().unwrap_or(&f64::NAN),
                p.0,
                p.1
            ))
        };
        let rp = period_indices(&self.years, period.0, period.1).ok_or_else(|| missing(period))?;
        let rb = period_indices(&self.years, baseline.0, baseline.1).ok_or_else(|| missing(baseline))?;
        if !self.outputs.iter().any(|n| n == output) {
            return Err(Error::Config(format!("no output '{output}'; the outputs are {:?}", self.outputs)));
        }
        Ok((0..self.n_draws())
            .map(|k| {
                let s = self.series(k, output).expect("checked");
                mean(s, rp.clone()) - mean(s, rb.clone())
            })
            .collect())
    }
}

/// `n` of `available` draws, evenly spaced from the first (`i · available / n`);
/// all of them when `n` is `None` or at least `available`.
pub fn thin_evenly(available: usize, n: Option<usize>) -> Vec<usize> {
    match n {
        Some(n) if n < available => (0..n).map(|i| (i as u128 * available as u128 / n as u128) as usize).collect(),
        _ => (0..available).collect(),
    }
}

/// 5, 50 and 95 % of the finite values (NaN when there are none).
pub fn quantiles_5_50_95(values: &[f64]) -> [f64; 3] {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    [quantile(&v, 0.05), quantile(&v, 0.5), quantile(&v, 0.95)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::executor::{RayonExecutor, SerialExecutor};
    use crate::models::forcing::Forcing;
    use crate::models::two_layer::{Feedback, TwoLayerModel};

    fn model() -> Arc<dyn ModelRunner> {
        let years: Vec<f64> = (1750..=2024).map(f64::from).collect();
        let n = years.len();
        let other: Vec<f64> = (0..n).map(|i| 3.0 * i as f64 / n as f64).collect();
        let aer: Vec<f64> = (0..n).map(|i| -(i as f64) / n as f64).collect();
        let nat: Vec<f64> = (0..n).map(|i| 0.1 * ((i as f64) * 0.7).sin()).collect();
        let f = Forcing::from_components(years, other, aer, nat).unwrap();
        Arc::new(TwoLayerModel::builder(f).feedback(Feedback::Lambda).fix("nonaerosol_scale", 1.0).build().unwrap())
    }

    fn draws() -> Vec<f64> {
        let mut d = Vec::new();
        for k in 0..37 {
            let t = k as f64 / 37.0;
            d.extend_from_slice(&[0.8 + t, 7.0 + 2.0 * t, 90.0 + 30.0 * t, 0.5 + 0.3 * t, 1.0 + 0.5 * t, 0.6 + 0.8 * t]);
        }
        d
    }

    #[test]
    fn history_is_the_calibration_run_bit_for_bit() {
        let base = model();
        let p = Projector::new(
            base.clone(),
            vec![Scenario::builtin("ssp126").unwrap(), Scenario::builtin("ssp585").unwrap()],
            Join::default(),
        )
        .unwrap();
        let nh = p.n_history();
        assert_eq!(nh, 275);
        let d = draws();
        for i in 0..2 {
            let proj = p.run(i, &d, &SerialExecutor);
            for (k, x) in d.chunks_exact(6).enumerate() {
                let cal = base.run(x).unwrap();
                for o in p.outputs() {
                    let s = proj.series(k, o).unwrap();
                    let c = cal.get(o).unwrap();
                    assert!(s[..nh].iter().zip(c).all(|(a, b)| a.to_bits() == b.to_bits()), "{o}, draw {k}");
                    assert!(s[nh..].iter().all(|v| v.is_finite()));
                }
            }
        }
    }

    #[test]
    fn threads_do_not_change_the_result_and_failures_are_nan() {
        let p = Projector::new(model(), vec![Scenario::builtin("ssp245").unwrap()], Join::default()).unwrap();
        let mut d = draws();
        d[6] = -1.0; // lambda < 0 in draw 1: the model refuses it
        let a = p.run(0, &d, &SerialExecutor);
        let b = p.run(0, &d, &RayonExecutor::with_threads(2).unwrap());
        assert_eq!(a.failed, b.failed);
        assert!(a.values.iter().zip(&b.values).all(|(x, y)| x.to_bits() == y.to_bits()));
        assert_eq!(a.failed.iter().filter(|f| **f).count(), 1);
        assert!(a.failed[1] && a.series(1, "Surface Temperature").unwrap().iter().all(|v| v.is_nan()));
        assert_eq!(a.stats.failures, 1);
        let w = a.change("Surface Temperature", LATE_CENTURY, BASELINE).unwrap();
        assert!(w[1].is_nan() && w[0] > 0.5);
        assert!(a.change("Surface Temperature", (2081.0, 2200.0), BASELINE).is_err());
    }

    #[test]
    fn models_without_component_forcing_cannot_be_projected() {
        let m = TwoLayerModel::builder(Forcing::constant(7.8, 0.0, 150).unwrap()).build().unwrap();
        let e = Projector::new(Arc::new(m), vec![Scenario::builtin("ssp245").unwrap()], Join::default()).err().unwrap();
        assert!(e.to_string().contains("cannot be projected"), "{e}");
        assert!(e.is_bad_input());
    }

    #[test]
    fn thinning_is_even_and_deterministic() {
        assert_eq!(thin_evenly(10, Some(5)), vec![0, 2, 4, 6, 8]);
        assert_eq!(thin_evenly(3, Some(5)), vec![0, 1, 2]);
        assert_eq!(thin_evenly(4, None), vec![0, 1, 2, 3]);
        let q = quantiles_5_50_95(&[f64::NAN, 1.0, 2.0, 3.0]);
        assert_eq!(q[1], 2.0);
    }
}

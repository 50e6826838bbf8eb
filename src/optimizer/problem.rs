//! The bridge to argmin: the negative log-objective as an argmin `CostFunction`
//! and `Gradient`, with every batch of points sent to an [`Executor`].

use std::collections::HashMap;
use std::sync::Mutex;

use argmin::core::{CostFunction, Error as ArgminError, Gradient, SyncAlias};

use crate::density::LogDensity;
use crate::executor::Executor;

/// Cost given to a point whose log-objective is −∞ or NaN (outside the support or
/// a failed model run). Finite, so that line searches and simplex updates keep
/// working (they back away from it), and far above any cost a calibration
/// produces. Squaring it (as cubic interpolation does) stays finite.
pub const FAILED_COST: f64 = 1e30;

/// Negative log-objective, mapping failures to [`FAILED_COST`].
#[inline]
pub fn cost_of(ln_value: f64) -> f64 {
    if ln_value.is_finite() {
        -ln_value
    } else {
        FAILED_COST
    }
}

/// Every point one restart evaluated, in evaluation order.
#[derive(Debug, Default, Clone)]
pub(crate) struct Record {
    /// Sampler-space points, row-major.
    pub points: Vec<f64>,
    /// Log-objective of each point (−∞ for failures).
    pub ln_values: Vec<f64>,
    /// Number of points evaluated.
    pub n_evals: u64,
    /// Failed evaluations (NaN, +inf, panics) as counted by the executor.
    pub failures: u64,
    /// Best point so far and its log-objective.
    pub best: Option<(Vec<f64>, f64)>,
}

impl Record {
    /// Record one point evaluated elsewhere; `failed` counts it as a failure.
    pub fn add(&mut self, point: &[f64], ln_value: f64, dim: usize, keep: bool, failed: bool) {
        self.failures += failed as u64;
        self.push(point, &[ln_value], dim, keep);
    }

    fn push(&mut self, points: &[f64], ln_values: &[f64], dim: usize, keep: bool) {
        if keep {
            self.points.extend_from_slice(points);
            self.ln_values.extend_from_slice(ln_values);
        }
        self.n_evals += ln_values.len() as u64;
        for (i, &v) in ln_values.iter().enumerate() {
            // Strictly better only: ties keep the earlier point, so the result does
            // not depend on anything but evaluation order.
            let better = v.is_finite() && self.best.as_ref().is_none_or(|(_, b)| v > *b);
            if better {
                self.best = Some((points[i * dim..(i + 1) * dim].to_vec(), v));
            }
        }
    }
}

#[derive(Default)]
struct Memo {
    record: Record,
    /// Values evaluated ahead (a whole simplex in one batch), keyed by bit pattern.
    prefetched: HashMap<Vec<u64>, f64>,
    /// The last point whose cost was asked for, and its log-objective.
    last: Option<(Vec<f64>, f64)>,
}

fn key(x: &[f64]) -> Vec<u64> {
    x.iter().map(|v| v.to_bits()).collect()
}

/// One restart's view of the objective. All evaluations go through
/// `executor.evaluate` as batches and are recorded.
pub(crate) struct BatchProblem<'a> {
    density: &'a dyn LogDensity,
    executor: &'a dyn Executor,
    dim: usize,
    keep_samples: bool,
    memo: Mutex<Memo>,
    /// Closed box in sampler space (±∞ where unbounded). With it the problem is
    /// `f(P(x))`, `P` the projection onto the box: points beyond a bound evaluate
    /// (and are recorded) at the bound, and the gradient is the projected one.
    bounds: Option<Vec<(f64, f64)>>,
}

impl<'a> BatchProblem<'a> {
    pub fn new(density: &'a dyn LogDensity, executor: &'a dyn Executor, keep_samples: bool) -> Self {
        Self { density, executor, dim: density.dim(), keep_samples, memo: Mutex::new(Memo::default()), bounds: None }
    }

    /// Optimise `f(P(x))` over the box `bounds` (sampler space; ±∞ for no bound):
    /// a projected method, so a solver that steps past a bound is evaluated on it
    /// instead of meeting a wall of failed costs.
    pub fn with_bounds(mut self, bounds: Option<Vec<(f64, f64)>>) -> Self {
        self.bounds = bounds.filter(|b| b.iter().any(|(lo, hi)| lo.is_finite() || hi.is_finite()));
        self
    }

    /// `P(x)`: `x` clamped to the box (itself without one).
    pub fn project(&self, x: &[f64]) -> Vec<f64> {
        match &self.bounds {
            None => x.to_vec(),
            Some(b) => x.iter().zip(b).map(|(v, (lo, hi))| v.max(*lo).min(*hi)).collect(),
        }
    }

    /// Evaluate a batch of points (row-major) and record them; returns log-objectives.
    pub fn eval_batch(&self, points: &[f64]) -> Vec<f64> {
        let n = points.len() / self.dim.max(1);
        let mut ln = vec![0.0; n];
        if n == 0 {
            return ln;
        }
        let projected;
        let points = match &self.bounds {
            None => points,
            Some(_) => {
                projected = points.chunks(self.dim).flat_map(|p| self.project(p)).collect::<Vec<f64>>();
                &projected[..]
            }
        };
        let stats = self.executor.evaluate(self.density, points, &mut ln, &mut []);
        let mut m = self.memo.lock().expect("optimizer memo poisoned");
        m.record.failures += stats.failures;
        m.record.push(points, &ln, self.dim, self.keep_samples);
        ln
    }

    /// Start from what was evaluated elsewhere (the shared batch of starting points).
    pub fn with_record(self, record: Record) -> Self {
        self.memo.lock().expect("optimizer memo poisoned").record = record;
        self
    }

    /// A value known without evaluating (the starting point), for a later `cost` call.
    pub fn insert_known(&self, x: &[f64], ln_value: f64) {
        self.memo.lock().expect("optimizer memo poisoned").prefetched.insert(key(x), ln_value);
    }

    /// Evaluate `points` now, in one batch, so that later `cost` calls for them are
    /// answered without evaluating again (argmin's Nelder–Mead asks for its initial
    /// simplex one vertex at a time).
    pub fn prefetch(&self, points: &[Vec<f64>]) {
        let flat: Vec<f64> = points.iter().flatten().copied().collect();
        let ln = self.eval_batch(&flat);
        let mut m = self.memo.lock().expect("optimizer memo poisoned");
        for (p, v) in points.iter().zip(ln) {
            m.prefetched.insert(key(p), v);
        }
    }

    /// Everything recorded so far.
    pub fn take_record(&self) -> Record {
        std::mem::take(&mut self.memo.lock().expect("optimizer memo poisoned").record)
    }

    fn ln_value(&self, x: &[f64]) -> f64 {
        let pre = self.memo.lock().expect("optimizer memo poisoned").prefetched.remove(&key(x));
        let v = match pre {
            Some(v) => v,
            None => self.eval_batch(x)[0],
        };
        self.memo.lock().expect("optimizer memo poisoned").last = Some((x.to_vec(), v));
        v
    }

    fn last_value_at(&self, x: &[f64]) -> Option<f64> {
        let m = self.memo.lock().expect("optimizer memo poisoned");
        m.last.as_ref().filter(|(p, _)| p.as_slice() == x).map(|(_, v)| *v)
    }

    /// Central finite-difference gradient of the cost; the `2·dim` points go to the
    /// executor as one batch. Where one side fails the difference is one-sided
    /// (using the centre value); where both fail the component is 0. At a failed
    /// centre the gradient is 0 without evaluating anything (the line search only
    /// needs the cost there to back away).
    ///
    /// With a box the differences are taken around `P(x)` and never step past a
    /// bound (one-sided there), and a component at a bound that points out of the
    /// box is 0: the projected gradient, which vanishes at a constrained optimum.
    pub fn fd_gradient(&self, x: &[f64]) -> Vec<f64> {
        if let Some(b) = &self.bounds {
            return self.fd_gradient_boxed(x, b);
        }
        let d = self.dim;
        let mut centre = self.last_value_at(x);
        if let Some(c) = centre {
            if !c.is_finite() {
                return vec![0.0; d];
            }
        }
        // h ≈ ε^{1/3}·max(1, |x|) balances truncation (h²) and rounding (ε/h) error.
        let eps3 = f64::EPSILON.cbrt();
        let mut pts = Vec::with_capacity(2 * d * d);
        let mut steps = Vec::with_capacity(d);
        for i in 0..d {
            let h = eps3 * x[i].abs().max(1.0);
            let (xp, xm) = (x[i] + h, x[i] - h);
            steps.push((xp - x[i], x[i] - xm)); // the steps actually taken
            let mut p = x.to_vec();
            p[i] = xp;
            pts.extend_from_slice(&p);
            p[i] = xm;
            pts.extend_from_slice(&p);
        }
        let ln = self.eval_batch(&pts);
        let mut g = vec![0.0; d];
        for i in 0..d {
            let (fp, fm) = (ln[2 * i], ln[2 * i + 1]);
            let (hp, hm) = steps[i];
            // g is the gradient of the cost = −ln value.
            g[i] = match (fp.is_finite(), fm.is_finite()) {
                (true, true) => -(fp - fm) / (hp + hm),
                (false, false) => 0.0,
                (pf, _) => {
                    let c = *centre.get_or_insert_with(|| self.eval_batch(x)[0]);
                    if !c.is_finite() {
                        0.0
                    } else if pf {
                        -(fp - c) / hp
                    } else {
                        -(c - fm) / hm
                    }
                }
            };
        }
        g
    }
}

impl BatchProblem<'_> {
    fn fd_gradient_boxed(&self, x: &[f64], b: &[(f64, f64)]) -> Vec<f64> {
        let d = self.dim;
        let p = self.project(x);
        let mut centre = self.last_value_at(x);
        if let Some(c) = centre {
            if !c.is_finite() {
                return vec![0.0; d];
            }
        }
        let eps3 = f64::EPSILON.cbrt();
        // (index, side): the points evaluated, each inside the box.
        let mut pts = Vec::with_capacity(2 * d * d);
        let mut sides = Vec::with_capacity(2 * d);
        let mut steps = vec![(0.0, 0.0); d];
        for i in 0..d {
            let h = eps3 * p[i].abs().max(1.0);
            let (lo, hi) = b[i];
            let (xp, xm) = (p[i] + h, p[i] - h);
            steps[i] = (xp - p[i], p[i] - xm);
            for (side, v, ok) in [(0usize, xp, xp <= hi), (1, xm, xm >= lo)] {
                if ok {
                    let mut q = p.clone();
                    q[i] = v;
                    pts.extend_from_slice(&q);
                    sides.push((i, side));
                }
            }
        }
        let ln = self.eval_batch(&pts);
        let mut fp = vec![f64::NAN; d];
        let mut fm = vec![f64::NAN; d];
        for (k, &(i, side)) in sides.iter().enumerate() {
            if side == 0 {
                fp[i] = ln[k];
            } else {
                fm[i] = ln[k];
            }
        }
        let mut g = vec![0.0; d];
        for i in 0..d {
            let (hp, hm) = steps[i];
            g[i] = match (fp[i].is_finite(), fm[i].is_finite()) {
                (true, true) => -(fp[i] - fm[i]) / (hp + hm),
                (false, false) => 0.0,
                (pf, _) => {
                    let c = *centre.get_or_insert_with(|| self.eval_batch(&p)[0]);
                    if !c.is_finite() {
                        0.0
                    } else if pf {
                        -(fp[i] - c) / hp
                    } else {
                        -(c - fm[i]) / hm
                    }
                }
            };
            // At a bound, a descent direction leading out of the box is blocked.
            let (lo, hi) = b[i];
            if (p[i] >= hi && g[i] < 0.0) || (p[i] <= lo && g[i] > 0.0) {
                g[i] = 0.0;
            }
        }
        g
    }
}

impl CostFunction for &BatchProblem<'_> {
    type Param = Vec<f64>;
    type Output = f64;

    fn cost(&self, x: &Vec<f64>) -> Result<f64, ArgminError> {
        Ok(cost_of(self.ln_value(x)))
    }

    /// A whole population in one executor batch (particle swarm).
    fn bulk_cost<P>(&self, params: &[P]) -> Result<Vec<f64>, ArgminError>
    where
        P: std::borrow::Borrow<Self::Param> + SyncAlias,
        Self::Output: argmin::core::SendAlias,
        Self: SyncAlias,
    {
        let flat: Vec<f64> = params.iter().flat_map(|p| p.borrow().iter().copied()).collect();
        Ok(self.eval_batch(&flat).into_iter().map(cost_of).collect())
    }
}

impl Gradient for &BatchProblem<'_> {
    type Param = Vec<f64>;
    type Gradient = Vec<f64>;

    fn gradient(&self, x: &Vec<f64>) -> Result<Vec<f64>, ArgminError> {
        Ok(self.fd_gradient(x))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::density::FnDensity;
    use crate::executor::SerialExecutor;

    #[test]
    fn boxed_problem_projects_and_blocks_outward_gradients() {
        // ln f = -(x0 - 2)² - x1², the box x0 ∈ [-1, 1], x1 free: optimum on x0 = 1.
        let d = FnDensity::new(2, |x: &[f64]| -((x[0] - 2.0).powi(2) + x[1] * x[1]));
        let p =
            BatchProblem::new(&d, &SerialExecutor, true).with_bounds(Some(vec![(-1.0, 1.0), (f64::NEG_INFINITY, f64::INFINITY)]));
        // Beyond the bound the cost is the bound's, and the point recorded is on it.
        assert_eq!((&p).cost(&vec![5.0, 0.0]).unwrap(), 1.0);
        assert_eq!(p.take_record().best.unwrap().0, vec![1.0, 0.0]);
        // Inside: central differences (cost gradient 2(x0 - 2) = -3 at 0.5).
        let g = p.fd_gradient(&[0.5, 1.0]);
        assert!((g[0] + 3.0).abs() < 1e-6 && (g[1] - 2.0).abs() < 1e-6, "{g:?}");
        // On the bound (and beyond it) the descent direction leads out: blocked.
        assert_eq!(p.fd_gradient(&[1.0, 0.0])[0], 0.0);
        assert_eq!(p.fd_gradient(&[3.0, 0.0])[0], 0.0);
        // On the lower bound the descent direction leads in: one-sided, ≈ 2(-1 - 2) = -6.
        let g = p.fd_gradient(&[-1.0, 0.0]);
        assert!((g[0] + 6.0).abs() < 1e-4, "{g:?}");
    }

    #[test]
    fn fd_gradient_matches_analytic_and_handles_failures() {
        // ln f = -(x0² + 3 x1²) for x0 < 2, failure beyond.
        let d = FnDensity::new(2, |x: &[f64]| if x[0] < 2.0 { -(x[0] * x[0] + 3.0 * x[1] * x[1]) } else { f64::NAN });
        let p = BatchProblem::new(&d, &SerialExecutor, true);
        let g = p.fd_gradient(&[0.5, -1.0]);
        // Central differences are exact for quadratics up to rounding (~1e-10 here).
        assert!((g[0] - 1.0).abs() < 1e-8 && (g[1] + 6.0).abs() < 1e-8, "{g:?}");
        assert_eq!(p.take_record().n_evals, 4);
        // At x0 just below 2 the + side fails: backward difference, error O(h) ≈ 6e-6.
        let x0 = 2.0 - 1e-7;
        let g = p.fd_gradient(&[x0, 0.0]);
        assert!((g[0] - 2.0 * x0).abs() < 1e-4, "{g:?}");
        let r = p.take_record();
        assert_eq!((r.n_evals, r.failures), (5, 1)); // 4 + the centre

        // A failed centre: cost is FAILED_COST, gradient 0 without new evaluations.
        assert_eq!((&p).cost(&vec![3.0, 0.0]).unwrap(), FAILED_COST);
        assert_eq!(p.fd_gradient(&[3.0, 0.0]), vec![0.0, 0.0]);
        assert_eq!(p.take_record().n_evals, 1);
    }
}

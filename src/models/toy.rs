//! Toy models: multivariate Gaussian, Rosenbrock, and a "spin" model of tunable cost.

use crate::density::LogDensity;

/// Standard normal in `dim` dimensions (optionally with a mean and per-dimension σ).
#[derive(Debug, Clone)]
pub struct Gaussian {
    pub mean: Vec<f64>,
    pub inv_var: Vec<f64>,
}

impl Gaussian {
    /// Standard normal N(0, I).
    pub fn standard(dim: usize) -> Self {
        Self { mean: vec![0.0; dim], inv_var: vec![1.0; dim] }
    }
}

impl LogDensity for Gaussian {
    #[inline]
    fn dim(&self) -> usize {
        self.mean.len()
    }
    #[inline]
    fn ln_prob(&self, x: &[f64]) -> f64 {
        let mut s = 0.0;
        for ((xi, m), w) in x.iter().zip(&self.mean).zip(&self.inv_var) {
            let d = xi - m;
            s += d * d * w;
        }
        -0.5 * s
    }
}

/// Rosenbrock density `-(Σ 100 (x_{i+1} − x_i²)² + (1 − x_i)²) / scale`.
#[derive(Debug, Clone)]
pub struct Rosenbrock {
    pub dim: usize,
    pub scale: f64,
}

impl LogDensity for Rosenbrock {
    fn dim(&self) -> usize {
        self.dim
    }
    fn ln_prob(&self, x: &[f64]) -> f64 {
        let mut s = 0.0;
        for i in 0..self.dim - 1 {
            s += 100.0 * (x[i + 1] - x[i] * x[i]).powi(2) + (1.0 - x[i]).powi(2);
        }
        -s / self.scale
    }
}

/// How a [`Spin`] model fails inside its failure region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fault {
    /// Never fails (default).
    #[default]
    None,
    /// Panics (executors catch it: −∞, counted).
    Panic,
    /// Returns NaN (a failed model run: −∞, counted).
    Nan,
}

/// A test model of tunable cost: the standard normal log-density in `dim`
/// dimensions plus a busy loop of `iters` dependent integer operations. The result
/// does not depend on the loop, so it is deterministic whatever the machine; the
/// loop does real work (it is not a timed sleep), so oversubscribed cores show up
/// in benchmarks as they would for a real model.
///
/// For fault tests, points with `x[0] > fail_above` fail as `fault` says
/// (default: [`Fault::None`]).
#[derive(Debug, Clone)]
pub struct Spin {
    pub dim: usize,
    /// Loop iterations per evaluation (default from [`Spin::new`]'s calibration).
    pub iters: u64,
    pub fault: Fault,
    pub fail_above: f64,
}

impl Spin {
    /// A model costing about `micros` µs per evaluation on this machine (calibrated
    /// once per process: [`crate::models::work`]).
    pub fn new(dim: usize, micros: f64) -> Self {
        Self::with_iters(dim, crate::models::work::iters_for_us(micros))
    }

    /// A model with exactly `iters` loop iterations per evaluation.
    pub fn with_iters(dim: usize, iters: u64) -> Self {
        Self { dim, iters, fault: Fault::None, fail_above: f64::INFINITY }
    }

    /// Fail as `fault` says for points with `x[0] > above`.
    #[must_use]
    pub fn with_fault(mut self, fault: Fault, above: f64) -> Self {
        self.fault = fault;
        self.fail_above = above;
        self
    }

    /// Measured cost of one loop iteration on this machine, ns.
    pub fn ns_per_iter() -> f64 {
        crate::models::work::ns_per_iter()
    }
}

impl LogDensity for Spin {
    fn dim(&self) -> usize {
        self.dim
    }
    fn ln_prob(&self, x: &[f64]) -> f64 {
        std::hint::black_box(crate::models::work::spin(self.iters));
        if x[0] > self.fail_above {
            match self.fault {
                Fault::None => {}
                Fault::Panic => panic!("spin model: injected failure at x[0] = {} > {}", x[0], self.fail_above),
                Fault::Nan => return f64::NAN,
            }
        }
        -0.5 * x.iter().map(|v| v * v).sum::<f64>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spin_is_a_gaussian_with_faults_in_its_region() {
        let s = Spin::with_iters(2, 1000);
        assert_eq!(s.ln_prob(&[1.0, 2.0]), -2.5);
        let n = Spin::with_iters(2, 10).with_fault(Fault::Nan, 0.5);
        assert!(n.ln_prob(&[0.6, 0.0]).is_nan());
        assert_eq!(n.ln_prob(&[0.4, 0.0]), -0.08000000000000002);
        let p = Spin::with_iters(1, 10).with_fault(Fault::Panic, 0.0);
        assert!(std::panic::catch_unwind(|| p.ln_prob(&[1.0])).is_err());
        assert!(Spin::ns_per_iter() > 0.0);
        assert_eq!(Spin::new(3, 0.0).iters, 0);
    }
}

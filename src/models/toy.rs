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

//! Fixed CPU work per evaluation, for benchmark and test models.
//!
//! A benchmark model should cost what a real model costs: CPU time. A busy-wait on
//! the wall clock (`cost_us`) keeps its length when the operating system takes the
//! core away (another rank, another job), so it hides descheduling: a thread that
//! was switched out for half its wait still returns on time, and layouts that
//! oversubscribe cores look better than they are. [`Work`] instead runs a fixed
//! number of iterations of a dependent integer loop, calibrated once per process to
//! the requested microseconds on an idle core: a busy core makes it take longer,
//! as it would a real model. (`sleep_us` and `cost_us` stay for what they model:
//! waiting on I/O or on another program.)
//!
//! The cost may depend on the parameters ([`Work::with_spread`]), like a climate
//! model whose time step shrinks near instability: with spread `s` and
//! `u = Φ((x₀ − m)/σ)` (the normal CDF of the first coordinate, standardised by the
//! model's own mean and σ), one evaluation runs `s^u` times the base work, so costs
//! range over `[1, s]` × the base across the density, and a sample from it costs on
//! average `(s − 1)/ln s` × the base (3.9× for `s = 10`).

use std::sync::OnceLock;

use crate::error::{Error, Result};

/// Largest accepted per-evaluation cost, µs (one hour): anything above it is a
/// typo, and it keeps loop counts far from `u64` overflow.
pub const MAX_COST_US: f64 = 3.6e9;
/// Largest accepted cost spread (ratio of the dearest to the cheapest evaluation).
pub const MAX_SPREAD: f64 = 1e4;

/// The dependent loop: `iters` steps of a 64-bit LCG that the optimiser cannot
/// shorten (each step needs the previous one).
#[inline(never)]
pub fn spin(iters: u64) -> u64 {
    let mut h: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..iters {
        h = std::hint::black_box(h).wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
    }
    h
}

/// Cost of one loop iteration on this machine, ns: measured once per process, the
/// best of five timings, so that a busy machine does not shorten the loop.
pub fn ns_per_iter() -> f64 {
    static NS: OnceLock<f64> = OnceLock::new();
    *NS.get_or_init(|| {
        const N: u64 = 200_000;
        let mut best = f64::INFINITY;
        for _ in 0..5 {
            let t = std::time::Instant::now();
            std::hint::black_box(spin(std::hint::black_box(N)));
            best = best.min(t.elapsed().as_nanos() as f64 / N as f64);
        }
        best.max(1e-3)
    })
}

/// Loop iterations that take about `micros` µs on an idle core of this machine.
pub fn iters_for_us(micros: f64) -> u64 {
    if micros == 0.0 {
        return 0;
    }
    (micros.clamp(0.0, MAX_COST_US) * 1000.0 / ns_per_iter()).round() as u64
}

/// Check a per-evaluation cost option (µs) of `model`: finite, `>= 0` and at most
/// [`MAX_COST_US`]; the error names the model, the option and the value.
pub fn check_us(model: &str, option: &str, v: f64) -> Result<f64> {
    if v.is_finite() && (0.0..=MAX_COST_US).contains(&v) {
        Ok(v)
    } else {
        Err(Error::Config(format!(
            "model '{model}': options.{option} must be a number of microseconds between 0 and {MAX_COST_US:e} \
             (one hour), got {v}"
        )))
    }
}

/// Check a cost spread option: finite, in `[1, MAX_SPREAD]`.
pub fn check_spread(model: &str, option: &str, v: f64) -> Result<f64> {
    if v.is_finite() && (1.0..=MAX_SPREAD).contains(&v) {
        Ok(v)
    } else {
        Err(Error::Config(format!(
            "model '{model}': options.{option} is the ratio of the dearest to the cheapest evaluation and must be \
             between 1 (even cost) and {MAX_SPREAD:e}, got {v}"
        )))
    }
}

/// Fixed CPU work per evaluation, optionally dependent on the parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Work {
    /// Loop iterations of the cheapest evaluation.
    pub iters: u64,
    /// Ratio of the dearest to the cheapest evaluation (1 = even cost).
    pub spread: f64,
    /// Centre and scale of the first coordinate for the spread (`u = Φ((x₀ − centre)/scale)`).
    pub centre: f64,
    pub scale: f64,
}

impl Work {
    /// No work at all.
    pub const NONE: Work = Work { iters: 0, spread: 1.0, centre: 0.0, scale: 1.0 };

    /// About `micros` µs of CPU work per evaluation (calibrated on this machine).
    pub fn micros(micros: f64) -> Self {
        Self::iters(iters_for_us(micros))
    }

    /// Exactly `iters` loop iterations per evaluation.
    pub fn iters(iters: u64) -> Self {
        Work { iters, ..Self::NONE }
    }

    /// Let the cost grow with the first coordinate: from the base work far below
    /// `centre` to `spread` × the base far above it (see the module docs).
    #[must_use]
    pub fn with_spread(mut self, spread: f64, centre: f64, scale: f64) -> Self {
        self.spread = spread.max(1.0);
        self.centre = centre;
        self.scale = if scale > 0.0 && scale.is_finite() { scale } else { 1.0 };
        self
    }

    /// Loop iterations for the point `x`.
    pub fn iters_at(&self, x: &[f64]) -> u64 {
        if self.spread == 1.0 || self.iters == 0 {
            return self.iters;
        }
        let z = x.first().map_or(0.0, |x0| (x0 - self.centre) / self.scale);
        let u = if z.is_nan() { 0.0 } else { 0.5 * statrs::function::erf::erfc(-z / std::f64::consts::SQRT_2) };
        (self.iters as f64 * self.spread.powf(u)).round() as u64
    }

    /// Do the work for the point `x` (the result only keeps the loop alive).
    #[inline]
    pub fn spend(&self, x: &[f64]) {
        let n = self.iters_at(x);
        if n > 0 {
            std::hint::black_box(spin(n));
        }
    }
}

/// A density that does [`Work`] before each evaluation (the value is `inner`'s).
#[derive(Debug, Clone)]
pub struct Working<D> {
    pub inner: D,
    pub work: Work,
}

impl<D> Working<D> {
    pub fn new(inner: D, work: Work) -> Self {
        Self { inner, work }
    }
}

impl<D: crate::density::LogDensity> crate::density::LogDensity for Working<D> {
    fn dim(&self) -> usize {
        self.inner.dim()
    }
    fn ln_prob(&self, x: &[f64]) -> f64 {
        self.work.spend(x);
        self.inner.ln_prob(x)
    }
    fn n_blobs(&self) -> usize {
        self.inner.n_blobs()
    }
    fn ln_prob_with_blob(&self, x: &[f64], blob: &mut [f64]) -> f64 {
        self.work.spend(x);
        self.inner.ln_prob_with_blob(x, blob)
    }
    fn to_physical(&self, x: &[f64], out: &mut [f64]) {
        self.inner.to_physical(x, out)
    }
    fn to_sampler(&self, x: &[f64], out: &mut [f64]) {
        self.inner.to_sampler(x, out)
    }
    fn extend_physical(&self, x: &[f64], out: &mut Vec<f64>) {
        self.inner.extend_physical(x, out)
    }
    fn param_names(&self) -> Vec<String> {
        self.inner.param_names()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_costs_are_errors_naming_the_option() {
        for v in [-1.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1e300, MAX_COST_US * 1.01] {
            let e = check_us("gaussian", "work_us", v).unwrap_err();
            assert!(e.is_bad_input());
            let m = e.to_string();
            assert!(m.contains("gaussian") && m.contains("work_us") && m.contains(&format!("{v}")), "{m}");
        }
        assert_eq!(check_us("g", "work_us", 0.0).unwrap(), 0.0);
        assert_eq!(check_us("g", "work_us", 200.0).unwrap(), 200.0);
        for v in [0.5, 0.0, -3.0, f64::NAN, f64::INFINITY, 1e5] {
            assert!(check_spread("g", "work_spread", v).unwrap_err().to_string().contains("work_spread"));
        }
        assert_eq!(check_spread("g", "work_spread", 10.0).unwrap(), 10.0);
    }

    #[test]
    fn spread_runs_from_one_to_s_times_the_base() {
        let w = Work::iters(1000).with_spread(10.0, 1.0, 2.0);
        assert_eq!(w.iters_at(&[-1e9]), 1000);
        assert_eq!(w.iters_at(&[1e9]), 10_000);
        // At the centre u = 1/2: √10 × the base.
        assert_eq!(w.iters_at(&[1.0, 5.0]), (1000.0 * 10f64.sqrt()).round() as u64);
        assert!(w.iters_at(&[0.0]) < w.iters_at(&[2.0]));
        assert_eq!(w.iters_at(&[f64::NAN]), 1000);
        assert_eq!(Work::iters(7).iters_at(&[3.0]), 7);
        assert_eq!(Work::micros(0.0), Work::NONE);
        assert!(ns_per_iter() > 0.0);
        // Huge requests are clamped, never overflow.
        assert!(iters_for_us(f64::INFINITY) == iters_for_us(MAX_COST_US));
    }
}

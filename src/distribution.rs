//! Prior distributions.
//!
//! Densities come from [`statrs`], draws from [`rand_distr`]. Every density is
//! normalised: [`Bound`] and [`TruncatedNormal`] divide by the probability mass left
//! inside their limits.

use std::fmt::Debug;
use std::sync::Arc;

use rand::RngCore;
use rand_distr::Distribution as _;
use serde::{Deserialize, Serialize};
use statrs::distribution::{Continuous, ContinuousCDF};

use crate::error::{Error, Result};

/// A one-dimensional continuous distribution used as a prior.
///
/// Implementations must be cheap to evaluate (`ln_pdf` is called for every walker
/// at every step) and thread-safe.
pub trait Distribution: Send + Sync + Debug {
    /// Draw `n` independent values.
    fn sample(&self, n: usize, rng: &mut dyn RngCore) -> Vec<f64>;
    /// Natural log of the normalised density; `-inf` outside the support.
    fn ln_pdf(&self, x: f64) -> f64;
    /// Cumulative distribution function.
    fn cdf(&self, x: f64) -> f64;
    /// Support as `(lower, upper)`, infinite where unbounded.
    fn bounds(&self) -> (f64, f64);
    /// A serialisable description, when the distribution is one of the built-ins.
    fn spec(&self) -> Option<PriorSpec> {
        None
    }
}

fn check_finite(dist: &str, what: &str, v: f64) -> Result<()> {
    if v.is_finite() {
        Ok(())
    } else {
        Err(Error::dist(dist, format!("{what} must be finite, got {v}")))
    }
}

fn check_interval(dist: &str, lower: f64, upper: f64) -> Result<()> {
    if lower.is_nan() || upper.is_nan() || lower >= upper {
        return Err(Error::dist(dist, format!("lower ({lower}) must be < upper ({upper})")));
    }
    Ok(())
}

/// Uniform on `[lower, upper]`.
#[derive(Debug, Clone)]
pub struct Uniform {
    lower: f64,
    upper: f64,
    ln_width: f64,
}

impl Uniform {
    /// Errors when `lower >= upper` or either is not finite.
    pub fn new(lower: f64, upper: f64) -> Result<Self> {
        check_finite("Uniform", "lower", lower)?;
        check_finite("Uniform", "upper", upper)?;
        check_interval("Uniform", lower, upper)?;
        Ok(Self { lower, upper, ln_width: (upper - lower).ln() })
    }
}

impl Distribution for Uniform {
    fn sample(&self, n: usize, rng: &mut dyn RngCore) -> Vec<f64> {
        let d = rand_distr::Uniform::new(self.lower, self.upper).expect("checked in new");
        (0..n).map(|_| d.sample(rng)).collect()
    }
    fn ln_pdf(&self, x: f64) -> f64 {
        if x >= self.lower && x <= self.upper {
            -self.ln_width
        } else {
            f64::NEG_INFINITY
        }
    }
    fn cdf(&self, x: f64) -> f64 {
        ((x - self.lower) / (self.upper - self.lower)).clamp(0.0, 1.0)
    }
    fn bounds(&self) -> (f64, f64) {
        (self.lower, self.upper)
    }
    fn spec(&self) -> Option<PriorSpec> {
        Some(PriorSpec::Uniform { lower: self.lower, upper: self.upper })
    }
}

/// Normal (Gaussian) with mean `mean` and standard deviation `std`.
#[derive(Debug, Clone)]
pub struct Normal {
    mean: f64,
    std: f64,
    inner: statrs::distribution::Normal,
}

impl Normal {
    /// Errors when `std <= 0` or a parameter is not finite.
    pub fn new(mean: f64, std: f64) -> Result<Self> {
        check_finite("Normal", "mean", mean)?;
        check_finite("Normal", "std", std)?;
        if std <= 0.0 {
            return Err(Error::dist("Normal", format!("std (σ) must be > 0, got {std}")));
        }
        let inner = statrs::distribution::Normal::new(mean, std).map_err(|e| Error::dist("Normal", e.to_string()))?;
        Ok(Self { mean, std, inner })
    }
}

impl Distribution for Normal {
    fn sample(&self, n: usize, rng: &mut dyn RngCore) -> Vec<f64> {
        let d = rand_distr::Normal::new(self.mean, self.std).expect("checked in new");
        (0..n).map(|_| d.sample(rng)).collect()
    }
    fn ln_pdf(&self, x: f64) -> f64 {
        self.inner.ln_pdf(x)
    }
    fn cdf(&self, x: f64) -> f64 {
        self.inner.cdf(x)
    }
    fn bounds(&self) -> (f64, f64) {
        (f64::NEG_INFINITY, f64::INFINITY)
    }
    fn spec(&self) -> Option<PriorSpec> {
        Some(PriorSpec::Normal { mean: self.mean, std: self.std })
    }
}

/// Log-normal: `ln x ~ Normal(mu, sigma)`.
#[derive(Debug, Clone)]
pub struct LogNormal {
    mu: f64,
    sigma: f64,
    inner: statrs::distribution::LogNormal,
}

impl LogNormal {
    /// Errors when `sigma <= 0` or a parameter is not finite.
    pub fn new(mu: f64, sigma: f64) -> Result<Self> {
        check_finite("LogNormal", "mu", mu)?;
        check_finite("LogNormal", "sigma", sigma)?;
        if sigma <= 0.0 {
            return Err(Error::dist("LogNormal", format!("sigma (σ) must be > 0, got {sigma}")));
        }
        let inner = statrs::distribution::LogNormal::new(mu, sigma).map_err(|e| Error::dist("LogNormal", e.to_string()))?;
        Ok(Self { mu, sigma, inner })
    }
}

impl Distribution for LogNormal {
    fn sample(&self, n: usize, rng: &mut dyn RngCore) -> Vec<f64> {
        let d = rand_distr::LogNormal::new(self.mu, self.sigma).expect("checked in new");
        (0..n).map(|_| d.sample(rng)).collect()
    }
    fn ln_pdf(&self, x: f64) -> f64 {
        if x <= 0.0 {
            return f64::NEG_INFINITY;
        }
        self.inner.ln_pdf(x)
    }
    fn cdf(&self, x: f64) -> f64 {
        if x <= 0.0 {
            0.0
        } else {
            self.inner.cdf(x)
        }
    }
    fn bounds(&self) -> (f64, f64) {
        (0.0, f64::INFINITY)
    }
    fn spec(&self) -> Option<PriorSpec> {
        Some(PriorSpec::LogNormal { mu: self.mu, sigma: self.sigma })
    }
}

/// Normal restricted to `[lower, upper]` (either may be infinite), renormalised.
#[derive(Debug, Clone)]
pub struct TruncatedNormal {
    mean: f64,
    std: f64,
    lower: f64,
    upper: f64,
    inner: statrs::distribution::Normal,
    ln_mass: f64,
    cdf_lower: f64,
    mass: f64,
}

impl TruncatedNormal {
    /// Errors when `std <= 0`, `lower >= upper`, or the interval holds no mass.
    pub fn new(mean: f64, std: f64, lower: f64, upper: f64) -> Result<Self> {
        check_finite("TruncatedNormal", "mean", mean)?;
        check_finite("TruncatedNormal", "std", std)?;
        if std <= 0.0 {
            return Err(Error::dist("TruncatedNormal", format!("std (σ) must be > 0, got {std}")));
        }
        check_interval("TruncatedNormal", lower, upper)?;
        let inner = statrs::distribution::Normal::new(mean, std).map_err(|e| Error::dist("TruncatedNormal", e.to_string()))?;
        let (mass, cdf_lower) = interval_mass(&inner, lower, upper);
        if mass <= 0.0 || !mass.is_finite() {
            return Err(Error::dist(
                "TruncatedNormal",
                format!("[{lower}, {upper}] holds no probability mass of Normal({mean}, {std})"),
            ));
        }
        Ok(Self { mean, std, lower, upper, inner, ln_mass: mass.ln(), cdf_lower, mass })
    }
}

/// Mass of `d` on `[lower, upper]` and the CDF at `lower`, computed on the side of
/// the distribution that keeps precision in the tails.
fn interval_mass<D: ContinuousCDF<f64, f64>>(d: &D, lower: f64, upper: f64) -> (f64, f64) {
    let (fl, fu) = (d.cdf(lower), d.cdf(upper));
    let mass = if fl > 0.5 { d.sf(lower) - d.sf(upper) } else { fu - fl };
    (mass, fl)
}

impl Distribution for TruncatedNormal {
    fn sample(&self, n: usize, rng: &mut dyn RngCore) -> Vec<f64> {
        sample_truncated(
            n,
            rng,
            self.mass,
            (self.lower, self.upper),
            |rng| rand_distr::Normal::new(self.mean, self.std).expect("checked").sample(rng),
            |p| self.inner.inverse_cdf(self.cdf_lower + p * self.mass),
        )
    }
    fn ln_pdf(&self, x: f64) -> f64 {
        if x < self.lower || x > self.upper {
            return f64::NEG_INFINITY;
        }
        self.inner.ln_pdf(x) - self.ln_mass
    }
    fn cdf(&self, x: f64) -> f64 {
        if x <= self.lower {
            0.0
        } else if x >= self.upper {
            1.0
        } else {
            ((self.inner.cdf(x) - self.cdf_lower) / self.mass).clamp(0.0, 1.0)
        }
    }
    fn bounds(&self) -> (f64, f64) {
        (self.lower, self.upper)
    }
    fn spec(&self) -> Option<PriorSpec> {
        Some(PriorSpec::TruncatedNormal { mean: self.mean, std: self.std, lower: self.lower, upper: self.upper })
    }
}

/// Rejection sampling from the parent when the interval holds much of its mass,
/// inverse-CDF otherwise.
fn sample_truncated(
    n: usize,
    rng: &mut dyn RngCore,
    mass: f64,
    (lower, upper): (f64, f64),
    mut parent: impl FnMut(&mut dyn RngCore) -> f64,
    quantile: impl Fn(f64) -> f64,
) -> Vec<f64> {
    let mut out = Vec::with_capacity(n);
    let u01 = rand_distr::Uniform::new(0.0f64, 1.0).expect("valid");
    if mass > 0.25 {
        while out.len() < n {
            let x = parent(rng);
            if x >= lower && x <= upper {
                out.push(x);
            }
        }
    } else {
        for _ in 0..n {
            let x = quantile(u01.sample(rng));
            out.push(x.clamp(lower, upper));
        }
    }
    out
}

/// Any distribution restricted to `[lower, upper]` and renormalised by the mass
/// the parent puts there.
#[derive(Debug, Clone)]
pub struct Bound<D: Distribution> {
    inner: D,
    lower: f64,
    upper: f64,
    ln_mass: f64,
    mass: f64,
    cdf_lower: f64,
}

impl<D: Distribution> Bound<D> {
    /// Errors when `lower >= upper` or the parent has no mass on the interval.
    pub fn new(inner: D, lower: f64, upper: f64) -> Result<Self> {
        check_interval("Bound", lower, upper)?;
        let cdf_lower = inner.cdf(lower);
        let mass = inner.cdf(upper) - cdf_lower;
        if mass <= 0.0 || !mass.is_finite() {
            let parent = inner.spec().map(|s| s.to_string()).unwrap_or_else(|| format!("{inner:?}"));
            return Err(Error::dist("Bound", format!("[{lower}, {upper}] holds no probability mass of {parent}")));
        }
        Ok(Self { inner, lower, upper, ln_mass: mass.ln(), mass, cdf_lower })
    }

    /// The parent distribution.
    pub fn inner(&self) -> &D {
        &self.inner
    }
}

impl<D: Distribution> Distribution for Bound<D> {
    fn sample(&self, n: usize, rng: &mut dyn RngCore) -> Vec<f64> {
        let (lo, hi) = (self.lower, self.upper);
        sample_truncated(
            n,
            rng,
            self.mass,
            (lo, hi),
            |rng| self.inner.sample(1, rng)[0],
            |p| bisect_quantile(|x| self.inner.cdf(x), self.cdf_lower + p * self.mass, lo, hi),
        )
    }
    fn ln_pdf(&self, x: f64) -> f64 {
        if x < self.lower || x > self.upper {
            return f64::NEG_INFINITY;
        }
        self.inner.ln_pdf(x) - self.ln_mass
    }
    fn cdf(&self, x: f64) -> f64 {
        if x <= self.lower {
            0.0
        } else if x >= self.upper {
            1.0
        } else {
            ((self.inner.cdf(x) - self.cdf_lower) / self.mass).clamp(0.0, 1.0)
        }
    }
    fn bounds(&self) -> (f64, f64) {
        let (a, b) = self.inner.bounds();
        (self.lower.max(a), self.upper.min(b))
    }
    fn spec(&self) -> Option<PriorSpec> {
        Some(PriorSpec::Bound { inner: Box::new(self.inner.spec()?), lower: self.lower, upper: self.upper })
    }
}

impl Distribution for Arc<dyn Distribution> {
    fn sample(&self, n: usize, rng: &mut dyn RngCore) -> Vec<f64> {
        (**self).sample(n, rng)
    }
    fn ln_pdf(&self, x: f64) -> f64 {
        (**self).ln_pdf(x)
    }
    fn cdf(&self, x: f64) -> f64 {
        (**self).cdf(x)
    }
    fn bounds(&self) -> (f64, f64) {
        (**self).bounds()
    }
    fn spec(&self) -> Option<PriorSpec> {
        (**self).spec()
    }
}

/// Quantile by bisection on a monotone CDF (used for far-tail [`Bound`] draws).
fn bisect_quantile(cdf: impl Fn(f64) -> f64, p: f64, lower: f64, upper: f64) -> f64 {
    let mut lo = if lower.is_finite() { lower } else { -1e300 };
    let mut hi = if upper.is_finite() { upper } else { 1e300 };
    for _ in 0..200 {
        let mid = if lo.is_finite() && hi.is_finite() && (hi - lo) < 1e290 { 0.5 * (lo + hi) } else { 0.5 * lo + 0.5 * hi };
        if cdf(mid) < p {
            lo = mid;
        } else {
            hi = mid;
        }
        if (hi - lo).abs() <= 1e-12 * (1.0 + mid.abs()) {
            break;
        }
    }
    0.5 * (lo + hi)
}

/// Serialisable description of a built-in prior, as written in run files and chain
/// files: `{ dist = "normal", mean = 0.0, std = 1.0 }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "dist", rename_all = "snake_case", deny_unknown_fields)]
pub enum PriorSpec {
    Uniform {
        lower: f64,
        upper: f64,
    },
    Normal {
        mean: f64,
        std: f64,
    },
    #[serde(alias = "lognormal")]
    LogNormal {
        mu: f64,
        sigma: f64,
    },
    TruncatedNormal {
        mean: f64,
        std: f64,
        lower: f64,
        upper: f64,
    },
    Bound {
        inner: Box<PriorSpec>,
        lower: f64,
        upper: f64,
    },
}

impl PriorSpec {
    /// Build the distribution, checking its parameters.
    pub fn build(&self) -> Result<Arc<dyn Distribution>> {
        Ok(match self {
            PriorSpec::Uniform { lower, upper } => Arc::new(Uniform::new(*lower, *upper)?),
            PriorSpec::Normal { mean, std } => Arc::new(Normal::new(*mean, *std)?),
            PriorSpec::LogNormal { mu, sigma } => Arc::new(LogNormal::new(*mu, *sigma)?),
            PriorSpec::TruncatedNormal { mean, std, lower, upper } => {
                Arc::new(TruncatedNormal::new(*mean, *std, *lower, *upper)?)
            }
            PriorSpec::Bound { inner, lower, upper } => Arc::new(Bound::new(inner.build()?, *lower, *upper)?),
        })
    }
}

impl std::fmt::Display for PriorSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PriorSpec::Uniform { lower, upper } => write!(f, "Uniform({lower}, {upper})"),
            PriorSpec::Normal { mean, std } => write!(f, "Normal({mean}, {std})"),
            PriorSpec::LogNormal { mu, sigma } => write!(f, "LogNormal({mu}, {sigma})"),
            PriorSpec::TruncatedNormal { mean, std, lower, upper } => {
                write!(f, "TruncatedNormal({mean}, {std}, [{lower}, {upper}])")
            }
            PriorSpec::Bound { inner, lower, upper } => write!(f, "Bound({inner}, [{lower}, {upper}])"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_parameters_are_named() {
        let e = Normal::new(0.0, 0.0).unwrap_err().to_string();
        assert!(e.contains("Normal") && e.contains("σ"), "{e}");
        let e = Uniform::new(1.0, 1.0).unwrap_err().to_string();
        assert!(e.contains("lower (1) must be < upper (1)"), "{e}");
        assert!(TruncatedNormal::new(0.0, 1.0, 2.0, -2.0).is_err());
        assert!(LogNormal::new(0.0, -1.0).is_err());
    }

    #[test]
    fn truncated_normal_far_tail_is_normalised() {
        // [10, 11] sigma: mass ~ 7.6e-24, must still integrate to one.
        let d = TruncatedNormal::new(0.0, 1.0, 10.0, 11.0).unwrap();
        let n = 20_000;
        let h = 1.0 / n as f64;
        let s: f64 = (0..n).map(|i| d.ln_pdf(10.0 + (i as f64 + 0.5) * h).exp() * h).sum();
        assert!((s - 1.0).abs() < 1e-6, "{s}");
    }
}

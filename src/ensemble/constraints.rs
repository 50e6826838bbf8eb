//! Constraints on an ensemble: hard filters on stored columns and the target
//! distributions that histogram weighting matches.

use statrs::distribution::{Continuous, ContinuousCDF, Normal};

use super::spec::TargetSpec;
use crate::error::{Error, Result};

/// Standard-normal quantile of 0.95: the 5–95 % half-width in σ.
pub const NINETY_TO_ONE_SIGMA: f64 = 1.644_853_626_951_472_2;

/// A hard filter on one column: the member passes when `above < value < below`
/// (NaN never passes).
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    /// Column name (as stored: a parameter, output, derived quantity, `rmse:VAR`, `loglike:VAR`).
    pub column: String,
    pub above: f64,
    pub below: f64,
}

impl Filter {
    /// Whether `v` passes.
    #[inline]
    pub fn passes(&self, v: f64) -> bool {
        v > self.above && v < self.below
    }
}

/// Owen's T function `T(h, a) = (1/2π) ∫₀ᵃ exp(−h²(1+t²)/2) / (1+t²) dt`, by
/// composite Simpson's rule (the integrand is smooth, bounded by 1, with
/// derivatives bounded by small constants: 200 + 100·a panels, step ≤ 0.01, keep
/// the error below 1e-10; the tests check the skew-normal CDF against scipy).
pub fn owens_t(h: f64, a: f64) -> f64 {
    if a == 0.0 {
        return 0.0;
    }
    if a < 0.0 {
        return -owens_t(h, -a);
    }
    let n = 2 * ((100.0 + 50.0 * a.min(100.0)) as usize);
    let dx = a / n as f64;
    let f = |t: f64| {
        let q = 1.0 + t * t;
        (-0.5 * h * h * q).exp() / q
    };
    let mut s = f(0.0) + f(a);
    for i in 1..n {
        let w = if i % 2 == 1 { 4.0 } else { 2.0 };
        s += w * f(i as f64 * dx);
    }
    s * dx / 3.0 / (2.0 * std::f64::consts::PI)
}

/// A target distribution with a CDF and quantiles.
#[derive(Debug, Clone, PartialEq)]
pub enum TargetDistribution {
    Normal {
        mean: f64,
        std: f64,
    },
    /// Azzalini's skew-normal: density `2/ω φ(z) Φ(α z)`, `z = (x − ξ)/ω`.
    SkewNormal {
        shape: f64,
        loc: f64,
        scale: f64,
    },
}

fn std_normal() -> Normal {
    Normal::new(0.0, 1.0).expect("valid")
}

/// CDF of the standard skew-normal with shape α: `Φ(z) − 2 T(z, α)`.
fn skew_std_cdf(z: f64, alpha: f64) -> f64 {
    (std_normal().cdf(z) - 2.0 * owens_t(z, alpha)).clamp(0.0, 1.0)
}

/// Quantile of the standard skew-normal, by bisection on its CDF.
fn skew_std_quantile(p: f64, alpha: f64) -> f64 {
    let (mut lo, mut hi) = (-40.0, 40.0);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if skew_std_cdf(mid, alpha) < p {
            lo = mid;
        } else {
            hi = mid;
        }
        if hi - lo < 1e-11 {
            break;
        }
    }
    0.5 * (lo + hi)
}

impl TargetDistribution {
    /// The CDF.
    pub fn cdf(&self, x: f64) -> f64 {
        match *self {
            TargetDistribution::Normal { mean, std } => std_normal().cdf((x - mean) / std),
            TargetDistribution::SkewNormal { shape, loc, scale } => skew_std_cdf((x - loc) / scale, shape),
        }
    }

    /// The density.
    pub fn pdf(&self, x: f64) -> f64 {
        match *self {
            TargetDistribution::Normal { mean, std } => std_normal().pdf((x - mean) / std) / std,
            TargetDistribution::SkewNormal { shape, loc, scale } => {
                let z = (x - loc) / scale;
                2.0 / scale * std_normal().pdf(z) * std_normal().cdf(shape * z)
            }
        }
    }

    /// The quantile function.
    pub fn quantile(&self, p: f64) -> f64 {
        match *self {
            TargetDistribution::Normal { mean, std } => mean + std * std_normal().inverse_cdf(p),
            TargetDistribution::SkewNormal { shape, loc, scale } => loc + scale * skew_std_quantile(p, shape),
        }
    }

    /// The skew-normal with 5, 50 and 95 % quantiles `q`: the ratio
    /// `(q95 − q50)/(q50 − q05)` fixes the shape α (it increases with α, from
    /// about 0.47 at α → −∞ to 2.1 at α → +∞), then scale and location follow.
    pub fn skew_normal_from_quantiles(q05: f64, q50: f64, q95: f64) -> Result<Self> {
        if !(q05 < q50 && q50 < q95 && q05.is_finite() && q95.is_finite()) {
            return Err(Error::Config(format!("target quantiles must increase: q05 = {q05}, q50 = {q50}, q95 = {q95}")));
        }
        let ratio = |a: f64| {
            let (z05, z50, z95) = (skew_std_quantile(0.05, a), skew_std_quantile(0.5, a), skew_std_quantile(0.95, a));
            (z95 - z50) / (z50 - z05)
        };
        let want = (q95 - q50) / (q50 - q05);
        const A_MAX: f64 = 50.0;
        let (r_lo, r_hi) = (ratio(-A_MAX), ratio(A_MAX));
        if !(want > r_lo && want < r_hi) {
            return Err(Error::Config(format!(
                "no skew-normal has 5/50/95 % quantiles {q05}/{q50}/{q95}: (q95 − q50)/(q50 − q05) = {want:.3} must lie in ({r_lo:.3}, {r_hi:.3})"
            )));
        }
        let (mut lo, mut hi) = (-A_MAX, A_MAX);
        for _ in 0..45 {
            let mid = 0.5 * (lo + hi);
            if ratio(mid) < want {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        let shape = 0.5 * (lo + hi);
        let (z05, z50, z95) = (skew_std_quantile(0.05, shape), skew_std_quantile(0.5, shape), skew_std_quantile(0.95, shape));
        let scale = (q95 - q05) / (z95 - z05);
        let loc = q50 - scale * z50;
        Ok(TargetDistribution::SkewNormal { shape, loc, scale })
    }

    /// From a run file's `{ dist = … }` (see [`TargetSpec`]).
    pub fn from_spec(name: &str, s: &TargetSpec) -> Result<Self> {
        let need = |v: Option<f64>, key: &str| {
            v.filter(|x| x.is_finite())
                .ok_or_else(|| Error::Config(format!("[ensemble.targets] {name}: dist = \"{}\" needs a finite `{key}`", s.dist)))
        };
        let unused = |keys: &[(&str, bool)]| -> Result<()> {
            for (k, given) in keys {
                if *given {
                    return Err(Error::Config(format!(
                        "[ensemble.targets] {name}: `{k}` does not belong to dist = \"{}\"",
                        s.dist
                    )));
                }
            }
            Ok(())
        };
        let d = match s.dist.as_str() {
            "normal" => {
                unused(&[
                    ("shape", s.shape.is_some()),
                    ("loc", s.loc.is_some()),
                    ("scale", s.scale.is_some()),
                    ("q05", s.q05.is_some()),
                    ("q50", s.q50.is_some()),
                    ("q95", s.q95.is_some()),
                ])?;
                let mean = need(s.mean, "mean")?;
                let std = match (s.std, s.ci90) {
                    (Some(sd), None) => sd,
                    (None, Some(c)) => c / NINETY_TO_ONE_SIGMA,
                    _ => {
                        return Err(Error::Config(format!(
                            "[ensemble.targets] {name}: give exactly one of `std` or `ci90` (the 5–95 % half-width)"
                        )))
                    }
                };
                if !(std > 0.0 && std.is_finite()) {
                    return Err(Error::Config(format!("[ensemble.targets] {name}: the spread must be > 0, got σ = {std}")));
                }
                TargetDistribution::Normal { mean, std }
            }
            "skew_normal" => {
                unused(&[
                    ("mean", s.mean.is_some()),
                    ("std", s.std.is_some()),
                    ("ci90", s.ci90.is_some()),
                    ("q05", s.q05.is_some()),
                    ("q50", s.q50.is_some()),
                    ("q95", s.q95.is_some()),
                ])?;
                let (shape, loc, scale) = (need(s.shape, "shape")?, need(s.loc, "loc")?, need(s.scale, "scale")?);
                if scale <= 0.0 {
                    return Err(Error::Config(format!("[ensemble.targets] {name}: scale must be > 0, got {scale}")));
                }
                TargetDistribution::SkewNormal { shape, loc, scale }
            }
            "quantiles" => {
                unused(&[
                    ("mean", s.mean.is_some()),
                    ("std", s.std.is_some()),
                    ("ci90", s.ci90.is_some()),
                    ("shape", s.shape.is_some()),
                    ("loc", s.loc.is_some()),
                    ("scale", s.scale.is_some()),
                ])?;
                Self::skew_normal_from_quantiles(need(s.q05, "q05")?, need(s.q50, "q50")?, need(s.q95, "q95")?).map_err(|e| {
                    Error::Config(format!("[ensemble.targets] {name}: {}", e.to_string().trim_start_matches("config error: ")))
                })?
            }
            other => {
                return Err(Error::Config(format!(
                    "[ensemble.targets] {name}: unknown dist '{other}'; use normal, skew_normal or quantiles"
                )))
            }
        };
        Ok(d)
    }

    /// A JSON description (stored with the constrained ensemble).
    pub fn to_json(&self) -> String {
        match *self {
            TargetDistribution::Normal { mean, std } => serde_json::json!({"dist": "normal", "mean": mean, "std": std}),
            TargetDistribution::SkewNormal { shape, loc, scale } => {
                serde_json::json!({"dist": "skew_normal", "shape": shape, "loc": loc, "scale": scale})
            }
        }
        .to_string()
    }
}

/// A target distribution binned for histogram matching.
#[derive(Debug, Clone, PartialEq)]
pub struct BinnedTarget {
    /// Column it constrains.
    pub column: String,
    pub dist: TargetDistribution,
    /// `bins + 1` increasing edges.
    pub edges: Vec<f64>,
    /// Target probability of each bin (`F(e_{j+1}) − F(e_j)`).
    pub probs: Vec<f64>,
}

impl BinnedTarget {
    /// Bin `dist` into `bins` equal bins over `range` (default: its 0.01 and 99.99 % quantiles).
    pub fn new(column: &str, dist: TargetDistribution, bins: usize, range: Option<[f64; 2]>) -> Result<Self> {
        if !(1..=254).contains(&bins) {
            return Err(Error::Config(format!("[ensemble.targets] {column}: bins must be 1..=254, got {bins}")));
        }
        let [lo, hi] = range.unwrap_or([dist.quantile(1e-4), dist.quantile(1.0 - 1e-4)]);
        if !(lo < hi && lo.is_finite() && hi.is_finite()) {
            return Err(Error::Config(format!("[ensemble.targets] {column}: range [{lo}, {hi}] must be finite and increasing")));
        }
        let edges: Vec<f64> = (0..=bins).map(|j| if j == bins { hi } else { lo + (hi - lo) * j as f64 / bins as f64 }).collect();
        let cdfs: Vec<f64> = edges.iter().map(|&e| dist.cdf(e)).collect();
        let probs = cdfs.windows(2).map(|w| (w[1] - w[0]).max(0.0)).collect();
        Ok(Self { column: column.to_string(), dist, edges, probs })
    }

    /// Number of bins.
    pub fn n_bins(&self) -> usize {
        self.probs.len()
    }

    /// Bin code of `v`, as NumPy's `digitize(v, edges)`: 0 below the first edge,
    /// `j + 1` for `edges[j] <= v < edges[j+1]`, `bins + 1` at or above the last
    /// edge (and for NaN).
    #[inline]
    pub fn code(&self, v: f64) -> u8 {
        if v.is_nan() {
            return (self.n_bins() + 1) as u8;
        }
        self.edges.partition_point(|&e| e <= v) as u8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skew_normal_cdf_matches_scipy() {
        // scipy.stats.skewnorm.cdf(x, a), scipy 1.17.1.
        let cases = [
            (4.0, 0.5, 0.3843496785881372),
            (4.0, 1.5, 0.8663855974718402),
            (-2.0, -0.5, 0.5916987460339437),
            (0.5, 0.0, 0.35241638234956674),
            (0.5, 2.0, 0.9599997120807777),
        ];
        for (a, x, want) in cases {
            let d = TargetDistribution::SkewNormal { shape: a, loc: 0.0, scale: 1.0 };
            assert!((d.cdf(x) - want).abs() < 1e-8, "a = {a}, x = {x}: {} vs {want}", d.cdf(x));
        }
    }

    #[test]
    fn quantile_fit_reproduces_the_assessed_ranges() {
        // AR6 ECS: 5/50/95 % = 2/3/5 K.
        let d = TargetDistribution::skew_normal_from_quantiles(2.0, 3.0, 5.0).unwrap();
        for (p, q) in [(0.05, 2.0), (0.5, 3.0), (0.95, 5.0)] {
            assert!((d.quantile(p) - q).abs() < 1e-6, "{p}: {}", d.quantile(p));
            assert!((d.cdf(q) - p).abs() < 1e-7);
        }
        let TargetDistribution::SkewNormal { shape, .. } = d else { panic!() };
        assert!(shape > 1.0, "right-skewed: {shape}");
        // Symmetric quantiles give α = 0: the normal.
        let s = TargetDistribution::skew_normal_from_quantiles(-1.645, 0.0, 1.645).unwrap();
        let TargetDistribution::SkewNormal { shape, scale, .. } = s else { panic!() };
        assert!(shape.abs() < 1e-3 && (scale - 1.0).abs() < 1e-3, "{shape} {scale}");
        // Too skewed for any skew-normal: a clear error.
        let e = TargetDistribution::skew_normal_from_quantiles(2.9, 3.0, 5.0).unwrap_err().to_string();
        assert!(e.contains("no skew-normal"), "{e}");
    }

    #[test]
    fn bins_and_codes_follow_numpy_digitize() {
        let t = BinnedTarget::new("x", TargetDistribution::Normal { mean: 0.0, std: 1.0 }, 4, Some([-2.0, 2.0])).unwrap();
        assert_eq!(t.edges, vec![-2.0, -1.0, 0.0, 1.0, 2.0]);
        assert_eq!(
            [t.code(-3.0), t.code(-2.0), t.code(-0.5), t.code(0.0), t.code(1.999), t.code(2.0), t.code(f64::NAN)],
            [0, 1, 2, 3, 4, 5, 5]
        );
        let total: f64 = t.probs.iter().sum();
        assert!((total - (std_normal().cdf(2.0) - std_normal().cdf(-2.0))).abs() < 1e-15);
    }
}

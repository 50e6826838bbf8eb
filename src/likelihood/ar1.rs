//! Gaussian likelihood with AR(1)-correlated residuals, exact and O(n).
//!
//! For one target variable with observation times `t_1 < … < t_n`, residuals
//! `r_i = model_i − obs_i` (after re-baselining both to the variable's reference
//! period, exactly as [`super::GaussianLikelihood`] does) and scales
//! `s_i² = σ_i² + (relative_error · obs_i)² + σ_extra²`, the residuals are modelled as
//! `r = D z` with `D = diag(s_i)` and `z` a stationary unit-variance AR(1) process in
//! continuous time: `corr(z_i, z_j) = ρ^{|t_i − t_j|}` (ρ per unit of time, 0 ≤ ρ < 1).
//! Gaps are handled exactly: for annual data with missing years the lag is
//! `Δt = t_i − t_{i−1}` and the conditional law is
//!
//! ```text
//! z_1 ~ N(0, 1),   z_i | z_{i−1} ~ N(φ_i z_{i−1}, 1 − φ_i²),   φ_i = ρ^{Δt_i}
//! ln L = −½ Σ_i [ ln 2π + 2 ln s_i + ln v_i + (z_i − φ_i z_{i−1})² / v_i ],  v_1 = 1, v_i = 1 − φ_i²
//! ```
//!
//! which is the exact multivariate-normal log-density of `r` with covariance
//! `Σ_ij = s_i s_j ρ^{|t_i − t_j|}` (tested against a dense Cholesky evaluation). With
//! ρ = 0 it is the independent Gaussian likelihood. The reference-period offset is
//! treated as known, as in the independent likelihood (the re-baselining's own noise
//! is not propagated).

use crate::error::{Error, Result};
use crate::runner::ModelOutput;
use crate::target::Target;

use super::{model_at_observations, LikelihoodFn};

/// A likelihood setting: a fixed number or the name of a sampled parameter.
#[derive(Debug, Clone, PartialEq)]
pub enum Setting {
    /// A constant.
    Fixed(f64),
    /// A parameter of the parameter set (prior, transform), sampled with the model's.
    Param(String),
}

/// AR(1) settings of one target variable.
#[derive(Debug, Clone, PartialEq)]
pub struct Ar1Variable {
    /// Lag-1 autocorrelation per unit of time, in `[0, 1)`.
    pub rho: Setting,
    /// Extra error (same unit as the variable) added in quadrature to every σ_i (default none).
    pub sigma_extra: Option<Setting>,
}

/// Gaussian likelihood with AR(1) residuals per target variable (see the module docs).
/// Variables without settings (and no default) keep independent errors.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Ar1Likelihood {
    relative_error: f64,
    default: Option<Ar1Variable>,
    per_variable: Vec<(String, Ar1Variable)>,
    names: Vec<String>,
}

/// Resolved index into the likelihood's parameters, or a constant.
#[derive(Clone, Copy)]
enum Slot {
    Fixed(f64),
    Param(usize),
}

impl Ar1Likelihood {
    /// With `relative_error` (≥ 0, as [`super::GaussianLikelihood`]), settings for every
    /// variable without its own (`default`), and per-variable settings.
    pub fn new(relative_error: f64, default: Option<Ar1Variable>, per_variable: Vec<(String, Ar1Variable)>) -> Result<Self> {
        if !(relative_error >= 0.0 && relative_error.is_finite()) {
            return Err(Error::Config(format!("likelihood.relative_error must be finite and >= 0, got {relative_error}")));
        }
        let mut names: Vec<String> = Vec::new();
        let all = default.iter().map(|d| ("(default)", d)).chain(per_variable.iter().map(|(n, v)| (n.as_str(), v)));
        for (var, v) in all {
            for (what, s) in
                std::iter::once(("rho", Some(&v.rho))).chain(std::iter::once(("sigma_extra", v.sigma_extra.as_ref())))
            {
                match s {
                    Some(Setting::Fixed(x)) => {
                        let ok = if what == "rho" { (0.0..1.0).contains(x) } else { *x >= 0.0 && x.is_finite() };
                        if !ok {
                            return Err(Error::Config(format!(
                                "[likelihood] {what} of '{var}' is {x}; rho must be in [0, 1) and sigma_extra finite and >= 0"
                            )));
                        }
                    }
                    Some(Setting::Param(p)) if !names.contains(p) => names.push(p.clone()),
                    _ => {}
                }
            }
        }
        Ok(Self { relative_error, default, per_variable, names })
    }

    /// The run file's semantics (`[likelihood] kind = "ar1"`, also Python's
    /// `AR1Likelihood`): `rho` (default 0) and `sigma_extra` (default none) for every
    /// variable, and per-variable `(name, rho, sigma_extra)` entries whose unset fields
    /// fall back to those two.
    pub fn with_defaults(
        relative_error: f64,
        rho: Option<Setting>,
        sigma_extra: Option<Setting>,
        variables: Vec<(String, Option<Setting>, Option<Setting>)>,
    ) -> Result<Self> {
        let default = Ar1Variable { rho: rho.unwrap_or(Setting::Fixed(0.0)), sigma_extra };
        let per = variables
            .into_iter()
            .map(|(n, r, s)| {
                let v = Ar1Variable {
                    rho: r.unwrap_or_else(|| default.rho.clone()),
                    sigma_extra: s.or_else(|| default.sigma_extra.clone()),
                };
                (n, v)
            })
            .collect();
        Self::new(relative_error, Some(default), per)
    }

    /// The extra relative error (as [`super::GaussianLikelihood`]'s).
    pub fn relative_error(&self) -> f64 {
        self.relative_error
    }

    /// The settings of every variable (those named, then the default for the rest).
    pub fn describe(&self) -> String {
        let one = |v: &Ar1Variable| {
            let s = |x: &Setting| match x {
                Setting::Fixed(v) => format!("{v}"),
                Setting::Param(p) => format!("'{p}'"),
            };
            match &v.sigma_extra {
                Some(e) => format!("rho={} sigma_extra={}", s(&v.rho), s(e)),
                None => format!("rho={}", s(&v.rho)),
            }
        };
        let mut d = format!("ar1 relative_error={}", self.relative_error);
        if let Some(v) = &self.default {
            d += &format!(" {}", one(v));
        }
        for (n, v) in &self.per_variable {
            d += &format!("; {n}: {}", one(v));
        }
        d
    }

    fn settings(&self, var: &str) -> Option<&Ar1Variable> {
        self.per_variable.iter().find(|(n, _)| n == var).map(|(_, v)| v).or(self.default.as_ref())
    }

    fn slot(&self, s: &Setting) -> Slot {
        match s {
            Setting::Fixed(x) => Slot::Fixed(*x),
            Setting::Param(p) => Slot::Param(self.names.iter().position(|n| n == p).expect("collected in new")),
        }
    }

    /// Variables named in the settings that the target lacks (an error in a run file).
    pub fn unknown_variables(&self, target: &Target) -> Vec<String> {
        self.per_variable.iter().filter(|(n, _)| !target.variables().contains_key(n)).map(|(n, _)| n.clone()).collect()
    }
}

impl LikelihoodFn for Ar1Likelihood {
    fn ln_likelihood(&self, output: &ModelOutput, target: &Target) -> f64 {
        if self.names.is_empty() {
            self.ln_likelihood_with(output, target, &[])
        } else {
            f64::NAN // sampled settings need their values
        }
    }

    fn param_names(&self) -> Vec<String> {
        self.names.clone()
    }

    fn ln_likelihood_with(&self, output: &ModelOutput, target: &Target, params: &[f64]) -> f64 {
        let get = |s: Slot| match s {
            Slot::Fixed(x) => x,
            Slot::Param(i) => params[i],
        };
        let rel2 = self.relative_error * self.relative_error;
        let mut total = 0.0;
        let (mut r, mut sc) = (Vec::new(), Vec::new());
        for (name, obs) in target.variables() {
            let Some(series) = output.get(name) else {
                return f64::NEG_INFINITY;
            };
            let (rho, extra) = match self.settings(name) {
                Some(v) => (get(self.slot(&v.rho)), v.sigma_extra.as_ref().map_or(0.0, |s| get(self.slot(s)))),
                None => (0.0, 0.0),
            };
            if !(extra >= 0.0 && extra.is_finite()) {
                return f64::NEG_INFINITY;
            }
            let n = obs.times.len();
            r.resize(n, 0.0);
            sc.resize(n, 0.0);
            let ok = model_at_observations(output.times(), series, obs, |k, m| {
                let o = obs.values[k];
                r[k] = m - o;
                sc[k] = (obs.sigmas[k] * obs.sigmas[k] + rel2 * o * o + extra * extra).sqrt();
            });
            if ok.is_none() {
                return f64::NEG_INFINITY;
            }
            total += ar1_ln_likelihood(&obs.times, &r, &sc, rho);
        }
        total
    }
}

/// `ln N(r; 0, Σ)` with `Σ_ij = s_i s_j ρ^{|t_i − t_j|}` in O(n); `−inf` for ρ outside
/// `[0, 1)`, a non-positive scale or times that do not increase.
///
/// Cost: `φ = ρ^Δt` and `ln(1 − φ²)` are recomputed only when the time step changes
/// (once for annual data), and `Σ ln s_i` is taken as the log of running products,
/// as in [`super::GaussianLikelihood`]: per point a division, a few multiplications
/// and adds, no transcendental function.
pub fn ar1_ln_likelihood(times: &[f64], resid: &[f64], scale: &[f64], rho: f64) -> f64 {
    const LN_2PI: f64 = 1.837_877_066_409_345_3;
    let n = times.len();
    debug_assert!(resid.len() == n && scale.len() == n);
    if !(0.0..1.0).contains(&rho) {
        return f64::NEG_INFINITY;
    }
    if n == 0 {
        return 0.0;
    }
    let (mut quad, mut ln_v_sum) = (0.0, 0.0);
    // Σ ln s as ln of running products; a product leaving [1e-280, 1e280] is flushed first.
    let (mut prod, mut ln_s_sum) = (1.0f64, 0.0f64);
    let (mut last_dt, mut phi, mut v, mut ln_v) = (f64::NAN, 0.0, 1.0, 0.0);
    let mut z_prev = 0.0;
    for i in 0..n {
        let s = scale[i];
        if !(s > 0.0 && s.is_finite()) {
            return f64::NEG_INFINITY;
        }
        let z = resid[i] / s;
        if i == 0 {
            quad += z * z;
        } else {
            let dt = times[i] - times[i - 1];
            if dt != last_dt {
                if !(dt > 0.0) {
                    return f64::NEG_INFINITY;
                }
                last_dt = dt;
                phi = rho.powf(dt);
                v = 1.0 - phi * phi;
                ln_v = v.ln();
            }
            let e = z - phi * z_prev;
            quad += e * e / v;
            ln_v_sum += ln_v;
        }
        let np = prod * s;
        if (1e-280..=1e280).contains(&np) {
            prod = np;
        } else {
            ln_s_sum += prod.ln();
            prod = s;
        }
        z_prev = z;
    }
    ln_s_sum += prod.ln();
    -0.5 * (n as f64 * LN_2PI + 2.0 * ln_s_sum + ln_v_sum + quad)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Dense reference: Cholesky of Σ, then −½ (n ln 2π + ln det Σ + rᵀ Σ⁻¹ r).
    fn dense(times: &[f64], r: &[f64], s: &[f64], rho: f64) -> f64 {
        let n = times.len();
        let mut a = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                a[i * n + j] = s[i] * s[j] * rho.powf((times[i] - times[j]).abs());
            }
        }
        // In-place lower Cholesky.
        for j in 0..n {
            let mut d = a[j * n + j];
            for k in 0..j {
                d -= a[j * n + k] * a[j * n + k];
            }
            let d = d.sqrt();
            a[j * n + j] = d;
            for i in j + 1..n {
                let mut v = a[i * n + j];
                for k in 0..j {
                    v -= a[i * n + k] * a[j * n + k];
                }
                a[i * n + j] = v / d;
            }
        }
        // Solve L y = r.
        let mut y = vec![0.0; n];
        for i in 0..n {
            let mut v = r[i];
            for k in 0..i {
                v -= a[i * n + k] * y[k];
            }
            y[i] = v / a[i * n + i];
        }
        let logdet: f64 = (0..n).map(|i| 2.0 * a[i * n + i].ln()).sum();
        -0.5 * (n as f64 * (2.0 * std::f64::consts::PI).ln() + logdet + y.iter().map(|v| v * v).sum::<f64>())
    }

    #[test]
    fn matches_the_dense_multivariate_normal() {
        // Annual times with gaps (missing years and a 5-year stretch) and uneven scales.
        let mut times: Vec<f64> = (1850..1900).map(f64::from).collect();
        times.retain(|t| ![1853.0, 1860.0, 1861.0, 1877.0].contains(t));
        times.extend([1905.0, 1910.0, 1915.0, 1915.5]);
        let n = times.len();
        let mut state = 12345u64;
        let mut u = || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        };
        let r: Vec<f64> = (0..n).map(|_| 0.3 * u()).collect();
        let s: Vec<f64> = (0..n).map(|_| 0.05 + 0.1 * (u() + 0.5)).collect();
        for rho in [0.0, 0.3, 0.6, 0.9] {
            let fast = ar1_ln_likelihood(&times, &r, &s, rho);
            let slow = dense(&times, &r, &s, rho);
            // Values ~ 50 in magnitude; the dense Cholesky of a matrix with condition
            // number ≤ (1+ρ)/(1−ρ) · (max s / min s)² ≈ 200 loses ~1e-13: 1e-10 is ample.
            assert!((fast - slow).abs() < 1e-10, "rho {rho}: {fast} vs dense {slow}");
        }
        // Scales from 1e-150 to 1e150 (the running product of s is flushed to its log):
        // the same as the sum of logs.
        let wide: Vec<f64> = (0..n).map(|i| 10f64.powi(150 - (300 * i / n) as i32)).collect();
        let rw: Vec<f64> = wide.iter().zip(&r).map(|(s, r)| s * r).collect();
        let by_parts = ar1_ln_likelihood(&times, &rw, &wide, 0.6) + wide.iter().map(|s| s.ln()).sum::<f64>()
            - ar1_ln_likelihood(&times, &r, &vec![1.0; n], 0.6);
        assert!(by_parts.abs() < 1e-9, "wide scales: {by_parts}");
        // Independent case equals the sum of univariate log-densities.
        let indep: f64 =
            r.iter().zip(&s).map(|(r, s)| -0.5 * ((2.0 * std::f64::consts::PI).ln() + 2.0 * s.ln() + (r / s).powi(2))).sum();
        assert!((ar1_ln_likelihood(&times, &r, &s, 0.0) - indep).abs() < 1e-10);
        // Negative control: the wrong ρ must differ.
        assert!((ar1_ln_likelihood(&times, &r, &s, 0.6) - dense(&times, &r, &s, 0.5)).abs() > 1e-3);
        // Bad input.
        assert_eq!(ar1_ln_likelihood(&times, &r, &s, 1.0), f64::NEG_INFINITY);
        assert_eq!(ar1_ln_likelihood(&times, &r, &s, -0.1), f64::NEG_INFINITY);
    }

    #[test]
    fn the_likelihood_uses_residuals_settings_and_parameters() {
        use crate::likelihood::GaussianLikelihood;
        let t: Vec<f64> = (0..20).map(f64::from).collect();
        let m: Vec<f64> = t.iter().map(|x| 0.1 * x).collect();
        let out = ModelOutput::new(t.clone(), vec![("y".into(), m.clone()), ("w".into(), m.clone())]).unwrap();
        let obs_t: Vec<f64> = (0..20).step_by(2).map(f64::from).collect();
        let obs: Vec<f64> = obs_t.iter().map(|x| 0.1 * x + 0.05 * (x * 1.3).sin()).collect();
        let target = Target::new()
            .add_variable("y", obs_t.clone(), obs.clone(), vec![0.1; obs_t.len()])
            .unwrap()
            .add_variable("w", obs_t.clone(), obs.clone(), vec![0.2; obs_t.len()])
            .unwrap();
        // ρ = 0 and no extra: the independent Gaussian likelihood.
        let zero = Ar1Likelihood::new(0.0, Some(Ar1Variable { rho: Setting::Fixed(0.0), sigma_extra: None }), vec![]).unwrap();
        let g = GaussianLikelihood::default().ln_likelihood(&out, &target);
        assert!((zero.ln_likelihood(&out, &target) - g).abs() < 1e-10);
        // Sampled ρ for y, σ_extra for both: equals the core function by hand.
        let lik = Ar1Likelihood::new(
            0.0,
            Some(Ar1Variable { rho: Setting::Fixed(0.4), sigma_extra: Some(Setting::Param("sx".into())) }),
            vec![(
                "y".into(),
                Ar1Variable { rho: Setting::Param("rho_y".into()), sigma_extra: Some(Setting::Param("sx".into())) },
            )],
        )
        .unwrap();
        assert_eq!(lik.param_names(), ["sx", "rho_y"]);
        let got = lik.ln_likelihood_with(&out, &target, &[0.05, 0.7]);
        let r: Vec<f64> = obs.iter().zip(&obs_t).map(|(o, x)| 0.1 * x - o).collect();
        let s_y = vec![(0.01f64 + 0.0025).sqrt(); r.len()];
        let s_w = vec![(0.04f64 + 0.0025).sqrt(); r.len()];
        let want = ar1_ln_likelihood(&obs_t, &r, &s_y, 0.7) + ar1_ln_likelihood(&obs_t, &r, &s_w, 0.4);
        assert!((got - want).abs() < 1e-12);
        assert_eq!(lik.ln_likelihood_with(&out, &target, &[-0.1, 0.7]), f64::NEG_INFINITY);
        assert_eq!(lik.ln_likelihood_with(&out, &target, &[0.05, 1.2]), f64::NEG_INFINITY);
        // Bad settings are errors naming the setting.
        let e = Ar1Likelihood::new(0.0, Some(Ar1Variable { rho: Setting::Fixed(1.0), sigma_extra: None }), vec![]).unwrap_err();
        assert!(e.to_string().contains("rho"), "{e}");
    }
}

//! Likelihoods: how well a model output matches the target.

pub mod ar1;

use crate::runner::ModelOutput;
use crate::target::{Observation, Target};

/// A log-likelihood of model output given observations.
pub trait LikelihoodFn: Send + Sync {
    /// `ln L(output | target)`; `-inf` when the output lacks a target variable.
    fn ln_likelihood(&self, output: &ModelOutput, target: &Target) -> f64;

    /// Names of the likelihood's own parameters (e.g. an AR(1) ρ or σ_extra sampled
    /// with the model's); none by default.
    fn param_names(&self) -> Vec<String> {
        Vec::new()
    }

    /// `ln L` given the likelihood's parameters in [`LikelihoodFn::param_names`] order.
    fn ln_likelihood_with(&self, output: &ModelOutput, target: &Target, params: &[f64]) -> f64 {
        let _ = params;
        self.ln_likelihood(output, target)
    }
}

/// Independent Gaussian errors.
///
/// Variance of point *i*: `σ_obs,i² + (relative_error · |obs_i|)²`.
/// The normalising term `ln(2π v)` is included, so values are comparable
/// between different `relative_error`s.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct GaussianLikelihood {
    /// Extra error proportional to the observed value (default `0.0`).
    pub relative_error: f64,
}

impl GaussianLikelihood {
    /// With the given relative error (≥ 0).
    pub fn new(relative_error: f64) -> crate::Result<Self> {
        if !(relative_error >= 0.0 && relative_error.is_finite()) {
            return Err(crate::Error::Config(format!("likelihood.relative_error must be finite and >= 0, got {relative_error}")));
        }
        Ok(Self { relative_error })
    }
}

const LN_2PI: f64 = 1.837_877_066_409_345_3;

/// Index of time `t` in `times`, O(1) for evenly spaced axes, binary search otherwise.
#[inline]
pub(crate) fn time_index(times: &[f64], t: f64) -> Option<usize> {
    let n = times.len();
    if n == 0 {
        return None;
    }
    if n > 1 {
        let dt = (times[n - 1] - times[0]) / (n - 1) as f64;
        if dt > 0.0 {
            let i = ((t - times[0]) / dt).round();
            if i >= 0.0 && (i as usize) < n {
                let i = i as usize;
                if (times[i] - t).abs() <= 1e-9 * (1.0 + t.abs()) {
                    return Some(i);
                }
            }
        }
    }
    let i = times.partition_point(|&x| x < t - 1e-9 * (1.0 + t.abs()));
    (i < n && (times[i] - t).abs() <= 1e-9 * (1.0 + t.abs())).then_some(i)
}

/// Mean of `values` over `times` within `[a, b]`; `None` when no time falls there.
#[inline]
pub(crate) fn period_mean(times: &[f64], values: &[f64], (a, b): (f64, f64)) -> Option<f64> {
    let lo = times.partition_point(|&x| x < a);
    let hi = times.partition_point(|&x| x <= b);
    (hi > lo).then(|| values[lo..hi].iter().sum::<f64>() / (hi - lo) as f64)
}

/// Model values at the observation times, re-baselined as the observation asks.
/// `None` when the model does not cover an observation time or its reference period.
pub fn model_at_observations(times: &[f64], series: &[f64], obs: &Observation, mut f: impl FnMut(usize, f64)) -> Option<()> {
    let base = match obs.reference_period {
        Some(p) => period_mean(times, series, p)?,
        None => 0.0,
    };
    // Observation times increase strictly: locate the first one, then walk a cursor
    // forward (no division or rounding per point; O(model + observations)).
    let mut i = match obs.times.first() {
        Some(&t) => time_index(times, t)?,
        None => return Some(()),
    };
    for (k, &t) in obs.times.iter().enumerate() {
        let tol = 1e-9 * (1.0 + t.abs());
        while i < times.len() && times[i] < t - tol {
            i += 1;
        }
        if i >= times.len() || (times[i] - t).abs() > tol {
            return None;
        }
        f(k, series[i] - base);
    }
    Some(())
}

impl LikelihoodFn for GaussianLikelihood {
    fn ln_likelihood(&self, output: &ModelOutput, target: &Target) -> f64 {
        let mut total = 0.0;
        for (name, obs) in target.variables() {
            let Some(series) = output.get(name) else {
                return f64::NEG_INFINITY;
            };
            let rel2 = self.relative_error * self.relative_error;
            let mut s = 0.0;
            // Σ ln v as ln of running products (one `ln` per ~dozens of points
            // instead of one per point: the log-terms dominated the cost of cheap
            // models); a product leaving [1e-280, 1e280] is flushed first, so it
            // never under- or overflows.
            let (mut prod, mut ln_sum) = (1.0f64, 0.0f64);
            let ok = model_at_observations(output.times(), series, obs, |k, m| {
                let o = obs.values[k];
                let v = obs.sigmas[k] * obs.sigmas[k] + rel2 * o * o;
                let r = m - o;
                s += r * r / v;
                let np = prod * v;
                if (1e-280..=1e280).contains(&np) {
                    prod = np;
                } else {
                    ln_sum += prod.ln();
                    prod = v;
                }
            });
            if ok.is_none() {
                return f64::NEG_INFINITY;
            }
            ln_sum += prod.ln();
            total -= 0.5 * (s + LN_2PI * obs.times.len() as f64 + ln_sum);
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaussian_matches_hand_computation() {
        let out = ModelOutput::new(vec![0.0, 1.0, 2.0], vec![("T".into(), vec![0.0, 1.0, 2.0])]).unwrap();
        let target = Target::new().add_variable("T", vec![1.0, 2.0], vec![1.5, 2.0], vec![0.5, 1.0]).unwrap();
        let l = GaussianLikelihood::default().ln_likelihood(&out, &target);
        let expect = -0.5 * ((0.5f64 / 0.5).powi(2) + LN_2PI + 0.25f64.ln()) - 0.5 * (0.0 + LN_2PI + 0.0);
        assert!((l - expect).abs() < 1e-12);
        // missing variable → -inf
        let t2 = Target::new().add_variable("N", vec![1.0], vec![1.0], vec![1.0]).unwrap();
        assert_eq!(GaussianLikelihood::default().ln_likelihood(&out, &t2), f64::NEG_INFINITY);
    }

    #[test]
    fn time_index_handles_uneven_axes() {
        let t = [1.0, 2.0, 4.0, 8.0];
        assert_eq!(time_index(&t, 4.0), Some(2));
        assert_eq!(time_index(&t, 3.0), None);
        let u = [1850.0, 1851.0, 1852.0];
        assert_eq!(time_index(&u, 1852.0), Some(2));
        assert_eq!(time_index(&u, 1853.0), None);
    }
}

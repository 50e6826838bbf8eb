//! The rule that ties observations to a model's time axis, checked up front.
//!
//! **Rule (exact):** every observation time must equal one of the model's output
//! times (within `1e-9·(1 + |t|)`), and a reference period must hold at least one
//! model time. The likelihood compares the model *at* the observation times; it
//! neither interpolates nor averages. An observation the model does not cover
//! makes every evaluation −∞, so a sampler would only report that its walkers all
//! start at −∞; [`check_alignment`] names the variable, the uncovered times and
//! the model's range instead, before anything runs.

use rand::SeedableRng;

use crate::error::{Error, Result};
use crate::likelihood::period_mean;
use crate::posterior::Posterior;
use crate::runner::{run_catching, ModelOutput};
use crate::target::Target;

/// Prior draws [`probe_alignment`] tries before giving up on getting a model
/// output to check (a model that fails everywhere is reported by the sampler).
pub const PROBE_DRAWS: usize = 10;

/// How many uncovered times an error lists before eliding the middle.
const SHOWN: usize = 4;

fn covered(times: &[f64], t: f64) -> bool {
    let tol = 1e-9 * (1.0 + t.abs());
    let i = times.partition_point(|&x| x < t - tol);
    i < times.len() && (times[i] - t).abs() <= tol
}

fn list(ts: &[f64]) -> String {
    let fmt = |v: &[f64]| v.iter().map(|t| format!("{t}")).collect::<Vec<_>>().join(", ");
    if ts.len() <= SHOWN {
        fmt(ts)
    } else {
        format!("{}, …, {}", fmt(&ts[..SHOWN - 1]), ts[ts.len() - 1])
    }
}

fn range(times: &[f64]) -> String {
    match (times.first(), times.last()) {
        (Some(a), Some(b)) => format!("{a}–{b} ({} times)", times.len()),
        _ => "no times".into(),
    }
}

/// Check the exact alignment rule for `target` on one model output.
pub fn check_alignment(target: &Target, out: &ModelOutput) -> Result<()> {
    let times = out.times();
    for (name, obs) in target.variables() {
        let Some(series) = out.get(name) else { continue }; // Posterior::new names missing outputs
        let missing: Vec<f64> = obs.times.iter().copied().filter(|&t| !covered(times, t)).collect();
        if !missing.is_empty() {
            return Err(Error::InvalidObservation {
                variable: name.clone(),
                reason: format!(
                    "{} observation time(s) have no model value: {}; the model's '{name}' covers {}. \
                     Observation times must equal model output times (no interpolation or averaging): \
                     put the observations on the model's time axis (e.g. annual means at whole years) \
                     or run the model at the observation times",
                    missing.len(),
                    list(&missing),
                    range(times)
                ),
            });
        }
        if let Some((a, b)) = obs.reference_period {
            if period_mean(times, series, (a, b)).is_none() {
                return Err(Error::InvalidObservation {
                    variable: name.clone(),
                    reason: format!(
                        "the reference period {a}–{b} holds no model time (the model covers {}); \
                         choose a period inside the model's run",
                        range(times)
                    ),
                });
            }
        }
    }
    Ok(())
}

/// Run the model of `posterior` at prior draws (a fixed stream, so the check is
/// deterministic) until one run succeeds, and check the alignment rule on its
/// output. `Ok` when no draw runs: the sampler then reports the failing model.
pub fn probe_alignment(posterior: &Posterior) -> Result<()> {
    let params = posterior.params();
    let mut rng = rand_pcg::Pcg64::seed_from_u64(0x0061_6c69_676e); // "align"
    let names = posterior.runner().param_names();
    for _ in 0..PROBE_DRAWS {
        let theta: Vec<f64> = params.defs().map(|d| d.prior.sample(1, &mut rng)[0]).collect();
        let mp: Vec<f64> = names.iter().map(|n| theta[params.index_of(n).expect("checked by Posterior::new")]).collect();
        if let Ok(out) = run_catching(&**posterior.runner(), &mp) {
            return check_alignment(posterior.target(), &out);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(times: Vec<f64>) -> ModelOutput {
        let n = times.len();
        ModelOutput::new(times, vec![("tas".into(), vec![0.0; n])]).unwrap()
    }

    #[test]
    fn names_uncovered_times_and_the_model_range() {
        let model = out((1850..=2020).map(f64::from).collect());
        let ok = Target::new().add_variable("tas", vec![1850.0, 1900.0], vec![0.0; 2], vec![0.1; 2]).unwrap();
        assert!(check_alignment(&ok, &model).is_ok());
        let mid: Vec<f64> = (0..50).map(|i| 1850.5 + i as f64).collect();
        let t = Target::new().add_variable("tas", mid, vec![0.0; 50], vec![0.1; 50]).unwrap();
        let e = check_alignment(&t, &model).unwrap_err().to_string();
        assert!(
            e.contains("'tas'") && e.contains("50 observation time(s)") && e.contains("1850.5, 1851.5, 1852.5, …, 1899.5"),
            "{e}"
        );
        assert!(e.contains("1850–2020 (171 times)"), "{e}");
        let r = ok.with_reference_period(1700.0, 1750.0).unwrap();
        let e = check_alignment(&r, &model).unwrap_err().to_string();
        assert!(e.contains("reference period 1700–1750 holds no model time"), "{e}");
    }
}

//! Derived quantities: named, unit-carrying scalars that a model computes from one
//! parameter vector and its run (ECS, TCR, the warming between two periods, …).
//!
//! A model declares them with [`ModelRunner::derived_quantities`] and computes them
//! with [`ModelRunner::derive`], which receives the parameter vector and the model's
//! own output for it, so that a quantity read off the run (a period mean) costs a few
//! additions and only quantities that need another experiment (TCR's 1 %/yr run) run
//! the model again. Both default to "none", so every existing model keeps working.
//!
//! In a calibration, [`crate::posterior::Posterior::with_derived`] appends them to
//! every evaluation's blob (after the model values at the observation times, if those
//! are kept): the sampler keeps the blob of each walker's current position, so the
//! stored derived values always belong to the stored parameters, the evaluation runs
//! in parallel like any other (threads, MPI), and the chain stays bitwise
//! reproducible. In the chain file they are the **last** `derived_names.len()`
//! columns of `mcmc/blobs` (readable by h5py and emcee's `HDFBackend.get_blobs()`),
//! with their names, units and descriptions in `climcal/derived_names`,
//! `climcal/derived_units` and `climcal/derived_descriptions`
//! (see [`crate::storage::ChainMeta`]).
//!
//! Outside the sampler (a prior-ensemble member, a point estimate, a projection), run
//! [`compute`] on a parameter vector in the model's own order:
//!
//! ```
//! use climcal::derived;
//! use climcal::models::two_layer::{Feedback, Forcing, TwoLayerModel};
//! use climcal::runner::ModelRunner;
//! let model = TwoLayerModel::builder(Forcing::constant(7.8, 0.0, 150)?).feedback(Feedback::Lambda).build()?;
//! let names: Vec<String> = model.derived_quantities().iter().map(|q| q.name.clone()).collect();
//! assert_eq!(names, ["ECS", "TCR"]);
//! let values = derived::compute(&model, &[1.2, 8.0, 100.0, 0.7, 1.2])?;
//! assert!((values[0] - 3.93 / 1.2).abs() < 1e-12);
//! # Ok::<(), climcal::Error>(())
//! ```

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::runner::{run_catching, ModelOutput, ModelRunner};
use crate::sampler::Chain;
use crate::storage::ChainMeta;

/// One derived quantity a model declares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DerivedQuantity {
    /// Short name, used as a column name (DataFrames, ArviZ variables): no spaces.
    pub name: String,
    /// Unit (`"K"`, `"W m-2"`, `"ZJ"`; empty when dimensionless).
    pub unit: String,
    /// One line saying how it is computed.
    pub description: String,
}

impl DerivedQuantity {
    /// A quantity `name` in `unit`, described by `description`.
    pub fn new(name: &str, unit: &str, description: &str) -> Self {
        Self { name: name.into(), unit: unit.into(), description: description.into() }
    }
}

/// Run `model` at `params` (physical values in [`ModelRunner::param_names`] order) and
/// compute its derived quantities, in [`ModelRunner::derived_quantities`] order.
/// A panic in the model or in `derive` is an `Err`.
pub fn compute(model: &dyn ModelRunner, params: &[f64]) -> Result<Vec<f64>> {
    let out = run_catching(model, params)?;
    derive_from(model, params, &out)
}

/// [`ModelRunner::derive`] for an output already computed, into a new vector
/// (a panic is an `Err`).
pub fn derive_from(model: &dyn ModelRunner, params: &[f64], out: &ModelOutput) -> Result<Vec<f64>> {
    let n = model.derived_quantities().len();
    let mut v = vec![f64::NAN; n];
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| model.derive(params, out, &mut v))) {
        Ok(r) => r.map(|_| v),
        Err(p) => Err(Error::Model(format!("derived quantities panicked: {}", crate::runner::panic_message(&p)))),
    }
}

/// [`compute`] for many parameter vectors, in parallel on the current rayon pool;
/// results in input order.
pub fn compute_batch(model: &dyn ModelRunner, batch: &[Vec<f64>]) -> Vec<Result<Vec<f64>>> {
    batch.par_iter().map(|p| compute(model, p)).collect()
}

/// Derived quantities of a stored chain: names, units and values
/// `(rows × walkers, n)` in row-major order (row, then walker), as the chain's
/// `flat_samples`.
#[derive(Debug, Clone, PartialEq)]
pub struct DerivedTable {
    /// The quantities (name, unit, description).
    pub quantities: Vec<DerivedQuantity>,
    /// Values, `n_samples × quantities.len()`, row-major.
    pub values: Vec<f64>,
}

impl DerivedTable {
    /// The derived columns of `chain` after dropping `discard` stored rows, named by
    /// `meta` (`None` when the file has no derived quantities).
    pub fn from_chain(chain: &Chain, meta: &ChainMeta, discard: usize) -> Option<Self> {
        let k = meta.derived_names.len();
        let nb = chain.n_blobs();
        if k == 0 || nb < k {
            return None;
        }
        let nw = chain.n_walkers();
        let rows = chain.n_rows();
        let b = chain.blobs_raw();
        let mut values = Vec::with_capacity(rows.saturating_sub(discard) * nw * k);
        for r in discard.min(rows)..rows {
            for w in 0..nw {
                let s = (r * nw + w) * nb + nb - k;
                values.extend_from_slice(&b[s..s + k]);
            }
        }
        let get = |v: &[String], i: usize| v.get(i).cloned().unwrap_or_default();
        let quantities = (0..k)
            .map(|i| DerivedQuantity {
                name: meta.derived_names[i].clone(),
                unit: get(&meta.derived_units, i),
                description: get(&meta.derived_descriptions, i),
            })
            .collect();
        Some(Self { quantities, values })
    }

    /// The derived columns of `chain` as a chain of their own (every stored row, the
    /// quantities as its "parameters", the same walkers, steps, thinning and
    /// acceptance), so that every chain diagnostic (quantiles, R-hat, ESS, τ) applies
    /// to them unchanged. `None` when `meta` names no derived quantities.
    pub fn chain_of(chain: &Chain, meta: &ChainMeta) -> Option<Chain> {
        let t = Self::from_chain(chain, meta, 0)?;
        let names = t.quantities.iter().map(|q| q.name.clone()).collect();
        let k = t.quantities.len();
        Chain::from_parts(
            names,
            chain.n_walkers(),
            k,
            t.values,
            chain.ln_probs_raw().to_vec(),
            Vec::new(),
            0,
            chain.n_steps(),
            chain.accepted().to_vec(),
            chain.thin(),
            chain.failures(),
        )
        .ok()
    }

    /// Number of samples (rows of [`DerivedTable::values`]).
    pub fn n_samples(&self) -> usize {
        self.values.len().checked_div(self.quantities.len()).unwrap_or(0)
    }

    /// Column `i`, the finite values only (a failed evaluation leaves NaN).
    pub fn column(&self, i: usize) -> Vec<f64> {
        let k = self.quantities.len();
        self.values.iter().skip(i).step_by(k.max(1)).copied().filter(|v| v.is_finite()).collect()
    }
}

/// Mean of `series` over the times `a ≤ t ≤ b` (inclusive), given the times of
/// `series`: the indices of the first and one past the last time in range, or `None`
/// when no time is in it or the range is not fully covered by `times` (a period
/// mean over part of a period would be a different quantity).
pub fn period_indices(times: &[f64], a: f64, b: f64) -> Option<std::ops::Range<usize>> {
    let first = *times.first()?;
    let last = *times.last()?;
    if first > a || last < b {
        return None;
    }
    let lo = times.iter().position(|&t| t >= a)?;
    let hi = times.iter().rposition(|&t| t <= b)? + 1;
    (lo < hi).then_some(lo..hi)
}

/// Mean of `v[range]`.
#[inline]
pub fn mean(v: &[f64], range: std::ops::Range<usize>) -> f64 {
    let n = range.len() as f64;
    v[range].iter().sum::<f64>() / n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn period_indices_need_full_coverage() {
        let t: Vec<f64> = (1850..=2024).map(f64::from).collect();
        assert_eq!(period_indices(&t, 1850.0, 1900.0), Some(0..51));
        assert_eq!(period_indices(&t, 2015.0, 2024.0), Some(165..175));
        assert_eq!(period_indices(&t, 1849.0, 1900.0), None);
        assert_eq!(period_indices(&t, 2015.0, 2025.0), None);
        assert_eq!(period_indices(&[], 0.0, 1.0), None);
        assert!((mean(&t, 0..51) - 1875.0).abs() < 1e-12);
    }

    #[test]
    fn table_takes_the_last_blob_columns() {
        // 2 rows × 2 walkers, 3 blobs of which the last 2 are derived.
        let blobs: Vec<f64> = (0..12).map(f64::from).collect();
        let chain = Chain::from_parts(vec!["a".into()], 2, 1, vec![0.0; 4], vec![0.0; 4], blobs, 3, 2, vec![0; 2], 1, 0).unwrap();
        let meta = ChainMeta {
            derived_names: vec!["x".into(), "y".into()],
            derived_units: vec!["K".into(), "".into()],
            ..Default::default()
        };
        let t = DerivedTable::from_chain(&chain, &meta, 1).unwrap();
        assert_eq!(t.values, [7.0, 8.0, 10.0, 11.0]);
        assert_eq!(t.n_samples(), 2);
        assert_eq!(t.column(1), [8.0, 11.0]);
        assert_eq!(t.quantities[0].unit, "K");
        assert!(DerivedTable::from_chain(&chain, &ChainMeta::default(), 0).is_none());
    }
}

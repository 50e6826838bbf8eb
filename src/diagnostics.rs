//! Chain diagnostics as free functions over arrays.
//! (Being implemented: emcee integrated_time, ArviZ rank-normalised split R-hat, bulk ESS.)

use ndarray::{ArrayView2, ArrayView3};

/// The chain is too short for a reliable autocorrelation time; `tau` holds the estimate.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("the chain is shorter than {tol} autocorrelation times (N = {n}, N/{tol} = {limit:.1}, tau = {tau:?}); run longer")]
pub struct AutocorrError {
    pub tau: Vec<f64>,
    pub n: usize,
    pub tol: f64,
    pub limit: f64,
}

/// emcee's `integrated_time` on `(steps, walkers, dim)`.
pub fn integrated_time(x: ArrayView3<f64>, c: f64, tol: f64) -> Result<Vec<f64>, AutocorrError> {
    let _ = (x, c, tol);
    todo!("diagnostics helper")
}

/// Rank-normalised split R-hat on `(chains, draws)`.
pub fn rhat(x: ArrayView2<f64>) -> f64 {
    let _ = x;
    todo!("diagnostics helper")
}

/// Bulk ESS on `(chains, draws)`.
pub fn ess_bulk(x: ArrayView2<f64>) -> f64 {
    let _ = x;
    todo!("diagnostics helper")
}

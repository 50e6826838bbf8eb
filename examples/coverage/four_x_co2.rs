//! The two-layer model's priors for abrupt-4xCO2 fits (λ, C, C_d, γ, ε: wide
//! uniforms, sampled on the logit scale) and the walkers' starting point, shared by
//! `examples/validate_4xco2.rs` and the coverage experiment.

use std::sync::Arc;

use climcal::prelude::*;

/// The CMIP6 multi-model mean two-layer fit (the published table's `Mean` row:
/// λ 1.06, C 8.1, C_d 110, γ 0.62, ε 1.34): walkers start in a small ball around
/// it, not around a model's own fit.
pub const CENTER: [f64; 5] = [1.06, 8.1, 110.0, 0.62, 1.34];

/// `lambda`, `C`, `C_d`, `gamma`, `epsilon` with their uniform priors.
pub fn priors() -> Result<ParameterSet> {
    ParameterSet::new()
        .add_with("lambda", Arc::new(Uniform::new(0.1, 4.0)?), Transform::Logit, "W m-2 K-1")?
        .add_with("C", Arc::new(Uniform::new(1.0, 40.0)?), Transform::Logit, "W yr m-2 K-1")?
        .add_with("C_d", Arc::new(Uniform::new(10.0, 1000.0)?), Transform::Logit, "W yr m-2 K-1")?
        .add_with("gamma", Arc::new(Uniform::new(0.05, 3.0)?), Transform::Logit, "W m-2 K-1")?
        .add_with("epsilon", Arc::new(Uniform::new(0.2, 3.0)?), Transform::Logit, "1")
}

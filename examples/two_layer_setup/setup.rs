//! Shared set-up of the historical two-layer calibration (HadCRUT5 + OHC), used by
//! `examples/calibrate_hadcrut5.rs` and `benches/two_layer.rs`. The same choices are
//! written as a run file in `cluster-examples/two-layer-hadcrut5.toml`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use climcal::models::two_layer::{Feedback, Forcing, ForcingColumns, TwoLayerModel};
use climcal::prelude::*;

/// `cluster-examples/data` of this repository.
pub fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("cluster-examples/data")
}

/// AR6/IGCC 2024 ERF by component, 1750–2024.
pub fn historical_forcing(data: &Path) -> Result<Forcing> {
    Forcing::from_csv(&data.join("ERF_best_aggregates_1750-2024.csv"), &ForcingColumns::default(), None)
}

/// λ-parametrised model; 91 % of the heat uptake is ocean (AR6 WG1 Ch. 7, Box 7.2),
/// non-aerosol anthropogenic ERF taken as assessed (scale fixed to 1).
pub fn historical_model(forcing: impl Into<Arc<Forcing>>) -> Result<TwoLayerModel> {
    TwoLayerModel::builder(forcing).feedback(Feedback::Lambda).ocean_heat_fraction(0.91).fix("nonaerosol_scale", 1.0).build()
}

/// Physically motivated priors (see docs/two-layer.md for the reasoning).
pub fn historical_params() -> Result<ParameterSet> {
    let ln = |x: f64| x.ln();
    ParameterSet::new()
        .add_with("lambda", Arc::new(TruncatedNormal::new(1.16, 0.395, 0.2, 3.0)?), Transform::Logit, "W m-2 K-1")?
        .add_with("C", Arc::new(LogNormal::new(ln(8.0), 0.5)?), Transform::Log, "W yr m-2 K-1")?
        .add_with("C_d", Arc::new(LogNormal::new(ln(100.0), 0.5)?), Transform::Log, "W yr m-2 K-1")?
        .add_with("gamma", Arc::new(LogNormal::new(ln(0.6), 0.5)?), Transform::Log, "W m-2 K-1")?
        .add_with("epsilon", Arc::new(LogNormal::new(ln(1.2), 0.3)?), Transform::Log, "1")?
        .add_with("aerosol_scale", Arc::new(TruncatedNormal::new(1.0, 0.37, 0.0, 3.0)?), Transform::Logit, "1")
}

/// HadCRUT5 GMST 1850–2024 (re-baselined to 1850–1900) and full-depth OHC change
/// since 1971, from the derived files (see `cluster-examples/data/derive.py`).
pub fn historical_target(data: &Path) -> Result<Target> {
    let d = data.join("derived");
    Target::new()
        .with_reference_period(1850.0, 1900.0)?
        .add_csv_variable(
            "Surface Temperature",
            &d.join("hadcrut5_gmst_1850-2024.csv"),
            "year",
            "gmst",
            &SigmaSource::Column("sigma".into()),
            None,
        )?
        .add_csv_variable(
            "Ocean Heat Content",
            &d.join("ohc_full_depth_1971-2023_5yr.csv"),
            "year",
            "ohc",
            &SigmaSource::Column("sigma".into()),
            None,
        )?
        .with_variable_reference_period("Ocean Heat Content", 1971.0, 1971.0)
}

/// The whole posterior.
pub fn historical_posterior(data: &Path) -> Result<Posterior> {
    let model = historical_model(historical_forcing(data)?)?;
    Posterior::new(historical_params()?, historical_target(data)?, Arc::new(model), Arc::new(GaussianLikelihood::default()))
}

//! Two-layer energy-balance model with ocean heat uptake efficacy.
//!
//! Held et al. (2010, [doi:10.1175/2009JCLI3466.1](https://doi.org/10.1175/2009JCLI3466.1)),
//! Geoffroy et al. (2013a,b, [doi:10.1175/JCLI-D-12-00195.1](https://doi.org/10.1175/JCLI-D-12-00195.1),
//! [doi:10.1175/JCLI-D-12-00196.1](https://doi.org/10.1175/JCLI-D-12-00196.1)):
//!
//! ```text
//! C   dT/dt   = F(t) − λ T − ε γ (T − T_d)
//! C_d dT_d/dt = γ (T − T_d)
//! ```
//!
//! `T` is the surface (mixed layer) temperature anomaly and `T_d` the deep-ocean one
//! (K), `C`, `C_d` their heat capacities (W yr m⁻² K⁻¹), `λ` the climate feedback
//! parameter (W m⁻² K⁻¹, positive = stabilising), `γ` the heat exchange coefficient
//! (W m⁻² K⁻¹) and `ε` the efficacy of deep-ocean heat uptake.
//!
//! # Integration
//!
//! The forcing is piecewise constant: `F_y` is the annual mean for calendar year `y`
//! and holds over `[y, y+1)`. The system `x' = A x + b F` with `x = (T, T_d)` is then
//! solved exactly: for each parameter vector the 2×2 matrix functions `e^A`,
//! `φ₁(A) = A⁻¹(e^A − I)` and `φ₂(A) = A⁻²(e^A − I − A)` are built once from the
//! eigenvalues of `A` (always real and negative for positive parameters, because `A`
//! is similar to a symmetric negative definite matrix), and each year costs one 2×2
//! update:
//!
//! ```text
//! x(y+1)      = e^A x(y) + φ₁(A) b F_y        (state on 1 January of the next year)
//! mean over y = φ₁(A) x(y) + φ₂(A) b F_y      (exact annual mean)
//! ```
//!
//! No sub-stepping, no stiffness: it is stable for every prior draw.
//!
//! # Time convention
//!
//! Outputs are labelled by the calendar year `y` (an integer) and are, by default
//! ([`TimeConvention::AnnualMean`]), **annual means over year `y`**, which is what
//! HadCRUT5 annual anomalies and annual ocean heat content estimates are. The state
//! starts at equilibrium (`T = T_d = 0`) on 1 January of the first forcing year.
//! Forcing files labelled by mid-year (`1750.5`) are read as calendar year `1750`.
//! [`TimeConvention::EndOfYear`] gives instead the state on 31 December of year `y`
//! (for comparison with continuous-time analytic solutions).
//!
//! # Outputs
//!
//! - `"Surface Temperature"`: `T` (K).
//! - `"Ocean Heat Content"`: `f_ocean · (C T + C_d T_d)` converted to ZJ over the
//!   whole Earth's surface: 1 W yr m⁻² = [`ZJ_PER_W_YR_M2`] ZJ, with Earth's surface
//!   area [`EARTH_AREA_M2`] and a Julian year [`SECONDS_PER_YEAR`]. `f_ocean`
//!   (option `ocean_heat_fraction`, default `1.0`) lets ocean-only observations be
//!   compared with the model's total heat uptake (AR6: the ocean took 91 %).
//! - `"Net Energy Imbalance"`: `N = F − λ T − (ε − 1) γ (T − T_d)` (W m⁻²), the
//!   top-of-atmosphere imbalance including the efficacy term; it is exactly the rate of
//!   change of `C T + C_d T_d`, so energy is conserved.
//!
//! # Parameters
//!
//! By name: `ecs` (K; `λ = F_2x / ecs` with `F_2x` = [`F2X_AR6`] by default) or
//! `lambda`, then `C`, `C_d`, `gamma`, `epsilon`, and for forcing read from a file the
//! scale factors `aerosol_scale` (multiplies the aerosol ERF) and `nonaerosol_scale`
//! (multiplies the anthropogenic non-aerosol ERF; natural forcing is not scaled).
//! Any of them can be fixed to a constant, which removes it from
//! [`ModelRunner::param_names`].
//!
//! ```
//! use climcal::models::two_layer::{Forcing, TwoLayerModel, Feedback};
//! use climcal::runner::ModelRunner;
//! // abrupt 4×CO2: constant 7.8 W m⁻² for 150 years, fitted λ, C, C_d, γ, ε.
//! let model = TwoLayerModel::builder(Forcing::constant(7.8, 0.0, 150)?)
//!     .feedback(Feedback::Lambda)
//!     .build()?;
//! assert_eq!(model.param_names(), ["lambda", "C", "C_d", "gamma", "epsilon"]);
//! let out = model.run(&[1.0, 8.0, 100.0, 0.6, 1.3])?;
//! let t = out.get("Surface Temperature").unwrap();
//! assert!(t[149] > 5.0 && t[149] < 7.8);
//! # Ok::<(), climcal::Error>(())
//! ```

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use crate::derived::{mean, period_indices, DerivedQuantity};
use crate::error::{Error, Result};
use crate::runner::{ModelOutput, ModelRunner};

/// Forcing of doubled CO2, W m⁻² (AR6 WG1 Ch. 7 assessment: 3.93 ± 0.47).
pub const F2X_AR6: f64 = 3.93;
/// Earth's surface area, m² (4π R², mean radius R = 6371.0 km).
pub const EARTH_AREA_M2: f64 = 4.0 * std::f64::consts::PI * 6.371e6 * 6.371e6;
/// Seconds in a Julian year (365.25 days).
pub const SECONDS_PER_YEAR: f64 = 365.25 * 86400.0;
/// ZJ (10²¹ J) in 1 W yr m⁻² over Earth's surface (≈ 16.10).
pub const ZJ_PER_W_YR_M2: f64 = SECONDS_PER_YEAR * EARTH_AREA_M2 * 1e-21;

/// Output names, in the order the model returns them.
pub const OUTPUT_NAMES: [&str; 3] = ["Surface Temperature", "Ocean Heat Content", "Net Energy Imbalance"];

pub use super::forcing::{Forcing, ForcingColumns};

// ---------------------------------------------------------------------------
// Physics: parameters and the exact propagator
// ---------------------------------------------------------------------------

/// Physical parameters of the two-layer model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TwoLayerParams {
    /// Feedback parameter λ, W m⁻² K⁻¹ (> 0 for a stable climate).
    pub lambda: f64,
    /// Upper-layer heat capacity C, W yr m⁻² K⁻¹.
    pub c: f64,
    /// Deep-layer heat capacity C_d, W yr m⁻² K⁻¹.
    pub c_d: f64,
    /// Heat exchange coefficient γ, W m⁻² K⁻¹.
    pub gamma: f64,
    /// Efficacy of deep-ocean heat uptake ε (1 = no efficacy effect).
    pub epsilon: f64,
}

/// Fast and slow modes of the step response `T(t) = F/λ (1 − a_f e^{−t/τ_f} − a_s e^{−t/τ_s})`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Modes {
    /// Fast time scale, years.
    pub tau_f: f64,
    /// Slow time scale, years.
    pub tau_s: f64,
    /// Fraction of the equilibrium response with the fast time scale.
    pub a_f: f64,
    /// Fraction with the slow time scale (`a_f + a_s = 1`).
    pub a_s: f64,
}

/// One-year exact propagator for piecewise-constant forcing (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Propagator {
    /// `e^A` (row-major 2×2).
    pub p: [f64; 4],
    /// `φ₁(A) b`: end-of-year response to one year of unit forcing.
    pub q: [f64; 2],
    /// `φ₁(A)`: annual mean response to the state at the start of the year.
    pub r: [f64; 4],
    /// `φ₂(A) b`: annual mean response to one year of unit forcing.
    pub s: [f64; 2],
}

#[inline]
fn phi1(z: f64) -> f64 {
    if z.abs() < 1e-5 {
        1.0 + z * (0.5 + z / 6.0)
    } else {
        z.exp_m1() / z
    }
}

#[inline]
fn phi2(z: f64) -> f64 {
    if z.abs() < 1e-3 {
        0.5 + z * (1.0 / 6.0 + z * (1.0 / 24.0 + z / 120.0))
    } else {
        (z.exp_m1() - z) / (z * z)
    }
}

impl TwoLayerParams {
    /// Check that the parameters describe a physical system: λ, C, C_d > 0,
    /// γ ≥ 0, ε ≥ 0, all finite.
    pub fn validate(&self) -> Result<()> {
        let ok = self.lambda > 0.0
            && self.c > 0.0
            && self.c_d > 0.0
            && self.gamma >= 0.0
            && self.epsilon >= 0.0
            && [self.lambda, self.c, self.c_d, self.gamma, self.epsilon].iter().all(|v| v.is_finite());
        if ok {
            Ok(())
        } else {
            Err(Error::Model(format!(
                "two_layer: parameters out of range (need lambda, C, C_d > 0, gamma, epsilon >= 0, finite): {self:?}"
            )))
        }
    }

    /// Equilibrium climate sensitivity `F_2x / λ`, K.
    pub fn ecs(&self, f2x: f64) -> f64 {
        f2x / self.lambda
    }

    /// `A` of `x' = A x + b F` (row-major).
    pub fn matrix(&self) -> [f64; 4] {
        let eg = self.epsilon * self.gamma;
        [-(self.lambda + eg) / self.c, eg / self.c, self.gamma / self.c_d, -self.gamma / self.c_d]
    }

    /// Eigenvalues of `A`, `(s + q, s − q)` as `(s, q)`: the slow one is `s + q`.
    fn eigen(&self) -> (f64, f64) {
        let a = self.matrix();
        let s = 0.5 * (a[0] + a[3]);
        let h = 0.5 * (a[0] - a[3]);
        // a[1]·a[2] = εγ²/(C C_d) ≥ 0: the eigenvalues are real.
        (s, (h * h + a[1] * a[2]).sqrt())
    }

    /// `f(A) = α I + β (A − s I)` for a scalar function `f` of the eigenvalues.
    #[inline]
    fn matrix_function(a: &[f64; 4], s: f64, q: f64, f: impl Fn(f64) -> f64) -> [f64; 4] {
        let (f1, f2) = (f(s + q), f(s - q));
        let alpha = 0.5 * (f1 + f2);
        // Divided difference; the central difference at h ≥ 1e-6 is accurate to ~1e-13
        // when the eigenvalues (nearly) coincide, which positive ε γ makes impossible
        // in practice (q ≥ γ √(ε / (C C_d))).
        let beta = if q >= 1e-6 {
            (f1 - f2) / (2.0 * q)
        } else {
            let h = 1e-6;
            (f(s + h) - f(s - h)) / (2.0 * h)
        };
        [alpha + beta * (a[0] - s), beta * a[1], beta * a[2], alpha + beta * (a[3] - s)]
    }

    /// The one-year propagator (computed once per parameter vector).
    pub fn propagator(&self) -> Propagator {
        let a = self.matrix();
        let (s, q) = self.eigen();
        let p = Self::matrix_function(&a, s, q, f64::exp);
        let r = Self::matrix_function(&a, s, q, phi1);
        let p2 = Self::matrix_function(&a, s, q, phi2);
        let ic = 1.0 / self.c;
        Propagator { p, q: [r[0] * ic, r[2] * ic], r, s: [p2[0] * ic, p2[2] * ic] }
    }

    /// Time scales and amplitudes of the step response, from the eigen-decomposition.
    pub fn modes(&self) -> Modes {
        let a = self.matrix();
        let (s, q) = self.eigen();
        let (mu_s, mu_f) = (s + q, s - q);
        // Spectral projector onto the slow mode, its (0,0) entry: (a00 − μ_f)/(μ_s − μ_f).
        let e_s = (a[0] - mu_f) / (mu_s - mu_f);
        let e_f = 1.0 - e_s;
        // T(t) = Σ (e^{μ t} − 1)/μ · E_00 / C · F; T_eq = F/λ.
        let a_s = -self.lambda * e_s / (mu_s * self.c);
        let a_f = -self.lambda * e_f / (mu_f * self.c);
        Modes { tau_f: -1.0 / mu_f, tau_s: -1.0 / mu_s, a_f, a_s }
    }

    /// Transient climate response (K): annual-mean `T` averaged over years 61–80 of a
    /// run whose forcing rises linearly to `f2x` at year 70 (1 %/yr CO2, CMIP
    /// definition), computed with the same exact integrator.
    pub fn tcr(&self, f2x: f64) -> f64 {
        let pr = self.propagator();
        let mut x = [0.0f64; 2];
        let mut acc = 0.0;
        for y in 0..80 {
            let f = f2x * (y as f64 + 0.5) / 70.0;
            if y >= 60 {
                acc += pr.r[0] * x[0] + pr.r[1] * x[1] + pr.s[0] * f;
            }
            x = [pr.p[0] * x[0] + pr.p[1] * x[1] + pr.q[0] * f, pr.p[2] * x[0] + pr.p[3] * x[1] + pr.q[1] * f];
        }
        acc / 20.0
    }
}

// ---------------------------------------------------------------------------
// The model runner
// ---------------------------------------------------------------------------

/// Which parameter gives the feedback strength.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Feedback {
    /// `ecs` (K), with `λ = F_2x / ecs` (default).
    #[default]
    Ecs,
    /// `lambda` (W m⁻² K⁻¹).
    Lambda,
}

/// What the output at year `y` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimeConvention {
    /// Mean over calendar year `y` (default; compare with annual-mean observations).
    #[default]
    AnnualMean,
    /// State at the end of year `y` (= 1 January of `y + 1`).
    EndOfYear,
}

const N_SLOTS: usize = 7;
const SLOT_NAMES: [&str; N_SLOTS] = ["feedback", "C", "C_d", "gamma", "epsilon", "aerosol_scale", "nonaerosol_scale"];
const FEEDBACK: usize = 0;
const CAP: usize = 1;
const CAP_D: usize = 2;
const GAMMA: usize = 3;
const EPS: usize = 4;
const AER: usize = 5;
const NONAER: usize = 6;

/// Builder for [`TwoLayerModel`].
#[derive(Debug, Clone)]
pub struct TwoLayerBuilder {
    forcing: Arc<Forcing>,
    feedback: Feedback,
    f2x: f64,
    convention: TimeConvention,
    ocean_heat_fraction: f64,
    fixed: Vec<(String, f64)>,
}

impl TwoLayerBuilder {
    /// Feedback parameter by `ecs` (default) or `lambda`.
    #[must_use]
    pub fn feedback(mut self, f: Feedback) -> Self {
        self.feedback = f;
        self
    }

    /// Forcing of doubled CO2 used to convert `ecs` to `λ` (default [`F2X_AR6`] = 3.93 W m⁻²).
    #[must_use]
    pub fn f2x(mut self, f2x: f64) -> Self {
        self.f2x = f2x;
        self
    }

    /// Annual means (default) or end-of-year states.
    #[must_use]
    pub fn time_convention(mut self, c: TimeConvention) -> Self {
        self.convention = c;
        self
    }

    /// Fraction of the model's heat uptake reported as "Ocean Heat Content" (default `1.0`).
    #[must_use]
    pub fn ocean_heat_fraction(mut self, f: f64) -> Self {
        self.ocean_heat_fraction = f;
        self
    }

    /// Fix parameter `name` to `value` (it is then not a model parameter).
    #[must_use]
    pub fn fix(mut self, name: &str, value: f64) -> Self {
        self.fixed.push((name.to_string(), value));
        self
    }

    /// Check and build.
    pub fn build(self) -> Result<TwoLayerModel> {
        if !(self.f2x > 0.0 && self.f2x.is_finite()) {
            return Err(Error::Config(format!("two_layer: f2x must be > 0, got {}", self.f2x)));
        }
        if !(self.ocean_heat_fraction > 0.0 && self.ocean_heat_fraction <= 1.0) {
            return Err(Error::Config(format!(
                "two_layer: ocean_heat_fraction must be in (0, 1], got {}",
                self.ocean_heat_fraction
            )));
        }
        let feedback_name = match self.feedback {
            Feedback::Ecs => "ecs",
            Feedback::Lambda => "lambda",
        };
        let slot_name = |i: usize| if i == FEEDBACK { feedback_name } else { SLOT_NAMES[i] };
        let n_slots = if self.forcing.has_components() { N_SLOTS } else { AER };
        let mut values = [f64::NAN; N_SLOTS];
        values[AER] = 1.0;
        values[NONAER] = 1.0;
        let mut is_fixed = [false; N_SLOTS];
        for (name, v) in &self.fixed {
            let i = (0..n_slots).find(|&i| slot_name(i) == name).ok_or_else(|| {
                let names: Vec<&str> = (0..n_slots).map(slot_name).collect();
                Error::Config(format!(
                    "two_layer: cannot fix '{name}': not a parameter of this model; its parameters are {names:?}{}",
                    if n_slots == AER { " (forcing scales exist only for forcing read from a file)" } else { "" }
                ))
            })?;
            if !v.is_finite() {
                return Err(Error::Config(format!("two_layer: fixed value of '{name}' is {v}")));
            }
            values[i] = *v;
            is_fixed[i] = true;
        }
        let free: Vec<usize> = (0..n_slots).filter(|&i| !is_fixed[i]).collect();
        let names = free.iter().map(|&i| slot_name(i).to_string()).collect();
        let times = Arc::new(self.forcing.years().to_vec());
        let out_names = Arc::new(OUTPUT_NAMES.iter().map(|s| s.to_string()).collect());
        let derived = DerivedPlan::new(&self.forcing);
        Ok(TwoLayerModel {
            derived,
            forcing: self.forcing,
            feedback: self.feedback,
            f2x: self.f2x,
            convention: self.convention,
            ohc_factor: self.ocean_heat_fraction * ZJ_PER_W_YR_M2,
            base_values: values,
            free,
            names,
            times,
            out_names,
        })
    }
}

/// The two-layer model as a [`ModelRunner`]: built once, then run for any number of
/// parameter vectors (see the module docs).
#[derive(Debug, Clone)]
pub struct TwoLayerModel {
    derived: DerivedPlan,
    forcing: Arc<Forcing>,
    feedback: Feedback,
    f2x: f64,
    convention: TimeConvention,
    ohc_factor: f64,
    base_values: [f64; N_SLOTS],
    free: Vec<usize>,
    names: Vec<String>,
    times: Arc<Vec<f64>>,
    out_names: Arc<Vec<String>>,
}

impl TwoLayerModel {
    /// Start building a model driven by `forcing` (shared, not copied, when given as an `Arc`).
    pub fn builder(forcing: impl Into<Arc<Forcing>>) -> TwoLayerBuilder {
        TwoLayerBuilder {
            forcing: forcing.into(),
            feedback: Feedback::Ecs,
            f2x: F2X_AR6,
            convention: TimeConvention::AnnualMean,
            ocean_heat_fraction: 1.0,
            fixed: Vec::new(),
        }
    }

    /// Build from the `[model] options` table of a run file (`[model] name = "two_layer"`); relative paths are resolved
    /// against `base_dir` (the config file's directory).
    ///
    /// ```toml
    /// feedback = "ecs"              # or "lambda" (default "ecs")
    /// f2x = 3.93                    # W m-2 (default 3.93, AR6)
    /// time_convention = "annual_mean"   # or "end_of_year" (default "annual_mean")
    /// ocean_heat_fraction = 0.91    # (default 1.0)
    /// fixed = { epsilon = 1.0 }     # parameters held constant (default none)
    /// [forcing]                     # either a file …
    /// file = "data/ERF_best_aggregates_1750-2024.csv"
    /// first_year = 1750             # (default: the file's first year)
    /// last_year = 2024              # (default: the file's last year)
    /// total_column = "total"        # (default "total")
    /// aerosol_columns = ["aerosol"] # (default ["aerosol"], or ARI + ACI)
    /// natural_columns = ["solar", "volcanic"]  # (default)
    /// time_column = "year"          # (default: the first column)
    /// # … or a constant (step) forcing:
    /// # constant = 7.8, first_year = 0, n_years = 150
    /// ```
    pub fn from_options(opts: &toml::Table, base_dir: &Path) -> Result<Self> {
        let known = ["feedback", "f2x", "time_convention", "ocean_heat_fraction", "fixed", "forcing"];
        check_keys(opts, &known, "model.options")?;
        let forcing_t = opts.get("forcing").and_then(|v| v.as_table()).ok_or_else(|| {
            Error::Config("two_layer: missing [model.options.forcing] table (give `file = \"…csv\"` or `constant = …`)".into())
        })?;
        let forcing = forcing_from_options(forcing_t, base_dir)?;
        let mut b = Self::builder(forcing);
        if let Some(v) = opts.get("feedback") {
            b = b.feedback(match v.as_str() {
                Some("ecs") => Feedback::Ecs,
                Some("lambda") => Feedback::Lambda,
                _ => return Err(Error::Config(format!("two_layer: feedback must be \"ecs\" or \"lambda\", got {v}"))),
            });
        }
        if let Some(v) = opts.get("f2x") {
            b = b.f2x(num(v, "f2x")?);
        }
        if let Some(v) = opts.get("time_convention") {
            b = b.time_convention(match v.as_str() {
                Some("annual_mean") => TimeConvention::AnnualMean,
                Some("end_of_year") => TimeConvention::EndOfYear,
                _ => {
                    return Err(Error::Config(format!(
                        "two_layer: time_convention must be \"annual_mean\" or \"end_of_year\", got {v}"
                    )))
                }
            });
        }
        if let Some(v) = opts.get("ocean_heat_fraction") {
            b = b.ocean_heat_fraction(num(v, "ocean_heat_fraction")?);
        }
        if let Some(v) = opts.get("fixed") {
            let t = v
                .as_table()
                .ok_or_else(|| Error::Config("two_layer: fixed must be a table, e.g. fixed = { epsilon = 1.0 }".into()))?;
            for (k, v) in t {
                b = b.fix(k, num(v, &format!("fixed.{k}"))?);
            }
        }
        b.build()
    }

    /// The forcing.
    pub fn forcing(&self) -> &Forcing {
        &self.forcing
    }

    /// `F_2x` used for `ecs` (W m⁻²).
    pub fn f2x(&self) -> f64 {
        self.f2x
    }

    /// Physical parameters and forcing scales `(aerosol, nonaerosol)` from a parameter
    /// vector in [`ModelRunner::param_names`] order.
    pub fn physical(&self, params: &[f64]) -> Result<(TwoLayerParams, f64, f64)> {
        if params.len() != self.free.len() {
            return Err(Error::LengthMismatch {
                what: format!("two_layer parameters {:?}", self.names),
                expected: self.free.len(),
                found: params.len(),
            });
        }
        let mut v = self.base_values;
        for (&slot, &x) in self.free.iter().zip(params) {
            v[slot] = x;
        }
        let lambda = match self.feedback {
            Feedback::Ecs => self.f2x / v[FEEDBACK],
            Feedback::Lambda => v[FEEDBACK],
        };
        let p = TwoLayerParams { lambda, c: v[CAP], c_d: v[CAP_D], gamma: v[GAMMA], epsilon: v[EPS] };
        p.validate()?;
        if !(v[AER].is_finite() && v[NONAER].is_finite()) {
            return Err(Error::Model(format!("two_layer: forcing scales must be finite, got {} and {}", v[AER], v[NONAER])));
        }
        Ok((p, v[AER], v[NONAER]))
    }

    /// Run into caller-provided buffers (each of length `forcing().len()`): no allocation.
    pub fn run_into(&self, params: &[f64], temp: &mut [f64], ohc: &mut [f64], imbalance: &mut [f64]) -> Result<()> {
        let (p, sa, sn) = self.physical(params)?;
        let n = self.forcing.len();
        if temp.len() != n || ohc.len() != n || imbalance.len() != n {
            return Err(Error::LengthMismatch {
                what: "two_layer output buffers vs forcing years".into(),
                expected: n,
                found: temp.len().min(ohc.len()).min(imbalance.len()),
            });
        }
        let pr = p.propagator();
        let (c, cd, lam, k) = (p.c, p.c_d, p.lambda, (p.epsilon - 1.0) * p.gamma);
        let fo = &*self.forcing;
        let (aer, oth, nat) = (&fo.aerosol()[..n], &fo.other()[..n], &fo.natural()[..n]);
        let (mut t, mut td) = (0.0f64, 0.0f64);
        let mean = self.convention == TimeConvention::AnnualMean;
        for i in 0..n {
            let f = sa * aer[i] + sn * oth[i] + nat[i];
            let t1 = pr.p[0] * t + pr.p[1] * td + pr.q[0] * f;
            let td1 = pr.p[2] * t + pr.p[3] * td + pr.q[1] * f;
            let (ot, otd) = if mean {
                (pr.r[0] * t + pr.r[1] * td + pr.s[0] * f, pr.r[2] * t + pr.r[3] * td + pr.s[1] * f)
            } else {
                (t1, td1)
            };
            temp[i] = ot;
            ohc[i] = self.ohc_factor * (c * ot + cd * otd);
            imbalance[i] = f - lam * ot - k * (ot - otd);
            t = t1;
            td = td1;
        }
        Ok(())
    }
}

/// Which derived quantities the forcing's years allow, with their year indices
/// (ECS and TCR always; the period quantities only when the forcing covers the
/// periods, and the aerosol ERF only for forcing by component).
#[derive(Debug, Clone, PartialEq)]
struct DerivedPlan {
    warming: Option<(Range<usize>, Range<usize>)>,
    aerosol: Option<Range<usize>>,
    ohu: Option<(usize, usize)>,
}

/// Periods of the derived quantities (inclusive calendar years).
pub const PRE_INDUSTRIAL: (f64, f64) = (1850.0, 1900.0);
/// Recent period of the realised warming (AR6 WG1 SPM uses 2011–2020; the 2024 update 2015–2024).
pub const RECENT: (f64, f64) = (2015.0, 2024.0);
/// Period of the aerosol ERF (AR6 WG1 Ch. 7 assesses 2005–2014 relative to 1750).
pub const AEROSOL_PERIOD: (f64, f64) = (2005.0, 2014.0);
/// Years between which the ocean heat uptake is counted (AR6 WG1 Ch. 7, 1971–2018).
pub const OHU_YEARS: (f64, f64) = (1971.0, 2018.0);

impl DerivedPlan {
    fn new(forcing: &Forcing) -> Self {
        let y = forcing.years();
        let warming = period_indices(y, PRE_INDUSTRIAL.0, PRE_INDUSTRIAL.1).zip(period_indices(y, RECENT.0, RECENT.1));
        let aerosol = period_indices(y, AEROSOL_PERIOD.0, AEROSOL_PERIOD.1).filter(|_| forcing.has_components());
        let at = |t: f64| y.iter().position(|&v| v == t);
        let ohu = at(OHU_YEARS.0).zip(at(OHU_YEARS.1));
        Self { warming, aerosol, ohu }
    }

    fn quantities(&self) -> Vec<DerivedQuantity> {
        let mut q = vec![
            DerivedQuantity::new("ECS", "K", "equilibrium climate sensitivity F_2x / lambda"),
            DerivedQuantity::new(
                "TCR",
                "K",
                "transient climate response: mean surface warming in years 61-80 of a 1 %/yr CO2 run (forcing reaching F_2x in year 70)",
            ),
        ];
        if self.warming.is_some() {
            q.push(DerivedQuantity::new(
                "warming_2015-2024",
                "K",
                "modelled surface warming, mean of 2015-2024 minus mean of 1850-1900",
            ));
        }
        if self.aerosol.is_some() {
            q.push(DerivedQuantity::new(
                "aerosol_ERF_2005-2014",
                "W m-2",
                "aerosol_scale times the mean aerosol ERF of 2005-2014",
            ));
        }
        if self.ohu.is_some() {
            q.push(DerivedQuantity::new(
                "ocean_heat_uptake_1971-2018",
                "ZJ",
                "modelled 'Ocean Heat Content' (annual mean) of 2018 minus that of 1971",
            ));
        }
        q
    }
}

impl ModelRunner for TwoLayerModel {
    fn param_names(&self) -> Vec<String> {
        self.names.clone()
    }

    fn derived_quantities(&self) -> Vec<DerivedQuantity> {
        self.derived.quantities()
    }

    /// ECS and TCR from the parameters (TCR runs its own 80-year 1 %/yr experiment with
    /// the exact integrator); the period quantities from `output`, the model's run.
    fn derive(&self, params: &[f64], output: &ModelOutput, out: &mut [f64]) -> Result<()> {
        let (p, sa, _) = self.physical(params)?;
        let n = self.forcing.len();
        let series = |i: usize| -> Result<&[f64]> {
            output.get(OUTPUT_NAMES[i]).filter(|s| s.len() == n).ok_or_else(|| {
                Error::Model(format!("two_layer derive: the output has no '{}' on the forcing years", OUTPUT_NAMES[i]))
            })
        };
        let mut k = 0;
        let mut put = |v: f64| {
            out[k] = v;
            k += 1;
        };
        put(p.ecs(self.f2x));
        put(p.tcr(self.f2x));
        if let Some((pre, recent)) = &self.derived.warming {
            let t = series(0)?;
            put(mean(t, recent.clone()) - mean(t, pre.clone()));
        }
        if let Some(r) = &self.derived.aerosol {
            put(sa * mean(self.forcing.aerosol(), r.clone()));
        }
        if let Some((a, b)) = self.derived.ohu {
            let h = series(1)?;
            put(h[b] - h[a]);
        }
        Ok(())
    }

    fn output_names(&self) -> Vec<String> {
        self.out_names.to_vec()
    }

    /// Forcing read from a file (by component); `None` for constant or step forcing,
    /// which has no scenario to extend.
    fn forcing(&self) -> Option<&Forcing> {
        self.forcing.has_components().then_some(&*self.forcing)
    }

    /// The same model on another forcing by component: the parameters, their order,
    /// the fixed values, `f2x`, the time convention and the ocean heat fraction are
    /// kept, so the aerosol and non-aerosol scales multiply the new forcing's
    /// components as they multiplied the calibration's. Derived quantities follow
    /// the new forcing's years.
    fn with_forcing(&self, forcing: Forcing) -> Result<Arc<dyn ModelRunner>> {
        if !self.forcing.has_components() {
            return Err(Error::Unsupported(
                "two_layer: this model runs on a constant or step forcing (an idealised experiment such as abrupt-4xCO2), which has no aerosol/natural components for a scenario to continue; project a model calibrated with forcing read from a file".into(),
            ));
        }
        if !forcing.has_components() {
            return Err(Error::Config(
                "two_layer: a scenario forcing must be given by component (aerosol, natural, other)".into(),
            ));
        }
        let mut m = self.clone();
        m.derived = DerivedPlan::new(&forcing);
        m.times = Arc::new(forcing.years().to_vec());
        m.forcing = Arc::new(forcing);
        Ok(Arc::new(m))
    }

    fn run(&self, params: &[f64]) -> Result<ModelOutput> {
        let n = self.forcing.len();
        let (mut t, mut h, mut nn) = (vec![0.0; n], vec![0.0; n], vec![0.0; n]);
        self.run_into(params, &mut t, &mut h, &mut nn)?;
        ModelOutput::from_shared(self.times.clone(), self.out_names.clone(), vec![t, h, nn])
    }
}

fn check_keys(t: &toml::Table, known: &[&str], section: &str) -> Result<()> {
    for k in t.keys() {
        if !known.contains(&k.as_str()) {
            return Err(Error::Config(format!("two_layer: unknown key '{k}' in [{section}]; the known keys are {known:?}")));
        }
    }
    Ok(())
}

fn num(v: &toml::Value, what: &str) -> Result<f64> {
    v.as_float()
        .or_else(|| v.as_integer().map(|i| i as f64))
        .ok_or_else(|| Error::Config(format!("two_layer: {what} must be a number, got {v}")))
}

fn strings(v: &toml::Value, what: &str) -> Result<Vec<String>> {
    v.as_array()
        .and_then(|a| a.iter().map(|s| s.as_str().map(String::from)).collect::<Option<Vec<_>>>())
        .ok_or_else(|| Error::Config(format!("two_layer: forcing.{what} must be a list of column names, got {v}")))
}

fn forcing_from_options(t: &toml::Table, base_dir: &Path) -> Result<Forcing> {
    let known = [
        "file",
        "constant",
        "steps",
        "first_year",
        "last_year",
        "n_years",
        "total_column",
        "aerosol_columns",
        "natural_columns",
        "time_column",
    ];
    check_keys(t, &known, "model.options.forcing")?;
    let get = |k: &str| t.get(k).map(|v| num(v, &format!("forcing.{k}"))).transpose();
    let first = get("first_year")?;
    let last = get("last_year")?;
    let n_years = get("n_years")?;
    let kinds = ["file", "constant", "steps"].iter().filter(|k| t.contains_key(**k)).count();
    if kinds != 1 {
        return Err(Error::Config(
            "two_layer: [model.options.forcing] needs exactly one of `file = \"…csv\"`, `constant = <W m-2>` or `steps = [[year, value], …]`".into(),
        ));
    }
    if let Some(f) = t.get("file") {
        let file = f.as_str().ok_or_else(|| Error::Config(format!("two_layer: forcing.file must be a path string, got {f}")))?;
        if n_years.is_some() {
            return Err(Error::Config(
                "two_layer: forcing.n_years is for constant/step forcing; use first_year/last_year with a file".into(),
            ));
        }
        let mut cols = ForcingColumns::default();
        if let Some(v) = t.get("total_column") {
            cols.total =
                v.as_str().ok_or_else(|| Error::Config("two_layer: forcing.total_column must be a string".into()))?.into();
        }
        if let Some(v) = t.get("aerosol_columns") {
            cols.aerosol = strings(v, "aerosol_columns")?;
        }
        if let Some(v) = t.get("natural_columns") {
            cols.natural = strings(v, "natural_columns")?;
        }
        if let Some(v) = t.get("time_column") {
            cols.time =
                Some(v.as_str().ok_or_else(|| Error::Config("two_layer: forcing.time_column must be a string".into()))?.into());
        }
        let path = base_dir.join(file);
        let range = match (first, last) {
            (None, None) => None,
            (a, b) => Some((a.unwrap_or(f64::NEG_INFINITY), b.unwrap_or(f64::INFINITY))),
        };
        return Forcing::from_csv(&path, &cols, range);
    }
    let first = first.unwrap_or(0.0);
    match (n_years, last) {
        (Some(n), None) => crate::limits::check_time_points("two_layer: forcing.n_years", n)?,
        (None, Some(l)) => crate::limits::check_time_points("two_layer: forcing first_year..last_year", l - first + 1.0)?,
        _ => {}
    }
    let n = match (n_years, last) {
        (Some(n), None) if n >= 1.0 && n.fract() == 0.0 => n as usize,
        (None, Some(l)) if l >= first => (l - first) as usize + 1,
        _ => {
            return Err(Error::Config(
                "two_layer: constant/step forcing needs either n_years (a positive integer) or last_year (>= first_year)".into(),
            ))
        }
    };
    if let Some(v) = t.get("constant") {
        return Forcing::constant(num(v, "forcing.constant")?, first, n);
    }
    let steps_v = t.get("steps").expect("checked above");
    let steps = steps_v
        .as_array()
        .and_then(|a| {
            a.iter()
                .map(|p| {
                    let p = p.as_array()?;
                    if p.len() != 2 {
                        return None;
                    }
                    Some((num(&p[0], "").ok()?, num(&p[1], "").ok()?))
                })
                .collect::<Option<Vec<_>>>()
        })
        .ok_or_else(|| Error::Config(format!("two_layer: forcing.steps must be [[year, W m-2], …], got {steps_v}")))?;
    Forcing::step(&steps, first, n)
}

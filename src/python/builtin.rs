//! Built-in Rust models reachable by name from Python.
//!
//! Names are looked up in the engine's model registry
//! ([`crate::models::registry`], the same models as the CLI's `[model] name`),
//! plus `one_box`, a one-layer energy-balance toy model kept here for the Python
//! tests and examples.

use std::sync::Arc;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::models::registry::{build_model, BuiltModel, ModelContext};
use crate::runner::{ModelOutput, ModelRunner};

/// One-box energy balance: `C dT/dt = F(t) − λ T`, forward Euler on the forcing's
/// time axis, `T(t0) = 0`. Parameters `lambda` (W m⁻² K⁻¹) and `heat_capacity`
/// (W yr m⁻² K⁻¹); output `tas` (K).
#[derive(Debug, Clone)]
pub struct OneBox {
    times: Arc<Vec<f64>>,
    forcing: Vec<f64>,
    names: Arc<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OneBoxOptions {
    times: Option<Vec<f64>>,
    forcing: Option<Vec<f64>>,
}

impl OneBox {
    /// Defaults: years 1850–2020 and a forcing ramp of 0.02 W m⁻² per year.
    pub fn new(times: Option<Vec<f64>>, forcing: Option<Vec<f64>>) -> Result<Self> {
        let times = times.unwrap_or_else(|| (1850..=2020).map(f64::from).collect());
        let forcing = forcing.unwrap_or_else(|| times.iter().map(|t| 0.02 * (t - times[0])).collect());
        if times.len() != forcing.len() {
            return Err(Error::LengthMismatch {
                what: "one_box model: times vs forcing".into(),
                expected: times.len(),
                found: forcing.len(),
            });
        }
        if times.len() < 2 || times.windows(2).any(|w| w[1].partial_cmp(&w[0]) != Some(std::cmp::Ordering::Greater)) {
            return Err(Error::Config("one_box model: times must increase strictly and have at least 2 points".into()));
        }
        Ok(Self { times: Arc::new(times), forcing, names: Arc::new(vec!["tas".to_string()]) })
    }
}

impl ModelRunner for OneBox {
    fn param_names(&self) -> Vec<String> {
        vec!["lambda".into(), "heat_capacity".into()]
    }
    fn output_names(&self) -> Vec<String> {
        (*self.names).clone()
    }
    fn run(&self, p: &[f64]) -> Result<ModelOutput> {
        let (lambda, c) = (p[0], p[1]);
        let n = self.times.len();
        let mut t = vec![0.0; n];
        for i in 0..n - 1 {
            let dt = self.times[i + 1] - self.times[i];
            t[i + 1] = t[i] + dt * (self.forcing[i] - lambda * t[i]) / c;
        }
        ModelOutput::from_shared(self.times.clone(), self.names.clone(), vec![t])
    }
}

/// Names of the built-in models this build knows.
pub fn names() -> Vec<&'static str> {
    let mut v: Vec<&'static str> = crate::models::registry::MODEL_NAMES.to_vec();
    v.push("one_box");
    v
}

/// Build a built-in model from its name and options (a JSON object). Relative
/// paths in the options resolve against the current directory.
pub fn build(name: &str, options: serde_json::Value) -> Result<Arc<dyn ModelRunner>> {
    if name == "one_box" {
        let o: OneBoxOptions = serde_json::from_value(options)
            .map_err(|e| Error::Config(format!("model 'one_box' options: {e}; known options: times, forcing")))?;
        return Ok(Arc::new(OneBox::new(o.times, o.forcing)?));
    }
    if !crate::models::registry::MODEL_NAMES.contains(&name) {
        return Err(Error::Config(format!("unknown model '{name}'; the built-in models are {:?}", names())));
    }
    let table = match toml::Value::try_from(&options) {
        Ok(toml::Value::Table(t)) => t,
        Ok(_) => return Err(Error::Config(format!("model '{name}': options must be a dict"))),
        Err(e) => return Err(Error::Config(format!("model '{name}': options cannot be represented ({e})"))),
    };
    let cwd = std::env::current_dir().unwrap_or_else(|_| ".".into());
    let ctx = ModelContext { base_dir: &cwd, param_names: &[] };
    match build_model(name, &table, &ctx)? {
        BuiltModel::Runner(r) => Ok(r),
        BuiltModel::Density(_) => Err(Error::Config(format!(
            "model '{name}' is a log-density, not a model with outputs to compare with a target; \
             sample it with the CLI, or write it as EnsembleSampler(log_prob_fn=..., ndim=...)"
        ))),
    }
}

//! Models: the [`ModelRunner`] trait, its output, and generic runners.

use std::collections::HashMap;
use std::sync::Arc;

use rayon::prelude::*;

use crate::error::{Error, Result};

mod command;
pub use command::CommandRunner;

/// Named time series on a common time axis.
///
/// Names and times are shared (`Arc`) so that a model built once can hand out
/// outputs without copying them for every evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelOutput {
    times: Arc<Vec<f64>>,
    names: Arc<Vec<String>>,
    values: Vec<Vec<f64>>,
}

impl ModelOutput {
    /// Build from shared times/names and one value vector per name.
    pub fn from_shared(times: Arc<Vec<f64>>, names: Arc<Vec<String>>, values: Vec<Vec<f64>>) -> Result<Self> {
        if names.len() != values.len() {
            return Err(Error::LengthMismatch {
                what: "model output names vs series".into(),
                expected: names.len(),
                found: values.len(),
            });
        }
        for (n, v) in names.iter().zip(&values) {
            if v.len() != times.len() {
                return Err(Error::LengthMismatch {
                    what: format!("model output '{n}' vs its times"),
                    expected: times.len(),
                    found: v.len(),
                });
            }
        }
        Ok(Self { times, names, values })
    }

    /// Build from times and `(name, values)` pairs.
    pub fn new(times: Vec<f64>, series: Vec<(String, Vec<f64>)>) -> Result<Self> {
        let (names, values): (Vec<_>, Vec<_>) = series.into_iter().unzip();
        Self::from_shared(Arc::new(times), Arc::new(names), values)
    }

    /// Common time axis.
    pub fn times(&self) -> &[f64] {
        &self.times
    }

    /// Variable names.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Series by name.
    pub fn get(&self, name: &str) -> Option<&[f64]> {
        self.names.iter().position(|n| n == name).map(|i| self.values[i].as_slice())
    }

    /// Series by position.
    pub fn values(&self) -> &[Vec<f64>] {
        &self.values
    }
}

/// A model that maps a parameter vector to named time series.
///
/// `params` are physical values in the order of [`ModelRunner::param_names`].
/// Implementations must be pure functions of `params` (no hidden state that
/// changes between calls): climcal's bitwise reproducibility depends on it.
pub trait ModelRunner: Send + Sync {
    /// Names of the parameters `run` expects, in order.
    fn param_names(&self) -> Vec<String>;

    /// Names of the series `run` returns.
    fn output_names(&self) -> Vec<String> {
        Vec::new()
    }

    /// Run once.
    fn run(&self, params: &[f64]) -> Result<ModelOutput>;

    /// Run a batch; parallel (rayon) by default. A panic in one run is an `Err`
    /// for that run only.
    fn run_batch(&self, batch: &[Vec<f64>]) -> Vec<Result<ModelOutput>> {
        batch.par_iter().map(|p| run_catching(self, p)).collect()
    }

    /// The derived quantities this model computes per sample (name, unit,
    /// description), in the order [`ModelRunner::derive`] writes them; none by
    /// default. See [`crate::derived`].
    fn derived_quantities(&self) -> Vec<crate::derived::DerivedQuantity> {
        Vec::new()
    }

    /// Compute the derived quantities for `params` into `out` (length
    /// `derived_quantities().len()`), given `output = self.run(params)`. Must be a
    /// pure function of `params`, like `run`.
    fn derive(&self, params: &[f64], output: &ModelOutput, out: &mut [f64]) -> Result<()> {
        let _ = (params, output, out);
        Ok(())
    }

    /// The forcing by component this model runs on, when it is driven by one
    /// (the two-layer model with forcing from a file); `None` by default.
    /// Scenario projections ([`crate::projection`]) extend it.
    fn forcing(&self) -> Option<&crate::models::forcing::Forcing> {
        None
    }

    /// The same model (same options, fixed values and parameter order) driven by
    /// `forcing` instead: what a scenario projection runs. Models without
    /// [`ModelRunner::forcing`] cannot, and say so (the default).
    fn with_forcing(&self, forcing: crate::models::forcing::Forcing) -> Result<Arc<dyn ModelRunner>> {
        let _ = forcing;
        Err(Error::Unsupported(
            "this model is not driven by a forcing series that a scenario can extend (only the built-in two_layer model with forcing read from a file is)".into(),
        ))
    }
}

/// Run a model, turning a panic into [`Error::Model`].
pub fn run_catching<M: ModelRunner + ?Sized>(model: &M, params: &[f64]) -> Result<ModelOutput> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| model.run(params))) {
        Ok(r) => r,
        Err(p) => Err(Error::Model(format!("model panicked: {}", panic_message(&p)))),
    }
}

pub(crate) fn panic_message(p: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}

/// Forward every method of [`ModelRunner`] through a pointer type.
macro_rules! forward_model_runner {
    ($($ptr:ident),*) => {$(
        impl<M: ModelRunner + ?Sized> ModelRunner for $ptr<M> {
            fn param_names(&self) -> Vec<String> {
                (**self).param_names()
            }
            fn output_names(&self) -> Vec<String> {
                (**self).output_names()
            }
            fn run(&self, params: &[f64]) -> Result<ModelOutput> {
                (**self).run(params)
            }
            fn run_batch(&self, batch: &[Vec<f64>]) -> Vec<Result<ModelOutput>> {
                (**self).run_batch(batch)
            }
            fn derived_quantities(&self) -> Vec<crate::derived::DerivedQuantity> {
                (**self).derived_quantities()
            }
            fn derive(&self, params: &[f64], output: &ModelOutput, out: &mut [f64]) -> Result<()> {
                (**self).derive(params, output, out)
            }
            fn forcing(&self) -> Option<&crate::models::forcing::Forcing> {
                (**self).forcing()
            }
            fn with_forcing(&self, forcing: crate::models::forcing::Forcing) -> Result<Arc<dyn ModelRunner>> {
                (**self).with_forcing(forcing)
            }
        }
    )*};
}

forward_model_runner!(Arc, Box);

/// A runner from a closure: `|params: &HashMap<String, f64>| -> Result<ModelOutput>`
/// or, faster, from a positional closure with [`ClosureRunner::positional`].
pub struct ClosureRunner<F> {
    names: Vec<String>,
    outputs: Vec<String>,
    f: F,
}

impl<F> ClosureRunner<F>
where
    F: Fn(&[f64]) -> Result<ModelOutput> + Send + Sync,
{
    /// Closure over the parameter vector in `names` order.
    pub fn positional(names: &[&str], outputs: &[&str], f: F) -> Self {
        Self { names: names.iter().map(|s| s.to_string()).collect(), outputs: outputs.iter().map(|s| s.to_string()).collect(), f }
    }
}

impl<F> ModelRunner for ClosureRunner<F>
where
    F: Fn(&[f64]) -> Result<ModelOutput> + Send + Sync,
{
    fn param_names(&self) -> Vec<String> {
        self.names.clone()
    }
    fn output_names(&self) -> Vec<String> {
        self.outputs.clone()
    }
    fn run(&self, params: &[f64]) -> Result<ModelOutput> {
        (self.f)(params)
    }
}

/// A runner from a closure over a name → value map (convenient, slower).
pub fn named_closure_runner(
    names: &[&str],
    outputs: &[&str],
    f: impl Fn(&HashMap<String, f64>) -> Result<ModelOutput> + Send + Sync,
) -> ClosureRunner<impl Fn(&[f64]) -> Result<ModelOutput> + Send + Sync> {
    let keys: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    ClosureRunner::positional(names, outputs, move |p: &[f64]| {
        let m: HashMap<String, f64> = keys.iter().cloned().zip(p.iter().copied()).collect();
        f(&m)
    })
}

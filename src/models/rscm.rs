//! RSCM models in-process (feature `rscm`): `[model] name = "rscm"`.
//!
//! An [RSCM](https://github.com/lewisjared/rscm) model is given as RSCM
//! serializes it (serde: TOML, or JSON where RSCM wrote NaN as `null`): a graph
//! whose `components.nodes` are typetag-tagged (`type = "CO2ERF"`), each with
//! its `parameters` table, and a `collection` of time series (exogenous inputs
//! and the state the run fills in). RSCM 0.5.0's model fields are private, so a
//! built model cannot be re-parameterised: [`RscmRunner`] parses the text once
//! into a value tree, and per evaluation copies the tree, writes the parameter
//! values at the paths resolved at start-up, deserializes the model from the
//! tree (no text is re-read) and runs it. Costs per evaluation are measured in
//! the README.
//!
//! Every parameter path is checked at start-up: a component type or parameter
//! that the model lacks is an error naming it and listing what exists, as is an
//! output variable the model does not have or a model saved after it ran.

use std::path::Path;
use std::sync::Arc;

use indexmap::IndexMap;
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::models::registry::{parse_options, BuiltModel, ModelContext};
use crate::runner::{ModelOutput, ModelRunner};

use rscm_core::model::Model;

/// Where one climcal parameter goes in the model: the `index`-th component of
/// type `component`, at `parameter` (a key of its `parameters` table; dotted for
/// nested tables, e.g. `solver_options.step_size` where the first key is not a
/// parameter).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ParameterPath {
    /// Component type, as in the model's `type = "…"`.
    pub component: String,
    /// Key (dotted for nested keys) in the component's `parameters`.
    pub parameter: String,
    /// Which component of that type, counting from 0 (needed only when the model has several).
    pub index: Option<usize>,
}

impl std::fmt::Display for ParameterPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.index {
            Some(i) => write!(f, "{}[{i}].{}", self.component, self.parameter),
            None => write!(f, "{}.{}", self.component, self.parameter),
        }
    }
}

/// Keys from the model's node table down to one number.
type Keys = Vec<String>;

/// An RSCM model as a [`ModelRunner`] (see the module docs).
pub struct RscmRunner {
    template: toml::Value,
    names: Vec<String>,
    /// Per parameter: node index in `components.nodes` and keys below the node.
    paths: Vec<(usize, Keys)>,
    /// climcal output names and the RSCM variables they read.
    outputs: Arc<Vec<String>>,
    variables: Vec<String>,
    times: Arc<Vec<f64>>,
}

impl std::fmt::Debug for RscmRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RscmRunner(parameters {:?}, outputs {:?})", self.names, self.outputs)
    }
}

/// Parse RSCM's serialization: TOML, or JSON (`null` → NaN, as RSCM writes NaN to JSON).
pub fn parse_model_text(text: &str) -> Result<toml::Value> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') {
        let v: serde_json::Value =
            serde_json::from_str(text).map_err(|e| Error::Config(format!("RSCM model: not valid JSON: {e}")))?;
        Ok(json_to_toml(v))
    } else {
        text.parse::<toml::Table>()
            .map(toml::Value::Table)
            .map_err(|e| Error::Config(format!("RSCM model: not valid TOML (or JSON): {}", e.message())))
    }
}

fn json_to_toml(v: serde_json::Value) -> toml::Value {
    use serde_json::Value as J;
    match v {
        J::Null => toml::Value::Float(f64::NAN),
        J::Bool(b) => toml::Value::Boolean(b),
        J::Number(n) => match n.as_i64() {
            Some(i) => toml::Value::Integer(i),
            None => toml::Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        J::String(s) => toml::Value::String(s),
        J::Array(a) => toml::Value::Array(a.into_iter().map(json_to_toml).collect()),
        J::Object(o) => toml::Value::Table(o.into_iter().map(|(k, v)| (k, json_to_toml(v))).collect()),
    }
}

fn nodes(v: &toml::Value) -> Result<&Vec<toml::Value>> {
    v.get("components")
        .and_then(|c| c.get("nodes"))
        .and_then(|n| n.as_array())
        .ok_or_else(|| Error::Config("RSCM model: no components.nodes: is this a model as RSCM serializes it?".into()))
}

fn node_type(n: &toml::Value) -> &str {
    n.get("type").and_then(|t| t.as_str()).unwrap_or("?")
}

fn keys_of(v: &toml::Value) -> Vec<String> {
    v.as_table().map(|t| t.keys().cloned().collect()).unwrap_or_default()
}

/// The number at `keys` below `v`, mutably.
fn number_at<'a>(v: &'a mut toml::Value, keys: &[String]) -> Option<&'a mut toml::Value> {
    let mut cur = v;
    for k in keys {
        cur = cur.get_mut(k.as_str())?;
    }
    matches!(cur, toml::Value::Float(_) | toml::Value::Integer(_)).then_some(cur)
}

/// Resolve a [`ParameterPath`] to (node index, keys below the node), or an error
/// naming the path and listing what the model has.
fn resolve(model: &toml::Value, name: &str, p: &ParameterPath) -> Result<(usize, Keys)> {
    let nodes = nodes(model)?;
    let matching: Vec<usize> = (0..nodes.len()).filter(|&i| node_type(&nodes[i]) == p.component).collect();
    let mut types: Vec<&str> = nodes.iter().map(node_type).filter(|t| *t != "NullComponent").collect();
    types.dedup();
    let node = match (matching.len(), p.index) {
        (0, _) => {
            return Err(Error::Config(format!(
                "model 'rscm': parameter '{name}' → {p}: the model has no component of type '{}'; its components are {}",
                p.component,
                types.join(", ")
            )))
        }
        (1, None | Some(0)) => matching[0],
        (n, None) => {
            return Err(Error::Config(format!(
                "model 'rscm': parameter '{name}' → {p}: the model has {n} components of type '{}'; say which with index = 0..{}",
                p.component,
                n - 1
            )))
        }
        (n, Some(i)) if i < n => matching[i],
        (n, Some(i)) => {
            return Err(Error::Config(format!(
                "model 'rscm': parameter '{name}' → {p}: index {i} but the model has {n} component(s) of type '{}'",
                p.component
            )))
        }
    };
    let dotted: Vec<String> = p.parameter.split('.').map(str::to_string).collect();
    let n = &nodes[node];
    let in_params = n.get("parameters").is_some_and(|t| t.get(dotted[0].as_str()).is_some());
    let keys: Keys = if in_params { std::iter::once("parameters".to_string()).chain(dotted).collect() } else { dotted };
    let mut probe = n.clone();
    if number_at(&mut probe, &keys).is_none() {
        let params = n.get("parameters").map(keys_of).unwrap_or_default();
        let other: Vec<String> = keys_of(n).into_iter().filter(|k| k != "type" && k != "parameters").collect();
        return Err(Error::Config(format!(
            "model 'rscm': parameter '{name}' → {p}: {} has no number at '{}'; its parameters are {}{}",
            p.component,
            p.parameter,
            if params.is_empty() { "(none)".to_string() } else { params.join(", ") },
            if other.is_empty() { String::new() } else { format!(" (other settings: {})", other.join(", ")) }
        )));
    }
    Ok((node, keys))
}

/// Names of the model's time series (`collection.timeseries[].name`).
fn variable_names(model: &toml::Value) -> Vec<String> {
    model
        .get("collection")
        .and_then(|c| c.get("timeseries"))
        .and_then(|t| t.as_array())
        .map(|a| a.iter().filter_map(|i| i.get("name").and_then(|n| n.as_str()).map(str::to_string)).collect())
        .unwrap_or_default()
}

impl RscmRunner {
    /// A runner for the model `text` (TOML or JSON as RSCM serializes it), with
    /// climcal parameters mapped to component parameters and outputs as
    /// `(climcal name, RSCM variable)`. Checks every path and runs the model once
    /// at its own parameter values.
    pub fn new(text: &str, parameters: &IndexMap<String, ParameterPath>, outputs: &[(String, String)]) -> Result<Self> {
        let template = parse_model_text(text)?;
        if let Some(i) = template.get("time_index").and_then(|t| t.as_integer()) {
            if i != 0 {
                return Err(Error::Config(format!(
                    "model 'rscm': the model was saved after {i} step(s) (time_index = {i}); save it before running it"
                )));
            }
        }
        if parameters.is_empty() {
            return Err(Error::Config("model 'rscm': options.parameters maps no parameter to the model".into()));
        }
        if outputs.is_empty() {
            return Err(Error::Config("model 'rscm': options.outputs names no variable".into()));
        }
        let mut paths = Vec::with_capacity(parameters.len());
        for (name, p) in parameters {
            paths.push(resolve(&template, name, p)?);
        }
        let have = variable_names(&template);
        for (_, v) in outputs {
            if !have.contains(v) {
                return Err(Error::Config(format!(
                    "model 'rscm': output variable '{v}' is not in the model; its variables are {}",
                    have.join(", ")
                )));
            }
        }
        let mut r = Self {
            template,
            names: parameters.keys().cloned().collect(),
            paths,
            outputs: Arc::new(outputs.iter().map(|(n, _)| n.clone()).collect()),
            variables: outputs.iter().map(|(_, v)| v.clone()).collect(),
            times: Arc::new(Vec::new()),
        };
        let model = r.build_from(r.template.clone())?;
        let first = r.variables.first().cloned().unwrap_or_default();
        let data = model.timeseries().get_data(&first).expect("checked above");
        let ts = data.as_scalar().ok_or_else(|| {
            Error::Config(format!(
                "model 'rscm': output variable '{first}' is on a {} grid; only scalar (global) outputs are supported",
                data.grid_name()
            ))
        })?;
        r.times = Arc::new(ts.time_axis().values().to_vec());
        // One run at the model's own values: a model that cannot run fails here.
        let theta: Vec<f64> = r
            .paths
            .iter()
            .map(|(i, k)| {
                let mut n = nodes(&r.template).expect("checked")[*i].clone();
                number_at(&mut n, k).and_then(|v| v.as_float().or(v.as_integer().map(|i| i as f64))).unwrap_or(f64::NAN)
            })
            .collect();
        crate::runner::run_catching(&r, &theta)
            .map_err(|e| Error::Config(format!("model 'rscm': the model does not run: {e}")))?;
        Ok(r)
    }

    fn build_from(&self, v: toml::Value) -> Result<Model> {
        v.try_into::<Model>().map_err(|e| Error::Model(format!("RSCM model: cannot build it from the model file: {e}")))
    }

    /// Build the model at `params` (the tree copy, the parameter writes and the deserialization).
    pub fn build(&self, params: &[f64]) -> Result<Model> {
        let mut v = self.template.clone();
        let nodes = v.get_mut("components").and_then(|c| c.get_mut("nodes")).and_then(|n| n.as_array_mut()).expect("checked");
        for ((i, keys), x) in self.paths.iter().zip(params) {
            *number_at(&mut nodes[*i], keys).expect("checked at start-up") = toml::Value::Float(*x);
        }
        self.build_from(v)
    }

    /// The named outputs of a model that has run.
    pub fn outputs_of(&self, model: &Model) -> Result<ModelOutput> {
        let mut series = Vec::with_capacity(self.variables.len());
        for v in &self.variables {
            let ts = model
                .timeseries()
                .get_data(v)
                .and_then(|d| d.as_scalar())
                .ok_or_else(|| Error::Model(format!("RSCM model: no scalar variable '{v}' after the run")))?;
            series.push(ts.values().column(0).to_vec());
        }
        ModelOutput::from_shared(self.times.clone(), self.outputs.clone(), series)
    }
}

impl ModelRunner for RscmRunner {
    fn param_names(&self) -> Vec<String> {
        self.names.clone()
    }
    fn output_names(&self) -> Vec<String> {
        (*self.outputs).clone()
    }
    fn run(&self, params: &[f64]) -> Result<ModelOutput> {
        let mut m = self.build(params)?;
        m.run();
        self.outputs_of(&m)
    }
}

/// Outputs: RSCM variable names as they are, or `{climcal name = "RSCM variable"}`.
#[derive(Deserialize)]
#[serde(untagged)]
enum Outputs {
    Same(Vec<String>),
    Renamed(IndexMap<String, String>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RscmOptions {
    file: String,
    parameters: IndexMap<String, ParameterPath>,
    outputs: Outputs,
}

/// `rscm`: an RSCM model file run in-process ([`RscmRunner`]). Options: `file`
/// (TOML or JSON as RSCM serializes a model; relative to the run file),
/// `parameters` (`NAME = { component = "CO2ERF", parameter = "erf_2xco2" }` per
/// `[parameters]` entry; `index = k` picks the k-th component of a type), `outputs`
/// (RSCM variable names, or `{ climcal_name = "RSCM variable" }` to give them
/// shorter names for `[target.variables]`).
pub fn from_options(options: &toml::Table, ctx: &ModelContext<'_>) -> Result<BuiltModel> {
    let o: RscmOptions = parse_options("rscm", options)?;
    let path = ctx.resolve(Path::new(&o.file));
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Error::Config(format!("model 'rscm': cannot read options.file {}: {e}", path.display())))?;
    let outputs: Vec<(String, String)> = match o.outputs {
        Outputs::Same(v) => v.into_iter().map(|s| (s.clone(), s)).collect(),
        Outputs::Renamed(m) => m.into_iter().collect(),
    };
    let r = RscmRunner::new(&text, &o.parameters, &outputs).map_err(|e| match e {
        Error::Config(m) => Error::Config(format!("{m} (in {})", path.display())),
        e => e,
    })?;
    Ok(BuiltModel::Runner(Arc::new(r)))
}

/// A two-component RSCM model for examples, tests and benchmarks: RSCM's one-box
/// `CarbonCycle` (CO₂ emissions → concentration; exogenous surface temperature held
/// at 0 K) feeding `CO2ERF` (concentration → effective radiative forcing), on
/// yearly `years` with `emissions` (GtC/yr, one per year) and pre-industrial
/// 278 ppm. Returns the model as RSCM serializes it (TOML), unrun.
pub fn carbon_cycle_erf_model(years: &[f64], emissions: &[f64], tau: f64, erf_2xco2: f64) -> Result<String> {
    let model = carbon_cycle_erf(years, emissions, tau, erf_2xco2)?;
    toml::to_string(&model).map_err(|e| Error::Model(format!("RSCM example model: cannot serialize it: {e}")))
}

/// The model of [`carbon_cycle_erf_model`], built (for code that hands RSCM
/// models to RSCM's own tools, e.g. rscm-calibrate's runner).
pub fn carbon_cycle_erf(years: &[f64], emissions: &[f64], tau: f64, erf_2xco2: f64) -> Result<rscm_core::model::Model> {
    use ndarray_h5::Array1;
    use rscm_components::{CO2ERFParameters, CarbonCycle, CarbonCycleParameters, CO2ERF};
    use rscm_core::model::ModelBuilder;
    use rscm_core::timeseries::{TimeAxis, Timeseries};

    if years.len() != emissions.len() || years.len() < 2 {
        return Err(Error::LengthMismatch {
            what: "RSCM example: emissions vs years".into(),
            expected: years.len(),
            found: emissions.len(),
        });
    }
    let conc_pi = 278.0;
    let t = Array1::from(years.to_vec());
    ModelBuilder::new()
        .with_time_axis(TimeAxis::from_values(t.clone()))
        .with_component(Arc::new(CarbonCycle::from_parameters(CarbonCycleParameters { tau, conc_pi, alpha_temperature: 0.0 })))
        .with_component(Arc::new(CO2ERF::from_parameters(CO2ERFParameters { erf_2xco2, conc_pi })))
        .with_exogenous_variable(
            "Emissions|CO2|Anthropogenic",
            Timeseries::from_values(Array1::from(emissions.to_vec()), t.clone()),
        )
        .with_exogenous_variable("Surface Temperature", Timeseries::from_values(Array1::zeros(years.len()), t))
        .with_initial_values(
            [
                ("Atmospheric Concentration|CO2".to_string(), conc_pi),
                ("Cumulative Emissions|CO2".to_string(), 0.0),
                ("Cumulative Land Uptake".to_string(), 0.0),
            ]
            .into_iter()
            .collect(),
        )
        .build()
        .map_err(|e| Error::Model(format!("RSCM example model: {e}")))
}

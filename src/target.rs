//! Observations to calibrate against.

use std::path::Path;

use indexmap::IndexMap;

use crate::error::{Error, Result};

/// One observed variable: times, values and 1-σ uncertainties.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub times: Vec<f64>,
    /// Values as compared with the model (re-baselined when a reference period is set).
    pub values: Vec<f64>,
    /// 1-σ uncertainties, all finite and > 0.
    pub sigmas: Vec<f64>,
    /// Anomaly period `[start, end]` (inclusive) for this variable, if any.
    pub reference_period: Option<(f64, f64)>,
    raw_values: Vec<f64>,
}

impl Observation {
    /// Check and build.
    pub fn new(name: &str, times: Vec<f64>, values: Vec<f64>, sigmas: Vec<f64>) -> Result<Self> {
        if times.len() != values.len() {
            return Err(Error::LengthMismatch {
                what: format!("observation '{name}': times vs values"),
                expected: times.len(),
                found: values.len(),
            });
        }
        if times.len() != sigmas.len() {
            return Err(Error::LengthMismatch {
                what: format!("observation '{name}': times vs uncertainties"),
                expected: times.len(),
                found: sigmas.len(),
            });
        }
        if times.is_empty() {
            return Err(Error::InvalidObservation { variable: name.into(), reason: "no data points".into() });
        }
        if let Some((i, why)) = first_bad_point(&times, &values, &sigmas) {
            let at = if times[i].is_finite() { format!("index {i} (time {})", times[i]) } else { format!("index {i}") };
            return Err(Error::InvalidObservation { variable: name.into(), reason: format!("at {at}: {why}") });
        }
        Ok(Self { times, raw_values: values.clone(), values, sigmas, reference_period: None })
    }

    /// Values as given, before any re-baselining.
    pub fn raw_values(&self) -> &[f64] {
        &self.raw_values
    }

    fn rebase(&mut self, name: &str, period: (f64, f64)) -> Result<()> {
        let (a, b) = period;
        if a > b {
            return Err(Error::InvalidObservation {
                variable: name.into(),
                reason: format!("reference period start {a} is after its end {b}"),
            });
        }
        let sel: Vec<f64> =
            self.times.iter().zip(&self.raw_values).filter(|(t, _)| **t >= a && **t <= b).map(|(_, v)| *v).collect();
        if sel.is_empty() {
            // The observations do not cover the period: they are taken as already
            // expressed relative to it; only the model output is re-baselined.
            self.values = self.raw_values.clone();
        } else {
            let m = sel.iter().sum::<f64>() / sel.len() as f64;
            self.values = self.raw_values.iter().map(|v| v - m).collect();
        }
        self.reference_period = Some(period);
        Ok(())
    }
}

/// The first point that cannot be an observation, with the reason: a time that is
/// not finite or does not increase strictly, a value that is not finite, an
/// uncertainty that is not finite and > 0. Arrays of equal length.
fn first_bad_point(times: &[f64], values: &[f64], sigmas: &[f64]) -> Option<(usize, String)> {
    (0..times.len()).find_map(|i| {
        let why = if !times[i].is_finite() {
            format!("time is {}", times[i])
        } else if !values[i].is_finite() {
            format!("value is {}", values[i])
        } else if !(sigmas[i].is_finite() && sigmas[i] > 0.0) {
            format!("uncertainty is {}; uncertainties must be finite and > 0", sigmas[i])
        } else if i > 0 && times[i] <= times[i - 1] {
            format!("times must increase strictly ({} after {})", times[i], times[i - 1])
        } else {
            return None;
        };
        Some((i, why))
    })
}

/// How to get 1-σ uncertainties when reading a CSV.
#[derive(Debug, Clone, PartialEq)]
pub enum SigmaSource {
    /// A column of 1-σ values.
    Column(String),
    /// Columns with the lower and upper limits of a 95% interval: σ = (upper − lower)/(2·1.959964).
    Range95 { lower: String, upper: String },
    /// The same σ for every point.
    Constant(f64),
}

/// The set of observed variables a model is calibrated against.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Target {
    variables: IndexMap<String, Observation>,
    reference_period: Option<(f64, f64)>,
}

impl Target {
    /// An empty target.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a variable (fluent). The name must match a model output.
    pub fn add_variable(mut self, name: &str, times: Vec<f64>, values: Vec<f64>, sigmas: Vec<f64>) -> Result<Self> {
        self.push_variable(name, times, values, sigmas)?;
        Ok(self)
    }

    /// Add a variable in place.
    pub fn push_variable(&mut self, name: &str, times: Vec<f64>, values: Vec<f64>, sigmas: Vec<f64>) -> Result<()> {
        if self.variables.contains_key(name) {
            return Err(Error::InvalidObservation { variable: name.into(), reason: "added twice".into() });
        }
        let mut obs = Observation::new(name, times, values, sigmas)?;
        if let Some(p) = self.reference_period {
            obs.rebase(name, p)?;
        }
        self.variables.insert(name.to_string(), obs);
        Ok(())
    }

    /// Compare anomalies relative to the mean over `[start, end]` (inclusive): the
    /// model output is re-baselined to its own mean over that period before
    /// comparison, and observations that cover the period are re-baselined the same
    /// way. Applies to every variable without its own period.
    pub fn with_reference_period(mut self, start: f64, end: f64) -> Result<Self> {
        self.reference_period = Some((start, end));
        for (name, obs) in self.variables.iter_mut() {
            obs.rebase(name, (start, end))?;
        }
        Ok(self)
    }

    /// Give one variable its own reference period (e.g. ocean heat content relative to 1971).
    pub fn with_variable_reference_period(mut self, name: &str, start: f64, end: f64) -> Result<Self> {
        let obs = self.variables.get_mut(name).ok_or_else(|| Error::InvalidObservation {
            variable: name.into(),
            reason: "no such variable in the target".into(),
        })?;
        obs.rebase(name, (start, end))?;
        Ok(self)
    }

    /// Default reference period.
    pub fn reference_period(&self) -> Option<(f64, f64)> {
        self.reference_period
    }

    /// Variables in order.
    pub fn variables(&self) -> &IndexMap<String, Observation> {
        &self.variables
    }

    /// Variable by name.
    pub fn get(&self, name: &str) -> Option<&Observation> {
        self.variables.get(name)
    }

    /// Total number of observed points.
    pub fn n_points(&self) -> usize {
        self.variables.values().map(|o| o.times.len()).sum()
    }

    /// True when no variables were added.
    pub fn is_empty(&self) -> bool {
        self.variables.is_empty()
    }

    /// Read one variable from a CSV file with a header row.
    ///
    /// Rows whose time lies outside `time_range` (when given) are skipped; empty
    /// cells are an error naming the row.
    pub fn add_csv_variable(
        self,
        name: &str,
        path: &Path,
        time_col: &str,
        value_col: &str,
        sigma: &SigmaSource,
        time_range: Option<(f64, f64)>,
    ) -> Result<Self> {
        let c = read_csv_variable(path, name, time_col, value_col, sigma, time_range)?;
        self.add_variable(name, c.times, c.values, c.sigmas)
    }
}

/// Columns of one variable read from a CSV file, with the 1-based line (as an
/// editor shows it) of every row.
#[derive(Debug, Clone, PartialEq)]
pub struct CsvColumns {
    pub times: Vec<f64>,
    pub values: Vec<f64>,
    pub sigmas: Vec<f64>,
    pub lines: Vec<u64>,
}

/// Read variable `name` from a CSV file as [`read_csv_columns`] and check every
/// point as [`Observation::new`] does; errors name the file and the line.
pub fn read_csv_variable(
    path: &Path,
    name: &str,
    time_col: &str,
    value_col: &str,
    sigma: &SigmaSource,
    time_range: Option<(f64, f64)>,
) -> Result<CsvColumns> {
    let c = read_csv_lines(path, time_col, value_col, sigma, time_range)?;
    if let Some((i, why)) = first_bad_point(&c.times, &c.values, &c.sigmas) {
        return Err(Error::Data {
            path: path.to_path_buf(),
            reason: format!("line {}: observation '{name}': {why}", c.lines[i]),
        });
    }
    Ok(c)
}

/// Read time, value and σ columns from a CSV file.
pub fn read_csv_columns(
    path: &Path,
    time_col: &str,
    value_col: &str,
    sigma: &SigmaSource,
    time_range: Option<(f64, f64)>,
) -> Result<(Vec<f64>, Vec<f64>, Vec<f64>)> {
    let c = read_csv_lines(path, time_col, value_col, sigma, time_range)?;
    Ok((c.times, c.values, c.sigmas))
}

fn read_csv_lines(
    path: &Path,
    time_col: &str,
    value_col: &str,
    sigma: &SigmaSource,
    time_range: Option<(f64, f64)>,
) -> Result<CsvColumns> {
    let err = |reason: String| Error::Data { path: path.to_path_buf(), reason };
    let mut rdr =
        csv::ReaderBuilder::new().comment(Some(b'#')).trim(csv::Trim::All).from_path(path).map_err(|e| err(e.to_string()))?;
    let headers: Vec<String> = rdr.headers().map_err(|e| err(e.to_string()))?.iter().map(|s| s.to_string()).collect();
    let col =
        |c: &str| headers.iter().position(|h| h == c).ok_or_else(|| err(format!("no column '{c}'; the columns are {headers:?}")));
    let it = col(time_col)?;
    let iv = col(value_col)?;
    let sig_idx = match sigma {
        SigmaSource::Column(c) => (Some(col(c)?), None),
        SigmaSource::Range95 { lower, upper } => (Some(col(lower)?), Some(col(upper)?)),
        SigmaSource::Constant(_) => (None, None),
    };
    let (mut t, mut v, mut s, mut lines) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for rec in rdr.records() {
        let rec = rec.map_err(|e| err(e.to_string()))?;
        let line = rec.position().map_or(0, |p| p.line());
        let num = |i: usize| -> Result<f64> {
            let f = rec.get(i).unwrap_or("");
            f.parse::<f64>().map_err(|_| err(format!("line {line} column '{}': '{}' is not a number", headers[i], f)))
        };
        let time = num(it)?;
        if let Some((a, b)) = time_range {
            if time < a || time > b {
                continue;
            }
        }
        t.push(time);
        lines.push(line);
        v.push(num(iv)?);
        s.push(match (sigma, sig_idx) {
            (SigmaSource::Constant(c), _) => *c,
            (SigmaSource::Column(_), (Some(i), None)) => num(i)?,
            (SigmaSource::Range95 { .. }, (Some(lo), Some(hi))) => (num(hi)? - num(lo)?) / (2.0 * 1.959_963_984_540_054),
            _ => unreachable!("sigma source resolved above"),
        });
    }
    Ok(CsvColumns { times: t, values: v, sigmas: s, lines })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_uncertainty_and_lengths() {
        let e = Target::new().add_variable("T", vec![1.0, 2.0], vec![0.1, 0.2], vec![0.1, 0.0]).unwrap_err().to_string();
        assert!(e.contains("'T'") && e.contains("uncertaint"), "{e}");
        let e = Target::new().add_variable("T", vec![1.0, 2.0], vec![0.1], vec![0.1, 0.1]).unwrap_err().to_string();
        assert!(e.contains("length mismatch"), "{e}");
        let e = Target::new().add_variable("T", vec![1.0, 2.0], vec![0.1, f64::NAN], vec![0.1, 0.1]).unwrap_err().to_string();
        assert!(e.contains("NaN"), "{e}");
    }

    #[test]
    fn reference_period_rebases_observations() {
        let t = Target::new()
            .add_variable("T", vec![1.0, 2.0, 3.0], vec![1.0, 3.0, 5.0], vec![0.1; 3])
            .unwrap()
            .with_reference_period(1.0, 2.0)
            .unwrap();
        assert_eq!(t.get("T").unwrap().values, vec![-1.0, 1.0, 3.0]);
    }
}

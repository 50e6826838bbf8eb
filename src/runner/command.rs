//! A runner that calls an external program (placeholder for models outside Rust).
//!
//! The program receives the parameters as `name=value` arguments and must print a
//! CSV with a `time` column and one column per output variable.

use std::process::Command;

use super::{ModelOutput, ModelRunner};
use crate::error::{Error, Result};

/// Runs an external command per evaluation (slow: for models that live elsewhere).
#[derive(Debug, Clone)]
pub struct CommandRunner {
    program: String,
    args: Vec<String>,
    names: Vec<String>,
}

impl CommandRunner {
    /// `program args… name=value…`; stdout must be CSV `time,var1,var2,…`.
    pub fn new(program: &str, args: &[String], param_names: &[String]) -> Self {
        Self { program: program.into(), args: args.to_vec(), names: param_names.to_vec() }
    }
}

impl ModelRunner for CommandRunner {
    fn param_names(&self) -> Vec<String> {
        self.names.clone()
    }
    fn run(&self, params: &[f64]) -> Result<ModelOutput> {
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args);
        for (n, v) in self.names.iter().zip(params) {
            cmd.arg(format!("{n}={v:e}"));
        }
        let out = cmd.output().map_err(|e| Error::Model(format!("{}: {e}", self.program)))?;
        if !out.status.success() {
            return Err(Error::Model(format!(
                "{} exited with {}: {}",
                self.program,
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        let mut rdr = csv::Reader::from_reader(out.stdout.as_slice());
        let headers: Vec<String> = rdr
            .headers()
            .map_err(|e| Error::Model(e.to_string()))?
            .iter()
            .map(|s| s.trim().to_string())
            .collect();
        if headers.first().map(|s| s.as_str()) != Some("time") {
            return Err(Error::Model(format!("{}: first CSV column must be 'time'", self.program)));
        }
        let mut times = Vec::new();
        let mut cols = vec![Vec::new(); headers.len() - 1];
        for rec in rdr.records() {
            let rec = rec.map_err(|e| Error::Model(e.to_string()))?;
            for (i, f) in rec.iter().enumerate() {
                let v: f64 = f.trim().parse().map_err(|_| Error::Model(format!("bad number '{f}'")))?;
                if i == 0 {
                    times.push(v)
                } else {
                    cols[i - 1].push(v)
                }
            }
        }
        ModelOutput::new(times, headers[1..].iter().cloned().zip(cols).collect())
    }
}

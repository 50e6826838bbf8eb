//! A runner that calls an external program per evaluation: models that live
//! outside Rust (Fortran, C, Julia, a Python script), as emcee users wrap them.
//!
//! The program receives the parameters as `name=value` arguments (values in `{:e}`
//! form, exact round trip) and must print to stdout a CSV with a `time` column and
//! one column per output variable. A non-zero exit, unreadable output or a run
//! longer than the timeout is a model failure: −∞ for that walker, counted and
//! reported, as for any model (the program is killed on timeout, so a model that
//! hangs cannot hang the calibration).

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

use wait_timeout::ChildExt;

use super::{ModelOutput, ModelRunner};
use crate::error::{Error, Result};

/// Runs an external command per evaluation (slow: for models that live elsewhere).
#[derive(Debug, Clone)]
pub struct CommandRunner {
    program: String,
    args: Vec<String>,
    names: Vec<String>,
    timeout: Option<Duration>,
}

impl CommandRunner {
    /// `program args… name=value…`; stdout must be CSV `time,var1,var2,…`. No timeout.
    pub fn new(program: &str, args: &[String], param_names: &[String]) -> Self {
        Self { program: program.into(), args: args.to_vec(), names: param_names.to_vec(), timeout: None }
    }

    /// Kill the program and count a failure when one run takes longer than `timeout`.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    fn fail(&self, what: impl std::fmt::Display) -> Error {
        Error::Model(format!("{}: {what}", self.program))
    }
}

impl ModelRunner for CommandRunner {
    fn param_names(&self) -> Vec<String> {
        self.names.clone()
    }

    fn run(&self, params: &[f64]) -> Result<ModelOutput> {
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        for (n, v) in self.names.iter().zip(params) {
            cmd.arg(format!("{n}={v:e}"));
        }
        // Its own process group, so that a timeout also ends what it started.
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let mut child = cmd.spawn().map_err(|e| self.fail(e))?;
        // Drain both pipes while waiting: a program that writes more than a pipe
        // holds would otherwise block and look like a hang.
        let mut stdout = child.stdout.take().expect("piped");
        let mut stderr = child.stderr.take().expect("piped");
        let out_reader = std::thread::spawn(move || {
            let mut b = Vec::new();
            stdout.read_to_end(&mut b).map(|_| b)
        });
        let err_reader = std::thread::spawn(move || {
            let mut b = Vec::new();
            let _ = stderr.read_to_end(&mut b);
            b
        });
        let status = match self.timeout {
            None => child.wait().map_err(|e| self.fail(e))?,
            Some(t) => match child.wait_timeout(t).map_err(|e| self.fail(e))? {
                Some(s) => s,
                None => {
                    #[cfg(unix)]
                    // SAFETY: kill(2) with a negative pid signals the process group
                    // created above (pgid = the child's pid); no memory is touched.
                    unsafe {
                        libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL);
                    }
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(self.fail(format_args!("no result after {:.3} s (timeout); killed", t.as_secs_f64())));
                }
            },
        };
        let out = out_reader.join().expect("reader thread").map_err(|e| self.fail(e))?;
        let err = err_reader.join().expect("reader thread");
        if !status.success() {
            return Err(self.fail(format_args!("exited with {status}: {}", String::from_utf8_lossy(&err).trim())));
        }
        parse_csv_output(&out).map_err(|e| self.fail(e))
    }
}

/// `time,var1,…` CSV to a [`ModelOutput`].
fn parse_csv_output(bytes: &[u8]) -> std::result::Result<ModelOutput, String> {
    let mut rdr = csv::Reader::from_reader(bytes);
    let headers: Vec<String> = rdr.headers().map_err(|e| e.to_string())?.iter().map(|s| s.trim().to_string()).collect();
    if headers.first().map(|s| s.as_str()) != Some("time") {
        return Err(format!("first CSV column must be 'time', got {:?}", headers.first()));
    }
    let mut times = Vec::new();
    let mut cols = vec![Vec::new(); headers.len() - 1];
    for rec in rdr.records() {
        let rec = rec.map_err(|e| e.to_string())?;
        if rec.len() != headers.len() {
            return Err(format!("a row has {} fields, the header {}", rec.len(), headers.len()));
        }
        for (i, f) in rec.iter().enumerate() {
            let v: f64 = f.trim().parse().map_err(|_| format!("bad number '{f}' in column '{}'", headers[i]))?;
            if i == 0 {
                times.push(v)
            } else {
                cols[i - 1].push(v)
            }
        }
    }
    ModelOutput::new(times, headers[1..].iter().cloned().zip(cols).collect()).map_err(|e| e.to_string())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::time::Instant;

    fn sh(script: &str) -> CommandRunner {
        // sh -c SCRIPT argv0 a=… b=…: the parameters arrive as $1, $2.
        CommandRunner::new("sh", &["-c".into(), script.into(), "model".into()], &["a".into(), "b".into()])
    }

    #[test]
    fn parameters_in_outputs_out() {
        // y(t) = a + b t for t = 0, 1, 2, computed by awk from the name=value arguments.
        let m = sh(
            r#"awk -v p="$1" -v q="$2" 'BEGIN { split(p, x, "="); split(q, y, "="); print "time,y"; for (t = 0; t < 3; t++) printf "%d,%.17g\n", t, x[2] + y[2] * t }'"#,
        );
        let out = m.run(&[1.5, -0.25]).unwrap();
        assert_eq!(out.get("y").unwrap(), &[1.5, 1.25, 1.0]);
    }

    #[test]
    fn failures_are_model_errors_that_name_the_program() {
        let e = sh("echo boom >&2; exit 3").run(&[0.0, 0.0]).unwrap_err().to_string();
        assert!(e.contains("sh") && e.contains("boom"), "{e}");
        let e = sh("echo 'year,y'; echo '0,1'").run(&[0.0, 0.0]).unwrap_err().to_string();
        assert!(e.contains("'time'"), "{e}");
        let e = sh("echo 'time,y'; echo '0,abc'").run(&[0.0, 0.0]).unwrap_err().to_string();
        assert!(e.contains("abc"), "{e}");
        let e = CommandRunner::new("/nonexistent/model", &[], &[]).run(&[]).unwrap_err().to_string();
        assert!(e.contains("/nonexistent/model"), "{e}");
    }

    #[test]
    fn a_hanging_program_is_killed_at_the_timeout() {
        let m = sh("sleep 30").with_timeout(Duration::from_millis(200));
        let t0 = Instant::now();
        let e = m.run(&[0.0, 0.0]).unwrap_err().to_string();
        assert!(e.contains("timeout"), "{e}");
        // Returned well before the program would have ended.
        assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
    }

    #[test]
    fn large_output_does_not_block() {
        // 200 000 rows (~2.5 MB) is far more than a pipe buffer holds.
        let m = sh(r#"awk 'BEGIN { print "time,y"; for (t = 0; t < 200000; t++) print t "," 2 * t }'"#)
            .with_timeout(Duration::from_secs(60));
        let out = m.run(&[0.0, 0.0]).unwrap();
        assert_eq!(out.get("y").unwrap().len(), 200_000);
    }
}

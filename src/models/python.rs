//! Python models evaluated in long-lived worker interpreters: `[model] name =
//! "python"` in a run file, and `ModelRunner(..., processes=N)` in the Python API.
//!
//! Each worker is a `python` process running `python/climcal/_worker.py` (embedded
//! in this binary): it imports the model once, then evaluates it for as long as
//! the run lasts, so there is no process start per evaluation. A worker serves one
//! evaluation at a time; a process keeps as many as it has threads calling the
//! model at once (its rayon pool), started when first needed. Under `mpirun` every
//! rank starts its own, so a Python model uses every core of every node — threads
//! in one interpreter could not (the GIL runs one at a time).
//!
//! Parameters cross as raw little-endian `f64` and outputs come back the same way,
//! so a worker computes exactly what the same function computes in-process: the
//! chain is the same bit for bit as with the Python API's in-process model.
//!
//! Failures are −∞ for that walker, counted by the executors, and never end the
//! run: an exception (the first one is logged with its message), output the
//! worker cannot read, a worker that dies (it is replaced) and, with a timeout, an
//! evaluation that takes too long (its worker is killed and replaced).

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::models::registry::{parse_options, BuiltModel, ModelContext};
use crate::runner::{ModelOutput, ModelRunner};

/// The worker program (`python -c WORKER_SOURCE`).
pub const WORKER_SOURCE: &str = include_str!("../../python/climcal/_worker.py");

/// How long a worker may take to import the model before start-up fails.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(120);

/// What a worker imports and how it calls it.
#[derive(Debug, Clone)]
pub struct PythonModelSpec {
    /// Interpreter to run (default `python3`, or `$CLIMCAL_PYTHON`).
    pub python: String,
    /// Module to import (found on `sys_path`), or `None` with `file`.
    pub module: Option<String>,
    /// A `.py` file to import (as `__mp_main__`, so a script's main block does not run).
    pub file: Option<PathBuf>,
    /// Function in the module (dotted for attributes: `Model.run`).
    pub function: String,
    /// Parameter names, in the order climcal passes them.
    pub parameters: Vec<String>,
    /// Series to read from what the function returns.
    pub outputs: Vec<String>,
    /// Times of the outputs when the function returns none.
    pub times: Option<Vec<f64>>,
    /// The function takes a 2-D array `(n, n_params)` and returns `(n, n_times)` arrays.
    pub vectorized: bool,
    /// Prepended to the worker's `sys.path`.
    pub sys_path: Vec<String>,
    /// Kill and replace a worker whose call takes longer (one evaluation, or one
    /// vectorised batch); no limit by default.
    pub timeout: Option<Duration>,
}

impl PythonModelSpec {
    fn describe(&self) -> String {
        let what = match (&self.module, &self.file) {
            (Some(m), _) => m.clone(),
            (None, Some(f)) => f.display().to_string(),
            (None, None) => "?".into(),
        };
        format!("python model {what}:{}", self.function)
    }

    fn header_json(&self) -> String {
        serde_json::json!({
            "module": self.module,
            "file": self.file.as_ref().map(|f| f.to_string_lossy().into_owned()),
            "function": self.function,
            "parameters": self.parameters,
            "outputs": self.outputs,
            "times": self.times,
            "vectorized": self.vectorized,
            "sys_path": self.sys_path,
        })
        .to_string()
    }
}

/// One worker interpreter.
struct Worker {
    child: Child,
    stdin: ChildStdin,
    stdout: ChildStdout,
}

/// A worker that failed (it is discarded): its output could not be read, it
/// ended, or it took longer than the timeout (`"timeout"`).
struct CallError(String);

/// One row's `(times, one series per output)`, or the model's error message.
type RowResult = std::result::Result<(Vec<f64>, Vec<Vec<f64>>), String>;

impl Worker {
    fn spawn(spec: &PythonModelSpec) -> std::result::Result<Self, String> {
        let mut cmd = Command::new(&spec.python);
        cmd.arg("-c").arg(WORKER_SOURCE).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::inherit());
        // Own process group: Ctrl-C at the terminal reaches climcal (which stops
        // after the step), not the workers in the middle of an evaluation.
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let mut child = cmd.spawn().map_err(|e| format!("cannot start '{}': {e}", spec.python))?;
        let stdin = child.stdin.take().expect("piped");
        let stdout = child.stdout.take().expect("piped");
        let mut w = Self { child, stdin, stdout };
        match w.hello(spec) {
            Ok(()) => Ok(w),
            Err(e) => {
                w.kill();
                Err(e)
            }
        }
    }

    /// Send the model's description; the worker answers once it has imported it.
    fn hello(&mut self, spec: &PythonModelSpec) -> std::result::Result<(), String> {
        let header = format!("{}\n", spec.header_json());
        self.stdin
            .write_all(header.as_bytes())
            .and_then(|_| self.stdin.flush())
            .map_err(|e| format!("cannot talk to '{}': {e}", spec.python))?;
        let line = read_line(&mut self.stdout, Instant::now() + STARTUP_TIMEOUT)
            .map_err(|e| format!("the worker did not start ({e}); is '{}' a Python 3 interpreter?", spec.python))?;
        let v: serde_json::Value =
            serde_json::from_str(&line).map_err(|_| format!("the worker said something unexpected: {line:?}"))?;
        if v.get("ok").and_then(|b| b.as_bool()) == Some(true) {
            Ok(())
        } else {
            Err(v.get("error").and_then(|e| e.as_str()).unwrap_or("unknown error").to_string())
        }
    }

    /// Evaluate `n` rows; one result per row.
    fn call(
        &mut self,
        rows: &[f64],
        n: usize,
        n_outputs: usize,
        deadline: Option<Instant>,
    ) -> std::result::Result<Vec<RowResult>, CallError> {
        let mut req = Vec::with_capacity(4 + 8 * rows.len());
        req.extend_from_slice(&(n as u32).to_le_bytes());
        for v in rows {
            req.extend_from_slice(&v.to_le_bytes());
        }
        self.stdin.write_all(&req).and_then(|_| self.stdin.flush()).map_err(|e| CallError(self.died(e)))?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let mut status = [0u8; 1];
            read_exact_by(&mut self.stdout, &mut status, deadline).map_err(|e| CallError(self.died(e)))?;
            let mut len = [0u8; 4];
            read_exact_by(&mut self.stdout, &mut len, deadline).map_err(|e| CallError(self.died(e)))?;
            let len = u32::from_le_bytes(len) as usize;
            if status[0] == 0 {
                let mut buf = vec![0u8; 8 * len * (1 + n_outputs)];
                read_exact_by(&mut self.stdout, &mut buf, deadline).map_err(|e| CallError(self.died(e)))?;
                let mut vals = buf.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")));
                let times: Vec<f64> = vals.by_ref().take(len).collect();
                let series = (0..n_outputs).map(|_| vals.by_ref().take(len).collect()).collect();
                out.push(Ok((times, series)));
            } else {
                let mut buf = vec![0u8; len];
                read_exact_by(&mut self.stdout, &mut buf, deadline).map_err(|e| CallError(self.died(e)))?;
                out.push(Err(String::from_utf8_lossy(&buf).into_owned()));
            }
        }
        Ok(out)
    }

    /// Describe a broken pipe: with the exit status when the worker has ended.
    fn died(&mut self, e: std::io::Error) -> String {
        if e.kind() == std::io::ErrorKind::TimedOut {
            return "timeout".into();
        }
        std::thread::sleep(Duration::from_millis(20));
        match self.child.try_wait() {
            Ok(Some(s)) => format!("the worker ended ({s})"),
            _ => format!("lost the worker ({e})"),
        }
    }

    fn kill(&mut self) {
        #[cfg(unix)]
        // SAFETY: kill(2) with a negative pid signals the process group created in
        // `spawn` (pgid = the child's pid); no memory is touched.
        unsafe {
            libc::kill(-(self.child.id() as libc::pid_t), libc::SIGKILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Wait until `fd` is readable or `deadline` passes.
fn wait_readable(fd: i32, deadline: Option<Instant>) -> std::io::Result<()> {
    let Some(deadline) = deadline else { return Ok(()) };
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "timeout"));
        }
        let mut p = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
        let ms = left.as_millis().clamp(1, i32::MAX as u128) as i32;
        // SAFETY: one valid pollfd for the duration of the call.
        let r = unsafe { libc::poll(&mut p, 1, ms) };
        if r > 0 {
            return Ok(());
        }
        if r < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }
}

fn read_exact_by(r: &mut ChildStdout, buf: &mut [u8], deadline: Option<Instant>) -> std::io::Result<()> {
    let mut got = 0;
    while got < buf.len() {
        wait_readable(r.as_raw_fd(), deadline)?;
        match r.read(&mut buf[got..]) {
            Ok(0) => return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "end of output")),
            Ok(k) => got += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn read_line(r: &mut ChildStdout, deadline: Instant) -> std::io::Result<String> {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    loop {
        read_exact_by(r, &mut b, Some(deadline))?;
        if b[0] == b'\n' {
            return Ok(String::from_utf8_lossy(&line).into_owned());
        }
        line.push(b[0]);
    }
}

/// A Python model evaluated in worker interpreters (see the module docs).
pub struct PythonModel {
    spec: PythonModelSpec,
    outputs: Arc<Vec<String>>,
    idle: Mutex<Vec<Worker>>,
    /// Workers started (including replacements), for reports and tests.
    started: AtomicU64,
    errors: AtomicU64,
    first_error: OnceLock<String>,
    /// The last time axis seen, shared between outputs that have the same one.
    last_times: Mutex<Option<Arc<Vec<f64>>>>,
}

impl std::fmt::Debug for PythonModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PythonModel({})", self.spec.describe())
    }
}

impl PythonModel {
    /// Start `workers` (at least one) interpreters and check that each imports the
    /// model; an error names the model and Python's own message.
    pub fn start(spec: PythonModelSpec, workers: usize) -> Result<Self> {
        if spec.parameters.is_empty() {
            return Err(Error::Config(format!("{}: the model needs at least one parameter", spec.describe())));
        }
        if spec.outputs.is_empty() {
            return Err(Error::Config(format!("{}: name the series it returns (outputs = [...])", spec.describe())));
        }
        let n = workers.max(1);
        let started: Vec<std::result::Result<Worker, String>> = std::thread::scope(|s| {
            (0..n)
                .map(|_| s.spawn(|| Worker::spawn(&spec)))
                .collect::<Vec<_>>()
                .into_iter()
                .map(|h| h.join().expect("no panic"))
                .collect()
        });
        let mut idle = Vec::with_capacity(n);
        for w in started {
            idle.push(w.map_err(|e| Error::Config(format!("{}: {e}", spec.describe())))?);
        }
        Ok(Self {
            outputs: Arc::new(spec.outputs.clone()),
            spec,
            idle: Mutex::new(idle),
            started: AtomicU64::new(n as u64),
            errors: AtomicU64::new(0),
            first_error: OnceLock::new(),
            last_times: Mutex::new(None),
        })
    }

    /// Worker interpreters started so far (replacements included).
    pub fn workers_started(&self) -> u64 {
        self.started.load(Ordering::Relaxed)
    }

    /// Failed evaluations so far, and the first one's message.
    pub fn failures(&self) -> (u64, Option<&str>) {
        (self.errors.load(Ordering::Relaxed), self.first_error.get().map(|s| s.as_str()))
    }

    fn note_error(&self, msg: &str) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        if self.first_error.set(msg.to_string()).is_ok() {
            tracing::warn!("{} failed (−∞ for that walker; later failures are counted, not shown): {msg}", self.spec.describe());
        }
    }

    fn checkout(&self) -> std::result::Result<Worker, String> {
        if let Some(w) = self.idle.lock().expect("not poisoned").pop() {
            return Ok(w);
        }
        self.started.fetch_add(1, Ordering::Relaxed);
        Worker::spawn(&self.spec)
    }

    fn shared_times(&self, t: Vec<f64>) -> Arc<Vec<f64>> {
        let mut last = self.last_times.lock().expect("not poisoned");
        match &*last {
            Some(a) if **a == t => a.clone(),
            _ => {
                let a = Arc::new(t);
                *last = Some(a.clone());
                a
            }
        }
    }

    /// Evaluate `n` rows (in `parameters` order) in one call to one worker.
    fn run_rows(&self, rows: &[f64], n: usize) -> Vec<Result<ModelOutput>> {
        let fail = |msg: String| -> Vec<Result<ModelOutput>> {
            self.note_error(&msg);
            (0..n).map(|_| Err(Error::Model(format!("{}: {msg}", self.spec.describe())))).collect()
        };
        let mut w = match self.checkout() {
            Ok(w) => w,
            Err(e) => return fail(e),
        };
        let deadline = self.spec.timeout.map(|t| Instant::now() + t);
        match w.call(rows, n, self.outputs.len(), deadline) {
            Ok(results) => {
                self.idle.lock().expect("not poisoned").push(w);
                results
                    .into_iter()
                    .map(|r| match r {
                        Ok((times, series)) => ModelOutput::from_shared(self.shared_times(times), self.outputs.clone(), series),
                        Err(msg) => {
                            self.note_error(&msg);
                            Err(Error::Model(format!("{}: {msg}", self.spec.describe())))
                        }
                    })
                    .collect()
            }
            Err(CallError(e)) => {
                w.kill();
                let e = if e == "timeout" {
                    format!(
                        "no result after {:.3} s (timeout); the worker was killed and is replaced",
                        self.spec.timeout.unwrap_or_default().as_secs_f64()
                    )
                } else {
                    e
                };
                fail(e)
            }
        }
    }
}

impl Drop for PythonModel {
    fn drop(&mut self) {
        for mut w in self.idle.get_mut().map(std::mem::take).unwrap_or_default() {
            // Closing stdin ends a worker; kill in case it is stuck.
            w.kill();
        }
    }
}

impl ModelRunner for PythonModel {
    fn param_names(&self) -> Vec<String> {
        self.spec.parameters.clone()
    }
    fn output_names(&self) -> Vec<String> {
        (*self.outputs).clone()
    }
    fn run(&self, params: &[f64]) -> Result<ModelOutput> {
        self.run_rows(params, 1).pop().expect("one row")
    }
    fn run_batch(&self, batch: &[Vec<f64>]) -> Vec<Result<ModelOutput>> {
        if self.spec.vectorized {
            let rows: Vec<f64> = batch.iter().flatten().copied().collect();
            self.run_rows(&rows, batch.len())
        } else {
            use rayon::prelude::*;
            batch.par_iter().map(|p| self.run(p)).collect()
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PythonOptions {
    module: Option<String>,
    file: Option<String>,
    function: String,
    outputs: Vec<String>,
    #[serde(default)]
    vectorized: bool,
    timeout_seconds: Option<f64>,
    python: Option<String>,
    #[serde(default)]
    sys_path: Vec<String>,
}

/// The interpreter: `python` option, else `$CLIMCAL_PYTHON`, else `python3`.
pub fn default_python() -> String {
    std::env::var("CLIMCAL_PYTHON").ok().filter(|s| !s.is_empty()).unwrap_or_else(|| "python3".into())
}

/// `python`: a Python function evaluated in worker interpreters ([`PythonModel`]).
/// Options: `module` (importable name) or `file` (a `.py` path, relative to the
/// run file), `function` (called with a `{parameter: value}` dict, or with
/// `vectorized = true` a 2-D array `(n, n_params)`), `outputs` (the series to read
/// from what it returns), `timeout_seconds` (a call that takes longer is killed and
/// counts as a failed evaluation; no limit by default), `python` (the interpreter;
/// default `$CLIMCAL_PYTHON` or `python3`), `sys_path` (directories prepended to
/// `sys.path`, relative to the run file; the run file's directory is always there).
pub fn from_options(options: &toml::Table, ctx: &ModelContext<'_>) -> Result<BuiltModel> {
    let o: PythonOptions = parse_options("python", options)?;
    if ctx.param_names.is_empty() {
        return Err(Error::Config("model 'python' needs [parameters]: they are passed to the function by name".into()));
    }
    if o.module.is_some() == o.file.is_some() {
        return Err(Error::Config(
            "model 'python': give exactly one of options.module (an importable name) or options.file (a .py file)".into(),
        ));
    }
    let timeout = match o.timeout_seconds {
        Some(t) if !(t > 0.0 && t.is_finite()) => {
            return Err(Error::Config(format!("model 'python': timeout_seconds must be > 0, got {t}")))
        }
        t => t.map(Duration::from_secs_f64),
    };
    let file = o.file.map(|f| absolute(&ctx.resolve(Path::new(&f))));
    if let Some(f) = &file {
        if !f.is_file() {
            return Err(Error::Config(format!("model 'python': options.file {} does not exist", f.display())));
        }
    }
    let mut sys_path: Vec<String> =
        o.sys_path.iter().map(|p| absolute(&ctx.resolve(Path::new(p))).to_string_lossy().into_owned()).collect();
    sys_path.push(absolute(ctx.base_dir).to_string_lossy().into_owned());
    let spec = PythonModelSpec {
        python: o.python.unwrap_or_else(default_python),
        module: o.module,
        file,
        function: o.function,
        parameters: ctx.param_names.to_vec(),
        outputs: o.outputs,
        times: None,
        vectorized: o.vectorized,
        sys_path,
        timeout,
    };
    Ok(BuiltModel::Runner(Arc::new(PythonModel::start(spec, 1)?)))
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    fn have_python() -> bool {
        Command::new(default_python()).arg("-c").arg("import numpy").status().map(|s| s.success()).unwrap_or(false)
    }

    fn model(src: &str, function: &str, timeout: Option<Duration>, vectorized: bool) -> (tempfile::TempDir, Result<PythonModel>) {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("m.py");
        std::fs::write(&f, src).unwrap();
        let spec = PythonModelSpec {
            python: default_python(),
            module: None,
            file: Some(f),
            function: function.into(),
            parameters: vec!["a".into(), "b".into()],
            outputs: vec!["y".into()],
            times: None,
            vectorized,
            sys_path: vec![],
            timeout,
        };
        let m = PythonModel::start(spec, 1);
        (dir, m)
    }

    const SRC: &str = r#"
import math, time
def line(p):
    if p["a"] > 100:
        raise ValueError("a too large")
    if p["a"] < -100:
        return {"time": [0.0, 1.0], "y": [float("nan"), 1.0]}
    if p["b"] > 100:
        time.sleep(30)
    print("noise on stdout must not break the protocol")
    return {"time": [0.0, 1.0, 2.0], "y": [p["a"] + p["b"] * t for t in (0.0, 1.0, 2.0)]}
def vec(theta):
    t = [0.0, 1.0]
    return t, {"y": theta[:, :1] + theta[:, 1:2] * __import__("numpy").array([t])}
if __name__ == "__main__":
    raise SystemExit("the main block must not run in a worker")
"#;

    #[test]
    fn evaluates_exactly_and_reports_failures() {
        if !have_python() {
            eprintln!("skipped: no python3 with numpy");
            return;
        }
        let (_d, m) = model(SRC, "line", Some(Duration::from_secs(3)), false);
        let m = m.unwrap();
        // 0.1 + 0.2·t computed by Python: the same floats as in Rust.
        let out = m.run(&[0.1, 0.2]).unwrap();
        assert_eq!(out.times(), &[0.0, 1.0, 2.0]);
        assert_eq!(out.get("y").unwrap(), &[0.1, 0.1 + 0.2, 0.1 + 0.2 * 2.0]);
        // An exception: an error with Python's message, the worker survives.
        let e = m.run(&[101.0, 0.0]).unwrap_err().to_string();
        assert!(e.contains("ValueError: a too large"), "{e}");
        // NaN is passed through (the likelihood turns it into a counted failure).
        assert!(m.run(&[-101.0, 0.0]).unwrap().get("y").unwrap()[0].is_nan());
        // A hang: killed at the timeout and replaced.
        let t0 = Instant::now();
        let e = m.run(&[0.0, 101.0]).unwrap_err().to_string();
        assert!(e.contains("timeout"), "{e}");
        assert!(t0.elapsed() < Duration::from_secs(10));
        assert_eq!(m.run(&[1.0, 1.0]).unwrap().get("y").unwrap(), &[1.0, 2.0, 3.0]);
        assert_eq!(m.workers_started(), 2);
        let (n, first) = m.failures();
        assert_eq!(n, 2);
        assert!(first.unwrap().contains("a too large"));
    }

    #[test]
    fn vectorized_batches_split_into_rows() {
        if !have_python() {
            return;
        }
        let (_d, m) = model(SRC, "vec", None, true);
        let m = m.unwrap();
        let outs = m.run_batch(&[vec![1.0, 2.0], vec![3.0, -1.0]]);
        assert_eq!(outs[0].as_ref().unwrap().get("y").unwrap(), &[1.0, 3.0]);
        assert_eq!(outs[1].as_ref().unwrap().get("y").unwrap(), &[3.0, 2.0]);
    }

    #[test]
    fn start_up_errors_name_the_cause() {
        if !have_python() {
            return;
        }
        let (_d, m) = model(SRC, "nope", None, false);
        let e = m.unwrap_err().to_string();
        assert!(e.contains("no function 'nope'") && e.contains("line"), "{e}");
        let (_d, m) = model("import not_a_module_xyz\n", "f", None, false);
        let e = m.unwrap_err().to_string();
        assert!(e.contains("not_a_module_xyz"), "{e}");
        let mut spec = model(SRC, "line", None, false).1.unwrap().spec.clone();
        spec.python = "/nonexistent/python".into();
        let e = PythonModel::start(spec, 1).unwrap_err().to_string();
        assert!(e.contains("/nonexistent/python"), "{e}");
    }
}

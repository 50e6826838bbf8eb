//! Ensemble sampling of the `spin` toy model across MPI ranks (also a test and a
//! benchmark driver: `launch/test.d/30-mpi.sh`, `launch/bench.d/40-mpi.sh`).
//!
//! ```text
//! cargo build --release --example mpi_toy
//! mpirun -n 2 --bind-to none target/release/examples/mpi_toy --steps 200 --threads 1
//! target/release/examples/mpi_toy --exec serial        # no MPI at all
//! ```
//!
//! Rank 0 runs the sampler with an `MpiExecutor`, the other ranks run the worker
//! loop; rank 0 prints a hash of the chain (positions and log-probabilities, in
//! bytes), so runs on different layouts can be compared bit for bit.
//!
//! Options (defaults in brackets): `--walkers` [32], `--dim` [4], `--steps` [200],
//! `--seed` [42], `--threads` rayon threads per rank [1], `--spin-us` model cost in
//! µs [0] or `--spin-iters` exact loop count (fixed CPU work), `--spread S` [1] cost
//! growing with x[0] from 1 to S × that, `--slow-rank R` with `--slow-factor F` [2]
//! rank R's work F times larger (an unequal worker), `--fault none|panic|nan` [none] with
//! `--fail-above` x[0] threshold [1.0], `--exec mpi|serial|rayon` [mpi when built
//! with the `mpi` feature], `--out FILE` raw little-endian dump of the chain,
//! `--moves JSON` proposal moves (`sampler::moves`, default the stretch move),
//! `--static` (equal static blocks per rank instead of dynamic chunks, to compare),
//! `--signals` (Ctrl-C/SIGTERM stops after the current step), `--step-sleep-ms`
//! [0] pause between steps on rank 0 (for signal tests).
#![deny(warnings)]

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use climcal::executor::{Executor, RayonExecutor, SerialExecutor};
use climcal::models::toy::{Fault, Spin};
use climcal::models::work::{Work, Working};
use climcal::prelude::*;
use climcal::sampler::RunOutcome;

fn fnv1a(h: &mut u64, bytes: &[u8]) {
    for b in bytes {
        *h ^= *b as u64;
        *h = h.wrapping_mul(0x0000_0100_0000_01B3);
    }
}

struct Args(HashMap<String, String>);

impl Args {
    fn parse() -> Self {
        let mut m = HashMap::new();
        let v: Vec<String> = std::env::args().skip(1).collect();
        let mut i = 0;
        while i < v.len() {
            let k = v[i].trim_start_matches("--").to_string();
            if k == "signals" || k == "static" {
                m.insert(k, "1".into());
                i += 1;
            } else {
                let val = v.get(i + 1).unwrap_or_else(|| panic!("--{k} needs a value")).clone();
                m.insert(k, val);
                i += 2;
            }
        }
        Args(m)
    }
    fn get<T: std::str::FromStr>(&self, k: &str, default: T) -> T {
        self.0.get(k).map(|v| v.parse().unwrap_or_else(|_| panic!("bad value for --{k}: {v}"))).unwrap_or(default)
    }
    fn str(&self, k: &str, default: &str) -> String {
        self.0.get(k).cloned().unwrap_or_else(|| default.to_string())
    }
}

/// The density rank `rank` evaluates: a standard normal (with faults) doing fixed
/// CPU work per evaluation, spread over [1, --spread] × the base with x[0]; on
/// `--slow-rank` the work is `--slow-factor` times larger (an unequal worker: the
/// chain is the same, only the time differs).
fn model(a: &Args, rank: usize) -> Model {
    let dim = a.get("dim", 4usize);
    let mut work = match a.0.get("spin-iters") {
        Some(_) => Work::iters(a.get("spin-iters", 0u64)),
        None => Work::micros(a.get("spin-us", 0.0f64).clamp(0.0, climcal::models::work::MAX_COST_US)),
    };
    if a.0.get("slow-rank").is_some_and(|r| r.parse() == Ok(rank)) {
        work.iters = (work.iters as f64 * a.get("slow-factor", 2.0f64)).round() as u64;
    }
    let spin = Spin::with_iters(dim, 0);
    let fault = match a.str("fault", "none").as_str() {
        "none" => Fault::None,
        "panic" => Fault::Panic,
        "nan" => Fault::Nan,
        f => panic!("--fault must be none, panic or nan, got {f}"),
    };
    Working::new(spin.with_fault(fault, a.get("fail-above", 1.0f64)), work.with_spread(a.get("spread", 1.0f64), 0.0, 1.0))
}

type Model = Working<Spin>;

fn sample(a: &Args, density: Model, exec: Arc<dyn Executor>, stop: Option<Arc<AtomicBool>>) -> Result<()> {
    let (walkers, steps, seed) = (a.get("walkers", 32usize), a.get("steps", 200u64), a.get("seed", 42u64));
    let (dim, iters) = (density.inner.dim, density.work.iters);
    let sleep = std::time::Duration::from_millis(a.get("step-sleep-ms", 0u64));
    let info = exec.info();
    let mut sampler = EnsembleSampler::new(density, seed).with_n_walkers(walkers)?.with_executor(exec);
    // `--moves JSON`: proposal moves, e.g. '[{"kind": "dime"}]' (default: stretch).
    let moves = a.get("moves", String::new());
    if !moves.is_empty() {
        sampler.set_moves(climcal::sampler::moves::Moves::from_json(&moves)?)?;
    }
    let mut state = sampler.initialize_without_prior(InitMethod::Ball { center: vec![0.0; dim], radius: 0.1 })?;
    let opts = RunOptions { stop, ..RunOptions::default() };
    let t0 = std::time::Instant::now();
    let (chain, outcome) = sampler.run_with_sink(&mut state, steps, &opts, None, |_| {
        if !sleep.is_zero() {
            std::thread::sleep(sleep);
        }
        ControlFlow::Continue(())
    })?;
    let wall = t0.elapsed().as_secs_f64();
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for v in chain.samples_raw().iter().chain(chain.ln_probs_raw()) {
        fnv1a(&mut h, &v.to_le_bytes());
    }
    if let Some(path) = a.0.get("out") {
        let bytes: Vec<u8> = chain.samples_raw().iter().chain(chain.ln_probs_raw()).flat_map(|v| v.to_le_bytes()).collect();
        std::fs::write(path, bytes)?;
    }
    let s = chain.eval_stats();
    let half_steps = 2.0 * chain.n_steps() as f64;
    println!("hash {h:016x}");
    println!("rows {}", chain.n_rows());
    println!("outcome {}", if outcome == RunOutcome::Interrupted { "interrupted" } else { "completed" });
    println!("layout ranks={} threads_per_rank={}", info.ranks, info.threads_per_rank);
    println!(
        "model_iters {iters} ({:.1} us at {:.3} ns/iteration)",
        iters as f64 * Spin::ns_per_iter() / 1e3,
        Spin::ns_per_iter()
    );
    println!("failures {}", chain.failures());
    println!("acceptance {:.4}", chain.mean_acceptance_rate());
    println!("wall_seconds {wall:.6}");
    println!("steps_per_second {:.3}", chain.n_steps() as f64 / wall);
    println!(
        "per_half_step_us eval={:.2} comm={:.2} wait={:.2} total={:.2}",
        1e6 * s.eval_seconds / half_steps,
        1e6 * s.comm_seconds / half_steps,
        1e6 * s.wait_seconds / half_steps,
        1e6 * wall / half_steps
    );
    Ok(())
}

fn local_executor(a: &Args) -> Result<RayonExecutor> {
    RayonExecutor::with_threads(a.get("threads", 1usize))
}

fn install_stop_handler(a: &Args) -> Option<Arc<AtomicBool>> {
    if !a.0.contains_key("signals") {
        return None;
    }
    let flag = Arc::new(AtomicBool::new(false));
    let f = flag.clone();
    ctrlc::set_handler(move || f.store(true, Ordering::SeqCst)).expect("signal handler");
    Some(flag)
}

fn quiet_panics() {
    // Injected model panics are caught and counted; don't print a backtrace for each.
    std::panic::set_hook(Box::new(|_| {}));
}

fn main() -> std::process::ExitCode {
    let a = Args::parse();
    quiet_panics();
    let default_exec = if cfg!(feature = "mpi") { "mpi" } else { "rayon" };
    let r = match a.str("exec", default_exec).as_str() {
        "serial" => sample(&a, model(&a, 0), Arc::new(SerialExecutor), install_stop_handler(&a)),
        "rayon" => local_executor(&a).and_then(|e| sample(&a, model(&a, 0), Arc::new(e), install_stop_handler(&a))),
        #[cfg(feature = "mpi")]
        "mpi" => run_mpi(&a),
        e => Err(Error::Unsupported(format!("--exec {e}: use serial, rayon or (built with feature mpi) mpi"))),
    };
    match r {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mpi_toy: {e}");
            std::process::ExitCode::from(if e.is_bad_input() { 2 } else { 1 })
        }
    }
}

#[cfg(feature = "mpi")]
fn run_mpi(a: &Args) -> Result<()> {
    use climcal::executor::mpi;
    let world = mpi::init()?;
    let density = model(a, world.rank());
    let local = local_executor(a)?;
    if world.is_coordinator() {
        let stop = install_stop_handler(a);
        let exec = mpi::MpiExecutor::new(local)?;
        // `--static`: equal static blocks (the scheme before dynamic distribution).
        let exec = Arc::new(if a.0.contains_key("static") { exec.with_static_blocks() } else { exec });
        let r = sample(a, density, exec.clone(), stop);
        exec.shutdown();
        let per_rank: Vec<String> =
            exec.rank_stats().iter().enumerate().map(|(r, s)| format!("{r}:{}/{}", s.failures, s.evaluations)).collect();
        println!("rank_failures {}", per_rank.join(" "));
        let times: Vec<String> = exec
            .rank_stats()
            .iter()
            .enumerate()
            .map(|(r, s)| format!("{r}:{:.4}/{:.4}/{:.4}", s.eval_seconds, s.comm_seconds, s.wait_seconds))
            .collect();
        println!("rank_eval_comm_wait_seconds {}", times.join(" "));
        println!("threads_by_rank {:?}", exec.threads_by_rank());
        println!("round_trip_us {:.2}", 1e6 * exec.round_trip_seconds());
        println!("taken_back {}", exec.taken_back());
        println!("advice {}", exec.advice().unwrap_or_else(|| "none".into()));
        r
    } else {
        if a.0.contains_key("signals") {
            // mpirun forwards Ctrl-C/SIGTERM to every rank: workers ignore it and
            // keep serving until rank 0 has checkpointed and releases them.
            ctrlc::set_handler(|| {}).expect("signal handler");
        }
        let rep = mpi::run_worker(&density, &local)?;
        eprintln!(
            "worker {}: {} chunks ({} skipped), {} evaluations, {} failures, eval {:.3} s, mpi {:.3} s, waiting {:.3} s",
            world.rank(),
            rep.chunks,
            rep.skipped,
            rep.evaluations,
            rep.failures,
            rep.eval_seconds,
            rep.mpi_seconds,
            rep.wait_seconds
        );
        Ok(())
    }
}

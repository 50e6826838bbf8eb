//! Dynamic distribution of a batch: whoever is free claims the next chunk, and
//! results are written by index, so the outcome does not depend on who evaluated
//! what (the chain stays bitwise identical for any layout).
//!
//! Equal static blocks leave workers idle when they run at different speeds
//! (mixed nodes, turbo, a busy neighbour) or when a model's cost varies across
//! parameter space. Here a batch is a counter: each claim takes the next chunk,
//! sized by guided self-scheduling (Polychronopoulos & Kuck 1987) — a share of
//! what is left, proportional to the claimer's threads — so chunks start large
//! (few messages) and shrink towards the end (a short tail).
//!
//! Also here: [`Backoff`], the wait of a rank with nothing to do (poll, briefly
//! spin, then sleep with growing pauses), used instead of MPI's blocking calls,
//! which busy-poll and take the core from whoever needs it on a loaded node.

use std::marker::PhantomData;
use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Smallest chunk worth a message, in estimated model time: 50 µs is 10–20 round
/// trips of a small message between ranks on one node.
pub const MIN_CHUNK_NS: f64 = 50_000.0;

/// Points per chunk for a model costing `ns_per_eval` (0 = not measured yet: 1).
pub fn min_chunk(ns_per_eval: f64) -> usize {
    if ns_per_eval > 0.0 && ns_per_eval.is_finite() {
        (MIN_CHUNK_NS / ns_per_eval).ceil().clamp(1.0, 1e9) as usize
    } else {
        1
    }
}

/// Length of the next chunk of a batch with `remaining` points left, for a
/// claimer with `threads` threads out of `total_threads`: half of its share of
/// what is left, at least `min_chunk` and at least one point per thread, at most
/// what is left.
pub fn chunk_len(remaining: usize, threads: usize, total_threads: usize, min_chunk: usize) -> usize {
    let share = (remaining * threads.max(1)).div_ceil(2 * total_threads.max(1));
    share.max(min_chunk).max(threads).min(remaining)
}

/// The points of one batch, handed out in chunks to whoever asks first.
#[derive(Debug)]
pub struct Claims {
    next: AtomicUsize,
    n: usize,
    total_weight: f64,
    min_chunk: usize,
}

impl Claims {
    /// A batch of `n` points shared by claimers with `total_threads` threads in all.
    pub fn new(n: usize, total_threads: usize, min_chunk: usize) -> Self {
        Self::weighted(n, total_threads as f64, min_chunk)
    }

    /// A batch shared by claimers whose weights (threads × relative speed) sum to
    /// `total_weight`.
    pub fn weighted(n: usize, total_weight: f64, min_chunk: usize) -> Self {
        let total_weight = if total_weight > 0.0 && total_weight.is_finite() { total_weight } else { 1.0 };
        Self { next: AtomicUsize::new(0), n, total_weight, min_chunk: min_chunk.max(1) }
    }

    /// Points in the batch.
    pub fn len(&self) -> usize {
        self.n
    }

    /// True for an empty batch.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Claim the next chunk for a claimer with `threads` threads (`None` when the
    /// batch is all handed out). Every point is handed out exactly once.
    pub fn claim(&self, threads: usize) -> Option<Range<usize>> {
        self.claim_weighted(threads as f64, threads)
    }

    /// Claim the next chunk for a claimer of weight `weight` (its share of the
    /// batch is `weight / total_weight`) and `threads` threads.
    pub fn claim_weighted(&self, weight: f64, threads: usize) -> Option<Range<usize>> {
        let mut start = self.next.load(Ordering::Relaxed);
        loop {
            if start >= self.n {
                return None;
            }
            let rem = self.n - start;
            let share = (rem as f64 * weight / (2.0 * self.total_weight)).ceil() as usize;
            let len = share.max(self.min_chunk).max(threads).clamp(1, rem);
            match self.next.compare_exchange_weak(start, start + len, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return Some(start..start + len),
                Err(now) => start = now,
            }
        }
    }

    /// Claim up to `len` points (at least one).
    pub fn claim_exact(&self, len: usize) -> Option<Range<usize>> {
        let mut start = self.next.load(Ordering::Relaxed);
        loop {
            if start >= self.n {
                return None;
            }
            let end = start + len.clamp(1, self.n - start);
            match self.next.compare_exchange_weak(start, end, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return Some(start..end),
                Err(now) => start = now,
            }
        }
    }

    /// Claim the next single point (rank 0's own threads: they take one point at
    /// a time, so that they never sit on points a worker could have had).
    pub fn claim_one(&self) -> Option<Range<usize>> {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        (i < self.n).then_some(i..i + 1)
    }

    /// Points not yet handed out.
    pub fn remaining(&self) -> usize {
        self.n.saturating_sub(self.next.load(Ordering::Relaxed))
    }
}

/// The output of a batch (`ln_probs` and `blobs`), written by several threads at
/// once, each into the chunks it claimed from one [`Claims`].
pub struct Disjoint<'a> {
    lp: *mut f64,
    blobs: *mut f64,
    n: usize,
    nb: usize,
    _out: PhantomData<&'a mut [f64]>,
}

// SAFETY: the pointers come from exclusive borrows held for 'a; `chunk` hands out
// disjoint ranges only (its contract), so no two threads alias an element.
unsafe impl Send for Disjoint<'_> {}
unsafe impl Sync for Disjoint<'_> {}

impl<'a> Disjoint<'a> {
    /// `blobs.len()` must be a multiple of `ln_probs.len()`.
    pub fn new(ln_probs: &'a mut [f64], blobs: &'a mut [f64]) -> Self {
        let n = ln_probs.len();
        let nb = blobs.len().checked_div(n).unwrap_or(0);
        assert_eq!(nb * n, blobs.len(), "blobs must hold n_blobs values per point");
        Self { lp: ln_probs.as_mut_ptr(), blobs: blobs.as_mut_ptr(), n, nb, _out: PhantomData }
    }

    /// The `ln_probs` and blobs of the points in `r`.
    ///
    /// # Safety
    /// No two live results of `chunk` may overlap: call it only with ranges from
    /// one [`Claims`] (each handed out once), once per range.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn chunk(&self, r: Range<usize>) -> (&mut [f64], &mut [f64]) {
        assert!(r.start <= r.end && r.end <= self.n, "chunk {r:?} outside the batch of {}", self.n);
        let k = r.end - r.start;
        (
            std::slice::from_raw_parts_mut(self.lp.add(r.start), k),
            std::slice::from_raw_parts_mut(self.blobs.add(r.start * self.nb), k * self.nb),
        )
    }
}

/// How a thread with nothing to do waits for a message: poll, spinning for a
/// short while (a reply usually comes within microseconds), then sleep with
/// pauses that double up to a limit. The sleeping phase gives the core to
/// whatever else needs it (another rank, a neighbour's job): MPI's own blocking
/// calls busy-poll instead.
#[derive(Debug, Clone)]
pub struct Backoff {
    since: Instant,
    spin_for: Duration,
    first: Duration,
    pause: Duration,
    max: Duration,
}

impl Backoff {
    /// Spin for `spin_for`, then sleep `first`, doubling up to `max`.
    pub fn new(spin_for: Duration, first: Duration, max: Duration) -> Self {
        Self { since: Instant::now(), spin_for, first, pause: first, max: max.max(first) }
    }

    /// Start waiting again (after a message arrived).
    pub fn reset(&mut self) {
        self.since = Instant::now();
        self.pause = self.first;
    }

    /// Wait a little before polling again.
    pub fn pause(&mut self) {
        if self.since.elapsed() < self.spin_for {
            std::hint::spin_loop();
        } else {
            std::thread::sleep(self.pause);
            self.pause = (self.pause * 2).min(self.max);
        }
    }
}

/// Ask the kernel to wake this thread's sleeps on time (timer slack 1 µs instead
/// of the default 50 µs), so that short polling pauses stay short. Linux only; a
/// no-op elsewhere.
pub fn fine_timer_slack() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_TIMERSLACK takes one integer argument and only affects the
    // calling thread.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1000 as libc::c_ulong, 0, 0, 0);
    }
}

/// Proposals per worker below which a layout leaves workers idle: dynamic
/// balancing needs a few points per worker and half-step.
pub const MIN_PROPOSALS_PER_WORKER: f64 = 4.0;

/// Start-up advice when `n_walkers` is too few for `workers` (ranks × threads):
/// each half-step has `n_walkers / 2` proposals. Returns the message (with the
/// expected efficiency and a walker count that would use the machine), or
/// `None` when the layout is fine.
pub fn layout_advice(n_walkers: usize, workers: usize) -> Option<String> {
    let per = (n_walkers / 2) as f64 / workers.max(1) as f64;
    if per >= MIN_PROPOSALS_PER_WORKER || workers <= 1 {
        return None;
    }
    // Rough efficiency: with fewer points than workers only a share `per` of them
    // has work, and with uneven costs about half an evaluation per worker is lost
    // at the end of each half-step.
    let eff = per.min(1.0) * per.max(1.0) / (per.max(1.0) + 0.5);
    let want = 2 * workers * MIN_PROPOSALS_PER_WORKER as usize;
    Some(format!(
        "{n_walkers} walkers give {per:.1} proposals per half-step to each of {workers} workers (ranks × threads): \
         expect about {:.0} % of the layout's speed (idle workers, and no room to balance uneven costs); \
         use n_walkers >= {want} to use the machine, or fewer ranks/threads",
        100.0 * eff.min(1.0)
    ))
}

/// A half-step shorter than this many coordination round trips spends a large
/// share of its time coordinating (20: about 95 % efficiency at best).
pub const MIN_HALF_STEP_ROUND_TRIPS: f64 = 20.0;

/// Batches measured (after the first, which has no cost estimate yet) before the
/// half-step advice is decided.
pub const ADVICE_BATCHES: usize = 8;

/// One batch as the MPI executor measured it, for [`half_step_advice`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchSample {
    /// Points in the batch (proposals of the half-step).
    pub points: usize,
    /// Wall time of the batch, seconds.
    pub wall: f64,
    /// Model work in it: evaluating thread-seconds summed over all ranks.
    pub work: f64,
    /// False when the batch was too cheap to send and rank 0 evaluated it alone.
    pub shared: bool,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Walkers (a multiple of `2 · workers`) for which each worker gets `factor` ×
/// the work it has now with `points` proposals per half-step.
fn walkers_for(points: usize, factor: f64, workers: usize) -> usize {
    let step = 2 * workers.max(1);
    let want = (2.0 * points as f64 * factor.max(1.0)).min(1e12).ceil() as usize;
    want.div_ceil(step).max(1) * step
}

/// Advice once the first batches of a run are measured (`samples`, see
/// [`ADVICE_BATCHES`]) on `ranks` ranks with `workers` threads in all, where one
/// coordination round trip to every rank costs `round_trip` seconds (measured
/// with empty chunks): `None` when the half-steps are long enough for the layout,
/// else the message, with the measured efficiency (model work ÷ (workers × wall
/// time)) and the walker count that would give every worker
/// [`MIN_HALF_STEP_ROUND_TRIPS`] × the coordination cost of work per half-step.
pub fn half_step_advice(samples: &[BatchSample], ranks: usize, workers: usize, round_trip: f64) -> Option<String> {
    if ranks <= 1 || samples.is_empty() {
        return None;
    }
    let wall = median(samples.iter().map(|s| s.wall).collect());
    let work = median(samples.iter().map(|s| s.work).collect());
    let points = samples.iter().map(|s| s.points).max().unwrap_or(1).max(1);
    let workers = workers.max(1);
    let per_worker = work / workers as f64;
    let eff = (100.0 * per_worker / wall.max(1e-12)).min(100.0);
    let need = MIN_HALF_STEP_ROUND_TRIPS * round_trip;
    let us = |s: f64| 1e6 * s;
    let alone = samples.iter().filter(|s| !s.shared).count() * 2 > samples.len();
    if alone {
        // Each worker's piece must be worth a message (MIN_CHUNK_NS) and the
        // coordination; the batch's work per worker grows with the walkers.
        let target = need.max(MIN_CHUNK_NS * 1e-9);
        let want = walkers_for(points, target / per_worker.max(1e-12), workers);
        return Some(format!(
            "half-steps of {points} proposals carry {:.0} µs of model work in all, too little to share between {ranks} \
             MPI ranks (a piece must be worth a message, ~{:.0} µs): rank 0 evaluates them alone while the other ranks \
             idle, about {eff:.0} % of the layout's speed; use n_walkers >= {want}, or one rank with threads",
            us(work),
            us(target),
        ));
    }
    if wall >= need {
        return None;
    }
    let want = walkers_for(points, need / per_worker.max(1e-12), workers);
    Some(format!(
        "half-steps take {:.0} µs ({:.0} µs of model work per worker), only {:.0}× the coordination cost of {:.1} µs \
         (a round trip to every MPI rank, measured): the layout runs at about {eff:.0} % of its ideal speed; \
         n_walkers >= {want} would give each worker {MIN_HALF_STEP_ROUND_TRIPS:.0}× that in work, or use fewer ranks \
         (threads on one node)",
        us(wall),
        us(per_worker),
        wall / round_trip.max(1e-12),
        us(round_trip),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advice_only_when_workers_would_idle() {
        assert!(layout_advice(64, 8).is_none()); // 4 per worker
        assert!(layout_advice(1000, 1).is_none());
        let m = layout_advice(64, 32).unwrap(); // 1 per worker
        assert!(m.contains("1.0 proposals") && m.contains("67 %") && m.contains("n_walkers >= 256"), "{m}");
        let m = layout_advice(32, 64).unwrap(); // 0.25 per worker: 3/4 idle
        assert!(m.contains("17 %"), "{m}");
    }

    #[test]
    fn half_step_advice_when_coordination_dominates() {
        let b = |wall: f64, work: f64, shared: bool| BatchSample { points: 32, wall, work, shared };
        // 2 workers, 3.2 ms of work each in a 3.4 ms half-step, 20 µs round trips: fine.
        assert!(half_step_advice(&[b(3.4e-3, 6.4e-3, true); 8], 2, 2, 20e-6).is_none());
        // One rank: nothing to coordinate.
        assert!(half_step_advice(&[b(1e-4, 1e-4, true); 8], 1, 4, 20e-6).is_none());
        // 80 µs of work per worker in a 100 µs half-step, 10 µs round trips (20× = 200 µs).
        let m = half_step_advice(&[b(100e-6, 160e-6, true); 8], 2, 2, 10e-6).unwrap();
        assert!(m.contains("half-steps take 100 µs") && m.contains("80 µs of model work per worker"), "{m}");
        assert!(m.contains("about 80 %") && m.contains("10× the coordination cost of 10.0 µs"), "{m}");
        // 200 µs needed per worker: 2.5× the walkers (64 · 2.5 = 160, a multiple of 4).
        assert!(m.contains("n_walkers >= 160"), "{m}");
        // Batches kept by rank 0: the other ranks idle.
        let m = half_step_advice(&[b(40e-6, 40e-6, false); 8], 4, 4, 10e-6).unwrap();
        assert!(m.contains("rank 0 evaluates them alone") && m.contains("about 25 %"), "{m}");
        // 10 µs of work per worker; a piece must be worth 200 µs (20 round trips): 20×.
        assert!(m.contains("n_walkers >= 1280"), "{m}");
    }

    #[test]
    fn chunks_are_guided_and_cover_the_batch_once() {
        for n in [0usize, 1, 2, 7, 16, 17, 100, 4567] {
            for (threads, min) in [(vec![1, 1], 1), (vec![1, 3, 2], 1), (vec![4], 5), (vec![2, 2, 2, 2], 1)] {
                let total = threads.iter().sum();
                let c = Claims::new(n, total, min);
                let mut seen = vec![0u8; n];
                let mut lens = Vec::new();
                let mut i = 0;
                while let Some(r) = c.claim(threads[i % threads.len()]) {
                    assert!(!r.is_empty());
                    lens.push(r.len());
                    for j in r {
                        seen[j] += 1;
                    }
                    i += 1;
                }
                assert!(seen.iter().all(|&s| s == 1), "n={n} {threads:?}");
                assert_eq!(c.remaining(), 0);
                // Guided: with one-thread claimers, no chunk is longer than an earlier one + 1.
                if threads.iter().all(|&t| t == 1) && min == 1 {
                    assert!(lens.windows(2).all(|w| w[1] <= w[0] + 1), "{lens:?}");
                }
            }
        }
        assert_eq!(chunk_len(16, 1, 2, 1), 4);
        assert_eq!(chunk_len(16, 2, 4, 1), 4);
        assert_eq!(chunk_len(3, 4, 8, 1), 3);
        assert_eq!(chunk_len(100, 1, 2, 30), 30);
        assert_eq!(min_chunk(0.0), 1);
        assert_eq!(min_chunk(200_000.0), 1);
        assert_eq!(min_chunk(5_000.0), 10);
    }

    #[test]
    fn threads_claiming_at_once_write_every_result_once() {
        let n = 1000;
        let mut lp = vec![0.0; n];
        let mut bl = vec![0.0; 2 * n];
        let claims = Claims::new(n, 4, 1);
        let out = Disjoint::new(&mut lp, &mut bl);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    while let Some(r) = claims.claim(1) {
                        let start = r.start;
                        // SAFETY: ranges come from one Claims, each once.
                        let (l, b) = unsafe { out.chunk(r) };
                        for (k, v) in l.iter_mut().enumerate() {
                            *v += (start + k) as f64;
                            b[2 * k] += 1.0;
                            b[2 * k + 1] += 2.0;
                        }
                    }
                });
            }
        });
        assert!(lp.iter().enumerate().all(|(i, &v)| v == i as f64));
        assert!(bl.chunks(2).all(|b| b == [1.0, 2.0]));
    }

    #[test]
    fn backoff_spins_then_sleeps_longer() {
        let mut b = Backoff::new(Duration::ZERO, Duration::from_micros(50), Duration::from_micros(200));
        let t = Instant::now();
        for _ in 0..4 {
            b.pause();
        }
        // 50 + 100 + 200 + 200 µs at least.
        assert!(t.elapsed() >= Duration::from_micros(550));
        b.reset();
        assert_eq!(b.pause, Duration::from_micros(50));
    }
}

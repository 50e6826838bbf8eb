//! argmin's particle swarm with a stopping rule: argmin's `ParticleSwarm` runs
//! until `max_iters`; this wrapper also stops when the best cost has not improved
//! by more than a tolerance for `patience` iterations.

use argmin::core::{
    CostFunction, Error as ArgminError, PopulationState, Problem, Solver, SyncAlias, TerminationReason, TerminationStatus, KV,
};
use argmin::solver::particleswarm::{Particle, ParticleSwarm};
use rand_pcg::Pcg64;

pub(crate) type SwarmState = PopulationState<Particle<Vec<f64>, f64>, f64>;

/// [`ParticleSwarm`] (SPSO 2011 weights) with a stall-based stop.
pub(crate) struct PatientSwarm {
    inner: ParticleSwarm<Vec<f64>, f64, Pcg64>,
    tolerance: f64,
    patience: u64,
    reference: f64,
    stalled: u64,
}

impl PatientSwarm {
    pub fn new(bounds: (Vec<f64>, Vec<f64>), n_particles: usize, rng: Pcg64, tolerance: f64, patience: u64) -> Self {
        Self {
            inner: ParticleSwarm::new(bounds, n_particles).with_rng_generator(rng),
            tolerance,
            patience,
            reference: f64::INFINITY,
            stalled: 0,
        }
    }
}

impl<O> Solver<O, SwarmState> for PatientSwarm
where
    O: CostFunction<Param = Vec<f64>, Output = f64> + SyncAlias,
{
    fn name(&self) -> &str {
        "Particle Swarm Optimization"
    }

    fn init(&mut self, problem: &mut Problem<O>, state: SwarmState) -> Result<(SwarmState, Option<KV>), ArgminError> {
        self.inner.init(problem, state)
    }

    fn next_iter(&mut self, problem: &mut Problem<O>, state: SwarmState) -> Result<(SwarmState, Option<KV>), ArgminError> {
        self.inner.next_iter(problem, state)
    }

    fn terminate(&mut self, state: &SwarmState) -> TerminationStatus {
        let best = state.get_best_cost();
        if best < self.reference - self.tolerance {
            self.reference = best;
            self.stalled = 0;
        } else {
            self.stalled += 1;
        }
        if self.stalled >= self.patience {
            TerminationStatus::Terminated(TerminationReason::SolverConverged)
        } else {
            TerminationStatus::NotTerminated
        }
    }
}

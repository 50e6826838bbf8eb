#!/bin/bash
# Slurm job: calibrate the two-layer model with climcal. Rank 0 samples and writes
# the chain file; any other ranks only evaluate the model.
#
#   sbatch cluster-examples/slurm-two-layer.sh
#   climcal info two-layer-cluster.h5    # afterwards or while it runs: ranks, threads and
#                                        # each rank's evaluating / communicating / waiting time
#
# Sized by the rules of docs/cluster.md ("Choosing ranks × threads × walkers"):
# - a two-layer run costs ~5 µs, so a half-step of the run file's 512 walkers is
#   256 × 5 µs ≈ 1.3 ms of work in all. Each worker (rank × thread) needs at least
#   ~20× the coordination cost (10–40 µs on one node) of work per half-step and at
#   least 4 proposals: that is ~4–8 workers, on ONE node, as threads (no messages).
#   climcal says so at start-up when a layout is too wide for the model.
# - For a model costing >= 1 ms, go wide: one rank per node with threads for its
#   cores, n_walkers >= 8 × ranks × threads, e.g. 4 nodes × 1 rank × 32 threads
#   with n_walkers = 1024 (set in the run file):
#     #SBATCH --nodes=4 --ntasks-per-node=1 --cpus-per-task=32
# - climcal must be built against the MPI you launch it with (`mpirun --version`,
#   `ldd $(which climcal) | grep mpi`); a foreign launcher is detected and refused (exit 2).
# - A killed job resumes exactly from its last checkpoint, with any layout:
#   `srun climcal resume two-layer-cluster.h5`.
#SBATCH --job-name=climcal-2layer
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=1
#SBATCH --cpus-per-task=8          # rayon threads of the rank (climcal reads SLURM_CPUS_PER_TASK)
#SBATCH --time=02:00:00
#SBATCH --output=climcal-%j.log
#SBATCH --signal=TERM@120          # SIGTERM to every rank 2 min before the time limit:
                                   # workers ignore it, rank 0 checkpoints and exits

set -euo pipefail
module load openmpi 2>/dev/null || true   # the MPI climcal was built against
cd "$SLURM_SUBMIT_DIR"

THREADS=${SLURM_CPUS_PER_TASK:-1}
# srun with PMIx (or: mpirun -n $SLURM_NTASKS --bind-to none climcal run ...). With
# one task srun still starts climcal under MPI; the same script runs wider layouts.
OUT=two-layer-cluster.h5
if [ -e "$OUT" ]; then
  exec srun --mpi=pmix --cpu-bind=none climcal resume "$OUT" --threads "$THREADS"
else
  exec srun --mpi=pmix --cpu-bind=none climcal run cluster-examples/two-layer-cluster.toml -o "$OUT" --threads "$THREADS"
fi

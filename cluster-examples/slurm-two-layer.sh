#!/bin/bash
# Slurm job: calibrate the two-layer model on 4 nodes × 32 ranks × 1 thread (128
# ranks) with climcal's MPI executor. Rank 0 samples and writes the chain file;
# the other ranks only evaluate the model.
#
#   sbatch cluster-examples/slurm-two-layer.sh
#   climcal info two-layer-cluster.h5            # afterwards, or while it runs
#
# Rules of thumb (docs/cluster.md):
# - At most n_walkers/2 evaluations run at once: with 128 ranks × 1 thread use
#   n_walkers >= 2 × 128 = 256 (the run file below uses 512: 2 points per rank per half-step).
# - climcal must be built against the MPI you launch it with (`mpirun --version`,
#   `ldd $(which climcal) | grep mpi`); a foreign launcher is detected and refused (exit 2).
# - A killed job resumes exactly from its last checkpoint, with any number of ranks:
#   `srun climcal resume two-layer-cluster.h5`.
#SBATCH --job-name=climcal-2layer
#SBATCH --nodes=4
#SBATCH --ntasks-per-node=32
#SBATCH --cpus-per-task=1          # rayon threads per rank (climcal reads SLURM_CPUS_PER_TASK)
#SBATCH --time=02:00:00
#SBATCH --output=climcal-%j.log
#SBATCH --signal=TERM@120          # SIGTERM to every rank 2 min before the time limit:
                                   # workers ignore it, rank 0 checkpoints and exits

set -euo pipefail
module load openmpi 2>/dev/null || true   # the MPI climcal was built against
cd "$SLURM_SUBMIT_DIR"

export RAYON_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1}
# Hybrid layouts (fewer ranks, more threads) also work: e.g. --ntasks-per-node=4
# --cpus-per-task=8 gives 4 ranks × 8 threads per node; the chain is the same.

# srun with PMIx (or: mpirun -n $SLURM_NTASKS --bind-to none climcal run ...).
OUT=two-layer-cluster.h5
if [ -e "$OUT" ]; then
  exec srun --mpi=pmix --cpu-bind=none climcal resume "$OUT" --threads "$RAYON_NUM_THREADS"
else
  exec srun --mpi=pmix --cpu-bind=none climcal run cluster-examples/two-layer-cluster.toml -o "$OUT" --threads "$RAYON_NUM_THREADS"
fi

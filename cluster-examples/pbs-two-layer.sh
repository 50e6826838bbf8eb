#!/bin/bash
# PBS Pro / OpenPBS job: calibrate the two-layer model on 2 nodes × 16 ranks × 2
# threads (32 ranks, 64 cores) with climcal's MPI executor. Rank 0 samples and
# writes the chain file; the other ranks only evaluate the model.
#
#   qsub cluster-examples/pbs-two-layer.sh
#
# With 32 ranks × 2 threads, 64 evaluations run at once: n_walkers >= 128
# (the run file uses 512). See docs/cluster.md for the cost model.
#PBS -N climcal-2layer
#PBS -l select=2:ncpus=32:mpiprocs=16:ompthreads=2
#PBS -l walltime=02:00:00
#PBS -j oe

set -euo pipefail
module load openmpi 2>/dev/null || true   # the MPI climcal was built against
cd "$PBS_O_WORKDIR"

THREADS=${OMP_NUM_THREADS:-2}             # PBS sets it from ompthreads
NRANKS=$(wc -l < "$PBS_NODEFILE")         # one line per MPI process (mpiprocs)
export RAYON_NUM_THREADS=$THREADS

# --bind-to none: otherwise OpenMPI pins each rank (and all its rayon threads) to
# one core. -x passes the thread count to every rank.
MPIRUN=(mpirun -n "$NRANKS" --hostfile "$PBS_NODEFILE" --map-by "ppr:16:node" --bind-to none -x RAYON_NUM_THREADS)
OUT=two-layer-cluster.h5
if [ -e "$OUT" ]; then
  "${MPIRUN[@]}" climcal resume "$OUT" --threads "$THREADS"
else
  "${MPIRUN[@]}" climcal run cluster-examples/two-layer-cluster.toml -o "$OUT" --threads "$THREADS"
fi

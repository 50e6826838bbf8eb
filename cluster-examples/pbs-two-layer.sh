#!/bin/bash
# PBS Pro / OpenPBS job: calibrate the two-layer model with climcal. Rank 0 samples
# and writes the chain file; any other ranks only evaluate the model.
#
#   qsub cluster-examples/pbs-two-layer.sh
#
# Sized by the rules of docs/cluster.md ("Choosing ranks × threads × walkers"): a
# two-layer run costs ~5 µs, so the run file's 512 walkers give ~1.3 ms of work per
# half-step in all: enough for ~4–8 workers at >= 20× the coordination cost each,
# on one node, as threads. For a model costing >= 1 ms use one rank per node with
# threads for its cores and n_walkers >= 8 × ranks × threads, e.g.
#   #PBS -l select=4:ncpus=32:mpiprocs=1:ompthreads=32     (n_walkers = 1024)
#PBS -N climcal-2layer
#PBS -l select=1:ncpus=8:mpiprocs=1:ompthreads=8
#PBS -l walltime=02:00:00
#PBS -j oe

set -euo pipefail
module load openmpi 2>/dev/null || true   # the MPI climcal was built against
cd "$PBS_O_WORKDIR"

THREADS=${OMP_NUM_THREADS:-8}             # PBS sets it from ompthreads
NRANKS=$(wc -l < "$PBS_NODEFILE")         # one line per MPI process (mpiprocs)
export RAYON_NUM_THREADS=$THREADS

# --bind-to none: otherwise OpenMPI pins each rank (and all its rayon threads) to
# one core. --map-by ppr:1:node: one rank per node. -x passes the thread count.
MPIRUN=(mpirun -n "$NRANKS" --hostfile "$PBS_NODEFILE" --map-by "ppr:1:node" --bind-to none -x RAYON_NUM_THREADS)
OUT=two-layer-cluster.h5
if [ -e "$OUT" ]; then
  "${MPIRUN[@]}" climcal resume "$OUT" --threads "$THREADS"
else
  "${MPIRUN[@]}" climcal run cluster-examples/two-layer-cluster.toml -o "$OUT" --threads "$THREADS"
fi

#!/usr/bin/env bash
# Paper-profile cells on a lent GPU machine, in one call of the workplace's `device` tool, within a time budget.
#
# Here, once per session (the data in ../shared does not travel; this copy is git-ignored):
#   mkdir -p .devdata && cp ../shared/data/s3rec/* .devdata/
# The working tree travels (64 MiB at most): `seqrec park` keeps only the pretrainings an unstored cell needs, so
# results/paper/parked/ usually fits; if it does not, move the parked checkpoints this call does not need out of the
# tree first and `git checkout` them back afterwards.
# Then call the device tool (its python3 holds PyTorch; elsewhere set PYTHON) with
#   command: SEQREC_GIT_COMMIT=<git rev-parse HEAD> SEQREC_GIT_CLEAN=1 BUDGET=500 bash scripts/device_paper.sh
#   carry:   [".devdata", "results/paper/.partial", "checkpoints/pretrain"]   (whichever of the last two exist)
# (the copy's .git there stays at the session's first commit, so git would name a commit the code is not: the two
# variables are the commit the code is, recorded in every result's provenance)
# and unpack what comes back, here:  cat <files_at>/paper_results.tgz.part-* | tar -xz
#
# Every spec of CELLS ("grid:filter", filter as in --only, ';'-separated) starts at once, each a `seqrec run` of its
# own with JOBS cells side by side: the cells are small for an H200 (one SASRec on Beauty uses a sliver of it), so
# they share the GPU rather than queue behind the slowest grid. The runner skips every stored cell and resumes a
# partial one at its last epoch (S3-Rec pretraining too; parked checkpoints, results/paper/parked/, are taken back).
# When BUDGET seconds are up the runners are stopped (SIGTERM), their per-epoch checkpoints kept, so the next call
# (or a CPU run) goes on from there. The files this call wrote come back as one tar.gz cut into 15 MiB parts (the
# tool returns at most 8 files of 16 MiB), result records first, then checkpoints, as many as fit in MAX_MIB.
#
# Done by 2026-12-06: every cell of the paper profile planned before that day (Table 2, Table 3's Beauty rows,
# Figure 1 and every ablation), mostly on CPU; on the H200, 2026-12-04, two calls, 737 s of training: the Figure 1
# seed check, part of the Sports_and_Outdoors pretraining at about 12-14 s per epoch against 3.6 min on 1 CPU thread,
# and part of the authors' recipe on LastFM at about 9-11 s per epoch against 2.65 min. The last of them, the
# patience-40 rerun of S3-Rec BCE on Yelp (seed 44), landed on 2026-12-06; the seeds ablation's last cell (S3-Rec +
# CCE on Toys_and_Games, seed 43) on 2026-12-07, on CPU; the patience-40 rerun of S3-Rec BCE on Beauty (seed 44),
# with its own 150-epoch pretraining, on 2026-12-07, on CPU held to AVX2 kernels (see the patience comment in
# seqrec/experiments.py), its first 40 epochs equal to the patience-10 run's bit for bit.
# Then, on CPU: the ablations grid's figure1_budget cell (Figure 1's MLM (mask 0.5) run with a 400-epoch budget) on
# 2026-12-08, and the seeds ablation's BERT4Rec on Beauty (Table 3's cell), seeds 43 and 44, on 2026-12-08.
# Left (2026-12-08): nothing planned is unstored; the default CELLS is empty. To run every grid at once (the runner
# skips what is stored):
#   CELLS="table2: table3: figure1: ablations:"
set -u
BUDGET=${BUDGET:-500}
JOBS=${JOBS:-3}
MAX_MIB=${MAX_MIB:-56}
DEVICE=${DEVICE:-cuda}
OUT=${OUT:-$PWD/device_out}
mkdir -p "$OUT"
export SEQREC_DATA_DIR=${SEQREC_DATA_DIR:-$PWD/.devdata} PYTHONPATH=$PWD PYTHONUNBUFFERED=1
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
CELLS=${CELLS:-}
touch /tmp/device_start
start=$(date +%s)
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
"${PYTHON:-python3}" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
if [ "$DEVICE" = cuda ]; then  # the CUDA-only tests, beside the training (they take seconds)
  ( "${PYTHON:-python3}" -m pytest -q -p no:cacheprovider tests/test_trainer.py tests/test_fastce.py \
      tests/test_models.py -k cuda > "$OUT/cuda_tests.log" 2>&1; echo "rc $?" >> "$OUT/cuda_tests.log" ) &
fi
( while sleep 90; do  # each running cell's epoch and minutes so far, for the speed per epoch on this machine
    echo "--- $(date -u +%T), $(( $(date +%s) - start )) s in"
    "${PYTHON:-python3}" -m seqrec.cli progress --profile paper 2>&1 | grep -v '^parked'
  done ) > "$OUT/progress.log" 2>&1 &
watcher=$!
pids=()
n=0
for spec in $CELLS; do
  grid=${spec%%:*}; filter=${spec#*:}
  only=(); [ -n "$filter" ] && only=(--only ${filter//;/ })
  n=$((n + 1))
  echo "=== $(date -u +%T) [$n] $grid ${only[*]} (${JOBS} at once)"
  timeout --signal=TERM --kill-after=30 "$BUDGET" "${PYTHON:-python3}" -m seqrec.cli run "$grid" "${only[@]}" \
    --profile paper --device "$DEVICE" --jobs "$JOBS" > "/tmp/device_run_$n.log" 2>&1 &
  pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid"; done
kill "$watcher" 2>/dev/null
echo "=== $(date -u +%T) runners done after $(( $(date +%s) - start )) s"
"${PYTHON:-python3}" -m seqrec.cli progress --profile paper 2>&1 | grep -v '^parked' | tee -a "$OUT/progress.log"
for i in $(seq 1 "$n"); do
  echo "--- runner $i"; tr '\r' '\n' < "/tmp/device_run_$i.log" | grep -v '^\s*$' | tail -n 25
  tr '\r' '\n' < "/tmp/device_run_$i.log" | grep -v '^\s*$' | tail -n 400 > "$OUT/runner_$i.log"
done
[ -f "$OUT/cuda_tests.log" ] && { echo "--- CUDA tests"; tail -n 5 "$OUT/cuda_tests.log"; }
# what this call wrote, records first, then checkpoints (run partials, pretrainings), while they fit in MAX_MIB
{
  find results/paper -path results/paper/parked -prune -o -path results/paper/.models -prune -o \
    -newer /tmp/device_start -type f -name '*.json' -print
  find results/paper/.partial -newer /tmp/device_start -type f -name '*.pt' -path '*table2*' -print 2>/dev/null
  find checkpoints/pretrain -newer /tmp/device_start -type f -name '*.pt' -print 2>/dev/null
  find results/paper/.partial -newer /tmp/device_start -type f -name '*.pt' ! -path '*table2*' -print 2>/dev/null
} > /tmp/candidates
total=0; : > /tmp/new_files
while read -r f; do
  size=$(stat -c %s "$f")
  if [ $(( total + size )) -le $(( MAX_MIB * 1048576 )) ]; then
    echo "$f" >> /tmp/new_files; total=$(( total + size ))
  else
    echo "left out (over ${MAX_MIB} MiB): $f ($size bytes)"
  fi
done < /tmp/candidates
echo "$(wc -l < /tmp/new_files) new files, $total bytes:"; cat /tmp/new_files
tar -czf - -T /tmp/new_files | split -b 15m - "$OUT/paper_results.tgz.part-"
ls -l "$OUT"

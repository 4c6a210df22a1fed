#!/usr/bin/env bash
# Paper-profile cells on a lent GPU machine, in one call of the workplace's `device` tool, within a time budget.
#
# Here, once per session (the data in ../shared does not travel; this copy is git-ignored):
#   mkdir -p .devdata && cp ../shared/data/s3rec/* .devdata/
# Then call the device tool (its python3 holds PyTorch; elsewhere set PYTHON) with
#   command: BUDGET=540 bash scripts/device_paper.sh
#   carry:   [".devdata", "results/paper/.partial", "checkpoints/pretrain"]   (whichever of the last two exist)
# and unpack what comes back, here:  tar -xzf <files_at>/paper_results.tgz
# The runner skips every stored cell and resumes a partial one at its last epoch (S3-Rec pretraining too); when the
# budget ends, the running cells are stopped (SIGTERM) with their per-epoch checkpoints kept, so the next call (or a
# CPU run) goes on from there.
#
# JOBS cells train side by side (`seqrec run --jobs`): one SASRec on Beauty uses a sliver of an H200, so 8 at once
# cost little more wall time than one. Cells in the order, skipping what the store has. Done on CPU by
# 2026-12-04: Table 2 except S3-Rec on Sports_and_Outdoors; Table 3's Beauty rows; every Figure 1 point (a
# 100-negative cell takes about 2 h wall on 2 CPU threads; BCE-1000 took 5.59 h on 1 thread, 78.6 s per training
# epoch; Figure 1's CCE 33,842 s on 1 thread); the LastFM ablations; the patience-40 checks (S3-Rec BCE on
# Toys_and_Games included); SASRec seeds on all five datasets; the Figure 1 seed check's BPR-max-100 seed 43 (12,949 s
# wall on 1 thread). Left: S3-Rec on Sports_and_Outdoors (pretraining started on CPU 2026-12-04, about 3.7 min per
# epoch on 1 thread, 100 epochs, then BCE and CCE); S3-Rec with the authors' pretraining recipe at 150 epochs on
# LastFM (started on CPU 2026-12-04, ~6 CPU hours, minutes here; it says which recipe the large datasets' S3-Rec cells
# should be trusted with); the rest of the Figure 1 seed check (BPR-max-100 seed 44, paused at epoch 23 of 200 to give
# its core to S3-Rec, and CCE seeds 43 and 44 in Figure 1's configuration). Checkpoints parked with `seqrec park`
# (results/paper/parked/, committed) travel with the working tree and the runner takes them back, so the carry list's
# last two entries are needed only for checkpoints newer than the parked ones.
# Override with CELLS="grid:filter ..." (filter as in --only, ';'-separated).
set -u
BUDGET=${BUDGET:-540}
JOBS=${JOBS:-8}
export SEQREC_DATA_DIR=${SEQREC_DATA_DIR:-$PWD/.devdata} PYTHONPATH=$PWD PYTHONUNBUFFERED=1
DEFAULT_CELLS="figure1: ablations:ablation=figure1_seeds ablations:ablation=pretraining table2:model=s3rec"
CELLS=${CELLS:-"$DEFAULT_CELLS ablations:ablation=seeds ablations:"}
touch /tmp/device_start
end=$(( $(date +%s) + BUDGET ))
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
for spec in $CELLS; do
  left=$(( end - $(date +%s) ))
  [ "$left" -le 20 ] && break
  grid=${spec%%:*}; filter=${spec#*:}
  only=(); [ -n "$filter" ] && only=(--only ${filter//;/ })
  echo "=== $(date -u +%T) $grid ${only[*]} (${left} s left, ${JOBS} at once)"
  timeout --signal=TERM --kill-after=30 "$left" "${PYTHON:-python3}" -m seqrec.cli run "$grid" "${only[@]}" \
    --profile paper --device cuda --jobs "$JOBS"
done
# every result file written by this call, the partial checkpoints and S3-Rec pretraining checkpoints, in one archive
find results/paper checkpoints/pretrain -newer /tmp/device_start -type f ! -name '*.tmp' ! -name '*.lock' \
  > /tmp/new_files 2>/dev/null
echo "$(wc -l < /tmp/new_files) new files"
tar -czf "${OUT:-.}/paper_results.tgz" -T /tmp/new_files

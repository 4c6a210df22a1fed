#!/usr/bin/env bash
# Paper-profile cells on a lent GPU machine, in one call of the workplace's `device` tool, within a time budget.
#
# Here, once per session (the data in ../shared does not travel; this copy is git-ignored):
#   mkdir -p .devdata && cp ../shared/data/s3rec/* .devdata/
# Then call the device tool (its python3 holds PyTorch; elsewhere set PYTHON) with
#   command: BUDGET=540 bash scripts/device_paper.sh      carry: [".devdata", "results/paper/.partial"]
# and unpack what comes back, here:  tar -xzf <files_at>/paper_results.tgz
# The runner skips every stored cell and resumes a partial one at its last epoch; when the budget ends, the running
# cell is stopped (SIGTERM) with its per-epoch checkpoint kept, so the next call (or a CPU run) goes on from there.
# Cells in the order, skipping what the store has (on 2026-11-28, 6th session: LastFM complete; SASRec,
# GRU4Rec and SR-GNN (both CCE variants) everywhere, Table 3's BERT4Rec and both patience-40 checks done on CPU;
# Figure 1's CCE and BCE-1 cells and Beauty's SASRec seeds partly trained on CPU: carry their checkpoints):
# Figure 1's cheaper losses (1-10 negatives, CE, CCE), S3-Rec (pretraining per dataset), the rest of Figure 1,
# the seeds. Override with CELLS="grid:filter ..." (filter as in --only, ';'-separated).
set -u
BUDGET=${BUDGET:-540}
export SEQREC_DATA_DIR=${SEQREC_DATA_DIR:-$PWD/.devdata} PYTHONPATH=$PWD PYTHONUNBUFFERED=1
CELLS=${CELLS:-"figure1:num_negatives=10 figure1:loss=bce,ce,cce;num_negatives=1 table2:model=s3rec figure1: ablations:ablation=seeds ablations:"}
touch /tmp/device_start
end=$(( $(date +%s) + BUDGET ))
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
for spec in $CELLS; do
  left=$(( end - $(date +%s) ))
  [ "$left" -le 20 ] && break
  grid=${spec%%:*}; filter=${spec#*:}
  only=(); [ -n "$filter" ] && only=(--only ${filter//;/ })
  echo "=== $(date -u +%T) $grid ${only[*]} (${left} s left)"
  timeout --signal=TERM --kill-after=30 "$left" "${PYTHON:-python3}" -m seqrec.cli run "$grid" "${only[@]}" --profile paper --device cuda
done
# every result file written by this call, and the partial checkpoints, in one archive
find results/paper -newer /tmp/device_start -type f ! -name '*.tmp' > /tmp/new_files
echo "$(wc -l < /tmp/new_files) new files"
tar -czf "${OUT:-.}/paper_results.tgz" -T /tmp/new_files

#!/bin/bash
# How the second study's results were made (docs/EXPERIMENTS.md, "The second study"): the commands of the
# registered plan, run part by part and seed by seed, each result joined into this folder and committed
# at once, so that a stopped session loses at most the seed in flight. Resumable: what is committed here
# is never run again (a part's seeds are read from its sweep.json); finished runs under $OUT are reused.
#
#   FROZEN   a worktree at the plan commit a0f1a7d with the --fixed parse fix (e23cbc8) cherry-picked:
#            it trains every run
#   SCORER   a worktree at 05c2fef (the first commit with `sweep --checkpoint best` and the fix):
#            it scores the secondary protocol, training nothing
#   RESULTS  the checkout whose results/second_edition/ receives the files and the commits
#   OUT      the runs (checkpoints; they do not travel); REFDENSE_DATA the generated datasets
#
# Order (registered): the pilot (seeds 0-4) of C4, C1, C2, C3 at 60 and at 120 videos; then the same
# parts on seeds 5 to n-1, n = 12 (min(12, max(10, the pilot's largest seeds-for-power)), results/
# second_edition/README.md); then the paper's ablation table, every variant at entangle 0 and 1, seeds 0-9.
set -euo pipefail
: "${FROZEN:?a worktree at a0f1a7d + e23cbc8}" "${SCORER:?a worktree at 05c2fef}" "${RESULTS:?a checkout}"
: "${OUT:?the runs folder}" "${REFDENSE_DATA:?the data folder}" "${PY:?a python with the requirements of refdense}"
export REFDENSE_DATA HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 MPLBACKEND=Agg
N=12
LAUNCH="--config refdense/configs/benchmark.yaml --out $OUT --jobs 2 --threads 1"

seeds_done() {  # the seeds of a result folder's sweep.json, one per line
  [ -f "$1/sweep.json" ] && "$PY" -c 'import json,sys; print(*json.load(open(sys.argv[1]))["seeds"], sep="\n")' "$1/sweep.json"
  return 0
}

one_sweep() {  # result folder, sweep folder name, "seed list", then the sweep's arguments
  local target=$1 folder=$2 seeds=$3; shift 3
  echo "== $target seeds $seeds: $(date -u)"
  # shellcheck disable=SC2086
  (cd "$FROZEN" && PYTHONPATH=$FROZEN "$PY" -m refdense sweep "$@" $LAUNCH --seeds $seeds > /dev/null)
  # shellcheck disable=SC2086
  (cd "$SCORER" && PYTHONPATH=$SCORER "$PY" -m refdense sweep "$@" $LAUNCH --seeds $seeds --checkpoint best > /dev/null)
  mkdir -p "$target"
  for protocol in "" "-best"; do
    if [ -f "$target/sweep$protocol.json" ]; then
      (cd "$RESULTS" && PYTHONPATH=$RESULTS "$PY" -m refdense join-sweeps "$target/sweep$protocol.json" \
          "$OUT/$folder/sweep$protocol.json" --out "$target" > /dev/null)
    else
      cp "$OUT/$folder/sweep$protocol.json" "$OUT/$folder/SWEEP$protocol.md" "$OUT/$folder/sweep$protocol.png" "$target/"
    fi
  done
  git -C "$RESULTS" add "$target"
  git -C "$RESULTS" commit -q -m "results: the second study's ${target#"$RESULTS"/}, seeds $seeds (both protocols; interim, no test decided on it)"
  echo "== $target seeds $seeds done: $(date -u)"
}

part() {  # result folder name, first seed, last seed, then the sweep's arguments (its folder: the dial + fixed)
  local name=$1 first=$2 last=$3; shift 3
  local target=$RESULTS/results/second_edition/$name folder
  folder=$("$PY" -c 'import sys
from refdense.cli.sweep import parse_fixed
a = sys.argv[1:]; fixed = [a[i + 1] for i, x in enumerate(a) if x == "--fixed"]
print(a[a.index("--dial") + 1] + parse_fixed(fixed).slug())' "$@")
  local done
  done=$(seeds_done "$target")
  if [ "$first" = 0 ]; then  # the pilot: seeds 0-4 as one sweep
    [ -n "$done" ] || one_sweep "$target" "$folder" "0 1 2 3 4" "$@"
    return
  fi
  for seed in $(seq "$first" "$last"); do
    grep -qx "$seed" <<< "$done" || one_sweep "$target" "$folder" "$seed" "$@"
  done
}

study() {  # first seed, last seed
  part entity_gate "$1" "$2" --dial entity_gate --values 0 1 --variants full no_cross_attention
  part entangle "$1" "$2" --dial entangle --values 0 1 --variants full single_bce full_asl single_asl
  part held_out_k-held_out0.25 "$1" "$2" --dial held_out_k --values 0 3 --fixed held_out=0.25 \
      --variants full no_sub_labels_action_colv no_sub_labels pat
  for videos in 60 120; do
    part "text_prior-train_videos$videos-rare_entities2" "$1" "$2" --dial text_prior --values 0 1 \
        --fixed "train_videos=$videos" --fixed rare_entities=2 --variants full no_colv colv_random_anchors
  done
}

study 0 4
study 5 $((N - 1))
# the paper's ablation table (descriptive): its own result folder, seed by seed from 0 (the pilot's runs
# of these worlds are not at hand: they ran on another machine)
for seed in $(seq 0 9); do
  target=$RESULTS/results/second_edition/ablation-entangle
  grep -qx "$seed" <<< "$(seeds_done "$target")" || one_sweep "$target" entangle "$seed" --dial entangle \
      --values 0 1 --variants full $(cd "$FROZEN" && ls refdense/configs/ablations | sed -n 's/\.yaml$//p' | grep -vx full)
done
echo "== the second study's runs are done: $(date -u)"

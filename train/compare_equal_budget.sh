#!/usr/bin/env bash
# The equal-budget comparison in train/RESULTS.md: U-Net, V-Net and U-Net++ with three encoders,
# the same epochs, seed and schedule, one torch thread each, two queues side by side on 2 cores.
#   bash train/compare_equal_budget.sh COHORT OUT_DIR EPOCHS
set -euo pipefail
cohort=$1; out=$2; epochs=$3
mkdir -p "$out"
one() {  # name arch [encoder]
  local run="$out/$1" enc=()
  [ -n "${3:-}" ] && enc=(--encoder "$3")
  [ -f "$run/train_summary.json" ] || sarco train "$cohort" --run "$run" --arch "$2" "${enc[@]}" \
      --epochs "$epochs" --threads 1 $( [ -f "$run/last.pt" ] && echo --resume ) > "$out/$1.log" 2>&1
  OMP_NUM_THREADS=1 sarco evaluate "$run" --data "$cohort" --split test >> "$out/$1.log" 2>&1
}
( one vnet vnet; one unetpp_resnet34 unetpp resnet34 ) &
( one unet_mobilenet_v2 unet mobilenet_v2; one unetpp_mobilenet_v2 unetpp mobilenet_v2;
  one unetpp_resnet18 unetpp resnet18 ) &
wait

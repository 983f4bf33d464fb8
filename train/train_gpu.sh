#!/usr/bin/env bash
# The default model's training run as it was made on a lent GPU machine (see train/RESULTS.md):
# generate the training cohort, train the multi-class U-Net++ with domain randomisation, and
# leave best.pt (as fp16, to travel) and the log in OUT. Usage: train/train_gpu.sh OUT N EPOCHS SECONDS
set -uo pipefail
out=${1:?OUT}; n=${2:-900}; epochs=${3:-80}; seconds=${4:-400}
work=${WORK:-/tmp/sarco-gpu}
mkdir -p "$out" "$work"
workers=$(( $(nproc) > 2 ? $(nproc) - 2 : 1 ))
t0=$(date +%s)
python3 -m train.cli phantom "$work/cohort" --n "$n" --seed 2027 --workers "$(nproc)" --no-preview 2>&1 | tail -4
echo "phantom: $(( $(date +%s) - t0 )) s"
timeout "$seconds" python3 -m train.cli train "$work/cohort" --run "$work/run" --arch unetpp --classes multi \
    --epochs "$epochs" --batch 16 --lr 2e-3 --workers "$workers" 2>&1 | tail -3
echo "train exit $?: $(( $(date +%s) - t0 )) s"
python3 - "$work/run" "$out" <<'PY'
import json, shutil, sys
from pathlib import Path
import torch
run, out = Path(sys.argv[1]), Path(sys.argv[2])
ck = torch.load(run / "best.pt", map_location="cpu", weights_only=False)
ck["model"] = {k: (v.half() if v.is_floating_point() else v) for k, v in ck["model"].items()}
torch.save(ck, out / "best_fp16.pt")
for f in ("log.csv", "run.json"):
    shutil.copy(run / f, out / f)
print("best epoch", ck["epoch"], "val dice", ck["val_dice"])
PY

"""Training: Dice + BCE on the thigh-muscle label (or all labels), person-level splits from the
cohort, augmentations, the best checkpoint by validation Dice, a CSV log and a PNG of the curves.
Resumable (last.pt holds model, optimiser, schedule and random state) and seeded.
"""

from __future__ import annotations

import csv
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from segmentation_models_pytorch import losses as smp_losses

from edge.dataset import PREP_VERSION, cache_dir, cached_arrays, dataset_info, load_cases
from edge.files import write_text_atomic
from edge.preprocess import DEFAULT_SIZE, PERCENTILES

from .augment import augment
from .models import DEFAULT_ENCODER, build_model, count_params


@dataclass
class TrainConfig:
    cohort: str
    arch: str = "unetpp"
    encoder: str = DEFAULT_ENCODER
    classes: str = "binary"  # "binary": thigh muscle only; "multi": all five labels
    size: tuple[int, int] = DEFAULT_SIZE
    epochs: int = 30
    batch: int = 4
    lr: float = 1e-3
    weight_decay: float = 1e-4
    seed: int = 0
    max_steps: int | None = None  # stop early (tests, quick probes)
    stop_after_epochs: int | None = None  # end this command after N epochs; --resume continues it
    threads: int = 0  # 0: torch's default
    cache: str | None = None
    device: str = "auto"  # "auto": CUDA when present, else CPU
    workers: int = 0  # processes that augment batches ahead of the model (0: in line)
    also: tuple[str, ...] = ()  # more cohorts whose train and val splits join the first's
    init: str | None = None  # a run (best.pt) whose weights start this one: fine-tuning

    @property
    def n_out(self) -> int:
        return 1 if self.classes == "binary" else 5


def target(y: torch.Tensor, classes: str) -> torch.Tensor:
    return (y == 1).float().unsqueeze(1) if classes == "binary" else y.long()


def loss_fn(logits: torch.Tensor, y: torch.Tensor, classes: str) -> torch.Tensor:
    """BCE + soft Dice (binary), or cross-entropy + soft Dice over the foreground labels.

    The Dice terms are smp.losses' (smooth 1). They pool the pixels of the whole batch; the
    hand-written loss that trained the 0.1/0.2 bundles averaged a Dice per film instead (the
    same optimum, slightly different weights for films with little muscle)."""
    if classes == "binary":
        return F.binary_cross_entropy_with_logits(logits, target(y, classes)) + _DICE["binary"](logits, y == 1)
    t = y.long()
    return F.cross_entropy(logits, t) + _DICE["multi"](logits, t)


_DICE = {
    "binary": smp_losses.DiceLoss("binary", from_logits=True, smooth=1.0),
    "multi": smp_losses.DiceLoss("multiclass", classes=[1, 2, 3, 4], from_logits=True, smooth=1.0),
}


def muscle_prob(logits: torch.Tensor, classes: str) -> torch.Tensor:
    """Probability of thigh muscle (label 1), (N, H, W)."""
    return torch.sigmoid(logits[:, 0]) if classes == "binary" else torch.softmax(logits, 1)[:, 1]


def dice_batch(prob: torch.Tensor, y: torch.Tensor) -> list[float]:
    pred = prob > 0.5
    t = y == 1
    out = []
    for a, b in zip(pred, t):
        s = int(a.sum() + b.sum())
        out.append(1.0 if s == 0 else 2.0 * int((a & b).sum()) / s)
    return out


def _curves_png(log_path: Path, png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = list(csv.DictReader(Path(log_path).read_text().splitlines()))
    if not rows:
        return
    ep = [int(r["epoch"]) for r in rows]
    fig, ax = plt.subplots(1, 2, figsize=(9, 3.2))
    ax[0].plot(ep, [float(r["train_loss"]) for r in rows])
    ax[0].set_xlabel("epoch")
    ax[0].set_ylabel("train loss (BCE + Dice)")
    ax[1].plot(ep, [float(r["val_dice"]) for r in rows])
    ax[1].set_xlabel("epoch")
    ax[1].set_ylabel("val Dice (model grid)")
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)


_TRAIN: tuple[np.ndarray, np.ndarray] | None = None  # set before the augmenting workers fork


def _aug_batch(args: tuple[list[int], int, int]) -> tuple[np.ndarray, np.ndarray]:
    """One batch, augmented with a seed per (seed, epoch, film): the same pixels for any number
    of workers, and a resumed run augments as an uninterrupted one would."""
    idx, epoch, seed = args
    xtr, ytr = _TRAIN
    pairs = [augment(xtr[i].astype(np.float32), ytr[i], np.random.default_rng([seed, epoch, int(i)])) for i in idx]
    return np.stack([p[0] for p in pairs])[:, None], np.stack([p[1] for p in pairs])


def _save(obj: dict, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    tmp.replace(path)


def train(cfg: TrainConfig, run: Path, resume: bool = False, console=None) -> dict:
    """Train into `run`; returns the summary written to run/train_summary.json.

    Data (cached arrays) -> model, optimiser and schedule -> resume -> run.json -> epochs (each
    ends with validation, best.pt when it improves, log.csv and last.pt) -> curves and summary."""
    run = Path(run)
    run.mkdir(parents=True, exist_ok=True)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    (xtr, ytr), (xva, yva) = _data(cfg)
    global _TRAIN
    _TRAIN = (xtr, ytr)
    dev = _device(cfg)
    torch.manual_seed(cfg.seed)
    model = build_model(cfg.arch, cfg.encoder, cfg.n_out).to(dev, memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    total_steps = int(np.ceil(len(xtr) / cfg.batch)) * cfg.epochs
    if cfg.max_steps:
        total_steps = min(total_steps, cfg.max_steps)
    sched, lr_factor = _schedule(opt, total_steps)
    st = _State(model, opt, sched, rng=np.random.default_rng([cfg.seed, 17]))
    if resume and (run / "last.pt").exists():
        _resume(st, run / "last.pt", dev, lr_factor)
    elif (run / "log.csv").exists():
        raise FileExistsError(f"{run} already holds a run; pass --resume to continue it")
    elif cfg.init:
        _init_weights(model, cfg)
    _write_meta(cfg, run, resume, st, model)
    log = run / "log.csv"
    if not log.exists():
        log.write_text("epoch,step,train_loss,val_dice,lr,seconds\n")

    import multiprocessing

    pool = multiprocessing.get_context("fork").Pool(cfg.workers) if cfg.workers > 0 else None
    with _bar(console) as bar:
        tid = bar.add_task(f"{cfg.arch}", total=total_steps, completed=st.step, loss=0.0, dice=max(st.best_dice, 0))
        while st.step < total_steps:
            t0 = time.perf_counter()
            losses = _epoch(cfg, st, pool, dev, total_steps, lambda loss: bar.update(tid, completed=st.step, loss=loss))
            dice = validate(model, xva, yva, cfg.classes, cfg.batch, dev)
            _end_epoch(cfg, run, st, dice, losses, time.perf_counter() - t0)
            bar.update(tid, dice=st.best_dice)
            if cfg.stop_after_epochs and st.epoch >= cfg.stop_after_epochs:
                break  # a shared machine's slot ends here; --resume continues with the same schedule
    if pool:
        pool.close()
    _curves_png(log, run / "curves.png")
    summary = {
        "arch": cfg.arch,
        "encoder": cfg.encoder if cfg.arch != "vnet" else None,
        "params": count_params(model),
        "epochs": st.epoch,
        "steps": st.step,
        "train_seconds": round(st.seconds, 1),
        "best_val_dice_model_grid": round(st.best_dice, 5),
        "best_epoch": st.best_epoch,
    }
    write_text_atomic(run / "train_summary.json", json.dumps(summary, indent=2))
    return summary


@dataclass
class _State:
    """What a checkpoint carries besides the config: weights, optimiser, schedule, counters, RNG."""

    model: torch.nn.Module
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LambdaLR
    rng: np.random.Generator
    epoch: int = 0
    step: int = 0
    best_dice: float = -1.0
    best_epoch: int = -1
    seconds: float = 0.0

    def counters(self) -> dict:
        keys = ("epoch", "step", "best_dice", "best_epoch", "seconds")
        return {k: getattr(self, k) for k in keys}


def _data(cfg: TrainConfig) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Train and val arrays (model inputs, label maps), read once through edge and cached; the
    splits of every cohort (the first and `also`) joined, so one run can learn two generations."""
    parts: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {"train": [], "val": []}
    for i, c in enumerate((cfg.cohort, *cfg.also)):
        cohort = Path(c)
        cache = Path(cfg.cache) if cfg.cache and i == 0 else cache_dir(cohort, cfg.size)
        for split, arrays in parts.items():
            cases = load_cases(cohort, split)
            if not cases:
                raise ValueError(f"{cohort} needs films in both the train and the val split")
            arrays.append(cached_arrays(cases, cache, tuple(cfg.size)))
    tr, va = ([np.concatenate(a) for a in zip(*parts[s])] for s in ("train", "val"))
    return (tr[0], tr[1]), (va[0], va[1])


def _best_checkpoint(src: Path) -> dict:
    """A run's best.pt (or that file itself), on the CPU: weights, config, epoch, val Dice."""
    return torch.load(src / "best.pt" if src.is_dir() else src, map_location="cpu", weights_only=False)


def _init_weights(model: torch.nn.Module, cfg: TrainConfig) -> None:
    """Start from another run's best weights (same architecture and labels), with this run's own
    optimiser and schedule: a fine-tune, not a resume."""
    src = Path(cfg.init)
    ck = _best_checkpoint(src)
    keys = ("arch", "encoder", "classes")
    theirs, ours = tuple(ck["config"].get(k) for k in keys), tuple(getattr(cfg, k) for k in keys)
    if theirs != ours:
        raise ValueError(f"--init {src} is {'/'.join(map(str, theirs))}, this run {'/'.join(map(str, ours))}")
    model.load_state_dict(ck["model"])


def _device(cfg: TrainConfig) -> torch.device:
    if cfg.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(cfg.device)


def _schedule(opt: torch.optim.Optimizer, total_steps: int):
    """Warm-up then cosine, a pure function of the step: a resumed run may extend its epochs."""
    warm = max(int(0.05 * total_steps), 1)

    def lr_factor(s: int) -> float:
        return min((s + 1) / warm, 0.02 + 0.98 * 0.5 * (1 + np.cos(np.pi * min(s / max(total_steps, 1), 1.0))))

    return torch.optim.lr_scheduler.LambdaLR(opt, lr_factor), lr_factor


def _resume(st: _State, last: Path, dev: torch.device, lr_factor) -> None:
    ck = torch.load(last, map_location=dev, weights_only=False)
    st.model.load_state_dict(ck["model"])
    st.opt.load_state_dict(ck["opt"])
    for k, v in ck["state"].items():
        setattr(st, k, v)
    # The rate is a function of the step alone, so it is set from the step rather than from the
    # saved scheduler: that works when --epochs grows, and for checkpoints of older schedulers.
    st.sched.last_epoch = st.step
    for group, base in zip(st.opt.param_groups, st.sched.base_lrs):
        group["lr"] = base * lr_factor(st.step)
    st.rng.bit_generator.state = ck["rng"]
    torch.set_rng_state(ck["torch_rng"].cpu())


def _write_meta(cfg: TrainConfig, run: Path, resume: bool, st: _State, model: torch.nn.Module) -> None:
    """run.json: config, the history of this run's invocations, preprocessing and the cohort."""
    history = []
    if resume and (run / "run.json").exists():
        history = json.loads((run / "run.json").read_text()).get("history", [])
    history.append(
        {"epochs": cfg.epochs, "from_epoch": st.epoch, "resume": bool(resume and st.epoch), "threads": cfg.threads}
    )
    meta = {
        "config": asdict(cfg),
        "history": history,
        "params": count_params(model),
        "preprocessing": {
            "size": list(cfg.size),
            "normalise_percentiles": list(PERCENTILES),
            "letterbox": "aspect kept, zero pad, centred",
            "version": PREP_VERSION,
        },
        "cohort": dataset_info(Path(cfg.cohort)),
        "also": [dataset_info(Path(c)) for c in cfg.also],
        "labels": {"thigh_muscle": 1},
    }
    write_text_atomic(run / "run.json", json.dumps(meta, indent=2, default=str))


def _bar(console):
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("loss {task.fields[loss]:.4f}"),
        TextColumn("val Dice {task.fields[dice]:.4f}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
        disable=console is None,
    )


def _epoch(cfg: TrainConfig, st: _State, pool, dev: torch.device, total_steps: int, report) -> list[float]:
    """One pass over the train films in a fresh order (or up to the last step); the losses."""
    st.model.train()
    order = st.rng.permutation(len(_TRAIN[0]))
    losses: list[float] = []
    jobs = [(list(order[b0 : b0 + cfg.batch]), st.epoch, cfg.seed) for b0 in range(0, len(order), cfg.batch)]
    for xa, ya in pool.imap(_aug_batch, jobs) if pool else map(_aug_batch, jobs):
        if st.step >= total_steps:
            break
        xb = torch.from_numpy(xa).to(dev, memory_format=torch.channels_last)
        yb = torch.from_numpy(ya).to(dev)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda"):
            logits = st.model(xb)
        loss = loss_fn(logits.float(), yb, cfg.classes)
        st.opt.zero_grad(set_to_none=True)
        loss.backward()
        st.opt.step()
        st.sched.step()
        st.step += 1
        losses.append(float(loss.detach()))
        report(float(np.mean(losses[-20:])))
    return losses


def _end_epoch(cfg: TrainConfig, run: Path, st: _State, dice: float, losses: list[float], seconds: float) -> None:
    """Counters, best.pt when val Dice improved, a log.csv row, and last.pt to resume from."""
    st.epoch += 1
    st.seconds += seconds
    if dice > st.best_dice:
        st.best_dice, st.best_epoch = dice, st.epoch
        weights = {k: v.cpu() for k, v in st.model.state_dict().items()}
        _save({"model": weights, "config": asdict(cfg), "epoch": st.epoch, "val_dice": dice}, run / "best.pt")
    with open(run / "log.csv", "a") as f:
        f.write(
            f"{st.epoch},{st.step},{np.mean(losses) if losses else float('nan'):.5f},{dice:.5f},"
            f"{st.sched.get_last_lr()[0]:.6g},{st.seconds:.1f}\n"
        )
    _save(
        {
            "model": st.model.state_dict(),
            "opt": st.opt.state_dict(),
            "sched": st.sched.state_dict(),
            "state": st.counters(),
            "rng": st.rng.bit_generator.state,
            "torch_rng": torch.get_rng_state(),
            "config": asdict(cfg),
        },
        run / "last.pt",
    )


@torch.no_grad()
def validate(model, xva: np.ndarray, yva: np.ndarray, classes: str, batch: int, dev=None) -> float:
    model.eval()
    scores: list[float] = []
    for b0 in range(0, len(xva), batch):
        xb = torch.from_numpy(xva[b0 : b0 + batch].astype(np.float32)[:, None]).to(
            dev or "cpu", memory_format=torch.channels_last
        )
        prob = muscle_prob(model(xb).float(), classes).cpu()
        scores += dice_batch(prob, torch.from_numpy(yva[b0 : b0 + batch]))
    return float(np.mean(scores)) if scores else 0.0


def load_run(run: Path):
    """The best model of a run, in eval mode, and its config."""
    ck = _best_checkpoint(Path(run))
    known = set(TrainConfig.__dataclass_fields__)  # older runs may carry fields since removed
    cfg = TrainConfig(**{k: (tuple(v) if k == "size" else v) for k, v in ck["config"].items() if k in known})
    model = build_model(cfg.arch, cfg.encoder, cfg.n_out)
    model.load_state_dict(ck["model"])
    model.eval()
    return model, cfg

"""Training and evaluation of one configuration: Adam, early stopping, best checkpoint, one test.

``train(config)`` returns a result dict (config, metrics, per-epoch curve, timings, provenance) that
:func:`seqrec.results.save` writes as JSON. With ``checkpoint=PATH`` the state after every epoch is saved
atomically and an interrupted run resumes from it, giving the same result as an uninterrupted one. A resumed
run's provenance lists every process that trained it (``sessions``: commit, start, first epoch, device, wall time);
its ``wall_seconds`` is their sum, its top-level commit and ``peak_memory_mb`` are those of the last process.
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import os
import time
from pathlib import Path

import torch
from tqdm import tqdm

from . import data as data_mod
from . import losses, metrics, models, provenance
from .config import TrainConfig
from .errors import SeqrecError


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise SeqrecError(f"device {name!r} asked for, but CUDA is not available")
    return torch.device(name)


@torch.no_grad()
def evaluate(model: models.SequentialRecommender, inputs: torch.Tensor, targets: torch.Tensor, seen: torch.Tensor,
             negatives: torch.Tensor | dict[str, torch.Tensor] | None = None, *, exclude: str = "-inf",
             ties: str = "pessimistic", batch_size: int = 1024, device: torch.device | str = "cpu") -> dict[str, float]:
    """Full-ranking (``full_*``) and, with ``negatives``, sampled metrics of next-item prediction.

    inputs: (U, L); targets: (U,); seen: (U, S) items excluded from full ranking; negatives: (U, 99), giving
    ``sampled_*``, or a dict ``{prefix: (U, k)}`` of negative sets, one group of metrics per prefix (e.g.
    ``{"sampled_": uniform, "pop_sampled_": popularity}``).
    """
    if negatives is None:
        negatives = {}
    elif isinstance(negatives, torch.Tensor):
        negatives = {"sampled_": negatives}
    was_training = model.training
    model.eval()
    full, sampled = [], {prefix: [] for prefix in negatives}
    for start in range(0, inputs.shape[0], batch_size):
        rows = slice(start, start + batch_size)
        t = targets[rows].to(device)
        scores = model.score_all(inputs[rows].to(device)).float()
        full.append(metrics.full_ranks(scores, t, seen[rows].to(device), exclude=exclude, ties=ties).cpu())
        for prefix, negs in negatives.items():
            sampled[prefix].append(metrics.sampled_ranks(scores, t, negs[rows].to(device), ties=ties).cpu())
    model.train(was_training)
    out = metrics.metrics_from_ranks(torch.cat(full), prefix="full_")
    for prefix, ranks in sampled.items():
        out.update(metrics.metrics_from_ranks(torch.cat(ranks), prefix=prefix))
    return out


def user_histories(split) -> torch.Tensor:
    """(U, S) every item of each user (training, validation and test), sorted ascending per row, 0 = padding:
    the items ``negative_pool="unseen"`` never draws as a negative for that user (the authors' code excludes the
    whole sequence, held-out items included)."""
    return torch.sort(torch.cat([split.test_seen, split.test_targets[:, None]], 1), 1).values


@contextlib.contextmanager
def deterministic(device: torch.device):
    """On CPU, PyTorch's deterministic algorithms while the block runs (the previous setting restored after).

    The backward of indexing an embedding table with a tensor (``item_emb[negatives]``: ``index_put_`` with
    ``accumulate``) otherwise adds the rows of repeated items in whatever order the threads reach them, so on more
    than one thread two runs of one seed differ in the last bit of the item embeddings' gradient, and their curves
    drift apart from there (``scripts/replay_kernels.py`` replays the host's kernels twice to show it). The
    deterministic kernel adds them in index order, which on one thread is the order the default kernel takes too,
    so runs on one thread (most CPU runs in ``results/``) keep their numbers bit for bit (checked over 3 epochs on
    LastFM for every model and kind of loss). ``warn_only``: an op without a deterministic kernel warns rather than
    stops a run. Left off on CUDA, untested there: it would need ``CUBLAS_WORKSPACE_CONFIG`` and could change the
    numbers of the GPU runs stored so far."""
    if device.type != "cpu":
        yield
        return
    before, warn_only = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before, warn_only=warn_only)


def train_epoch(model, split, optimizer, spec: losses.LossSpec, opts: losses.LossOptions, *, batch_size: int,
                generator: torch.Generator, device: torch.device, precision: str = "fp32", epoch: int = 0,
                histories: torch.Tensor | None = None) -> float:
    """One pass over every user's training sequence in a random order (drawn from ``generator``): forward, loss,
    backward, optimiser step per batch of ``batch_size`` users. Returns the mean of the batch losses.
    ``histories`` (:func:`user_histories`): draw each user's negatives among the items they never interacted with."""
    model.train()
    order = torch.randperm(split.train_inputs.shape[0], generator=generator)
    total, batches = 0.0, 0
    with deterministic(device):
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            inputs, targets = split.train_inputs[rows].to(device), split.train_targets[rows].to(device)
            batch_opts = opts if histories is None else dataclasses.replace(opts, history=histories[rows])
            if spec.prepare is not None:
                inputs, targets = spec.prepare(model, inputs, targets, batch_opts)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
                loss = spec.fn(model(inputs), model.item_embeddings(), targets, batch_opts)
            if not torch.isfinite(loss):
                raise SeqrecError(f"loss became {loss.item()} at epoch {epoch}; lower the learning rate")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item()
            batches += 1
    return total / max(batches, 1)


def _improved(monitor: str, value: float, best: float | None) -> bool:
    if best is None:
        return True
    return value < best if monitor == "train_loss" else value > best


def save_checkpoint(path: Path, state: dict) -> None:
    """``torch.save`` through a temporary file and a rename: a killed run never leaves a partial checkpoint."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def _read_checkpoint(path: Path) -> dict:
    """A per-epoch checkpoint written by :func:`train`, read onto the CPU whichever device wrote it (its random
    states must stay CPU tensors; the weights and Adam's moments move to the run's device as they are loaded, so a
    run started on CPU resumes on CUDA and back); a one-line error for a file that is not one."""
    try:
        saved = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001  torch raises many kinds for a file that is not a checkpoint
        raise SeqrecError(f"cannot read checkpoint {path} ({type(exc).__name__}): not a seqrec checkpoint or "
                          "damaged; move it away to start again") from exc
    if not isinstance(saved, dict) or "state" not in saved:
        raise SeqrecError(f"checkpoint {path} is not a seqrec training checkpoint; move it away to start again")
    return saved


def _config_difference(saved: dict, config: TrainConfig) -> str:
    """Which settings differ between a checkpoint and ``config``, in words (keys only for a checkpoint written
    before checkpoints kept their configuration)."""
    theirs = saved.get("config")
    if not isinstance(theirs, dict):
        return f"key {saved.get('key')}, expected {config.key()}"
    mine = config.to_dict()
    changed = [f"{k} {theirs.get(k)!r} there, {mine[k]!r} here"
               for k in mine if k != "device" and theirs.get(k) != mine[k]]
    return "; ".join(changed) or f"key {saved.get('key')}, expected {config.key()}"


def load_model(path: str | os.PathLike, device: torch.device | str = "cpu") -> tuple[models.SequentialRecommender, TrainConfig]:
    """The model saved by ``train(..., model_out=path)``, in eval mode, and its configuration."""
    path = Path(path)
    if not path.exists():
        raise SeqrecError(f"missing model file {path}")
    saved = torch.load(path, map_location=device, weights_only=False)
    config = TrainConfig.from_dict(saved["config"])
    model = models.build(config, saved["num_items"]).to(device)
    model.load_state_dict(saved["model"])
    return model.eval(), config


def check_same_data(checkpoint: Path, saved: str | None, current: str | None, name: str) -> None:
    """A one-line error when ``checkpoint`` was written while training on another version of ``name``'s data file:
    its recorded SHA-256 ``saved`` differs from the file's ``current`` one (None on either side: not checked; a
    checkpoint written before they recorded it, or data built in code)."""
    if saved and current and saved != current:
        raise SeqrecError(f"checkpoint {checkpoint} was written for another version of {name}'s data file "
                          f"(sha256 {saved[:12]}…, now {current[:12]}…); move it away to start again")


def train(config: TrainConfig, *, dataset: data_mod.SequenceData | None = None, checkpoint: str | os.PathLike | None = None,
          model_out: str | os.PathLike | None = None, progress: bool = True) -> dict:
    """Train ``config`` to early stopping, restore the best epoch, test once; return the result dict.

    ``checkpoint``: per-epoch state to resume from and write to; ``model_out``: where to save the best epoch's
    weights (``{"key", "config", "num_items", "model"}``, see :func:`load_model`), written atomically.
    """
    started = dt.datetime.now(dt.timezone.utc)
    git = provenance.git_state()  # at the start: the code that runs, not the tree at the end
    wall0 = time.perf_counter()
    device = resolve_device(config.device)
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)

    dataset = dataset or data_mod.load(config.data, max_users=config.max_users, seed=config.seed)
    split = data_mod.split(dataset, config.max_len)
    negatives = data_mod.evaluation_negatives(dataset, config.seed)  # uniform (LastFM: the shipped sample file)
    pop_negatives = data_mod.evaluation_popularity_negatives(dataset, config.seed)  # BERT4Rec's protocol
    model = models.build(config, dataset.num_items).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, betas=(0.9, 0.999), weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, config.lr_step, config.lr_gamma) if config.lr_step else None
    spec = losses.get(config.loss)
    if spec.uses_negatives and config.num_negatives > dataset.num_items - 1:
        raise SeqrecError(f"num_negatives {config.num_negatives} exceeds the {dataset.num_items - 1} items a "
                          f"position's negative can be ({dataset.num_items} items in {dataset.name})")
    opts = losses.LossOptions(config.num_negatives, generator, config.mask_prob)
    histories = user_histories(split) if config.negative_pool == "unseen" else None
    provenance.reset_peak_memory(device)

    state = {"epoch": 0, "curve": [], "best": None, "best_epoch": 0, "best_state": None, "bad": 0, "train_seconds": 0.0,
             "eval_seconds": 0.0}
    checkpoint = Path(checkpoint) if checkpoint else None
    if checkpoint and checkpoint.is_dir():
        raise SeqrecError(f"checkpoint {checkpoint} is a folder; give a file path (e.g. {checkpoint / 'run.pt'})")
    if checkpoint and checkpoint.exists():
        saved = _read_checkpoint(checkpoint)
        if saved.get("key") != config.key():
            raise SeqrecError(f"checkpoint {checkpoint} belongs to another configuration "
                              f"({_config_difference(saved, config)}); give another checkpoint path, or the options it "
                              "was written with")
        check_same_data(checkpoint, saved.get("data_sha256"), dataset.sha256, dataset.name)
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(saved["scheduler"])
        torch.set_rng_state(saved["torch_rng"])
        generator.set_state(saved["generator"])
        if device.type == "cuda" and saved.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(saved["cuda_rng"], device)
        state = saved["state"]
    # one entry per process that trained this run (a resumed run has several): its code, start and wall time
    state.setdefault("sessions", []).append({**git, "started_at": started.isoformat(timespec="seconds"),
                                             "from_epoch": state["epoch"], "device": provenance.device_name(device),
                                             "kernels": provenance.kernels(device), "wall_seconds": 0.0})

    eval_kw = dict(exclude=config.exclude_seen, ties=config.ties, batch_size=config.eval_batch_size, device=device)
    bar = tqdm(range(state["epoch"] + 1, config.epochs + 1), desc=f"{config.model}+{config.loss} on {dataset.name}",
               disable=not progress, initial=state["epoch"], total=config.epochs, unit="epoch")
    for epoch in bar:
        model.train()
        t0 = time.perf_counter()
        mean_loss = train_epoch(model, split, optimizer, spec, opts, batch_size=config.batch_size, generator=generator,
                                device=device, precision=config.precision, epoch=epoch, histories=histories)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        state["train_seconds"] += time.perf_counter() - t0
        point = {"epoch": epoch, "train_loss": mean_loss, "elapsed": state["train_seconds"]}
        if scheduler is not None:
            point["lr"] = optimizer.param_groups[0]["lr"]  # the rate this epoch trained with
            scheduler.step()
        if config.eval_every and epoch % config.eval_every == 0:
            t1 = time.perf_counter()
            valid = evaluate(model, split.valid_inputs, split.valid_targets, split.valid_seen, **eval_kw)
            state["eval_seconds"] += time.perf_counter() - t1
            point.update({f"valid_{k.removeprefix('full_')}": v for k, v in valid.items()})
        state["curve"].append(point)
        state["epoch"] = epoch
        value = point.get(config.monitor)
        if value is not None:
            if _improved(config.monitor, value, state["best"]):
                state.update(best=value, best_epoch=epoch, bad=0,
                             best_state={k: v.detach().clone() for k, v in model.state_dict().items()})
            else:
                state["bad"] += 1
        bar.set_postfix(loss=f"{point['train_loss']:.4f}", **({config.monitor: f"{value:.4f}"} if value is not None else {}))
        state["sessions"][-1]["wall_seconds"] = time.perf_counter() - wall0
        if checkpoint:
            save_checkpoint(checkpoint, {"key": config.key(), "config": config.to_dict(), "epochs": config.epochs,
                                          "patience": config.patience,
                                          "monitor": config.monitor, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                          "scheduler": scheduler.state_dict() if scheduler is not None else None,
                                          "torch_rng": torch.get_rng_state(), "generator": generator.get_state(),
                                          "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
                                          "data_sha256": dataset.sha256, "state": state})
        if state["bad"] >= config.patience:
            break
    bar.close()

    if state["best_state"] is not None:
        model.load_state_dict(state["best_state"])
    best_point = next((p for p in state["curve"] if p["epoch"] == state["best_epoch"]), {})
    test = evaluate(model, split.test_inputs, split.test_targets, split.test_seen,
                    {"sampled_": negatives, "pop_sampled_": pop_negatives}, **eval_kw)
    if model_out:
        save_checkpoint(Path(model_out), {"key": config.key(), "config": config.to_dict(), "num_items": dataset.num_items,
                                          "model": {k: v.cpu() for k, v in model.state_dict().items()}})
    epochs_run = state["epoch"]
    sessions = state["sessions"][:-1] + [{**state["sessions"][-1], "wall_seconds": time.perf_counter() - wall0}]
    return {
        "config": config.to_dict(),
        "key": config.key(),
        "metrics": test,
        "valid_metrics": {k: v for k, v in best_point.items() if k.startswith("valid_")},
        "curve": state["curve"],
        "epochs_run": epochs_run,
        "best_epoch": state["best_epoch"],
        "stopped_early": state["bad"] >= config.patience,
        "train_seconds": state["train_seconds"],
        "seconds_per_epoch": state["train_seconds"] / max(epochs_run, 1),
        "eval_seconds": state["eval_seconds"],
        "sampled_candidates": 1 + negatives.shape[1],
        "pop_sampled_candidates": 1 + pop_negatives.shape[1],
        "dataset": {"name": dataset.name, "users": dataset.num_users, "items": dataset.num_items,
                    "interactions": dataset.num_interactions, "sha256": dataset.sha256},
        "provenance": {
            **git,
            "versions": provenance.versions(),
            "device": provenance.device_name(device),
            "device_type": device.type,
            "kernels": provenance.kernels(device),
            "peak_memory_mb": provenance.peak_memory_mb(device),
            "started_at": started.isoformat(timespec="seconds"),
            "wall_seconds": sum(x["wall_seconds"] for x in sessions),
            "seed": config.seed,
            "sessions": sessions,
        },
        **_pretraining(config),
    }


def _pretraining(config: TrainConfig) -> dict:
    """S3-Rec's record of the pretraining it finetuned (``{"pretraining": ...}``, that stage's own provenance
    included); ``{}`` for the other models."""
    if config.model != "s3rec":
        return {}
    from . import pretrain  # pretrain imports this module

    return {"pretraining": pretrain.summary(pretrain.checkpoint_path(config))}


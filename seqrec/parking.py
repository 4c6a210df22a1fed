"""Carry unfinished long runs to the next clone through git: park their checkpoints, take them back on resume.

A training run's per-epoch checkpoint (``<results_dir>/<profile>/.partial/<grid>/<run>.pt``) and an S3-Rec
pretraining's (``$SEQREC_CHECKPOINT_DIR/pretrain/<name>.pt``) are git-ignored: they resume a run on the machine
that wrote them, but a session that starts from a fresh clone has neither. :func:`park` copies both kinds into
``<results_dir>/<profile>/parked/`` (``<grid>/<run>.pt`` and ``pretrain/<name>.pt``), a tracked folder to commit
at the end of a session; it keeps the copy with more epochs done and removes the parked copies of runs whose
record is now stored. A pretraining is carried while a cell of the profile that is finetuned from it is not stored
yet; once every such cell is stored it is neither parked nor kept parked (a pretraining no cell of the profile
uses, e.g. one of your own data, is parked as a run is). :func:`unpark_run` and :func:`unpark_pretraining` (called by the runner before it trains a
missing cell) copy a parked checkpoint back when the local one is missing or has fewer epochs done, so the run
resumes where the last session left it, with its saved random states: the same result as an uninterrupted run.

Every copy goes through a temporary file and a rename. A checkpoint is about four copies of the model's weights
(weights, best epoch's weights, Adam's two moments): 14 MB for SASRec on Beauty.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import torch

PARKED = "parked"
PRETRAIN = "pretrain"


def epochs_done(path: Path) -> int | None:
    """Epochs a training or pretraining checkpoint has done; None when missing or unreadable."""
    if not path.is_file():
        return None
    try:
        saved = torch.load(path, map_location="cpu", weights_only=False)
    except Exception:  # noqa: BLE001  being replaced right now, or not a checkpoint
        return None
    if not isinstance(saved, dict):
        return None
    if isinstance(saved.get("state"), dict) and "epoch" in saved["state"]:
        return int(saved["state"]["epoch"])
    return int(saved["epochs_done"]) if "epochs_done" in saved else None


def _copy_if_ahead(source: Path, target: Path) -> tuple[bool, int | None]:
    """Copy ``source`` over ``target`` (atomically) when it has done more epochs; return (copied, the epochs
    ``target`` has done now). Each file is read once, the target only when the source exists."""
    ahead = epochs_done(source)
    if ahead is None:
        return False, None
    behind = epochs_done(target)
    if behind is not None and behind >= ahead:
        return False, behind
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    shutil.copyfile(source, tmp)
    os.replace(tmp, target)
    return True, ahead


def parked_root(results_dir: str | os.PathLike, profile: str) -> Path:
    return Path(results_dir) / profile / PARKED


def store_parked_root(store) -> Path:
    """:func:`parked_root` of a :class:`seqrec.runner.Store` (``<results_dir>/<profile>/<grid>/``)."""
    return store.root.parent / PARKED


def pretrainings_served(results_dir: str | os.PathLike, profile: str) -> set[str]:
    """Names of the S3-Rec pretraining checkpoints whose every finetuned cell (over all grids of ``profile``) is
    stored: no cell needs them any more. A checkpoint no cell of the profile uses is not among them."""
    from .experiments import GRIDS, cells
    from .pretrain import checkpoint_path
    from .runner import Store

    done = Store(results_dir, profile, next(iter(GRIDS))).done()  # a store's runs include its sibling grids'
    needed, used = set(), set()
    for cell in (c for grid in GRIDS for c in cells(grid, profile) if c.config.model == "s3rec"):
        name = checkpoint_path(cell.config).name
        used.add(name)
        if cell.config.key() not in done:
            needed.add(name)
    return used - needed


def park(results_dir: str | os.PathLike, profile: str) -> list[dict]:
    """Park every interrupted or running checkpoint of ``profile`` (runs, and S3-Rec pretrainings some unstored cell
    needs); drop the parked copies of runs stored since and of pretrainings whose cells are all stored. One row per
    file: ``kind`` (run / pretraining), ``name``, ``epoch`` and ``action`` (parked: copied now; kept: the parked
    copy is as far along; removed: its run, or every cell finetuned from it, is stored, as the runner reads the
    store: :meth:`~seqrec.runner.Store.done`, so an error record, a failed attempt, is not)."""
    from .pretrain import _root as pretrain_root
    from .runner import Store

    profile_dir, parked = Path(results_dir) / profile, parked_root(results_dir, profile)
    served = pretrainings_served(results_dir, profile)
    rows, done = [], {}  # done: per grid, the keys of its stored runs (read once, when a parked run needs them)
    for source in sorted((profile_dir / ".partial").glob("*/*.pt")):
        copied, epoch = _copy_if_ahead(source, parked / source.parent.name / source.name)
        rows.append({"kind": "run", "name": f"{source.parent.name}/{source.name}", "epoch": epoch,
                     "action": "parked" if copied else "kept"})
    for source in sorted(pretrain_root().glob("*.pt")):
        if source.name in served:
            continue
        copied, epoch = _copy_if_ahead(source, parked / PRETRAIN / source.name)
        rows.append({"kind": "pretraining", "name": f"{PRETRAIN}/{source.name}", "epoch": epoch,
                     "action": "parked" if copied else "kept"})
    for stale in sorted(parked.glob("*/*.pt")):
        if stale.parent.name == PRETRAIN:
            if stale.name in served:
                stale.unlink()
                rows.append({"kind": "pretraining", "name": f"{PRETRAIN}/{stale.name}", "epoch": None,
                             "action": "removed"})
        else:
            grid = stale.parent.name
            if grid not in done:
                done[grid] = Store(results_dir, profile, grid).done()
            if Store.key_of(stale) in done[grid]:
                stale.unlink()
                rows.append({"kind": "run", "name": f"{grid}/{stale.name}", "epoch": None, "action": "removed"})
    return rows


def parked(results_dir: str | os.PathLike, profile: str) -> list[dict]:
    """The parked checkpoints of ``profile``: ``name`` (``<grid>/<run>.pt`` or ``pretrain/<name>.pt``), ``epoch``."""
    return [{"name": f"{p.parent.name}/{p.name}", "epoch": epochs_done(p)}
            for p in sorted(parked_root(results_dir, profile).glob("*/*.pt"))]


def unpark_run(store, config) -> int | None:
    """Take the parked checkpoint of ``config``'s run in ``store`` back to :meth:`Store.partial` when it is further
    along than the local one (or there is none); return its epochs, or None when nothing was copied."""
    partial = store.partial(config)
    copied, epoch = _copy_if_ahead(store_parked_root(store) / store.grid / partial.name, partial)
    return epoch if copied else None


def unpark_pretraining(store, config) -> int | None:
    """The same for the S3-Rec pretraining checkpoint ``config`` needs (:func:`seqrec.pretrain.checkpoint_path`)."""
    from .pretrain import checkpoint_path

    local = checkpoint_path(config)
    copied, epoch = _copy_if_ahead(store_parked_root(store) / PRETRAIN / local.name, local)
    return epoch if copied else None


def _furthest(local: Path, parked_copy: Path) -> tuple[int, str] | None:
    """(epochs, where) of whichever of the two checkpoints is further along (a tie: the local one), or None."""
    found = [(epochs_done(p), where) for p, where in ((local, "local checkpoint"), (parked_copy, "parked checkpoint"))]
    found = [(e, where) for e, where in found if e is not None]
    return max(found, key=lambda f: f[0]) if found else None


def cell_progress(results_dir: str | os.PathLike, profile: str, grid: str, config) -> str:
    """How far an unstored cell has got, in words, from its local or parked checkpoints ("" when it has none):
    its own epochs, else (S3-Rec) its pretraining's, e.g. ``"pretraining 60 of 150 epochs done (parked checkpoint)"``."""
    from .runner import Store

    partial = Store(results_dir, profile, grid).partial(config)
    own = _furthest(partial, parked_root(results_dir, profile) / grid / partial.name)
    if own is not None:
        return f"{own[0]} of {config.epochs} epochs done ({own[1]})"
    if config.model != "s3rec":
        return ""
    from .pretrain import checkpoint_path, pretrain_epochs

    local = checkpoint_path(config)
    pretraining = _furthest(local, parked_root(results_dir, profile) / PRETRAIN / local.name)
    if pretraining is None:
        return ""
    (epoch, where), total = pretraining, pretrain_epochs(config)
    return f"pretraining {epoch} of {total} epochs done{'' if epoch >= total else f' ({where})'}"

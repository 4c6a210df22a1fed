"""Loading stored runs into tidy frames (one row per run × metric), the planned cells, compute spent and
repeated-run checks."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..config import TrainConfig
from ..errors import SeqrecError
from ..provenance import device_label

TIDY_COLUMNS = ("data", "model", "loss", "seed", "num_negatives", "negative_pool", "mask_prob", "max_users",
                "exclude_seen", "ties", "variant", "pretraining", "profile", "grid", "train_seconds", "epochs_run",
                "median_epoch_seconds", "peak_memory_mb", "path", "metric", "value",
                "paper_model", "loss_kind", "paper_loss", "ablation", "weight_decay", "lr_step", "lr_gamma", "best_valid")

# Sizes of the small experiments this module runs itself (gradient signal, accuracy by length), per profile.
ANALYSIS_RUNS = {
    "smoke": {"data": "LastFM", "max_users": 200, "epochs": 2},
    "quick": {"data": "LastFM", "max_users": None, "epochs": 10},
    "paper": {"data": "LastFM", "max_users": None, "epochs": 30},
}


def grid_frame(grid: str, profile: str, *, train: str = "missing", datasets=None, seeds=None,
               results_dir: str = "results") -> pd.DataFrame:
    """The tidy frame of ``seqrec.experiments.run_grid(grid, profile)``, training missing cells unless
    ``train == "none"``, restricted to ``datasets`` and ``seeds`` when given (None: all). Always has the
    :data:`TIDY_COLUMNS`, even when nothing is stored yet."""
    from .. import experiments

    if train not in ("missing", "all", "none"):
        raise ValueError(f"unknown train {train!r}; allowed: missing, all, none")
    kw = dict(train=train != "none", results_dir=results_dir, progress=False)
    if datasets is None:
        frames = [experiments.run_grid(grid, profile, **kw)]
    else:
        planned = {c.config.data for c in experiments.cells(grid, profile)}
        frames = [experiments.run_grid(grid, profile, only={"data": d}, **kw) for d in datasets if d in planned]
    frames = [f for f in frames if len(f)]
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(TIDY_COLUMNS))
    for col in TIDY_COLUMNS:
        if col not in frame:
            frame[col] = np.nan
    if seeds is not None:
        frame = frame[frame["seed"].isin(list(seeds))]
    return frame.reset_index(drop=True)


def _with_seed_runs(grid: str, profile: str, *, train: str, datasets, seeds, results_dir: str) -> pd.DataFrame:
    """``grid``'s runs plus the ``seeds`` ablation's runs of the same cells (the same dataset, model, loss and
    variant as one of the grid's cells: Table 3's BERT4Rec seeds stay out of Table 2, the other Table 2 models' Beauty
    seeds out of Table 3), labelled as the grid's cells; a run in both (seed 42: the same key) counts once."""
    from .. import experiments

    own = grid_frame(grid, profile, train=train, datasets=datasets, seeds=seeds, results_dir=results_dir)
    ab = grid_frame("ablations", profile, train="none", datasets=datasets, seeds=seeds, results_dir=results_dir)
    extra = ab[ab["ablation"] == "seeds"].copy() if len(ab) else ab
    if len(extra):
        ids = ["paper_model", "paper_loss", "variant"]
        cells = {(c.config.data, *(c.labels[k] for k in ids)) for c in experiments.cells(grid, profile)}
        extra = extra[[tuple(row) in cells for row in extra[["data", *ids]].itertuples(index=False)]].copy()
        extra["ablation"] = ""
    frames = [f for f in (own, extra) if len(f)]
    if not frames:
        return own
    both = pd.concat(frames, ignore_index=True)
    return both.drop_duplicates(["key", "metric"]).reset_index(drop=True)


def table2_frame(profile: str, *, train: str = "missing", datasets=None, seeds=None,
                 results_dir: str = "results") -> pd.DataFrame:
    """Table 2's runs plus the ``seeds`` ablation's runs of the same cells (Table 2 cells run again under the Table 2
    protocol with other seeds: SASRec BCE and CCE on all five datasets, and more cells on some), labelled as Table
    2 cells: a cell then shows mean ± std over every seed run. Only Table 2 is trained (``train``); the ablation
    runs are read as stored. A run in both (seed 42) counts once."""
    return _with_seed_runs("table2", profile, train=train, datasets=datasets, seeds=seeds, results_dir=results_dir)


def table3_frame(profile: str, *, train: str = "missing", datasets=None, seeds=None,
                 results_dir: str = "results") -> pd.DataFrame:
    """Table 3's runs plus the ``seeds`` ablation's runs of Table 3's cells (SASRec BCE and CCE on Beauty with
    seeds 43 and 44, the same configuration as Table 3's and Table 2's SASRec cells, and BERT4Rec's with the same
    seeds), so that Table 3's SASRec cells average over the same seeds as Table 2's and the claim "SASRec with CCE
    beats BERT4Rec" is tested against seed noise. Only Table 3 is trained (``train``)."""
    return _with_seed_runs("table3", profile, train=train, datasets=datasets, seeds=seeds, results_dir=results_dir)


def _stored_runs(profile: str, results_dir: str = "results"):
    """``(grid, record)`` for every successful record stored for ``profile``, grid by grid (error records and
    unreadable files left out)."""
    from .. import experiments, results

    for grid in experiments.GRIDS:
        folder = Path(results_dir) / profile / grid
        if folder.is_dir():
            for run in results.load_runs(folder):
                if run.get("status", "ok") == "ok":
                    yield grid, run


def compute_spent(profile: str, results_dir: str = "results") -> pd.DataFrame:
    """Compute behind the stored runs of ``profile``, per device and grid: ``runs`` (stored from that device: a run
    resumed on another device counts where it finished), ``wall hours`` (provenance wall time), ``train hours``
    (training epochs only) and ``pretraining hours`` (S3-Rec, once per pretraining: the cells finetuned from one
    checkpoint count it once; one trained again under the same name, its sessions begun at other times, again).
    The hours go to the device of each session that did them, so a run begun on CPU and finished on a GPU splits
    its time between the two (a session's training seconds are read off the curve's cumulative ``elapsed``; a
    pretraining's from its sessions' ``seconds``, or all to its first session's device where a record predates
    them). Each stored file counts: a configuration run twice counts twice. Error records are left out."""
    from ..results import session_seconds

    rows, pretrain_seen = [], set()
    for grid, run in _stored_runs(profile, results_dir):
        prov = run.get("provenance", {})
        stored_on = device_label(prov.get("device"))
        rows.append({"device": stored_on, "grid": grid, "runs": 1, "wall": 0.0, "train": 0.0, "pretraining": 0.0})
        sessions = prov.get("sessions") or []
        train = float(run.get("train_seconds") or 0.0)
        if sessions and all("wall_seconds" in x and "device" in x for x in sessions):
            timed = session_seconds(sessions, run.get("curve") or [], int(run.get("epochs_run") or 0))
            if not all("seconds" in x for x in timed):  # no cumulative times on the curve: training to the last
                timed = [{**x, "seconds": train if k == len(timed) - 1 else 0.0} for k, x in enumerate(timed)]
            for x in timed:
                rows.append({"device": device_label(x["device"]), "grid": grid, "runs": 0,
                             "wall": float(x["wall_seconds"]), "train": float(x["seconds"]), "pretraining": 0.0})
        else:
            rows.append({"device": stored_on, "grid": grid, "runs": 0,
                         "wall": float(prov.get("wall_seconds") or 0.0), "train": train, "pretraining": 0.0})
        pre = run.get("pretraining") or {}
        pre_sessions = pre.get("sessions") or []
        # one pretraining: its checkpoint's name and when its sessions began (cells finetuned from one checkpoint
        # share it; a checkpoint of the same name trained anew, after the first was deleted, is new work)
        pre_key = (pre.get("checkpoint"), tuple(x.get("started_at") for x in pre_sessions))
        if pre and pre_key not in pretrain_seen:
            pretrain_seen.add(pre_key)
            if pre_sessions and all("seconds" in x for x in pre_sessions):
                split = [(x.get("device"), float(x["seconds"])) for x in pre_sessions]
            else:
                split = [(pre_sessions[0].get("device") if pre_sessions else prov.get("device"),
                          float(pre.get("seconds") or 0.0))]
            for device, seconds in split:
                rows.append({"device": device_label(device), "grid": grid, "runs": 0, "wall": 0.0, "train": 0.0,
                             "pretraining": seconds})
    if not rows:
        return pd.DataFrame(columns=["runs", "wall hours", "train hours", "pretraining hours"])
    g = pd.DataFrame(rows).groupby(["device", "grid"])
    return pd.DataFrame({"runs": g.runs.sum(), "wall hours": g.wall.sum() / 3600, "train hours": g.train.sum() / 3600,
                         "pretraining hours": g.pretraining.sum() / 3600})


def data_files(profile: str, results_dir: str = "results") -> pd.DataFrame:
    """Which data file the stored runs of ``profile`` read, per dataset: ``runs``, ``recorded`` (runs whose record
    gives the file's SHA-256; runs stored before it was recorded do not), ``published`` (of those, the file with the
    published checksum of :data:`seqrec.data.SHA256`), ``other`` (another file) and ``sha256`` (the distinct
    checksums recorded, first 12 characters). Error records are left out."""
    from .. import data as data_mod

    rows = []
    for _, run in _stored_runs(profile, results_dir):
        name = (run.get("dataset") or {}).get("name") or run["config"].get("data")
        sha = (run.get("dataset") or {}).get("sha256")
        rows.append({"dataset": name, "sha256": sha,
                     "published": sha is not None and sha == data_mod.SHA256.get(f"{name}.txt")})
    columns = ["runs", "recorded", "published", "other", "sha256"]
    if not rows:
        return pd.DataFrame(columns=columns)
    f = pd.DataFrame(rows)
    g = f.groupby("dataset", sort=False)
    recorded, published = g.sha256.count(), g.published.sum()
    out = pd.DataFrame({"runs": g.size(), "recorded": recorded, "published": published, "other": recorded - published,
                        "sha256": g.sha256.agg(lambda s: ", ".join(sorted({x[:12] for x in s.dropna()})))})
    return out[columns].astype({c: int for c in columns[:4]})


def _kernels(runs) -> str:
    """The kernels (:func:`seqrec.provenance.kernels`) every session of ``runs`` trained with, sorted and joined;
    "unrecorded" for a session (or a record without sessions) stored before records kept them."""
    provenance = [run.get("provenance") or {} for run in runs]
    return ", ".join(sorted({s.get("kernels") or "unrecorded" for p in provenance for s in p.get("sessions") or [p]}))


def repeated_runs(profile: str, results_dir: str = "results") -> pd.DataFrame:
    """Configurations of ``profile`` trained more than once (the same key stored by two grids, e.g. a cell rerun
    to record metrics added later): the determinism check "same seed, same machine, same metrics" on real runs.
    One row per key: ``run`` (data, model, loss), ``grids``, ``commits`` (short), ``devices``, ``kernels`` (as in
    :func:`replayed_curves`), ``metrics``
    (how many both records have), ``max |difference|`` over them, ``metrics identical`` and ``curve max |difference|``
    (training loss and validation metrics, epoch by epoch; NaN without stored curves). Error records are left
    out."""
    by_key: dict[str, list[tuple[str, dict]]] = {}
    for grid, run in _stored_runs(profile, results_dir):
        if isinstance(run.get("key"), str):
            by_key.setdefault(run["key"], []).append((grid, run))
    rows = []
    for key, found in sorted(by_key.items()):
        if len(found) < 2:
            continue
        metrics = [run["metrics"] for _, run in found]
        shared = sorted(set.intersection(*(set(m) for m in metrics)))
        diff = max((abs(m[name] - metrics[0][name]) for m in metrics[1:] for name in shared), default=np.nan)
        curve_diffs = [d for _, run in found[1:] for d in curve_differences(found[0][1].get("curve") or [],
                                                                             run.get("curve") or [])[1]]
        cfg = found[0][1]["config"]
        prov = [run.get("provenance", {}) for _, run in found]
        rows.append({"run": f"{cfg.get('data')} {cfg.get('model')} {cfg.get('loss')}", "key": key,
                     "grids": ", ".join(g for g, _ in found),
                     "commits": ", ".join(str(p.get("commit") or "?")[:7] for p in prov),
                     "devices": ", ".join(sorted({device_label(p.get("device")) for p in prov})),
                     "kernels": _kernels(run for _, run in found),
                     "metrics": len(shared), "max |difference|": diff, "metrics identical": bool(shared) and diff == 0,
                     "curve max |difference|": max(curve_diffs, default=np.nan)})
    return pd.DataFrame(rows, columns=["run", "key", "grids", "commits", "devices", "kernels", "metrics", "max |difference|",
                                       "metrics identical", "curve max |difference|"])


def curve_differences(curve_a: list[dict], curve_b: list[dict]) -> tuple[int, list[float]]:
    """``(epochs both curves have, |a − b| of every value both have at those epochs)``; wall-clock fields left out."""
    by_epoch = {p["epoch"]: p for p in curve_a}
    pairs = [(by_epoch[p["epoch"]], p) for p in curve_b if p.get("epoch") in by_epoch]
    return len(pairs), [abs(float(a[k]) - float(b[k])) for a, b in pairs for k in a
                        if k not in ("epoch", "elapsed") and k in b and a[k] is not None and b[k] is not None]


def replayed_curves(profile: str, results_dir: str = "results") -> pd.DataFrame:
    """Stored runs whose configurations differ only in ``patience`` (a Table 2 cell and its patience-40 ablation):
    up to the last epoch of the shorter run the longer one must replay its curve exactly, training loss and every
    validation metric, even where it was interrupted and resumed from its checkpoint in a later session. The
    determinism and resume check on real runs. One row per (shorter, longer) pair: ``run``, ``grids``,
    ``patience`` ("10 → 40"), ``devices`` (as provenance names them, with the thread count), ``kernels`` (the
    instruction sets their sessions' kernels were picked for, :func:`seqrec.provenance.kernels`; "unrecorded" for a
    session stored before records kept it: a virtual machine's CPU name does not tell an AVX2 host from an
    AVX-512 one, and their roundings differ), ``shared epochs``,
    ``resumed at epoch`` (the longer run's resume points, "–" if it ran in one go), ``values`` compared,
    ``max |difference|`` and ``identical``. Error records are left out."""
    groups: dict[str, list[tuple[str, dict]]] = {}
    for grid, run in _stored_runs(profile, results_dir):
        cfg = run.get("config") or {}
        if "patience" not in cfg or not run.get("curve"):
            continue
        try:  # the key of the configuration with its patience set aside (old records lack newer fields' defaults)
            rest = TrainConfig.from_dict({**cfg, "patience": 1}).key()
        except SeqrecError:
            continue
        groups.setdefault(rest, []).append((grid, run))
    rows = []
    for found in groups.values():
        found.sort(key=lambda gr: (gr[1]["config"]["patience"], len(gr[1]["curve"])))
        short_grid, short = found[0]
        for grid, long in found[1:]:
            if long["config"]["patience"] == short["config"]["patience"]:
                continue  # the same configuration stored twice: repeated_runs compares those
            epochs, diffs = curve_differences(short["curve"], long["curve"])
            sessions = (long.get("provenance") or {}).get("sessions") or []
            resumed = ", ".join(str(s["from_epoch"]) for s in sessions if s.get("from_epoch"))
            cfg = short["config"]
            rows.append({"run": f"{cfg.get('data')} {cfg.get('model')} {cfg.get('loss')}",
                         "grids": f"{short_grid}, {grid}",
                         "patience": f"{cfg['patience']} → {long['config']['patience']}",
                         "devices": ", ".join(sorted({device_label((r.get("provenance") or {}).get("device"))
                                                      for r in (short, long)})),
                         "kernels": _kernels((short, long)),
                         "shared epochs": epochs,
                         "resumed at epoch": resumed or "–",
                         "values": len(diffs), "max |difference|": max(diffs, default=np.nan),
                         "identical": bool(diffs) and max(diffs) == 0})
    return pd.DataFrame(rows, columns=["run", "grids", "patience", "devices", "kernels", "shared epochs", "resumed at epoch",
                                       "values", "max |difference|", "identical"])


def planned_cells(grid: str, profile: str, results_dir: str | None = None) -> pd.DataFrame:
    """The grid's cells for ``profile`` as a frame: config fields ``data, model, loss, seed``, ``pretraining``
    (S3-Rec's, in words: :func:`seqrec.results.pretraining_label`) and the labels; with ``results_dir`` also
    ``stored`` (the store has the cell's run, under this grid or shared with another) and ``progress``: how far a
    cell not stored yet has got (:func:`seqrec.parking.cell_progress`, "" for none)."""
    from .. import experiments
    from ..parking import cell_progress
    from ..results import pretraining_label
    from ..runner import Store

    stored = Store(results_dir, profile, grid).done() if results_dir is not None else set()
    rows = []
    for c in experiments.cells(grid, profile):
        row = {"data": c.config.data, "model": c.config.model, "loss": c.config.loss, "seed": c.config.seed,
               "pretraining": pretraining_label(vars(c.config)), **c.labels}
        if results_dir is not None:
            row["stored"] = c.config.key() in stored
            row["progress"] = "" if row["stored"] else cell_progress(results_dir, profile, grid, c.config)
        rows.append(row)
    return pd.DataFrame(rows)

"""The results store and the executors that fill it.

Store: ``<results_dir>/<profile>/<grid>/<data>_<model>_<loss>_<key>-r<RESULTS_VERSION>.json``, one small JSON per
run, written atomically (temporary file in the same folder + rename: a killed runner never leaves a partial
file). A run is identified by ``TrainConfig.key()`` (hash of the resolved config, device excluded) and
:data:`RESULTS_VERSION`. Every record has top-level ``grid``, ``profile``, ``labels``, ``results_version`` and
``status`` (``"ok"`` or ``"error"``) besides the trainer's keys. An error record (the cell raised, or its worker
process died) keeps the one-line ``error`` and the traceback, has empty ``metrics`` (so it never reaches a
metrics frame) and is retried on the next run. Corrupt or foreign JSON files in the folder are reported by name
(a warning) and skipped.

``RESULTS_VERSION`` is bumped by hand when a code change alters what a given configuration computes (a fix in a
loss, the split, a metric, a model): stored runs of older versions are then ignored (not deleted) and rerun.
Changes that do not alter results (refactors, speed-ups with identical outputs, new models or losses) keep it.

Executors (one task per missing cell, cells are independent):

- ``subprocess``: cells run one after the other (``jobs=N``: up to N at once), each in a fresh Python subprocess
  (``python -m seqrec.runner``) so that the peak resident memory recorded for a run is that run's, and a crash
  (segfault, out of memory) takes down only its cell. SIGTERM of the runner ends the running child too (the
  child removes its temporary file); its cell is missing and runs again on the next invocation, resuming from the
  last finished epoch: the trainer checkpoints every epoch to :meth:`Store.partial` (removed when the record is
  stored), so a long cell can be carried over several sessions on the same machine, and to a fresh clone through
  the checkpoints :mod:`seqrec.parking` parks in ``<results_dir>/<profile>/parked/`` (taken back before training).
  With ``jobs > 1`` each child gets ``OMP_NUM_THREADS`` = cores // jobs unless the caller set it (N cells share the
  cores rather than oversubscribe them; on a GPU they share the device, which one small model leaves mostly idle).
- ``inprocess``: the same, in the calling process (no interpreter start-up per cell; an exception still only
  fails its cell, but peak memory is the process's high-water mark and a hard crash stops the grid).
- ``local`` (default of ``run_grid``): ``subprocess`` when the profile isolates cells (quick, paper), else
  ``inprocess`` (smoke); decided in :func:`seqrec.experiments.run_grid`.
- Every local cell is trained under a lock (:mod:`seqrec.locking`, ``.partial/<grid>/<run>.lock``): a second
  runner started on the same store skips the cells the first is training ("busy") instead of training them twice.
- ``dask``: one ``distributed`` task per missing cell (``resources={"GPU": 1}`` for cells whose device is CUDA);
  workers train and return the record, the client writes it to the store (no shared filesystem needed; the
  workers need the datasets).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
import warnings
from pathlib import Path

from . import results
from .errors import SeqrecError
from .locking import Busy, file_lock, held

RESULTS_VERSION = 1
EXECUTORS = ("local", "subprocess", "inprocess", "dask")


# --------------------------------------------------------------------------- the store
class Store:
    """The folder ``<results_dir>/<profile>/<grid>/`` of one grid's runs under one profile."""

    def __init__(self, results_dir: str | os.PathLike, profile: str, grid: str):
        self.root = Path(results_dir) / profile / grid
        self.profile, self.grid = profile, grid

    def path(self, config) -> Path:
        model = config.model.replace("/", "_")
        return self.root / f"{Path(str(config.data)).stem}_{model}_{config.loss}_{config.key()}-r{RESULTS_VERSION}.json"

    @staticmethod
    def key_of(path: str | os.PathLike) -> str:
        """The config key in a file named as :meth:`path` names a record (or as :meth:`partial` a checkpoint)."""
        return Path(path).stem.rsplit("_", 1)[-1].rsplit(f"-r{RESULTS_VERSION}", 1)[0]

    @staticmethod
    def _read(folder: Path) -> dict[str, dict]:
        out = {}
        if folder.is_dir():
            for run in results.load_runs(folder):
                if run.get("results_version") == RESULTS_VERSION and isinstance(run.get("key"), str):
                    if out.get(run["key"], {}).get("status") != "ok":
                        out[run["key"]] = run
        return out

    def records(self) -> dict[str, dict]:
        """Readable records of the current :data:`RESULTS_VERSION`, by config key (corrupt/foreign files warn).

        A configuration is one run whichever grid asks for it: a key missing here (or only an error here) is taken
        from the other grids of the same profile (sibling folders), e.g. Table 3's SASRec cells are Table 2's
        Beauty runs. Tables always label a run with the cell that shows it, not with the grid that ran it."""
        from .experiments import GRIDS

        out = self._read(self.root)
        for folder in (self.root.parent / name for name in sorted(GRIDS) if name != self.grid):
            for key, run in self._read(folder).items():
                if out.get(key, {}).get("status") != "ok" and run.get("status") == "ok":
                    out[key] = run
        return out

    def done(self) -> set[str]:
        """Keys of the successfully stored runs."""
        return {k for k, r in self.records().items() if r.get("status", "ok") == "ok"}

    def partial(self, config) -> Path:
        """The per-epoch checkpoint of ``config``'s run while it trains: ``<results_dir>/<profile>/.partial/<grid>/``
        (outside the grid's folder; ``.partial/`` is git-ignored), removed once its record is stored."""
        return self.root.parent / ".partial" / self.grid / self.path(config).with_suffix(".pt").name

    def model(self, config) -> Path:
        """The best epoch's weights of ``config``'s stored run, for evaluation-only checks later:
        ``<results_dir>/<profile>/.models/<grid>/`` (git-ignored, like ``.partial/``)."""
        return self.root.parent / ".models" / self.grid / self.path(config).with_suffix(".pt").name

    def write(self, record: dict) -> Path:
        from .experiments import make_config

        return results.save(record, self.path(make_config(record["config"])))

    def frame(self, cells):
        """Tidy frame (``results.to_frame`` columns plus one column per label) of the stored ``cells``; a run shared
        by several cells (same config) appears once per cell, with that cell's labels."""
        import pandas as pd

        from .experiments import LABELS

        records = self.records()
        frames = []
        for cell in cells:
            run = records.get(cell.config.key())
            if run is None or run.get("status", "ok") != "ok":
                continue
            f = results.to_frame([run])
            for name in LABELS:
                f[name] = cell.labels.get(name, "")
            frames.append(f)
        if not frames:
            run_columns = [c for c in results._run_row({"config": {}, "provenance": {}}) if c not in LABELS]
            return pd.DataFrame(columns=[*run_columns, "metric", "value", *LABELS])
        return pd.concat(frames, ignore_index=True)


def _read_partial(path: Path) -> dict | None:
    """The per-epoch checkpoint at ``path`` (its ``state`` holds the training state), or None when it cannot be
    read: being replaced right now, or a foreign file."""
    import torch

    try:
        saved = torch.load(path, map_location="cpu", weights_only=False)
    except Exception:  # noqa: BLE001
        return None
    return saved if isinstance(saved, dict) and "epoch" in saved.get("state", {}) else None


def partial_progress(results_dir: str | os.PathLike, profile: str) -> list[dict]:
    """The cells of ``profile`` interrupted or training now: one dict per per-epoch checkpoint under
    ``<results_dir>/<profile>/.partial/`` with ``grid, run`` (the result file's stem), ``epoch, best_epoch, best``
    (the monitored value), ``monitor`` (its name), ``bad`` (epochs since the best), ``epochs`` and ``patience``
    (the run's limits; ``monitor``, ``epochs`` and ``patience`` are None in a checkpoint written before they were
    saved), ``train_seconds``, ``eval_seconds``, ``seconds_per_epoch`` (both together, per epoch done; None before
    the first), ``seconds_left`` (at most: the remaining epochs at the mean seconds per epoch so far; early
    stopping may end it sooner; None without ``epochs``) and ``training`` (True while a runner holds the cell's
    lock: training now; False: interrupted, the next run resumes it)."""
    rows = []
    for path in sorted((Path(results_dir) / profile / ".partial").glob("*/*.pt")):
        saved = _read_partial(path)
        if saved is None:
            warnings.warn(f"skipping {path}: not a readable checkpoint", stacklevel=2)
            continue
        state = saved["state"]
        epochs, spent = saved.get("epochs"), state["train_seconds"] + state.get("eval_seconds", 0.0)
        per_epoch = spent / state["epoch"] if state["epoch"] else None
        left = None if epochs is None or per_epoch is None else (epochs - state["epoch"]) * per_epoch
        rows.append({"grid": path.parent.name, "run": path.stem, "epoch": state["epoch"], "best_epoch": state["best_epoch"],
                     "best": state["best"], "monitor": saved.get("monitor"), "bad": state["bad"], "epochs": epochs,
                     "patience": saved.get("patience"),
                     "train_seconds": state["train_seconds"], "eval_seconds": state.get("eval_seconds", 0.0),
                     "seconds_per_epoch": per_epoch, "seconds_left": left, "training": held(path.with_suffix(".lock"))})
    return rows


# --------------------------------------------------------------------------- one cell
def _payload(cell, grid: str, profile: str) -> dict:
    return {"config": cell.config.to_dict(), "labels": dict(cell.labels), "grid": grid, "profile": profile}


def execute_cell(payload: dict) -> dict:
    """Train one cell (``payload``: config dict, labels, grid, profile) and return its store record; any exception
    becomes an error record. Safe to call in a worker process or thread."""
    from . import provenance
    from .config import TrainConfig
    from .experiments import make_config

    head = {"grid": payload["grid"], "profile": payload["profile"], "labels": payload["labels"],
            "results_version": RESULTS_VERSION}
    t0 = time.perf_counter()
    try:
        config = TrainConfig.from_dict(payload["config"])  # validates the model name now
        if config.model == "s3rec":  # pretrain first if missing (the result records it, see trainer.train)
            from . import pretrain

            pretrain.ensure_pretrained(config, progress=False)
        from . import trainer

        result = trainer.train(config, checkpoint=payload.get("checkpoint"), model_out=payload.get("model_out"),
                               progress=False)
        return {**result, **head, "status": "ok"}
    except Exception as exc:  # noqa: BLE001  crash isolation: the cell fails, the grid goes on
        config = make_config(payload["config"]) if payload["config"].get("model") else None
        message = (str(exc).splitlines() or [""])[0] or type(exc).__name__
        return {**head, "status": "error", "error": f"{type(exc).__name__}: {message}",
                "traceback": traceback.format_exc(), "config": payload["config"],
                "key": config.key() if config else None, "metrics": {},
                "provenance": {**provenance.git_state(), "versions": provenance.versions(),
                               "wall_seconds": time.perf_counter() - t0}}


def _error_record(payload: dict, message: str) -> dict:
    from . import provenance
    from .experiments import make_config

    return {"grid": payload["grid"], "profile": payload["profile"], "labels": payload["labels"],
            "results_version": RESULTS_VERSION, "status": "error", "error": message, "traceback": "",
            "config": payload["config"], "key": make_config(payload["config"]).key(), "metrics": {},
            "provenance": {**provenance.git_state(), "versions": provenance.versions()}}


def _invalid(payload: dict) -> str | None:
    from .config import TrainConfig

    try:
        TrainConfig.from_dict(payload["config"])
    except SeqrecError as exc:
        return f"SeqrecError: {exc}"
    return None


def task_resources(config) -> dict | None:
    """Dask worker resources a cell asks for: one GPU when its device is CUDA."""
    return {"GPU": 1} if str(config.device).startswith("cuda") else None


def child_env(jobs: int = 1, environ=None) -> dict:
    """The environment of a cell's subprocess: this package importable and, when ``jobs`` cells run at once and
    the caller set no thread count, ``OMP_NUM_THREADS`` = cores // jobs (at least 1)."""
    env = dict(os.environ if environ is None else environ)
    package_root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join([package_root, *filter(None, [env.get("PYTHONPATH")])])
    if jobs > 1 and not env.get("OMP_NUM_THREADS"):
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // jobs))
    return env


class _Terminated(BaseException):
    pass


def _on_sigterm(signum, frame):
    raise _Terminated()


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


class Children:
    """The cell subprocesses running now, so that a terminated runner stops all of them; once stopped, no new one
    may start (a job thread that was about to launch its cell gives up instead)."""

    def __init__(self):
        self._procs, self._lock, self.closed = set(), threading.Lock(), False

    def add(self, proc: subprocess.Popen) -> bool:
        with self._lock:
            if not self.closed:
                self._procs.add(proc)
            return not self.closed

    def discard(self, proc: subprocess.Popen) -> None:
        with self._lock:
            self._procs.discard(proc)

    def stop_all(self) -> None:
        with self._lock:
            self.closed, procs = True, list(self._procs)
        for proc in procs:
            _stop(proc)


def _run_subprocess(payload: dict, out: Path, env: dict | None = None, live: Children | None = None) -> dict:
    """Run one cell in a fresh interpreter that writes its record to ``out``; return the record. ``live``: where
    the child is registered while it runs."""
    proc = subprocess.Popen([sys.executable, "-m", "seqrec.runner", str(out)], stdin=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=child_env() if env is None else env)
    if live is not None and not live.add(proc):
        _stop(proc)
        raise _Terminated()
    try:
        _, err = proc.communicate(json.dumps(payload))
    except BaseException:
        _stop(proc)
        raise
    finally:
        if live is not None:
            live.discard(proc)
    if proc.returncode == 0 and out.exists():
        return json.loads(out.read_text(encoding="utf-8"))
    last = (err or "").strip().splitlines()[-1:] or [""]
    return _error_record(payload, f"worker exited with status {proc.returncode}: {last[0]}")


def _describe(cell) -> str:
    c, lab = cell.config, cell.labels
    extra = [f"{lab['ablation']}" if lab.get("ablation") else "", lab.get("variant") or "",
             f"k={c.num_negatives}" if lab.get("negatives") not in ("", "all", None) else "",
             f"exclude={c.exclude_seen}" if c.exclude_seen != "-inf" else "", f"seed={c.seed}" if c.seed != 42 else ""]
    return " ".join([c.data, c.model, c.loss, *filter(None, extra)])


def _summary(record: dict) -> str:
    if record.get("status") != "ok":
        return f"ERROR {record.get('error')}"
    m = record["metrics"]
    return (f"HIT@10 {m.get('full_HIT@10', float('nan')):.4f} NDCG@10 {m.get('full_NDCG@10', float('nan')):.4f} "
            f"({record['epochs_run']} ep, {record['train_seconds']:.1f} s train, "
            f"{record['provenance']['peak_memory_mb']:.0f} MB)")


# --------------------------------------------------------------------------- executors
def _unique_missing(cells, store: Store) -> list:
    done, seen, missing = store.done(), set(), []
    for cell in cells:
        key = cell.config.key()
        if key not in done and key not in seen:
            seen.add(key)
            missing.append(cell)
    return missing


def resume_first(missing: list, store: Store) -> list:
    """``missing`` reordered so that interrupted cells (a per-epoch checkpoint in ``store``) come first, the one
    with the most epochs done first, so compute already spent turns into stored results soonest; the others keep
    their grid order."""
    def epochs_done(cell) -> int | None:  # None: no checkpoint; one that cannot be read still goes first, at 0
        path = store.partial(cell.config)
        if not path.exists():
            return None
        saved = _read_partial(path)
        return saved["state"]["epoch"] if saved else 0

    done = {c.config.key(): epochs_done(c) for c in missing}
    started = sorted((c for c in missing if done[c.config.key()] is not None), key=lambda c: -done[c.config.key()])
    return started + [c for c in missing if done[c.config.key()] is None]


def _unpark(missing: list, store: Store) -> int:
    """Take back the parked checkpoints (:mod:`seqrec.parking`) of the ``missing`` cells no runner trains now,
    and of the S3-Rec pretrainings they need; return how many were copied."""
    from . import parking
    from .pretrain import checkpoint_path

    copied = 0
    for cell in missing:
        if not held(store.partial(cell.config).with_suffix(".lock")):
            copied += parking.unpark_run(store, cell.config) is not None
        if cell.config.model == "s3rec":
            try:
                lock = checkpoint_path(cell.config)
            except SeqrecError:  # bad model_options: the cell's own error record says so
                continue
            if not held(lock.with_name(lock.name + ".lock")):
                copied += parking.unpark_pretraining(store, cell.config) is not None
    return copied


BUSY, STORED = "busy", "stored"  # what _train_cell returns instead of a record when it did not train the cell


def _train_cell(cell, store: Store, grid: str, profile: str, executor: str, env: dict, live: Children):
    """Train one missing cell under its lock; return its record, or BUSY (another runner holds the lock) or STORED
    (another runner stored it since this one looked)."""
    payload = {**_payload(cell, grid, profile), "checkpoint": str(store.partial(cell.config)),
               "model_out": str(store.model(cell.config))}
    invalid = _invalid(payload)
    if invalid is not None:  # e.g. a model not registered: no need for a process to say so
        return _error_record(payload, invalid)
    try:
        with file_lock(store.partial(cell.config).with_suffix(".lock"), blocking=False):
            if cell.config.key() in store.done():
                return STORED
            if executor == "inprocess":
                return execute_cell(payload)
            return _run_subprocess(payload, store.path(cell.config), env, live)
    except Busy:
        return BUSY


def execute(cells, store: Store, *, grid: str, profile: str, executor: str = "local", scheduler=None,
            progress: bool = True, jobs: int = 1) -> dict:
    """Run the cells of ``cells`` missing from ``store``, up to ``jobs`` at once (subprocess executor); return
    counts {total, stored, ran, errors, busy}."""
    if executor == "local":
        executor = "subprocess"
    if executor not in EXECUTORS:
        raise SeqrecError(f"unknown executor {executor!r}; allowed: {', '.join(EXECUTORS)}")
    if not isinstance(jobs, int) or jobs < 1:
        raise SeqrecError(f"jobs must be a whole number >= 1, got {jobs!r}")
    if jobs > 1 and executor != "subprocess":
        raise SeqrecError(f"jobs={jobs} needs the subprocess executor (cells side by side in separate processes), "
                          f"not {executor!r}")
    from . import parking

    unique = {c.config.key() for c in cells}
    missing = _unique_missing(cells, store)
    unparked = _unpark(missing, store)
    missing = resume_first(missing, store)
    resumed = sum(store.partial(c.config).exists() for c in missing)
    to_run = {c.config.key() for c in missing}
    for cell in cells:  # a run stored by its worker just before the runner was killed keeps no checkpoint
        if cell.config.key() not in to_run:
            store.partial(cell.config).unlink(missing_ok=True)
    counts = {"total": len(unique), "stored": len(unique) - len(missing), "ran": 0, "errors": 0, "busy": 0}
    say = print if progress else (lambda *a, **k: None)
    first = f", {resumed} of them interrupted and resumed first" if resumed else ""
    first += f" ({unparked} checkpoints taken back from {parking.store_parked_root(store)})" if unparked else ""
    say(f"{grid} / {profile}: {len(unique)} runs, {counts['stored']} already stored, {len(missing)} to run{first} "
        f"({executor}{f', {jobs} at once' if jobs > 1 else ''}) -> {store.root}", flush=True)
    if not missing:
        return counts
    t0 = time.perf_counter()

    def record_done(i, cell, record):
        if record in (BUSY, STORED):
            counts["busy" if record == BUSY else "stored"] += 1
            say(f"[{i}/{len(missing)}] {_describe(cell)}: skipped, "
                f"{'another runner is training it' if record == BUSY else 'another runner stored it'}", flush=True)
            return
        store.write(record)
        if record.get("status") == "ok":
            store.partial(cell.config).unlink(missing_ok=True)
        counts["ran"] += 1
        counts["errors"] += record.get("status") != "ok"
        say(f"[{i}/{len(missing)}] {_describe(cell)}: {_summary(record)}  [{time.perf_counter() - t0:.0f} s]", flush=True)

    if executor == "dask":
        _execute_dask(missing, store, grid, profile, scheduler, record_done)
    else:
        env, live = child_env(jobs), Children()
        previous = None
        try:
            previous = signal.signal(signal.SIGTERM, _on_sigterm)
        except ValueError:  # not the main thread
            pass
        try:
            if jobs == 1:
                for i, cell in enumerate(missing, 1):
                    record_done(i, cell, _train_cell(cell, store, grid, profile, executor, env, live))
            else:
                _execute_parallel(missing, jobs, lambda cell: _train_cell(cell, store, grid, profile, executor, env, live),
                                  record_done, live)
        except _Terminated:
            say("terminated: the running cells were stopped; rerun to resume", flush=True)
            raise SystemExit(143)
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
    busy = f", {counts['busy']} busy elsewhere" if counts["busy"] else ""
    say(f"{grid} / {profile}: ran {counts['ran']} ({counts['errors']} errors{busy}) in {time.perf_counter() - t0:.1f} s",
        flush=True)
    return counts


def _execute_parallel(missing, jobs: int, train_cell, record_done, live: Children) -> None:
    """Up to ``jobs`` cells at once, each in its own subprocess driven by a thread; records are written here, in the
    calling thread, as cells finish. On SIGTERM (or any exception) every running child is stopped first."""
    from concurrent.futures import ThreadPoolExecutor, as_completed

    pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="seqrec-cell")
    try:
        futures = {pool.submit(train_cell, cell): cell for cell in missing}
        for i, fut in enumerate(as_completed(futures), 1):
            record_done(i, futures[fut], fut.result())
    except BaseException:
        live.stop_all()  # the cells not started yet are cancelled by the shutdown below
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _execute_dask(missing, store, grid, profile, scheduler, record_done) -> None:
    try:
        from distributed import Client, as_completed
    except ImportError as exc:  # pragma: no cover
        raise SeqrecError("the dask executor needs dask distributed: pip install 'seqrec[dask]'") from exc
    if scheduler is None:
        raise SeqrecError("the dask executor needs --scheduler tcp://host:port (or a distributed.Client)")
    client = scheduler if isinstance(scheduler, Client) else Client(scheduler)
    try:
        futures = {}
        for cell in missing:
            fut = client.submit(execute_cell, _payload(cell, grid, profile), key=f"seqrec-{grid}-{cell.config.key()}",
                                pure=False, resources=task_resources(cell.config))
            futures[fut] = cell
        for i, fut in enumerate(as_completed(list(futures)), 1):
            cell = futures[fut]
            try:
                record = fut.result()
            except Exception as exc:  # noqa: BLE001  the worker died or the task was lost
                record = _error_record(_payload(cell, grid, profile), f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}")
            record_done(i, cell, record)
    finally:
        if client is not scheduler:
            client.close()


def main() -> int:
    """Subprocess entry: ``python -m seqrec.runner OUT.json`` with the cell's payload as JSON on stdin."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run finally blocks: no temporary file left
    out = Path(sys.argv[1])
    payload = json.loads(sys.stdin.read())
    record = execute_cell(payload)
    results.save(record, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

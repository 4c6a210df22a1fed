"""Build the book: execute every notebook with Papermill, then ``jupyter-book build`` with warnings as errors.

``python -m seqrec.book build --profile smoke --train missing`` (what ``make book`` runs):

1. clears ``book/generated/`` and ``_build/html`` (no stale chapter can survive a failed run);
2. executes ``notebooks/NN_*.ipynb`` in order with the parameters ``profile``, ``train``, ``seeds``,
   ``datasets`` and ``results_dir``, writing the executed copies to ``book/generated/``; the scoreboard
   (``00_scoreboard``) runs last and only reads the store;
3. on a failing cell, stops with the notebook's name, the cell and the error, and builds nothing;
4. runs ``jupyter-book build . -W --keep-going`` (the book does not re-execute notebooks) and prints where the
   HTML is.

``--train all`` moves ``results/<profile>/`` aside (to ``results/<profile>.before-<time>/``) so that every cell is
retrained; ``--train none`` only reads stored results.
"""
from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from .errors import SeqrecError

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ("01_data", "02_losses_figure1", "03_table2", "04_table3", "05_why_cce", "06_reproduction_notes",
             "00_scoreboard")
GENERATED = Path("book") / "generated"


def runner_available() -> bool:
    """Whether ``seqrec.experiments`` and ``seqrec.paper`` (the experiment runner) are importable."""
    if importlib.util.find_spec("seqrec.experiments") is None:
        return False
    import seqrec.paper

    return hasattr(seqrec.paper, "compare")


def parameters(profile: str, train: str, seeds=None, datasets=None, results_dir: str = "results") -> dict:
    return {"profile": profile, "train": train, "seeds": seeds, "datasets": datasets, "results_dir": results_dir}


def execute(names=NOTEBOOKS, *, root: Path | None = None, out_dir: Path | None = None, params: dict,
            log=print) -> list[Path]:
    """Execute ``notebooks/<name>.ipynb`` for each name into ``out_dir`` (cleared first). Raises SeqrecError
    naming the notebook and the failing cell; the failed notebook is kept under ``out_dir`` for inspection."""
    import papermill as pm

    root = Path(root) if root is not None else ROOT
    out_dir = Path(out_dir) if out_dir is not None else root / GENERATED
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    written = []
    for name in names:
        src = root / "notebooks" / f"{name}.ipynb"
        if not src.is_file():
            raise SeqrecError(f"missing notebook {src}")
        dst = out_dir / f"{name}.ipynb"
        p = dict(params)
        t0 = time.perf_counter()
        log(f"book: executing notebooks/{name}.ipynb (profile={p['profile']}, train={p['train']})")
        try:
            pm.execute_notebook(str(src), str(dst), parameters=p, cwd=str(root), kernel_name="python3",
                                progress_bar=False, log_output=False)
        except pm.PapermillExecutionError as exc:
            first = (exc.evalue or "").strip().splitlines()
            index = exc.cell_index - 1 if p else exc.cell_index  # papermill inserted an injected-parameters cell
            line = (exc.source or "").strip().splitlines()
            raise SeqrecError(f"notebook notebooks/{name}.ipynb failed in cell {index} (0-based, starting "
                              f"{line[0][:60] if line else ''!r}): {exc.ename}: {first[0] if first else ''} "
                              f"(executed copy: {dst})") from None
        _hide_injected_parameters(dst)
        log(f"book:   done in {time.perf_counter() - t0:.1f} s -> {dst.relative_to(root) if dst.is_relative_to(root) else dst}")
        written.append(dst)
    return written


def _hide_injected_parameters(path: Path) -> None:
    """Collapse the cell Papermill injected (the banner names the profile; the values stay one click away)."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        tags = cell.metadata.setdefault("tags", [])
        if "injected-parameters" in tags and "hide-input" not in tags:
            tags.append("hide-input")
    nbformat.write(nb, path)


def build_html(root: Path | None = None, log=print) -> Path:
    """``jupyter-book build`` of ``root`` (default: this checkout) with warnings as errors; returns the HTML folder."""
    root = Path(root) if root is not None else ROOT
    exe = Path(sys.executable).parent / "jupyter-book"
    cmd = [str(exe) if exe.exists() else "jupyter-book", "build", str(root), "--warningiserror", "--keep-going"]
    log("book: " + " ".join(cmd))
    proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-25:])
        raise SeqrecError(f"jupyter-book build failed (warnings are errors):\n{tail}")
    return root / "_build" / "html"


def build(profile: str, train: str, *, seeds=None, datasets=None, results_dir: str = "results",
          root: Path | None = None, names=NOTEBOOKS, html: bool = True, log=print) -> Path | None:
    if train not in ("missing", "all", "none"):
        raise SeqrecError(f"unknown --train {train!r}; allowed: missing, all, none")
    if not runner_available():
        raise SeqrecError("seqrec.experiments / seqrec.paper are missing: the experiment runner is needed to build the book")
    root = Path(root) if root is not None else ROOT
    t0 = time.perf_counter()
    shutil.rmtree(root / "_build" / "html", ignore_errors=True)
    if train == "all":
        store = root / results_dir / profile
        if store.exists():
            aside = store.with_name(f"{profile}.before-{dt.datetime.now():%Y%m%d-%H%M%S}")
            store.rename(aside)
            log(f"book: --train all: moved {store} aside to {aside}")
        train = "missing"
    os.environ.setdefault("PYTHONHASHSEED", "0")
    execute(names, root=root, params=parameters(profile, train, seeds, datasets, results_dir), log=log)
    if not html:
        return None
    out = build_html(root, log)
    log(f"book: built in {time.perf_counter() - t0:.0f} s; open {out / 'index.html'}")
    return out


def _list(text: str | None, cast=str):
    return None if not text else [cast(x) for x in text.split(",") if x]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m seqrec.book", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="execute the notebooks and build the HTML book")
    b.add_argument("--profile", default="paper", help="experiment profile: smoke, quick or paper (default: paper)")
    b.add_argument("--train", default="missing", choices=("missing", "all", "none"),
                   help="train the cells missing from the store (default), retrain all, or train none")
    b.add_argument("--seeds", help="comma-separated seeds to show (default: all the profile ran)")
    b.add_argument("--datasets", help="comma-separated datasets to show (default: all the grid has)")
    b.add_argument("--results-dir", default="results", help="results store (default: results)")
    b.add_argument("--notebooks", help="comma-separated notebook names to execute (default: all)")
    b.add_argument("--no-html", action="store_true", help="execute the notebooks only")
    args = parser.parse_args(argv)
    try:
        build(args.profile, args.train, seeds=_list(args.seeds, int), datasets=_list(args.datasets),
              results_dir=args.results_dir, names=_list(args.notebooks) or NOTEBOOKS, html=not args.no_html)
    except SeqrecError as exc:
        print(f"seqrec: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""How near a changed value comes to the paper's number: the verdicts' tolerance, the nearness words the
discrepancy checks share, and the stored rows behind a compared cell."""
from __future__ import annotations

import pandas as pd


def _within_tolerance(value: float, r) -> bool:
    """Is ``value`` within the verdicts' tolerance (:data:`seqrec.paper.TOLERANCE`) of the cell's reported value?"""
    from ..paper import TOLERANCE

    return abs(value - r["reported"]) <= TOLERANCE * r["reported"]


MIN_SHARE_OF_GAP = 0.25  # a change that moves a cell by less than this share of its gap explains none of it


def _moves_the_cell(value: float, r) -> bool:
    """Does ``value`` differ from the cell's own value by at least :data:`MIN_SHARE_OF_GAP` of the cell's gap to the
    reported value? (A cell just outside the tolerance is not explained by a change that barely moves it across.)"""
    return abs(value - r["reproduced"]) >= MIN_SHARE_OF_GAP * abs(r["reproduced"] - r["reported"])


def _explains(value: float, r) -> bool:
    """``value`` (the cell under some change) lands within the tolerance and the change :func:`_moves_the_cell`."""
    return _within_tolerance(value, r) and _moves_the_cell(value, r)


def _nearness(value: float, r) -> str:
    """``"ruled out"`` when the change does not move the cell (:func:`_moves_the_cell`); else ``"found"`` when
    ``value`` is within the tolerance of the cell's reported value, ``"partly"`` when outside but nearer to it than
    the cell's own value, ``"past"`` when no nearer but on the other side of it (the change moves the cell the
    gap's way and further: it matters, yet does not by itself give the paper's number), ``"ruled out"``
    otherwise."""
    if not _moves_the_cell(value, r):
        return "ruled out"
    if _within_tolerance(value, r):
        return "found"
    if abs(value - r["reported"]) < abs(r["reproduced"] - r["reported"]):
        return "partly"
    return "past" if (value - r["reported"]) * (r["reproduced"] - r["reported"]) < 0 else "ruled out"


def _moved(value: float, r, before: str) -> str:
    """Where a change takes cell ``r`` (``value``) against where it was (``before``: whose the cell's own value is,
    e.g. "with ours"), both relative to the reported value."""
    return (f"{value:.4f}, {value / r['reported'] - 1:+.0%} from the reported {r['reported']:.4f} against "
            f"{r['reproduced'] / r['reported'] - 1:+.0%} {before}")


def _partly(nearness: str, factor: str, reaches: str, value: float, r, before: str) -> str:
    """The words for a ``"partly"`` or ``"past"`` :func:`_nearness` of ``factor``: ``reaches`` (what reaches
    ``value``) and :func:`_moved`."""
    lead = f"partly the {factor}" if nearness == "partly" else f"overshot by the {factor}"
    tail = ", past the paper's number in the gap's direction" if nearness == "past" else ""
    return f"{lead}: {reaches} {_moved(value, r, before)}{tail}"


def _cell_rows(r, frame: pd.DataFrame, variant: str | None = None) -> pd.DataFrame:
    """The rows of the tidy Table 2 ``frame`` behind the compared cell ``r``: as :func:`seqrec.paper.compare`
    reads them (SR-GNN with CCE: the ``authors`` variant), or the given SR-GNN ``variant``. A frame without a
    ``metric`` column (cells, not values: :func:`planned_cells`) is matched on the rest."""
    sel = frame[(frame["data"] == r["dataset"]) & (frame["paper_model"] == r["model"])
                & (frame["loss_kind"] == r["loss_kind"])]
    if "metric" in frame:
        sel = sel[sel["metric"] == f"full_{r['metric']}"]
    if r["model"] == "SR-GNN" and r["loss_kind"] == "improved" and "variant" in sel:
        from ..paper import SRGNN_CCE_VARIANT

        sel = sel[sel["variant"].fillna("").astype(str) == (variant or SRGNN_CCE_VARIANT)]
    return sel


def _reaches(value: float, r, factor: str, what: str, before: str, ruled: str | None = None,
             tail: str = "") -> tuple[str, str]:
    """The outcome and words of a check in which the same cell, changed as ``what`` says (e.g. "with SR-GNN's own
    recipe (...)"), reaches ``value``: ``("found", ...)``, ``("partly", ...)`` (partly or past, :func:`_partly`) or
    ``("ruled out", ...)`` by :func:`_nearness`. ``ruled``: the factor's name in a ruled-out sentence (default
    ``factor``); ``tail``: words appended to a found or partly sentence."""
    nearness = _nearness(value, r)
    if nearness == "found":
        return "found", f"{factor}: {what} the same cell reaches {value:.4f} (reported {r['reported']:.4f}){tail}"
    if nearness in ("partly", "past"):
        return "partly", _partly(nearness, factor, f"{what} the same cell reaches", value, r, before) + tail
    return "ruled out", (f"{ruled or factor} ({what} the cell reaches {value:.4f}, "
                         f"{value / r['reported'] - 1:+.0%} from the reported {r['reported']:.4f})")


def _scoped_seeds(changed: pd.DataFrame, r, frame: pd.DataFrame | None) -> tuple[list[int], pd.DataFrame]:
    """The seeds of a check's changed runs (``changed``) when they cover fewer seeds than the cell ``r`` averages
    ([] when as many or none), and the cell's own runs with those seeds (rows of ``frame``; empty without it)."""
    none = pd.DataFrame(columns=["seed", "value"])
    seeds = sorted({int(s) for s in changed["seed"].dropna()}) if "seed" in changed else []
    if not seeds or len(seeds) >= r["n_seeds"]:
        return [], none
    own = _cell_rows(r, frame) if frame is not None and len(frame) else none
    return seeds, own[own["seed"].isin(seeds)]


def _same_seeds(changed: pd.DataFrame, r, frame: pd.DataFrame | None):
    """The compared cell ``r`` with its ``reproduced`` value taken from its own runs with the seeds of ``changed``
    (:func:`_scoped_seeds`: a one-seed rerun is set against that seed's run, not against the mean over seeds);
    ``r`` itself when those cover as many seeds as the cell or ``frame`` has none of them."""
    _, own = _scoped_seeds(changed, r, frame)
    if not len(own):
        return r
    base = r.copy()
    base["reproduced"] = own["value"].mean()
    return base


def _seed_scope(changed: pd.DataFrame, r, frame: pd.DataFrame | None) -> str:
    """Words to append when a check's changed runs (``changed``) cover fewer seeds than the cell ``r`` averages:
    which seeds, and what the cell's own runs with those seeds reach (from ``frame``), so that a one-seed value is
    not read against a mean over seeds; "" when they cover as many seeds as the cell."""
    seeds, own = _scoped_seeds(changed, r, frame)
    if not seeds:
        return ""
    who = f"seed {seeds[0]}" if len(seeds) == 1 else "seeds " + ", ".join(map(str, seeds))
    if not len(own):
        return f" ({who} only)"
    same = (f"the cell's seed-{seeds[0]} run reaches" if len(seeds) == 1
            else "the cell's runs with those seeds reach on average")
    return f" ({who} only; {same} {own['value'].mean():.4f})"

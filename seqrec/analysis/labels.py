"""Labels shared by every table: the paper's loss names, verdict words, a run's display label."""
from __future__ import annotations

import html

import pandas as pd

PAPER_LOSS = {"bce": "BCE", "bpr": "BPR", "bpr_max": "BPR-max", "top1": "TOP1", "top1_max": "TOP1-max",
              "ce": "CE", "cce": "CCE", "cce_naive": "CCE", "mlm": "MLM"}
NEGATIVE_LOSSES = ("bce", "bpr", "bpr_max", "top1", "top1_max")
VERDICTS = ("reproduced", "better", "worse", "not run")
NOT_REPORTED = "not reported"


def profile_banner(profile: str, data_only: bool = False) -> str:
    """HTML shown at the top of every notebook: which profile produced the numbers; loud for ``smoke``.
    ``data_only``: the page shows dataset statistics, which no profile changes."""
    p = html.escape(profile)
    if data_only:
        return ('<div class="admonition note"><p class="admonition-title">Data statistics: independent of the profile</p>'
                f'<p>This copy was executed with the <code>{p}</code> profile, but every number on this page is computed '
                'from the complete data files, not from training runs.</p></div>')
    if profile == "smoke":
        return ('<div class="admonition danger"><p class="admonition-title">Smoke profile: these numbers are NOT results</p>'
                f'<p>This chapter was executed with the <code>{p}</code> profile: tiny data subsets and a few epochs, only to '
                'check that the pipeline runs end to end. Every number and figure below is meaningless as a reproduction; '
                'rebuild with <code>make book PROFILE=paper</code> for the real ones.</p></div>')
    return (f'<div class="admonition note"><p class="admonition-title">Profile: {p}</p>'
            f'<p>Every number on this page was produced by the <code>{p}</code> profile of <code>seqrec.experiments</code>; '
            'the paper\'s numbers are labelled "reported".</p></div>')


def loss_label(loss: str, num_negatives=None, mask_prob=None) -> str:
    """The paper's name of a loss configuration: ``("bce", 10) -> "BCE-10"``, ``("mlm", mask_prob=0.2) ->
    "MLM (mask 0.2)"``, ``("cce",) -> "CCE"``."""
    name = PAPER_LOSS.get(loss, loss)
    if loss in NEGATIVE_LOSSES and num_negatives is not None and not pd.isna(num_negatives):
        return f"{name}-{int(num_negatives)}"
    if loss == "mlm" and mask_prob is not None and not pd.isna(mask_prob):
        return f"{name} (mask {float(mask_prob):g})"
    return name


def loss_labels(frame: pd.DataFrame) -> pd.Series:
    """:func:`loss_label` of every row of a tidy frame (columns ``loss``, ``num_negatives``, ``mask_prob``), aligned
    with its index."""
    labels = [loss_label(l, k, m) for l, k, m in zip(frame["loss"], frame["num_negatives"], frame["mask_prob"])]
    return pd.Series(labels, index=frame.index, dtype=object)


def _reported_label(row) -> str:
    loss, neg = str(row["loss"]), str(row["negatives"])
    return f"{loss}-{neg}" if neg.isdigit() else loss

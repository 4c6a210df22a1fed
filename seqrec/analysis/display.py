"""Styling for the book: pandas Stylers with a caption, a reason instead of an empty table, verdict colours."""
from __future__ import annotations

import html

import numpy as np
import pandas as pd


# Row labels longer than this (a not-run reason used as the index) wrap instead of running off the page: the book's
# CSS keeps header cells on one line, which suits the short labels (a loss, a dataset) that most tables have.
WRAP_LABEL_CHARS = 40
WRAP_LABEL_STYLE = "white-space: normal; min-width: 24em"


def styled(df: pd.DataFrame, caption: str, fmt: str = "{:.4f}", na: str = "not run", formats: dict | None = None):
    """A pandas Styler: numbers (in any column, object columns included) formatted with ``fmt``, other values as
    text, missing values written as ``na`` (never blank). ``formats``: column -> format string (or callable) for
    those columns only, their missing values written "–". (Use this, not ``Styler.format({column: ...})``:
    a dict without ``subset`` puts every other column back to pandas' default six decimals.) A row label longer
    than ``WRAP_LABEL_CHARS`` characters wraps (``WRAP_LABEL_STYLE``). Text (values, labels, caption) is HTML-escaped:
    a reason such as "sampled 0.0105 < full 0.0160" is shown as written, never read as markup."""
    def number(v):
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.number)):
            return str(v)
        return fmt.format(v)

    out = df.style.format(number, na_rep=na, escape="html").set_caption(html.escape(caption))
    out = out.format_index(escape="html", axis="index").format_index(escape="html", axis="columns")
    out = out.map_index(lambda label: WRAP_LABEL_STYLE if len(str(label)) > WRAP_LABEL_CHARS else "", axis="index")
    for column, spec in (formats or {}).items():
        out = out.format(spec, subset=[column], na_rep="–", escape="html")
    return out


def table_or_reason(df: pd.DataFrame, caption: str, reason: str, fmt: str = "{:.4f}", formats: dict | None = None,
                    verdicts: tuple = ()):
    """:func:`styled` (with ``fmt`` and ``formats``) when ``df`` has rows, else an HTML note saying the table was
    not run and why. ``verdicts``: columns coloured by :func:`color_verdict`."""
    from IPython.display import HTML

    if len(df):
        out = styled(df, caption, fmt, formats=formats)
        return out.map(color_verdict, subset=list(verdicts)) if verdicts else out
    return HTML(f'<div class="admonition warning"><p class="admonition-title">Not run: {html.escape(caption)}</p>'
                f'<p>{html.escape(reason)}</p></div>')


def color_verdict(value) -> str:
    return {"reproduced": "background-color: #c7e9c0", "better": "background-color: #c6dbef",
            "worse": "background-color: #fcbba1", "not run": "background-color: #eeeeee",
            "holds": "background-color: #c7e9c0", "does not hold": "background-color: #fcbba1"}.get(value, "")

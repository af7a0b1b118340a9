"""The names every table, figure and sentence of the analysis shares, and how numbers are written.

A row is identified by its variant id (``grid.variant_id``: the registered short name, or ``<stem>-<hash>`` for a
user's file) and shown under that same name everywhere: tables, figures, sentences and the round files all say
``l2_norm_error``, never the seed documents' long label ``delta_net_4layer_l2_normalized_error_update_in_for_loop``.
"""
from __future__ import annotations

import math

from .. import tasks as T
from ..variants import VARIANTS, name_of_label

BASELINE = "delta_net"  # the model every variant modifies: paired differences are taken against it
REFERENCE = "gated_delta_net"  # the row the seed documents measure every variant against
BASELINES = (BASELINE, REFERENCE)
AVERAGE = "Average"  # MAD's overall score: per seed the mean over the task columns measured, then over seeds
ALL_SETTINGS = "all"  # the setting of a task score (the mean over the task's settings) and of the Average
COLUMNS = list(T.COLUMNS)


def display_name(row: str) -> str:
    """The one name of a row: a registered short name stays as it is; a seed-table label becomes its short name;
    anything else (a user file's variant id) is returned unchanged."""
    if row in VARIANTS:
        return row
    try:
        return name_of_label(row)
    except ValueError:
        return row


def fmt(x: float | None, digits: int = 3) -> str:
    """"0.512"; "n/a" for a missing value."""
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def signed(x: float | None, digits: int = 3) -> str:
    """"+0.012" / "-0.004" / "+0.000" for 0 (never "-0.000"); a value too small for ``digits`` but above float
    rounding (1e-9) keeps one significant digit ("-3e-04"), so a consistent tiny difference is not printed as 0."""
    if x is None or math.isnan(x):
        return "n/a"
    if 1e-9 < abs(x) < 0.5 * 10 ** -digits:
        return f"{x:+.0e}"
    return f"{round(x, digits) + 0.0:+.{digits}f}"


def join_words(items, last: str = "and") -> str:
    """"a", "a and b", "a, b and c" (``last="or"``: "a, b or c")."""
    items = [str(x) for x in items]
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} {last} {items[-1]}"

"""The study's statistics: paired differences per seed, one row's interval, the seed tables' noise, signal.

**Paired.** A seed fixes the data, the initialisation and the batch order of every variant (``train.run_data``,
``torch.manual_seed``), so two rows are compared seed by seed. With ``d_s = a_s − b_s`` over the n seeds both
rows have:

    d̄ ± t(0.975, n − 1) · sd(d) / √n                  (Student's t with n − 1 degrees of freedom, scipy)

The interval above 0 is a clear difference upwards, below 0 downwards; one that contains 0 is no clear
difference. Why t rather than the alternatives at n = 2-4: an exact sign-flip permutation test cannot reach
p < 0.05 with fewer than six seeds (its smallest two-sided p is 2/2ⁿ: 0.25 at n = 3), and a bootstrap of three
differences is not a distribution. The t interval assumes roughly normal differences, which three values cannot
check; a cell whose seeds either learn the task or not (the seed-spread table) is where that assumption fails.
With fewer than ``MIN_SEEDS`` = 3 common seeds nothing is called: at n = 2 the spread of the differences rests
on one degree of freedom.

**One row.** Its mean over seeds with the t interval of the mean, intersected with [0, 1]: an accuracy lies in
[0, 1], so the intersection still contains the true mean whenever the t interval does (same coverage), and
shows no impossible values.

**The seed tables.** They publish one number per cell (a mean over four seeds), no spread. Rows whose change
cannot act on a task are DeltaNet there; their spread in a seed table is the tables' own run-to-run noise
(``table_noise``). Two reported cells differ clearly only when their difference exceeds
t(0.975, k − 1) · √2 · sd, with sd and k from those rows (``point_difference``).

**What four seeds allow.** An exact sign-flip test of n paired differences has 2ⁿ equally likely sign patterns
under "no difference"; its smallest two-sided p is 2/2ⁿ (``sign_flip_floor``: 0.125 at n = 4), above 0.05 for
n ≤ 5. So at four seeds no verdict can rest on the signs alone: each rests on the t interval, i.e. on the four
differences being roughly normal. The sign count (``Difference.agree``: "4 of 4 seeds") is shown beside every
decisive verdict so a reader sees how far the seeds themselves agree.

**p-values and multiplicity.** Each interval has its two-sided t test (``Difference.p``, ``Level.p``: p < 0.05
exactly when the 95% interval excludes the null value), so a family of verdicts can be adjusted together:
``holm`` (Holm's step-down, which controls the family-wise error: the chance that any decisive verdict of the
family is a false one). It is a few lines here rather than a dependency (statsmodels) for one function; the tests
check it against hand-computed values.

**Rank agreement** (``spearman_interval``): Spearman's ρ between two scorings of the same rows with a percentile
bootstrap interval from ``scipy.stats.bootstrap``, rows resampled in pairs (``paired=True``).

**Signal of a setting** (``signal_ratio``): the variance of the rows' means over the mean variance between one
row's seeds. Above 1, rows differ by more than seeds do.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

LEVEL = 0.95
MIN_SEEDS = 3  # fewer common seeds: no clear difference is called
METHOD = (f"paired over seeds: mean of the per-seed differences with its {LEVEL:.0%} Student-t interval "
          f"(n − 1 degrees of freedom); a difference is called only with n ≥ {MIN_SEEDS} seeds and an interval "
          f"that excludes 0")


def _t_p(estimate: float, se: float, df: int, null: float) -> float:
    """Two-sided p of a t statistic (estimate − null) / se with ``df`` degrees of freedom; a zero spread gives 0
    (any difference from the null is exact) or 1 (none); NaN when nothing can be tested."""
    if df < 1 or math.isnan(estimate) or math.isnan(se):
        return math.nan
    gap = estimate - null
    if se == 0:
        return 1.0 if abs(gap) < 1e-12 else 0.0
    return float(2 * stats.t.sf(abs(gap) / se, df))


def sign_flip_floor(n: int) -> float:
    """The smallest two-sided p an exact sign-flip test of n paired differences can give: 2/2ⁿ (capped at 1)."""
    return min(1.0, 2 / 2 ** n)


@dataclass(frozen=True)
class Difference:
    """``a − b`` with its interval. ``n`` is the number of seeds (for a seed table: the replicate rows behind the
    noise estimate). ``direction``: "above", "below" or "unclear". ``se`` and ``df``: the interval's standard
    error and degrees of freedom, from which ``p`` tests any null value."""

    diff: float
    low: float
    high: float
    n: int
    per_seed: tuple[float, ...] = ()
    enough: bool = True  # False: fewer than MIN_SEEDS, or no spread measured; nothing is called
    se: float = math.nan
    df: int = 0

    def p(self, null: float = 0.0) -> float:
        """Two-sided p of "the mean difference is ``null``" (NaN when nothing is called: too few seeds)."""
        return _t_p(self.diff, self.se, self.df, null) if self.enough else math.nan

    def agree(self, side: str, null: float = 0.0) -> int:
        """How many per-seed differences lie on ``side`` ("above" or "below") of ``null``."""
        return sum((x > null) if side == "above" else (x < null) for x in self.per_seed)

    @property
    def direction(self) -> str:
        if not self.enough or math.isnan(self.diff):
            return "unclear"
        return "above" if self.low > 0 else "below" if self.high < 0 else "unclear"

    def beyond(self, margin: float) -> str:
        """Against a margin: "within" (interval entirely above −margin), "worse" (entirely below −margin),
        "unclear" otherwise (or too few seeds)."""
        if not self.enough or math.isnan(self.diff):
            return "unclear"
        return "within" if self.low > -margin else "worse" if self.high < -margin else "unclear"


@dataclass(frozen=True)
class Level:
    """One row's score: mean, interval in [0, 1], n seeds (``enough`` False: fewer than MIN_SEEDS seeds, or no
    spread known; nothing is then called against a threshold)."""

    mean: float
    low: float
    high: float
    n: int
    enough: bool = True
    se: float = math.nan
    values: tuple[float, ...] = ()

    def p(self, threshold: float) -> float:
        """Two-sided p of "the row's mean is ``threshold``" (one-sample t; NaN when nothing is called)."""
        return _t_p(self.mean, self.se, self.n - 1, threshold) if self.enough else math.nan

    def agree(self, side: str, threshold: float) -> int:
        """How many seeds score on ``side`` ("above" or "below") of ``threshold``."""
        return sum((x > threshold) if side == "above" else (x < threshold) for x in self.values)


def t_half_width(values: np.ndarray) -> float:
    """t(0.975, n−1) · sd / √n (0 when every value is the same); NaN for n < 2."""
    n = len(values)
    if n < 2:
        return math.nan
    sem = float(np.std(values, ddof=1)) / math.sqrt(n)
    return float(stats.t.ppf(0.5 + LEVEL / 2, n - 1)) * sem


def lower_bound(values) -> float:
    """The one-sided ``LEVEL`` lower confidence bound of the mean of ``values`` (Student t, n − 1 degrees of
    freedom): what the mean clearly exceeds. With fewer than ``MIN_SEEDS`` values no spread is trusted and the mean
    itself is returned (a caller says so); NaN for none."""
    v = np.asarray(list(values), dtype=float)
    if len(v) == 0:
        return math.nan
    mean = float(v.mean())
    if len(v) < MIN_SEEDS:
        return mean
    sem = float(np.std(v, ddof=1)) / math.sqrt(len(v))
    return mean - float(stats.t.ppf(LEVEL, len(v) - 1)) * sem


def paired(a: dict[int, float], b: dict[int, float]) -> Difference:
    """``a − b`` over the seeds both have (``seed → score``)."""
    seeds = sorted(set(a) & set(b))
    d = np.array([a[s] - b[s] for s in seeds], dtype=float)
    if len(d) == 0:
        return Difference(math.nan, math.nan, math.nan, 0, (), False)
    mean = float(d.mean())
    half = t_half_width(d)
    se = float(np.std(d, ddof=1)) / math.sqrt(len(d)) if len(d) >= 2 else math.nan
    return Difference(mean, mean - half, mean + half, len(d), tuple(float(x) for x in d), len(d) >= MIN_SEEDS,
                      se, len(d) - 1)


def level(values) -> Level:
    """Mean over seeds with its t interval intersected with [0, 1]."""
    v = np.asarray(list(values), dtype=float)
    if len(v) == 0:
        return Level(math.nan, math.nan, math.nan, 0, False)
    mean = float(v.mean())
    half = t_half_width(v)
    values = tuple(float(x) for x in v)
    if math.isnan(half):
        return Level(mean, math.nan, math.nan, len(v), False, values=values)
    se = float(np.std(v, ddof=1)) / math.sqrt(len(v))
    return Level(mean, max(0.0, mean - half), min(1.0, mean + half), len(v), len(v) >= MIN_SEEDS, se, values)


@dataclass(frozen=True)
class TableNoise:
    """The run-to-run noise of one reported cell of a seed table: the spread (sd) of ``k`` reported cells that
    measure the same thing (rows whose change cannot act, and DeltaNet itself)."""

    sd: float
    k: int
    rows: tuple[str, ...]
    column: str

    def half(self, cells: int = 2) -> float:
        """Half-width of the 95% interval of a difference of two cells (``cells`` = 2) or of one cell (1)."""
        if self.k < 2 or math.isnan(self.sd):
            return math.nan
        return float(stats.t.ppf(0.5 + LEVEL / 2, self.k - 1)) * math.sqrt(cells) * self.sd


def table_noise(values: dict[str, float], column: str) -> TableNoise:
    """``values``: row → its reported score on ``column``, for rows that are the same model there."""
    v = np.array(list(values.values()), dtype=float)
    sd = float(np.std(v, ddof=1)) if len(v) >= 2 else math.nan
    return TableNoise(sd, len(v), tuple(values), column)


def point_difference(a: float, b: float, noise: TableNoise | None) -> Difference:
    """``a − b`` of two reported cells, with the interval the table's own noise gives (none known: unclear)."""
    diff = float(a - b)
    half = noise.half(2) if noise is not None else math.nan
    if math.isnan(half):
        return Difference(diff, math.nan, math.nan, 0, (diff,), False)
    return Difference(diff, diff - half, diff + half, noise.k, (diff,), True, math.sqrt(2) * noise.sd, noise.k - 1)


def signal_ratio(per_row: dict[str, list[float]]) -> tuple[float, int]:
    """Variance of the rows' means over the mean variance between seeds of one row (rows with ≥ 2 seeds), and the
    number of rows used. NaN when fewer than two rows or no spread between seeds."""
    rows = {r: np.asarray(v, dtype=float) for r, v in per_row.items() if len(v) >= 2}
    if len(rows) < 2:
        return math.nan, len(rows)
    between_rows = float(np.var([v.mean() for v in rows.values()], ddof=1))
    within = float(np.mean([np.var(v, ddof=1) for v in rows.values()]))
    return (between_rows / within if within > 0 else math.nan), len(rows)


def holm(pvalues) -> list[float]:
    """Holm's step-down adjusted p-values, in the order given: sort the m tests' p ascending, multiply the i-th
    smallest (i from 0) by m − i, and keep the running maximum (so adjusted p never decrease), capped at 1. A NaN
    (no test) is left out of m and returned as NaN. Controls the family-wise error at any level."""
    p = [float(x) for x in pvalues]
    tested = sorted((i for i, x in enumerate(p) if not math.isnan(x)), key=lambda i: p[i])
    out, running = [math.nan] * len(p), 0.0
    for rank, i in enumerate(tested):
        running = max(running, min(1.0, (len(tested) - rank) * p[i]))
        out[i] = running
    return out


def spearman(x, y, axis=-1):
    """Spearman's ρ along ``axis`` (average ranks for ties), vectorised for ``scipy.stats.bootstrap``."""
    rx, ry = stats.rankdata(x, axis=axis), stats.rankdata(y, axis=axis)
    rx = rx - rx.mean(axis=axis, keepdims=True)
    ry = ry - ry.mean(axis=axis, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = (rx * ry).sum(axis=axis) / np.sqrt((rx ** 2).sum(axis=axis) * (ry ** 2).sum(axis=axis))
    return np.nan_to_num(rho, nan=0.0)  # a resample that ties every row on one side carries no ranking: 0


RESAMPLES = 2000  # bootstrap resamples of the rank correlation (a fixed generator: the interval is reproducible)


def spearman_interval(x, y, seed: int = 0) -> tuple[float, float, float]:
    """(ρ, low, high): Spearman's rank correlation of paired scores ``x``, ``y`` (one pair per row) and its 95%
    percentile bootstrap interval, rows resampled in pairs (a resample that ties every row on one side counts as
    ρ = 0). NaN where either side is constant or there are fewer than 3 rows."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan, math.nan, math.nan
    rho = float(spearman(x, y))
    res = _rows_bootstrap((x, y), spearman, seed)
    return rho, float(res.confidence_interval.low), float(res.confidence_interval.high)


def _rows_bootstrap(samples: tuple, statistic, seed: int):
    """``scipy.stats.bootstrap`` of ``statistic`` over ``samples`` (one value per row each), the rows resampled
    together: ``RESAMPLES`` percentile resamples at ``LEVEL`` from a fixed generator (reproducible); scipy's warnings
    on degenerate resamples silenced (``spearman`` scores those 0)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return stats.bootstrap(samples, statistic, paired=True, vectorized=True, n_resamples=RESAMPLES,
                               confidence_level=LEVEL, method="percentile", rng=np.random.default_rng(seed))


def share_interval(k: int, n: int) -> tuple[float, float]:
    """The exact (Clopper-Pearson) 95% interval of a share of ``k`` in ``n`` (``scipy.stats.binomtest``)."""
    ci = stats.binomtest(int(k), int(n)).proportion_ci(confidence_level=LEVEL, method="exact")
    return float(ci.low), float(ci.high)


def spearman_difference(a, b, y, seed: int = 0) -> tuple[float, float, float, float]:
    """(Δ, low, high, p): Δ = ρ(a, y) − ρ(b, y) for two sets of scores ``a`` and ``b`` of the same rows ranked
    against the same reference ``y`` (two proxies compared on one set of rows), its 95% percentile bootstrap
    interval with the rows resampled together, and the two-sided bootstrap p of Δ = 0 (twice the smaller share of
    resampled Δ on either side of 0, at most 1), for ``holm``. NaN where a side is constant or there are fewer
    than 3 rows."""
    a, b, y = (np.asarray(v, dtype=float) for v in (a, b, y))
    if len(y) < 3 or min(np.ptp(a), np.ptp(b), np.ptp(y)) == 0:
        return math.nan, math.nan, math.nan, math.nan
    diff = float(spearman(a, y) - spearman(b, y))
    res = _rows_bootstrap((a, b, y), lambda a, b, y, axis=-1: spearman(a, y, axis) - spearman(b, y, axis), seed)
    d = res.bootstrap_distribution
    p = min(1.0, 2 * min(float(np.mean(d <= 0)), float(np.mean(d >= 0))))
    return diff, float(res.confidence_interval.low), float(res.confidence_interval.high), p

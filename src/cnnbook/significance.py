"""Is a difference real? Intervals, paired tests and the book's verdict wording.

* :func:`accuracy_interval` — the Wilson interval of one model's accuracy;
* :func:`mcnemar` — the exact paired test of two models on the same images;
* :func:`verdict` (:data:`VERDICTS`) and :func:`change_beyond_noise` — the
  words the chapters use for a checked claim and for a change against the
  run-to-run noise.

Part of :mod:`cnnbook.evaluation`, which imports it back (``evaluation.mcnemar``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .metrics import _same_length

__all__ = [
    "McNemar",
    "VERDICTS",
    "accuracy_interval",
    "change_beyond_noise",
    "mcnemar",
    "verdict",
]


def accuracy_interval(correct: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for an accuracy of ``correct`` out of ``n`` test examples.

    The test set is a sample: had it held other digits, the accuracy would differ a
    little.  The interval says how much (at the given confidence level).

    Parameters
    ----------
    correct : int
        Correctly classified examples, ``0 <= correct <= n``.
    n : int
        Test examples, at least 1.
    confidence : float
        Confidence level in (0, 1).

    Returns
    -------
    (low, high) : tuple of float
        The interval's bounds, within [0, 1].
    """
    from statistics import NormalDist

    if n < 1 or not 0 <= correct <= n:
        raise ValueError(f"Need 0 <= correct <= n and n >= 1; got correct={correct}, n={n}.")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}.")
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    low = 0.0 if correct == 0 else max(0.0, centre - half)
    high = 1.0 if correct == n else min(1.0, centre + half)
    return float(low), float(high)


@dataclass(frozen=True)
class McNemar:
    """An exact McNemar test of two classifiers on the same examples.

    ``only_a``: examples only classifier A gets right; ``only_b``: only B.
    Examples both get right, or both wrong, say nothing about which is better.
    ``p_value``: two-sided exact p-value of "A and B are equally accurate".
    """

    only_a: int
    only_b: int
    p_value: float

    def significant(self, level: float = 0.05) -> bool:
        """True when ``p_value`` is below ``level``.

        Parameters
        ----------
        level : float
            The significance level (default 5 %).

        Returns
        -------
        bool
        """
        return self.p_value < level


def mcnemar(correct_a: Any, correct_b: Any) -> McNemar:
    """Exact McNemar test: do classifiers A and B differ in accuracy on these examples?

    Parameters
    ----------
    correct_a, correct_b : array-like of bool
        Per example, whether A (resp. B) classified it correctly; same examples, same order.

    Returns
    -------
    McNemar
        The two discordant counts and the two-sided exact p-value: under the
        hypothesis of equal accuracy each discordant example is a fair coin
        toss between A and B (binomial with p = 1/2).
    """
    from math import comb

    a = np.asarray(correct_a, dtype=bool).ravel()
    b = np.asarray(correct_b, dtype=bool).ravel()
    _same_length(a, b, "correct_a and correct_b")
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    n = only_a + only_b
    if n == 0:
        return McNemar(0, 0, 1.0)
    tail = sum(comb(n, i) for i in range(min(only_a, only_b) + 1)) / 2**n
    return McNemar(only_a, only_b, float(min(1.0, 2 * tail)))


#: The three verdicts a claim checked against measurements can get (:func:`verdict`).
VERDICTS = ("holds", "partly holds", "does not hold")


def verdict(holds: bool, partly: bool) -> str:
    """The verdict on a claim, from its stated rule.

    Parameters
    ----------
    holds : bool
        Whether the measurements meet the rule for "holds".
    partly : bool
        Whether they meet the weaker rule for "partly holds" (looked at only
        when ``holds`` is false).

    Returns
    -------
    str
        ``"holds"``, ``"partly holds"`` or ``"does not hold"`` (:data:`VERDICTS`).
    """
    return VERDICTS[0 if holds else 1 if partly else 2]


def change_beyond_noise(difference: float, noise: float) -> str:
    """What a difference between two settings means, given the run-to-run noise.

    A difference no larger than ``noise`` (e.g. the spread of accuracies over
    seeds) is no measurable difference.

    Parameters
    ----------
    difference : float
        The change of the measurement, e.g. in accuracy points (positive: higher).
    noise : float
        The largest change chance alone produces (at least 0), in the same unit.

    Returns
    -------
    str
        ``"raised accuracy"``, ``"lowered accuracy"`` or ``"no measurable difference"``.
    """
    if noise < 0:
        raise ValueError(f"noise is a spread, at least 0; got {noise}.")
    if difference > noise:
        return "raised accuracy"
    if difference < -noise:
        return "lowered accuracy"
    return "no measurable difference"

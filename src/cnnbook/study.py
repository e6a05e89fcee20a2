"""A controlled study of a CNN's design levers: one factor at a time, several seeds.

Chapter 10 measures the source article's advice (deeper, wider, more data, more epochs) and the
levers it does not name (batch normalisation, dropout, augmentation, the learning-rate schedule)
from one baseline, the Part I model.  This module holds the study's pieces:

* :class:`Variant` — one configuration: the baseline with a single factor changed;
* :func:`one_factor_variants` — the baseline and its one-factor changes;
* :func:`run_study` — every variant with every seed (:func:`run_variant` trains one);
* :func:`summarise` — mean and spread over seeds, per variant (:class:`Row`);
* :func:`measurable`, :func:`effect`, :func:`trend_verdict` — the rule that turns numbers into
  words: a difference counts only when it is larger than the seed spread;
* :func:`combine` — the best level of each lever, put together.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from . import data, evaluation, models, training

__all__ = [
    "BASE_FILTERS",
    "FACTORS",
    "LEVERS",
    "Run",
    "Row",
    "Variant",
    "combine",
    "curve",
    "describe",
    "effect",
    "measurable",
    "one_factor_variants",
    "run_study",
    "run_variant",
    "summarise",
    "trend_verdict",
]

#: Channels of stages 1 to 4 at width ×1 (the Part I model uses the first three).
BASE_FILTERS = (16, 32, 64, 128)

#: The factors with a numeric level, and the :class:`Variant` field that holds it.
FACTORS = {"depth": "depth", "width": "width", "data": "train_fraction", "epochs": "epochs"}

#: The on/off levers, and the :class:`Variant` field each one changes.
LEVERS = {"batch norm": "batch_norm", "dropout": "dropout", "augmentation": "augment", "schedule": "schedule"}


@dataclass(frozen=True)
class Variant:
    """One configuration of the study: the Part I model and recipe with some factors changed.

    Attributes
    ----------
    factor : str
        What this variant changes: ``"baseline"``, a key of :data:`FACTORS` or :data:`LEVERS`,
        or ``"combination"``.
    level : str
        How the change is shown in tables, e.g. ``"2 blocks"``.
    depth : int
        Convolution stages (1 to 4); stage ``k`` has ``BASE_FILTERS[k - 1] × width`` channels.
    width : float
        Channel multiplier (positive).
    batch_norm : bool
        Batch normalisation after each convolution.
    dropout : float
        Dropout rate before the logits, in [0, 1).
    augment : bool
        Random mirror images and shifts of up to 10 % during training
        (:func:`cnnbook.models.augmentation`: clothing, like photographs, may be mirrored,
        unlike digits).
    schedule : str
        Learning-rate schedule, as :class:`cnnbook.training.TrainConfig`'s.
    epochs : int
        Training epochs (no early stopping).
    train_fraction : float
        Share of the training split used, in (0, 1].
    """

    factor: str = "baseline"
    level: str = "baseline"
    depth: int = 3
    width: float = 1.0
    batch_norm: bool = True
    dropout: float = 0.3
    augment: bool = False
    schedule: str = "onecycle"
    epochs: int = 6
    train_fraction: float = 0.25

    def __post_init__(self) -> None:
        if not 1 <= self.depth <= len(BASE_FILTERS):
            raise ValueError(f"depth must be 1 to {len(BASE_FILTERS)} stages, got {self.depth}.")
        if not self.width > 0:
            raise ValueError(f"width must be positive, got {self.width}.")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}.")
        if self.epochs < 1:
            raise ValueError(f"epochs must be at least 1, got {self.epochs}.")
        if not 0.0 < self.train_fraction <= 1.0:
            raise ValueError(f"train_fraction must be in (0, 1], got {self.train_fraction}.")

    @property
    def filters(self) -> tuple[int, ...]:
        """Channels of each stage."""
        return tuple(max(1, round(c * self.width)) for c in BASE_FILTERS[: self.depth])

    def same_recipe(self, other: Variant) -> bool:
        """Whether ``other`` trains the same way (labels aside)."""
        return replace(self, factor="", level="") == replace(other, factor="", level="")


def one_factor_variants(
    base: Variant,
    *,
    depths: Sequence[int] = (1, 2, 3, 4),
    widths: Sequence[float] = (0.5, 1.0, 2.0),
    fractions: Sequence[float] = (1 / 16, 1 / 8, 1 / 4, 1 / 2, 1.0),
    epochs: Sequence[int] = (2, 4, 6, 12),
) -> list[Variant]:
    """The baseline, then every level of every factor and lever with the rest as in the baseline.

    Levels equal to the baseline's are not repeated: the baseline row stands for them.  The levers
    are switched to the other setting: batch normalisation off (or on), dropout off (or 0.3),
    augmentation on (or off), a constant learning rate (or one-cycle).

    Parameters
    ----------
    base : Variant
        The baseline.
    depths, widths, fractions, epochs : sequences
        Levels of the four numeric factors.

    Returns
    -------
    list of Variant
        The baseline first; each other variant differs from it in exactly one field.
    """
    base = replace(base, factor="baseline", level="baseline")
    variants = [base]
    for factor, levels in {"depth": depths, "width": widths, "data": fractions, "epochs": epochs}.items():
        name = FACTORS[factor]
        for value in levels:
            if value != getattr(base, name):
                changed = replace(base, **{name: value})
                variants.append(replace(changed, factor=factor, level=describe(changed, factor)))
    switched = {
        "batch norm": (not base.batch_norm, "off" if base.batch_norm else "on"),
        "dropout": (0.0 if base.dropout else 0.3, "off" if base.dropout else "0.3"),
        "augmentation": (not base.augment, "on" if not base.augment else "off"),
        "schedule": ("constant" if base.schedule != "constant" else "onecycle",
                     "constant rate" if base.schedule != "constant" else "one-cycle"),
    }
    for lever, (value, label) in switched.items():
        variants.append(replace(base, factor=lever, level=label, **{LEVERS[lever]: value}))
    return variants


def describe(variant: Variant, factor: str) -> str:
    """The level of one numeric factor of ``variant``, in words (``"3 blocks"``, ``"6 epochs"``).

    Parameters
    ----------
    variant : Variant
    factor : str
        A key of :data:`FACTORS`.

    Returns
    -------
    str
    """
    if factor == "depth":
        return f"{variant.depth} block" + ("s" if variant.depth > 1 else "")
    if factor == "width":
        return f"×{variant.width:g} channels"
    if factor == "data":
        return f"{variant.train_fraction:.3g} of the training split"
    if factor == "epochs":
        return f"{variant.epochs} epoch" + ("s" if variant.epochs > 1 else "")
    raise ValueError(f"factor must be one of {', '.join(FACTORS)}, got {factor!r}.")


@dataclass
class Run:
    """One training run: a variant with one seed.

    Attributes
    ----------
    variant : Variant
    seed : int
    parameters : int
        Trainable and non-trainable weights of the model.
    train_images : int
    seconds : float
        Wall-clock training time, validation passes included.
    epoch_seconds : float
        Median seconds per epoch.
    val_accuracy : float
        Validation accuracy after the last epoch (not the best epoch: picking the best of several
        epochs on the validation split would flatter every variant).
    history : dict
        Keras' per-epoch history.
    model : keras.Model or None
        The trained model, when asked to keep it.
    """

    variant: Variant
    seed: int
    parameters: int
    train_images: int
    seconds: float
    epoch_seconds: float
    val_accuracy: float
    history: dict[str, list[float]]
    model: Any = field(default=None, repr=False)


def _subset(splits: data.Splits, fraction: float) -> data.Splits:
    if fraction >= 1.0:
        return splits
    size = max(splits.num_classes, int(round(fraction * len(splits.y_train))))
    # One subset per fraction, the same for every seed: the seeds vary the training, not the data.
    keep = data.stratified_subset(splits.y_train, size, seed=0)
    return replace(splits, x_train=splits.x_train[keep], y_train=splits.y_train[keep])


def run_variant(
    variant: Variant,
    splits: data.Splits,
    seed: int,
    *,
    config: training.TrainConfig,
    dtype: str | None = None,
    bn_momentum: float = 0.9,
    keep_model: bool = False,
) -> Run:
    """Train ``variant`` once with ``seed`` and measure it on the validation split.

    Parameters
    ----------
    variant : Variant
    splits : cnnbook.data.Splits
        The full training split (``variant.train_fraction`` of it is used) and the validation split.
    seed : int
        Initial weights, dropout, augmentation and shuffle order.
    config : cnnbook.training.TrainConfig
        The recipe; its epochs, schedule, patience and seed are replaced by the variant's.
    dtype : str, optional
        Keras dtype policy of the model (see :func:`cnnbook.models.mnist_cnn`).
    bn_momentum : float
        Momentum of batch normalisation (0.9: short runs, see :func:`cnnbook.models.mnist_cnn`).
    keep_model : bool
        Keep the trained model in the result (by default it is dropped, to save memory).

    Returns
    -------
    Run
    """
    train = _subset(splits, variant.train_fraction)
    training.set_seed(seed)
    model = models.mnist_cnn(
        splits.input_shape,
        splits.num_classes,
        filters=variant.filters,
        dropout=variant.dropout,
        dtype=dtype,
        batch_norm=variant.batch_norm,
        bn_momentum=bn_momentum,
    )
    # The study switches augmentation itself: the recipe's own (config.augmentation) is off in every variant.
    recipe = replace(config, epochs=variant.epochs, schedule=variant.schedule, patience=variant.epochs, seed=seed,
                     augmentation="none")
    augment = models.augmentation(seed=seed, translation=0.1, interpolation="bilinear") if variant.augment else None
    result = training.fit_classifier(model, train, recipe, augment=augment, verbose=0)
    return Run(
        variant=variant,
        seed=seed,
        parameters=model.count_params(),
        train_images=len(train.y_train),
        seconds=result.seconds,
        epoch_seconds=float(np.median(result.epoch_seconds)),
        val_accuracy=result.history["val_accuracy"][-1],
        history=result.history,
        model=result.model if keep_model else None,
    )


def run_study(
    variants: Sequence[Variant],
    splits: data.Splits,
    seeds: Sequence[int],
    *,
    config: training.TrainConfig,
    dtype: str | None = None,
    bn_momentum: float = 0.9,
    keep_models: Callable[[Variant], bool] | bool = False,
    progress: Callable[[Run], None] | None = None,
) -> list[Run]:
    """Train every variant with every seed (seed by seed, so a cut-short study has whole seeds).

    Parameters
    ----------
    variants : sequence of Variant
    splits : cnnbook.data.Splits
    seeds : sequence of int
        At least one; a spread needs two or more.
    config, dtype, bn_momentum
        As in :func:`run_variant`.
    keep_models : bool or callable
        Which variants keep their trained models (a predicate on the variant, or all / none).
    progress : callable, optional
        Called with each finished :class:`Run`.

    Returns
    -------
    list of Run
    """
    if not seeds:
        raise ValueError("run_study needs at least one seed (three or more for a spread worth reading).")
    if not variants:
        raise ValueError("run_study needs at least one variant.")
    runs = []
    for seed in seeds:
        for variant in variants:
            keep = keep_models(variant) if callable(keep_models) else bool(keep_models)
            run = run_variant(variant, splits, seed, config=config, dtype=dtype, bn_momentum=bn_momentum,
                              keep_model=keep)
            runs.append(run)
            if progress is not None:
                progress(run)
    return runs


@dataclass(frozen=True)
class Row:
    """A variant's runs summarised over seeds.

    Attributes
    ----------
    variant : Variant
    parameters : int
    train_images : int
    seconds : float
        Mean training time of a run.
    epoch_seconds : float
        Mean of the runs' median seconds per epoch.
    accuracies : tuple of float
        Validation accuracy of each seed, in seed order.
    """

    variant: Variant
    parameters: int
    train_images: int
    seconds: float
    epoch_seconds: float
    accuracies: tuple[float, ...]

    @property
    def mean(self) -> float:
        """Mean validation accuracy over seeds."""
        return float(np.mean(self.accuracies))

    @property
    def spread(self) -> float:
        """Largest minus smallest validation accuracy over seeds (0 with one seed)."""
        return float(np.max(self.accuracies) - np.min(self.accuracies))


def summarise(runs: Sequence[Run]) -> list[Row]:
    """One :class:`Row` per variant, in the order the variants first appear.

    Parameters
    ----------
    runs : sequence of Run

    Returns
    -------
    list of Row
    """
    groups: dict[Variant, list[Run]] = {}
    for run in runs:
        groups.setdefault(run.variant, []).append(run)
    rows = []
    for variant, group in groups.items():
        group = sorted(group, key=lambda r: r.seed)
        rows.append(
            Row(
                variant=variant,
                parameters=group[0].parameters,
                train_images=group[0].train_images,
                seconds=float(np.mean([r.seconds for r in group])),
                epoch_seconds=float(np.mean([r.epoch_seconds for r in group])),
                accuracies=tuple(r.val_accuracy for r in group),
            )
        )
    return rows


def measurable(a: Row, b: Row) -> bool:
    """Whether two rows differ by more than chance between seeds.

    The rule of chapter 10: the difference of the means must exceed the seed spread (largest minus
    smallest accuracy over seeds) of *both* rows (:func:`cnnbook.evaluation.change_beyond_noise`
    with the larger spread as the noise).  With three seeds this is a rough, deliberately cautious
    rule, not a significance test.

    Parameters
    ----------
    a, b : Row

    Returns
    -------
    bool
    """
    return effect(a, b) != "no measurable difference"


def effect(row: Row, baseline: Row) -> str:
    """``"better"``, ``"worse"`` or ``"no measurable difference"`` against ``baseline``.

    Parameters
    ----------
    row, baseline : Row

    Returns
    -------
    str
    """
    if len(row.accuracies) < 2 or len(baseline.accuracies) < 2:
        raise ValueError("comparing rows needs two or more seeds per row: one seed has no spread to compare with.")
    change = evaluation.change_beyond_noise(row.mean - baseline.mean, max(row.spread, baseline.spread))
    return {"raised accuracy": "better", "lowered accuracy": "worse"}.get(change, change)


def curve(rows: Sequence[Row], factor: str) -> list[Row]:
    """The rows of one numeric factor, the baseline included, by increasing level.

    Parameters
    ----------
    rows : sequence of Row
        From :func:`summarise`; must contain the baseline.
    factor : str
        A key of :data:`FACTORS`.

    Returns
    -------
    list of Row
    """
    if factor not in FACTORS:
        raise ValueError(f"factor must be one of {', '.join(FACTORS)}, got {factor!r}.")
    name = FACTORS[factor]
    chosen = [r for r in rows if r.variant.factor in (factor, "baseline")]
    if not any(r.variant.factor == "baseline" for r in chosen):
        raise ValueError("curve needs the baseline row among the rows.")
    return sorted(chosen, key=lambda r: getattr(r.variant, name))


def trend_verdict(rows: Sequence[Row]) -> tuple[str, int]:
    """Does "more of this factor improves accuracy" hold along ``rows`` (by increasing level)?

    * ``"holds"``: the largest level is measurably better than the smallest, and no level is
      measurably better than the largest;
    * ``"partly holds"``: some larger level is measurably better than the smallest, but not the
      largest (accuracy rises, then falls measurably);
    * ``"does not hold"``: no larger level is measurably better than the smallest.

    The words are :data:`cnnbook.evaluation.VERDICTS`, as in chapter 2.

    Parameters
    ----------
    rows : sequence of Row
        At least two, ordered by increasing level (see :func:`curve`).

    Returns
    -------
    verdict : str
        One of :data:`cnnbook.evaluation.VERDICTS`.
    saturation : int
        Index of the first row that no other row beats measurably: where the gains stop.
    """
    if len(rows) < 2:
        raise ValueError("trend_verdict needs at least two levels.")
    first, last = rows[0], rows[-1]
    saturation = next(i for i, r in enumerate(rows) if not any(measurable(o, r) and o.mean > r.mean for o in rows))
    rises = any(measurable(r, first) and r.mean > first.mean for r in rows[1:])
    largest_best = (measurable(last, first) and last.mean > first.mean
                    and not any(measurable(r, last) and r.mean > last.mean for r in rows))
    return evaluation.verdict(holds=largest_best, partly=rises), saturation


def combine(rows: Sequence[Row], factors: Sequence[str] = ("depth", "width", *LEVERS)) -> Variant:
    """The baseline with each of ``factors`` at its best level, if that level is measurably better.

    The training budget (data and epochs) is left as in the baseline, so that the combination is
    compared with the baseline at equal budget.

    Parameters
    ----------
    rows : sequence of Row
        From :func:`summarise`, with the baseline.
    factors : sequence of str
        Which factors and levers may change.

    Returns
    -------
    Variant
        ``factor="combination"``; its ``level`` names the changes (``"as the baseline"`` if none).
    """
    baseline = next((r for r in rows if r.variant.factor == "baseline"), None)
    if baseline is None:
        raise ValueError("combine needs the baseline row among the rows.")
    changes: dict[str, Any] = {}
    labels = []
    for factor in factors:
        name = FACTORS.get(factor) or LEVERS.get(factor)
        if name is None:
            raise ValueError(f"unknown factor {factor!r}.")
        candidates = [r for r in rows if r.variant.factor == factor]
        if not candidates:
            continue
        best = max(candidates, key=lambda r: r.mean)
        if best.mean > baseline.mean and measurable(best, baseline):
            changes[name] = getattr(best.variant, name)
            labels.append(f"{factor}: {best.variant.level}")
    level = "; ".join(labels) if labels else "as the baseline"
    return replace(baseline.variant, factor="combination", level=level, **changes)

"""Figures for the book, drawn with matplotlib from arrays, histories and metrics.

Every function takes plain data (NumPy arrays, a history dict, a calibration
result), draws one :class:`matplotlib.figure.Figure` and returns it.  Nothing
here trains a model, seeds a random generator or changes ``rcParams``.

Figures are made with :mod:`matplotlib.pyplot`, so in a notebook they are shown
automatically at the end of the cell; end the call with ``;`` or assign the
returned figure (``fig = plots.confusion_matrix(...)``) to avoid showing it twice.
In a script call ``fig.savefig(...)`` or ``matplotlib.pyplot.show()``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = [
    "accuracy_curves",
    "accuracy_vs_time",
    "architecture",
    "class_balance",
    "confusion_matrix",
    "corruption_panels",
    "deletion_curves",
    "digit_predictions",
    "explanation_grid",
    "factor_curves",
    "feature_maps",
    "image_grid",
    "kernels",
    "learning_curves",
    "learning_rate",
    "mistakes_gallery",
    "pixel_histogram",
    "preprocessing_steps",
    "reliability_diagram",
    "saliency_overlay",
]


def _plt():
    import matplotlib.pyplot as plt

    return plt


def _as_images(images: Any) -> np.ndarray:
    """``N×H×W``, ``N×H×W×1`` or ``N×H×W×3`` → an array imshow understands (``N×H×W[×3]``)."""
    arr = np.asarray(images)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim == 4 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (3, 4) or (arr.ndim == 4 and arr.shape[-1] not in (3, 4)):
        raise ValueError(
            f"images must have shape N×H×W, N×H×W×1 or N×H×W×3; got {np.asarray(images).shape}."
        )
    if arr.dtype.kind == "f" and arr.ndim == 4:
        arr = np.clip(arr, 0.0, 1.0)
    return arr


def _name(index: int, class_names: Sequence[str] | None) -> str:
    index = int(index)
    if class_names is not None and 0 <= index < len(class_names):
        return str(class_names[index])
    return str(index)


def _grid_shape(n: int, ncols: int) -> tuple[int, int]:
    if ncols < 1:
        raise ValueError(f"ncols must be at least 1, got {ncols}.")
    ncols = min(ncols, max(n, 1))
    nrows = max(1, -(-n // ncols))
    return nrows, ncols


def image_grid(
    images: np.ndarray,
    labels: Sequence[int] | np.ndarray | None = None,
    class_names: Sequence[str] | None = None,
    predictions: Sequence[int] | np.ndarray | None = None,
    ncols: int = 10,
    title: str | None = None,
    *,
    confidences: Sequence[float] | np.ndarray | None = None,
    cmap: str = "gray_r",
) -> Figure:
    """A grid of images, each optionally titled with its label and the model's prediction.

    Parameters
    ----------
    images : numpy.ndarray
        ``N×H×W``, ``N×H×W×1`` (grayscale) or ``N×H×W×3`` (RGB), uint8 or float in [0, 1].
    labels, predictions : sequence of int, optional
        Class indices, one per image.  With both, a correct prediction is titled in
        green and a wrong one in red (``"true → predicted"``).
    class_names : sequence of str, optional
        Names for the class indices (default: the index itself).
    ncols : int
        Images per row.
    title : str, optional
        Title of the whole figure.
    confidences : sequence of float, optional
        The model's probability for its prediction, shown beside it.
    cmap : str
        Colour map for grayscale images (default ``"gray_r"``: dark ink on white, as written).

    Returns
    -------
    matplotlib.figure.Figure
    """
    arr = _as_images(images)
    n = len(arr)
    if n == 0:
        raise ValueError("image_grid needs at least one image.")
    for name, seq in (("labels", labels), ("predictions", predictions), ("confidences", confidences)):
        if seq is not None and len(seq) != n:
            raise ValueError(f"{name} has {len(seq)} entries but there are {n} images.")
    titles: list[tuple[str, str]] = []
    for i in range(n):
        parts: list[str] = []
        color = "black"
        if labels is not None and predictions is not None:
            true, pred = int(labels[i]), int(predictions[i])
            parts.append(_name(true, class_names) if true == pred
                         else f"{_name(true, class_names)} → {_name(pred, class_names)}")
            color = "tab:green" if true == pred else "tab:red"
        elif labels is not None:
            parts.append(_name(labels[i], class_names))
        elif predictions is not None:
            parts.append(f"pred {_name(predictions[i], class_names)}")
        if confidences is not None:
            parts.append(f"{float(confidences[i]):.0%}")
        titles.append((" ".join(parts), color))
    return _draw_grid(arr, titles, ncols, title, cell_size=(1.2, 1.45), cmap=cmap)


def _draw_grid(
    arr: np.ndarray,
    titles: Sequence[tuple[str, str]],
    ncols: int,
    title: str | None,
    *,
    cell_size: tuple[float, float],
    cmap: str = "gray_r",
) -> Figure:
    """Draw images (``_as_images`` output) in a grid, each with a (text, colour) title; empty text: none."""
    plt = _plt()
    n = len(arr)
    nrows, ncols = _grid_shape(n, ncols)
    width, height = cell_size
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows + (0.4 if title else 0)),
                             squeeze=False)
    vmax = 255 if arr.dtype == np.uint8 else 1.0
    for i, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if i >= n:
            continue
        if arr.ndim == 3:  # grayscale
            ax.imshow(arr[i], cmap=cmap, vmin=0, vmax=vmax, interpolation="nearest")
        else:
            ax.imshow(arr[i], interpolation="nearest")
        text, color = titles[i]
        if text:
            ax.set_title(text, fontsize=8, color=color)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def mistakes_gallery(
    images: np.ndarray,
    y_true: Sequence[int] | np.ndarray,
    y_pred: Sequence[int] | np.ndarray,
    confidences: Sequence[float] | np.ndarray,
    class_names: Sequence[str] | None = None,
    ncols: int = 8,
    title: str | None = "Most confident mistakes",
) -> Figure:
    """The model's mistakes, each titled ``true: …`` / ``pred: … (confidence)``.

    Typically ``images = x_test[idx]`` with ``idx = evaluation.most_confident_mistakes(probs, y_test)``,
    ``y_pred = probs[idx].argmax(1)`` and ``confidences = probs[idx].max(1)``.

    Parameters
    ----------
    images : numpy.ndarray
        ``N×H×W``, ``N×H×W×1`` or ``N×H×W×3`` images, at least one.
    y_true, y_pred : sequence of int
        True and predicted class of each image.
    confidences : sequence of float
        The probability the model gave its prediction.
    class_names : sequence of str, optional
        Names for the class indices.
    ncols : int
        Images per row.
    title : str, optional
        Title of the whole figure.

    Returns
    -------
    matplotlib.figure.Figure
    """
    arr = _as_images(images)
    n = len(arr)
    if n == 0:
        raise ValueError("mistakes_gallery needs at least one image (the model made no mistakes?).")
    if not (len(y_true) == len(y_pred) == len(confidences) == n):
        raise ValueError(
            f"images, y_true, y_pred and confidences must have the same length; got "
            f"{n}, {len(y_true)}, {len(y_pred)}, {len(confidences)}."
        )
    titles = [
        (
            f"true: {_name(y_true[i], class_names)}\npred: {_name(y_pred[i], class_names)} "
            f"({float(confidences[i]):.0%})",
            "tab:red" if int(y_true[i]) != int(y_pred[i]) else "black",
        )
        for i in range(n)
    ]
    return _draw_grid(arr, titles, ncols, title, cell_size=(1.45, 1.75))


def class_balance(
    labels_by_split: Mapping[str, np.ndarray],
    class_names: Sequence[str],
    *,
    normalize: bool = True,
) -> Figure:
    """Grouped bars: how often each class occurs in each split.

    With ``normalize=True`` (default) the bars are each split's share of the class
    (in %), so splits of very different sizes compare directly; the legend gives
    each split's size.  With ``normalize=False`` the bars are counts.

    Parameters
    ----------
    labels_by_split : mapping of str to numpy.ndarray
        Each split's name and labels, e.g. ``{"train": y_train, "test": y_test}``.
    class_names : sequence of str
        One name per class; labels must lie in ``0 … len(class_names) - 1``.
    normalize : bool
        Shares in % (``True``) or counts.

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _plt()
    if not labels_by_split:
        raise ValueError("labels_by_split is empty; pass e.g. {'train': y_train, 'test': y_test}.")
    k = len(class_names)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.7 * k + 2), 3.5))
    width = 0.8 / len(labels_by_split)
    x = np.arange(k)
    for j, (split, labels) in enumerate(labels_by_split.items()):
        labels = np.asarray(labels).astype(int).ravel()
        if labels.size and (labels.min() < 0 or labels.max() >= k):
            raise ValueError(f"split {split!r} has labels outside 0..{k - 1}.")
        counts = np.bincount(labels, minlength=k)
        values = 100.0 * counts / max(labels.size, 1) if normalize else counts
        ax.bar(x + (j - (len(labels_by_split) - 1) / 2) * width, values, width,
               label=f"{split} (n={labels.size:,})")
    if normalize:
        ax.axhline(100.0 / k, color="gray", lw=0.8, ls="--", label="perfectly balanced")
    ax.set_xticks(x)
    ax.set_xticklabels([str(c) for c in class_names], rotation=30 if max(len(str(c)) for c in class_names) > 3 else 0,
                       ha="right" if max(len(str(c)) for c in class_names) > 3 else "center")
    ax.set_ylabel("share of the split (%)" if normalize else "images")
    ax.set_xlabel("class")
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    fig.tight_layout()
    return fig


def _history_dict(history: Any) -> dict[str, list[float]]:
    if hasattr(history, "history") and isinstance(history.history, Mapping):
        history = history.history
    if not isinstance(history, Mapping):
        raise ValueError("history must be a dict of lists or a keras History (model.fit's return value).")
    return {str(k): [float(v) for v in np.ravel(vals)] for k, vals in history.items()}


def learning_curves(
    history: Any,
    metrics: Sequence[str] = ("loss", "accuracy"),
    *,
    best_epoch: int | None = None,
    title: str | None = None,
) -> Figure:
    """One panel per metric: training and validation values against the epoch (1-based).

    ``history`` is ``model.fit(...).history`` (or the History itself, or
    ``TrainResult.history``).  ``val_<metric>`` is drawn when present.

    Parameters
    ----------
    history : dict of str to list of float, or keras.callbacks.History
        The per-epoch values.
    metrics : sequence of str
        One panel per name (each must be in ``history``, plain or as ``val_<name>``).
    best_epoch : int, optional
        Marks (1-based) the epoch whose weights were kept.
    title : str, optional
        Title of the whole figure.

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _plt()
    hist = _history_dict(history)
    missing = [m for m in metrics if m not in hist and f"val_{m}" not in hist]
    if missing:
        raise ValueError(f"history has no {missing}; it has {sorted(hist)}.")
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.5 * len(metrics), 3.3), squeeze=False)
    for ax, metric in zip(axes.flat, metrics):
        for key, label, style in ((metric, "training", "-o"), (f"val_{metric}", "validation", "-s")):
            if key in hist:
                values = hist[key]
                ax.plot(np.arange(1, len(values) + 1), values, style, ms=3, label=label)
        if best_epoch is not None:
            ax.axvline(best_epoch, color="gray", ls="--", lw=0.8, label=f"best epoch ({best_epoch})")
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        ax.xaxis.get_major_locator().set_params(integer=True)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def confusion_matrix(
    cm: np.ndarray,
    class_names: Sequence[str],
    normalize: bool = False,
    *,
    title: str | None = None,
) -> Figure:
    """A confusion matrix as a heat map, rows = true class, columns = predicted class.

    With ``normalize=True`` each row is divided by its total, so a cell reads
    "the share of images of this true class predicted as that class".

    Parameters
    ----------
    cm : numpy.ndarray
        ``K×K`` counts, e.g. from :func:`cnnbook.evaluation.confusion_matrix`.
    class_names : sequence of str
        ``K`` names.
    normalize : bool
        Show row shares instead of counts.
    title : str, optional
        Title of the axes.

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _plt()
    cm = np.asarray(cm)
    k = len(class_names)
    if cm.shape != (k, k):
        raise ValueError(f"cm must be {k}×{k} for {k} class names; got shape {cm.shape}.")
    values = cm.astype(float)
    if normalize:
        totals = values.sum(axis=1, keepdims=True)
        values = np.divide(values, totals, out=np.zeros_like(values), where=totals > 0)
    size = max(4.5, 0.55 * k + 1.5)
    fig, ax = plt.subplots(figsize=(size + 0.8, size))
    im = ax.imshow(values, cmap="Blues", vmin=0, vmax=values.max() if values.max() > 0 else 1)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="share of the true class" if normalize else "images")
    threshold = values.max() / 2 if values.max() > 0 else 1
    for i in range(k):
        for j in range(k):
            v = values[i, j]
            if (normalize and v < 0.005) or (not normalize and cm[i, j] == 0):
                continue  # empty cells stay blank, so the mistakes stand out
            text = f"{v:.2f}" if normalize else f"{int(cm[i, j])}"
            ax.text(j, i, text, ha="center", va="center", fontsize=7 if k > 10 else 8,
                    color="white" if v > threshold else "black")
    ticks = np.arange(k)
    long_names = max(len(str(c)) for c in class_names) > 3
    ax.set_xticks(ticks)
    ax.set_xticklabels([str(c) for c in class_names], rotation=45 if long_names else 0,
                       ha="right" if long_names else "center")
    ax.set_yticks(ticks)
    ax.set_yticklabels([str(c) for c in class_names])
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def reliability_diagram(calibration: Any, *, title: str | None = None) -> Figure:
    """Reliability diagram: accuracy against confidence per bin, with the diagonal of perfect calibration.

    The upper panel shows each bin's accuracy as a bar and the gap to the bin's mean
    confidence in red; the lower panel how many predictions fall in each bin (log scale).

    Parameters
    ----------
    calibration : cnnbook.evaluation.Calibration
        What :func:`cnnbook.evaluation.calibration` returns (any object with
        ``bin_edges``, ``accuracy``, ``confidence``, ``counts`` and ``ece``).
    title : str, optional
        Title of the upper panel.

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _plt()
    edges = np.asarray(calibration.bin_edges, dtype=float)
    acc = np.asarray(calibration.accuracy, dtype=float)
    conf = np.asarray(calibration.confidence, dtype=float)
    counts = np.asarray(calibration.counts)
    if not (len(edges) - 1 == len(acc) == len(conf) == len(counts)):
        raise ValueError("calibration has inconsistent bins (bin_edges must have one entry more than the rest).")
    centres = (edges[:-1] + edges[1:]) / 2
    widths = np.diff(edges)
    used = counts > 0
    fig, (ax, ax_count) = plt.subplots(2, 1, figsize=(4.8, 5.6), sharex=True,
                                       gridspec_kw={"height_ratios": [3, 1]})
    ax.plot([0, 1], [0, 1], ls="--", color="gray", lw=1, label="perfect calibration")
    ax.bar(centres[used], acc[used], widths[used], edgecolor="black", color="tab:blue", alpha=0.8,
           label="accuracy in the bin")
    gap_bottom = np.minimum(acc, conf)[used]
    ax.bar(centres[used], np.abs(conf - acc)[used], widths[used], bottom=gap_bottom, color="tab:red",
           alpha=0.35, edgecolor="tab:red", hatch="//", label="gap to mean confidence")
    ax.set_xlim(edges[0], edges[-1])
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy")
    ax.legend(fontsize=8, loc="upper left")
    ax.text(0.97, 0.05, f"ECE = {float(calibration.ece):.2%}", transform=ax.transAxes, ha="right",
            fontsize=10, bbox={"facecolor": "white", "edgecolor": "gray"})
    ax_count.bar(centres, counts, widths, color="gray", edgecolor="black")
    if counts.max() > 0:
        ax_count.set_yscale("log")
    ax_count.set_xlabel("confidence (top-1 probability)")
    ax_count.set_ylabel("predictions")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def preprocessing_steps(steps: Mapping[str, np.ndarray], *, title: str | None = None) -> Figure:
    """Each intermediate image of a preprocessing pipeline, titled with its name and size.

    2-D images are drawn in gray (1 = white), each panel keeping its own pixel size visible.

    Parameters
    ----------
    steps : mapping of str to numpy.ndarray
        Each step's name and image, in order (e.g. :func:`cnnbook.images.prepare_digit_steps`);
        at least one.
    title : str, optional
        Title of the whole figure.

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _plt()
    if not steps:
        raise ValueError("steps is empty.")
    fig, axes = plt.subplots(1, len(steps), figsize=(2.3 * len(steps), 2.8 + (0.3 if title else 0)),
                             squeeze=False)
    for ax, (name, image) in zip(axes.flat, steps.items()):
        a = np.asarray(image)
        if a.dtype == bool:
            a = a.astype(np.float32)
        if a.ndim == 2:
            ax.imshow(a, cmap="gray", vmin=0, vmax=max(1.0, float(a.max())) if a.dtype != np.uint8 else 255,
                      interpolation="nearest")
        else:
            ax.imshow(a, interpolation="nearest")
        ax.set_title(f"{name}\n{a.shape[1]}×{a.shape[0]}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def digit_predictions(
    originals: Sequence[np.ndarray],
    inputs: Sequence[np.ndarray | None],
    captions: Sequence[str],
    predictions: Sequence[str],
    ncols: int = 5,
) -> Figure:
    """Own images and what the model made of them: each original above its 28×28 input.

    Parameters
    ----------
    originals : sequence of numpy.ndarray
        Display images (RGB or gray arrays, any size), at least one.
    inputs : sequence of numpy.ndarray or None
        The 28×28 model inputs (``None`` where no digit was found).
    captions : sequence of str
        Titles of the originals (e.g. file names).
    predictions : sequence of str
        Titles of the inputs (e.g. ``"3 (97%)"``).
    ncols : int
        Images per row.

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _plt()
    n = len(originals)
    if n == 0:
        raise ValueError("digit_predictions needs at least one image.")
    if not (len(inputs) == len(captions) == len(predictions) == n):
        raise ValueError("originals, inputs, captions and predictions must have the same length.")
    groups, ncols = _grid_shape(n, ncols)
    fig, axes = plt.subplots(2 * groups, ncols, figsize=(2.0 * ncols, 4.0 * groups), squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for i in range(n):
        row, col = 2 * (i // ncols), i % ncols
        top, bottom = axes[row, col], axes[row + 1, col]
        original = np.asarray(originals[i])
        top.imshow(original, cmap="gray" if original.ndim == 2 else None)
        top.set_title(captions[i], fontsize=8)
        if inputs[i] is not None:
            bottom.imshow(np.asarray(inputs[i]), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        else:
            bottom.text(0.5, 0.5, "no digit", ha="center", va="center", transform=bottom.transAxes)
        bottom.set_title(predictions[i], fontsize=9)
    fig.tight_layout()
    return fig


def feature_maps(
    maps: np.ndarray,
    ncols: int = 8,
    title: str | None = None,
    *,
    cmap: str = "viridis",
) -> Figure:
    """The channels of one layer's output for one image, one small panel per channel.

    Each panel is scaled on its own, titled with the channel's index.

    Parameters
    ----------
    maps : numpy.ndarray
        ``H×W×C`` (e.g. ``activation_model(x[None])[0]``); ``1×H×W×C`` and ``H×W``
        are accepted too.
    ncols : int
        Panels per row.
    title : str, optional
        Title of the whole figure.
    cmap : str
        Colour map of the panels.

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _plt()
    maps = np.asarray(maps)
    if maps.ndim == 4 and maps.shape[0] == 1:
        maps = maps[0]
    if maps.ndim == 2:
        maps = maps[..., None]
    if maps.ndim != 3:
        raise ValueError(f"maps must have shape H×W×C (one image's feature maps); got {maps.shape}.")
    c = maps.shape[-1]
    nrows, ncols = _grid_shape(c, ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.3 * ncols, 1.35 * nrows + (0.4 if title else 0)),
                             squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if i >= c:
            continue
        ax.imshow(maps[..., i], cmap=cmap, interpolation="nearest")
        ax.set_title(str(i), fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


# --- Data, architecture and schedule figures (chapters 3–5) ---------------------


def pixel_histogram(images: np.ndarray, *, bins: int = 64, title: str | None = None) -> Figure:
    """Histogram of all pixel values (log-scaled counts, so the rare mid-greys stay visible).

    Parameters
    ----------
    images : numpy.ndarray
        Any shape; every value counts.
    bins : int
        Number of histogram bins.
    title : str, optional
        Title of the axes.

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _plt()
    values = np.asarray(images).reshape(-1)
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.hist(values, bins=bins, color="tab:blue")
    ax.set_yscale("log")
    ax.set_xlabel("pixel value")
    ax.set_ylabel("number of pixels (log scale)")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def architecture(model: Any, *, title: str | None = None) -> Figure:
    """A Keras model drawn as a column of boxes, one per layer, with its output shape and parameters.

    Parameters
    ----------
    model : keras.Model
        A built model (its ``layers`` are drawn in order).
    title : str, optional
        Default: the model's name and parameter count.

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _plt()
    rows = []
    for layer in model.layers:
        shape = getattr(layer, "output", None)
        shape = tuple(shape.shape[1:]) if shape is not None else ()
        rows.append((layer.name, type(layer).__name__, "×".join(str(d) for d in shape), layer.count_params()))
    height = 0.42 * len(rows) + 0.6
    fig, ax = plt.subplots(figsize=(7, height))
    ax.set_xlim(0, 1)
    ax.set_ylim(-len(rows), 0.6)
    ax.set_axis_off()
    kinds = sorted({kind for _, kind, _, _ in rows})
    colours = {kind: plt.cm.Pastel1(i % 9) for i, kind in enumerate(kinds)}
    for i, (name, kind, shape, params) in enumerate(rows):  # noqa: B007 -- renaming stales chapters
        y = -i
        ax.add_patch(plt.Rectangle((0.05, y - 0.35), 0.9, 0.7, facecolor=colours[kind], edgecolor="0.3"))
        ax.text(0.08, y, f"{kind}", va="center", fontsize=9, weight="bold")
        ax.text(0.42, y, shape, va="center", fontsize=9, family="monospace")
        ax.text(0.92, y, f"{params:,} params" if params else "", va="center", ha="right", fontsize=8)
        if i:
            ax.annotate("", xy=(0.5, y + 0.35), xytext=(0.5, y + 0.65), arrowprops={"arrowstyle": "->"})
    ax.set_title(title or f"{model.name}: {model.count_params():,} parameters")
    fig.tight_layout()
    return fig


def learning_rate(rates: Sequence[float] | np.ndarray, *, steps_per_epoch: int | None = None,
                  title: str | None = None) -> Figure:
    """The learning rate at every training step (x axis in epochs when ``steps_per_epoch`` is given).

    Parameters
    ----------
    rates : sequence of float
        One learning rate per step, e.g. from :func:`cnnbook.training.learning_rate_schedule`.
    steps_per_epoch : int, optional
        Steps in one epoch; the x axis is then in epochs.
    title : str, optional
        Title of the axes.

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _plt()
    rates = np.asarray(rates, dtype=float)
    x = np.arange(len(rates), dtype=float)
    if steps_per_epoch:
        x = x / steps_per_epoch
    fig, ax = plt.subplots(figsize=(6, 2.8))
    ax.plot(x, rates)
    ax.set_xlabel("epoch" if steps_per_epoch else "step")
    ax.set_ylabel("learning rate")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


# --- Inside the CNN: kernels and saliency maps (chapter 11) -------------------------


def kernels(
    weights: np.ndarray,
    titles: Sequence[str] | None = None,
    ncols: int = 8,
    *,
    title: str | None = None,
    values: bool = False,
) -> Figure:
    """Small convolution kernels, one panel each, red positive and blue negative around white zero.

    Parameters
    ----------
    weights : numpy.ndarray
        ``kh×kw×1×C`` (a Conv2D kernel on one input channel), ``kh×kw×C`` or
        ``C×kh×kw`` when ``C`` differs from ``kw``; ``kh×kw`` for one kernel.
    titles : sequence of str, optional
        One title per kernel (default its index).
    ncols : int
        Panels per row.
    title : str, optional
        Title of the figure.
    values : bool
        Write each weight in its cell (readable for 3×3 kernels).

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _plt()
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim == 4:
        if w.shape[2] != 1:
            raise ValueError(f"kernels draws kernels of one input channel; got {w.shape[2]} input channels.")
        w = np.moveaxis(w[:, :, 0, :], -1, 0)
    elif w.ndim == 3 and w.shape[0] == w.shape[1] and w.shape[2] != w.shape[1]:
        w = np.moveaxis(w, -1, 0)
    elif w.ndim == 2:
        w = w[None]
    if w.ndim != 3:
        raise ValueError(f"weights must be kh×kw×1×C, kh×kw×C, C×kh×kw or kh×kw; got {np.shape(weights)}.")
    n = len(w)
    if titles is not None and len(titles) != n:
        raise ValueError(f"{n} kernels but {len(titles)} titles.")
    nrows, ncols = _grid_shape(n, ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.25 * ncols, 1.35 * nrows + (0.4 if title else 0)),
                             squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if i >= n:
            continue
        limit = max(float(np.abs(w[i]).max()), 1e-12)
        ax.imshow(w[i], cmap="RdBu_r", vmin=-limit, vmax=limit)
        if values:
            for (r, c), v in np.ndenumerate(w[i]):
                ax.text(c, r, f"{v:.1f}", ha="center", va="center", fontsize=6)
        ax.set_title(titles[i] if titles is not None else str(i), fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def _one_image(image: Any) -> np.ndarray:
    """One ``H×W``, ``H×W×1`` or ``H×W×3`` image → what imshow understands."""
    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[-1] not in (3, 4)):
        raise ValueError(f"an image must have shape H×W, H×W×1 or H×W×3; got {np.asarray(image).shape}.")
    return np.clip(arr, 0.0, 1.0) if arr.dtype.kind == "f" and arr.ndim == 3 else arr


def _heat(ax: Any, image: np.ndarray, heatmap: np.ndarray, alpha: float, cmap: str) -> None:
    """Draw ``image`` in grey (or colour) and ``heatmap``, scaled to its own largest absolute value, over it."""
    img = _one_image(image)
    h = np.asarray(heatmap, dtype=np.float64)
    if h.shape != img.shape[:2]:
        raise ValueError(f"a map must have the image's height and width {img.shape[:2]}; got {h.shape}.")
    ax.imshow(img, cmap="gray" if img.ndim == 2 else None)
    top = float(np.abs(h).max())
    scaled = h / top if top > 0 else h
    signed = bool((h < 0).any())
    if signed:  # leave the image visible where the map is about zero (most places, for occlusion)
        scaled = np.ma.masked_where(np.abs(scaled) < 0.05, scaled)
    ax.imshow(scaled, cmap="RdBu_r" if signed else cmap, vmin=-1 if signed else 0, vmax=1, alpha=alpha)
    ax.set_xticks([])
    ax.set_yticks([])


def saliency_overlay(
    image: np.ndarray,
    heatmap: np.ndarray,
    *,
    title: str | None = None,
    alpha: float = 0.5,
    cmap: str = "jet",
) -> Figure:
    """One image beside the same image with a saliency map laid over it.

    The map is scaled to its largest absolute value; a signed map (occlusion)
    is drawn red for positive and blue for negative.

    Parameters
    ----------
    image : numpy.ndarray
        ``H×W``, ``H×W×1`` or ``H×W×3`` (floats in [0, 1]).
    heatmap : numpy.ndarray
        ``H×W``.
    title : str, optional
        Title of the figure (e.g. the prediction).
    alpha : float
        Opacity of the map, in [0, 1].
    cmap : str
        Colour map of a non-negative map.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}.")
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(5, 2.8))
    img = _one_image(image)
    axes[0].imshow(img, cmap="gray" if img.ndim == 2 else None)
    axes[0].set_xticks([])
    axes[0].set_yticks([])
    axes[0].set_title("input", fontsize=9)
    _heat(axes[1], image, heatmap, alpha, cmap)
    axes[1].set_title("where it looks", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def explanation_grid(
    images: np.ndarray,
    maps: Mapping[str, np.ndarray],
    *,
    row_titles: Sequence[str] | None = None,
    title: str | None = None,
    alpha: float = 0.55,
    cmap: str = "jet",
) -> Figure:
    """One row per image: the image, then each method's map laid over it.

    Parameters
    ----------
    images : numpy.ndarray
        ``N×H×W[×C]``.
    maps : mapping of str to numpy.ndarray
        Method name → ``N×H×W`` maps (each scaled per image for display).
    row_titles : sequence of str, optional
        One label per image (e.g. "true 4, said 9 (97 %)").
    title : str, optional
        Title of the figure.
    alpha : float
        Opacity of the maps.
    cmap : str
        Colour map of non-negative maps.

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _plt()
    imgs = _as_images(images)
    n = len(imgs)
    if not maps:
        raise ValueError("maps holds no method.")
    for name, m in maps.items():
        if np.shape(m)[:1] != (n,):
            raise ValueError(f"maps[{name!r}] must hold one map per image ({n}); got shape {np.shape(m)}.")
    if row_titles is not None and len(row_titles) != n:
        raise ValueError(f"{n} images but {len(row_titles)} row titles.")
    ncols = 1 + len(maps)
    fig, axes = plt.subplots(n, ncols, figsize=(1.6 * ncols, 1.65 * n + (0.4 if title else 0.2)), squeeze=False)
    for i in range(n):
        axes[i, 0].imshow(imgs[i], cmap="gray" if imgs[i].ndim == 2 else None)
        axes[i, 0].set_xticks([])
        axes[i, 0].set_yticks([])
        if row_titles is not None:
            axes[i, 0].set_ylabel(row_titles[i], fontsize=7)
        for j, (name, m) in enumerate(maps.items(), start=1):
            _heat(axes[i, j], imgs[i], np.asarray(m)[i], alpha, cmap)
            if i == 0:
                axes[i, j].set_title(name, fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def deletion_curves(
    fractions: Sequence[float] | np.ndarray,
    curves: Mapping[str, Sequence[float] | np.ndarray],
    *,
    ylabel: str = "accuracy",
    title: str | None = None,
) -> Figure:
    """Accuracy (or probability) against the fraction of pixels deleted, one line per method.

    A line named ``"random"`` is drawn dashed grey: the reference a useful map must fall below.

    Parameters
    ----------
    fractions : sequence of float
        The x values.
    curves : mapping of str to sequence of float
        Method name → one value per fraction.
    ylabel : str
        Label of the y axis.
    title : str, optional
        Title of the axes.

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _plt()
    x = np.asarray(fractions, dtype=np.float64)
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for name, y in curves.items():
        y = np.asarray(y, dtype=np.float64)
        if y.shape != x.shape:
            raise ValueError(f"curves[{name!r}] has {y.shape} values for {x.shape} fractions.")
        style = dict(color="tab:gray", linestyle="--") if name == "random" else dict(marker="o", markersize=3)
        ax.plot(x, y, label=name, **style)
    ax.set_xlabel("fraction of pixels deleted, most important first")
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def _curve_inputs(x: Sequence[float] | np.ndarray, curves: Mapping[str, Sequence[float]]) -> np.ndarray:
    xs = np.asarray(x, dtype=float)
    if not curves:
        raise ValueError("Need at least one curve.")
    for name, ys in curves.items():
        if len(ys) != len(xs):
            raise ValueError(f"curve {name!r} has {len(ys)} points but x has {len(xs)}.")
    return xs


def accuracy_curves(
    x: Sequence[float] | np.ndarray,
    curves: Mapping[str, Sequence[float]],
    *,
    xlabel: str,
    title: str | None = None,
    chance: float | None = None,
) -> Figure:
    """Accuracy against a strength (an attack's epsilon, a corruption's severity), one line per model.

    Parameters
    ----------
    x : sequence of float
        The strengths, shared by every curve.
    curves : mapping of str to sequence of float
        Name → accuracies (in [0, 1]) at each strength.
    xlabel : str
        Label of the x axis.
    title : str, optional
        Title of the plot.
    chance : float, optional
        Draw the accuracy of guessing as a dotted line (e.g. 0.1 for ten classes).

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _plt()
    xs = _curve_inputs(x, curves)
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for name, ys in curves.items():
        ax.plot(xs, ys, "o-", label=name, markersize=4)
    if chance is not None:
        ax.axhline(chance, color="gray", linestyle=":", label="chance")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1.02)
    ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:.0%}"))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def _panels(plt: Any, n: int, ncols: int, size: tuple[float, float]) -> tuple[Figure, np.ndarray]:
    """A grid of ``n`` small accuracy plots sharing the y axis (percent, light grid); spare cells hidden."""
    nrows, ncols = _grid_shape(n, ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size[0] * ncols, size[1] * nrows + 0.5), sharey=True,
                             squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_axis_off()
    for ax in axes.flat[:n]:
        ax.grid(alpha=0.3)
        ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:.0%}"))
    return fig, axes


def corruption_panels(
    severities: Sequence[float] | np.ndarray,
    results: Mapping[str, Mapping[str, Sequence[float]]],
    *,
    ncols: int = 4,
    title: str | None = None,
) -> Figure:
    """One small plot per corruption: accuracy against severity, one line per model.

    Parameters
    ----------
    severities : sequence of float
        The x values (severity 0 = clean, 1, ..., 5).
    results : mapping of str to mapping of str to sequence of float
        Corruption → (model name → accuracies at each severity).
    ncols : int
        Panels per row.
    title : str, optional
        Title of the whole figure.

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _plt()
    if not results:
        raise ValueError("Need the results of at least one corruption.")
    for curves in results.values():
        xs = _curve_inputs(severities, curves)
    fig, axes = _panels(plt, len(results), ncols, (2.6, 2.3))
    for ax, (kind, curves) in zip(axes.flat, results.items()):
        for name, ys in curves.items():
            ax.plot(xs, ys, "o-", label=name, markersize=3)
        ax.set_title(kind.replace("_", " "), fontsize=9)
        ax.set_ylim(0, 1.02)
        ax.set_xticks(xs)
    for ax in axes[-1]:
        ax.set_xlabel("severity")
    handles, names = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="lower right", fontsize=8, ncol=1)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def _seed_values(values: Sequence[Sequence[float]], what: str) -> list[np.ndarray]:
    arrays = [np.asarray(v, dtype=float).ravel() for v in values]
    if not arrays or any(a.size == 0 for a in arrays):
        raise ValueError(f"{what}: every point needs at least one value (one per seed).")
    return arrays


def factor_curves(
    panels: Mapping[str, tuple[Sequence[float], Sequence[Sequence[float]]]],
    *,
    log_x: Sequence[str] = (),
    baseline: Mapping[str, float] | None = None,
    ncols: int = 4,
    title: str | None = None,
) -> Figure:
    """One small plot per factor: accuracy (each seed a dot, the mean a line) against the level.

    Parameters
    ----------
    panels : mapping of str to (levels, values)
        Factor → (its levels, and for each level the accuracies of every seed).
    log_x : sequence of str
        Factors whose axis is logarithmic (e.g. the share of training data).
    baseline : mapping of str to float, optional
        Factor → the baseline's level, marked with a vertical dotted line.
    ncols : int
        Panels per row.
    title : str, optional
        Title of the whole figure.

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _plt()
    if not panels:
        raise ValueError("Need at least one factor to draw.")
    fig, axes = _panels(plt, len(panels), ncols, (2.9, 2.5))
    for ax, (factor, (levels, values)) in zip(axes.flat, panels.items()):
        xs = np.asarray(levels, dtype=float)
        per_level = _seed_values(values, factor)
        if len(per_level) != len(xs):
            raise ValueError(f"{factor}: {len(xs)} levels but values for {len(per_level)}.")
        for x, v in zip(xs, per_level):
            ax.plot(np.full(v.size, x), v, ".", color="gray", alpha=0.6, markersize=5)
        ax.plot(xs, [v.mean() for v in per_level], "o-", markersize=4)
        if baseline and factor in baseline:
            ax.axvline(baseline[factor], color="gray", linestyle=":", linewidth=1)
        if factor in log_x:
            ax.set_xscale("log")
        ax.set_xticks(xs, [f"{x:g}" for x in xs])
        ax.minorticks_off()
        ax.set_xlabel(factor, fontsize=9)
    for row in axes:
        row[0].set_ylabel("validation accuracy")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def accuracy_vs_time(
    labels: Sequence[str],
    seconds: Sequence[float],
    values: Sequence[Sequence[float]],
    *,
    reference: int | None = 0,
    title: str | None = None,
) -> Figure:
    """Accuracy against training time, one point per configuration (mean, with the seeds' range).

    Parameters
    ----------
    labels : sequence of str
        Name of each configuration.
    seconds : sequence of float
        Training time of each.
    values : sequence of sequences of float
        Accuracies of every seed, per configuration.
    reference : int, optional
        Index of the configuration drawn as the reference lines (the baseline); ``None`` for none.
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _plt()
    per_point = _seed_values(values, "accuracy_vs_time")
    if not len(labels) == len(seconds) == len(per_point):
        raise ValueError("labels, seconds and values must have one entry per configuration.")
    t = np.asarray(seconds, dtype=float)
    means = np.array([v.mean() for v in per_point])
    low = means - np.array([v.min() for v in per_point])
    high = np.array([v.max() for v in per_point]) - means
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    ax.errorbar(t, means, yerr=[low, high], fmt="o", markersize=4, capsize=2, elinewidth=1)
    for x, y, label in zip(t, means, labels):
        ax.annotate(label, (x, y), xytext=(4, 3), textcoords="offset points", fontsize=7)
    if reference is not None:
        ax.axhline(means[reference], color="gray", linestyle=":", linewidth=1)
        ax.axvline(t[reference], color="gray", linestyle=":", linewidth=1)
    ax.set_xscale("log")
    ax.set_xlabel("training time per run (s, log scale)")
    ax.set_ylabel("validation accuracy")
    ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:.0%}"))
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig

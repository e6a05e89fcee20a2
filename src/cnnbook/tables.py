"""Small tables for notebooks: a training history per epoch, a per-class report.

A :class:`Table` shows as HTML in a notebook and as aligned text elsewhere.
Part of :mod:`cnnbook.evaluation`, which imports it back (``evaluation.Table``).
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any, Sequence

__all__ = [
    "Table",
    "history_table",
    "report_table",
]


@dataclass(frozen=True)
class Table:
    """A small table that shows as HTML in a notebook and as aligned text elsewhere."""

    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    caption: str | None = None

    def _cells(self) -> list[list[str]]:
        return [[c if isinstance(c, str) else f"{c}" for c in row] for row in self.rows]

    def __str__(self) -> str:
        cells = [list(self.columns)] + self._cells()
        widths = [max(len(r[i]) for r in cells) for i in range(len(self.columns))]
        lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in cells]
        lines.insert(1, "  ".join("-" * w for w in widths))
        if self.caption:
            lines.insert(0, self.caption)
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{html.escape(c)}</th>" for c in self.columns)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in self._cells()
        )
        caption = f"<caption>{html.escape(self.caption)}</caption>" if self.caption else ""
        return f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def history_table(
    history: dict[str, Sequence[float]],
    epoch_seconds: Sequence[float] | None = None,
    *,
    caption: str | None = None,
) -> Table:
    """One row per epoch of a Keras training history: the compact form of ``fit``'s log.

    Parameters
    ----------
    history : dict of str to sequence of float
        ``History.history`` (or :attr:`cnnbook.training.TrainResult.history`): per-epoch
        ``loss`` and, where present, ``accuracy``, ``val_loss``, ``val_accuracy``.
    epoch_seconds : sequence of float, optional
        Wall-clock seconds of each epoch, shown as a last column.
    caption : str, optional
        Shown above the table.

    Returns
    -------
    Table
        Columns: epoch, then the losses (4 decimals) and accuracies (percent, 2 decimals) found.
    """
    if "loss" not in history:
        raise ValueError(f"history must hold at least 'loss' for each epoch; it has {sorted(history)}.")
    epochs = len(history["loss"])
    names = [k for k in ("loss", "accuracy", "val_loss", "val_accuracy") if k in history]
    for name in names:
        if len(history[name]) != epochs:
            raise ValueError(f"history[{name!r}] has {len(history[name])} values for {epochs} epochs.")
    if epoch_seconds is not None and len(epoch_seconds) != epochs:
        raise ValueError(f"epoch_seconds has {len(epoch_seconds)} values for {epochs} epochs.")
    columns = ["epoch"] + [n.replace("val_", "validation ").replace("_", " ") for n in names]
    rows = []
    for e in range(epochs):
        row: list[Any] = [f"{e + 1}"]
        for name in names:
            value = float(history[name][e])
            row.append(f"{value:.2%}" if name.endswith("accuracy") else f"{value:.4f}")
        if epoch_seconds is not None:
            row.append(f"{float(epoch_seconds[e]):.1f}")
        rows.append(tuple(row))
    if epoch_seconds is not None:
        columns.append("seconds")
    return Table(tuple(columns), tuple(rows), caption)


def report_table(report: dict[str, Any], digits: int = 3) -> Table:
    """The per-class report of :func:`classification_report` as a :class:`Table`.

    Parameters
    ----------
    report : dict
        What :func:`classification_report` returned.
    digits : int
        Decimals shown for precision, recall and F1 (non-negative).

    Returns
    -------
    Table
        One row per class and average, then an ``accuracy`` row.
    """
    if digits < 0:
        raise ValueError(f"digits must be non-negative, got {digits}.")
    rows = []
    for name, scores in report.items():
        if not isinstance(scores, dict):
            continue
        rows.append((
            name,
            f"{scores['precision']:.{digits}f}",
            f"{scores['recall']:.{digits}f}",
            f"{scores['f1-score']:.{digits}f}",
            f"{int(scores['support'])}",
        ))
    if "accuracy" in report:
        support = next((s["support"] for n, s in report.items() if n == "macro avg"), None)
        rows.append(("accuracy", "", "", f"{report['accuracy']:.{digits}f}",
                     f"{int(support)}" if support is not None else ""))
    return Table(("class", "precision", "recall", "F1", "support"), tuple(rows))

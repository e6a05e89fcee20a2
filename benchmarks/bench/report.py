"""The benchmark's report: ratios, time to target, the book's bars, McNemar's test, Markdown.

Everything here is arithmetic and text on the workers' results (dicts), so it
is tested with made-up rows; it imports no TensorFlow and trains nothing.
McNemar's test is :func:`cnnbook.evaluation.mcnemar`, on the per-image
correctness (``test_correct``) every worker returns.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import asdict, dataclass
from typing import Any, Callable, Sequence

from cnnbook import evaluation  # NumPy only: no TensorFlow
from cnnbook.hardware import cpu_description, kernels_description  # no TensorFlow at import

from .spec import DATASET_NAMES, DEFAULT_TARGETS, NOT_MEASURED, Settings

__all__ = [
    "BARS",
    "DEFINITIONS",
    "MODEL_FIELDS",
    "REPORT_FIELDS",
    "Bar",
    "bar_lines",
    "build_report",
    "judge_bars",
    "time_to_accuracy",
    "to_markdown",
]

DEFINITIONS = {
    "train_seconds": "wall-clock seconds of model.fit (training steps, each epoch's validation pass and the "
    "recipe's callbacks), minus the seconds spent measuring test accuracy for time_to_target",
    "seconds_per_epoch": "train_seconds / epochs (the first epoch includes building the TensorFlow graph)",
    "time_to_target_seconds": "training seconds at the end of the first epoch whose test accuracy reaches the "
    "target (DAWNBench-style; for the ensemble, whose members train side by side, the soft vote of all members "
    "at each epoch end); null: never reached",
    "test_accuracy": "accuracy on the test split of the model the recipe returns (last epoch for the tutorial "
    "recipes, best-validation epoch for the book's recipe)",
    "test_correct": "per-image correctness of that model on the test split, in the split's order: one "
    "character per image, '1' right and '0' wrong (McNemar's test between two rows of the same run)",
    "inference_images_per_second": "test images / median seconds of three model.predict passes "
    "(batch 1,024, CPU) after one warm-up pass",
    "peak_rss_mib": "peak resident memory of the process that loaded the data, trained and evaluated the model",
    "time_ratio": "train_seconds / train_seconds of the reference model",
    "error_ratio": "(1 - test_accuracy) / (1 - test_accuracy of the reference model); below 1 is better",
    "time_to_target_ratio": "time_to_target_seconds / train_seconds of the reference model",
    "precision": "the Keras dtype policy the row computed in: float32, or mixed_bfloat16 (bfloat16 arithmetic, "
    "float32 weights)",
    "forward_flops_per_image": "FLOPs of one image's forward pass: 2 per multiply-add of the Conv and Dense "
    "layers (cnnbook.compute.forward_flops; batch norm, activations and pooling not counted)",
    "train_flops": "3 × forward_flops_per_image × training images × epochs (backward ≈ 2 × forward; "
    "validation passes not counted)",
    "achieved_gflops": "train_flops / train_seconds / 1e9 (train_seconds includes validation and callbacks, "
    "so this is a lower bound on the training steps' rate); the table gives it as a share of "
    "machine.float32_peak (cnnbook.hardware.float32_peak, whose assumptions the JSON records)",
    "kernels": "machine.kernels: oneDNN on or off in the workers and what decided it "
    "(cnnbook.hardware.onednn_state), and ONEDNN_MAX_CPU_ISA when set",
}

#: Fields every measured model has in the JSON report.
MODEL_FIELDS = (
    "key", "name", "status", "source", "recipe", "final_weights", "precision", "parameters", "epochs",
    "train_seconds", "seconds_per_epoch", "epoch_seconds", "cumulative_seconds", "measuring_seconds_excluded",
    "test_accuracy_by_epoch", "val_accuracy_by_epoch", "test_accuracy", "test_error",
    "time_to_target_seconds", "epochs_to_target", "time_to_reference_accuracy_seconds",
    "inference_images_per_second", "inference_batch_size", "peak_rss_mib", "rss_after_data_mib",
    "time_ratio", "error_ratio", "time_to_target_ratio", "test_correct",
)

#: Fields of the JSON report itself.
REPORT_FIELDS = (
    "dataset", "dataset_name", "precision", "date", "machine", "versions", "command", "settings", "reduced",
    "target", "target_source", "reference", "models", "not_measured", "bars", "definitions",
)


# --- Pure computations -------------------------------------------------------------


def time_to_accuracy(
    cumulative_seconds: Sequence[float], accuracies: Sequence[float], target: float
) -> tuple[float | None, int | None]:
    """(seconds, epoch) at the end of the first epoch whose accuracy reaches ``target``; (None, None) if none."""
    if len(cumulative_seconds) != len(accuracies):
        raise ValueError(f"{len(cumulative_seconds)} times but {len(accuracies)} accuracies.")
    for epoch, (seconds, accuracy) in enumerate(zip(cumulative_seconds, accuracies), start=1):
        if accuracy >= target:
            return float(seconds), epoch
    return None, None


def _per_image(correct: str) -> list[bool]:
    """A worker's ``test_correct`` ('0'/'1' per test image) as booleans."""
    return [ch == "1" for ch in correct]


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator <= 0:
        return None
    return float(numerator) / float(denominator)


# --- Formatting ----------------------------------------------------------------------


def _pct(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{100 * value:.{digits}f} %"


def _secs(value: float | None) -> str:
    if value is None:
        return "never"
    if value < 100:
        return f"{value:.1f} s"
    minutes, seconds = divmod(int(round(value)), 60)
    return f"{minutes} min {seconds:02d} s"


def _times(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}×"


def _cell(text: Any) -> str:
    return str(text).replace("|", "/")


# --- The book's bars -----------------------------------------------------------------

#: ``judge(rows by key)`` -> (met, or None when this run's data cannot say; what this run shows; figures).
Judge = Callable[[dict[str, dict[str, Any]]], tuple["bool | None", str, dict[str, Any]]]


@dataclass(frozen=True)
class Bar:
    """A claim the book makes about its models on one dataset, and how a run's rows judge it."""

    key: str
    claim: str
    models: tuple[str, ...]  # the rows it needs
    judge: Judge
    float32_only: bool = False  # a claim about float32 speed: judged in float32 runs only


def _reaches_in_time(key: str, claim: str, model: str, reference: str, accuracy: float, max_ratio: float,
                     final: float | None = None, float32_only: bool = False) -> Bar:
    """``model`` reaches ``accuracy`` within ``max_ratio`` × ``reference``'s training time (and ends at ``final``)."""

    def judge(rows: dict[str, dict[str, Any]]) -> tuple[bool | None, str, dict[str, Any]]:
        m, ref = rows[model], rows[reference]
        seconds, epoch = time_to_accuracy(m["cumulative_seconds"], m["test_accuracy_by_epoch"], accuracy)
        ratio = _ratio(seconds, ref["train_seconds"])
        fast = ratio is not None and ratio <= max_ratio
        here = (
            f"{model} reached {_pct(accuracy)} after {_secs(seconds)} of training (epoch "
            f"{epoch}), {_times(ratio)} {reference}'s {_secs(ref['train_seconds'])}"
            if seconds is not None
            else f"{model} never reached {_pct(accuracy)} ({reference} trained {_secs(ref['train_seconds'])})"
        )
        figures = {"time_to_accuracy_seconds": seconds, "reference_train_seconds": ref["train_seconds"],
                   "time_ratio": ratio}
        met = fast
        if final is not None:
            here += f"; it ended at {_pct(m['test_accuracy'])}"
            figures["test_accuracy"] = m["test_accuracy"]
            met = fast and m["test_accuracy"] >= final
        return met, here, figures

    return Bar(key, claim, (model, reference), judge, float32_only)


def _final_accuracy(key: str, claim: str, model: str, minimum: float) -> Bar:
    def judge(rows: dict[str, dict[str, Any]]) -> tuple[bool | None, str, dict[str, Any]]:
        accuracy = rows[model]["test_accuracy"]
        return accuracy >= minimum, f"{model} ended at {_pct(accuracy)}", {"test_accuracy": accuracy}

    return Bar(key, claim, (model,), judge)


def _better_and_significant(key: str, claim: str, model: str, other: str, minimum: float, alpha: float) -> Bar:
    """``model`` ends at ``minimum`` or more and differs from ``other`` by an exact McNemar test at ``alpha``."""

    def judge(rows: dict[str, dict[str, Any]]) -> tuple[bool | None, str, dict[str, Any]]:
        m, o = rows[model], rows[other]
        here = f"{model} ended at {_pct(m['test_accuracy'])} ({other}: {_pct(o['test_accuracy'])})"
        figures: dict[str, Any] = {"test_accuracy": m["test_accuracy"], "other_test_accuracy": o["test_accuracy"]}
        if not m.get("test_correct") or not o.get("test_correct"):
            return None, here + "; no per-image test results to compare", figures
        test = evaluation.mcnemar(_per_image(m["test_correct"]), _per_image(o["test_correct"]))
        b, c, p = test.only_a, test.only_b, test.p_value
        figures.update(only_model_right=b, only_other_right=c, mcnemar_p=p)
        here += (
            f"; of {len(m['test_correct']):,} test images, {b} only {model} gets right and {c} only {other}: "
            f"McNemar p = {p:.3g}"
        )
        return m["test_accuracy"] >= minimum and p < alpha, here, figures

    return Bar(key, claim, (model, other), judge)


def _inference_rate(key: str, claim: str, model: str, reference: str, min_ratio: float) -> Bar:
    """``model`` predicts at least ``min_ratio`` × as many images per second as ``reference``."""

    def judge(rows: dict[str, dict[str, Any]]) -> tuple[bool | None, str, dict[str, Any]]:
        rate, ref = rows[model]["inference_images_per_second"], rows[reference]["inference_images_per_second"]
        ratio = _ratio(rate, ref)
        here = f"{model} {rate:,.0f} images/s, {_times(ratio)} {reference}'s {ref:,.0f}"
        return ratio is not None and ratio >= min_ratio, here, {"inference_ratio": ratio}

    return Bar(key, claim, (model, reference), judge, float32_only=True)


#: The bars the book sets itself (issues 10 and 36), per dataset.
BARS: dict[str, tuple[Bar, ...]] = {
    "mnist": (
        _reaches_in_time(
            "mnist_speed",
            "the book's Part I model (book_part1) reaches 99.22 % test accuracy in at most 0.5× the training time "
            "of keras-io's convnet (keras_io), and ends at 99.50 % or more",
            "book_part1", "keras_io", accuracy=0.9922, max_ratio=0.5, final=0.995,
        ),
        _better_and_significant(
            "mnist_ensemble",
            "the book's ensemble (book_ensemble) ends at 99.65 % or more, and its difference from the single "
            "Part I model (book_part1) on the same test images is significant (exact McNemar test, two-sided "
            "p < 0.05)",
            "book_ensemble", "book_part1", minimum=0.9965, alpha=0.05,
        ),
        _inference_rate(
            "mnist_inference",
            "in float32, the book's Part I model (book_part1) predicts at least 0.9× as many images per second as "
            "keras-io's convnet (keras_io)",
            "book_part1", "keras_io", min_ratio=0.9,
        ),
    ),
    "fashion_mnist": (
        _final_accuracy(
            "fashion_mnist_accuracy",
            "the book's best single model for Fashion-MNIST, chapter 8's network with its Fashion-MNIST recipe "
            "(book_wide, chosen over the Part I model on the validation split in chapter 10), ends at 93.50 % or more",
            "book_wide", minimum=0.935,
        ),
    ),
    "cifar10": (
        _final_accuracy(
            "cifar10_accuracy", "the book's colour model (book_cifar) ends at 90.00 % or more",
            "book_cifar", minimum=0.90,
        ),
        _reaches_in_time(
            "cifar10_speed",
            "in float32, the book's colour model (book_cifar) reaches 85.00 % within 4× the training time of "
            "the article's network (article) trained for its 10 epochs",
            "book_cifar", "article", accuracy=0.85, max_ratio=4.0, float32_only=True,
        ),
    ),
}


def judge_bars(dataset: str, precision: str, reduced: bool, models: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every bar of ``dataset``, judged on the run's rows: met, not met, or why it is not judged."""
    rows = {m["key"]: m for m in models}
    judged = []
    for bar in BARS.get(dataset, ()):
        out: dict[str, Any] = {"key": bar.key, "claim": bar.claim, "models": list(bar.models),
                               "float32_only": bar.float32_only, "met": None, "here": None, "figures": {}}
        missing = [key for key in bar.models if key not in rows]
        if missing:
            out["verdict"] = f"not judged ({', '.join(missing)} not part of this run)"
        elif bar.float32_only and precision != "float32":
            out["verdict"] = f"not judged (judged in float32 runs only; this run is {precision})"
        else:
            met, out["here"], out["figures"] = bar.judge(rows)
            if met is None:
                out["verdict"] = "not judged (this run's results cannot say)"
            elif reduced:
                out["verdict"] = "not judged (reduced settings)"
            else:
                out["met"] = bool(met)
                out["verdict"] = "met" if met else "not met"
        judged.append(out)
    return judged


def bar_lines(report: dict[str, Any]) -> list[str]:
    """One plain-text line per bar: the claim, what this run shows, the verdict."""
    return [
        f"Bar ({report['dataset_name']}): {bar['claim']}" + (f" — here {bar['here']}" if bar["here"] else "")
        + f": {bar['verdict']}."
        for bar in report["bars"]
    ]


# --- The report ----------------------------------------------------------------------


def build_report(
    settings: Settings,
    results: Sequence[dict[str, Any]],
    *,
    machine: dict[str, Any],
    versions: dict[str, str],
    command: str,
    date: str | None = None,
) -> dict[str, Any]:
    """Combine the workers' measurements into the report: targets, ratios, the bars.

    ``settings`` must be resolved (``settings.resolved()``): its precision says
    which rows were skipped and which bars are judged.
    """
    target = settings.target_accuracy
    reference = results[0] if results else None
    models = []
    for raw in results:
        row = dict(raw)
        row["test_error"] = 1.0 - row["test_accuracy"]
        row["time_to_target_seconds"], row["epochs_to_target"] = time_to_accuracy(
            row["cumulative_seconds"], row["test_accuracy_by_epoch"], target
        )
        row["time_to_reference_accuracy_seconds"] = (
            time_to_accuracy(row["cumulative_seconds"], row["test_accuracy_by_epoch"], reference["test_accuracy"])[0]
            if reference is not None else None
        )
        ref_seconds = reference["train_seconds"] if reference else None
        row["time_ratio"] = _ratio(row["train_seconds"], ref_seconds)
        row["error_ratio"] = _ratio(row["test_error"], 1.0 - reference["test_accuracy"]) if reference else None
        row["time_to_target_ratio"] = _ratio(row["time_to_target_seconds"], ref_seconds)
        models.append({name: row.get(name) for name in MODEL_FIELDS} | {
            k: v for k, v in row.items() if k not in MODEL_FIELDS
        })
    not_measured = [
        {"key": key, "name": name, "status": status}
        for key, (name, status) in NOT_MEASURED.get(settings.dataset, {}).items()
    ] + [{"key": entry.key, "name": entry.name, "status": why} for entry, why in settings.skipped()]
    return {
        "dataset": settings.dataset,
        "dataset_name": DATASET_NAMES[settings.dataset],
        "precision": settings.precision,
        "date": date or _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine,
        "versions": versions,
        "command": command,
        "settings": asdict(settings) | {"models": [m["key"] for m in models]},
        "reduced": settings.reduced,
        "target": target,
        "target_source": (
            DEFAULT_TARGETS[settings.dataset][1] if settings.target is None else "set on the command line"
        ),
        "reference": reference["key"] if reference else None,
        "models": models,
        "not_measured": not_measured,
        "bars": judge_bars(settings.dataset, settings.precision, settings.reduced, models),
        "definitions": DEFINITIONS,
    }


# --- Markdown ------------------------------------------------------------------------

_PRECISIONS = {"float32": "float32", "mixed_bfloat16": "bfloat16 (mixed)"}

_SCHEDULES = {"onecycle": "one-cycle", "cosine": "cosine-decay", "constant": "constant"}


#: Image side in pixels, to say a shift in pixels as well as in percent.
_IMAGE_SIDE = {"mnist": 28, "fashion_mnist": 28, "cifar10": 32}


def _config_text(config: dict[str, Any] | None, dataset: str | None = None) -> str:
    """The settings actually run, for the recipes of the book (whose settings live in cnnbook.recipes)."""
    if not config or "origin" not in config:
        return ""
    return (
        f" — here {config['origin']}: at most {config['epochs']} epoch{'s' if config['epochs'] != 1 else ''}, batch {config['batch_size']}, "
        + ("SGD with Nesterov momentum 0.9, " if config.get("optimizer") == "sgd" else "")
        + f"{_SCHEDULES.get(config['schedule'], config['schedule'])} learning rate peaking at {config['learning_rate']:g}, "
        f"early-stopping patience {config['patience']}"
        + (f", weight decay {config['weight_decay']:g}" if config.get("weight_decay") else "")
        + (f", augmentation '{config['augmentation']}'" if config.get("augmentation") else "")
        + _augmentation_text(config.get("augmentation_settings"), _IMAGE_SIDE.get(dataset))
        + (f", {config['members']} members" if config.get("members") else "")
    )


def _augmentation_text(settings: dict[str, Any] | None, side: int | None = None) -> str:
    """What a recipe's augmentation preset (training.AUGMENTATIONS) does, in words."""
    if not settings:
        return ""
    parts = ["mirror images"] if settings.get("flip") else []
    if settings.get("translation"):
        how = "by whole pixels" if settings.get("interpolation") == "nearest" else f"{settings.get('interpolation')} interpolation"
        pixels = f", {settings['translation'] * side:.3g} px of {side}" if side else ""
        parts.append(f"shifts of up to {100 * settings['translation']:.3g} % of the side{pixels} ({how}, "
                     f"{settings.get('fill_mode')} border)")
    if settings.get("contrast"):
        parts.append(f"contrast changes of up to {100 * settings['contrast']:.3g} %")
    return f" ({', '.join(parts)})" if parts else ""


def _views_text(model: dict[str, Any]) -> str:
    """The test-time views a row chose on the validation split, and what they changed on the test split."""
    if not model.get("test_views"):
        return ""
    scores = ", ".join(f"{views} {_pct(accuracy)}" for views, accuracy in model["val_accuracy_by_views"].items())
    passes = evaluation.VIEWS[model["test_views"]]
    return (
        f"; test-time views chosen on the validation split ({scores}): '{model['test_views']}', "
        f"test accuracy {_pct(model['test_accuracy'])} with them, {_pct(model['test_accuracy_without_views'])} without"
        + (f" (at {passes} forward passes per image: the inference column counts one)" if passes > 1 else "")
    )


def _precision_and_machine(report: dict[str, Any]) -> str:
    """The first line: the run's precision (per row) and the machine, bfloat16 units included."""
    machine = report["machine"]
    units = machine.get("bfloat16_units")
    if units:
        has = f"with bfloat16 units ({', '.join(units)})"
    elif units is not None:
        has = "without bfloat16 units" + (" (bfloat16 emulated)" if report["precision"] == "bfloat16" else "")
    else:
        has = "bfloat16 units not recorded"
    by_dtype: dict[str, list[str]] = {}
    for m in report["models"]:
        by_dtype.setdefault(m.get("precision") or "?", []).append(m["key"])
    if report["precision"] == "float32":
        rows = "every model in float32"
    else:
        rows = "; ".join(
            f"{'Keras mixed_bfloat16' if dtype == 'mixed_bfloat16' else dtype} for {', '.join(keys)}"
            + (" (as published)" if dtype == "float32" else "")
            for dtype, keys in sorted(by_dtype.items(), key=lambda kv: kv[0] != "mixed_bfloat16")
        ) or "no model measured"
    extensions = machine.get("vector_extensions")
    widest = ("AVX-512" if "avx512f" in extensions else "AVX2, no AVX-512" if "avx2" in extensions
              else "no AVX2") if extensions else None
    kernels = machine.get("kernels")
    return (
        f"**Precision: {report['precision']}** ({rows}). **Machine:** {_cell(cpu_description(machine))}"
        + f", {machine.get('cores')} CPU cores (CPU only), {has}"
        + (f", {widest}" if widest else "")
        + (f". **Kernels:** {_cell(kernels_description(kernels))}" if kernels else "")
        + "."
    )


def _utilisation(m: dict[str, Any], peak: float | None) -> str:
    """Training GFLOP and achieved GFLOP/s (and the share of the CPU's float32 peak), or a dash."""
    if not m.get("train_flops") or not m.get("achieved_gflops"):
        return "— | —"
    share = f" ({m['achieved_gflops'] / peak:.0%} of peak)" if peak else ""
    return f"{m['train_flops'] / 1e9:,.0f} | {m['achieved_gflops']:.1f}{share}"


def to_markdown(report: dict[str, Any]) -> str:
    """The report as a Markdown fragment (no headings: it is included into a book page)."""
    versions = report["versions"]
    machine = report["machine"]
    s = report["settings"]
    target = report["target"]
    models = report["models"]
    reference = next((m for m in models if m["key"] == report["reference"]), None)
    lines = [_precision_and_machine(report), ""]
    if report["reduced"]:
        lines += [
            "**Reduced settings: a quick check that the benchmark runs, not a measurement to quote.**",
            "",
        ]
    sizes = models[0]["data_sizes"] if models and "data_sizes" in models[0] else {}
    size_text = ", ".join(f"{sizes[k]:,} {k}" for k in ("training", "validation", "test") if k in sizes)
    lines += [
        f"Measured {report['date']}, Python {machine.get('python')}, TensorFlow {versions.get('tensorflow')}, "
        f"Keras {versions.get('keras')}. Data: {report['dataset_name']}"
        + (f", {size_text} images" if size_text else "")
        + f"; seed {s['seed']}, the same split and seed for every model, each trained in a fresh process, "
        "one after another.",
        "",
        f"Command: `{report['command']}`",
        "",
        f"| Model | Precision | Parameters | Epochs | Training time | Time per epoch | Time to {_pct(target)} "
        "| Test accuracy | Time ratio | Error ratio | Inference (images/s) | Peak RSS "
        "| Training GFLOP | GFLOP/s |",
        "|:--|:--|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    peak = (machine.get("float32_peak") or {}).get("gflops")
    for m in models:
        reached = _secs(m["time_to_target_seconds"])
        if m["epochs_to_target"] is not None:
            reached += f" (epoch {m['epochs_to_target']})"
        lines.append(
            f"| {_cell(m['name'])} | {_PRECISIONS.get(m.get('precision'), '—')} | {m['parameters']:,} "
            f"| {m['epochs']} | {_secs(m['train_seconds'])} "
            f"| {m['seconds_per_epoch']:.1f} s | {reached} | {_pct(m['test_accuracy'])} "
            f"| {_times(m['time_ratio'])} | {_times(m['error_ratio'])} "
            f"| {m['inference_images_per_second']:,.0f} | {m['peak_rss_mib']:,.0f} MiB "
            f"| {_utilisation(m, peak)} |"
        )
    for row in report["not_measured"]:
        lines.append(f"| {_cell(row['name'])} | {_cell(row['status'])} |  |  |  |  |  |  |  |  |  |  |  |  |")
    lines.append("")
    if reference is not None:
        lines.append(
            f"Ratios are against {reference['name']}: time ratio = training time ÷ its training time, "
            "error ratio = test error ÷ its test error (below 1 is better for both). "
            f"Target {_pct(target)}: {report['target_source']}."
        )
        lines.append("")
    lines.append("Recipes, as run here:")
    lines.append("")
    for m in models:
        refreshed = "batch-norm statistics re-estimated" in (m.get("final_weights") or "")
        lines.append(f"- **{_cell(m['name'])}** (`{m['key']}`): {m['recipe']}{_config_text(m.get('config'), report.get('dataset'))}"
                     f"{_views_text(m)}"
                     + ("; then, this reduced run only, batch-norm statistics re-estimated on the training images"
                        if refreshed else "") + ".")
    lines.append("")
    if report["bars"]:
        lines.append(f"The book's bars on {report['dataset_name']}:")
        lines.append("")
        for bar in report["bars"]:
            lines.append(
                f"- {bar['claim'][0].upper()}{bar['claim'][1:]}"
                + (f" — here {bar['here']}" if bar["here"] else "") + f": **{bar['verdict']}**."
            )
        lines.append("")
    return "\n".join(lines)

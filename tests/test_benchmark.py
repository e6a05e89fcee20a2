"""The benchmark script runs end to end and reports every figure; its arithmetic and its bars are right.

No timing or accuracy is asserted here: those are measured by
``python benchmarks/compare.py --dataset mnist`` and shown on the Results page.
The end-to-end run uses tiny settings and two cheap models and writes to a
temporary folder, never to ``benchmarks/results/``.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "compare.py"
sys.path.insert(0, str(ROOT / "benchmarks"))  # the benchmark is a tool of the repository, not of the package

from bench import report as report_module  # noqa: E402
from bench import spec  # noqa: E402
from bench.report import bar_lines, build_report, judge_bars, time_to_accuracy, to_markdown  # noqa: E402
from bench.spec import Settings, result_paths  # noqa: E402

# What the issue asks for, spelled out here rather than read from the module under test.
REQUIRED_MODEL_FIELDS = {
    "key", "name", "parameters", "epochs", "train_seconds", "seconds_per_epoch", "test_accuracy",
    "time_to_target_seconds", "inference_images_per_second", "peak_rss_mib", "time_ratio", "error_ratio",
    "precision", "test_correct",
}
REQUIRED_REPORT_FIELDS = {"dataset", "precision", "date", "machine", "target", "reference", "models", "not_measured",
                          "bars"}
MACHINE = {"cpu": "Test CPU", "cores": 2, "python": "3", "bfloat16_units": ["amx_bf16"]}


def test_time_to_accuracy_is_the_first_epoch_that_reaches_the_target():
    seconds = [10.0, 21.0, 30.5, 41.0]
    accuracy = [0.97, 0.990, 0.9922, 0.995]
    assert time_to_accuracy(seconds, accuracy, 0.9922) == (30.5, 3)
    assert time_to_accuracy(seconds, accuracy, 0.95) == (10.0, 1)
    assert time_to_accuracy(seconds, accuracy, 0.999) == (None, None)
    with pytest.raises(ValueError, match="3 times but 4 accuracies"):
        time_to_accuracy(seconds[:3], accuracy, 0.99)


def test_settings_reject_bad_input_and_know_reduced_runs():
    with pytest.raises(ValueError, match="Unknown dataset"):
        Settings(dataset="imagenet")
    with pytest.raises(ValueError, match="book_cifar"):
        Settings(dataset="mnist", models=("book_cifar",))
    with pytest.raises(ValueError, match="max_epochs"):
        Settings(max_epochs=0)
    with pytest.raises(ValueError, match="target"):
        Settings(target=99.22)
    with pytest.raises(ValueError, match="precision"):
        Settings(precision="float16")
    assert not Settings().reduced and Settings().target_accuracy == 0.9922
    assert Settings(train_size=500).reduced and Settings(max_epochs=1).reduced
    assert [e.key for e in Settings(dataset="cifar10").selected()] == ["article", "book_cifar", "book_resnet"]
    assert [e.key for e in Settings(models=("book_part1", "keras_io")).selected()] == ["keras_io", "book_part1"]


def test_every_entry_has_its_own_build_and_recipe():
    for dataset in spec.DATASETS:
        for entry in spec.entries(dataset):
            assert callable(entry.build) and callable(entry.config)
            assert entry.weights == ("last" if entry.key in ("keras_io", "keras_io_bf16", "article") else "best")
    assert [e.key for e in spec.entries("mnist") if e.ensemble] == ["book_ensemble"]


def test_each_book_row_names_the_training_function_that_makes_its_recipe():
    from cnnbook import training

    expected = {"book_part1": "default_config", "book_ensemble": "ensemble_config", "book_cifar": "default_config",
                "book_wide": "cifar_cnn_config", "book_resnet": "resnet_config"}
    for dataset in spec.DATASETS:
        for entry in spec.entries(dataset):
            if entry.weights == "last":  # a tutorial's own recipe, spelled out in its row
                assert not isinstance(entry.config, spec.BookRecipe)
                continue
            assert entry.config.function == expected[entry.key], (dataset, entry.key)
            assert entry.config.origin == f"training.{expected[entry.key]}"
            assert entry.config(dataset, 3) == getattr(training, expected[entry.key])(dataset, seed=3)


def test_the_reports_words_for_sgd_are_the_optimizer_the_book_builds():
    """report.py spells out SGD's momentum; it must be the one training.make_optimizer uses."""
    from cnnbook import training

    config = training.default_config("cifar10")
    assert config.optimizer == "sgd"
    optimizer = training.make_optimizer(config, steps_per_epoch=10)
    words = report_module._config_text({"origin": "training.default_config('cifar10')", "epochs": 20,
                                        "batch_size": 256, "optimizer": "sgd", "schedule": "onecycle",
                                        "learning_rate": 0.1, "patience": 20})
    assert optimizer.nesterov and f"SGD with Nesterov momentum {optimizer.momentum:g}, " in words


# --- Precision ---------------------------------------------------------------------------


def test_float32_forces_every_row_and_reports_the_control_as_not_measured():
    settings = Settings(precision="float32").resolved()
    assert settings.precision == "float32"
    assert [(e.key, dtype) for e, dtype in settings.runs()] == [
        ("keras_io", "float32"), ("article", "float32"), ("book_part1", "float32"), ("book_ensemble", "float32")]
    assert [(e.key, "bfloat16 control" in why) for e, why in settings.skipped()] == [("keras_io_bf16", True)]
    report = build_report(settings, [], machine=MACHINE, versions={}, command="-")
    assert [row["key"] for row in report["not_measured"]] == ["keras_io_bf16"]
    assert "not measured in a float32 run" in report["not_measured"][0]["status"]


def test_bfloat16_runs_the_book_and_the_control_in_bfloat16_and_the_tutorials_as_published(monkeypatch):
    from cnnbook import hardware

    monkeypatch.setattr(hardware, "cpu_flags", lambda: {"avx2", "amx_bf16", "amx_tile"})
    settings = Settings(precision="bfloat16").resolved()
    assert dict((e.key, dtype) for e, dtype in settings.runs()) == {
        "keras_io": "float32", "keras_io_bf16": "mixed_bfloat16", "article": "float32",
        "book_part1": "mixed_bfloat16", "book_ensemble": "mixed_bfloat16"}
    assert settings.skipped() == ()
    cifar = Settings(dataset="cifar10", precision="bfloat16").resolved()
    assert dict((e.key, dtype) for e, dtype in cifar.runs()) == {"article": "float32", "book_cifar": "mixed_bfloat16",
                                                                 "book_resnet": "mixed_bfloat16"}


def test_bfloat16_is_refused_on_a_cpu_without_bfloat16_units_unless_forced(monkeypatch):
    from cnnbook import hardware

    monkeypatch.setattr(hardware, "cpu_flags", lambda: {"avx2", "avx512f"})
    with pytest.raises(ValueError, match=r"bfloat16 units|multiplies bfloat16 natively") as excinfo:
        Settings(precision="bfloat16").resolved()
    assert "--precision float32" in str(excinfo.value) and "--force-bfloat16" in str(excinfo.value)
    assert Settings(precision="bfloat16", force_bfloat16=True).resolved().precision == "bfloat16"
    assert spec.bfloat16_units() == ()


def test_auto_is_the_books_own_choice(monkeypatch):
    from cnnbook import hardware

    monkeypatch.setattr(hardware, "preferred_dtype", lambda: "mixed_bfloat16")
    assert Settings().resolved().precision == "bfloat16"
    monkeypatch.setattr(hardware, "preferred_dtype", lambda: "float32")
    assert Settings().resolved().precision == "float32"
    with pytest.raises(ValueError, match="precision"):
        Settings().runs()  # unresolved


def test_result_files_are_named_by_dataset_and_resolved_precision(tmp_path):
    assert result_paths(tmp_path, "mnist", "float32") == (tmp_path / "mnist-float32.json", tmp_path / "mnist-float32.md")
    assert result_paths(tmp_path, "cifar10", "bfloat16")[1].name == "cifar10-bfloat16.md"
    with pytest.raises(ValueError, match="precision"):
        result_paths(tmp_path, "mnist", "auto")


# --- Reports and bars from made-up rows ----------------------------------------------------


def _worker_result(key: str, train_seconds: float, cumulative: list[float], accuracies: list[float],
                   final: float, precision: str = "float32", correct: str | None = None) -> dict:
    """What a worker process returns, with made-up figures (only the arithmetic is under test)."""
    return {
        "key": key, "name": key, "status": "measured", "source": "-", "recipe": "-", "final_weights": "last epoch",
        "precision": precision, "parameters": 1000, "epochs": len(cumulative), "train_seconds": train_seconds,
        "seconds_per_epoch": train_seconds / len(cumulative), "epoch_seconds": cumulative,
        "cumulative_seconds": cumulative, "measuring_seconds_excluded": 1.0,
        "test_accuracy_by_epoch": accuracies, "val_accuracy_by_epoch": accuracies, "test_accuracy": final,
        "test_correct": correct if correct is not None else "1" * 10000,
        "inference_images_per_second": 5000.0, "inference_batch_size": 1024, "peak_rss_mib": 900.0,
        "rss_after_data_mib": 700.0, "data_sizes": {"training": 55000, "validation": 5000, "test": 10000},
    }


def _keras_io() -> dict:
    return _worker_result("keras_io", 300.0, [20.0 * i for i in range(1, 16)], [0.98] * 14 + [0.9922], 0.9922)


def _book(accuracies: list[float], final: float, precision: str = "mixed_bfloat16", epoch_seconds: float = 20.0) -> dict:
    cumulative = [epoch_seconds * i for i in range(1, 7)]
    book = _worker_result("book_part1", cumulative[-1], cumulative, accuracies, final, precision)
    book["config"] = {"origin": "training.default_config('mnist')", "epochs": 6, "batch_size": 128,
                      "learning_rate": 0.003, "schedule": "onecycle", "patience": 3, "augmentation": None}
    return book


def _report(settings: Settings, results: list[dict]) -> dict:
    return build_report(settings, results, machine=MACHINE, versions={"tensorflow": "x", "keras": "y"},
                        command="python benchmarks/compare.py", date="2026-01-01 00:00 UTC")


def _bar(report: dict, key: str) -> dict:
    return next(bar for bar in report["bars"] if bar["key"] == key)


def test_report_ratios_and_the_mnist_speed_bar_met():
    settings = Settings(models=("keras_io", "book_part1"), precision="bfloat16")
    report = _report(settings, [_keras_io(), _book([0.985, 0.990, 0.9925, 0.993, 0.996, 0.9955], 0.996)])
    keras_io, book = report["models"]
    assert report["reference"] == "keras_io" and keras_io["time_ratio"] == 1.0 and keras_io["error_ratio"] == 1.0
    assert keras_io["time_to_target_seconds"] == 300.0 and keras_io["epochs_to_target"] == 15
    assert book["time_ratio"] == pytest.approx(0.4)
    assert book["error_ratio"] == pytest.approx(0.004 / 0.0078)
    assert book["time_to_target_seconds"] == 60.0 and book["epochs_to_target"] == 3
    assert book["time_to_target_ratio"] == pytest.approx(0.2)
    assert book["time_to_reference_accuracy_seconds"] == 60.0
    speed = _bar(report, "mnist_speed")
    assert speed["met"] is True and speed["verdict"] == "met"
    assert speed["figures"]["time_ratio"] == pytest.approx(0.2) and speed["figures"]["test_accuracy"] == 0.996
    ensemble = _bar(report, "mnist_ensemble")
    assert ensemble["met"] is None and ensemble["verdict"] == "not judged (book_ensemble not part of this run)"
    assert report["not_measured"] == []  # the control was not asked for
    text = to_markdown(report)
    first = text.splitlines()[0]
    assert "bfloat16" in first and "Test CPU, 2 CPU cores" in first and "with bfloat16 units (amx_bf16)" in first
    named = report | {"machine": report["machine"] | {"cpu_family": "26", "cpu_model_number": "2"}}
    assert "**Machine:** Test CPU (CPU family 26, model 2), 2 CPU cores" in to_markdown(named).splitlines()[0]
    assert "| keras_io | float32 | 1,000 | 15 |" in text
    assert "| book_part1 | bfloat16 (mixed) | 1,000 | 6 | 2 min 00 s | 20.0 s | 60.0 s (epoch 3) | 99.60 % | 0.40× | 0.51× |" in text
    assert "at most 6 epochs, batch 128, one-cycle learning rate peaking at 0.003" in text
    assert "0.20× keras_io's 5 min 00 s; it ended at 99.60 %: **met**" in text
    assert not re.search(r"^#", text, flags=re.M), "the fragment is included under a heading: no headings of its own"
    lines = bar_lines(report)
    assert len(lines) == 3 and lines[0].endswith(": met.") and "not part of this run" in lines[1]
    assert "judged in float32 runs only" in lines[2]  # the inference bar, in this bfloat16 run


def test_the_mnist_speed_bar_is_not_met_when_slow_never_there_or_short_of_99_5():
    slow = _report(Settings(models=("keras_io", "book_part1"), precision="float32"),
                   [_keras_io(), _book([0.98, 0.985, 0.99, 0.99, 0.991, 0.9935], 0.996, "float32", epoch_seconds=30.0)])
    assert _bar(slow, "mnist_speed")["met"] is False  # 99.22 % only after 180 s = 0.60× keras_io's 300 s
    assert _bar(slow, "mnist_speed")["figures"]["time_ratio"] == pytest.approx(0.6)
    never = _report(Settings(models=("keras_io", "book_part1"), precision="float32"),
                    [_keras_io(), _book([0.98, 0.985, 0.99, 0.99, 0.991, 0.991], 0.991, "float32")])
    book = never["models"][1]
    assert book["time_to_target_seconds"] is None and book["time_to_target_ratio"] is None
    assert _bar(never, "mnist_speed")["met"] is False
    text = to_markdown(never)
    assert "| never |" in text and "never reached 99.22 %" in text and "**not met**" in text
    short = _report(Settings(models=("keras_io", "book_part1"), precision="float32"),
                    [_keras_io(), _book([0.985, 0.990, 0.9925, 0.993, 0.994, 0.9935], 0.994, "float32")])
    assert _bar(short, "mnist_speed")["met"] is False  # fast enough, but ends at 99.40 % < 99.50 %


def _ensemble_rows(ensemble_accuracy: float, b: int, c: int) -> list[dict]:
    """book_part1 and book_ensemble over 10,000 images; b only the ensemble gets right, c only the single model."""
    both = round(10000 * ensemble_accuracy) - b
    ensemble = "1" * both + "1" * b + "0" * c + "0" * (10000 - both - b - c)
    single = "1" * both + "0" * b + "1" * c + "0" * (10000 - both - b - c)
    return [
        _worker_result("book_part1", 100.0, [100.0], [single.count("1") / 10000], single.count("1") / 10000,
                       correct=single),
        _worker_result("book_ensemble", 500.0, [100.0 * i for i in range(1, 6)], [0.99] * 4 + [ensemble_accuracy],
                       ensemble_accuracy, correct=ensemble),
    ]


def test_the_ensemble_bar_needs_the_accuracy_and_a_significant_mcnemar_test():
    settings = Settings(models=("book_part1", "book_ensemble"), precision="float32")
    met = _bar(_report(settings, _ensemble_rows(0.998, b=30, c=5)), "mnist_ensemble")
    assert met["met"] is True and met["figures"]["only_model_right"] == 30 and met["figures"]["only_other_right"] == 5
    assert met["figures"]["mcnemar_p"] < 0.05 and "McNemar p = " in met["here"]
    assert met["figures"]["mcnemar_p"] == pytest.approx(2 * sum(math.comb(35, k) for k in range(6)) / 2**35)
    not_significant = _bar(_report(settings, _ensemble_rows(0.998, b=14, c=6)), "mnist_ensemble")
    assert not_significant["met"] is False and not_significant["figures"]["mcnemar_p"] == pytest.approx(0.1153, abs=1e-4)
    assert "14 only book_ensemble gets right and 6 only book_part1: McNemar p = 0.115" in not_significant["here"]
    too_low = _bar(_report(settings, _ensemble_rows(0.995, b=30, c=5)), "mnist_ensemble")
    assert too_low["met"] is False and too_low["figures"]["mcnemar_p"] < 0.05
    rows = _ensemble_rows(0.998, b=30, c=5)
    rows[1]["test_correct"] = None  # e.g. a report from before per-image results were kept
    assert _bar(_report(settings, rows), "mnist_ensemble")["verdict"] == "not judged (this run's results cannot say)"


def test_fashion_mnist_bar_judges_the_larger_network_that_chapter_10_chooses():
    settings = Settings(dataset="fashion_mnist", models=("book_wide",), precision="float32")
    assert [e.key for e in settings.selected()] == ["book_wide"]

    def wide(final):
        return {**_book([0.9, 0.92, 0.93, 0.93, 0.935, final], final, "float32"), "key": "book_wide"}

    (bar,) = _report(settings, [wide(0.936)])["bars"]
    assert bar["met"] is True and "ended at 93.60 %" in bar["here"]
    (bar,) = _report(settings, [wide(0.934)])["bars"]
    assert bar["met"] is False and bar["verdict"] == "not met"
    # The Part I model alone cannot meet it: the bar names the model the book chooses.
    (bar,) = _report(Settings(dataset="fashion_mnist", models=("book_part1",), precision="float32"),
                     [_book([0.9, 0.92, 0.93, 0.93, 0.935, 0.94], 0.94, "float32")])["bars"]
    assert bar["met"] is None and "book_wide not part of this run" in bar["verdict"]


def _cifar_rows(book_accuracies: list[float], final: float, precision: str) -> list[dict]:
    article = _worker_result("article", 100.0, [10.0 * i for i in range(1, 11)], [0.6] * 9 + [0.70], 0.70)
    book = _worker_result("book_cifar", 500.0, [50.0 * i for i in range(1, 11)], book_accuracies, final, precision)
    return [article, book]


def test_cifar_bars_accuracy_and_float32_time():
    fast = [0.5, 0.7, 0.8, 0.86, 0.88, 0.89, 0.895, 0.90, 0.905, 0.91]  # 85 % after 200 s = 2× the article's 100 s
    slow = [0.5, 0.6, 0.7, 0.75, 0.8, 0.82, 0.84, 0.85, 0.86, 0.87]  # 85 % after 400 s... at epoch 8: 4× exactly
    slower = [0.5, 0.6, 0.7, 0.75, 0.8, 0.82, 0.84, 0.845, 0.86, 0.87]  # epoch 9: 4.5×
    f32 = _report(Settings(dataset="cifar10", precision="float32"), _cifar_rows(fast, 0.91, "float32"))
    assert _bar(f32, "cifar10_accuracy")["met"] is True
    assert _bar(f32, "cifar10_speed")["met"] is True and _bar(f32, "cifar10_speed")["figures"]["time_ratio"] == 2.0
    assert _bar(_report(Settings(dataset="cifar10", precision="float32"), _cifar_rows(slow, 0.87, "float32")),
                "cifar10_speed")["met"] is True
    low = _report(Settings(dataset="cifar10", precision="float32"), _cifar_rows(slower, 0.87, "float32"))
    assert _bar(low, "cifar10_speed")["met"] is False and _bar(low, "cifar10_accuracy")["met"] is False
    bf16 = _report(Settings(dataset="cifar10", precision="bfloat16"), _cifar_rows(fast, 0.91, "mixed_bfloat16"))
    assert _bar(bf16, "cifar10_accuracy")["met"] is True
    speed = _bar(bf16, "cifar10_speed")
    assert speed["met"] is None and speed["verdict"] == "not judged (judged in float32 runs only; this run is bfloat16)"
    assert [row["key"] for row in bf16["not_measured"]] == ["book_ensemble"]  # the book has no CIFAR ensemble
    only_book = _report(Settings(dataset="cifar10", models=("book_cifar",), precision="float32"),
                        _cifar_rows(fast, 0.91, "float32")[1:])
    assert _bar(only_book, "cifar10_speed")["verdict"] == "not judged (article not part of this run)"


def test_the_report_spells_out_the_recipes_augmentation():
    book = _book([0.985, 0.990, 0.9925, 0.993, 0.996, 0.9955], 0.996, "float32")
    book["config"] |= {"augmentation": "flip_shift", "augmentation_settings": {
        "translation": 0.0625, "flip": True, "fill_mode": "reflect", "interpolation": "nearest"}}
    text = to_markdown(_report(Settings(models=("book_part1",), precision="float32"), [book]))
    assert ("augmentation 'flip_shift' (mirror images, shifts of up to 6.25 % of the side, 1.75 px of 28 "
            "(by whole pixels, reflect border))") in text
    book["config"]["augmentation_settings"] = {"translation": 0.1, "flip": False, "fill_mode": "constant",
                                               "interpolation": "bilinear"}
    text = to_markdown(_report(Settings(models=("book_part1",), precision="float32"), [book]))
    assert "(shifts of up to 10 % of the side, 2.8 px of 28 (bilinear interpolation, constant border))" in text
    assert "mirror images" not in text


def test_a_reduced_run_is_labelled_and_judges_no_bar():
    report = _report(Settings(train_size=500, precision="float32"),
                     [_keras_io(), _book([0.985, 0.990, 0.9925, 0.993, 0.996, 0.9955], 0.996, "float32")])
    assert report["reduced"] and all(bar["met"] is None for bar in report["bars"])
    assert _bar(report, "mnist_speed")["verdict"] == "not judged (reduced settings)"
    assert _bar(report, "mnist_speed")["here"]  # the numbers are still shown
    text = to_markdown(report)
    assert text.splitlines()[0].startswith("**Precision: float32** (every model in float32)")
    assert text.splitlines()[2].startswith("**Reduced settings")
    assert "keras_io_bf16" not in report["settings"]["models"]
    assert [row["key"] for row in report["not_measured"]] == ["keras_io_bf16"]
    assert "| keras-io Simple MNIST convnet in bfloat16 (control) | not measured in a float32 run" in text


def test_judge_bars_for_a_dataset_without_rows():
    assert [bar["key"] for bar in judge_bars("mnist", "float32", False, [])] == ["mnist_speed", "mnist_ensemble", "mnist_inference"]
    assert set(report_module.MODEL_FIELDS) >= REQUIRED_MODEL_FIELDS


# --- The Results page and the real thing ---------------------------------------------------


def test_results_page_includes_each_dataset_in_each_precision():
    page = (ROOT / "book" / "results.md").read_text(encoding="utf-8")
    included = set(re.findall(r"\.\./benchmarks/results/([\w-]+\.md)", page))
    assert included >= {f"{d}-{p}.md" for d in spec.DATASETS for p in spec.PRECISIONS}
    tables = {p.name for p in (ROOT / "benchmarks" / "results").glob("*.md")}
    assert tables <= included, "every committed table is on the Results page"
    # Every committed table computed in the precision its file name says, and names the machine.
    results = sorted((ROOT / "benchmarks" / "results").glob("*.json"))
    assert results, "the benchmark's results are committed"
    for path in results:
        # <dataset>-<precision>[-avx2][-onednn-off]: the kernels the table ran (bench.runner.kernel_class)
        stem = path.stem.replace("-onednn-off", "").removesuffix("-avx2")
        dataset, precision = stem.rsplit("-", 1)
        assert dataset in spec.DATASETS and precision in spec.PRECISIONS, path
        report = json.loads(path.read_text())
        book_rows = {m["precision"] for m in report["models"] if m["key"].startswith("book")}
        assert book_rows == {"float32" if precision == "float32" else "mixed_bfloat16"}, path
        assert report["machine"]["cpu"] and report["machine"]["cores"] >= 1, path


def test_compare_script_runs_two_cheap_models_end_to_end_with_tiny_settings(tmp_path):
    committed = {p: p.read_bytes() for p in (ROOT / "benchmarks" / "results").glob("*")}
    out = tmp_path / "bench"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--dataset", "mnist", "--models", "keras_io", "book_part1",
         "--precision", "float32", "--train-size", "300", "--validation-size", "200", "--test-size", "200",
         "--max-epochs", "1", "--out", str(out)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,  # from another folder than the repository's
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    stem = "mnist-float32" + _suffix()  # the kernels this machine ran (bench.runner.kernel_class)
    assert sorted(p.name for p in out.iterdir()) == [f"{stem}.json", f"{stem}.md"]
    report = json.loads((out / f"{stem}.json").read_text())
    assert report["machine"]["kernels"]["enabled"] is True  # --onednn on, the default
    assert REQUIRED_REPORT_FIELDS <= set(report) and set(report_module.REPORT_FIELDS) <= set(report)
    assert report["reduced"] and report["target"] == 0.9922 and report["reference"] == "keras_io"
    assert report["precision"] == "float32" and report["settings"]["precision"] == "float32"
    assert isinstance(report["machine"]["bfloat16_units"], list) and "cpu_family" in report["machine"]
    assert [m["key"] for m in report["models"]] == ["keras_io", "book_part1"]
    for model in report["models"]:
        missing = (REQUIRED_MODEL_FIELDS | set(report_module.MODEL_FIELDS)) - set(model)
        assert not missing, (model["key"], missing)
        assert model["precision"] == "float32"
        assert model["epochs"] == 1 and len(model["test_accuracy_by_epoch"]) == 1
        assert model["data_sizes"] == {"training": 300, "validation": 200, "test": 200}
        assert 0.0 <= model["test_accuracy"] <= 1.0 and model["parameters"] > 0
        assert len(model["test_correct"]) == 200 and set(model["test_correct"]) <= {"0", "1"}
        assert model["test_correct"].count("1") / 200 == pytest.approx(model["test_accuracy"])
        for name in ("train_seconds", "seconds_per_epoch", "inference_images_per_second", "peak_rss_mib"):
            assert math.isfinite(model[name]) and model[name] > 0, name
    assert report["models"][0]["time_ratio"] == 1.0
    # The last epoch's test accuracy (measured off the clock) is the final one for a last-epoch recipe.
    assert report["models"][0]["test_accuracy_by_epoch"][-1] == pytest.approx(report["models"][0]["test_accuracy"])
    assert [bar["verdict"] for bar in report["bars"]] == [
        "not judged (reduced settings)", "not judged (book_ensemble not part of this run)",
        "not judged (reduced settings)"]
    table = (out / f"{stem}.md").read_text()
    assert table.startswith("**Precision: float32**") and "**Reduced settings" in table
    assert "here training.default_config('mnist'): at most 1 epoch, batch 128" in table  # where the recipe lives
    assert "Bar (MNIST): the book's Part I model (book_part1) reaches 99.22 %" in proc.stdout
    assert ": not judged (reduced settings)." in proc.stdout
    assert {p: p.read_bytes() for p in (ROOT / "benchmarks" / "results").glob("*")} == committed


def test_the_colour_row_chooses_its_test_time_views_on_validation_and_reports_them(tmp_path):
    out = tmp_path / "bench"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--dataset", "cifar10", "--models", "book_cifar", "--precision", "float32",
         "--train-size", "256", "--validation-size", "200", "--test-size", "200", "--max-epochs", "1",
         "--out", str(out)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (row,) = json.loads((out / f"cifar10-float32{_suffix()}.json").read_text())["models"]
    scores = row["val_accuracy_by_views"]
    assert list(scores) == ["plain", "flip", "flip_shift"] and all(0.0 <= v <= 1.0 for v in scores.values())
    assert row["test_views"] == max(scores, key=scores.get)  # the validation split decides, the cheapest of ties
    assert row["test_correct"].count("1") / 200 == pytest.approx(row["test_accuracy"])  # the final, with views
    assert 0.0 <= row["test_accuracy_without_views"] <= 1.0
    assert f"test-time views '{row['test_views']}'" in row["final_weights"]
    table = (out / f"cifar10-float32{_suffix()}.md").read_text()
    assert f"test-time views chosen on the validation split (plain {100 * scores['plain']:.2f} %" in table
    assert "augmentation 'flip_shift' (mirror images, shifts of up to 6.25 % of the side, 2 px of 32 (by whole pixels" in table


def test_compare_script_refuses_bfloat16_on_a_cpu_without_units(tmp_path, monkeypatch):
    import compare  # benchmarks/compare.py, on sys.path above

    from cnnbook import hardware

    monkeypatch.setattr(hardware, "cpu_flags", lambda: set())
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")  # main() sets it; keep the test process's own value
    assert compare.main(["--precision", "bfloat16", "--out", str(tmp_path)]) == 2
    assert list(tmp_path.iterdir()) == []


def _suffix() -> str:
    """The file-name suffix an end-to-end run on this machine gets, with oneDNN on (compare.py's default)."""
    from cnnbook import hardware

    return "" if "avx512f" in hardware.vector_extensions() else "-avx2"


def test_table_file_names_say_which_kernels_ran():
    from bench.runner import kernel_class

    avx512 = {"vector_extensions": ["avx2", "fma", "avx512f"]}
    avx2 = {"vector_extensions": ["avx2", "fma"]}
    on, off = {"enabled": True}, {"enabled": False}
    assert kernel_class(avx512, on) == ""  # the tables measured first keep their names
    assert kernel_class(avx2, on) == "-avx2"
    assert kernel_class(avx2, off) == "-avx2-onednn-off"
    assert kernel_class(avx512, {"enabled": True, "max_isa": "AVX2"}) == "-avx2"  # the emulation
    assert kernel_class(avx512, off) == "-onednn-off"


def test_markdown_names_kernels_and_utilisation():
    settings = Settings(models=("book_part1",), precision="float32")
    book = dict(_book([0.99] * 6, 0.995, precision="float32"), train_flops=3e12, achieved_gflops=50.0)
    machine = dict(MACHINE, vector_extensions=["avx2", "fma"], float32_peak={"gflops": 100.0},
                   kernels={"enabled": True, "decided_by": "TF_ENABLE_ONEDNN_OPTS=1", "max_isa": None})
    report = build_report(settings, [book], machine=machine, versions={"tensorflow": "x", "keras": "y"},
                          command="c")
    text = to_markdown(report)
    assert "AVX2, no AVX-512. **Kernels:** oneDNN on (TF_ENABLE_ONEDNN_OPTS=1)." in text.splitlines()[0]
    assert "| 3,000 | 50.0 (50% of peak) |" in text


def test_inference_bar_is_judged_against_keras_io():
    settings = Settings(models=("keras_io", "book_part1"), precision="float32")
    keras_io, book = _keras_io(), _book([0.99] * 6, 0.995, precision="float32")
    book["inference_images_per_second"] = 4400.0  # 0.88x keras-io's 5000
    assert _bar(_report(settings, [keras_io, book]), "mnist_inference")["verdict"] == "not met"
    book["inference_images_per_second"] = 4600.0
    assert _bar(_report(settings, [keras_io, book]), "mnist_inference")["verdict"] == "met"

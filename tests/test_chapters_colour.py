"""Chapters 8 (CIFAR-10) and 9 (the article's code, repaired), executed with their CI parameters.

The values asserted on are the ones the chapters record with ``glue`` — the same
numbers their prose quotes — and the errors the appendix is meant to show.  The
``test_stored_full_run_*`` tests check the bars of the stored full runs (85 %
test accuracy, 20 minutes); the repository must hold one.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from cnnbook import book
import bookbuild
from conftest import code_cell, parameter_defaults, stream_text

ROOT = Path(__file__).resolve().parents[1]
CIFAR = ROOT / "notebooks" / "08_cifar10.ipynb"
ARTICLE = ROOT / "notebooks" / "A1_article_code_repaired.ipynb"

pytestmark = pytest.mark.notebook


@pytest.fixture(scope="module")
def cifar(chapter_runner):
    return chapter_runner("08_cifar10")


@pytest.fixture(scope="module")
def article(chapter_runner):
    return chapter_runner("A1_article_code_repaired")




def _errors(cell: dict) -> list[tuple[str, str]]:
    return [(o["ename"], o["evalue"]) for o in cell.get("outputs", []) if o.get("output_type") == "error"]


def _stored_full_run(path: Path) -> dict:
    """The stored chapter, which must hold a full run with glued values (otherwise the repository is defective)."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    meta = nb["metadata"].get("cnnbook", {})
    rerun = f"(run: PYTHONPATH=tools python -m bookbuild execute --all {path})"
    assert "source_hash" in meta and not meta.get("parameters"), f"the stored chapter holds no full-run outputs {rerun}"
    assert book.read_glued(nb), f"the stored chapter has no glued values {rerun}"
    return nb


# --- Chapter 9: the article's code, repaired ---------------------------------------


def test_article_ci_parameters_are_declared():
    assert bookbuild.ci_parameters(ARTICLE) == {"epochs": 1, "batch_size": 32, "train_size": 2000, "test_size": 1000, "seed": 0}


def test_article_listing_is_quoted_verbatim_and_not_executed():
    nb = json.loads(ARTICLE.read_text(encoding="utf-8"))
    seed = (ROOT.parent / "shared" / "seed" / "000_195f2fd645c2de5d.txt").read_text(encoding="utf-8")
    start = seed.index("```python") + len("```python\n")
    listing = seed[start : seed.index("```", start)].rstrip("\n")
    markdown = "".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    assert listing in markdown
    code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    assert "keras.datasets.cifar10.load_data()" not in code  # offline: the data come from cnnbook.data


def test_each_defect_fails_with_the_real_error(article):
    nb, _ = article
    expected = {
        "model = keras.models.Model(base_model)": ("TypeError", "positional argument"),
        "keras.optimizers.Adam(lr=0.001)": ("ValueError", "Argument(s) not recognized: {'lr': 0.001}"),
        "assert floor < 0.01": ("AssertionError", "never goes below 1.4612"),
        "assert untrained_accuracy > 0.5": ("AssertionError", "never trained"),
    }
    tagged = [c for c in nb["cells"] if "raises-exception" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == len(expected)
    for marker, (ename, fragment) in expected.items():
        cell = code_cell(nb, marker)
        assert "raises-exception" in cell["metadata"]["tags"]
        errors = _errors(cell)
        assert len(errors) == 1 and errors[0][0] == ename and fragment in errors[0][1], errors
    # No other cell fails.
    untagged = [c for c in nb["cells"] if c["cell_type"] == "code" and c not in tagged]
    assert not any(_errors(c) for c in untagged)


def test_keras_warns_about_the_silent_defects(article):
    nb, _ = article
    assert "Do not pass an `input_shape`" in stream_text(code_cell(nb, "base_model = keras.models.Sequential(["))
    assert "produced by a Softmax activation" in stream_text(code_cell(nb, "assert untrained_accuracy > 0.5"))
    assert "HDF5 file" in stream_text(code_cell(nb, 'cnn_model.h5'))
    assert "train_images / 255.0 -> float64" in stream_text(code_cell(nb, "scaled = train_images[:100] / 255.0"))


def test_article_values(article):
    nb, glued = article
    assert glued["loss_floor"] == pytest.approx(math.log(1 + 9 / math.e), abs=1e-4)
    assert glued["max_double_softmax_probability"] == pytest.approx(math.e / (math.e + 9))
    assert glued["untrained_accuracy"] < 0.2  # chance level for 10 classes
    assert glued["article_params"] == 122_570
    assert 0.5 < glued["article_dense_share"] < 0.6
    assert glued["article_train_size"] == 2000 and glued["article_epochs"] == 1
    assert glued["article_test_accuracy"] > 0.15  # one epoch on 2,000 images: above chance
    assert glued["article_overfit_gap"] == pytest.approx(
        glued["article_final_train_accuracy"] - glued["article_final_val_accuracy"], abs=1e-9
    )
    text = stream_text(code_cell(nb, "model.save(path)"))
    assert "reloaded model predicts the same: True" in text
    assert "same architecture as cnnbook.models.article_cnn: True" in stream_text(code_cell(nb, "same architecture"))



def test_article_exercise_solutions(article):
    """The coding exercises' solutions (issue 15) run with the chapter and glue their answers."""
    _, glued = article
    # ex-A1-1: the repaired listing declares the real input, returns logits and learns something.
    assert glued["ex09_fixed_input_shape"] == [32, 32, 3]
    assert glued["ex09_fixed_last_activation"] == "linear"
    assert glued["ex09_fixed_val_accuracy"] > 0.2  # chance is 0.1 (5,000 validation images)
    # ex-A1-3: a Rescaling wrapper adds no parameters and gives the same logits on raw pixels.
    assert glued["ex09_wrapper_params"] == 122_570
    assert glued["ex09_wrapper_same_logits"] is True

def test_stored_full_run_article():
    glued = book.read_glued(_stored_full_run(ARTICLE))
    assert glued["article_train_size"] == 45_000 and glued["article_epochs"] == 10
    assert 0.6 < glued["article_test_accuracy"] < 0.8  # the TensorFlow tutorial's "> 70 %" territory
    assert glued["article_overfit_gap"] > 0.0  # it overfits
    assert glued["chapter_seconds"] < 5 * 60


# --- Chapter 8: CIFAR-10 -------------------------------------------------------------


def test_cifar_ci_parameters_are_declared():
    params = bookbuild.ci_parameters(CIFAR)
    assert params["epochs"] == 1 and params["train_size"] == 2000 and params["test_size"] == 1000
    assert params["article_epochs"] == 1 and params["benchmark_steps"] <= 2


def test_cifar_defaults_are_the_books_recipe():
    """The chapter's full-run parameters and training.default_config("cifar10") (used by the benchmark) agree."""
    from cnnbook import training

    defaults = parameter_defaults(json.loads(CIFAR.read_text(encoding="utf-8")))
    recipe = training.default_config("cifar10")
    for name in ("epochs", "batch_size", "learning_rate", "weight_decay"):
        assert defaults[name] == getattr(recipe, name), name
    assert recipe.patience >= recipe.epochs  # the chapter trains every epoch of its schedule


def test_cifar_model_and_normalisation(cifar):
    nb, glued = cifar
    assert glued["article_params"] == 122_570
    # The Normalization layer holds its statistics as constants (no weights): same count as without it.
    assert glued["chapter_params"] == 293_882  # width 32: the formula is checked in test_models_cifar
    text = stream_text(code_cell(nb, "data.channel_statistics(splits.x_train)"))
    for channel in ("red", "green", "blue"):
        assert channel in text
    # The float64 means are the real ones; the float32 running sum is off (at CI size it has not stalled yet,
    # but the chapter glues the value a stall would give, 2**24 / values per channel).
    assert 0.4 < glued["mean_blue"] < glued["mean_green"] < glued["mean_red"] < 0.55
    assert glued["float32_stall_mean"] == pytest.approx(min(1.0, 2**24 / glued["values_per_channel"]))


def test_cifar_exercise_solution(cifar):
    _, glued = cifar
    # ex-08-1: the stem is half the first stage's width; 3×3×3 weights per kernel, no bias; BN: 4 per channel.
    filters = glued["ex08_stem_filters"]
    assert glued["ex08_conv_numbers"] == 3 * 3 * 3 * filters
    assert glued["ex08_bn_numbers"] == 4 * filters and glued["ex08_bn_trained"] == 2 * filters
    assert glued["ex08_normalize_numbers"] == 0


def test_augmentation_is_per_image(cifar):
    nb, glued = cifar
    text = stream_text(code_cell(nb, "pad_crop = keras.Sequential"))
    assert "RandomCrop: both copies cropped the same way:        True" in text
    assert "RandomTranslation: both copies shifted the same way: False" in text
    assert glued["augmentation_rate"] > 0


def test_precision_benchmark_is_recorded(cifar):
    nb, glued = cifar
    assert glued["rate_float32"] > 0 and glued["rate_best"] >= glued["rate_float32"]
    assert glued["speedup_best"] == pytest.approx(glued["rate_best"] / glued["rate_float32"])
    assert "fastest here:" in stream_text(code_cell(nb, "dtype, fused_batchnorm = fastest"))


def _chosen_views(nb: dict, glued: dict) -> str:
    """The test-time views the chapter printed, checked to be the validation split's best (cheapest of ties)."""
    text = stream_text(code_cell(nb, "test_views, view_accuracy = evaluation.choose_views("))
    chosen = text.split("-> test-time views: ")[1].strip().strip("'")
    scores = {views: glued[f"val_{views}"] for views in ("plain", "flip", "flip_shift")}
    assert all(0.0 <= v <= 1.0 for v in scores.values())
    assert chosen == max(scores, key=scores.get)  # dicts keep order: plain, flip, flip_shift
    return chosen


def test_cifar_evaluation_values(cifar):
    nb, glued = cifar
    _chosen_views(nb, glued)
    assert glued["test_images"] == 1000
    assert glued["cifar_test_low"] <= glued["cifar_test_accuracy"] <= glued["cifar_test_high"]
    assert 0.0 <= glued["worst_recall"] <= glued["best_recall"] <= 1.0
    assert glued["matched_epochs"] >= 1
    assert glued["full_margin"] == pytest.approx(glued["cifar_test_accuracy"] - glued["article_test_accuracy"])
    assert glued["best_epoch"] == 1  # one CI epoch


def test_stored_full_run_cifar():
    """The bars of the issue, on the stored full run: ≥ 85 % test accuracy, whole chapter ≤ 20 minutes."""
    nb = _stored_full_run(CIFAR)
    glued = book.read_glued(nb)
    assert glued["test_images"] == 10_000
    assert glued["cifar_test_accuracy"] >= 0.85
    _chosen_views(nb, glued)
    # The per-channel means of the training split, in float64 (a float32 sum once gave 0.3641 for all three).
    assert glued["mean_red"] == pytest.approx(0.4914, abs=2e-3)
    assert glued["mean_green"] == pytest.approx(0.4822, abs=2e-3)
    assert glued["mean_blue"] == pytest.approx(0.4465, abs=2e-3)
    assert glued["float32_mean_error"] > 0.05
    assert glued["chapter_seconds"] <= 20 * 60
    assert nb["metadata"]["cnnbook"]["executed_seconds"] <= 20 * 60 + 60  # + kernel start-up
    # The equal-time run really had no more time than the article's network. Who wins it depends on how
    # many epochs fit (one on the 2-core AMD EPYC of the stored run, several with AMX), so the prose
    # reports the measured difference rather than claiming a margin.
    assert glued["matched_train_seconds"] <= glued["article_train_seconds"] * 1.1
    assert glued["matched_margin"] == pytest.approx(glued["matched_test_accuracy"] - glued["article_test_accuracy"])
    assert glued["full_margin"] >= 0.10


def test_appendix_names_the_colour_chapters_pooling():
    """The appendix describes chapter 8's model as it is built (it once said 'average' for a max pooling)."""
    import inspect

    from cnnbook import models

    pooling = inspect.signature(models.cifar_cnn).parameters["global_pooling"].default
    name = {"max": "global max pooling", "avg": "global average pooling"}[pooling]
    other = {"max": "global average pooling", "avg": "global max pooling"}[pooling]
    text = "\n".join("".join(c["source"]) for c in json.loads(ARTICLE.read_text(encoding="utf-8"))["cells"]
                     if c["cell_type"] == "markdown")
    assert name in text and other not in text

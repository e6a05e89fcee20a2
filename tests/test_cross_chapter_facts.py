"""Prose about another chapter's recipe or model agrees with the recipe.

A chapter that names another chapter's optimiser, augmentation, epochs or
cached model states a fact that lives in ``cnnbook.training`` (or in that
chapter's code and stored run). Each check below finds such statements in
the markdown cells of the stored chapters and compares them with the recipe
objects — ``training.default_config``, ``training.cifar_cnn_config``,
``training.ensemble_config``, ``training.make_optimizer``,
``training.AUGMENTATIONS`` — or with the code and glued values of the
chapter they are about, never with constants typed here. A recipe change
that leaves such a sentence behind fails here (issue 33).
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path

import pytest

from cnnbook import book, training

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
CHAPTERS = sorted(NOTEBOOKS.glob("[0-9A]*.ipynb"))
# Image sides: a shift fraction times the side is a shift in pixels.
CIFAR_PIXELS = 32
MNIST_PIXELS = 28


def _notebook(stem: str) -> dict:
    return json.loads(
        (NOTEBOOKS / f"{stem}.ipynb").read_text(encoding="utf-8")
    )


def _markdown(nb: dict) -> str:
    return "\n".join(
        "".join(c["source"])
        for c in nb["cells"]
        if c["cell_type"] == "markdown"
    )


def _code(nb: dict) -> str:
    """The code cells as one Python source (IPython magics become ``pass``)."""
    source = "\n".join(
        "".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"
    )
    return re.sub(r"^(\s*)[%!].*$", r"\1pass", source, flags=re.MULTILINE)


def _sentences(text: str) -> list[str]:
    """The sentences of some markdown, line breaks folded."""
    flat = re.sub(r"\s+", " ", text)
    return [s for s in re.split(r"(?<=[.!?:;])\s+(?=[A-Z*(`{])", flat) if s]


MARKDOWN = {path.stem: _markdown(_notebook(path.stem)) for path in CHAPTERS}


def _optimiser(config: training.TrainConfig) -> tuple[str, bool]:
    """The optimiser class a recipe builds, and whether it is Nesterov."""
    optimizer = training.make_optimizer(config, steps_per_epoch=10)
    return type(optimizer).__name__, bool(
        getattr(optimizer, "nesterov", False)
    )


def _named_optimisers(phrase: str) -> set[str]:
    """The optimisers a phrase of prose names."""
    names = set()
    if re.search(r"\bAdamW\b", phrase):
        names.add("AdamW")
    if re.search(r"\bAdam\b", phrase):
        names.add("Adam")
    sgd = r"\bSGD\b|stochastic (?:\{term\}`)?gradient descent"
    if re.search(sgd, phrase):
        names.add("SGD")
    return names


def _shift_pixels(config: training.TrainConfig, side: int) -> int:
    """A recipe augmentation's largest shift in whole pixels (0: no shifts)."""
    preset = training.AUGMENTATIONS[config.augmentation]
    return 0 if preset is None else round(preset["translation"] * side)


def _flips(config: training.TrainConfig) -> bool:
    preset = training.AUGMENTATIONS[config.augmentation]
    return bool(preset and preset["flip"])


# --- optimisers ------------------------------------------------------------

RECIPES: dict[str, Callable[[], training.TrainConfig]] = {
    'cifar_cnn_config("cifar10")': lambda: training.cifar_cnn_config(
        "cifar10"
    ),
    'cifar_cnn_config("fashion_mnist")': lambda: training.cifar_cnn_config(
        "fashion_mnist"
    ),
    'default_config("mnist")': lambda: training.default_config("mnist"),
    'default_config("fashion_mnist")': lambda: training.default_config(
        "fashion_mnist"
    ),
    'default_config("cifar10")': lambda: training.default_config("cifar10"),
    "ensemble_config": lambda: training.ensemble_config("mnist"),
}

# Where prose attributes an optimiser to a recipe: (pattern, recipe), the
# pattern's group 1 being the description.
OPTIMISER_CLAIMS: tuple[tuple[str, str], ...] = (
    # "chapter 8's optimiser (one-cycle AdamW, ...)", issue 33's chapter 10
    (r"chapter 8's optimi[sz]er \(([^)]*)\)", 'cifar_cnn_config("cifar10")'),
    (r"chapter 8's optimi[sz]er,? ([^.;—]*)", 'cifar_cnn_config("cifar10")'),
    # "chapter 8 trains this network with SGD and Nesterov momentum"
    (
        r"chapter 8 trains (?:this|its|the) (?:network|model|colour model) "
        r"with ([^,.;—]*)",
        'cifar_cnn_config("cifar10")',
    ),
    # chapter 8 about itself: "The model trains with **stochastic gradient
    # descent with Nesterov momentum**"
    (
        r"The model trains with (\*\*[^*]*\*\*|[^(.;]*)",
        'cifar_cnn_config("cifar10")',
    ),
    # "`training.cifar_cnn_config("fashion_mnist")`: one-cycle AdamW for ..."
    (
        r'`training\.cifar_cnn_config\("fashion_mnist"\)`: ([^.;—]*)',
        'cifar_cnn_config("fashion_mnist")',
    ),
    (
        r'`training\.cifar_cnn_config\("cifar10"\)`: ([^.;—]*)',
        'cifar_cnn_config("cifar10")',
    ),
    # "(`training.ensemble_config`: one-cycle Adam, batch 128)"
    (r"`training\.ensemble_config`: ([^)]*)\)", "ensemble_config"),
)


def _optimiser_claims() -> list[tuple[str, str, str]]:
    found = []
    for stem, text in MARKDOWN.items():
        flat = re.sub(r"\s+", " ", text)
        for pattern, recipe in OPTIMISER_CLAIMS:
            for match in re.finditer(pattern, flat, flags=re.IGNORECASE):
                if _named_optimisers(match.group(1)):
                    found.append((stem, recipe, match.group(1)))
    return found


def test_prose_names_an_optimiser_for_some_recipe():
    """Guards the checks below against matching nothing after a rewording."""
    recipes = {recipe for _, recipe, _ in _optimiser_claims()}
    assert 'cifar_cnn_config("cifar10")' in recipes, (
        "no sentence names chapter 8's optimiser any more"
    )
    assert len(recipes) >= 2


@pytest.mark.parametrize(
    "stem, recipe, phrase",
    _optimiser_claims(),
    ids=lambda value: value[:40] if isinstance(value, str) else None,
)
def test_optimiser_named_for_a_recipe_is_the_one_it_builds(
    stem, recipe, phrase
):
    name, nesterov = _optimiser(RECIPES[recipe]())
    named = _named_optimisers(phrase)
    assert named == {name}, (
        f"{stem}: {phrase!r} names {sorted(named)}, but {recipe} builds {name}"
    )
    if "Nesterov" in phrase:
        assert nesterov, (
            f"{stem}: {phrase!r} says Nesterov; {recipe}'s {name} is not"
        )
    if re.search(r"one-cycle", phrase):
        assert RECIPES[recipe]().schedule == "onecycle", f"{stem}: {phrase!r}"
    batch = re.search(r"batch (\d+)", phrase)
    if batch:
        assert int(batch.group(1)) == RECIPES[recipe]().batch_size, (
            f"{stem}: {phrase!r}"
        )


def test_chapter_8_names_the_optimiser_its_recipe_builds():
    """Chapter 8 names the optimiser its own recipe builds."""
    name, nesterov = _optimiser(training.cifar_cnn_config("cifar10"))
    text = re.sub(r"\s+", " ", MARKDOWN["08_cifar10"])
    own = re.search(r"The model trains with (\*\*[^*]*\*\*|[^(.;]*)", text)
    assert own, "chapter 8 no longer says what its model trains with"
    assert _named_optimisers(own.group(1)) == {name}
    assert ("Nesterov" in own.group(1)) == nesterov


# --- augmentation, epochs, patience, batch size ----------------------------


def _same_recipe_but_dataset(
    a: training.TrainConfig, b: training.TrainConfig
) -> list[str]:
    return [
        f.name
        for f in fields(a)
        if f.name != "seed" and getattr(a, f.name) != getattr(b, f.name)
    ]


def test_a_dataset_swap_is_not_called_the_same_recipe_when_it_is_not():
    """'Only `dataset=...` differs': true of the code, not of the recipe."""
    mnist = training.default_config("mnist")
    for stem, text in MARKDOWN.items():
        flat = re.sub(r"\s+", " ", text)
        for match in re.finditer(r'only `dataset="(\w+)"` differs', flat):
            differing = _same_recipe_but_dataset(
                training.default_config(match.group(1)), mnist
            )
            assert not differing, (
                f"{stem}: says only the dataset differs, but default_config("
                f"{match.group(1)!r}) also differs in {differing}"
            )
        for match in re.finditer(
            r"is the training chapter's recipe with `dataset=\"(\w+)\"`", flat
        ):
            differing = _same_recipe_but_dataset(
                training.default_config(match.group(1)), mnist
            )
            assert not differing, (
                f"{stem}: {match.group(0)!r}; recipes differ in {differing}"
            )


def test_chapter_7_names_how_the_fashion_recipe_differs():
    """Chapter 7 names each way its recipe differs from MNIST's, truly."""
    mnist, fashion = (
        training.default_config("mnist"),
        training.default_config("fashion_mnist"),
    )
    sentences = _sentences(MARKDOWN["07_beyond_digits"])
    claims = {
        "more epochs": (
            r"(?:gives Fashion-MNIST|trains for) more (?:\{term\}`)?epochs",
            fashion.epochs > mnist.epochs,
        ),
        "no shifts": (
            r"without the digits' (?:random )?shifts",
            _shift_pixels(fashion, MNIST_PIXELS) == 0
            and _shift_pixels(mnist, MNIST_PIXELS) > 0,
        ),
        "less patience": (r"less patience", fashion.patience < mnist.patience),
    }
    differing = set(_same_recipe_but_dataset(fashion, mnist))
    named = {
        "more epochs": "epochs",
        "no shifts": "augmentation",
        "less patience": "patience",
    }
    for claim, (pattern, holds) in claims.items():
        said = [s for s in sentences if re.search(pattern, s)]
        if said:
            assert holds, (
                f"chapter 7 says {claim!r} ({said[0]!r}); default_config "
                "does not bear it out"
            )
        elif named[claim] in differing:
            pytest.fail(
                f"the Fashion-MNIST recipe differs from MNIST's in "
                f"{named[claim]}; chapter 7 does not say so"
            )
    # Whatever else differs is named too (learning rate, batch size, ...).
    unnamed = differing - set(named.values())
    assert not unnamed, f"chapter 7 does not name these differences: {unnamed}"


def test_chapter_8_describes_the_augmentation_and_batch_its_recipe_uses():
    config = training.cifar_cnn_config("cifar10")
    preset = training.AUGMENTATIONS[config.augmentation]
    text = re.sub(r"\s+", " ", MARKDOWN["08_cifar10"])
    pixels = [
        int(m)
        for groups in re.findall(
            r"shift by whole pixels, up to (\d+)|"
            r"shifts them by up to (\d+) px",
            text.replace(" pixels", " px"),
        )
        for m in groups
        if m
    ]
    assert pixels, "chapter 8 no longer names its shift"
    assert set(pixels) == {_shift_pixels(config, CIFAR_PIXELS)}
    assert "horizontal flip" in text and preset["flip"]
    assert ("reflecting the image" in text) == (
        preset["fill_mode"] == "reflect"
    )
    assert (preset["interpolation"] == "nearest") == ("whole pixels" in text)
    for batch in re.findall(r"The batch size, (\d+),", text):
        assert int(batch) == config.batch_size


def test_chapter_10_describes_the_fashion_recipe_of_chapter_8s_network():
    """Its optimiser, augmentation and glued epochs are the recipe's."""
    config = training.cifar_cnn_config("fashion_mnist")
    text = re.sub(r"\s+", " ", MARKDOWN["10_improving"])
    description = re.search(
        r'`training\.cifar_cnn_config\("fashion_mnist"\)`: (.*?);', text
    )
    assert description, (
        "chapter 10 no longer describes the larger network's recipe"
    )
    phrase = description.group(1)
    if "mirror images as its only augmentation" in phrase:
        assert _flips(config) and _shift_pixels(config, MNIST_PIXELS) == 0
    if "{glue:text}`wide_epochs`" in phrase:
        glued = book.read_glued(_notebook("10_improving"))
        # patience covers the run: no early stop
        assert glued["wide_epochs"] == config.epochs
    # "chapter 8 trains its colour model with augmentation, for longer"
    # (than the study's epochs)
    longer = "chapter 8 trains its colour model with augmentation, for longer"
    if longer in text:
        colour = training.cifar_cnn_config("cifar10")
        glued = book.read_glued(_notebook("10_improving"))
        assert (
            colour.augmentation != "none"
            and colour.epochs > glued["base_epochs"]
        )


def test_mnist_recipe_augmentation_named_in_prose_is_the_recipes():
    """Chapters 5 and 12 name the MNIST recipe's key in AUGMENTATIONS."""
    recipe = training.default_config("mnist").augmentation
    found = 0
    for stem in ("05_training", "12_hardening"):
        for sentence in _sentences(MARKDOWN[stem]):
            if re.search(r"recipe|Digits shifted", sentence):
                for key in re.findall(
                    r'`training\.AUGMENTATIONS\["(\w+)"\]`', sentence
                ):
                    found += 1
                    assert key == recipe, (
                        f"{stem}: {sentence!r} names {key!r}; "
                        f"the recipe uses {recipe!r}"
                    )
    assert found, "no chapter names the MNIST recipe's augmentation any more"


def test_ensemble_members_train_longer_than_the_single_model():
    """Chapter 9: members train for more epochs than the single model."""
    text = re.sub(r"\s+", " ", MARKDOWN["09_ensembles"])
    if re.search(
        r"\{glue:text\}`member_epochs` epochs instead of the single model's",
        text,
    ):
        assert (
            training.ensemble_config("mnist").epochs
            > training.default_config("mnist").epochs
        )


# --- cached models ---------------------------------------------------------


def _saves_its_model(stem: str, dataset: str) -> bool:
    """Whether a chapter saves a model at ``training.model_path(dataset)``."""
    for node in ast.walk(ast.parse(_code(_notebook(stem)))):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "save_model"
            and node.args
        ):
            target = node.args[1] if len(node.args) > 1 else None
            if (
                isinstance(target, ast.Call)
                and isinstance(target.func, ast.Attribute)
                and target.func.attr == "model_path"
                and target.args
                and isinstance(target.args[0], ast.Constant)
                and target.args[0].value == dataset
            ):
                return True
    return False


def _loads_cached(stem: str, dataset: str) -> bool:
    code = _code(_notebook(stem))
    return bool(
        re.search(
            rf'training\.(cached_model|trained_model)\("{dataset}"', code
        )
    )


NO_CACHE = re.compile(
    r"(?:no|not a|never a) cached (?:CIFAR-10|colour|cifar10) model|"
    r"(?:CIFAR-10|colour) model is (?:not|never) cached",
    re.IGNORECASE,
)


def test_no_chapter_denies_the_cached_model_chapter_8_saves():
    """'No cached CIFAR-10 model' (chapter 11's): chapter 8 saves one."""
    chapter8_caches = _saves_its_model("08_cifar10", "cifar10")
    for stem, text in MARKDOWN.items():
        for sentence in _sentences(text):
            if NO_CACHE.search(sentence):
                assert not chapter8_caches, (
                    f"{stem}: {sentence!r} — but chapter 8 saves its model "
                    "at training.model_path('cifar10', ...)"
                )


def test_statements_that_chapter_8_caches_its_model_hold():
    """Chapter 8 saves its model, and chapter 13 loads it, as prose says."""
    said = [
        (stem, s)
        for stem, text in MARKDOWN.items()
        for s in _sentences(text)
        if re.search(
            r"caches the model it trains|Chapter 8 saves its trained model", s
        )
    ]
    assert said, "no chapter says where chapter 8's model goes any more"
    assert _saves_its_model("08_cifar10", "cifar10")
    for stem, sentence in said:
        if (
            "deployment chapter loads it" in sentence
            or "`training.cached_model` finds it" in sentence
        ):
            assert _loads_cached("13_deployment", "cifar10"), (
                f"{stem}: {sentence!r}"
            )


# --- results of other chapters ---------------------------------------------


def test_chapter_1_claims_edge_like_kernels_only_if_chapter_11_finds_them():
    """Learned first-layer kernels are edge-like only if chapter 11 says so."""
    verdict = book.read_glued(_notebook("11_inside_the_cnn"))["edge_verdict"]
    for sentence in _sentences(MARKDOWN["01_what_a_cnn_sees"]):
        if re.match(
            r"A trained network's first layer learns kernels much like these",
            sentence,
        ):
            assert verdict == "more", (
                f"chapter 1 asserts {sentence!r}; chapter 11 finds them "
                f"{verdict!r} edge-like"
            )


def test_equal_time_is_claimed_only_where_the_times_were_equal():
    """'The same time' as the article's network only within 10 % (ch. 8)."""
    glued = book.read_glued(_notebook("08_cifar10"))
    ratio = glued["matched_train_seconds"] / glued["article_train_seconds"]
    equal = abs(ratio - 1) <= 0.10
    for stem, text in MARKDOWN.items():
        for sentence in _sentences(text):
            if (
                re.search(r"\b(?:same|equal) (?:training )?time\b", sentence)
                and "article" in sentence
            ):
                negated = re.search(r"\bnot\b|\bno more\b", sentence)
                assert equal or negated, (
                    f"{stem}: {sentence!r} — chapter 8's short run had "
                    f"{ratio:.0%} of the article's training time"
                )

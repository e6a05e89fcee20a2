"""Attacks, corruptions and adversarial training (cnnbook.robustness), on small models and images."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from cnnbook import robustness

EPSILONS = (0.0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5)


def _images(n: int = 64, seed: int = 0) -> np.ndarray:
    """Digit-like images: a bright ring or bar of random position and size on black, float32 in [0, 1]."""
    rng = np.random.default_rng(seed)
    rows, cols = np.indices((28, 28))
    out = np.zeros((n, 28, 28, 1), dtype=np.float32)
    for i in range(n):
        cy, cx, r = rng.uniform(10, 18), rng.uniform(10, 18), rng.uniform(4, 8)
        ring = np.abs(np.hypot(rows - cy, cols - cx) - r) < 1.5
        bar = (np.abs(cols - cx) < 1.5) & (np.abs(rows - cy) < r + 2)
        out[i, ..., 0] = np.where(ring if i % 2 else bar, rng.uniform(0.7, 1.0), 0.0)
    return out


def _linear_binary_model(seed: int = 0) -> keras.Model:
    """A linear softmax classifier with two classes, fixed random weights (logits out)."""
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(2)])
    w, b = model.layers[-1].get_weights()
    model.layers[-1].set_weights([np.random.default_rng(seed).normal(0, 0.3, w.shape).astype("float32"), b])
    return model


def _small_cnn(seed: int = 0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.Input((28, 28, 1)),
        keras.layers.Conv2D(4, 3, activation="relu"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Flatten(),
        keras.layers.Dense(10),
    ])


def _accuracy(model: keras.Model, x: np.ndarray, y: np.ndarray) -> float:
    return float((model.predict(x, verbose=0).argmax(axis=1) == y).mean())


# ---------------------------------------------------------------------------------------- attacks

def test_fgsm_with_zero_epsilon_changes_nothing():
    x = _images(8)
    model = _small_cnn()
    out = robustness.fgsm(model, x, np.zeros(8, dtype=int), 0.0)
    assert out.dtype == x.dtype and np.array_equal(out, x)
    assert np.array_equal(robustness.pgd(model, x, np.zeros(8, dtype=int), 0.0), x)


@pytest.mark.parametrize("attack", ["fgsm", "pgd"])
@pytest.mark.parametrize("epsilon", [0.03, 0.1, 0.3])
def test_attacks_stay_in_the_box_and_in_range(attack, epsilon):
    x = _images(16)
    model = _small_cnn()
    y = model.predict(x, verbose=0).argmax(axis=1)
    out = getattr(robustness, attack)(model, x, y, epsilon)
    assert out.shape == x.shape and out.dtype == x.dtype
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert np.abs(out - x).max() <= epsilon + 1e-6
    assert np.abs(out - x).max() > 0  # it did move something


def test_fgsm_moves_every_free_pixel_by_epsilon():
    """Where the gradient is not zero and clipping does not bite, FGSM moves a pixel by exactly ε."""
    x = np.full((4, 28, 28, 1), 0.5, dtype=np.float32)
    model = _linear_binary_model()
    out = robustness.fgsm(model, x, np.array([0, 1, 0, 1]), 0.1)
    assert np.allclose(np.abs(out - x), 0.1, atol=1e-6)


def test_larger_epsilon_never_raises_accuracy_for_a_linear_model():
    """Guaranteed for FGSM on a two-class linear model: the margin falls monotonically with ε.

    The true-class margin is linear in the image; FGSM moves each pixel against the sign of its
    weight by min(ε, room left in [0, 1]), which only grows with ε.
    """
    x = _images(200, seed=1)
    model = _linear_binary_model(seed=1)
    y = model.predict(x, verbose=0).argmax(axis=1)
    y[::5] = 1 - y[::5]  # some images start out misclassified
    accuracies = [robustness.adversarial_accuracy(model, x, y, e) for e in EPSILONS]
    assert accuracies[0] == pytest.approx(_accuracy(model, x, y))
    assert all(b <= a for a, b in zip(accuracies, accuracies[1:])), accuracies
    assert accuracies[-1] < accuracies[0]
    # And per image: once wrong at some ε, wrong at every larger ε.
    correct = np.stack([model.predict(robustness.fgsm(model, x, y, e), verbose=0).argmax(axis=1) == y
                        for e in EPSILONS])
    assert not np.any(correct[1:] & ~correct[:-1])


def test_pgd_with_one_full_step_and_no_random_start_is_fgsm():
    x = _images(16)
    model = _small_cnn()
    y = np.arange(16) % 10
    a = robustness.fgsm(model, x, y, 0.1)
    b = robustness.pgd(model, x, y, 0.1, steps=1, step_size=0.1, random_start=False)
    assert np.allclose(a, b, atol=1e-6)


def test_pgd_is_at_least_as_strong_as_fgsm_on_a_small_model():
    x = _images(128, seed=2)
    model = _small_cnn(seed=2)
    y = model.predict(x, verbose=0).argmax(axis=1)  # everything starts out "correct"
    for epsilon in (0.05, 0.1, 0.2):
        fgsm_acc = robustness.adversarial_accuracy(model, x, y, epsilon)
        pgd_acc = robustness.adversarial_accuracy(model, x, y, epsilon, attack="pgd", steps=20)
        assert pgd_acc <= fgsm_acc, (epsilon, pgd_acc, fgsm_acc)
    assert pgd_acc < 1.0


def test_pgd_is_deterministic_given_its_seed():
    x = _images(8)
    model = _small_cnn()
    y = np.arange(8)
    a = robustness.pgd(model, x, y, 0.1, steps=2, seed=3)
    assert np.array_equal(a, robustness.pgd(model, x, y, 0.1, steps=2, seed=3))
    assert not np.array_equal(a, robustness.pgd(model, x, y, 0.1, steps=2, seed=4))


@pytest.mark.parametrize("kwargs, message", [
    ({"epsilon": -0.1}, "epsilon"),
    ({"epsilon": float("nan")}, "epsilon"),
    ({"labels": np.zeros(3, dtype=int)}, "labels"),
    ({"images": np.zeros((4, 28, 28, 1), dtype=np.float32) + 2}, r"\[0, 1\]"),
    ({"images": np.zeros((4, 28, 28), dtype=np.float32)}, "N×H×W×C"),
    ({"images": np.zeros((4, 28, 28, 1), dtype=np.uint8)}, "floats"),
])
def test_attacks_reject_bad_input(kwargs, message):
    args = {"images": _images(4), "labels": np.zeros(4, dtype=int), "epsilon": 0.1, **kwargs}
    with pytest.raises(ValueError, match=message):
        robustness.fgsm(_small_cnn(), args["images"], args["labels"], args["epsilon"])


def test_adversarial_accuracy_rejects_unknown_attacks_and_options():
    with pytest.raises(ValueError, match="attack"):
        robustness.adversarial_accuracy(_small_cnn(), _images(4), np.zeros(4), 0.1, attack="cw")
    with pytest.raises(ValueError, match="options"):
        robustness.adversarial_accuracy(_small_cnn(), _images(4), np.zeros(4), 0.1, steps=3)
    with pytest.raises(ValueError, match="steps"):
        robustness.pgd(_small_cnn(), _images(4), np.zeros(4), 0.1, steps=0)


# ------------------------------------------------------------------------------------ corruptions

@pytest.mark.parametrize("kind", list(robustness.CORRUPTIONS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_corruptions_keep_shape_dtype_and_range(kind, dtype):
    x = _images(16).astype(dtype)
    for severity in robustness.SEVERITIES:
        out = robustness.corrupt(x, kind, severity, seed=1)
        assert out.shape == x.shape and out.dtype == x.dtype
        assert out.min() >= 0.0 and out.max() <= 1.0
        assert not np.array_equal(out, x), (kind, severity)


@pytest.mark.parametrize("kind", list(robustness.CORRUPTIONS))
def test_severity_zero_is_the_identity_and_a_copy(kind):
    x = _images(4)
    out = robustness.corrupt(x, kind, 0)
    assert np.array_equal(out, x) and out is not x


@pytest.mark.parametrize("kind", list(robustness.CORRUPTIONS))
def test_higher_severity_moves_images_further(kind):
    x = _images(64)
    distances = [float(np.abs(robustness.corrupt(x, kind, s, seed=5) - x).mean()) for s in range(6)]
    assert distances[0] == 0
    assert all(b > a for a, b in zip(distances, distances[1:])), distances


@pytest.mark.parametrize("kind", list(robustness.CORRUPTIONS))
def test_corruptions_are_deterministic_given_the_seed(kind):
    x = _images(8)
    assert np.array_equal(robustness.corrupt(x, kind, 3, seed=7), robustness.corrupt(x, kind, 3, seed=7))


def test_random_corruptions_depend_on_the_seed():
    x = _images(8)
    for kind in ("gaussian_noise", "shift", "rotation", "occlusion"):
        assert not np.array_equal(robustness.corrupt(x, kind, 3, seed=1), robustness.corrupt(x, kind, 3, seed=2))


def test_full_inversion_inverts():
    x = _images(4)
    assert np.allclose(robustness.corrupt(x, "inversion", 5), 1 - x)


@pytest.mark.parametrize("kind, severity, message", [
    ("fog", 1, "Unknown corruption"),
    ("blur", 6, "severity"),
    ("blur", -1, "severity"),
    ("blur", 2.5, "severity"),
    ("blur", True, "severity"),
])
def test_corrupt_rejects_unknown_kinds_and_severities(kind, severity, message):
    with pytest.raises(ValueError, match=message):
        robustness.corrupt(_images(2), kind, severity)


def test_accuracy_under_corruption_is_clean_accuracy_at_severity_zero():
    x = _images(32)
    model = _small_cnn()
    y = np.arange(32) % 10
    assert robustness.accuracy_under_corruption(model, x, y, "blur", 0) == pytest.approx(_accuracy(model, x, y))


# ------------------------------------------------------------------------- training-time defences

# The augmentation chapter 12 trains with: its settings there (rotations of up to 12°, zooms and shifts
# of up to 12 %).
AUGMENTATION = {"rotation": 12.0, "zoom": 0.12, "translation": 0.12}


def _elongated_blob(size: int = 64) -> np.ndarray:
    """One image: a Gaussian blob, long along the rows, in the middle of a black square."""
    rows, cols = np.indices((size, size)) - (size - 1) / 2
    return np.exp(-0.5 * ((rows / 7.0) ** 2 + (cols / 3.0) ** 2)).astype("float32")[None, ..., None]


def _geometry(images: np.ndarray) -> dict[str, np.ndarray]:
    """Per image, from its intensity moments: centre (row, column), spread along rows and columns,
    and the orientation of its long axis in degrees."""
    x = images[..., 0].astype("float64")
    rows, cols = np.indices(x.shape[1:])
    mass = x.sum(axis=(1, 2))
    cy = (x * rows).sum(axis=(1, 2)) / mass
    cx = (x * cols).sum(axis=(1, 2)) / mass
    dy, dx = rows - cy[:, None, None], cols - cx[:, None, None]
    myy, mxx = (x * dy**2).sum(axis=(1, 2)) / mass, (x * dx**2).sum(axis=(1, 2)) / mass
    mxy = (x * dy * dx).sum(axis=(1, 2)) / mass
    return {"row": cy, "column": cx, "height": np.sqrt(myy), "width": np.sqrt(mxx),
            "angle": 0.5 * np.degrees(np.arctan2(2 * mxy, myy - mxx))}


def _draws(layers, n: int = 1000) -> dict[str, np.ndarray]:
    """Each random layer's draws, recovered from its effect on n identical images.

    Each layer runs alone on the batch, as it would as the first step of its stack: a layer draws
    from its own seed generator, so its draws for a batch do not depend on the layers before it.
    """
    batch = np.repeat(_elongated_blob(), n, axis=0)
    measured = {"RandomRotation": ("angle",), "RandomTranslation": ("row", "column"),
                "RandomZoom": ("height", "width")}
    draws = {}
    for layer in layers:
        geometry = _geometry(np.asarray(layer(batch, training=True)))
        for name in measured[type(layer).__name__]:
            draws[name] = geometry[name]
    return draws


def _largest_cross_correlation(draws: dict[str, np.ndarray]) -> float:
    """The largest |r| between draws of different layers (rotation, shift, zoom)."""
    layer_of = {"angle": "rotation", "row": "shift", "column": "shift", "height": "zoom", "width": "zoom"}
    names = sorted(draws)
    return max(abs(float(np.corrcoef(draws[a], draws[b])[0, 1]))
               for i, a in enumerate(names) for b in names[i + 1:] if layer_of[a] != layer_of[b])


def test_the_one_digit_augmentation_is_models():
    assert not hasattr(robustness, "digit_augmentation")
    assert "digit_augmentation" not in robustness.__all__


def test_digit_augmentation_draws_rotation_shift_and_zoom_independently():
    from cnnbook import models

    stack = models.digit_augmentation(0, **AUGMENTATION)
    draws = _draws(stack.layers)
    assert set(draws) == {"angle", "row", "column", "height", "width"}
    # The measurement sees each layer: the angles span the ±12° range, the shifts several pixels.
    assert 10 < np.abs(draws["angle"]).max() < 13
    assert np.ptp(draws["row"]) > 10 and np.ptp(draws["column"]) > 10
    assert np.ptp(draws["height"]) > 0.1 * draws["height"].mean()
    assert _largest_cross_correlation(draws) < 0.1


def test_one_seed_for_every_layer_correlates_the_draws():
    """The old robustness.digit_augmentation: one seed for its three layers. The measurement sees it."""
    layers = keras.layers
    one_seed = [layers.RandomRotation(12 / 360, fill_mode="constant", seed=0),
                layers.RandomTranslation(0.12, 0.12, fill_mode="constant", seed=0),
                layers.RandomZoom(0.12, 0.12, fill_mode="constant", seed=0)]
    assert _largest_cross_correlation(_draws(one_seed)) > 0.9


# ---------------------------------------------------------------- judging a defence over seeds

def test_defence_effect_needs_every_seed_significant_and_a_difference_beyond_the_spread():
    # Ahead in both seeds, every paired test significant, mean difference 0.05 > spread 0.02.
    assert robustness.defence_effect([0.90, 0.92], [0.85, 0.87], [1e-6, 1e-4]) == "better"
    assert robustness.defence_effect([0.85, 0.87], [0.90, 0.92], [1e-6, 1e-4]) == "worse"
    # One seed's paired test is not significant: no measurable difference.
    assert robustness.defence_effect([0.90, 0.92], [0.85, 0.87], [1e-6, 0.2]) == "no measurable difference"
    # Significant in each seed, but the difference of means (0.01) is within the spread (0.04).
    assert robustness.defence_effect([0.90, 0.94], [0.89, 0.93], [0.01, 0.01]) == "no measurable difference"
    # The mean difference (0.13) beyond both spreads (0.10, 0.11), but the first seed's defence is
    # behind its control: not counted.
    assert robustness.defence_effect([0.6, 0.7, 0.7], [0.61, 0.5, 0.5], [0.01] * 3) == "no measurable difference"
    assert robustness.defence_effect([0.62, 0.7, 0.7], [0.61, 0.5, 0.5], [0.01] * 3) == "better"
    assert robustness.defence_effect([0.9, 0.9], [0.9, 0.9], [1.0, 1.0]) == "no measurable difference"
    # The level is the one given.
    assert robustness.defence_effect([0.90, 0.92], [0.85, 0.87], [0.03, 0.03], level=0.01) == "no measurable difference"


@pytest.mark.parametrize("bad, match", [
    (([0.9], [0.8], [0.01]), "two or more seeds"),
    (([0.9, 0.9], [0.8], [0.01, 0.01]), "one value per seed"),
    (([0.9, 0.9], [0.8, 0.8], [0.01, 1.5]), "p-values"),
    (([0.9, np.nan], [0.8, 0.8], [0.01, 0.01]), "finite"),
])
def test_defence_effect_refuses_bad_input(bad, match):
    with pytest.raises(ValueError, match=match):
        robustness.defence_effect(*bad)
    with pytest.raises(ValueError, match="level"):
        robustness.defence_effect([0.9, 0.9], [0.8, 0.8], [0.01, 0.01], level=0.0)


def test_safety_and_claim_verdicts_follow_the_effects():
    verdicts = {(c, a): robustness.safety_verdict(c, a)
                for c in robustness.DEFENCE_EFFECTS for a in robustness.DEFENCE_EFFECTS}
    assert set(verdicts.values()) == set(robustness.SAFETY_VERDICTS)
    assert verdicts["better", "better"] == "safer against corruptions and attacks"
    assert verdicts["better", "worse"] == "safer against corruptions but less safe against attacks"
    assert verdicts["no measurable difference", "better"] == "safer against attacks only"
    assert verdicts["worse", "no measurable difference"] == "less safe"
    assert verdicts["no measurable difference", "no measurable difference"] == "not measurably safer"
    assert robustness.claim_verdict("better", "better") == "holds"
    assert robustness.claim_verdict("worse", "better") == "partly holds"
    assert robustness.claim_verdict("no measurable difference", "worse") == "does not hold"
    with pytest.raises(ValueError, match="corruption must be one of"):
        robustness.safety_verdict("safer", "better")
    with pytest.raises(ValueError, match="attack must be one of"):
        robustness.claim_verdict("better", "Better")


def test_fgsm_training_trains_the_wrapped_classifier_and_predicts_like_it():
    x = _images(64)
    y = (np.arange(64) % 2).astype("int64")
    inner = _small_cnn()
    wrapper = robustness.FGSMTraining(inner, epsilon=0.1)
    assert wrapper.built
    before = [w.copy() for w in inner.get_weights()]
    wrapper.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                    metrics=["accuracy"])
    history = wrapper.fit(x, y, epochs=1, batch_size=16, verbose=0)
    assert set(history.history) >= {"loss", "accuracy"}
    assert any(not np.array_equal(a, b) for a, b in zip(before, inner.get_weights()))
    assert np.allclose(wrapper.predict(x, verbose=0), inner.predict(x, verbose=0))


def test_fgsm_training_survives_a_save_and_load(tmp_path):
    wrapper = robustness.FGSMTraining(_small_cnn(), epsilon=0.2, adversarial_fraction=0.25)
    path = tmp_path / "m.keras"
    wrapper.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, robustness.FGSMTraining)
    assert loaded.epsilon == 0.2 and loaded.adversarial_fraction == 0.25
    x = _images(4)
    assert np.allclose(loaded.predict(x, verbose=0), wrapper.predict(x, verbose=0))


@pytest.mark.parametrize("kwargs", [{"epsilon": 0.0}, {"adversarial_fraction": 0.0}, {"adversarial_fraction": 1.5}])
def test_fgsm_training_rejects_bad_settings(kwargs):
    with pytest.raises(ValueError):
        robustness.FGSMTraining(_small_cnn(), **kwargs)

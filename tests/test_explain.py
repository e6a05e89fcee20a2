"""cnnbook.explain: saliency maps and their checks, on tiny untrained models (no training, fast)."""

from __future__ import annotations

import functools

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from cnnbook import explain, models  # noqa: E402

MAPS = {
    "saliency": explain.saliency,
    "smoothgrad": functools.partial(explain.smoothgrad, samples=3),
    "grad_cam": explain.grad_cam,
    "occlusion": functools.partial(explain.occlusion, patch=7, stride=7),
}


@pytest.fixture(scope="module")
def twins():
    """The Part I network, narrowed, as a Functional and a Sequential model with the same weights."""
    keras.utils.set_random_seed(1)
    functional = models.mnist_cnn(filters=(4, 8), dropout=0.0)
    sequential = models.mnist_cnn_sequential(filters=(4, 8), dropout=0.0)
    sequential.set_weights(functional.get_weights())
    return functional, sequential


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    return rng.random((3, 28, 28, 1)).astype(np.float32)


@pytest.fixture(scope="module")
def left_half_model():
    """Looks only at the left half of an 8×8 image: the right half cannot matter."""
    keras.utils.set_random_seed(2)
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Cropping2D(((0, 0), (0, 4)))(inputs)
    x = keras.layers.Conv2D(3, 3, padding="same", activation="tanh", bias_initializer="ones")(x)
    outputs = keras.layers.Dense(3)(keras.layers.Flatten()(x))
    return keras.Model(inputs, outputs)


def test_same_output_for_the_twins(twins, images):
    functional, sequential = twins
    np.testing.assert_allclose(functional.predict(images, verbose=0), sequential.predict(images, verbose=0),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", MAPS)
def test_maps_have_the_input_shape_and_are_finite(twins, images, name):
    functional, _ = twins
    maps = MAPS[name](functional, images)
    assert maps.shape == images.shape[:3] and maps.dtype == np.float32
    assert np.isfinite(maps).all()
    if name != "occlusion":  # occlusion is signed: covering a patch can raise the probability
        assert (maps >= 0).all()
    assert np.ptp(maps) > 0, "a map that does not vary says nothing"


@pytest.mark.parametrize("name", MAPS)
def test_sequential_and_functional_give_the_same_map(twins, images, name):
    functional, sequential = twins
    np.testing.assert_allclose(MAPS[name](functional, images), MAPS[name](sequential, images), rtol=1e-4, atol=1e-6)


def test_colour_images_give_one_map_per_image():
    keras.utils.set_random_seed(3)
    model = models.cifar_cnn(width=4, dropout=0.0)
    x = np.random.default_rng(1).random((2, 32, 32, 3)).astype(np.float32)
    for name in ("saliency", "grad_cam", "occlusion"):
        maps = MAPS[name](model, x)
        assert maps.shape == (2, 32, 32) and np.isfinite(maps).all()
    assert explain.last_conv_layer(model) == "stage3b_conv"


@pytest.mark.parametrize("name", ["saliency", "smoothgrad", "occlusion"])
def test_an_ignored_half_gets_zero_saliency(left_half_model, name):
    x = np.random.default_rng(4).random((4, 8, 8, 1)).astype(np.float32)
    method = functools.partial(explain.occlusion, patch=2, stride=2) if name == "occlusion" else MAPS[name]
    maps = method(left_half_model, x)
    right, left = np.abs(maps[:, :, 4:]), np.abs(maps[:, :, :4])
    assert right.max() <= 1e-6 * max(left.max(), 1e-12) + 1e-9
    assert left.max() > 0


def test_target_class_is_explained(twins, images):
    functional, _ = twins
    predicted = functional.predict(images, verbose=0).argmax(axis=1)
    np.testing.assert_allclose(explain.saliency(functional, images), explain.saliency(functional, images, predicted))
    other = (predicted + 1) % 10
    assert not np.allclose(explain.saliency(functional, images), explain.saliency(functional, images, other))
    with pytest.raises(ValueError, match="target"):
        explain.saliency(functional, images, target=[0, 1])


def test_last_conv_layer_is_found_and_used(twins, images):
    functional, sequential = twins
    assert explain.last_conv_layer(functional) == "stage2_conv"
    assert explain.last_conv_layer(sequential) == sequential.layers[4].name
    np.testing.assert_allclose(explain.grad_cam(functional, images),
                               explain.grad_cam(functional, images, layer="stage2_conv"))
    earlier = explain.grad_cam(functional, images, layer="stage1_conv")
    assert earlier.shape == images.shape[:3]


def test_a_model_without_convolutions_is_refused(images):
    dense = models.mlp(hidden=(8,))
    with pytest.raises(ValueError, match="no Conv2D"):
        explain.last_conv_layer(dense)
    with pytest.raises(ValueError, match="no Conv2D"):
        explain.grad_cam(dense, images)
    with pytest.raises(ValueError, match="no layer 'nope'"):
        explain.grad_cam(dense, images, layer="nope")
    assert explain.saliency(dense, images).shape == (3, 28, 28)  # gradients need no convolution


def test_bad_images_are_refused(twins):
    functional, _ = twins
    with pytest.raises(ValueError, match="N×H×W×C"):
        explain.saliency(functional, np.zeros((28, 28, 1)))
    with pytest.raises(ValueError, match="patch"):
        explain.occlusion(functional, np.zeros((1, 28, 28, 1)), patch=40)


def test_layer_outputs(twins, images):
    functional, sequential = twins
    out = explain.layer_outputs(functional, images, ["stage1_relu", "stage2_relu"])
    assert out["stage1_relu"].shape == (3, 14, 14, 4) and out["stage2_relu"].shape == (3, 7, 7, 8)
    seq = explain.layer_outputs(sequential, images, [sequential.layers[3].name])
    np.testing.assert_allclose(seq[sequential.layers[3].name], out["stage1_relu"], rtol=1e-5, atol=1e-6)


def test_rank_correlation():
    rng = np.random.default_rng(0)
    a = rng.random((2, 5, 5))
    np.testing.assert_allclose(explain.rank_correlation(a, a), [1.0, 1.0])
    np.testing.assert_allclose(explain.rank_correlation(a, -a), [-1.0, -1.0])
    np.testing.assert_allclose(explain.rank_correlation(a, 2 * a + 3), [1.0, 1.0])  # ranks only
    assert explain.rank_correlation(a, np.zeros_like(a)).tolist() == [0.0, 0.0]
    with pytest.raises(ValueError, match="same shape"):
        explain.rank_correlation(a, a[:1])


def test_deletion_curve_follows_the_map(left_half_model):
    x = np.random.default_rng(5).random((6, 8, 8, 1)).astype(np.float32)
    labels = left_half_model.predict(x, verbose=0).argmax(axis=1)
    ignored_first = np.zeros((6, 8, 8))
    ignored_first[:, :, 4:] = 1.0  # the right half, which the model ignores, is deleted first
    curve = explain.deletion_curve(left_half_model, x, labels, ignored_first, fractions=[0.0, 0.25, 0.5, 1.0])
    assert curve.accuracy[0] == 1.0
    np.testing.assert_allclose(curve.probability[:, 1], curve.probability[:, 0], rtol=1e-5)
    np.testing.assert_allclose(curve.probability[:, 2], curve.probability[:, 0], rtol=1e-5)
    assert curve.probability.shape == (6, 4) and curve.image_areas.shape == (6,)
    assert 0.0 <= curve.area <= 1.0
    with pytest.raises(ValueError, match="fractions"):
        explain.deletion_curve(left_half_model, x, labels, ignored_first, fractions=[0.5, 0.2])
    with pytest.raises(ValueError, match="maps"):
        explain.deletion_curve(left_half_model, x, labels, ignored_first[:, :4])


def test_randomisation_check_leaves_the_model_alone(twins, images):
    functional, _ = twins
    before = [w.copy() for w in functional.get_weights()]
    rows = explain.randomisation_check(functional, images, explain.grad_cam)
    assert [name for name, _ in rows] == ["trained", "logits", "stage2_conv", "stage1_conv"]
    assert all(r.shape == (3,) for _, r in rows)
    assert (rows[0][1] == 1.0).all() and all(((-1.0 <= r) & (r <= 1.0)).all() for _, r in rows)
    for a, b in zip(before, functional.get_weights()):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="re-initialise"):
        explain.randomisation_check(keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten()]),
                                    images, explain.saliency)


@pytest.mark.parametrize("name", MAPS)
def test_mixed_bfloat16_models_are_explained_like_float32_ones(twins, images, name):
    """The book trains in mixed_bfloat16 where the CPU has it: every map must work there too.

    (Grad-CAM once took its gradient with respect to a float32 copy of the bfloat16 feature maps,
    which the logits do not depend on: the gradient was None.)
    """
    functional, _ = twins
    keras.utils.set_random_seed(1)
    mixed = models.mnist_cnn(filters=(4, 8), dropout=0.0, dtype="mixed_bfloat16")
    mixed.set_weights(functional.get_weights())
    maps, reference = MAPS[name](mixed, images), MAPS[name](functional, images)
    assert maps.shape == reference.shape and maps.dtype == np.float32 and np.isfinite(maps).all()
    assert np.ptp(maps) > 0
    # bfloat16 keeps about 3 significant digits: the maps agree in where they are large.
    assert np.corrcoef(maps.ravel(), reference.ravel())[0, 1] > 0.9

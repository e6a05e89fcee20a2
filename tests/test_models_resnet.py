"""Tests of the residual networks in :mod:`cnnbook.models`: ``residual_block``,
``cifar_resnet`` and their cost (``cnnbook.compute.forward_flops``).

Small and CPU-only (widths of 2 to 8 channels): shapes, parameter counts and
operation counts from the architecture's formulas, the shortcut's maths (an
identity adds ``x`` itself, a projection is a 1×1 convolution), the plain
variant and the three ways of down-sampling.
"""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from cnnbook import compute, models  # noqa: E402


def _layers_of(model, kind):
    return [layer for layer in model.layers if isinstance(layer, kind)]


def _block_model(input_shape, filters, stride=1, **kwargs):
    inputs = keras.Input(shape=input_shape)
    outputs = models.residual_block(inputs, filters, stride, name="b", **kwargs)
    return keras.Model(inputs, outputs)


def _expected_parameters(channels, num_classes, width, blocks, plain):
    """The formula, written out: 3×3 convolutions without bias, 4 BN numbers per
    channel (gamma, beta, moving mean and variance), a 1×1 projection (+ BN) where a
    block changes the width, and the Dense layer (weights and biases)."""
    total = 9 * channels * width + 4 * width  # stem
    c_in = width
    for mult in (1, 2, 4):
        c_out = width * mult
        for _ in range(blocks):
            total += 9 * c_in * c_out + 4 * c_out + 9 * c_out * c_out + 4 * c_out
            if not plain and c_in != c_out:
                total += c_in * c_out + 4 * c_out
            c_in = c_out
    return total + c_in * num_classes + num_classes


# --- residual_block ----------------------------------------------------------------


def test_identity_shortcut_adds_the_input_itself_and_nothing_else():
    model = _block_model((6, 6, 4), 4)
    convs = _layers_of(model, keras.layers.Conv2D)
    assert [conv.kernel_size for conv in convs] == [(3, 3), (3, 3)]  # no 1×1 projection
    (add,) = _layers_of(model, keras.layers.Add)
    assert add.input[1] is model.inputs[0]  # the shortcut is x, untouched
    # Parameters: two 3×3 convolutions and two BN layers only.
    assert model.count_params() == 2 * (9 * 4 * 4 + 4 * 4)


def test_identity_block_with_zero_convolutions_is_exactly_relu_of_its_input():
    model = _block_model((6, 6, 4), 4)
    for conv in _layers_of(model, keras.layers.Conv2D):
        conv.kernel.assign(np.zeros(conv.kernel.shape, "float32"))
    x = np.random.default_rng(0).normal(size=(3, 6, 6, 4)).astype("float32")
    out = np.asarray(model(x, training=False))
    # Fresh BN (moving mean 0, variance 1, gamma 1, beta 0) maps 0 to 0, so F(x) = 0.
    np.testing.assert_array_equal(out, np.maximum(x, 0.0))
    assert (out == 0).any() and (out > 0).any()  # the ReLU did something either way


def test_block_output_is_relu_of_residual_plus_input():
    model = _block_model((6, 6, 4), 4)
    rng = np.random.default_rng(1)
    for layer in model.layers:
        for weight in layer.weights:
            if "variance" in weight.path:
                weight.assign(rng.uniform(0.5, 2.0, weight.shape).astype("float32"))
            else:
                weight.assign(rng.normal(scale=0.3, size=weight.shape).astype("float32"))
    residual = keras.Model(model.inputs[0], model.get_layer("b_bn2").output)
    x = rng.normal(size=(2, 6, 6, 4)).astype("float32")
    f = np.asarray(residual(x, training=False))
    assert np.abs(f).max() > 0.1  # F is not trivially zero here
    np.testing.assert_allclose(np.asarray(model(x, training=False)), np.maximum(f + x, 0.0), rtol=0, atol=1e-6)


@pytest.mark.parametrize("filters, stride, out_shape", [(8, 1, (6, 6, 8)), (4, 2, (3, 3, 4)), (8, 2, (3, 3, 8))])
def test_projection_shortcut_when_the_shape_changes(filters, stride, out_shape):
    model = _block_model((6, 6, 4), filters, stride)
    assert model.output_shape[1:] == out_shape
    proj = model.get_layer("b_proj_conv")
    assert proj.kernel_size == (1, 1) and proj.strides == (stride, stride) and not proj.use_bias
    assert model.get_layer("b_conv1").strides == (stride, stride)
    (add,) = _layers_of(model, keras.layers.Add)
    assert add.input[1] is model.get_layer("b_proj_bn").output
    assert model.count_params() == (9 * 4 * filters + 9 * filters * filters + 2 * 4 * filters
                                    + 4 * filters + 4 * filters)


def test_plain_block_has_no_shortcut():
    model = _block_model((6, 6, 4), 8, 2, plain=True)
    assert not _layers_of(model, keras.layers.Add)
    assert [conv.kernel_size for conv in _layers_of(model, keras.layers.Conv2D)] == [(3, 3), (3, 3)]
    assert model.output_shape[1:] == (3, 3, 8)


def test_block_can_use_keras_batch_normalisation_and_its_own_names():
    model = _block_model((6, 6, 4), 4, fused_batchnorm=False)
    bns = _layers_of(model, keras.layers.BatchNormalization)
    assert len(bns) == 2 and not any(isinstance(bn, models.FusedBatchNormalization) for bn in bns)
    inputs = keras.Input(shape=(6, 6, 4))
    unnamed = keras.Model(inputs, models.residual_block(models.residual_block(inputs, 4), 4))
    assert len(_layers_of(unnamed, keras.layers.Add)) == 2  # Keras names the layers: no clash


@pytest.mark.parametrize(
    "filters, stride, match", [(0, 1, "filters"), (4, 0, "stride")],
)
def test_block_rejects_bad_arguments(filters, stride, match):
    with pytest.raises(ValueError, match=match):
        models.residual_block(keras.Input(shape=(6, 6, 4)), filters, stride)


def test_block_rejects_a_tensor_that_is_not_an_image():
    with pytest.raises(ValueError, match="height, width, channels"):
        models.residual_block(keras.Input(shape=(16,)), 4)


# --- cifar_resnet ------------------------------------------------------------------


def test_cifar_resnet_shapes_and_logits():
    model = models.cifar_resnet(width=4)
    assert model.name == "cifar_resnet"
    assert model.input_shape == (None, 32, 32, 3) and model.output_shape == (None, 10)
    assert model.layers[-1].name == "logits" and model.layers[-1].activation is keras.activations.linear
    assert isinstance(model.get_layer("global_pool"), keras.layers.GlobalAveragePooling2D)
    grey = models.cifar_resnet((28, 28, 1), num_classes=7, width=2, blocks=1)
    assert np.asarray(grey(np.zeros((2, 28, 28, 1), "float32"))).shape == (2, 7)


@pytest.mark.parametrize("width, blocks", [(4, 1), (4, 2), (8, 2), (2, 3)])
@pytest.mark.parametrize("plain", [False, True])
def test_cifar_resnet_parameter_count_follows_the_formula(width, blocks, plain):
    model = models.cifar_resnet(width=width, blocks=blocks, plain=plain)
    assert model.count_params() == _expected_parameters(3, 10, width, blocks, plain)
    # Depth: the stem, two 3×3 convolutions per block, the Dense layer.
    three_by_three = [c for c in _layers_of(model, keras.layers.Conv2D) if c.kernel_size == (3, 3)]
    assert len(three_by_three) + 1 == 6 * blocks + 2


def test_default_cifar_resnet_is_a_resnet14_with_he_et_al_widths():
    model = models.cifar_resnet()
    assert model.count_params() == _expected_parameters(3, 10, 16, 2, False)
    widths = [c.filters for c in _layers_of(model, keras.layers.Conv2D) if c.kernel_size == (3, 3)]
    assert widths == [16] * 5 + [32] * 4 + [64] * 4
    assert models.cifar_resnet((28, 28, 1)).count_params() == _expected_parameters(1, 10, 16, 2, False)


def test_only_the_width_changing_blocks_project():
    model = models.cifar_resnet(width=4, blocks=2)
    projections = [c.name for c in _layers_of(model, keras.layers.Conv2D) if c.kernel_size == (1, 1)]
    assert projections == ["stage2_block1_proj_conv", "stage3_block1_proj_conv"]
    assert len(_layers_of(model, keras.layers.Add)) == 6


def test_plain_cifar_resnet_has_the_same_depth_and_no_shortcut():
    residual = models.cifar_resnet(width=4, blocks=2)
    plain = models.cifar_resnet(width=4, blocks=2, plain=True)
    assert plain.name == "cifar_plain"
    assert not _layers_of(plain, keras.layers.Add)
    assert not [c for c in _layers_of(plain, keras.layers.Conv2D) if c.kernel_size == (1, 1)]
    main_path = [c.name for c in _layers_of(residual, keras.layers.Conv2D) if c.kernel_size == (3, 3)]
    assert [c.name for c in _layers_of(plain, keras.layers.Conv2D)] == main_path


def _stage_sizes(model, blocks):
    return [tuple(model.get_layer(f"stage{s}_block{blocks}_relu").output.shape[1:3]) for s in (1, 2, 3)]


@pytest.mark.parametrize(
    "input_shape, halved", [((32, 32, 3), [(32, 32), (16, 16), (8, 8)]), ((28, 28, 1), [(28, 28), (14, 14), (7, 7)]),
                            ((9, 9, 3), [(9, 9), (5, 5), (3, 3)])],
)
def test_downsampling_choices_give_the_expected_sizes(input_shape, halved):
    by_stride = models.cifar_resnet(input_shape, width=2, blocks=1, downsample="stride")
    by_pool = models.cifar_resnet(input_shape, width=2, blocks=1, downsample="maxpool")
    full = models.cifar_resnet(input_shape, width=2, blocks=1, downsample="none")
    assert _stage_sizes(by_stride, 1) == _stage_sizes(by_pool, 1) == halved
    assert _stage_sizes(full, 1) == [tuple(input_shape[:2])] * 3
    assert not _layers_of(by_stride, keras.layers.MaxPooling2D)
    assert [p.name for p in _layers_of(by_pool, keras.layers.MaxPooling2D)] == ["stage2_pool", "stage3_pool"]
    for model in (by_pool, full):
        assert all(c.strides == (1, 1) for c in _layers_of(model, keras.layers.Conv2D))
    # The same weights whichever way the image is halved.
    assert by_stride.count_params() == by_pool.count_params() == full.count_params()


def test_cifar_resnet_normalizer_dtype_and_keras_batch_normalisation():
    normalizer = models.channel_normalizer([0.5, 0.4, 0.3], [0.2, 0.2, 0.2])
    model = models.cifar_resnet(width=2, blocks=1, normalizer=normalizer, dtype="mixed_bfloat16",
                                fused_batchnorm=False)
    assert model.layers[1] is normalizer
    assert model.get_layer("stem_conv").compute_dtype == "bfloat16"
    assert model.get_layer("logits").compute_dtype == "float32"
    assert not any(isinstance(layer, models.FusedBatchNormalization) for layer in model.layers)
    assert model.count_params() == _expected_parameters(3, 10, 2, 1, False)  # the normaliser has no weights


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"input_shape": (32, 32)}, "height, width, channels"),
        ({"input_shape": (3, 3, 3)}, "at least 4"),
        ({"num_classes": 1}, "num_classes"),
        ({"width": 0}, "width"),
        ({"blocks": 0}, "blocks"),
        ({"downsample": "avgpool"}, "downsample must be one of 'stride', 'maxpool', 'none'"),
        ({"dtype": "float13"}, "dtype policy"),
    ],
)
def test_cifar_resnet_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        models.cifar_resnet(**kwargs)


def test_cifar_resnet_trains_a_step_and_survives_saving(tmp_path):
    model = models.cifar_resnet(width=2, blocks=1)
    model.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    x, y = rng.random((8, 32, 32, 3), dtype=np.float32), rng.integers(0, 10, 8)
    loss = model.train_on_batch(x, y)
    assert np.isfinite(loss)
    path = tmp_path / "resnet.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(np.asarray(loaded(x, training=False)), np.asarray(model(x, training=False)),
                               rtol=1e-5, atol=1e-6)


# --- forward_flops -----------------------------------------------------------------


def test_forward_flops_counts_two_operations_per_multiply_accumulate():
    model = keras.Sequential([
        keras.Input(shape=(10, 10, 3)),
        keras.layers.Conv2D(4, 3),  # 8×8 outputs, 3·3·3 products each, 4 channels
        keras.layers.MaxPooling2D(2),
        keras.layers.Conv2D(6, 1, strides=2, use_bias=False),  # 2×2 outputs, 4 products, 6 channels
        keras.layers.Flatten(),
        keras.layers.Dense(5),  # 24 inputs
    ])
    assert compute.forward_flops(model) == 2 * (8 * 8 * 27 * 4 + 2 * 2 * 4 * 6 + 24 * 5)
    outer = keras.Sequential([keras.Input(shape=(10, 10, 3)), model])
    assert compute.forward_flops(outer) == compute.forward_flops(model)


def test_forward_flops_of_the_resnet_by_formula():
    width, blocks = 4, 2
    model = models.cifar_resnet(width=width, blocks=blocks)
    expected, c_in, side = 9 * 3 * width * 32 * 32, width, 32
    for stage, mult in enumerate((1, 2, 4), start=1):
        c_out = width * mult
        for block in range(blocks):
            if stage > 1 and block == 0:
                side //= 2
                expected += c_in * c_out * side * side  # the 1×1 projection, at the output size
            expected += (9 * c_in * c_out + 9 * c_out * c_out) * side * side
            c_in = c_out
    expected += c_in * 10
    assert compute.forward_flops(model) == 2 * expected
    no_halving = models.cifar_resnet(width=width, blocks=blocks, downsample="none")
    # Without halving, stage 2 costs 4× and stage 3 16× as much: over 5× in all.
    assert compute.forward_flops(no_halving) > 5 * compute.forward_flops(model)


def test_forward_flops_needs_a_fixed_input_size():
    inputs = keras.Input(shape=(None, None, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(2, 3)(inputs))
    with pytest.raises(ValueError, match="unknown size"):
        compute.forward_flops(model)


# --- its recipe: training.resnet_config --------------------------------------------


def test_resnet_recipe_is_chapter_8s_so_a_comparison_changes_the_network_only():
    from cnnbook import training

    config = training.resnet_config("cifar10", seed=4)
    assert config == training.default_config("cifar10", seed=4)  # the same recipe, whatever it becomes
    assert (config.optimizer, config.schedule, config.augmentation) == ("sgd", "onecycle", "flip_shift")
    assert config.patience >= config.epochs  # no early stop
    assert training.resnet_config(epochs=3).epochs == 3
    with pytest.raises(ValueError, match="'cifar10' only, not 'mnist'"):
        training.resnet_config("mnist")
    with pytest.raises(ValueError, match="epochs must be at least 1"):
        training.resnet_config(epochs=0)

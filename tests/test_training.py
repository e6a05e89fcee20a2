"""The training recipe: config checks, schedule, callbacks, resume after interruption, model cache."""

from __future__ import annotations

import dataclasses
import inspect
import json
import logging
import tempfile

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from cnnbook import data, models, training  # noqa: E402


def tiny_splits(n_train=256, n_val=128, seed=0) -> data.Splits:
    rng = np.random.default_rng(seed)
    y_train = np.arange(n_train) % 10
    y_val = np.arange(n_val) % 10

    def images(labels):
        # A learnable toy task: the class is written into the brightness of one row.
        x = rng.random((len(labels), 28, 28, 1), dtype=np.float32) * 0.1
        x[np.arange(len(labels)), 2 * labels + 4, :, 0] = 1.0
        return x

    return data.Splits(images(y_train), y_train.astype(np.uint8), images(y_val), y_val.astype(np.uint8),
                       images(y_val), y_val.astype(np.uint8), tuple(str(i) for i in range(10)), "toy")


@pytest.mark.parametrize(
    "kwargs, message",
    [({"epochs": 0}, "epochs"), ({"batch_size": 0}, "batch_size"), ({"learning_rate": 0}, "learning_rate"),
     ({"schedule": "step"}, "schedule"), ({"warmup_fraction": 1.0}, "warmup_fraction"),
     ({"augmentation": "rotate"}, "augmentation"), ({"optimizer": "rmsprop"}, "optimizer"),
     ({"weight_decay": -0.1}, "weight_decay")],
)
def test_config_refuses_bad_values(kwargs, message):
    with pytest.raises(ValueError, match=message):
        training.TrainConfig(**kwargs)


def test_make_optimizer_builds_the_recipes_optimiser_with_its_schedule():
    plain = training.make_optimizer(training.TrainConfig(epochs=2), steps_per_epoch=10)
    assert type(plain) is keras.optimizers.Adam
    decayed = training.make_optimizer(training.TrainConfig(epochs=2, weight_decay=0.05), steps_per_epoch=10)
    assert isinstance(decayed, keras.optimizers.AdamW) and decayed.weight_decay == pytest.approx(0.05)
    sgd = training.make_optimizer(
        training.TrainConfig(epochs=2, optimizer="sgd", learning_rate=0.1, weight_decay=5e-3), steps_per_epoch=10)
    assert isinstance(sgd, keras.optimizers.SGD) and sgd.nesterov and sgd.momentum == pytest.approx(0.9)
    assert sgd.weight_decay == pytest.approx(5e-3)
    schedule = sgd.get_config()["learning_rate"]
    assert schedule["class_name"] == "OneCycle"
    assert schedule["config"]["total_steps"] == 20 and schedule["config"]["peak"] == 0.1
    # Decoupled decay, as in AdamW: with a zero gradient one step shrinks a weight by lr × decay of itself.
    constant = training.TrainConfig(epochs=1, optimizer="sgd", learning_rate=0.1, weight_decay=0.5,
                                    schedule="constant")
    weight = keras.Variable(np.ones(3, dtype=np.float32))
    training.make_optimizer(constant, steps_per_epoch=1).apply_gradients([(np.zeros(3, np.float32), weight)])
    np.testing.assert_allclose(np.asarray(weight), 0.95, rtol=1e-6)


def test_default_config_knows_the_books_datasets_only():
    assert training.default_config("fashion_mnist").epochs > training.default_config("mnist").epochs
    cifar = training.default_config("cifar10", epochs=3)
    assert cifar.epochs == 3 and cifar.weight_decay > 0 and cifar.batch_size == 256
    with pytest.raises(ValueError, match="recipes for mnist, fashion_mnist, cifar10"):
        training.default_config("svhn")


def test_the_larger_networks_recipes_cover_photographs_and_clothes_only():
    assert training.cifar_cnn_config("cifar10", epochs=3) == training.default_config("cifar10", epochs=3)
    clothes = training.cifar_cnn_config("fashion_mnist", seed=2)
    assert clothes.seed == 2 and clothes.weight_decay > 0 and clothes.patience >= clothes.epochs  # no early stop
    mirror = training.augmentation_layer(clothes)
    assert [layer.name for layer in mirror.layers] == ["flip"]  # a mirrored coat is a coat; no shifts
    batch = np.arange(2 * 28 * 28, dtype=np.float32).reshape(2, 28, 28, 1)
    out = np.asarray(mirror(np.repeat(batch, 8, axis=0), training=True))
    sources = np.repeat(batch, 8, axis=0)
    for image, source in zip(out, sources):
        assert np.array_equal(image, source) or np.array_equal(image, source[:, ::-1])  # as is, or mirrored
    assert 0 < sum(not np.array_equal(image, source) for image, source in zip(out, sources)) < len(out)
    with pytest.raises(ValueError, match="'cifar10' and 'fashion_mnist', not 'mnist'"):
        training.cifar_cnn_config("mnist")


def test_recipes_name_their_augmentation_and_it_is_built_seeded():
    assert training.default_config("mnist").augmentation == "shift"
    assert training.default_config("fashion_mnist").augmentation == "none"  # the small model underfits clothes
    assert training.augmentation_layer(training.TrainConfig()) is None
    photos = training.augmentation_layer(training.default_config("cifar10"))
    assert [layer.name for layer in photos.layers] == ["flip", "translate"]
    assert photos.layers[1].interpolation == "nearest"  # whole pixels: the shifted photographs stay sharp
    # Chapter 8 builds its augmentation from models.augmentation's defaults: they must be the recipe's.
    defaults = inspect.signature(models.augmentation).parameters
    preset = training.AUGMENTATIONS["flip_shift"]
    assert {name: defaults[name].default for name in preset} == preset
    digits = training.augmentation_layer(training.TrainConfig(augmentation="shift", seed=3))
    assert [layer.name for layer in digits.layers] == ["translate"]  # digits are never mirrored
    assert digits.layers[0].fill_mode == "constant"  # the border black, like the background
    assert digits.layers[0].interpolation == "nearest"  # whole pixels: the strokes stay sharp
    batch = np.zeros((16, 28, 28, 1), np.float32)
    batch[:, 4:24, 4:24] = 1.0  # a white square on black, 4 pixels from every edge
    a = np.asarray(digits(batch, training=True))
    b = np.asarray(training.augmentation_layer(training.TrainConfig(augmentation="shift", seed=3))(batch, training=True))
    np.testing.assert_array_equal(a, b)  # the recipe's seed fixes the draws
    assert sum(not np.array_equal(image, batch[0]) for image in a) >= 8  # most images shifted...
    assert a[:, :, :, 0].min() == 0.0 and np.abs(a.sum(axis=(1, 2, 3)) - batch[0].sum()).max() < 1.0  # ...black border
    assert set(np.unique(a)) == {0.0, 1.0}  # by whole pixels: no blended values
    rows = np.flatnonzero(a[0, :, 14, 0])  # the square's rows in its middle column
    assert len(rows) == 20 and abs(rows[0] - 4) <= 2  # at most 2 pixels from where it was
    np.testing.assert_array_equal(np.asarray(digits(batch, training=False)), batch)


def test_fit_uses_the_recipes_augmentation_unless_given_one(monkeypatch):
    seen = []
    real = data.make_pipeline

    def spy(*args, **kwargs):
        seen.append(kwargs.get("augment"))
        return real(*args, **kwargs)

    monkeypatch.setattr(data, "make_pipeline", spy)
    config = training.TrainConfig(epochs=1, batch_size=64, augmentation="shift")
    training.fit_classifier(models.mnist_cnn(), tiny_splits(), config, verbose=0)
    assert [layer.name for layer in seen[0].layers] == ["translate"] and seen[1] is None  # validation: never
    explicit = models.augmentation(seed=0, flip=False, translation=0.05)
    training.fit_classifier(models.mnist_cnn(), tiny_splits(), config, augment=explicit, verbose=0)
    assert seen[2] is explicit


def test_several_steps_per_execution_still_take_every_step():
    model = models.mnist_cnn()
    # 256 images in batches of 32: 8 steps an epoch, fewer than the 16 of one execution.
    training.fit_classifier(model, tiny_splits(), training.TrainConfig(epochs=2, batch_size=32), verbose=0,
                            steps_per_execution=16)
    assert int(model.optimizer.iterations.numpy()) == 2 * 8
    with pytest.raises(ValueError, match="steps_per_execution"):
        training.fit_classifier(models.mnist_cnn(), tiny_splits(), training.TrainConfig(epochs=1), steps_per_execution=0)


def test_ensemble_recipe_is_the_chapter_recipe_longer_on_mnist_only():
    single, member = training.default_config("mnist", seed=4), training.ensemble_config("mnist", seed=4)
    assert member.epochs > single.epochs and member == training.TrainConfig(**{**vars(single), "epochs": member.epochs})
    assert training.ensemble_config("mnist", epochs=2).epochs == 2  # an override wins
    assert training.ensemble_config("fashion_mnist") == training.default_config("fashion_mnist")


def test_ensemble_members_are_chapter_8s_network_on_mnist_and_the_part_i_model_elsewhere():
    digits = dataclasses.replace(tiny_splits(), name="mnist")
    member = training.ensemble_member(digits, "float32")
    reference = models.cifar_cnn(digits.input_shape, digits.num_classes, width=training.ENSEMBLE_WIDTH,
                                 normalizer=models.channel_normalizer(*data.channel_statistics(digits.x_train)))
    assert member.count_params() == reference.count_params() and member.output_shape == (None, 10)
    # The input is standardised with the training images' own statistics.
    normalize = next(layer for layer in member.layers if isinstance(layer, keras.layers.Normalization))
    np.testing.assert_allclose(np.ravel(normalize.mean), [digits.x_train.mean()], rtol=1e-5)
    clothes = dataclasses.replace(digits, name="fashion_mnist")
    assert training.ensemble_member(clothes).count_params() == models.mnist_cnn().count_params()


def test_ensemble_augmentation_rotates_zooms_and_shifts_digits_only_on_mnist():
    digits = training.ensemble_augmentation("mnist", seed=3)
    assert [layer.name for layer in digits.layers] == ["rotate", "zoom", "translate"]
    batch = np.zeros((16, 28, 28, 1), np.float32)
    batch[:, 8:20, 12:16] = 1.0  # an upright bar, like a 1
    a = np.asarray(digits(batch, training=True))
    np.testing.assert_array_equal(a, np.asarray(training.ensemble_augmentation("mnist", seed=3)(batch, training=True)))
    assert sum(not np.array_equal(image, batch[0]) for image in a) >= 12  # most images changed
    assert a.min() >= 0.0 and a[:, 0, :, 0].max() == 0.0  # a black border, nothing wrapped round
    assert len(np.unique(a)) > 2  # rotations and zooms blend pixels (bilinear), unlike the shifts alone
    assert np.abs(a.sum(axis=(1, 2, 3)) / batch[0].sum() - 1).max() < 0.3  # still about the same amount of ink
    np.testing.assert_array_equal(np.asarray(digits(batch, training=False)), batch)
    # Elsewhere: the recipe's own augmentation (Fashion-MNIST's single-model recipe has none).
    assert training.ensemble_augmentation("fashion_mnist", seed=3) is None


class FakeClock:
    """Each epoch of the fake run lasts the next of ``epoch_seconds``."""

    def __init__(self, epoch_seconds):
        self.now, self.epochs = 0.0, list(epoch_seconds)

    def __call__(self):
        return self.now


def run_budget(budget, epoch_seconds, planned):
    """Drive a TimeBudget through ``planned`` epochs as Keras would; return the epochs run."""
    clock = FakeClock(epoch_seconds)
    callback = training.TimeBudget(budget, clock=clock)
    model = models.mnist_cnn()
    model.stop_training = False  # as Model.fit sets it
    callback.set_model(model)
    callback.set_params({"epochs": planned})
    callback.on_train_begin()
    for epoch in range(planned):
        clock.now += clock.epochs[epoch]
        callback.on_epoch_end(epoch)
        if callback.model.stop_training:
            return epoch + 1, callback.stopped_early
    return planned, callback.stopped_early


def test_time_budget_keeps_a_planned_run_and_cuts_a_slow_one():
    # Planned from 38 s epochs (first one 44 s): three fit into 140 s and all three run.
    assert run_budget(140, [44, 38, 38], planned=3) == (3, False)
    # The machine slows to 56 s an epoch: after two epochs (112 s) a third would end near 168 s.
    assert run_budget(140, [56, 56, 56], planned=3) == (2, True)
    # The first epoch's graph building is not taken as the pace once later epochs are known.
    assert run_budget(100, [40, 20, 20, 20], planned=4) == (4, False)
    with pytest.raises(ValueError, match="positive"):
        training.TimeBudget(0)
    # In a real fit: a budget spent by the first epoch ends training there.
    budget = training.TimeBudget(1e-6)
    result = training.fit_classifier(models.mnist_cnn(), tiny_splits(), training.TrainConfig(epochs=4, patience=4),
                                     callbacks=[budget], verbose=0)
    assert len(result.epoch_seconds) == 1 and budget.stopped_early


def test_one_cycle_warms_up_then_decays_to_almost_zero():
    schedule = training.OneCycle(peak=1e-2, total_steps=100, warmup_steps=20)
    rates = np.array([float(schedule(s)) for s in range(100)])
    assert rates[0] == pytest.approx(1e-2 / 25)
    assert rates.argmax() in (19, 20)
    assert rates.max() == pytest.approx(1e-2, rel=0.06)
    assert np.all(np.diff(rates[:20]) > 0) and np.all(np.diff(rates[21:]) <= 1e-12)
    assert rates[-1] < 1e-4
    restored = training.OneCycle(**schedule.get_config())
    assert float(restored(50)) == pytest.approx(float(schedule(50)))


def test_constant_schedule_is_a_number():
    config = training.TrainConfig(schedule="constant", learning_rate=1e-3)
    assert training.learning_rate_schedule(config, steps_per_epoch=10) == 1e-3


def test_fit_learns_keeps_best_epoch_and_times_epochs(tmp_path):
    splits = tiny_splits()
    training.set_seed(0)
    result = training.fit_classifier(models.mnist_cnn(), splits, training.TrainConfig(epochs=3, batch_size=32),
                                     work_dir=tmp_path, verbose=0)
    assert len(result.epoch_seconds) == 3 and all(s > 0 for s in result.epoch_seconds)
    assert result.best_val_accuracy == max(result.history["val_accuracy"])
    assert result.best_val_accuracy > 0.5  # far above the 10 % of guessing
    assert (tmp_path / "best.keras").is_file()
    assert not (tmp_path / "backup").exists() or not any((tmp_path / "backup").iterdir())


def test_fit_without_a_work_dir_leaves_no_folder_behind(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where mkdtemp creates its folders
    training.set_seed(0)
    result = training.fit_classifier(models.mnist_cnn(), tiny_splits(), training.TrainConfig(epochs=1), verbose=0)
    assert result.work_dir is None
    assert list(tmp_path.iterdir()) == []


def test_interrupted_run_resumes_where_it_stopped(tmp_path):
    splits = tiny_splits()
    config = training.TrainConfig(epochs=3, batch_size=64)
    training.set_seed(0)
    with pytest.raises(training.SimulatedInterruption):
        training.fit_classifier(models.mnist_cnn(), splits, config, work_dir=tmp_path, verbose=0,
                                callbacks=[training.InterruptAfterEpoch(2)])
    model = models.mnist_cnn()
    resumed = training.fit_classifier(model, splits, config, work_dir=tmp_path, verbose=0)
    assert len(resumed.epoch_seconds) == 1  # only the missing third epoch ran
    assert int(model.optimizer.iterations.numpy()) == 3 * 4  # 256 images / 64 per batch, 3 epochs


def test_empty_split_is_refused():
    splits = tiny_splits()
    empty = data.Splits(splits.x_train[:0], splits.y_train[:0], splits.x_val, splits.y_val,
                        splits.x_test, splits.y_test, splits.class_names, "empty")
    with pytest.raises(ValueError, match="non-empty"):
        training.fit_classifier(models.mnist_cnn(), empty, training.TrainConfig(epochs=1))


def test_model_path_names_the_recipe(monkeypatch, tmp_path):
    monkeypatch.setenv("CNNBOOK_MODEL_DIR", str(tmp_path))
    a = training.model_path("mnist", None, training.default_config("mnist"))
    b = training.model_path("mnist", 2000, training.default_config("mnist"))
    c = training.model_path("mnist", None, training.default_config("mnist", learning_rate=1e-3))
    assert a.parent == tmp_path and len({a, b, c}) == 3
    assert "nall" in a.name and "n2000" in b.name


def test_save_model_is_atomic_and_writes_its_sidecar(tmp_path):
    model = models.keras_io_convnet()
    path = training.save_model(model, tmp_path / "m.keras", info={"best_epoch": 3})
    assert [p.name for p in sorted(tmp_path.iterdir())] == ["m.json", "m.keras"]
    assert json.loads((tmp_path / "m.json").read_text()) == {"best_epoch": 3}
    assert keras.models.load_model(path, compile=False).count_params() == model.count_params()


def test_trained_model_trains_once_then_loads(monkeypatch, tmp_path):
    monkeypatch.setenv("CNNBOOK_MODEL_DIR", str(tmp_path))
    first = training.trained_model("mnist", train_size=200, epochs=1)
    cached = list(tmp_path.glob("*.keras"))
    assert len(cached) == 1
    stamp = cached[0].stat().st_mtime_ns
    second = training.trained_model("mnist", train_size=200, epochs=1)
    assert cached[0].stat().st_mtime_ns == stamp  # loaded, not retrained
    x = np.zeros((2, 28, 28, 1), dtype=np.float32)
    np.testing.assert_allclose(first(x), second(x), atol=1e-6)


def test_trained_model_path_is_where_trained_model_looks(monkeypatch, tmp_path):
    """The command line asks trained_model_path whether a model is cached: it must be trained_model's own file."""
    monkeypatch.setenv("CNNBOOK_MODEL_DIR", str(tmp_path))
    monkeypatch.setattr(data, "prepare", lambda *a, **k: pytest.fail("trained_model did not find the cached file"))
    for kwargs in ({"dtype": "float32"}, {"train_size": 200, "epochs": 1, "seed": 3, "dtype": "mixed_bfloat16"}):
        path = training.trained_model_path("mnist", **kwargs)
        path.write_bytes(b"")
        loaded = []
        monkeypatch.setattr(keras.models, "load_model", lambda p, compile=True, loaded=loaded: loaded.append(str(p)) or "model")
        assert training.trained_model("mnist", **kwargs) == "model"
        assert loaded == [str(path)]


def test_model_path_names_the_precision(monkeypatch, tmp_path):
    monkeypatch.setenv("CNNBOOK_MODEL_DIR", str(tmp_path))
    config = training.default_config("mnist")
    fp32 = training.model_path("mnist", None, config, "float32")
    bf16 = training.model_path("mnist", None, config, "mixed_bfloat16")
    assert fp32 != bf16 and "-fp32-" in fp32.name and "-bf16-" in bf16.name
    with pytest.raises(ValueError, match="dtype must be one of"):
        training.model_path("mnist", None, config, "float16")


def test_train_ensemble_members_learn_as_if_trained_alone(tmp_path):
    """Side by side, each member gets its own seed and the gradient it would get alone (Adam cancels the 1/K)."""
    splits = tiny_splits(n_train=64, n_val=32)
    config = training.TrainConfig(epochs=2, batch_size=16, seed=3, patience=5)

    def build():  # no dropout: the comparison below is then free of random masks
        return models.mnist_cnn(dropout=0.0)

    members, joint = training.train_ensemble(build, splits, config, members=2)
    assert [m.name for m in members] == ["member_1", "member_2"]
    assert joint.model.output_shape == (None, 2, 10)
    assert not np.allclose(members[0].get_weights()[0], members[1].get_weights()[0])  # different initial weights
    # The second member, trained alone from the same seed on the same batches, ends where it ended together.
    # Adam magnifies rounding on weights whose gradient is near zero, so most weights, not all, agree to 1e-4.
    training.set_seed(config.seed + 1)
    alone = training.fit_classifier(build(), splits, config, verbose=0)
    assert alone.best_epoch == joint.best_epoch == 2
    together_w, alone_w = (np.concatenate([w.ravel() for w in m.get_weights()]) for m in (members[1], alone.model))
    assert np.mean(np.abs(together_w - alone_w) < 1e-4) > 0.99
    np.testing.assert_allclose(members[1].predict(splits.x_val, verbose=0),
                               alone.model.predict(splits.x_val, verbose=0), atol=1e-3)
    # The joint model's stacked logits are the members' own.
    stacked = joint.model.predict(splits.x_val, verbose=0)
    np.testing.assert_allclose(stacked[:, 0], members[0].predict(splits.x_val, verbose=0), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="at least one member"):
        training.train_ensemble(models.keras_io_convnet, splits, config, members=0)


def test_cached_model_finds_a_chapters_model_in_either_precision(monkeypatch, tmp_path):
    monkeypatch.setenv("CNNBOOK_MODEL_DIR", str(tmp_path))
    assert training.cached_model("cifar10", train_size=100, epochs=1) is None
    tiny = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)], name="tiny")
    config = training.default_config("cifar10", epochs=1)
    # Saved as a chapter saves it: under the recipe's name, with the precision it chose.
    training.save_model(tiny, training.model_path("cifar10", 100, config, "mixed_bfloat16"))
    found = training.cached_model("cifar10", train_size=100, epochs=1)
    assert found is not None and found.name == "tiny"
    assert np.array_equal(found.get_weights()[0], tiny.get_weights()[0])
    # Another recipe (epochs, size or seed) is another model.
    assert training.cached_model("cifar10", train_size=100, epochs=2) is None
    assert training.cached_model("cifar10", train_size=200, epochs=1) is None
    assert training.cached_model("cifar10", train_size=100, epochs=1, seed=1) is None


def test_tensorflows_retracing_advice_is_dropped_and_its_other_warnings_are_not():
    logger = logging.getLogger("tensorflow")  # where TensorFlow's Python warnings go

    class Keep(logging.Handler):
        def __init__(self):
            super().__init__(logging.WARNING)
            self.messages = []

        def emit(self, record):
            self.messages.append(record.getMessage())

    keep = Keep()
    logger.addHandler(keep)
    try:
        logger.warning("5 out of the last 13 calls to <function f at 0x7f48> triggered tf.function retracing. "
                       "Tracing is expensive.")
        logger.warning("Gradients do not exist for variables.")
    finally:
        logger.removeHandler(keep)
    assert keep.messages == ["Gradients do not exist for variables."]


def test_training_imports_back_the_engine_the_recipes_and_the_model_cache():
    from cnnbook import engine, hardware, model_cache, recipes, train_steps

    homes = (engine, recipes, model_cache)
    for name in training.__all__:
        owners = [home for home in homes if name in home.__all__]
        assert len(owners) == 1, (name, owners)
        assert getattr(training, name) is getattr(owners[0], name)
    lent = set(engine.__all__) - set(training.__all__)  # the engine's, from train_steps
    assert lent == {"training_throughput"}
    assert hardware.training_throughput is train_steps.training_throughput is engine.training_throughput

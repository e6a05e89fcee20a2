"""cnnbook.study: the variants change one factor each, the summaries and verdicts follow the rules."""

from __future__ import annotations

from dataclasses import asdict, replace

import numpy as np
import pytest

from cnnbook import data, study, training


def row(accuracies, seconds=10.0, **changes) -> study.Row:
    variant = replace(study.Variant(), **changes)
    return study.Row(variant=variant, parameters=1000, train_images=100, seconds=seconds, epoch_seconds=seconds / 6,
                     accuracies=tuple(accuracies))


def test_variant_filters_follow_depth_and_width():
    assert study.Variant().filters == (16, 32, 64)
    assert study.Variant(depth=1, width=0.5).filters == (8,)
    assert study.Variant(depth=4, width=2.0).filters == (32, 64, 128, 256)


@pytest.mark.parametrize("bad", [{"depth": 0}, {"depth": 5}, {"width": 0}, {"dropout": 1.0}, {"epochs": 0},
                                 {"train_fraction": 0.0}, {"train_fraction": 1.5}])
def test_variant_rejects_impossible_settings(bad):
    with pytest.raises(ValueError):
        study.Variant(**bad)


def test_one_factor_variants_change_exactly_one_field_each():
    base = study.Variant(epochs=6, train_fraction=0.25)
    variants = study.one_factor_variants(base, depths=(1, 2, 3, 4), widths=(0.5, 1.0, 2.0),
                                         fractions=(0.125, 0.25, 1.0), epochs=(2, 6, 12))
    assert variants[0].factor == "baseline" and variants[0].same_recipe(base)
    fields = {k: v for k, v in asdict(base).items() if k not in ("factor", "level")}
    for v in variants[1:]:
        changed = [k for k, value in fields.items() if getattr(v, k) != value]
        assert len(changed) == 1, (v, changed)
        expected = study.FACTORS.get(v.factor) or study.LEVERS[v.factor]
        assert changed == [expected]
    counts = {f: sum(v.factor == f for v in variants) for f in (*study.FACTORS, *study.LEVERS)}
    # The baseline's own level is not repeated.
    assert counts == {"depth": 3, "width": 2, "data": 2, "epochs": 2, "batch norm": 1, "dropout": 1,
                      "augmentation": 1, "schedule": 1}
    assert len({v.level for v in variants if v.factor == "depth"}) == 3
    by_factor = {v.factor: v for v in variants}
    assert by_factor["batch norm"].batch_norm is False and by_factor["dropout"].dropout == 0.0
    assert by_factor["augmentation"].augment is True and by_factor["schedule"].schedule == "constant"


def test_describe_names_the_level_of_each_factor():
    v = study.Variant(depth=1, width=2.0, epochs=1, train_fraction=0.5)
    assert [study.describe(v, f) for f in study.FACTORS] == [
        "1 block", "×2 channels", "0.5 of the training split", "1 epoch"]
    with pytest.raises(ValueError, match="factor"):
        study.describe(v, "colour")


def test_summarise_means_spreads_and_seed_order():
    a, b = study.Variant(), study.Variant(factor="depth", level="2 blocks", depth=2)

    def run(variant, seed, acc, seconds):
        return study.Run(variant, seed, 10, 100, seconds, seconds / 2, acc, {})

    rows = study.summarise([run(a, 1, 0.80, 4.0), run(b, 0, 0.70, 1.0), run(a, 0, 0.90, 2.0), run(b, 1, 0.72, 3.0)])
    assert [r.variant for r in rows] == [a, b]
    assert rows[0].accuracies == (0.90, 0.80)  # seed order
    assert rows[0].mean == pytest.approx(0.85) and rows[0].spread == pytest.approx(0.10)
    assert rows[0].seconds == pytest.approx(3.0) and rows[1].epoch_seconds == pytest.approx(1.0)


def test_measurable_needs_a_difference_beyond_both_spreads():
    base = row([0.80, 0.81, 0.82])
    assert study.measurable(row([0.84, 0.85, 0.86]), base)  # 0.04 apart, spreads 0.02
    assert not study.measurable(row([0.82, 0.83, 0.84]), base)  # 0.02 apart = the spreads
    assert not study.measurable(row([0.70, 0.85, 0.99]), base)  # far apart on average, but noisy
    assert study.effect(row([0.84, 0.85, 0.86]), base) == "better"
    assert study.effect(row([0.70, 0.71, 0.72]), base) == "worse"
    assert study.effect(row([0.81, 0.81, 0.81]), base) == "no measurable difference"
    with pytest.raises(ValueError, match="two or more seeds"):
        study.measurable(row([0.9]), base)


def test_trend_verdicts():
    rising = [row([0.80, 0.81]), row([0.85, 0.86]), row([0.90, 0.91])]
    assert study.trend_verdict(rising) == ("holds", 2)
    # Gains stop after the second level: still "holds" (the largest level is as good as any).
    saturating = [row([0.80, 0.81]), row([0.90, 0.91]), row([0.905, 0.91])]
    assert study.trend_verdict(saturating) == ("holds", 1)
    flat = [row([0.80, 0.82]), row([0.81, 0.82]), row([0.80, 0.81])]
    assert study.trend_verdict(flat) == ("does not hold", 0)
    falling = [row([0.90, 0.91]), row([0.80, 0.81])]
    assert study.trend_verdict(falling)[0] == "does not hold"
    peaked = [row([0.80, 0.81]), row([0.90, 0.91]), row([0.84, 0.85])]
    assert study.trend_verdict(peaked) == ("partly holds", 1)
    with pytest.raises(ValueError):
        study.trend_verdict(rising[:1])


def test_curve_orders_a_factor_with_its_baseline():
    rows = [row([0.8, 0.8]), row([0.7, 0.7], factor="depth", level="1", depth=1),
            row([0.9, 0.9], factor="depth", level="4", depth=4), row([0.5, 0.5], factor="dropout", dropout=0.0)]
    assert [r.variant.depth for r in study.curve(rows, "depth")] == [1, 3, 4]
    with pytest.raises(ValueError, match="factor"):
        study.curve(rows, "dropout")
    with pytest.raises(ValueError, match="baseline"):
        study.curve(rows[1:], "depth")


def test_combine_takes_only_measurably_better_levels():
    rows = [
        row([0.80, 0.81]),
        row([0.85, 0.86], factor="width", level="×2", width=2.0),
        row([0.82, 0.83], factor="width", level="×0.5", width=0.5),
        row([0.81, 0.815], factor="depth", level="4", depth=4),  # better, but not measurably
        row([0.90, 0.91], factor="augmentation", level="on", augment=True),
        row([0.70, 0.71], factor="dropout", level="off", dropout=0.0),  # measurably worse
        row([0.95, 0.96], factor="data", level="all", train_fraction=1.0),  # budget: never combined
    ]
    combined = study.combine(rows)
    assert combined.factor == "combination" and combined.level == "width: ×2; augmentation: on"
    assert (combined.width, combined.augment, combined.depth, combined.dropout) == (2.0, True, 3, 0.3)
    assert combined.train_fraction == study.Variant().train_fraction
    assert study.combine(rows[:1]).same_recipe(rows[0].variant)
    with pytest.raises(ValueError, match="baseline"):
        study.combine(rows[1:])


@pytest.fixture(scope="module")
def tiny_splits():
    rng = np.random.default_rng(0)
    # Two classes a CNN separates at once: bright top half or bright bottom half.
    labels = np.tile(np.arange(2, dtype=np.uint8), 60)
    images = rng.uniform(0, 0.2, (120, 28, 28, 1)).astype("float32")
    images[labels == 0, :14] += 0.7
    images[labels == 1, 14:] += 0.7
    return data.Splits(x_train=images[:80], y_train=labels[:80], x_val=images[80:], y_val=labels[80:],
                       x_test=images[80:], y_test=labels[80:], class_names=("top", "bottom"), name="toy")


def test_run_variant_trains_on_the_requested_share_and_measures_the_last_epoch(tiny_splits):
    config = training.TrainConfig(epochs=3, batch_size=16, learning_rate=1e-2)
    variant = study.Variant(depth=2, width=0.5, epochs=2, train_fraction=0.5, augment=True)
    run = study.run_variant(variant, tiny_splits, seed=1, config=config, keep_model=True)
    assert run.train_images == 40 and run.seed == 1
    assert len(run.history["val_accuracy"]) == 2  # the variant's epochs, not the config's
    assert run.val_accuracy == run.history["val_accuracy"][-1]
    assert run.parameters == run.model.count_params()
    bn = [layer for layer in run.model.layers if "bn" in layer.name]
    assert len(bn) == 2 and all(layer.momentum == 0.9 for layer in bn)
    no_bn = study.run_variant(replace(variant, batch_norm=False, augment=False), tiny_splits, seed=1, config=config)
    assert no_bn.model is None and no_bn.parameters < run.parameters + 100


def test_run_study_is_seed_by_seed_and_reproducible(tiny_splits):
    config = training.TrainConfig(epochs=1, batch_size=16, learning_rate=1e-2)
    variants = [study.Variant(epochs=1, depth=1, width=0.5), study.Variant(factor="width", epochs=1, depth=1)]
    seen = []
    runs = study.run_study(variants, tiny_splits, [0, 1], config=config, progress=seen.append,
                           keep_models=lambda v: v.factor == "width")
    assert [(r.seed, r.variant.factor) for r in runs] == [(0, "baseline"), (0, "width"), (1, "baseline"), (1, "width")]
    assert seen == runs
    assert [r.model is not None for r in runs] == [False, True, False, True]
    again = study.run_variant(variants[0], tiny_splits, 0, config=config)
    assert again.val_accuracy == runs[0].val_accuracy
    with pytest.raises(ValueError, match="seed"):
        study.run_study(variants, tiny_splits, [], config=config)

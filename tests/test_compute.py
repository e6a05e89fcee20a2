"""Tests of :mod:`cnnbook.compute` (FLOPs) and the kernel facts of :mod:`cnnbook.hardware`."""

from __future__ import annotations

import keras
import pytest

from cnnbook import compute, hardware, models


def test_forward_flops_by_formula_for_a_small_network():
    net = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.Conv2D(8, 3, padding="same"),  # 28x28 positions
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(16, 3),  # 12x12 positions
            keras.layers.Flatten(),
            keras.layers.Dense(10),
        ]
    )
    expected = (
        2 * 3 * 3 * 1 * 8 * 28 * 28
        + 2 * 3 * 3 * 8 * 16 * 12 * 12
        + 2 * (12 * 12 * 16) * 10
    )
    assert compute.forward_flops(net) == expected
    assert compute.training_flops(net, 100) == 3 * expected * 100


def test_nested_models_count_their_layers():
    inner = keras.Sequential([keras.Input((4,)), keras.layers.Dense(5)])
    inputs = keras.Input((4,))
    outer = keras.Model(inputs, keras.layers.Dense(2)(inner(inputs)))
    assert compute.forward_flops(outer) == 2 * 4 * 5 + 2 * 5 * 2


def test_the_book_model_costs_what_its_convolutions_cost():
    part1 = models.mnist_cnn()
    flops = compute.forward_flops(part1)
    convs = [lay for lay in part1.layers if isinstance(lay, keras.layers.Conv2D)]
    assert flops > sum(2 * lay.kernel.shape.num_elements() for lay in convs)
    assert 1e6 < flops < 1e9  # a small network: millions of FLOPs an image


def test_bad_input_is_explained():
    with pytest.raises(ValueError, match="built Keras model"):
        compute.forward_flops(object())
    with pytest.raises(ValueError, match="zero or more"):
        compute.training_flops(models.mnist_cnn(), -1)


def test_float32_peak_follows_the_widest_fma_units(monkeypatch):
    def machine(flags: str, family: str = "25", model: str = "1", vendor: str = "AuthenticAMD"):
        info = {"flags": flags, "cpu family": family, "model": model, "vendor_id": vendor,
                "model name": "AMD EPYC", "cpu MHz": "2000.000", "siblings": "2", "cpu cores": "2"}
        monkeypatch.setattr(hardware, "cpu_info", lambda: info)
        return hardware.float32_peak(cores=2)

    assert machine("avx2 fma")["flops_per_cycle"] == 32  # Zen 3
    assert machine("avx2 fma avx512f", family="25", model="17")["flops_per_cycle"] == 32  # Zen 4
    assert machine("avx2 fma avx512f", family="26", model="2")["flops_per_cycle"] == 64  # Zen 5
    assert machine("avx2 fma", family="23", model="1")["flops_per_cycle"] == 16  # Zen 1
    peak = machine("avx2 fma")
    assert peak["gflops"] == pytest.approx(2 * 2.0 * 32)
    assert any("2.00 GHz" in a for a in peak["assumptions"])


def test_onednn_state_names_what_decided_it(monkeypatch):
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "1")
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    state = hardware.onednn_state()
    assert state["decided_by"] == "TF_ENABLE_ONEDNN_OPTS=1" and state["max_isa"] == "AVX2"
    assert state["enabled"] in (True, False)  # what this process's TensorFlow says
    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS")
    monkeypatch.setattr(hardware, "cpu_flags", lambda: {"avx2", "fma"})
    assert "off: no AVX512_VNNI" in hardware.onednn_state()["decided_by"]
    monkeypatch.setattr(hardware, "cpu_flags", lambda: {"avx2", "avx_vnni"})
    assert "on with avx_vnni" in hardware.onednn_state()["decided_by"]
    text = hardware.kernels_description({"enabled": True, "decided_by": "x", "max_isa": "AVX2"})
    assert text == "oneDNN on (x), capped at AVX2"


def test_vector_extensions_are_the_cpus(monkeypatch):
    monkeypatch.setattr(hardware, "cpu_flags", lambda: {"avx2", "fma", "sse4_2", "avx", "x"})
    assert hardware.vector_extensions() == ["sse4_2", "avx", "avx2", "fma"]


def test_expected_onednn_state_follows_the_variable_then_the_cpu(monkeypatch):
    monkeypatch.setattr(hardware, "cpu_flags", lambda: {"avx2", "fma"})
    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
    state = hardware.expected_onednn_state()
    assert state["enabled"] is False and state["vector_extensions"] == ["avx2", "fma"]
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "1")
    assert hardware.expected_onednn_state()["enabled"] is True
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "0")
    assert hardware.expected_onednn_state()["enabled"] is False
    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS")
    monkeypatch.setattr(hardware, "cpu_flags", lambda: {"avx2", "avx512f", "avx512_bf16"})
    assert hardware.expected_onednn_state()["enabled"] is True


@pytest.mark.parametrize("setting", [None, "0", "1"])
def test_a_new_process_agrees_with_the_expected_state(setting):
    """What TensorFlow itself reports equals what expected_onednn_state predicts (in a fresh process:
    TensorFlow reads the variable once, when it loads)."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    if setting is not None:
        env["TF_ENABLE_ONEDNN_OPTS"] = setting
    code = ("from cnnbook import hardware; e = hardware.expected_onednn_state()['enabled']; "
            "import tensorflow; print(e, hardware.onednn_state()['enabled'])")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    expected, reported = out.stdout.split()
    assert expected == reported, out.stderr[-2000:]

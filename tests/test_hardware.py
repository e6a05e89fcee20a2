"""The machine: /proc/cpuinfo, the precision choice, training throughput."""

from __future__ import annotations

import os

import numpy as np
import pytest

from cnnbook import book, hardware, models

CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
cpu family\t: 6
model\t\t: 143
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse2 avx2 amx_bf16 amx_tile

processor\t: 1
model name\t: Another CPU
flags\t\t: fpu
"""


def test_cpuinfo_is_read_once_for_the_model_name_and_the_flags(tmp_path, monkeypatch):
    path = tmp_path / "cpuinfo"
    path.write_text(CPUINFO)
    monkeypatch.setattr(hardware, "_CPUINFO", path)
    assert hardware.cpu_info()["vendor_id"] == "GenuineIntel"
    assert hardware.cpu_model() == "Intel(R) Xeon(R) Platinum 8480+"  # the first processor's
    assert hardware.cpu_flags() == {"fpu", "sse2", "avx2", "amx_bf16", "amx_tile"}
    assert book.machine_info()["cpu"] == "Intel(R) Xeon(R) Platinum 8480+"
    assert book.cpu_description(book.machine_info()) == "Intel(R) Xeon(R) Platinum 8480+ (CPU family 6, model 143)"
    monkeypatch.setattr(hardware, "_CPUINFO", tmp_path / "missing")
    assert hardware.cpu_info() == {} and hardware.cpu_flags() == set() and hardware.cpu_model() is None
    assert book.machine_info()["cpu"]  # falls back on the platform module


def test_preferred_dtype_follows_the_cpu_and_the_environment(monkeypatch):
    monkeypatch.delenv("CNNBOOK_DTYPE", raising=False)
    monkeypatch.setattr(hardware, "cpu_flags", lambda: {"avx2", "amx_bf16", "amx_tile"})
    assert hardware.preferred_dtype() == "mixed_bfloat16"
    monkeypatch.setattr(hardware, "cpu_flags", lambda: {"avx2", "avx512f"})
    assert hardware.preferred_dtype() == "float32"
    monkeypatch.setenv("CNNBOOK_DTYPE", "mixed_bfloat16")
    assert hardware.preferred_dtype() == "mixed_bfloat16"
    monkeypatch.setenv("CNNBOOK_DTYPE", "half")
    with pytest.raises(ValueError, match="CNNBOOK_DTYPE must be one of"):
        hardware.preferred_dtype()


def test_cpu_flags_are_read_from_cpuinfo():
    flags = hardware.cpu_flags()
    if os.path.exists("/proc/cpuinfo"):
        assert "fpu" in flags or "fp" in flags or "sse2" in flags  # every x86 CPU has these
    else:
        assert flags == set()


def test_training_throughput_counts_images_per_second():
    x = np.zeros((16, 28, 28, 1), dtype=np.float32)
    y = np.zeros(16, dtype=np.int64)
    rate = hardware.training_throughput(models.keras_io_convnet(), x, y, steps=2)
    assert np.isfinite(rate) and rate > 0
    with pytest.raises(ValueError, match="steps"):
        hardware.training_throughput(models.keras_io_convnet(), x, y, steps=0)
    with pytest.raises(ValueError, match="one label per image"):
        hardware.training_throughput(models.keras_io_convnet(), x, y[:3])

"""Run the whole comparison: one worker process per row, one after another; write JSON and Markdown."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .report import bar_lines, build_report, to_markdown
from .spec import DATASET_NAMES, DEFAULT_TARGETS, Settings, bfloat16_units, result_paths

__all__ = ["WORKER", "kernel_class", "run_benchmark"]

#: The script each row is trained in (``python WORKER KEY SETTINGS_JSON RESULT``).
WORKER = Path(__file__).resolve().parent / "worker.py"


def _versions() -> dict[str, str]:
    from importlib import metadata

    out = {}
    for package in ("tensorflow", "keras", "numpy"):
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            out[package] = "not installed"
    return out


def _machine() -> dict[str, Any]:
    from cnnbook import hardware

    return hardware.machine_info() | {
        "bfloat16_units": list(bfloat16_units()),
        "vector_extensions": hardware.vector_extensions(),
        "float32_peak": hardware.float32_peak(),
    }


def kernel_class(machine: dict[str, Any], kernels: dict[str, Any] | None) -> str:
    """The file-name suffix saying which kernels a table ran: ``""`` for AVX-512 with oneDNN on (the
    tables measured first), ``"-avx2"`` on an AVX2-only CPU or with oneDNN capped at AVX2, then
    ``"-onednn-off"`` when oneDNN was off."""
    kernels = kernels or {}
    isa_cap = str(kernels.get("max_isa") or "").upper()
    avx2 = "avx512f" not in machine.get("vector_extensions", ["avx512f"]) or (
        kernels.get("enabled") and isa_cap.startswith("AVX2")
    )
    return ("-avx2" if avx2 else "") + ("-onednn-off" if kernels.get("enabled") is False else "")


def _pin_cpus(cpus: int | None) -> None:
    if cpus is None:
        return
    if not hasattr(os, "sched_setaffinity"):
        raise ValueError("--cpus needs Linux (os.sched_setaffinity).")
    available = sorted(os.sched_getaffinity(0))
    if cpus > len(available):
        raise ValueError(f"--cpus {cpus} asks for more CPUs than the {len(available)} this process may use.")
    os.sched_setaffinity(0, available[:cpus])


def run_benchmark(settings: Settings, out_dir: str | os.PathLike[str], *, command: str = "") -> dict[str, Any]:
    """Train every selected row in its own process, one after another; write JSON and Markdown.

    ``settings`` is resolved first (``auto`` precision -> float32 or bfloat16).
    Returns the report; writes ``<out_dir>/<dataset>-<precision>.json`` and ``.md``.
    """
    settings = settings.resolved()
    _pin_cpus(settings.cpus)  # children inherit the affinity
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    runs = settings.runs()
    if not runs:
        raise ValueError(
            f"Nothing to measure: {', '.join(f'{e.key} is {why}' for e, why in settings.skipped())}."
        )
    target = settings.target_accuracy
    print(
        f"Benchmark on {DATASET_NAMES[settings.dataset]} in {settings.precision}: "
        f"{', '.join(e.key for e, _ in runs) or 'no model'}; "
        f"target {target:.2%} ({DEFAULT_TARGETS[settings.dataset][1] if settings.target is None else 'given'})"
        + ("; REDUCED settings" if settings.reduced else ""),
        flush=True,
    )
    for entry, why in settings.skipped():
        print(f"    {entry.key}: {why}", flush=True)
    env = dict(os.environ)
    env["CUDA_VISIBLE_DEVICES"] = "-1"  # the comparison is on the CPU
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    results = []
    with tempfile.TemporaryDirectory(prefix="cnnbook-benchmark-") as tmp:
        for i, (entry, dtype) in enumerate(runs, start=1):
            print(f"[{i}/{len(runs)}] {entry.name}, in {dtype}", flush=True)
            result_path = Path(tmp) / f"{entry.key}.json"
            cmd = [sys.executable, str(WORKER), entry.key, json.dumps(asdict(settings)), str(result_path)]
            started = time.perf_counter()
            proc = subprocess.run(cmd, env=env)
            if proc.returncode != 0:
                raise RuntimeError(f"Training {entry.key} failed (exit status {proc.returncode}); see above.")
            result = json.loads(result_path.read_text())
            results.append(result)
            print(
                f"    {entry.key}: test accuracy {result['test_accuracy']:.4f}, training "
                f"{result['train_seconds']:.1f} s ({time.perf_counter() - started:.0f} s with start-up and "
                "measurements)",
                flush=True,
            )
    machine = _machine() | {"kernels": results[0].get("kernels") if results else None}
    report = build_report(settings, results, machine=machine, versions=_versions(), command=command)
    json_path, md_path = result_paths(out, settings.dataset, settings.precision)
    suffix = kernel_class(machine, machine["kernels"])
    json_path = json_path.with_name(json_path.stem + suffix + ".json")
    md_path = md_path.with_name(md_path.stem + suffix + ".md")
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    md_path.write_text(to_markdown(report) + "\n")
    print(to_markdown(report))
    print(f"Wrote {json_path} and {md_path}")
    print("\n".join(bar_lines(report)))
    return report

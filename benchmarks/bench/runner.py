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

__all__ = ["WORKER", "run_benchmark"]

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
    from cnnbook.book import machine_info

    return machine_info() | {"bfloat16_units": list(bfloat16_units())}


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
    report = build_report(settings, results, machine=_machine(), versions=_versions(), command=command)
    json_path, md_path = result_paths(out, settings.dataset, settings.precision)
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    md_path.write_text(to_markdown(report) + "\n")
    print(to_markdown(report))
    print(f"Wrote {json_path} and {md_path}")
    print("\n".join(bar_lines(report)))
    return report

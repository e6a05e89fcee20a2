"""Two MultiWorkerMirroredStrategy workers on loopback finish with identical weights (bounded in time)."""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import numpy as np
import pytest

from cnnbook import distributed


def _weights(path):
    import h5py

    found = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: found.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return found


def test_cluster_spec_and_ports():
    ports = distributed.free_ports(2)
    assert len(set(ports)) == 2
    spec = json.loads(distributed.cluster_spec(ports, 1))
    assert spec == {"cluster": {"worker": [f"127.0.0.1:{ports[0]}", f"127.0.0.1:{ports[1]}"]},
                    "task": {"type": "worker", "index": 1}}
    with pytest.raises(ValueError):
        distributed.cluster_spec(ports, 2)
    with pytest.raises(ValueError, match="mode"):
        distributed.run("ring", "unused")


def test_two_workers_on_loopback_agree(tmp_path):
    results = distributed.launch(2, tmp_path, timeout=240, train_size=512, test_size=200, epochs=1)
    assert [r["index"] for r in results] == [0, 1]
    assert all(r["replicas"] == 2 and r["global_batch"] == 256 and r["steps_per_epoch"] == 2 for r in results)
    first, second = (_weights(tmp_path / f"worker-{i}.weights.h5") for i in (0, 1))
    assert first.keys() == second.keys() and len(first) > 10
    for name in first:  # trainable weights by all-reduce, BN statistics by the final average
        np.testing.assert_array_equal(first[name], second[name], err_msg=name)
    assert results[0]["loss"] == results[1]["loss"] and np.isfinite(results[0]["loss"]).all()
    assert results[0]["test_accuracy"] == results[1]["test_accuracy"]


def _kill_when_listed(out, index, found):
    """Wait for the launcher's roster, then SIGKILL worker ``index`` (as the OOM killer would)."""
    roster = out / "workers.json"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            pids = json.loads(roster.read_text())["pids"]
        except (OSError, ValueError):
            time.sleep(0.05)
            continue
        found.extend(pids)
        os.kill(pids[index], signal.SIGKILL)
        return


def test_a_killed_worker_is_named_and_the_others_are_stopped(tmp_path):
    found = []
    killer = threading.Thread(target=_kill_when_listed, args=(tmp_path, 1, found))
    killer.start()
    start = time.monotonic()
    try:
        with pytest.raises(distributed.WorkerFailedError) as failure:
            distributed.launch(2, tmp_path, timeout=120, train_size=512, test_size=200, epochs=1)
    finally:
        killer.join()
    assert time.monotonic() - start < 60  # stopped at once, not after the timeout
    err = failure.value
    assert (err.index, err.returncode) == (1, -signal.SIGKILL)
    message = str(err)
    assert "\n" not in message
    assert message.startswith("worker 1 of 2 was killed by SIGKILL (exit status -9); the other workers were stopped")
    assert str(tmp_path / "worker-1.log") in message and "run the same command again" in message
    assert len(found) == 2
    with pytest.raises(ProcessLookupError):  # worker 0 did not outlive the launch
        os.kill(found[0], 0)
    assert not (tmp_path / "workers.json").exists()


def test_a_worker_error_is_reported_in_one_line_by_the_command(tmp_path, capsys):
    # 100 training images cannot fill one global batch of 128: the worker raises ValueError.
    status = distributed.main(["launch", "--workers", "1", "--out", str(tmp_path), "--train-size", "100",
                               "--test-size", "100", "--epochs", "1", "--timeout", "120"])
    err = capsys.readouterr().err.strip()
    assert status == 1 and "\n" not in err
    assert err.startswith("cnnbook.distributed: worker 0 of 1 exited with status 1")
    assert "smaller than the global batch 128" in err  # the worker's own message, from its log


def test_exit_descriptions():
    assert distributed._exit_description(-9) == "was killed by SIGKILL (exit status -9)"
    assert distributed._exit_description(3) == "exited with status 3"
    with pytest.raises(ValueError, match="workers"):
        distributed.launch(0, "unused")

"""Two MultiWorkerMirroredStrategy workers on loopback finish with identical weights (bounded in time)."""

from __future__ import annotations

import json

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

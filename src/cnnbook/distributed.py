"""Data-parallel training with ``tf.distribute``, and a launcher that starts workers like a cluster would.

Nothing here is a new engine: the strategies are TensorFlow's.  Each run trains
the Part I model (:func:`cnnbook.models.mnist_cnn`) with the chapter-5 recipe
in a process of its own, because a strategy (and the logical devices
``MirroredStrategy`` splits the CPU into) must be chosen before TensorFlow
starts::

    python -m cnnbook.distributed single   --out runs/single
    python -m cnnbook.distributed mirrored --devices 2 --out runs/mirrored
    python -m cnnbook.distributed launch   --workers 2 --out runs/workers

``launch`` starts ``--workers`` processes on 127.0.0.1, each with its own
``TF_CONFIG`` (the cluster's addresses and the worker's index) — exactly what a
cluster manager (Kubernetes, Slurm, a cloud's training service) does on real
machines, where only the addresses change.  Each worker runs
``MultiWorkerMirroredStrategy``: every step, each worker computes gradients on
its shard of the global batch, the workers average them (all-reduce) and apply
the same update, so their weights stay identical.  Every run writes
``<out>/worker-<i>.weights.h5`` and ``<out>/worker-<i>.json`` (seconds, accuracies).

``launch`` watches its workers: when one dies (killed, out of memory, an error),
it stops the others at once (they would wait for its gradients for ever) and
says which worker ended and how (:class:`WorkerFailedError`: its index, exit
status or signal, log).  ``<out>/workers.json`` lists the workers' process ids
and addresses while they run.  Workers keep no checkpoint yet: a failed launch
starts over when run again (resuming needs the worker's loop to save its state
each epoch, which changes what chapter 13 runs; deferred to its next re-run).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

__all__ = ["RunResult", "WorkerFailedError", "cluster_spec", "free_ports", "launch", "main", "run"]

#: What :func:`run` returns: one dict per process (``index``, ``replicas``, ``seconds``, ``val_accuracy``,
#: ``test_accuracy``, ``global_batch``, ...) plus ``wall_seconds`` of the whole launch.
RunResult = dict


def free_ports(n: int, host: str = "127.0.0.1") -> list[int]:
    """``n`` TCP ports free on ``host`` right now (the operating system picks them).

    Parameters
    ----------
    n : int
        How many (at least 1).
    host : str
        The address to bind.

    Returns
    -------
    list of int
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}.")
    sockets = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind((host, 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def cluster_spec(ports: Sequence[int], index: int, host: str = "127.0.0.1") -> str:
    """The ``TF_CONFIG`` value of worker ``index`` in a cluster of workers at ``host:port``.

    Parameters
    ----------
    ports : sequence of int
        One port per worker.
    index : int
        This worker's index (0 is the chief, which also writes summaries).
    host : str
        The workers' address (on a real cluster, each machine has its own).

    Returns
    -------
    str
        JSON: ``{"cluster": {"worker": [...]}, "task": {"type": "worker", "index": index}}``.
    """
    if not 0 <= index < len(ports):
        raise ValueError(f"index must be in [0, {len(ports)}), got {index}.")
    return json.dumps({"cluster": {"worker": [f"{host}:{p}" for p in ports]},
                       "task": {"type": "worker", "index": int(index)}})


def _strategy(mode: str, devices: int) -> Any:
    import tensorflow as tf

    if mode == "mirrored":
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * devices)
        return tf.distribute.MirroredStrategy([f"/cpu:{i}" for i in range(devices)],
                                              cross_device_ops=tf.distribute.ReductionToOneDevice())
    if mode == "worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()  # the default: one device, no distribution


def _train(args: argparse.Namespace) -> dict[str, Any]:
    """Train in this process under the strategy of ``args.mode``; write weights and a JSON record."""
    import keras
    import tensorflow as tf

    from . import data, models, training, workflows

    strategy = _strategy(args.mode, args.devices)
    index = json.loads(os.environ["TF_CONFIG"])["task"]["index"] if args.mode == "worker" else 0
    training.set_seed(args.seed)
    splits = data.prepare("mnist", train_size=args.train_size, test_size=args.test_size, seed=args.seed)
    replicas = strategy.num_replicas_in_sync
    # The global batch grows with the replicas (each keeps its per-replica batch), and the
    # learning rate with it (linear scaling), so each replica's step is what one process would do.
    global_batch = args.batch_size * replicas
    config = training.default_config("mnist", seed=args.seed, batch_size=global_batch,
                                     learning_rate=args.learning_rate * replicas,
                                     **({"epochs": args.epochs} if args.epochs else {}))
    steps = len(splits.x_train) // global_batch  # whole global batches: every replica takes the same steps
    if steps < 1:
        raise ValueError(f"train_size {len(splits.x_train)} is smaller than the global batch {global_batch}.")
    options = tf.data.Options()
    # Every worker reads the same arrays; DATA sharding gives each its own part of every global batch.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    train_ds = (tf.data.Dataset.from_tensor_slices((splits.x_train, splits.y_train))
                .shuffle(len(splits.x_train), seed=args.seed, reshuffle_each_iteration=True).repeat()
                .batch(global_batch, drop_remainder=True).prefetch(2).with_options(options))
    with strategy.scope():
        model = models.mnist_cnn(splits.input_shape, splits.num_classes, dtype="float32")
        optimizer = training.make_optimizer(config, steps)  # the recipe's optimiser (Adam for MNIST)
        loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction=None)
    iterator = iter(strategy.experimental_distribute_dataset(train_ds))

    # Keras 3's model.fit does not run under MultiWorkerMirroredStrategy (keras-team/keras#20585), so
    # this is the custom loop of TensorFlow's distributed-training guide, for every mode alike.
    @tf.function
    def train_step(batch: Any) -> Any:
        def replica_step(x: Any, y: Any) -> Any:
            with tf.GradientTape() as tape:
                logits = model(x, training=True)
                # Average over the *global* batch: the all-reduce then sums the replicas' shares.
                loss = tf.nn.compute_average_loss(loss_fn(y, logits), global_batch_size=global_batch)
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
            return loss

        return strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(replica_step, args=batch), axis=None)

    def accuracy(x: Any, y: Any) -> float:
        logits = np.concatenate([np.asarray(model(x[i:i + 1024], training=False)) for i in range(0, len(x), 1024)])
        return float((logits.argmax(axis=1) == y).mean())

    start = time.perf_counter()
    losses = []
    for _ in range(config.epochs):
        total = 0.0
        for _ in range(steps):
            total += float(train_step(next(iterator)))
        losses.append(total / steps)
    # Batch normalisation's moving statistics are not gradients: each replica tracked its own
    # shard's. Averaging them once at the end makes every worker hold the same model.
    @tf.function
    def average_statistics() -> None:
        def replica_fn() -> None:
            context = tf.distribute.get_replica_context()
            for variable in model.non_trainable_variables:
                variable.assign(context.all_reduce(tf.distribute.ReduceOp.MEAN, tf.identity(variable.value)))

        strategy.run(replica_fn)

    # A short run ends before BN's moving averages settle: re-estimate them on the same training
    # images on every worker (then identical everywhere; the average below keeps them so).
    workflows.refresh_batchnorm(model, splits.x_train[:workflows.REFRESH_IMAGES])
    average_statistics()
    seconds = time.perf_counter() - start
    history = {"loss": losses}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    # Every worker saves its own copy (on a cluster: its own disk); they are identical after all-reduce.
    model.save_weights(out / f"worker-{index}.weights.h5")
    record = {"mode": args.mode, "index": index, "replicas": replicas, "global_batch": global_batch,
              "learning_rate": config.learning_rate, "epochs": config.epochs, "train_size": len(splits.x_train),
              "steps_per_epoch": steps, "seconds": seconds, "loss": history["loss"],
              "val_accuracy": accuracy(splits.x_val, splits.y_val),
              "test_accuracy": accuracy(splits.x_test, splits.y_test)}
    (out / f"worker-{index}.json").write_text(json.dumps(record, indent=2))
    return record


def _command(mode: str, out: Path, *, devices: int = 1, train_size: int | None = None, test_size: int | None = None,
             epochs: int | None = None, batch_size: int = 128, learning_rate: float = 5e-3, seed: int = 0) -> list[str]:
    cmd = [sys.executable, "-m", "cnnbook.distributed", "_run", "--mode", mode, "--out", str(out),
           "--devices", str(devices), "--batch-size", str(batch_size), "--learning-rate", str(learning_rate),
           "--seed", str(seed)]
    for flag, value in (("--train-size", train_size), ("--test-size", test_size), ("--epochs", epochs)):
        if value is not None:
            cmd += [flag, str(value)]
    return cmd


def _quiet_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(extra or {})}
    src = str(Path(__file__).resolve().parents[1])  # this cnnbook, also when run from a source tree
    env["PYTHONPATH"] = os.pathsep.join([src, *filter(None, [env.get("PYTHONPATH")])])
    return env


def run(mode: str, out: str | os.PathLike[str], *, workers: int = 1, devices: int = 1, timeout: float = 600,
        **settings: Any) -> list[RunResult]:
    """Train in fresh processes and return each one's record.

    Parameters
    ----------
    mode : str
        ``"single"`` (one process, no distribution), ``"mirrored"`` (one process,
        ``MirroredStrategy`` over ``devices`` logical CPU devices) or
        ``"workers"`` (``workers`` processes on 127.0.0.1 with
        ``MultiWorkerMirroredStrategy``; see :func:`launch`).
    out : str or path-like
        Folder of the weights, records and logs.
    workers, devices : int
        Processes (``"workers"``) or logical devices (``"mirrored"``), at least 1.
    timeout : float
        Seconds before every process is stopped and ``RuntimeError`` raised.
    **settings
        ``train_size``, ``test_size``, ``epochs``, ``batch_size`` (per replica),
        ``learning_rate`` (per replica, scaled by the replicas), ``seed``.

    Returns
    -------
    list of dict
        One record per process (index order), each with ``wall_seconds``: the
        launch's wall-clock time, process start-up included.
    """
    if mode not in ("single", "mirrored", "workers"):
        raise ValueError(f"mode must be 'single', 'mirrored' or 'workers', got {mode!r}.")
    if workers < 1 or devices < 1:
        raise ValueError("workers and devices must be at least 1.")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if mode == "workers":
        ports = free_ports(workers)
        jobs = [(_command("worker", out, **settings), {"TF_CONFIG": cluster_spec(ports, i)}) for i in range(workers)]
    else:
        jobs = [(_command(mode, out, devices=devices, **settings), {})]
    start = time.perf_counter()
    processes = []
    for i, (cmd, extra) in enumerate(jobs):
        log = open(out / f"worker-{i}.log", "w")
        processes.append((subprocess.Popen(cmd, env=_quiet_env(extra), stdout=log, stderr=subprocess.STDOUT), log))
    try:
        for process, _ in processes:
            process.wait(timeout=max(1.0, timeout - (time.perf_counter() - start)))
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"distributed run did not finish in {timeout:.0f} s; see {out}/worker-*.log") from None
    finally:
        for process, log in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
            log.close()
    wall = time.perf_counter() - start
    failed = [i for i, (p, _) in enumerate(processes) if p.returncode != 0]
    if failed:
        raise RuntimeError(f"worker(s) {failed} failed; see {out}/worker-{failed[0]}.log")
    return [{**json.loads((out / f"worker-{i}.json").read_text()), "wall_seconds": wall}
            for i in range(len(processes))]


class WorkerFailedError(RuntimeError):
    """A worker of :func:`launch` ended with a non-zero exit status.

    Attributes
    ----------
    index : int
        The worker's index (0 is the chief).
    returncode : int
        Its exit status; negative: killed by that signal (``-9``: SIGKILL).
    log : pathlib.Path
        Everything the worker printed.
    """

    def __init__(self, message: str, index: int, returncode: int, log: Path) -> None:
        super().__init__(message)
        self.index, self.returncode, self.log = index, returncode, log


def _exit_description(returncode: int) -> str:
    """``"was killed by SIGKILL (exit status -9)"`` or ``"exited with status 1"``."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"was killed by {name} (exit status {returncode})"
    return f"exited with status {returncode}"


def _last_line(log: Path) -> str:
    """The last non-empty line a worker printed (its error, usually), or ``""``."""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return next((line.strip() for line in reversed(lines) if line.strip()), "")


def _watch(processes: list[subprocess.Popen], out: Path, timeout: float) -> float:
    """Wait for every worker; stop them all as soon as one fails. Returns the wall seconds."""
    start = time.perf_counter()
    try:
        while True:
            codes = [p.poll() for p in processes]
            failed = {i: code for i, code in enumerate(codes) if code is not None and code != 0}
            if failed:
                # A worker killed by a signal is the cause; the others then fail waiting for it.
                first = min(failed, key=lambda i: (failed[i] >= 0, i))
                code = failed[first]
                log = out / f"worker-{first}.log"
                said = _last_line(log) if code > 0 else ""
                raise WorkerFailedError(
                    f"worker {first} of {len(processes)} {_exit_description(code)}; the other "
                    f"workers were stopped{f' ({said})' if said else ''}; its log: {log}; run "
                    "the same command again to start the run over.", first, code, log)
            if all(code == 0 for code in codes):
                return time.perf_counter() - start
            if time.perf_counter() - start > timeout:
                raise RuntimeError(f"the workers did not finish in {timeout:.0f} s and were "
                                   f"stopped; see {out}/worker-*.log, or give --timeout.")
            time.sleep(0.1)
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()


def launch(workers: int, out: str | os.PathLike[str], *, timeout: float = 600, **settings: Any) -> list[RunResult]:
    """Start ``workers`` MultiWorkerMirroredStrategy processes on 127.0.0.1 and watch them.

    The processes are those of :func:`run` in its ``"workers"`` mode; the
    launcher also writes ``<out>/workers.json`` (process ids, addresses) and, when
    a worker dies, stops the others and says which one failed and how.

    Parameters
    ----------
    workers : int
        Worker processes (at least 1).
    out : str or path-like
        Folder of each worker's weights, record and log.
    timeout : float
        Seconds before the workers are stopped.
    **settings
        As for :func:`run`.

    Returns
    -------
    list of dict
        One record per worker.

    Raises
    ------
    WorkerFailedError
        A worker ended with a non-zero exit status (killed, or an error).
    RuntimeError
        The workers did not finish within ``timeout``.
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}.")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ports = free_ports(workers)
    processes: list[subprocess.Popen] = []
    logs = []
    try:
        for i in range(workers):
            logs.append(open(out / f"worker-{i}.log", "w"))
            env = _quiet_env({"TF_CONFIG": cluster_spec(ports, i)})
            processes.append(subprocess.Popen(_command("worker", out, **settings), env=env,
                                              stdout=logs[-1], stderr=subprocess.STDOUT))
        roster = {"pids": [p.pid for p in processes],
                  "workers": json.loads(cluster_spec(ports, 0))["cluster"]["worker"]}
        (out / "workers.json").write_text(json.dumps(roster, indent=2))
        wall = _watch(processes, out, timeout)
    finally:
        for process in processes:  # a failed start: stop the ones already running
            if process.poll() is None:
                process.kill()
                process.wait()
        for log in logs:
            log.close()
        (out / "workers.json").unlink(missing_ok=True)
    return [{**json.loads((out / f"worker-{i}.json").read_text()), "wall_seconds": wall}
            for i in range(workers)]


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m cnnbook.distributed {single,mirrored,launch}``: train and print each process's record.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        0 on success, 1 when a process failed or timed out.
    """
    parser = argparse.ArgumentParser(prog="python -m cnnbook.distributed",
                                     description="Data-parallel training of the Part I model with tf.distribute.")
    parser.add_argument("mode", choices=("single", "mirrored", "launch", "_run"))
    parser.add_argument("--out", required=True, help="folder of weights, records and logs")
    parser.add_argument("--workers", type=int, default=2, help="launch: worker processes (default 2)")
    parser.add_argument("--devices", type=int, default=2, help="mirrored: logical CPU devices (default 2)")
    parser.add_argument("--mode", dest="run_mode", default="single", help=argparse.SUPPRESS)
    parser.add_argument("--train-size", type=int)
    parser.add_argument("--test-size", type=int)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--batch-size", type=int, default=128, help="per replica (default 128)")
    parser.add_argument("--learning-rate", type=float, default=5e-3, help="per replica, scaled by the replicas")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=3600)
    args = parser.parse_args(argv)
    if args.mode == "_run":  # one process of a run (started by run/launch)
        args.mode = args.run_mode
        _train(args)
        return 0
    settings = {"train_size": args.train_size, "test_size": args.test_size, "epochs": args.epochs,
                "batch_size": args.batch_size, "learning_rate": args.learning_rate, "seed": args.seed}
    try:
        if args.mode == "launch":
            results = launch(args.workers, args.out, timeout=args.timeout, **settings)
        else:
            results = run(args.mode, args.out, devices=args.devices, timeout=args.timeout, **settings)
    except RuntimeError as err:
        print(f"cnnbook.distributed: {err}", file=sys.stderr)
        return 1
    for record in results:
        print(json.dumps(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())

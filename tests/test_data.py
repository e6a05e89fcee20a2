"""Tests of :mod:`cnnbook.data` on the real dataset files.

Nothing here mocks the loader: the real MNIST, Fashion-MNIST and CIFAR-10 files
are loaded from wherever the environment points (``$CNNBOOK_DATA_DIR``, Keras'
cache, Debian's ``/usr/share/datasets`` or a download), damaged copies of them
are written to temporary folders, and the download route runs against a real
HTTP server on 127.0.0.1.  Each real dataset is loaded once per module.

Every test that can write runs with ``$KERAS_HOME`` (the default download
cache) pointed at an empty temporary folder, and checks afterwards that the
failure left no file in it.
"""

from __future__ import annotations

import gzip
import hashlib
import http.server
import json
import os
import pickle
import pwd
import shutil
import subprocess
import sys
import tarfile
import tempfile
import textwrap
import threading
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from cnnbook import data
from cnnbook.data import ChecksumError, DatasetFormatError, DatasetNotFoundError

MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
IDX_STEMS = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
ENV_VARS = ("CNNBOOK_DATA_DIR", "CNNBOOK_MIRROR", "CNNBOOK_OFFLINE", "KERAS_HOME")


# --- Fixtures ----------------------------------------------------------------------


class RealData:
    """Loads each real dataset at most once, with the search path the session started with."""

    def __init__(self, tmp: Path) -> None:
        # Captured now, before the per-test fixtures clear the environment.
        self.environ = {var: os.environ.get(var) for var in ENV_VARS}
        self.tmp = tmp
        self._loaded: dict[str, data.Dataset] = {}
        self._gz: dict[str, dict[str, Path]] = {}

    def __call__(self, name: str) -> data.Dataset:
        if name not in self._loaded:
            during_test = {var: os.environ.get(var) for var in ENV_VARS}
            _set_environ(self.environ)
            try:
                self._loaded[name] = data.load_dataset(name)
            finally:
                _set_environ(during_test)
        return self._loaded[name]

    def gz_files(self, name: str) -> dict[str, Path]:
        """The four ``.gz`` IDX files of an MNIST-format dataset.

        The files the dataset was loaded from when it came from a folder of
        IDX files (the usual case); otherwise (Keras' ``mnist.npz``) IDX files
        rebuilt from the verified arrays, which have the official md5s.
        """
        if name not in self._gz:
            ds = self(name)
            folder = Path(ds.source)
            if all((folder / f"{stem}.gz").is_file() for stem in IDX_STEMS):
                self._gz[name] = {stem: folder / f"{stem}.gz" for stem in IDX_STEMS}
            else:
                out = self.tmp / f"rebuilt-{name}"
                out.mkdir()
                arrays = dict(zip(IDX_STEMS, (ds.x_train[..., 0], ds.y_train, ds.x_test[..., 0], ds.y_test)))
                self._gz[name] = {}
                for stem, a in arrays.items():
                    raw = _idx_bytes(a)
                    assert hashlib.md5(raw).hexdigest() == data._IDX_FILES[name][stem]
                    (out / f"{stem}.gz").write_bytes(gzip.compress(raw, compresslevel=1, mtime=0))
                    self._gz[name][stem] = out / f"{stem}.gz"
        return self._gz[name]


@pytest.fixture(scope="module")
def real(tmp_path_factory) -> RealData:
    return RealData(tmp_path_factory.mktemp("real"))


@pytest.fixture(autouse=True)
def keras_home(tmp_path, monkeypatch) -> Path:
    """Each test starts with no cnnbook settings and an empty Keras cache of its own."""
    for var in ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    home = tmp_path / "keras-home"
    monkeypatch.setenv("KERAS_HOME", str(home))
    return home


def _set_environ(values: dict[str, str | None]) -> None:
    for var, value in values.items():
        if value is None:
            os.environ.pop(var, None)
        else:
            os.environ[var] = value


def _idx_bytes(a: np.ndarray) -> bytes:
    magic = 2049 if a.ndim == 1 else 2051
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in a.shape)
    return header + np.ascontiguousarray(a, dtype=np.uint8).tobytes()


def _files(root: Path) -> list[Path]:
    """Every file (not folder) under ``root``; empty if it does not exist."""
    return sorted(p for p in root.rglob("*") if not p.is_dir()) if root.exists() else []


def _mnist_copy(real: RealData, folder: Path, replace: dict[str, bytes] | None = None) -> Path:
    """A folder with MNIST's four files, linked to the real ones except those in ``replace``.

    ``replace`` maps a file name (``stem.gz`` or ``stem`` for an uncompressed
    file) to the bytes to write instead of the real file of that stem.
    """
    folder.mkdir(parents=True, exist_ok=True)
    replace = replace or {}
    for stem, path in real.gz_files("mnist").items():
        own = [name for name in replace if name.split(".")[0] == stem]
        if own:
            (folder / own[0]).write_bytes(replace[own[0]])
        else:
            (folder / path.name).symlink_to(path)
    return folder


def _raw(real: RealData, stem: str, name: str = "mnist") -> bytes:
    return gzip.decompress(real.gz_files(name)[stem].read_bytes())


class _Pickled:
    """Unpickling this creates ``marker``: proof that a pickle was loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def _evil_cifar_tar(path: Path, marker: Path) -> Path:
    """A well-formed ``cifar-10-python.tar.gz`` whose first batch unpickles into a side effect."""
    payload = pickle.dumps(_Pickled(marker))
    src = path.parent / "evil-src"
    (src / "cifar-10-batches-py").mkdir(parents=True)
    for member in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (src / "cifar-10-batches-py" / member).write_bytes(payload)
    with tarfile.open(path, "w:gz") as tar:
        tar.add(src / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    shutil.rmtree(src)
    return path


# --- The real files ----------------------------------------------------------------


def test_mnist_shapes_dtypes_and_class_counts(real):
    ds = real("mnist")
    assert ds.x_train.shape == (60000, 28, 28, 1) and ds.x_test.shape == (10000, 28, 28, 1)
    assert ds.y_train.shape == (60000,) and ds.y_test.shape == (10000,)
    assert {a.dtype for a in (ds.x_train, ds.y_train, ds.x_test, ds.y_test)} == {np.dtype(np.uint8)}
    assert np.bincount(ds.y_train).tolist() == MNIST_TRAIN_COUNTS
    assert np.bincount(ds.y_test).tolist() == MNIST_TEST_COUNTS
    # The canonical order: first labels of the official files.
    assert ds.y_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert ds.y_test[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert ds.x_train.max() == 255 and ds.x_train.min() == 0
    assert ds.class_names == tuple("0123456789") and ds.num_classes == 10
    assert ds.image_shape == (28, 28, 1)
    assert ds.train[0] is ds.x_train and ds.test[1] is ds.y_test


def test_fashion_mnist_shapes_and_class_counts(real):
    ds = real("fashion_mnist")
    assert ds.x_train.shape == (60000, 28, 28, 1) and ds.x_test.shape == (10000, 28, 28, 1)
    assert ds.x_train.dtype == np.uint8 and ds.y_train.dtype == np.uint8
    assert np.bincount(ds.y_train).tolist() == [6000] * 10
    assert np.bincount(ds.y_test).tolist() == [1000] * 10
    assert ds.class_names[0] == "T-shirt/top" and ds.class_names[9] == "Ankle boot"


def test_cifar10_shapes_and_class_counts(real):
    ds = real("cifar10")
    assert ds.x_train.shape == (50000, 32, 32, 3) and ds.x_test.shape == (10000, 32, 32, 3)
    assert ds.y_train.shape == (50000,) and ds.y_test.shape == (10000,)
    assert {a.dtype for a in (ds.x_train, ds.y_train, ds.x_test, ds.y_test)} == {np.dtype(np.uint8)}
    assert np.bincount(ds.y_train).tolist() == [5000] * 10
    assert np.bincount(ds.y_test).tolist() == [1000] * 10
    assert ds.y_test[:10].tolist() == [3, 8, 8, 0, 6, 6, 1, 6, 3, 1]
    assert ds.class_names[3] == "cat" and ds.image_shape == (32, 32, 3)


def test_unknown_dataset_name_lists_the_choices():
    with pytest.raises(ValueError, match="mnist, fashion_mnist, cifar10"):
        data.load_dataset("imagenet")


def test_uncompressed_idx_files_load_too(real, tmp_path, keras_home):
    stems = ("train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
    folder = _mnist_copy(real, tmp_path / "raw", {stem: _raw(real, stem) for stem in stems})
    assert sorted(p.name for p in folder.iterdir() if p.suffix != ".gz") == sorted(stems)
    ds = data.load_dataset("mnist", search_dirs=[folder], download=False)
    np.testing.assert_array_equal(ds.y_test, real("mnist").y_test)
    assert _files(keras_home) == []


# --- Bad input: each raises its documented error and caches nothing ------------------


def test_truncated_gzip_file(real, tmp_path, keras_home):
    good = real.gz_files("mnist")["train-labels-idx1-ubyte"].read_bytes()
    folder = _mnist_copy(real, tmp_path / "d", {"train-labels-idx1-ubyte.gz": good[: len(good) // 2]})
    with pytest.raises(ChecksumError, match="gzip stream is damaged"):
        data.load_dataset("mnist", search_dirs=[folder], download=False)
    assert _files(keras_home) == []


def test_truncated_uncompressed_idx_file(real, tmp_path, keras_home):
    raw = _raw(real, "train-labels-idx1-ubyte")
    folder = _mnist_copy(real, tmp_path / "d", {"train-labels-idx1-ubyte": raw[:-100]})
    with pytest.raises(ChecksumError, match="md5"):
        data.load_dataset("mnist", search_dirs=[folder], download=False)
    assert _files(keras_home) == []


def test_read_idx_rejects_truncated_and_oversized_data():
    good = _idx_bytes(np.arange(12, dtype=np.uint8).reshape(3, 2, 2))
    np.testing.assert_array_equal(data.read_idx(good), np.arange(12).reshape(3, 2, 2))
    with pytest.raises(DatasetFormatError, match="truncated"):
        data.read_idx(good[:-1])
    with pytest.raises(DatasetFormatError, match="trailing"):
        data.read_idx(good + b"\0")
    with pytest.raises(DatasetFormatError, match="too short"):
        data.read_idx(good[:5])


def test_flipped_byte_in_validly_regzipped_idx_is_caught_by_the_md5_only(real, tmp_path, keras_home):
    raw = bytearray(_raw(real, "train-labels-idx1-ubyte"))
    raw[8] = (raw[8] + 1) % 10  # the first label, 5 -> 6: still a valid IDX file
    tampered = gzip.compress(bytes(raw))
    # Only the checksum can tell: the gzip stream is valid and the IDX parses.
    assert data.read_idx(gzip.decompress(tampered))[0] == 6
    folder = _mnist_copy(real, tmp_path / "d", {"train-labels-idx1-ubyte.gz": tampered})
    with pytest.raises(ChecksumError, match="md5 of the decompressed data"):
        data.load_dataset("mnist", search_dirs=[folder], download=False)
    assert _files(keras_home) == []


def test_flipped_byte_in_the_gzip_stream(real, tmp_path, keras_home):
    gz = bytearray(real.gz_files("mnist")["train-labels-idx1-ubyte"].read_bytes())
    gz[len(gz) // 2] ^= 0xFF
    folder = _mnist_copy(real, tmp_path / "d", {"train-labels-idx1-ubyte.gz": bytes(gz)})
    with pytest.raises(ChecksumError):
        data.load_dataset("mnist", search_dirs=[folder], download=False)
    assert _files(keras_home) == []


def test_wrong_magic_number(real, tmp_path, keras_home):
    raw = bytearray(_raw(real, "train-labels-idx1-ubyte"))
    raw[3] = 0x02  # 2049 -> 2050
    # The IDX reader names the problem ...
    with pytest.raises(DatasetFormatError, match="magic number 2050"):
        data.read_idx(bytes(raw))
    # ... but the loader never gets that far: the checksum is checked first.
    folder = _mnist_copy(real, tmp_path / "d", {"train-labels-idx1-ubyte.gz": gzip.compress(bytes(raw))})
    with pytest.raises(ChecksumError, match="md5"):
        data.load_dataset("mnist", search_dirs=[folder], download=False)
    assert _files(keras_home) == []


def test_the_wrong_file_under_a_right_name(real, tmp_path, keras_home):
    """Fashion-MNIST's labels where MNIST's should be: a valid IDX file, the wrong one."""
    other = real.gz_files("fashion_mnist")["train-labels-idx1-ubyte"].read_bytes()
    folder = _mnist_copy(real, tmp_path / "d", {"train-labels-idx1-ubyte.gz": other})
    with pytest.raises(ChecksumError, match="not the official release"):
        data.load_dataset("mnist", search_dirs=[folder], download=False)
    assert _files(keras_home) == []


def test_cifar10_npz_with_one_altered_pixel(real, tmp_path, keras_home):
    """The verified arrays, one pixel changed by one level, in a valid npz: only the sha256 can tell.

    (An npz container of the official arrays other than the official one is
    accepted: the offline copy in ``$CNNBOOK_DATA_DIR`` is such a file.)
    """
    ds = real("cifar10")
    arrays = {"x_train": ds.x_train, "y_train": ds.y_train, "x_test": ds.x_test.copy(), "y_test": ds.y_test}
    bad = tmp_path / "bad"
    bad.mkdir()
    arrays["x_test"][1234, 5, 6, 2] ^= 1
    np.savez(bad / "cifar10.npz", **arrays)
    with pytest.raises(ChecksumError, match="sha256 of array 'x_test'"):
        data.load_dataset("cifar10", search_dirs=[bad], download=False)
    assert _files(keras_home) == []


def test_truncated_cifar10_npz(real, tmp_path, keras_home):
    ds = real("cifar10")
    np.savez(tmp_path / "whole.npz", x_train=ds.x_train[:100], y_train=ds.y_train[:100])
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "cifar10.npz").write_bytes((tmp_path / "whole.npz").read_bytes()[:20000])
    with pytest.raises(ChecksumError, match="cannot be read as a CIFAR-10 .npz"):
        data.load_dataset("cifar10", search_dirs=[tmp_path / "d"], download=False)
    assert _files(keras_home) == []


def test_cifar10_npz_with_reshaped_arrays(real, tmp_path, keras_home):
    """The right bytes in the wrong shape: the sha256 of the bytes alone would pass."""
    ds = real("cifar10")
    (tmp_path / "d").mkdir()
    np.savez(
        tmp_path / "d" / "cifar10.npz",
        x_train=ds.x_train.reshape(50000, -1), y_train=ds.y_train, x_test=ds.x_test, y_test=ds.y_test,
    )
    with pytest.raises(ChecksumError, match=r"expected uint8 \(50000, 32, 32, 3\)"):
        data.load_dataset("cifar10", search_dirs=[tmp_path / "d"], download=False)


def test_cifar10_archive_is_never_unpickled_before_its_md5_matches(tmp_path, keras_home):
    live = tmp_path / "proof-the-payload-works"
    pickle.loads(pickle.dumps(_Pickled(live))).close()
    assert live.exists()  # the payload really does something when unpickled

    marker = tmp_path / "unpickled"
    folder = tmp_path / "d"
    folder.mkdir()
    _evil_cifar_tar(folder / "cifar-10-python.tar.gz", marker)
    with pytest.raises(ChecksumError, match="md5"):
        data.load_dataset("cifar10", search_dirs=[folder], download=False)
    assert not marker.exists()
    assert _files(keras_home) == []


def test_keras_mnist_npz_with_the_wrong_checksum(tmp_path, keras_home):
    folder = tmp_path / "d"
    folder.mkdir()
    np.savez(folder / "mnist.npz", x_train=np.zeros((1, 28, 28), np.uint8))
    with pytest.raises(ChecksumError, match="sha256"):
        data.load_dataset("mnist", search_dirs=[folder], download=False)
    assert _files(keras_home) == []


def test_empty_directory_names_dataset_places_and_what_to_do(tmp_path, keras_home):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetNotFoundError) as err:
        data.load_dataset("cifar10", search_dirs=[empty], download=False)
    message = str(err.value)
    assert "'cifar10'" in message
    assert f"  - {empty / 'cifar10'}\n" in message and f"  - {empty}\n" in message
    assert "switched off" in message
    assert "https://www.cs.toronto.edu/~kriz/cifar.html" in message and "CNNBOOK_DATA_DIR" in message
    assert isinstance(err.value, FileNotFoundError)
    assert _files(empty) == [] and _files(keras_home) == []


def test_default_search_lists_every_place_and_respects_offline(tmp_path, keras_home, monkeypatch):
    """The search the way users configure it: environment variables only."""
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("CNNBOOK_DATA_DIR", str(empty))
    monkeypatch.setenv("CNNBOOK_OFFLINE", "1")
    with pytest.raises(DatasetNotFoundError) as err:
        data.load_dataset("mnist")
    message = str(err.value)
    for place in (empty / "mnist", keras_home / "datasets" / "mnist", Path("/usr/share/datasets/mnist")):
        assert f"  - {place}\n" in message
    assert "CNNBOOK_OFFLINE" in message and "CNNBOOK_MIRROR" in message
    assert _files(keras_home) == []


def test_fashion_mnist_message_suggests_the_debian_package(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="apt-get install dataset-fashion-mnist"):
        data.load_dataset("fashion_mnist", search_dirs=[tmp_path], download=False)


# --- A folder that cannot be read -----------------------------------------------------

_UNREADABLE_SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    from cnnbook import data  # imported while still allowed to read the package

    if os.geteuid() == 0:
        uid, gid = int(sys.argv[2]), int(sys.argv[3])
        try:
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
        except OSError as exc:
            print(json.dumps({"skip": f"cannot drop root privileges: {exc}"}))
            sys.exit(0)
    results = {}
    for case in sorted(os.listdir(sys.argv[1])):
        os.environ["CNNBOOK_DATA_DIR"] = os.path.join(sys.argv[1], case)
        try:
            data.load_dataset("mnist")
            results[case] = ["loaded", ""]
        except Exception as exc:
            results[case] = [type(exc).__name__, str(exc)]
    print(json.dumps({"uid": os.geteuid(), "results": results}))
    """
)


@pytest.fixture(scope="module")
def unreadable_results():
    """Run the loader on unreadable folders as a user that really cannot read them.

    Tests run as root in CI, and root reads everything whatever the mode bits
    say, so ``chmod 000`` alone proves nothing.  A subprocess imports cnnbook
    (the venv's interpreter lives under /root, which only root may enter), then
    drops to the unprivileged user ``nobody`` and calls :func:`load_dataset`:
    the kernel then refuses the reads for real.  Run as an ordinary user, the
    subprocess simply keeps that user, for whom the modes are enough.  The
    folders live in a fresh world-traversable temporary folder so that only
    the folder under test is out of reach; the ``readable`` case proves that.
    """
    base = Path(tempfile.mkdtemp(prefix="cnnbook-perm-"))
    try:
        base.chmod(0o755)
        root = base / "cases"
        root.mkdir(mode=0o755)
        for case in ("readable", "locked", "locked-subfolder", "listable-not-searchable", "locked-file"):
            (root / case).mkdir(mode=0o755)
        (root / "locked-subfolder" / "mnist").mkdir()
        for stem in IDX_STEMS:  # names are enough: the reads fail before any content matters
            (root / "locked-file" / f"{stem}.gz").write_bytes(b"")
        (root / "locked-file" / "train-images-idx3-ubyte.gz").chmod(0o000)
        (root / "locked").chmod(0o000)
        (root / "locked-subfolder" / "mnist").chmod(0o000)
        (root / "listable-not-searchable").chmod(0o644)
        try:
            nobody = pwd.getpwnam("nobody")
            uid, gid = nobody.pw_uid, nobody.pw_gid
        except KeyError:
            uid = gid = 65534
        env = {k: v for k, v in os.environ.items() if k not in ENV_VARS}
        env.update(KERAS_HOME=str(base / "keras-home"), CNNBOOK_OFFLINE="1")
        proc = subprocess.run(
            [sys.executable, "-c", _UNREADABLE_SCRIPT, str(root), str(uid), str(gid)],
            capture_output=True, text=True, env=env, timeout=120, cwd=base,
        )
        assert proc.returncode == 0, proc.stderr
        out = json.loads(proc.stdout)
        if "skip" in out:
            pytest.skip(out["skip"])
        out["keras_home_files"] = _files(base / "keras-home")
        return out
    finally:
        for path in base.rglob("*"):
            if not path.is_symlink():
                path.chmod(0o700)
        shutil.rmtree(base)


def test_unreadable_check_runs_unprivileged(unreadable_results):
    assert unreadable_results["uid"] != 0
    # The control: the same place, readable, gives the ordinary "not found" error.
    kind, message = unreadable_results["results"]["readable"]
    assert kind == "DatasetNotFoundError" and "Searched these folders" in message
    assert unreadable_results["keras_home_files"] == []


@pytest.mark.parametrize(
    "case, culprit",
    [
        ("locked", "locked"),
        ("locked-subfolder", "locked-subfolder/mnist/"),
        ("listable-not-searchable", "listable-not-searchable/"),
        ("locked-file", "locked-file/train-images-idx3-ubyte.gz"),
    ],
)
def test_unreadable_directory(unreadable_results, case, culprit):
    kind, message = unreadable_results["results"][case]
    assert kind == "DatasetNotFoundError"
    assert "'mnist'" in message and "cannot be read (Permission denied)" in message
    assert culprit in message and "chmod" in message


# --- The download route, against a real local HTTP server -----------------------------


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass

    def do_GET(self):
        self.server.requests.append(self.path)
        if self.path.startswith("/short/"):  # promises more bytes than it sends, then hangs up
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.write(b"\x1f\x8b" + b"\0" * 100)
            self.close_connection = True
            return
        super().do_GET()


@pytest.fixture(scope="module")
def mirror(tmp_path_factory):
    """An HTTP server on 127.0.0.1 serving a temporary folder; ``.url(sub)``, ``.root``, ``.requests``."""
    root = tmp_path_factory.mktemp("mirror")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_Handler, directory=str(root)))
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    class Mirror:
        def __init__(self):
            self.root = root
            self.requests = server.requests

        def url(self, sub: str) -> str:
            return f"http://127.0.0.1:{server.server_address[1]}/{sub}"

    try:
        yield Mirror()
    finally:
        server.shutdown()
        server.server_close()


def test_download_through_the_mirror_then_from_the_cache(real, mirror, tmp_path, keras_home, monkeypatch):
    for path in real.gz_files("mnist").values():
        (mirror.root / "good" / "mnist").mkdir(parents=True, exist_ok=True)
        (mirror.root / "good" / "mnist" / path.name).symlink_to(path)
    empty = tmp_path / "empty"
    empty.mkdir()
    # Exactly what a user sets: a data folder without the files and a mirror ({name} = dataset).
    monkeypatch.setenv("CNNBOOK_DATA_DIR", str(empty))
    monkeypatch.setenv("CNNBOOK_MIRROR", mirror.url("good/{name}/"))
    before = len(mirror.requests)

    ds = data.load_dataset("mnist")

    cache = keras_home / "datasets" / "mnist"
    assert ds.source == str(cache)
    assert sorted(mirror.requests[before:]) == sorted(f"/good/mnist/{s}.gz" for s in IDX_STEMS)
    np.testing.assert_array_equal(ds.x_train, real("mnist").x_train)
    np.testing.assert_array_equal(ds.y_test, real("mnist").y_test)
    assert _files(keras_home) == sorted(cache / f"{s}.gz" for s in IDX_STEMS)  # no .part left
    for stem, path in real.gz_files("mnist").items():
        assert (cache / f"{stem}.gz").read_bytes() == path.read_bytes()

    # The second time it comes from Keras' cache: no request at all.
    again = data.load_dataset("mnist")
    assert again.source == str(cache) and len(mirror.requests) == before + 4


def test_download_of_fashion_mnist_from_a_mirror_without_trailing_slash(real, mirror, tmp_path, monkeypatch):
    folder = mirror.root / "fashion"
    folder.mkdir()
    for path in real.gz_files("fashion_mnist").values():
        (folder / path.name).symlink_to(path)
    monkeypatch.setenv("CNNBOOK_MIRROR", mirror.url("fashion"))
    ds = data.load_dataset("fashion_mnist", search_dirs=[], cache_dir=tmp_path / "cache")
    np.testing.assert_array_equal(ds.y_train, real("fashion_mnist").y_train)
    assert ds.source == str(tmp_path / "cache" / "fashion-mnist")


def test_corrupt_download_raises_and_leaves_no_file(real, mirror, keras_home, monkeypatch):
    folder = mirror.root / "corrupt"
    folder.mkdir()
    for path in real.gz_files("mnist").values():
        (folder / path.name).symlink_to(path)
    # The first file fetched: one pixel brightened, then validly gzipped again.
    raw = bytearray(_raw(real, "train-images-idx3-ubyte"))
    raw[16 + 28 * 14 + 14] ^= 0x01
    (folder / "train-images-idx3-ubyte.gz").unlink()
    (folder / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(bytes(raw), compresslevel=1))
    monkeypatch.setenv("CNNBOOK_MIRROR", mirror.url("corrupt/"))

    with pytest.raises(ChecksumError, match="failed its check and was deleted") as err:
        data.load_dataset("mnist", search_dirs=[])
    assert mirror.url("corrupt/train-images-idx3-ubyte.gz") in str(err.value)
    assert "md5" in str(err.value)
    assert _files(keras_home) == []  # neither the file nor a .part


def test_corrupt_cifar10_download_is_deleted_unpickled(mirror, tmp_path, keras_home, monkeypatch):
    (mirror.root / "evil").mkdir()
    marker = tmp_path / "unpickled"
    _evil_cifar_tar(mirror.root / "evil" / "cifar-10-python.tar.gz", marker)
    monkeypatch.setenv("CNNBOOK_MIRROR", mirror.url("evil/"))
    with pytest.raises(ChecksumError, match="md5"):
        data.load_dataset("cifar10", search_dirs=[])
    assert not marker.exists()
    assert _files(keras_home) == []


def test_mirror_without_the_files(mirror, tmp_path, keras_home, monkeypatch):
    monkeypatch.setenv("CNNBOOK_MIRROR", mirror.url("nothing-here/"))
    with pytest.raises(DatasetNotFoundError) as err:
        data.load_dataset("mnist", search_dirs=[tmp_path])
    message = str(err.value)
    assert "'mnist'" in message and mirror.url("nothing-here/") in message and "404" in message
    assert f"  - {tmp_path}\n" in message and "What to do" in message
    assert _files(keras_home) == []


def test_interrupted_download(mirror, tmp_path, keras_home, monkeypatch):
    monkeypatch.setenv("CNNBOOK_MIRROR", mirror.url("short/"))
    with pytest.raises(DatasetNotFoundError, match="download from .*short/ failed"):
        data.load_dataset("mnist", search_dirs=[tmp_path])
    assert _files(keras_home) == []


# --- Splits ----------------------------------------------------------------------------


def test_stratified_split_is_stratified_disjoint_and_seeded(real):
    labels = real("mnist").y_train
    train, val = data.stratified_split(labels, 5000, seed=0)
    assert len(val) == 5000 and len(train) == 55000
    assert np.intersect1d(train, val).size == 0
    np.testing.assert_array_equal(np.union1d(train, val), np.arange(60000))
    assert np.all(np.diff(train) > 0) and np.all(np.diff(val) > 0)
    share = np.array(MNIST_TRAIN_COUNTS) * 5000 / 60000
    assert np.all(np.abs(np.bincount(labels[val]) - share) < 1)

    same_train, same_val = data.stratified_split(labels, 5000, seed=0)
    np.testing.assert_array_equal(same_val, val)
    np.testing.assert_array_equal(same_train, train)
    assert not np.array_equal(data.stratified_split(labels, 5000, seed=1)[1], val)


def test_stratified_split_fraction_and_bad_sizes():
    labels = np.repeat(np.arange(4), [10, 20, 30, 40])
    train, val = data.stratified_split(labels, 0.1, seed=3)
    assert np.bincount(labels[val]).tolist() == [1, 2, 3, 4] and len(train) == 90
    for bad in (0, 100, 0.0, 1.0, -0.5):
        with pytest.raises(ValueError, match="validation_size"):
            data.stratified_split(labels, bad)


def test_stratified_subset(real):
    labels = real("fashion_mnist").y_test
    idx = data.stratified_subset(labels, 500, seed=0)
    assert np.bincount(labels[idx]).tolist() == [50] * 10
    np.testing.assert_array_equal(idx, data.stratified_subset(labels, 500, seed=0))
    np.testing.assert_array_equal(data.stratified_subset(labels, 10**6), np.arange(len(labels)))


def test_prepare(real):
    ds = real("mnist")
    s = data.prepare("mnist", dataset=ds, validation_size=5000, train_size=2000, test_size=1000, seed=0)
    assert s.x_train.shape == (2000, 28, 28, 1) and s.x_val.shape == (5000, 28, 28, 1)
    assert s.x_test.shape == (1000, 28, 28, 1) and s.input_shape == (28, 28, 1) and s.num_classes == 10
    for x in (s.x_train, s.x_val, s.x_test):
        assert x.dtype == np.float32 and x.min() == 0.0 and x.max() == 1.0
    assert np.all(np.abs(np.bincount(s.y_test) - np.array(MNIST_TEST_COUNTS) / 10) < 1)
    again = data.prepare("mnist", dataset=ds, validation_size=5000, train_size=2000, test_size=1000, seed=0)
    np.testing.assert_array_equal(again.x_train, s.x_train)
    np.testing.assert_array_equal(again.y_val, s.y_val)
    whole = data.prepare("mnist", dataset=ds, validation_size=5000)
    assert len(whole.y_train) + len(whole.y_val) == 60000 and len(whole.y_test) == 10000
    with pytest.raises(ValueError, match="train_size"):
        data.prepare("mnist", dataset=ds, train_size=5)


def test_to_float():
    x = data.to_float(np.array([[[0, 255]]], dtype=np.uint8))
    assert x.shape == (1, 1, 2, 1) and x.dtype == np.float32 and x.max() == 1.0
    with pytest.raises(ValueError, match="uint8"):
        data.to_float(np.zeros((1, 2, 2), dtype=np.float32))
    with pytest.raises(ValueError, match="shaped"):
        data.to_float(np.zeros((2, 2), dtype=np.uint8))


def test_channel_statistics_match_a_float64_reference_where_float32_sums_stall():
    rng = np.random.default_rng(0)
    # 5,000 images of 64×64×2 with values near 0.9: each channel's sum, 18.4 million, is past
    # float32's 2**24 (with the channel axis kept, NumPy adds image after image in float32).
    images = (0.8 + 0.2 * rng.random((5000, 64, 64, 2), dtype=np.float32)).astype(np.float32)
    mean, std = data.channel_statistics(images)
    reference = images.astype(np.float64)
    np.testing.assert_allclose(mean, reference.mean(axis=(0, 1, 2)), rtol=1e-9)
    np.testing.assert_allclose(std, reference.std(axis=(0, 1, 2)), rtol=1e-9)
    assert mean.dtype == np.float64 and mean.shape == (2,)
    # The float32 running sum that the CIFAR-10 chapter once printed stalls at 2**24 here.
    naive = images.mean(axis=(0, 1, 2))
    assert abs(float(naive[0]) - mean[0]) > 0.05
    with pytest.raises(ValueError, match="N×H×W×C"):
        data.channel_statistics(images[0])


def test_an_augmented_pipeline_repeats_its_batches_from_the_same_seed():
    # Batches augmented in parallel would draw from the layer's generator in thread order: the same seed
    # would then give other shifts from run to run. Many small batches make such a race likely.
    from cnnbook import models

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(512, 12, 12, 1), dtype=np.uint8)
    labels = np.arange(512) % 10

    def batches():
        augment = models.augmentation(seed=3, translation=0.25, flip=False, fill_mode="constant",
                                      interpolation="nearest")
        ds = data.make_pipeline(images, labels, batch_size=8, shuffle=True, seed=1, augment=augment)
        return np.concatenate([x.numpy() for x, _ in ds])

    first, second = batches(), batches()
    plain = np.concatenate([x.numpy() for x, _ in data.make_pipeline(images, labels, batch_size=8, shuffle=True, seed=1)])
    assert not np.array_equal(first, plain)  # the layer did shift
    assert first.shape == (512, 12, 12, 1) and np.isin(first, np.append(images.astype(np.float32) / np.float32(255), 0)).all()  # whole pixels
    np.testing.assert_array_equal(first, second)

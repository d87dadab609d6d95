import gzip
import os
import pickle

import numpy as np
import pytest
from sklearn.datasets import load_digits as sklearn_digits

from gpunn.data import load_cifar10, load_dataset, load_digits, load_mnist, make_spiral, train_val_split


def test_digits_split_is_fixed_disjoint_and_the_real_data():
    s = load_digits()
    assert [len(s.y_train), len(s.y_val), len(s.y_test)] == [1257, 180, 360]
    assert s.X_train.dtype == np.float32 and s.X_train.shape[1] == 64
    X, y = load_digits(split=False)
    ref = sklearn_digits()
    np.testing.assert_array_equal(X, ref.data.astype(np.float32))
    np.testing.assert_array_equal(y, ref.target)
    rows = {r.tobytes() + bytes([c]) for r, c in zip(X, y)}
    parts = [np.c_[Xp, yp] for Xp, yp in ((s.X_train, s.y_train), (s.X_val, s.y_val), (s.X_test, s.y_test))]
    assert sum(len(p) for p in parts) == len(rows) + (len(X) - len(rows))  # every row used exactly once
    np.testing.assert_array_equal(load_digits().X_test, s.X_test)


def test_spiral(rng):
    X, y = make_spiral(50, 4, seed=3)
    assert X.shape == (200, 2) and np.bincount(y).tolist() == [50] * 4
    np.testing.assert_array_equal(X, make_spiral(50, 4, seed=3)[0])
    assert np.abs(X).max() <= 1.0 + 1e-6
    with pytest.raises(ValueError, match="classes must be >= 2"):
        make_spiral(10, 1)


def test_train_val_split(rng):
    X, y = rng.standard_normal((50, 3)), rng.integers(0, 3, 50)
    X_tr, X_val, y_tr, y_val = train_val_split(X, y, 0.2, seed=1)
    assert len(X_val) == 10 and len(X_tr) == 40
    together = np.sort(np.concatenate([X_tr[:, 0], X_val[:, 0]]))
    np.testing.assert_array_equal(together, np.sort(X[:, 0]))
    with pytest.raises(ValueError, match="val_fraction must be in"):
        train_val_split(X, y, 1.0)
    with pytest.raises(ValueError, match="leaves an empty part"):
        train_val_split(X[:2], y[:2], 0.1)


# ---------------------------------------------------------------- MNIST (IDX)


def write_idx(path, array, compress=False):
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    if compress:
        path = path.with_name(path.name + ".gz")
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


def fake_mnist(tmp_path, rng, compress):
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (12, 28, 28)),
        "train-labels-idx1-ubyte": rng.integers(0, 10, 12),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (5, 28, 28)),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, 5),
    }
    for name, a in arrays.items():
        write_idx(tmp_path / name, a, compress)
    return arrays


@pytest.mark.parametrize("compress", [False, True])
def test_mnist_reads_idx_files(compress, tmp_path, rng):
    arrays = fake_mnist(tmp_path, rng, compress)
    s = load_mnist(tmp_path)
    np.testing.assert_array_equal(s.X_train, arrays["train-images-idx3-ubyte"].reshape(12, 784))
    np.testing.assert_array_equal(s.y_test, arrays["t10k-labels-idx1-ubyte"])
    assert s.X_train.dtype == np.float32 and s.X_val is None


def test_mnist_errors_name_the_file(tmp_path, rng):
    fake_mnist(tmp_path, rng, False)
    path = tmp_path / "t10k-labels-idx1-ubyte"
    path.write_bytes(path.read_bytes()[:-2])
    with pytest.raises(ValueError, match=r"t10k-labels-idx1-ubyte': header says shape \(5,\) \(5 bytes\), file holds 3"):
        load_mnist(tmp_path)
    path.write_bytes(b"\x00\x00\x0d\x01" + (5).to_bytes(4, "big") + bytes(20))
    with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte' is not a 1-D unsigned-byte IDX file"):
        load_mnist(tmp_path)
    path.unlink()
    with pytest.raises(ValueError, match="no file 't10k-labels-idx1-ubyte'"):
        load_mnist(tmp_path)
    with pytest.raises(ValueError, match="does not exist or is not a directory"):
        load_mnist(tmp_path / "nowhere")


# ---------------------------------------------------------------- CIFAR-10 (pickle)


def fake_cifar(root, rng, n=4):
    root.mkdir(parents=True, exist_ok=True)
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (n, 3072)).astype(np.uint8), b"labels": rng.integers(0, 10, n).tolist()}
        (root / name).write_bytes(pickle.dumps(batch, protocol=2))
        batches[name] = batch
    return batches


def test_cifar10_reads_pickle_batches(tmp_path, rng):
    batches = fake_cifar(tmp_path / "cifar-10-batches-py", rng)
    s = load_cifar10(tmp_path)  # finds the usual subdirectory
    assert s.X_train.shape == (20, 3072) and s.X_test.shape == (4, 3072)
    np.testing.assert_array_equal(s.X_train[4:8], batches["data_batch_2"][b"data"])
    np.testing.assert_array_equal(s.y_test, batches["test_batch"][b"labels"])


class _Evil:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (os.makedirs, (self.target,))


def test_cifar10_refuses_foreign_and_hostile_files(tmp_path, rng):
    fake_cifar(tmp_path, rng)
    (tmp_path / "data_batch_3").write_bytes(pickle.dumps({b"data": _Evil(str(tmp_path / "pwned"))}))
    with pytest.raises(ValueError, match="data_batch_3' is not a CIFAR-10 python batch: refusing to load"):
        load_cifar10(tmp_path)
    assert not (tmp_path / "pwned").exists()
    (tmp_path / "data_batch_3").write_bytes(pickle.dumps({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}))
    with pytest.raises(ValueError, match=r"data must be uint8 of shape \(N, 3072\)"):
        load_cifar10(tmp_path)
    (tmp_path / "data_batch_3").write_bytes(b"plain text")
    with pytest.raises(ValueError, match="data_batch_3' is not a CIFAR-10 python batch"):
        load_cifar10(tmp_path)


def test_load_dataset_by_name(tmp_path, rng):
    s = load_dataset("spiral", seed=1)
    assert len(s.y_train) + len(s.y_val) + len(s.y_test) == 900
    fake_cifar(tmp_path, rng, n=300)
    c = load_dataset("cifar10", tmp_path)
    assert len(c.y_val) == 1000 and len(c.y_train) == 500
    with pytest.raises(ValueError, match="unknown dataset 'imagenet'"):
        load_dataset("imagenet")
    with pytest.raises(ValueError, match="--data-dir"):
        load_dataset("mnist")

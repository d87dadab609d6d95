"""First-layer filters of a ConvNet, before and after training, drawn as image grids.

cs231n shows that a trained ConvNet's first layer learns oriented edge and blob detectors
from data alone. This lesson trains the three-layer ConvNet (32 5x5 filters - relu - 2x2 max pool
- affine 100 - relu - affine) on the embedded 8x8 digits, or on a CIFAR-10 subsample (7x7 colour
filters) when ``data_dir`` holds its batches, and draws the filters at initialisation beside the
learned ones. The settings favour a readable picture over the last half point of accuracy: small
initial weights (std 0.01, cs231n's ``weight_scale``) and L2 weight decay 0.01, without batchnorm,
so what the filters hold comes from the data (with batchnorm and He init the digits' filters stay
close to their random start while the net still reaches 99%).

    gpunn lesson filters --out lessons/            # or: python -m gpunn.lessons.filters --out lessons/
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from ..data.by_name import IMAGE_SHAPES, load_dataset
from ..devices import device as make_device
from ..devices import to_numpy
from ..nn.convnet import three_layer_convnet
from ..nn.losses import SoftmaxCrossEntropy
from ..optim.adam import Adam
from ..optim.schedules import CosineAnnealing
from ..preprocessing import Standardize
from ..trainer import Trainer

CIFAR_ROWS = 5000  # a subsample of the training rows keeps the lesson near a minute on 2 cores
SETTINGS = {  # dataset: (filter size, epochs)
    "digits": (5, 40),
    "cifar10": (7, 8),
}
INIT_STD, LR, WEIGHT_DECAY = 1e-2, 2e-3, 1e-2


def run(out_dir, device="auto", data_dir=None, seed: int = 0) -> dict:
    """Train the ConvNet, draw ``filters.png`` in ``out_dir``; returns files, summary and the filters.

    Returned numbers: ``filters`` and ``initial_filters`` (32, C, k, k), ``test_accuracy``, ``seconds``.
    """
    name = "digits" if data_dir is None else "cifar10"
    data = load_dataset(name, data_dir, seed=seed)
    X_train, y_train = data.X_train, data.y_train
    if name == "cifar10":
        X_train, y_train = X_train[:CIFAR_ROWS], y_train[:CIFAR_ROWS]
    shape = IMAGE_SHAPES[name]
    pre = Standardize().fit(X_train)
    X_train, X_val, X_test = (pre.transform(X).reshape(-1, *shape) for X in (X_train, data.X_val, data.X_test))
    size, epochs = SETTINGS[name]
    model = three_layer_convnet(shape, 10, num_filters=32, filter_size=size, hidden=100, init=INIT_STD, rng=seed)
    initial = to_numpy(model[0].W.data).copy()
    opt = Adam(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    trainer = Trainer(model, SoftmaxCrossEntropy(), opt, batch_size=64, epochs=epochs, device=make_device(device),
                      seed=seed, schedule=CosineAnnealing(opt, epochs), progress=False)
    start = time.perf_counter()
    trainer.fit(X_train, y_train, val=(X_val, data.y_val))
    seconds = time.perf_counter() - start
    accuracy = trainer.evaluate(X_test, data.y_test)["accuracy"]
    learned = to_numpy(model[0].W.data).copy()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = draw(initial, learned, out / "filters.png",
                f"{name}: test accuracy {accuracy:.1%} after {epochs} epochs")
    summary = (f"filters: three-layer ConvNet on {name} ({len(y_train)} training images), 32 {size}x{size} filters\n"
               f"  test accuracy {accuracy:.4f} after {epochs} epochs ({seconds:.1f} s on {trainer.device})\n"
               f"  filter norm: {np.linalg.norm(initial.reshape(32, -1), axis=1).mean():.2f} at initialisation, "
               f"{np.linalg.norm(learned.reshape(32, -1), axis=1).mean():.2f} learned")
    return {"files": [str(path)], "summary": summary, "filters": learned, "initial_filters": initial,
            "test_accuracy": accuracy, "seconds": seconds, "dataset": name}


def filter_grid(W: np.ndarray, columns: int = 8, gap: int = 1) -> np.ndarray:
    """Filters W (F, C, k, k) tiled into one image (rows, cols[, 3]), each scaled to [0, 1] on its own.

    One channel gives a grey image; three are drawn as RGB. Gaps are white.
    """
    f, c, kh, kw = W.shape
    columns = min(columns, f)
    rows = -(-f // columns)
    grid = np.ones((rows * (kh + gap) - gap, columns * (kw + gap) - gap, c))
    for i in range(f):
        w = W[i].transpose(1, 2, 0)
        lo, hi = w.min(), w.max()
        r, q = divmod(i, columns)
        grid[r * (kh + gap):r * (kh + gap) + kh, q * (kw + gap):q * (kw + gap) + kw] = (w - lo) / max(hi - lo, 1e-12)
    return grid[:, :, 0] if c == 1 else grid


def draw(initial: np.ndarray, learned: np.ndarray, path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    for ax, W, label in ((axes[0], initial, "at initialisation (random)"), (axes[1], learned, "after training")):
        ax.imshow(filter_grid(W), cmap="gray", interpolation="nearest")
        ax.set_title(f"first-layer filters {label}", fontsize=10)
        ax.axis("off")
    fig.suptitle(f"{title}; each filter scaled to its own range (dark: negative, light: positive weights)",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m gpunn.lessons.filters", description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("lessons"))
    ap.add_argument("--device", default="auto")
    ap.add_argument("--data-dir", type=Path, help="CIFAR-10 batches (default: the embedded digits)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    print(run(args.out, args.device, args.data_dir, args.seed)["summary"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""First-layer filters of a ConvNet, before and after training, drawn as image grids.

cs231n shows that a trained ConvNet's first layer learns oriented edge and blob detectors
from data alone. This lesson trains the three-layer ConvNet (32 filters - relu - 2x2 max pool
- affine 100 - relu - affine) on the embedded digits, enlarged from 8x8 to 24x24 (bilinear), with
7x7 filters: on the 8x8 originals a filter spans most of a digit and its pixels are coarse, so
what it learns is a blurry piece of digit that looks much like noise; at 24x24 a stroke is
several pixels wide and a 7x7 filter sees a piece of its edge, as cs231n's 7x7 filters see
32x32 CIFAR-10 images. With ``data_dir`` holding CIFAR-10's batches it trains on a subsample
of them (7x7 colour filters). The settings favour a readable picture over the last half point
of accuracy: small initial weights (std 0.01, cs231n's ``weight_scale``) and L2 weight decay,
without batchnorm, so what the filters hold comes from the data. How structured they are is
measured too: neighbouring weights of a learned filter correlate strongly, those of a random
one not at all.

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
SETTINGS = {  # dataset: (enlargement, filter size, epochs, L2 weight decay)
    "digits": (3, 7, 15, 5e-2),
    "cifar10": (1, 7, 8, 1e-2),
}
INIT_STD, LR = 1e-2, 2e-3


def run(out_dir, device="auto", data_dir=None, seed: int = 0) -> dict:
    """Train the ConvNet, draw ``filters.png`` in ``out_dir``; returns files, summary and the filters.

    Returned numbers: ``filters`` and ``initial_filters`` (32, C, k, k), ``test_accuracy``, ``seconds``,
    ``neighbour_correlation`` (initial, learned): see :func:`neighbour_correlation`.
    """
    name = "digits" if data_dir is None else "cifar10"
    data = load_dataset(name, data_dir, seed=seed)
    X_train, y_train = data.X_train, data.y_train
    if name == "cifar10":
        X_train, y_train = X_train[:CIFAR_ROWS], y_train[:CIFAR_ROWS]
    scale, size, epochs, weight_decay = SETTINGS[name]
    X_train, X_val, X_test = (enlarge(X.reshape(-1, *IMAGE_SHAPES[name]), scale) for X in (X_train, data.X_val, data.X_test))
    shape = X_train.shape[1:]
    pre = Standardize().fit(X_train.reshape(len(X_train), -1))
    X_train, X_val, X_test = (pre.transform(X.reshape(len(X), -1)).reshape(-1, *shape) for X in (X_train, X_val, X_test))
    model = three_layer_convnet(shape, 10, num_filters=32, filter_size=size, hidden=100, init=INIT_STD, rng=seed)
    initial = to_numpy(model[0].W.data).copy()
    opt = Adam(model.parameters(), lr=LR, weight_decay=weight_decay)
    trainer = Trainer(model, SoftmaxCrossEntropy(), opt, batch_size=64, epochs=epochs, device=make_device(device),
                      seed=seed, schedule=CosineAnnealing(opt, epochs), progress=False)
    start = time.perf_counter()
    trainer.fit(X_train, y_train, val=(X_val, data.y_val))
    seconds = time.perf_counter() - start
    accuracy = trainer.evaluate(X_test, data.y_test)["accuracy"]
    learned = to_numpy(model[0].W.data).copy()
    correlation = (neighbour_correlation(initial), neighbour_correlation(learned))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    what = f"{name} enlarged to {shape[1]}x{shape[2]}" if scale > 1 else name
    path = draw(initial, learned, out / "filters.png",
                f"{what}: test accuracy {accuracy:.1%} after {epochs} epochs; neighbouring weights correlate "
                f"{correlation[0]:.2f} at initialisation, {correlation[1]:.2f} after training",
                examples=pre.inverse_transform(X_train[:8].reshape(8, -1)).reshape(8, *shape))
    summary = (f"filters: three-layer ConvNet on {what} ({len(y_train)} training images), 32 {size}x{size} filters\n"
               f"  test accuracy {accuracy:.4f} after {epochs} epochs ({seconds:.1f} s on {trainer.device})\n"
               f"  filter norm: {np.linalg.norm(initial.reshape(32, -1), axis=1).mean():.2f} at initialisation, "
               f"{np.linalg.norm(learned.reshape(32, -1), axis=1).mean():.2f} learned\n"
               f"  neighbouring weights correlate {correlation[0]:.2f} at initialisation (noise), "
               f"{correlation[1]:.2f} learned (smooth edges and strokes)")
    return {"files": [str(path)], "summary": summary, "filters": learned, "initial_filters": initial,
            "test_accuracy": accuracy, "seconds": seconds, "dataset": name, "neighbour_correlation": correlation}


def enlarge(images: np.ndarray, scale: int) -> np.ndarray:
    """Images (N, C, H, W) enlarged to (N, C, scale H, scale W) by bilinear interpolation (``scale`` 1: as they are)."""
    if scale == 1:
        return images
    from scipy import ndimage  # scikit-learn's dependency: always installed with gpunn

    return ndimage.zoom(images.astype(np.float64), (1, 1, scale, scale), order=1)


def neighbour_correlation(W: np.ndarray) -> float:
    """How smooth filters W (F, C, k, k) are: the correlation of horizontally and vertically adjacent weights.

    Each filter is centred on its mean; the correlation is taken over all its neighbouring pairs (every
    channel, both directions), then averaged over the filters. About 0 for random filters; near 1 for
    smooth ones (edges, blobs, bars).
    """
    W = W.astype(np.float64)
    W = W - W.mean(axis=(1, 2, 3), keepdims=True)
    values = []
    for w in W:
        a = np.concatenate([w[:, :, :-1].ravel(), w[:, :-1, :].ravel()])
        b = np.concatenate([w[:, :, 1:].ravel(), w[:, 1:, :].ravel()])
        values.append((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))
    return float(np.mean(values))


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


def draw(initial: np.ndarray, learned: np.ndarray, path: Path, title: str, examples: np.ndarray | None = None) -> Path:
    """The filters at initialisation beside the learned ones (and, given ``examples`` (n, C, H, W), a few inputs)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(initial, "first-layer filters at initialisation (random)"), (learned, "first-layer filters after training")]
    widths = [1, 1] if examples is None else [0.45, 1, 1]
    fig, axes = plt.subplots(1, len(widths), figsize=(5 * sum(widths), 3.6), width_ratios=widths)
    if examples is not None:
        columns = 2
        axes[0].imshow(filter_grid(examples, columns=columns, gap=2), cmap="gray", interpolation="nearest")
        axes[0].set_title(f"training images ({examples.shape[2]}x{examples.shape[3]})", fontsize=10)
        axes[0].axis("off")
    for ax, (W, label) in zip(axes[-2:], panels):
        ax.imshow(filter_grid(W), cmap="gray", interpolation="nearest")
        ax.set_title(label, fontsize=10)
        ax.axis("off")
    fig.suptitle(f"{title}\neach filter scaled to its own range (dark: negative, light: positive weights)", fontsize=9)
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

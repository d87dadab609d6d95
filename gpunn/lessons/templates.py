"""A trained linear classifier's weights as one image per class: each column of W (one per class) is a template.

The score of class j is the dot product of the image with column j of W (plus a bias), so
each column, drawn as an image, is the picture that class matches best: a template.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..classifiers import LinearClassifier
from ..devices import to_numpy
from .common import as_picture, image_data

REG = {"digits": 1e-3, "CIFAR-10": 1e-2}


def run(out_dir, device="auto", data_dir=None, seed=0) -> dict:
    """Train a softmax classifier and draw each class's weights as an image: the learned templates.

    Parameters
    ----------
    out_dir : pathlib.Path
        The folder for the figures (created by :func:`gpunn.lessons.run`).
    device : str or Device, default="auto"
        Where the lesson computes.
    data_dir : str or pathlib.Path, default=None
        CIFAR-10 batches to learn from instead of the embedded digits.
    seed : int, default=0
        The lesson's random numbers.

    Returns
    -------
    dict
        ``files`` (the pictures written), ``summary`` (the numbers behind them, a few lines) and
        ``W``, ``test_accuracy`` and ``template_correlation``.
    """
    data = image_data(data_dir, seed)
    clf = LinearClassifier(loss="softmax", reg=REG[data.name], optimizer="momentum", lr=0.05, batch_size=200,
                           epochs=40 if data.name == "digits" else 20, device=device, random_state=seed)
    clf.fit(data.X_train, data.y_train)
    W = to_numpy(clf.model_[0].W.data).astype(np.float64)  # (D, C): column j is class j's template
    test_acc = clf.score(data.X_test, data.y_test)
    # how much each template looks like its class: correlation with the class's mean training image
    means = np.stack([data.X_train[data.y_train == c].mean(axis=0) for c in range(W.shape[1])], axis=1)
    corr = np.array([np.corrcoef(W[:, c], means[:, c])[0, 1] for c in range(W.shape[1])])
    files = [_draw(Path(out_dir), W, data, test_acc)]
    summary = "\n".join([
        f"softmax linear classifier on {data.name}: test accuracy {test_acc:.3f} ({len(data.y_test)} images)",
        "correlation of each template with its class's mean image: "
        + ", ".join(f"{n} {c:.2f}" for n, c in zip(data.class_names, corr)),
    ])
    return {"files": files, "summary": summary, "W": W, "test_accuracy": test_acc, "template_correlation": corr,
            "class_names": data.class_names}


def _draw(out_dir: Path, W, data, test_acc) -> Path:
    from ..plots import pyplot, save_figure

    plt = pyplot()
    C = W.shape[1]
    fig, axes = plt.subplots(1, C, figsize=(1.3 * C, 1.9))
    for c, ax in enumerate(axes):
        img = as_picture(W[:, c], data.image_shape)
        if img.ndim == 3:  # colour: stretch each template to 0..1 for display
            img = (img - img.min()) / max(img.max() - img.min(), 1e-12)
            ax.imshow(img, interpolation="nearest")
        else:
            lim = np.abs(img).max()
            ax.imshow(img, cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
        ax.set_title(data.class_names[c])
        ax.axis("off")
    scale = "" if data.image_shape[0] == 3 else " (red: positive weight, blue: negative)"
    fig.suptitle(f"Linear classifier templates, one column of W per class{scale}; test accuracy {test_acc:.1%}",
                 y=1.08)
    return save_figure(fig, out_dir / "templates.png")

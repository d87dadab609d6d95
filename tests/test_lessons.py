"""gpunn.lessons: each lesson writes its figures, and the numbers behind them are right."""

import re
import sys

import numpy as np
import pytest

import gpunn as gn
from gpunn import lessons
from gpunn.cli import main

needs_matplotlib = pytest.mark.skipif(not gn.plots.matplotlib_available(),
                                      reason="the plot extra (matplotlib) is not installed")


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    """Each lesson run once on the CPU (seed 0), shared by the tests below: {name: (out_dir, result)}."""
    cache = {}

    def get(name):
        if name not in cache:
            out = tmp_path_factory.mktemp(name)
            cache[name] = (out, lessons.run(name, out, device="cpu", seed=0))
        return cache[name]

    return get


def _check_files(out, result, suffixes):
    assert sorted(p.suffix for p in result["files"]) == sorted(suffixes)
    for p in result["files"]:
        assert p.parent == out and p.stat().st_size > 0
        if p.suffix == ".png":
            assert p.read_bytes()[:4] == b"\x89PNG"
    assert isinstance(result["summary"], str) and result["summary"].count("\n") >= 1


# --------------------------------------------------------------------------- the registry and the command


def test_every_registered_lesson_has_run_and_a_description():
    for name in lessons.LESSONS:
        assert callable(lessons.lesson(name).run)
        assert lessons.describe(name)


def test_unknown_lesson_lists_the_known_ones(capsys):
    with pytest.raises(ValueError, match="unknown lesson 'nope'; known lessons: gates, loss-landscape"):
        lessons.run("nope", "/tmp")
    assert main(["lesson", "nope"]) == 2
    err = capsys.readouterr().err
    assert "unknown lesson 'nope'" in err and all(name in err for name in lessons.LESSONS)


def test_lesson_list(capsys):
    assert main(["lesson", "--list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in lessons.LESSONS)


def test_cli_runs_a_lesson_and_prints_its_summary(tmp_path, capsys):
    assert main(["lesson", "gates", "--out", str(tmp_path), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "f=0.8808" in out and "db=0.315" in out and "wrote" in out


def test_missing_plot_extra_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    assert main(["lesson", "templates", "--out", str(tmp_path), "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "gpunn lesson: plotting needs the plot extra: pip install -e '.[plot]' in gpunn's directory (matplotlib)"


# --------------------------------------------------------------------------- each lesson


def test_gates(ran):
    out, r = ran("gates")
    _check_files(out, r, [".svg", ".png"] * 3)  # drawn by Graphviz where dot is installed, else by matplotlib
    assert r["values"]["add_multiply"] == {"f": -12.0, "x": -4.0, "y": -4.0, "z": 3.0}
    for key in ("neuron", "neuron_expanded"):
        v = r["values"][key]
        assert round(v["f"], 4) == 0.8808
        assert [round(v[n], 3) for n in "abcxy"] == [-0.105, 0.315, 0.105, 0.105, 0.210]
    svg = (out / "gates_neuron.svg").read_text()
    assert "0.8808" in svg and "0.315" in svg
    from matplotlib.image import imread

    from gpunn.autograd.draw import GRAD_COLOR, VALUE_COLOR

    for key in r["values"]:  # each PNG is the SVG's picture at 96 dpi, values and gradients in colour
        width = float(re.search(r'<svg[^>]* width="([\d.]+)pt"', (out / f"gates_{key}.svg").read_text()).group(1))
        png = imread(out / f"gates_{key}.png")[..., :3]
        assert abs(png.shape[1] - width * 96 / 72) <= 2 and png.shape[0] > 100
        for color in (VALUE_COLOR, GRAD_COLOR):
            rgb = np.array([int(color[i:i + 2], 16) for i in (1, 3, 5)]) / 255
            assert (np.abs(png - rgb).max(axis=2) < 0.1).sum() > 100, (key, color)


def test_gates_on_each_device(device, tmp_path):
    r = lessons.run("gates", tmp_path, device=device)
    assert r["values"]["add_multiply"]["z"] == 3.0


@needs_matplotlib
def test_loss_landscape(ran):
    from gpunn.lessons.loss_landscape import objective

    out, r = ran("loss-landscape")
    _check_files(out, r, [".png", ".png"])
    alphas, line, plane = r["alphas"], r["line"], r["plane"]
    step = alphas[1] - alphas[0]
    # a trained W sits at the bottom of the bowl: lowest at a = 0 along W1, and at the centre of the plane
    assert abs(r["argmin_alpha"]) <= step + 1e-12
    i, j = np.unravel_index(np.argmin(plane["mean_2d"]), plane["mean_2d"].shape)
    centre = len(r["grid"]) // 2
    assert abs(i - centre) <= 1 and abs(j - centre) <= 1
    # the curve at a = 0 is the engine's SVM loss plus the penalty
    from gpunn.lessons.common import image_data

    data = image_data()
    X = data.X_train.astype(np.float64)
    hinge = float(gn.nn.MulticlassHinge().forward(X @ r["W"] + r["b"], data.y_train))
    expected = hinge + 0.5 * r["reg"] * float((r["W"] ** 2).sum())
    assert line["mean_1d"][len(alphas) // 2] == pytest.approx(expected, rel=1e-9)
    assert objective(r["W"], r["b"], X, data.y_train) == pytest.approx(expected, rel=1e-9)
    # and at a = 0.5 it is the loss of the moved weights
    W_half = r["W"] + alphas[150] * r["W1"]
    moved = float(gn.nn.MulticlassHinge().forward(X @ W_half + r["b"], data.y_train)) + 0.5 * r["reg"] * (W_half ** 2).sum()
    assert line["mean_1d"][150] == pytest.approx(moved, rel=1e-9)
    # one example: piecewise linear (second differences vanish away from a few kinks), convex, not flat
    second = np.abs(np.diff(line["one_1d"], 2))
    assert 0 < np.count_nonzero(second > 1e-9) <= 20
    assert (np.diff(line["one_1d"], 2) >= -1e-9).all()


@needs_matplotlib
def test_templates(ran):
    out, r = ran("templates")
    _check_files(out, r, [".png"])
    assert r["W"].shape == (64, 10) and r["test_accuracy"] > 0.9
    assert (r["template_correlation"] > 0.5).all()


@needs_matplotlib
def test_optimizers(ran):
    from gpunn.lessons.optimizers import OPTIMIZERS, SURFACES

    out, r = ran("optimizers")
    _check_files(out, r, [".png"])
    # plain SGD's paths, step by step from the analytic gradients: (0.04 x, 4 y) on the ravine, (2 x, -2 y) on the saddle
    for surface, gradient in (("ravine", lambda p: np.array([0.04 * p[0], 4.0 * p[1]])),
                              ("saddle", lambda p: np.array([2 * p[0], -2 * p[1]]))):
        _, start, steps, _, lrs = SURFACES[surface]
        p = np.array(start)
        expected = [p]
        for _ in range(steps):
            p = p - lrs["SGD"] * gradient(p)
            expected.append(p)
        pts, losses = r["paths"][surface]["SGD"]
        np.testing.assert_allclose(pts, np.array(expected), rtol=1e-12, atol=1e-14)
    for name, (pts, losses) in r["paths"]["ravine"].items():
        assert losses[-1] < losses[0], name
    # the saddle: at one learning rate, SGD stalls at the saddle point while momentum escapes; so do the adaptive rules
    _, _, steps, view, lrs = SURFACES["saddle"]
    assert lrs["SGD"] == lrs["Momentum"] == lrs["Nesterov"]
    sgd, sgd_f = r["paths"]["saddle"]["SGD"]
    assert len(sgd) == steps + 1 and np.hypot(*sgd[-1]) < 0.01 and abs(sgd_f[-1]) < 1e-4
    for name in OPTIMIZERS:
        if name != "SGD":
            pts, f = r["paths"]["saddle"][name]
            assert len(pts) <= steps and np.abs(pts[-1]).max() > max(view), name  # left the view: over 100x farther
            assert f[-1] < -1.5, name
    assert "SGD still 0.0021 from the saddle point after 80 steps, Momentum left the view at step" in r["summary"]
    for name, (curve, acc) in r["curves"].items():
        assert curve[-20:].mean() < curve[:20].mean() and acc > 0.8, name


@needs_matplotlib
def test_regularization(ran):
    from gpunn.lessons.regularization import HIDDEN, LAMBDAS

    out, r = ran("regularization")
    _check_files(out, r, [".png"])
    acc = r["train_accuracy"]
    small_lam = LAMBDAS[0]
    assert acc[HIDDEN[0], small_lam] < acc[HIDDEN[-1], small_lam]  # a bigger net fits the spiral better
    assert acc[HIDDEN[-1], LAMBDAS[-1]] < acc[HIDDEN[-1], small_lam]  # and lambda pulls it back


@needs_matplotlib
def test_knn_k_curve_is_cross_validate_k(ran):
    from gpunn.lessons.common import image_data

    out, r = ran("knn-k")
    _check_files(out, r, [".png"])
    data = image_data()
    X, y = np.concatenate([data.X_train, data.X_val]), np.concatenate([data.y_train, data.y_val])
    for metric in ("l1", "l2"):
        ref = gn.neighbors.cross_validate_k(X, y, ks=r["ks"], folds=r["folds"], metric=metric, device="cpu")
        got = r["results"][metric]
        np.testing.assert_array_equal(got.fold_accuracies, ref.fold_accuracies)
        assert got.best_k == ref.best_k


@needs_matplotlib
def test_search_strategies(ran):
    from gpunn.lessons.search_strategies import BUDGET

    out, r = ran("search-strategies")
    _check_files(out, r, [".png"])
    curves = r["curves"]
    for c in curves.values():
        assert len(c) == BUDGET and (np.diff(c) <= 0).all()
        assert c[0] == pytest.approx(np.log(10), abs=0.01)  # all start from the same tiny weights: loss ln 10
    assert curves["gradient descent"][-1] < curves["random local search"][-1] < curves["random search"][-1]
    assert r["test_accuracy"]["gradient descent"] > 0.9


@needs_matplotlib
def test_hyperparameter_search_retrains_the_best_row(ran):
    out, r = ran("hyperparameter-search")
    _check_files(out, r, [".csv", ".png"])
    rows, best = r["rows"], r["best"]
    val = np.array([row["val_accuracy"] for row in rows])
    assert best == int(np.nanargmax(val))
    assert (r["retrained"]["lr"], r["retrained"]["reg"]) == (rows[best]["lr"], rows[best]["reg"])
    assert r["retrained"]["val_accuracy"] == pytest.approx(rows[best]["val_accuracy"])  # same seed: same net
    assert r["retrained"]["test_accuracy"] > 0.9
    table = (out / "hyperparameter_search.csv").read_text().splitlines()
    assert len(table) == len(rows) + 1 and table[best + 1].endswith(",1")
    lrs = np.array([row["lr"] for row in rows])
    assert ((lrs >= 1e-4) & (lrs <= 1.0)).all() and np.ptp(np.log10(lrs)) > 2  # log-uniform over decades


@needs_matplotlib
def test_templates_on_cifar_files_draw_colour_images(tmp_path, rng):
    from test_data import fake_cifar  # random pixels in the real file format

    fake_cifar(tmp_path / "cifar", rng, n=400)
    r = lessons.run("templates", tmp_path / "out", device="cpu", data_dir=tmp_path / "cifar")
    assert r["W"].shape == (3072, 10) and r["class_names"][0] == "plane"
    assert r["files"][0].read_bytes()[:4] == b"\x89PNG"


@needs_matplotlib
def test_ann_recall_curve_is_the_index_recall(ran):
    from gpunn.knn import IVFIndex, index_recall
    from gpunn.lessons.ann import QUERIES, K, embeddings

    out, r = ran("ann")
    _check_files(out, r, [".png"])
    probes, recall = r["n_probe"], r["recall"]
    assert probes[-1] == r["n_lists"] and recall[-1] == 1.0  # every list probed: exact search's answer
    assert all(a <= b for a, b in zip(recall, recall[1:]))  # more lists, a superset of candidates
    assert recall[0] < 0.9 and min(r["qps"]) > 0 and r["exact_qps"] > 0
    X, Q = embeddings(0)
    index = IVFIndex(r["n_lists"], random_state=0).fit(X)
    assert index_recall(index, X, Q, K, probes[3], n_queries=QUERIES, random_state=0) == pytest.approx(recall[3])

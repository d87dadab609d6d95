"""Train a two-layer net on a 3-class spiral with gpunn's gates, loss and optimizer.

Run: python examples/quickstart.py [--device cpu|cuda|auto]
"""

import argparse

import numpy as np

import gpunn as gn


def spiral(n_per_class=100, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    X, y = [], []
    for k in range(classes):
        r = np.linspace(0.0, 1, n_per_class)
        t = np.linspace(k * 4, (k + 1) * 4, n_per_class) + rng.standard_normal(n_per_class) * 0.2
        X.append(np.c_[r * np.sin(t), r * np.cos(t)])
        y.append(np.full(n_per_class, k))
    return np.concatenate(X), np.concatenate(y)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    dev = gn.device(args.device)
    X, y = spiral()
    model = gn.nn.Sequential(gn.nn.Linear(2, 100, rng=0), gn.nn.ReLU(), gn.nn.Linear(100, 3, rng=1)).to(dev)
    loss = gn.nn.SoftmaxCrossEntropy()
    opt = gn.optim.Adam(model.parameters(), lr=1e-2, weight_decay=1e-3)
    for it in range(1, 1001):
        opt.zero_grad()
        value = loss.forward(model.forward(X), y)
        model.backward(loss.backward())
        opt.step()
        if it % 200 == 0:
            print(f"iteration {it:4d}  loss {float(value):.4f}")
    model.eval()
    accuracy = (gn.to_numpy(model.forward(X)).argmax(axis=1) == y).mean()
    print(f"device {dev}: training accuracy {accuracy:.1%}")


if __name__ == "__main__":
    main()

"""Train a two-layer net on a 3-class spiral with gpunn's gates, loss and optimizer: the README's loop.

Run: python examples/quickstart.py [--device cpu|cuda|auto]
"""

import argparse

import gpunn as gn


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default: auto)")
    args = ap.parse_args()
    dev = gn.device(args.device)
    X, y = gn.data.make_spiral(n_per_class=100, classes=3, seed=0)
    model = gn.nn.Sequential(gn.nn.Linear(2, 100, rng=0), gn.nn.ReLU(), gn.nn.Linear(100, 3, rng=1)).to(dev)
    loss = gn.nn.SoftmaxCrossEntropy()
    opt = gn.optim.Adam(model.parameters(), lr=1e-2, weight_decay=1e-3)
    for it in range(1, 1001):
        opt.zero_grad()
        scores = model.forward(X)
        value = loss.forward(scores, y)
        model.backward(loss.backward())
        opt.step()
        if it % 200 == 0:
            print(f"iteration {it:4d}  data loss {float(value):.4f}  + L2 penalty {opt.penalty():.4f}")
    accuracy = (model.predict(X) == y).mean()
    print(f"device {dev}: training accuracy {accuracy:.1%}")


if __name__ == "__main__":
    main()

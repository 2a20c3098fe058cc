"""metric-learn's MLKR on a CSV file of `nadaraya generate` (y last), printed as `nadaraya learn`
prints it: `projection w_11 … w_KD`, `cv <LOO MSE>` (the f64 numpy LOO below, at the learned
map), `identity-cv`, `iterations`, `time` (the fit alone), and with --direction the `cos`.

    python mlkr.py FILE.csv --dim K [--direction u1,…,uD]
    python mlkr.py FILE.csv --cv w_11,…,w_KD --dim K     (only the LOO MSE of that map)
"""
import argparse
import time

import numpy as np


def loo(z, y):
    """Mean squared leave-one-out error of Gaussian Nadaraya–Watson with weights
    exp(-|z_i - z_j|²/2), j ≠ i, in f64."""
    d2 = ((z[:, None, :] - z[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d2, np.inf)
    s = -d2 / 2
    s -= s.max(1, keepdims=True)
    w = np.exp(s)
    return float(np.mean((y - w @ y / w.sum(1)) ** 2))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("file")
    p.add_argument("--dim", type=int, required=True)
    p.add_argument("--cv")
    p.add_argument("--direction")
    a = p.parse_args()
    data = np.loadtxt(a.file, delimiter=",", skiprows=1, dtype=np.float64)
    x, y = data[:, :-1], data[:, -1]
    if a.cv:
        w = np.array([float(v) for v in a.cv.split(",")]).reshape(a.dim, x.shape[1])
        print(f"cv {loo(x @ w.T, y)!r}")
        return
    from metric_learn import MLKR

    t0 = time.perf_counter()
    m = MLKR(n_components=a.dim, random_state=0).fit(x, y)
    took = time.perf_counter() - t0
    w = m.components_
    print("projection " + " ".join(repr(float(v)) for v in w.ravel()))
    print(f"cv {loo(x @ w.T, y)!r}")
    print(f"identity-cv {loo(x, y)!r}")
    print(f"iterations {m.n_iter_}")
    print(f"time {took:.6f} s")
    if a.direction:
        u = np.array([float(v) for v in a.direction.split(",")])
        v = np.linalg.svd(w)[2][0]
        print(f"cos {abs(v @ u) / np.linalg.norm(u):.6f}")


if __name__ == "__main__":
    main()

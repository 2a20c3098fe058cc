#!/usr/bin/env python3
"""statsmodels' cv_ls bandwidths for a CSV file, and an independent f64 LOO CV score.

  python3 kernelreg.py FILE.csv               KernelReg(reg_type='lc', bw='cv_ls') on FILE.csv
                                              (last column y, others x; one header line);
                                              prints `bandwidth h_1 ... h_D` and `cv <LOO>`
  python3 kernelreg.py FILE.csv --cv H1,H2..  only the LOO CV at the given bandwidths (one for
                                              all columns, or one per column): how run.sh scores
                                              `nadaraya fit`'s bandwidths the same way

The CV is computed here in float64 numpy, the same code for both sides: the mean over samples of
(y_i - yhat_{-i})^2, with yhat_{-i} the Nadaraya-Watson average of the other samples under the
product Gaussian exp(-sum_j (x_ij - x_kj)^2 / (2 h_j^2)), the weights taken relative to the
largest score of each row (so that they do not underflow where statsmodels' do). statsmodels'
bandwidths are used as |h| (its optimiser may return a negative h; the kernel sees h^2).
Versions pinned in requirements.txt.
"""

import sys

import numpy as np


def load(path):
    return np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)


def loo_cv(x, y, h):
    h = np.broadcast_to(np.abs(np.asarray(h, dtype=np.float64)), (x.shape[1],))
    n = len(y)
    total = 0.0
    # Blocks of rows keep the N x N x D temporary small.
    for start in range(0, n, 256):
        xi = x[start : start + 256]
        s = -0.5 * (((xi[:, None, :] - x[None, :, :]) / h) ** 2).sum(axis=2)
        rows = np.arange(len(xi))
        s[rows, start + rows] = -np.inf
        w = np.exp(s - s.max(axis=1, keepdims=True))
        fit = (w @ y) / w.sum(axis=1)
        total += ((y[start : start + 256] - fit) ** 2).sum()
    return total / n


def main():
    data = load(sys.argv[1])
    x, y = data[:, :-1], data[:, -1]
    if len(sys.argv) > 3 and sys.argv[2] == "--cv":
        h = [float(v) for v in sys.argv[3].split(",")]
        print(f"cv {float(loo_cv(x, y, h))!r}")
        return
    from statsmodels.nonparametric.kernel_regression import KernelReg

    kr = KernelReg(y, x, var_type="c" * x.shape[1], reg_type="lc", bw="cv_ls")
    bw = np.abs(np.asarray(kr.bw, dtype=np.float64))
    print("bandwidth " + " ".join(repr(float(b)) for b in bw))
    print(f"cv {float(loo_cv(x, y, bw))!r}")


if __name__ == "__main__":
    main()

"""A sweep of 64 digits MLPs (64-W-10 tanh, plain SGD, batch 128, 50 epochs) in scikit-learn:
widths 16,32,64,128 x learning rates 0.03,0.1,0.3,1 x 4 seeds.

    python sweep_sklearn.py --out results.json [--epochs 50] [--jobs 1]

--jobs 1 fits the models one after another in this process (BLAS with its default threads);
--jobs N runs them in N joblib worker processes, one BLAS/OpenMP thread each (joblib's
``inner_max_num_threads=1``), so N workers do not oversubscribe N cores.
"""
import argparse
import itertools
import json
import time
import warnings

from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler

WIDTHS, LRS, SEEDS = (16, 32, 64, 128), (0.03, 0.1, 0.3, 1.0), range(4)


def fit_one(width, lr, seed, epochs, X_train, y_train, X_test, y_test):
    clf = MLPClassifier(hidden_layer_sizes=(width,), activation="tanh", solver="sgd",
                        learning_rate_init=lr, batch_size=128, max_iter=epochs, momentum=0,
                        alpha=0, n_iter_no_change=epochs + 1, tol=0, shuffle=True,
                        random_state=seed)
    t0 = time.perf_counter()
    with warnings.catch_warnings():  # max_iter reached on purpose: a fixed number of epochs
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", RuntimeWarning)  # overflow in a diverging model
        clf.fit(X_train, y_train)
    return {"width": width, "lr": lr, "seed": seed, "test_accuracy": clf.score(X_test, y_test),
            "fit_s": time.perf_counter() - t0}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--jobs", type=int, default=1)
    args = parser.parse_args()

    X, y = load_digits(return_X_y=True)
    # 20% test (359 rows), 10% validation (180), stratified; scaled with the training rows' stats
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=359, stratify=y,
                                                        random_state=0)
    X_train, X_val, y_train, y_val = train_test_split(X_train, y_train, test_size=180,
                                                      stratify=y_train, random_state=0)
    scaler = StandardScaler().fit(X_train)
    X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
    data = (X_train, y_train, X_test, y_test)
    grid = list(itertools.product(WIDTHS, LRS, SEEDS))

    t0 = time.perf_counter()
    if args.jobs == 1:
        models = [fit_one(w, lr, s, args.epochs, *data) for w, lr, s in grid]
    else:
        from joblib import Parallel, delayed, parallel_config
        with parallel_config(backend="loky", inner_max_num_threads=1):
            models = Parallel(n_jobs=args.jobs)(
                delayed(fit_one)(w, lr, s, args.epochs, *data) for w, lr, s in grid)
    total_s = time.perf_counter() - t0

    with open(args.out, "w") as f:
        json.dump({"models": models, "fits_s": total_s, "jobs": args.jobs}, f)
    best = max(models, key=lambda m: m["test_accuracy"])
    print(f"{len(models)} models in {total_s:.1f} s; best test accuracy "
          f"{best['test_accuracy']:.4f} (width {best['width']}, lr {best['lr']}, "
          f"seed {best['seed']})")


if __name__ == "__main__":  # joblib's worker processes import this file
    main()

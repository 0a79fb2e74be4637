"""A sweep of 64 digits MLPs (64-W-10 tanh, plain SGD, batch 128, 50 epochs) in eager PyTorch:
widths 16,32,64,128 x learning rates 0.03,0.1,0.3,1 x 4 seeds.

    python sweep_pytorch.py --out results.json [--epochs 50] [--jobs 1] [--threads T]

--jobs 1 trains the models one after another in this process with ``--threads`` intra-op
threads (default: PyTorch's own choice); --jobs N runs them in N joblib worker processes, one
thread each, so N workers do not oversubscribe N cores.
"""
import argparse
import itertools
import json
import time

import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from torch import nn

WIDTHS, LRS, SEEDS = (16, 32, 64, 128), (0.03, 0.1, 0.3, 1.0), range(4)


def fit_one(width, lr, seed, epochs, X_train, y_train, X_test, y_test, threads=None):
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(64, width), nn.Tanh(), nn.Linear(width, 10))
    loss_fn = nn.CrossEntropyLoss()
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    t0 = time.perf_counter()
    for epoch in range(epochs):
        perm = torch.randperm(len(X_train))
        for i in range(0, len(X_train), 128):
            idx = perm[i:i + 128]
            loss = loss_fn(model(X_train[idx]), y_train[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    fit_s = time.perf_counter() - t0
    with torch.no_grad():
        acc = (model(X_test).argmax(1) == y_test).float().mean().item()
    return {"width": width, "lr": lr, "seed": seed, "test_accuracy": acc, "fit_s": fit_s}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()

    X, y = load_digits(return_X_y=True)
    # 20% test (359 rows), 10% validation (180), stratified; scaled with the training rows' stats
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=359, stratify=y,
                                                        random_state=0)
    X_train, X_val, y_train, y_val = train_test_split(X_train, y_train, test_size=180,
                                                      stratify=y_train, random_state=0)
    scaler = StandardScaler().fit(X_train)
    X_train, X_test = (torch.tensor(scaler.transform(a), dtype=torch.float32)
                       for a in (X_train, X_test))
    y_train, y_test = torch.tensor(y_train), torch.tensor(y_test)
    data = (X_train, y_train, X_test, y_test)
    grid = list(itertools.product(WIDTHS, LRS, SEEDS))

    t0 = time.perf_counter()
    if args.jobs == 1:
        models = [fit_one(w, lr, s, args.epochs, *data, threads=args.threads) for w, lr, s in grid]
    else:
        from joblib import Parallel, delayed, parallel_config
        with parallel_config(backend="loky", inner_max_num_threads=1):
            models = Parallel(n_jobs=args.jobs)(
                delayed(fit_one)(w, lr, s, args.epochs, *data, threads=1) for w, lr, s in grid)
    total_s = time.perf_counter() - t0

    with open(args.out, "w") as f:
        json.dump({"models": models, "fits_s": total_s, "jobs": args.jobs,
                   "threads": 1 if args.jobs != 1 else torch.get_num_threads()}, f)
    best = max(models, key=lambda m: m["test_accuracy"])
    print(f"{len(models)} models in {total_s:.1f} s; best test accuracy "
          f"{best['test_accuracy']:.4f} (width {best['width']}, lr {best['lr']}, "
          f"seed {best['seed']})")


if __name__ == "__main__":  # joblib's worker processes import this file
    main()

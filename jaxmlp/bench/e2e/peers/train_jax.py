"""Digits 64-128-10 tanh MLP, SGD lr 0.1, batch 128, 50 epochs, as a plain JAX script.

    python train_jax.py --out result.json [--epochs 50]

The idiom of JAX's and Flax's examples: a jitted SGD step (``jax.grad`` of the mean
cross-entropy, the update in the same program), called from Python loops over epochs and
mini-batches (slices of one NumPy permutation per epoch), and a jitted accuracy at the end.
Only what the job needs is compiled: the step (at the batch's 128 rows and at the last batch's
rows) and the accuracy; there is no per-epoch evaluation, divergence check or history (the
library under test keeps them). Glorot-normal weights, zero biases. The data as the other
peers read it (scikit-learn's digits, stratified 70/10/20 split, standardised with the
training rows' statistics).
"""
import argparse
import json
import time

import jax
import jax.numpy as jnp
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler


def logits(params, x):
    (W1, b1), (W2, b2) = params
    return jnp.tanh(x @ W1 + b1) @ W2 + b2


def loss(params, x, labels):
    logp = jax.nn.log_softmax(logits(params, x))
    return -jnp.mean(jnp.take_along_axis(logp, labels[:, None], axis=1))


@jax.jit
def step(params, x, labels):
    grads = jax.grad(loss)(params, x, labels)
    return jax.tree.map(lambda p, g: p - 0.1 * g, params, grads)


@jax.jit
def accuracy(params, x, labels):
    return jnp.mean(jnp.argmax(logits(params, x), axis=1) == labels)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--epochs", type=int, default=50)
    args = parser.parse_args()

    X, y = load_digits(return_X_y=True)
    # 20% test (359 rows), 10% validation (180), stratified; scaled with the training rows' stats
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=359, stratify=y,
                                                        random_state=0)
    X_train, X_val, y_train, y_val = train_test_split(X_train, y_train, test_size=180,
                                                      stratify=y_train, random_state=0)
    scaler = StandardScaler().fit(X_train)
    X_train, X_val, X_test = (scaler.transform(a).astype(np.float32)
                              for a in (X_train, X_val, X_test))
    y_train, y_val, y_test = (a.astype(np.int32) for a in (y_train, y_val, y_test))

    rng = np.random.default_rng(0)
    glorot = lambda a, b: (rng.standard_normal((a, b)) * np.sqrt(2.0 / (a + b))).astype(np.float32)
    params = [(glorot(64, 128), np.zeros(128, np.float32)),
              (glorot(128, 10), np.zeros(10, np.float32))]

    t0 = time.perf_counter()  # the step's compile happens at its first call, inside fit_s
    for epoch in range(args.epochs):
        perm = rng.permutation(len(X_train))
        for i in range(0, len(X_train), 128):
            idx = perm[i:i + 128]
            params = step(params, X_train[idx], y_train[idx])
    jax.block_until_ready(params)
    fit_s = time.perf_counter() - t0

    test_acc = float(accuracy(params, X_test, y_test))
    val_acc = float(accuracy(params, X_val, y_val))
    result = {"test_accuracy": test_acc, "val_accuracy": val_acc, "fit_s": fit_s,
              "epochs": args.epochs}
    with open(args.out, "w") as f:
        json.dump(result, f)
    print(f"test accuracy {test_acc:.4f} (fit {fit_s:.2f} s, compile included)")


if __name__ == "__main__":
    main()

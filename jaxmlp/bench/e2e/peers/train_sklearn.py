"""Digits 64-128-10 tanh MLP, SGD lr 0.1, batch 128, 50 epochs, in scikit-learn.

    python train_sklearn.py --out result.json [--epochs 50]
"""
import argparse
import json
import time
import warnings

from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler

parser = argparse.ArgumentParser()
parser.add_argument("--out", required=True)
parser.add_argument("--epochs", type=int, default=50)
args = parser.parse_args()

X, y = load_digits(return_X_y=True)
# 20% test (359 rows), 10% validation (180), stratified; scaled with the training rows' stats
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=359, stratify=y, random_state=0)
X_train, X_val, y_train, y_val = train_test_split(X_train, y_train, test_size=180,
                                                  stratify=y_train, random_state=0)
scaler = StandardScaler().fit(X_train)
X_train, X_val, X_test = (scaler.transform(a) for a in (X_train, X_val, X_test))

clf = MLPClassifier(hidden_layer_sizes=(128,), activation="tanh", solver="sgd",
                    learning_rate_init=0.1, batch_size=128, max_iter=args.epochs, momentum=0,
                    alpha=0, n_iter_no_change=args.epochs + 1, tol=0, shuffle=True, random_state=0)
t0 = time.perf_counter()
with warnings.catch_warnings():  # max_iter reached on purpose: a fixed number of epochs
    warnings.simplefilter("ignore", ConvergenceWarning)
    clf.fit(X_train, y_train)
fit_s = time.perf_counter() - t0

result = {"test_accuracy": clf.score(X_test, y_test), "val_accuracy": clf.score(X_val, y_val),
          "fit_s": fit_s, "epochs": clf.n_iter_}
with open(args.out, "w") as f:
    json.dump(result, f)
print(f"test accuracy {result['test_accuracy']:.4f} (fit {fit_s:.2f} s)")

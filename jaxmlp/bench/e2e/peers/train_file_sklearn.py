"""An MLP on a user's .npz file (``X``, ``y``) in scikit-learn: tanh hidden layers, plain SGD,
80/20 train/test split, features (and regression targets) scaled with the training rows'
statistics, the test MSE reported in those scaled units (as the project under test does).

    python train_file_sklearn.py --data W4.npz --task regression --hidden 64 --epochs 10 \
        --out result.json

Regression uses ``MLPRegressor`` (squared error); the reported ``test_mse`` is the mean over
outputs and rows (the MSE of the project under test). Its learning rate is ``lr * 2 / k`` for k outputs: the
gradient of scikit-learn's loss is k/2 times that of the mean over outputs.
"""
import argparse
import json
import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.preprocessing import StandardScaler

parser = argparse.ArgumentParser()
parser.add_argument("--data", required=True)
parser.add_argument("--task", choices=("classification", "regression"), required=True)
parser.add_argument("--hidden", default="128")
parser.add_argument("--epochs", type=int, default=10)
parser.add_argument("--lr", type=float, default=0.1)
parser.add_argument("--batch-size", type=int, default=128)
parser.add_argument("--out", required=True)
args = parser.parse_args()

with np.load(args.data) as z:
    X, y = z["X"].astype(np.float32), z["y"]
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=0)
scaler = StandardScaler().fit(X_train)
X_train, X_test = (scaler.transform(a).astype(np.float32) for a in (X_train, X_test))
if args.task == "regression":
    y_scaler = StandardScaler().fit(y_train)
    y_train, y_test = (y_scaler.transform(a).astype(np.float32) for a in (y_train, y_test))

hidden = tuple(int(h) for h in args.hidden.split(","))
common = dict(hidden_layer_sizes=hidden, activation="tanh", solver="sgd", batch_size=args.batch_size,
              max_iter=args.epochs, momentum=0, alpha=0, n_iter_no_change=args.epochs + 1, tol=0,
              shuffle=True, random_state=0)
if args.task == "classification":
    est = MLPClassifier(learning_rate_init=args.lr, **common)
else:
    est = MLPRegressor(learning_rate_init=args.lr * 2 / y.shape[1], **common)
t0 = time.perf_counter()
with warnings.catch_warnings():  # max_iter reached on purpose: a fixed number of epochs
    warnings.simplefilter("ignore", ConvergenceWarning)
    est.fit(X_train, y_train)
fit_s = time.perf_counter() - t0

if args.task == "classification":
    result = {"test_accuracy": est.score(X_test, y_test)}
else:
    result = {"test_mse": float(np.mean((est.predict(X_test) - y_test) ** 2))}
result.update(fit_s=fit_s, epochs=est.n_iter_)
with open(args.out, "w") as f:
    json.dump(result, f)
print(f"{result} (fit {fit_s:.2f} s)")

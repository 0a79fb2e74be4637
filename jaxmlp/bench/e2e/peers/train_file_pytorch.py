"""An MLP on a user's .npz file (``X``, ``y``) in eager PyTorch: tanh hidden layers, plain SGD,
80/20 train/test split, features (and regression targets) scaled with the training rows'
statistics, the test MSE reported in those scaled units (as the project under test does).

    python train_file_pytorch.py --data W4.npz --task regression --hidden 64 --epochs 10 \
        --out result.json

Mini-batches are slices of one shuffled index per epoch (``torch.randperm``). Regression uses
``nn.MSELoss`` (the mean over outputs and rows, the MSE of the project under test).
"""
import argparse
import json
import time

import numpy as np
import torch
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from torch import nn

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
X_train, X_test = (torch.tensor(scaler.transform(a), dtype=torch.float32) for a in (X_train, X_test))
classify = args.task == "classification"
if not classify:
    y_scaler = StandardScaler().fit(y_train)
    y_train, y_test = (y_scaler.transform(a) for a in (y_train, y_test))
y_train, y_test = (torch.tensor(a, dtype=torch.int64 if classify else torch.float32)
                   for a in (y_train, y_test))

torch.manual_seed(0)
sizes = [X.shape[1], *(int(h) for h in args.hidden.split(",")),
         int(y.max()) + 1 if classify else y.shape[1]]
layers = []
for a, b in zip(sizes[:-2], sizes[1:-1]):
    layers += [nn.Linear(a, b), nn.Tanh()]
model = nn.Sequential(*layers, nn.Linear(sizes[-2], sizes[-1]))
loss_fn = nn.CrossEntropyLoss() if classify else nn.MSELoss()
opt = torch.optim.SGD(model.parameters(), lr=args.lr)

t0 = time.perf_counter()
for epoch in range(args.epochs):
    perm = torch.randperm(len(X_train))
    for i in range(0, len(X_train), args.batch_size):
        idx = perm[i:i + args.batch_size]
        loss = loss_fn(model(X_train[idx]), y_train[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
fit_s = time.perf_counter() - t0

with torch.no_grad():
    out = model(X_test)
    if classify:
        result = {"test_accuracy": (out.argmax(1) == y_test).float().mean().item()}
    else:
        result = {"test_mse": torch.mean((out - y_test) ** 2).item()}
result.update(fit_s=fit_s, epochs=args.epochs, threads=torch.get_num_threads())
with open(args.out, "w") as f:
    json.dump(result, f)
print(f"{result} (fit {fit_s:.2f} s)")

"""Digits 64-128-10 tanh MLP, SGD lr 0.1, batch 128, 50 epochs, in eager PyTorch.

    python train_pytorch.py --out result.json [--epochs 50]

Mini-batches are slices of one shuffled index per epoch (``torch.randperm``): the common
idiom for data already in memory, and faster than a DataLoader over a TensorDataset.
"""
import argparse
import json
import time

import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from torch import nn

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
X_train, X_val, X_test = (torch.tensor(scaler.transform(a), dtype=torch.float32)
                          for a in (X_train, X_val, X_test))
y_train, y_val, y_test = (torch.tensor(a) for a in (y_train, y_val, y_test))

torch.manual_seed(0)
model = nn.Sequential(nn.Linear(64, 128), nn.Tanh(), nn.Linear(128, 10))
loss_fn = nn.CrossEntropyLoss()
opt = torch.optim.SGD(model.parameters(), lr=0.1)

t0 = time.perf_counter()
for epoch in range(args.epochs):
    perm = torch.randperm(len(X_train))
    for i in range(0, len(X_train), 128):
        idx = perm[i:i + 128]
        loss = loss_fn(model(X_train[idx]), y_train[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
fit_s = time.perf_counter() - t0

with torch.no_grad():
    test_acc = (model(X_test).argmax(1) == y_test).float().mean().item()
    val_acc = (model(X_val).argmax(1) == y_val).float().mean().item()
result = {"test_accuracy": test_acc, "val_accuracy": val_acc, "fit_s": fit_s,
          "epochs": args.epochs, "threads": torch.get_num_threads()}
with open(args.out, "w") as f:
    json.dump(result, f)
print(f"test accuracy {test_acc:.4f} (fit {fit_s:.2f} s)")

#!/usr/bin/env python3
"""The training peer of BENCHMARKS.md: PyTorch trains the same 784-128-10 MLP
as `ember train --hidden 128 --epochs 3 --batch 64 --lr 0.1 --momentum 0.9
--schedule constant --augment 0 --valid 0` (SGD with momentum, batch 64,
shuffled every epoch, cross-entropy) and prints the seconds of each epoch's
training loop and the test accuracy after it, as one JSON line.

Usage: MNIST_DIR=... python3 benches/pytorch_epoch.py THREADS [EPOCHS]
(PyTorch from PyPI; run it interleaved with ember, the same machine, idle.)"""
import gzip, json, os, struct, sys, time
import numpy as np
import torch
from torch import nn

def idx(name):
    d = os.environ["MNIST_DIR"]
    for p in (os.path.join(d, name), os.path.join(d, name + ".gz")):
        if os.path.exists(p):
            raw = open(p, "rb").read()
            if raw[:2] == b"\x1f\x8b":
                raw = gzip.decompress(raw)
            rank = raw[3]
            dims = struct.unpack(">" + "I" * rank, raw[4:4 + 4 * rank])
            return np.frombuffer(raw, np.uint8, offset=4 + 4 * rank).reshape(dims)
    sys.exit(f"no {name} in {d}")

threads = int(sys.argv[1])
epochs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
torch.set_num_threads(threads)
torch.manual_seed(1)
x = torch.from_numpy(idx("train-images-idx3-ubyte").reshape(-1, 784).astype(np.float32) / 255.0)
y = torch.from_numpy(idx("train-labels-idx1-ubyte").astype(np.int64))
xt = torch.from_numpy(idx("t10k-images-idx3-ubyte").reshape(-1, 784).astype(np.float32) / 255.0)
yt = torch.from_numpy(idx("t10k-labels-idx1-ubyte").astype(np.int64))
net = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
loss_fn = nn.CrossEntropyLoss()
seconds, acc = [], None
for e in range(epochs):
    t0 = time.perf_counter()
    perm = torch.randperm(len(x))
    for i in range(0, len(x), 64):
        b = perm[i:i + 64]
        opt.zero_grad(set_to_none=True)
        loss_fn(net(x[b]), y[b]).backward()
        opt.step()
    seconds.append(round(time.perf_counter() - t0, 3))
with torch.no_grad():
    acc = float((net(xt).argmax(1) == yt).float().mean())
print(json.dumps({"threads": threads, "epoch_seconds": seconds, "test_accuracy": acc, "torch": torch.__version__}))

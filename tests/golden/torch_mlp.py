#!/usr/bin/env python3
"""Golden PyTorch models for ember's safetensors interop (tests/interop.rs).

1. Trains nn.Sequential(Linear(784, 64), ReLU, Linear(64, 10)) on MNIST with
   PyTorch, wrapped in a module so that its state dict carries the prefix
   `net.`, and saves it as torch_mlp.safetensors (f32) and
   torch_mlp_bf16.safetensors (bf16); records PyTorch's test accuracy of
   both (the bf16 weights evaluated in f32, as ember converts them) in
   torch_mlp.json.
2. With --load FILE: loads an ember export (0.weight, 0.bias, 2.weight, ...)
   into nn.Sequential and prints its test accuracy as JSON; run on
   ember_export.safetensors it gives the accuracy recorded in
   ember_export.json.

Usage (PyTorch and safetensors from PyPI; MNIST_DIR holds the IDX files):
    MNIST_DIR=../shared/data/mnist python3 tests/golden/torch_mlp.py
    MNIST_DIR=../shared/data/mnist python3 tests/golden/torch_mlp.py --load tests/golden/ember_export.safetensors
"""
import gzip, json, os, struct, sys
import numpy as np
import torch
from torch import nn
from safetensors.torch import save_file, load_file

HERE = os.path.dirname(os.path.abspath(__file__))

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

def data(split):
    x = idx(f"{split}-images-idx3-ubyte").reshape(-1, 784)
    y = idx(f"{split}-labels-idx1-ubyte")
    # As ember sees a pixel: f32(p) * f32(1/255).
    x = torch.from_numpy(x.astype(np.float32)) * torch.tensor(1.0 / 255.0, dtype=torch.float32)
    return x, torch.from_numpy(y.astype(np.int64))

def accuracy(net, x, y):
    with torch.no_grad():
        return float((net(x).argmax(1) == y).float().mean())

class Wrapped(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, 10))
    def forward(self, x):
        return self.net(x)

def main():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    xt, yt = data("t10k")
    if len(sys.argv) == 3 and sys.argv[1] == "--load":
        sd = load_file(sys.argv[2])
        widths = [sd["0.weight"].shape[1]] + [sd[f"{i}.weight"].shape[0] for i in range(0, 99, 2) if f"{i}.weight" in sd]
        layers = []
        for i, (a, b) in enumerate(zip(widths, widths[1:])):
            layers += [nn.Linear(a, b), nn.ReLU()]
        net = nn.Sequential(*layers[:-1])
        net.load_state_dict(sd)
        print(json.dumps({"test_accuracy": accuracy(net, xt, yt), "torch": torch.__version__}))
        return
    x, y = data("train")
    model = Wrapped()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for epoch in range(2):
        perm = torch.randperm(len(x))
        for i in range(0, len(x), 64):
            b = perm[i:i + 64]
            opt.zero_grad()
            nn.functional.cross_entropy(model(x[b]), y[b]).backward()
            opt.step()
    sd = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(sd, os.path.join(HERE, "torch_mlp.safetensors"))
    save_file({k: v.to(torch.bfloat16) for k, v in sd.items()}, os.path.join(HERE, "torch_mlp_bf16.safetensors"))
    acc = accuracy(model, xt, yt)
    bf = Wrapped()
    bf.load_state_dict({k: v.to(torch.bfloat16).to(torch.float32) for k, v in sd.items()})
    out = {"test_accuracy": acc, "test_accuracy_bf16": accuracy(bf, xt, yt), "torch": torch.__version__,
           "arch": "784-64-10", "epochs": 2, "optimizer": "SGD lr 0.1 momentum 0.9, batch 64, seed 0"}
    json.dump(out, open(os.path.join(HERE, "torch_mlp.json"), "w"), indent=2)
    print(json.dumps(out))

main()

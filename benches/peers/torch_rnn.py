#!/usr/bin/env python3
"""The `wgrnn bench` workloads in PyTorch, for a side-by-side comparison on the same machine.

Each workload is a full training step (forward, loss, backward, Adam update) in f32 on
random data, timed like `wgrnn bench`: 3 warm-up steps, then 20 steps or 10 s, whichever
comes first (at least 3); median and p95 step time, tokens/s (batch x sequence length /
median) and GFLOP/s from the same FLOP count (3 x the forward matrix products' 2*M*N*K).

    python3 benches/peers/torch_rnn.py                 # CPU (all its threads)
    python3 benches/peers/torch_rnn.py --device cuda   # cuDNN, when a GPU is present
    python3 benches/peers/torch_rnn.py --workload W1 --json torch.json
"""
import argparse
import json
import statistics
import time

import torch
import torch.nn as nn

WORKLOADS = {
    # name: (vocab or None, embed or input features, hidden, outputs, many_to_many, batch, steps, output relu / loss)
    "W1": dict(vocab=10000, width=128, hidden=256, outputs=18, per_step=True, batch=64, steps=32, loss="ce"),
    "W2": dict(vocab=None, width=8, hidden=128, outputs=1, per_step=False, batch=256, steps=50, loss="mse_relu"),
    "W3": dict(vocab=96, width=64, hidden=512, outputs=96, per_step=True, batch=512, steps=64, loss="ce"),
}


class Model(nn.Module):
    def __init__(self, w):
        super().__init__()
        self.embedding = nn.Embedding(w["vocab"], w["width"]) if w["vocab"] else None
        self.rnn = nn.RNN(w["width"], w["hidden"], nonlinearity="tanh", batch_first=True)
        self.head = nn.Linear(w["hidden"], w["outputs"])
        self.per_step = w["per_step"]

    def forward(self, x):
        if self.embedding is not None:
            x = self.embedding(x)
        out, _ = self.rnn(x)
        return self.head(out if self.per_step else out[:, -1])


def flops(w):
    b, t, h, o, i = w["batch"], w["steps"], w["hidden"], w["outputs"], w["width"]
    rows_out = t * b if w["per_step"] else b
    return 3.0 * (2 * t * b * i * h + 2 * t * b * h * h + 2 * rows_out * h * o)


def run(name, device, steps, max_seconds):
    w = WORKLOADS[name]
    torch.manual_seed(0)
    model = Model(w).to(device)
    opt = torch.optim.Adam(model.parameters())
    b, t = w["batch"], w["steps"]
    if w["vocab"]:
        x = torch.randint(0, w["vocab"], (b, t), device=device)
    else:
        x = torch.rand(b, t, w["width"], device=device) * 2 - 1
    if w["loss"] == "ce":
        y = torch.randint(0, w["outputs"], (b, t), device=device)
        loss_fn = lambda out: nn.functional.cross_entropy(out.reshape(-1, w["outputs"]), y.reshape(-1))
    else:
        y = torch.rand(b, w["outputs"], device=device)
        loss_fn = lambda out: nn.functional.mse_loss(torch.relu(out), y)

    def step():
        t0 = time.perf_counter()
        opt.zero_grad()
        loss_fn(model(x)).backward()
        opt.step()
        if device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - t0

    for _ in range(3):
        step()
    times, started = [], time.perf_counter()
    while len(times) < 3 or (len(times) < steps and time.perf_counter() - started < max_seconds):
        times.append(step())
    times.sort()
    median = statistics.median(times)
    p95 = times[min(len(times) - 1, round((len(times) - 1) * 0.95))]
    return dict(workload=name, batch=b, steps=t, steps_timed=len(times), median_ms=median * 1e3, p95_ms=p95 * 1e3,
                tokens_per_second=b * t / median, gflops_per_second=flops(w) / median / 1e9)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--workload", default="W1,W2,W3")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--max-seconds", type=float, default=10.0)
    ap.add_argument("--json")
    a = ap.parse_args()
    print(f"torch {torch.__version__} on {a.device} ({torch.get_num_threads()} threads)")
    results = []
    for name in a.workload.split(","):
        r = run(name.strip().upper(), a.device, a.steps, a.max_seconds)
        results.append(r)
        print(f"{r['workload']} B {r['batch']} T {r['steps']}: median {r['median_ms']:.2f} ms, p95 {r['p95_ms']:.2f} ms "
              f"over {r['steps_timed']} steps; {r['tokens_per_second']:.0f} tokens/s; {r['gflops_per_second']:.2f} GFLOP/s")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(dict(torch=torch.__version__, device=a.device, threads=torch.get_num_threads(), results=results), f, indent=2)


if __name__ == "__main__":
    main()

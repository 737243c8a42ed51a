#!/usr/bin/env python3
"""The `wgrnn bench` workloads in PyTorch, for a side-by-side comparison on the same machine.

Each workload is a full training step (forward, loss, backward, Adam update) in f32 on
random data, timed like `wgrnn bench`: 3 warm-up steps, then 20 steps or 10 s, whichever
comes first (at least 3); median and p95 step time, tokens/s (batch x sequence length /
median) and GFLOP/s from the same FLOP count (3 x the forward matrix products' 2*M*N*K);
then as many steps back to back with one wait at the end (a training loop's pace).

    python3 benches/peers/torch_rnn.py                 # CPU (all its threads)
    python3 benches/peers/torch_rnn.py --device cuda   # cuDNN, when a GPU is present
    python3 benches/peers/torch_rnn.py --workload W1 --json torch.json
    python3 benches/peers/torch_rnn.py --device cuda --workload W3 --batch 4096 --hidden 1024
    python3 benches/peers/torch_rnn.py --device cuda --no-tf32   # strict f32 in cuDNN, like wgrnn
    wgrnn bench --workload W1,W2 --json wgrnn.json && \
      python3 benches/peers/torch_rnn.py --workload W1,W2 --against wgrnn.json   # side by side

W4 and W5 are W1 with an LSTM and a GRU cell. --batch/--hidden/--seq-len override the chosen
workloads' sizes (the large-batch sweep). On CUDA, cuDNN may use TF32 tensor cores for
recurrent layers by default (torch.backends.cudnn.allow_tf32); --no-tf32 turns that off.
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
WORKLOADS["W4"] = dict(WORKLOADS["W1"], cell="lstm")
WORKLOADS["W5"] = dict(WORKLOADS["W1"], cell="gru")
# Stacked gate matrices per cell: the recurrent products are this many times wider.
GATES = {"rnn": 1, "lstm": 4, "gru": 3}


class Model(nn.Module):
    def __init__(self, w):
        super().__init__()
        self.embedding = nn.Embedding(w["vocab"], w["width"]) if w["vocab"] else None
        cell = w.get("cell", "rnn")
        if cell == "lstm":
            self.rnn = nn.LSTM(w["width"], w["hidden"], batch_first=True)
        elif cell == "gru":
            self.rnn = nn.GRU(w["width"], w["hidden"], batch_first=True)
        else:
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
    g = GATES[w.get("cell", "rnn")]
    rows_out = t * b if w["per_step"] else b
    return 3.0 * (2 * t * b * i * g * h + 2 * t * b * h * g * h + 2 * rows_out * h * o)


def run(name, device, steps, max_seconds, sizes):
    w = dict(WORKLOADS[name], **{k: v for k, v in sizes.items() if v is not None})
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

    def train_step():
        opt.zero_grad()
        loss_fn(model(x)).backward()
        opt.step()

    def sync():
        if device == "cuda":
            torch.cuda.synchronize()

    def step():
        t0 = time.perf_counter()
        train_step()
        sync()
        return time.perf_counter() - t0

    for _ in range(3):
        step()
    times, started = [], time.perf_counter()
    while len(times) < 3 or (len(times) < steps and time.perf_counter() - started < max_seconds):
        times.append(step())
    # The same number of steps back to back, one wait at the end (as wgrnn bench's
    # back_to_back_ms: a training loop's pace, the host's launches overlapping the GPU's work).
    t0 = time.perf_counter()
    for _ in range(len(times)):
        train_step()
    sync()
    back_to_back = (time.perf_counter() - t0) / len(times)
    times.sort()
    median = statistics.median(times)
    p95 = times[min(len(times) - 1, round((len(times) - 1) * 0.95))]
    return dict(workload=name, cell=w.get("cell", "rnn"), hidden=w["hidden"], batch=b, steps=t, steps_timed=len(times), median_ms=median * 1e3, p95_ms=p95 * 1e3,
                tokens_per_second=b * t / median, gflops_per_second=flops(w) / median / 1e9,
                back_to_back_steps=len(times), back_to_back_ms=back_to_back * 1e3)


def read_wgrnn_report(path):
    """The results of a `wgrnn bench --json` report, keyed by (workload, cell, hidden, batch, steps)."""
    try:
        with open(path) as f:
            report = json.load(f)
        out = {}
        for r in report["results"]:
            w = r["workload"]
            key = (w["name"], w["config"]["cell"].lower(), w["config"]["hidden"], w["batch"], w["steps"])
            out[key] = r
        return dict(results=out, adapter=report["adapter"]["name"], date=report["date"], time=report.get("time_utc", ""))
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise SystemExit(f"{path}: not a `wgrnn bench --json` report ({type(e).__name__}: {e})")


def side_by_side(earlier, results):
    """A table of each PyTorch result beside the wgrnn one of the same workload and sizes."""
    lines = [f"against wgrnn ({earlier['adapter']}, {earlier['date']} {earlier['time']} UTC); times in ms, "
             f"PyTorch / wgrnn > 1: wgrnn faster",
             f"{'workload':<28} {'wgrnn median':>12} {'PyTorch median':>14} {'PyTorch/wgrnn':>13} "
             f"{'wgrnn b2b':>9} {'PyTorch b2b':>11} {'PyTorch/wgrnn':>13}"]
    for r in results:
        key = (r["workload"], r["cell"], r["hidden"], r["batch"], r["steps"])
        label = f"{r['workload']} {r['cell']} H {r['hidden']} B {r['batch']} T {r['steps']}"
        w = earlier["results"].get(key)
        if w is None:
            lines.append(f"{label:<28} (not in the wgrnn report)")
            continue
        b2b = w.get("back_to_back_ms")
        b2b_cols = (f"{b2b:>9.2f} {r['back_to_back_ms']:>11.2f} {r['back_to_back_ms'] / b2b:>13.2f}"
                    if b2b else f"{'-':>9} {r['back_to_back_ms']:>11.2f} {'-':>13}")
        lines.append(f"{label:<28} {w['median_ms']:>12.2f} {r['median_ms']:>14.2f} "
                     f"{r['median_ms'] / w['median_ms']:>13.2f} {b2b_cols}")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--workload", default="W1,W2,W3")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--max-seconds", type=float, default=10.0)
    ints = lambda text: [int(v) for v in text.split(",")]
    ap.add_argument("--batch", type=ints, default=[None], help="one size or a comma-separated sweep")
    ap.add_argument("--hidden", type=ints, default=[None], help="one size or a comma-separated sweep")
    ap.add_argument("--seq-len", type=int)
    ap.add_argument("--no-tf32", action="store_true", help="strict f32 in cuDNN (no TF32 tensor cores)")
    ap.add_argument("--json")
    ap.add_argument("--against", metavar="WGRNN_JSON",
                    help="a `wgrnn bench --json` report of the same workloads (run just before, on this machine): "
                         "print each one's wgrnn and PyTorch times side by side")
    a = ap.parse_args()
    earlier = read_wgrnn_report(a.against) if a.against else None
    if a.no_tf32:
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
    where = torch.cuda.get_device_name() if a.device == "cuda" else f"{torch.get_num_threads()} threads"
    print(f"torch {torch.__version__} on {a.device} ({where}); cudnn tf32 {torch.backends.cudnn.allow_tf32}")
    results = []
    sweep = [(name, h, b) for name in a.workload.split(",") for h in a.hidden for b in a.batch]
    for name, hidden, batch in sweep:
        sizes = dict(batch=batch, hidden=hidden, steps=a.seq_len)
        r = run(name.strip().upper(), a.device, a.steps, a.max_seconds, sizes)
        results.append(r)
        print(f"{r['workload']} {r['cell']} H {r['hidden']} B {r['batch']} T {r['steps']}: median {r['median_ms']:.2f} ms, p95 {r['p95_ms']:.2f} ms "
              f"over {r['steps_timed']} steps; {r['tokens_per_second']:.0f} tokens/s; {r['gflops_per_second']:.2f} GFLOP/s; "
              f"back to back {r['back_to_back_ms']:.2f} ms a step")
    if earlier is not None:
        print(side_by_side(earlier, results))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(dict(torch=torch.__version__, device=a.device, where=where,
                           cudnn_tf32=torch.backends.cudnn.allow_tf32, results=results), f, indent=2)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Two wgrnn builds timed against each other, alternated, on the same machine.

On a shared or software adapter one run's medians move by 10-50% from minute to minute, so a
change is only seen by running the old and new binaries in turns and comparing every round.
This runs `wgrnn bench` with the given arguments ROUNDS times with each binary, in the
order A B, B A, A B, ... (a drift of the machine's speed during the session favours neither),
each run with `--json` into OUT, and prints per workload each side's step medians (sorted),
back-to-back times and the ratio B / A of their medians, with a verdict: B faster or slower
in every round (the two sides' ranges do not overlap), or within the spread. With
`--kernel-times` among the bench arguments it also compares each kernel's time, and with
`--phases` each GPU phase's.

    cargo build --release && cp target/release/wgrnn /tmp/wgrnn-new
    git stash && cargo build --release && cp target/release/wgrnn /tmp/wgrnn-old && git stash pop
    python3 benches/ab.py /tmp/wgrnn-old /tmp/wgrnn-new --rounds 3 -- --workload W1,W2 --max-seconds 5

The tuning cache is off in every run (WGRNN_TUNING_CACHE=off) unless the environment sets
it: each binary then measures its own formulations, as a fresh process would.
"""
import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        usage="ab.py A B [--rounds N] [--out DIR] [--phases] -- BENCH ARGS...",
    )
    parser.add_argument("a", help="the first wgrnn binary (the base)")
    parser.add_argument("b", help="the second wgrnn binary (the change)")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each binary (default 3)")
    parser.add_argument("--out", help="where to keep each run's JSON and log (default: a temporary folder)")
    parser.add_argument("--phases", action="store_true", help="also compare each GPU phase")
    if "--" in argv:
        split = argv.index("--")
        ours, bench = argv[:split], argv[split + 1:]
    else:
        ours, bench = argv, []
    args = parser.parse_args(ours)
    if args.rounds < 1:
        parser.error(f"--rounds must be at least 1, not {args.rounds}")
    for flag in ("--json", "--compare"):
        if flag in bench:
            parser.error(f"{flag} is set by ab.py itself; leave it out of the bench arguments")
    for binary in (args.a, args.b):
        if not os.access(binary, os.X_OK):
            parser.error(f"{binary}: not an executable file")
    return args, bench


def run(binary, bench, json_path, log_path):
    """One `wgrnn bench` run; its parsed JSON report."""
    env = dict(os.environ)
    env.setdefault("WGRNN_TUNING_CACHE", "off")
    with open(log_path, "w") as log:
        done = subprocess.run([binary, "bench", *bench, "--json", str(json_path)], stdout=log, stderr=subprocess.STDOUT, env=env)
    if done.returncode != 0:
        tail = pathlib.Path(log_path).read_text().strip().splitlines()[-5:]
        sys.exit(f"{binary} bench failed (exit {done.returncode}); the end of {log_path}:\n" + "\n".join(tail))
    return json.loads(pathlib.Path(json_path).read_text())


def key(result):
    """A workload's identity across reports: its name and sizes."""
    w = result["workload"]
    return (w["name"], w["batch"], w["steps"], w["precision"], w["config"]["hidden"])


def label(k):
    name, batch, steps, precision, hidden = k
    return f"{name} (H {hidden}, B {batch}, T {steps}, {precision})"


def verdict(a, b):
    if max(b) < min(a):
        return "B faster in every round"
    if min(b) > max(a):
        return "B slower in every round"
    return "within the spread"


def row(what, a, b):
    """One compared quantity: each side's values (None where a run lacks it: a kernel one
    build does not run), their medians' ratio and the verdict."""
    fmt = lambda xs: ", ".join("-" if x is None else f"{x:.2f}" for x in sorted(xs, key=lambda x: -1 if x is None else x))
    line = f"  {what:<40} A {fmt(a):<32} B {fmt(b):<32}"
    if any(x is None for x in a + b):
        only = "B" if all(x is None for x in a) else "A" if all(x is None for x in b) else None
        return line + (f" only in {only}'s runs" if only else " not in every run")
    ratio = statistics.median(b) / statistics.median(a) if statistics.median(a) > 0 else float("nan")
    return line + f" B/A {ratio:.3f}  {verdict(a, b)}"


def main():
    args, bench = parse_args(sys.argv[1:])
    out = pathlib.Path(args.out or tempfile.mkdtemp(prefix="wgrnn-ab-"))
    out.mkdir(parents=True, exist_ok=True)
    reports = {"A": [], "B": []}
    for r in range(args.rounds):
        order = ("A", "B") if r % 2 == 0 else ("B", "A")
        for side in order:
            binary = args.a if side == "A" else args.b
            stem = out / f"{side}-{r + 1}"
            report = run(binary, bench, stem.with_suffix(".json"), stem.with_suffix(".log"))
            reports[side].append(report)
            medians = ", ".join(f"{res['workload']['name']} {res['median_ms']:.2f} ms" for res in report["results"])
            print(f"round {r + 1} {side} ({report.get('time_utc', '?')} UTC): {medians}", flush=True)
    print(f"\nA = {args.a} (commit {reports['A'][0].get('commit', '?')[:10]}), B = {args.b} (commit {reports['B'][0].get('commit', '?')[:10]})")
    print(f"adapter: {reports['A'][0]['adapter']['name']}; {args.rounds} rounds; JSON and logs in {out}\n")
    by_side = {side: [{key(res): res for res in rep["results"]} for rep in reports[side]] for side in reports}
    for k in by_side["A"][0]:
        if not all(k in rep for side in by_side for rep in by_side[side]):
            print(f"{label(k)}: not in every report, left out")
            continue
        series = {side: [rep[k] for rep in by_side[side]] for side in by_side}
        print(label(k))
        print(row("step median (ms)", *[[res["median_ms"] for res in series[s]] for s in ("A", "B")]))
        if all(res.get("back_to_back_ms") for s in series for res in series[s]):
            print(row("back to back (ms)", *[[res["back_to_back_ms"] for res in series[s]] for s in ("A", "B")]))
        if args.phases:
            for phase, _ in series["A"][0].get("phases_ms") or []:
                values = {s: [dict(res.get("phases_ms") or []).get(phase) for res in series[s]] for s in series}
                print(row(f"phase: {phase}", values["A"], values["B"]))
        kernels = sorted({name for s in series for res in series[s] for name, _ in res.get("kernel_times_ms") or []})
        for name in kernels:
            values = {s: [dict(res.get("kernel_times_ms") or []).get(name) for res in series[s]] for s in series}
            print(row(f"kernel: {name}", values["A"], values["B"]))
    print(
        f"\nThe verdicts compare the two sides' ranges over {args.rounds} rounds, nothing finer: a change smaller"
        " than the machine's spread between runs reads \"within the spread\"; more rounds narrow it."
    )


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""ONNX Runtime session options per heavy model, timed side by side.

Runs `pro` (ISNet, the float16 file and set-up's float32 conversion),
`original` (u2net) and `light` (u2netp), each as rembg ships it and with
set-up's half_pixel Resize rewrite (setup/halfpixel.py), with onnxruntime 1.31.1 (the library
the element loads) on a real photo prepared as the element prepares it, under
several session configurations, and prints the median ms a frame of each
with its ratio to rbv's current settings (src/model.rs: optimisation level
all, ONNX Runtime's default thread count, sequential execution, memory arena
and memory pattern on, every output fetched; the file as shipped: the float16
one for `pro`).

Method: the configurations of one model are interleaved. Each round visits
every configuration once, in an order shuffled anew each round (fixed seed):
the configuration's sessions of both files are created, each run once
(the first run plans memory; its time is printed apart as "first"), then run
`--runs` times each, the two files alternating run by run, and dropped before
the next configuration's are created; so load, noise and heat hit every
configuration alike, and the two files are compared run against run (the
per-configuration ratio printed is the median of those pairs, which holds up
better on a busy machine than a ratio of medians). Medians are over all timed
runs of all rounds; the fastest by median and by minimum (the least disturbed
run) are named.

Configurations (one setting changed at a time from the baseline; `--full`
adds the whole grid of level x threads x mode x arena):
  level basic / extended / all      graph optimisation level
  threads 1 / 2 (0 = ORT's choice)  intra-op threads
  parallel                          ExecutionMode.ORT_PARALLEL
  arena off                         enable_cpu_mem_arena = False
  pattern off                       enable_mem_pattern = False
  no spin                           session.intra_op.allow_spinning = 0
  first output                      fetch only the mask output (rbv reads only it)
`--memory` then measures, each configuration in a fresh process, resident
memory after loading, after the first run, after the second, after a run
from another thread (as a second element instance on a shared session),
and the peak.

usage: ~/.cache/rbv/venv/bin/python benches/ort_options.py [--models pro,original,light]
       [--rounds N] [--runs N] [--full] [--configs base,pattern-off,...] [--memory] [--photo zidane.jpg]
"""
import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

LEVELS = {
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}
BASE = {"level": "all", "threads": 0, "mode": "sequential", "arena": True, "pattern": True,
        "spin": True, "outputs": "all"}

# model -> [(label, file)], input size, normalisation, default rounds and timed runs per visit
MODELS = {
    "pro": ([("fp16", "isnet_fp16.onnx"), ("fp32", "isnet_fp32.onnx")], 1024, "imgly", 3, 2),
    "original": ([("orig", "u2net.onnx"), ("hp", "u2net_halfpixel.onnx")], 320, "rembg", 4, 3),
    "light": ([("orig", "u2netp.onnx"), ("hp", "u2netp_halfpixel.onnx")], 320, "rembg", 5, 5),
}


def cache_dir():
    if os.environ.get("RBV_CACHE_DIR"):
        return Path(os.environ["RBV_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "rbv"


def model_input(photo, size, norm):
    """The photo as src/model.rs feeds it: squashed to size x size (linear), NCHW."""
    rgb = np.asarray(Image.open(photo).convert("RGB").resize((size, size), Image.BILINEAR), dtype=np.float32)
    if norm == "imgly":  # (x - 128) / 256
        x = (rgb - 128.0) / 256.0
    else:  # rembg: x / max(x), then ImageNet mean and std
        x = (rgb / max(rgb.max(), 1.0) - np.array([0.485, 0.456, 0.406], np.float32)) / np.array(
            [0.229, 0.224, 0.225], np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None], dtype=np.float32)


def describe(cfg):
    diff = [k for k in BASE if cfg[k] != BASE[k]]
    if not diff:
        return "rbv now (all, ORT threads, seq, arena, pattern)"
    words = {
        "level": lambda v: f"level {v}", "threads": lambda v: f"threads {v}",
        "mode": lambda v: v, "arena": lambda v: "arena " + ("on" if v else "off"),
        "pattern": lambda v: "pattern " + ("on" if v else "off"), "spin": lambda v: "no spin",
        "outputs": lambda v: "first output",
    }
    return ", ".join(words[k](cfg[k]) for k in diff)


def configs(full):
    """(name, configuration): rbv's settings, then one setting changed at a time."""
    out = [("base", dict(BASE))]
    for name, k, v in (("basic", "level", "basic"), ("extended", "level", "extended"),
                       ("threads1", "threads", 1), ("threads2", "threads", 2), ("parallel", "mode", "parallel"),
                       ("arena-off", "arena", False), ("pattern-off", "pattern", False), ("no-spin", "spin", False),
                       ("first-output", "outputs", "first")):
        out.append((name, {**BASE, k: v}))
    out.append(("arena-pattern-off", {**BASE, "arena": False, "pattern": False}))
    if full:
        for level in LEVELS:
            for threads in (1, 2):
                for mode in ("sequential", "parallel"):
                    for arena in (True, False):
                        c = {**BASE, "level": level, "threads": threads, "mode": mode, "arena": arena}
                        if c not in [cfg for _, cfg in out]:
                            out.append((f"{level}-t{threads}-{mode[:3]}-arena{int(arena)}", c))
    return out


def session(path, cfg):
    so = ort.SessionOptions()
    so.graph_optimization_level = LEVELS[cfg["level"]]
    so.intra_op_num_threads = cfg["threads"]
    so.execution_mode = (ort.ExecutionMode.ORT_PARALLEL if cfg["mode"] == "parallel"
                         else ort.ExecutionMode.ORT_SEQUENTIAL)
    so.enable_cpu_mem_arena = cfg["arena"]
    so.enable_mem_pattern = cfg["pattern"]
    if not cfg["spin"]:
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    s = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    fetch = None if cfg["outputs"] == "all" else [s.get_outputs()[0].name]
    feed_name = s.get_inputs()[0].name
    return s, (lambda x: s.run(fetch, {feed_name: x}))


def memory_kib():
    got = {}
    for line in open("/proc/self/status"):
        k, _, v = line.partition(":")
        if k in ("VmRSS", "VmHWM"):
            got[k] = int(v.split()[0])
    return got["VmRSS"], got["VmHWM"]


def memory_child(path, cfg, size, norm, photo):
    """Prints one JSON line: resident MiB at each step and the peak."""
    x = model_input(photo, size, norm)
    steps = {"before": memory_kib()[0]}
    s, run = session(path, cfg)
    steps["loaded"] = memory_kib()[0]
    run(x)
    steps["run 1"] = memory_kib()[0]
    run(x)
    steps["run 2"] = memory_kib()[0]
    t = threading.Thread(target=run, args=(x,))
    t.start()
    t.join()
    steps["other thread"] = memory_kib()[0]
    steps["peak"] = memory_kib()[1]
    print(json.dumps({k: round(v / 1024) for k, v in steps.items()}))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="pro,original,light")
    ap.add_argument("--rounds", type=int, help="rounds (default per model: pro 3, original 4, light 5)")
    ap.add_argument("--runs", type=int, help="timed runs per visit (default: pro 2, original 3, light 5)")
    ap.add_argument("--full", action="store_true", help="also the full level x threads x mode x arena grid")
    ap.add_argument("--memory", action="store_true", help="also resident memory per configuration")
    ap.add_argument("--configs", help="only these (base is always in): " + ",".join(n for n, _ in configs(False)))
    ap.add_argument("--photo", default="zidane.jpg")
    ap.add_argument("--seed", type=int, default=18)
    ap.add_argument("--json", type=Path, help="write the figures here too")
    ap.add_argument("--memory-child", nargs=4, help=argparse.SUPPRESS)
    a = ap.parse_args()
    cache = cache_dir()
    photo = cache / "data" / a.photo
    if a.memory_child:
        path, cfg, size, norm = a.memory_child
        return memory_child(path, json.loads(cfg), int(size), norm, photo)

    print(f"onnxruntime {ort.__version__}, CPU provider, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.2f} at start; photo {a.photo}")
    results = {}
    for name in a.models.split(","):
        files, size, norm, rounds, runs = MODELS[name]
        rounds, runs = a.rounds or rounds, a.runs or runs
        paths = []
        for label, f in files:
            p = cache / "models" / f
            if not p.is_file():
                sys.exit(f"ort_options: {p} missing (run setup/setup.sh)")
            paths.append((label, p))
        x = model_input(photo, size, norm)
        chosen = [(n, c) for n, c in configs(a.full) if not a.configs or n in a.configs.split(",")]
        if not any(c == BASE for _, c in chosen):
            chosen.insert(0, ("base", dict(BASE)))
        cases = [(label, p, cfg) for label, p in paths for _, cfg in chosen]
        times = {i: [] for i in range(len(cases))}
        first = {i: [] for i in range(len(cases))}
        # Per configuration: the second file's time over the first's, run by run.
        paired = {c: [] for c in range(len(chosen))}
        t_start = time.time()
        for r in range(rounds):
            order = list(range(len(chosen)))
            random.Random(a.seed * 1000 + r).shuffle(order)
            for c in order:
                # The configuration's sessions of every file at once, their runs
                # alternating, so the files are compared run against run.
                idx = [f * len(chosen) + c for f in range(len(paths))]
                runners = []
                for i in idx:
                    runners.append(session(cases[i][1], cases[i][2]))
                for i, (_, run) in zip(idx, runners):
                    t0 = time.perf_counter()
                    run(x)
                    first[i].append((time.perf_counter() - t0) * 1000)
                for k in range(runs):
                    took = {}
                    for j in (range(len(idx)) if k % 2 == 0 else reversed(range(len(idx)))):
                        t0 = time.perf_counter()
                        runners[j][1](x)
                        took[j] = (time.perf_counter() - t0) * 1000
                        times[idx[j]].append(took[j])
                    if len(idx) > 1:
                        paired[c].append(took[1] / took[0])
                del runners
            print(f"  {name}: round {r + 1}/{rounds} done ({time.time() - t_start:.0f} s, "
                  f"load average {os.getloadavg()[0]:.2f})", file=sys.stderr, flush=True)
        base = {label: statistics.median(times[i]) for i, (label, _, cfg) in enumerate(cases) if cfg == BASE}
        ref = base[paths[0][0]]
        print(f"\n{name}: {rounds} rounds x {runs} timed runs per configuration, interleaved; "
              f"ratio against rbv now on {paths[0][0]}")
        print(f"  {'file':<5} {'configuration':<48} {'median ms':>9} {'min':>7} {'max':>7} {'ratio':>6} {'first':>7}")
        rows = []
        for i, (label, p, cfg) in enumerate(cases):
            med = statistics.median(times[i])
            rows.append({"file": p.name, "config": cfg, "label": describe(cfg), "median_ms": med,
                         "min_ms": min(times[i]), "max_ms": max(times[i]), "first_run_ms": statistics.median(first[i]),
                         "ratio": med / ref})
        for row, (label, _, _) in sorted(zip(rows, cases), key=lambda rc: rc[0]["median_ms"]):
            print(f"  {label:<5} {row['label']:<48} {row['median_ms']:>9.1f} {row['min_ms']:>7.1f} "
                  f"{row['max_ms']:>7.1f} {row['ratio']:>6.2f} {row['first_run_ms']:>7.0f}")
        best = min(rows, key=lambda r: r["median_ms"])
        print(f"  fastest by median: {best['file']} with {best['label']}: {best['median_ms']:.1f} ms "
              f"({best['ratio']:.2f} of rbv now, {ref:.1f} ms)")
        quick = min(rows, key=lambda r: r["min_ms"])
        print(f"  fastest by minimum: {quick['file']} with {quick['label']}: {quick['min_ms']:.1f} ms")
        if len(paths) > 1:
            print(f"  {paths[1][0]} / {paths[0][0]}, run against run (median of {len(paired[0])} pairs), per "
                  f"configuration:")
            for c, (_, cfg) in enumerate(chosen):
                print(f"    {describe(cfg):<48} {statistics.median(paired[c]):.2f}")
        entry = {"rows": rows, "fastest": best, "fastest_by_min": quick, "baseline_ms": ref,
                 "paired_ratio": {describe(cfg): statistics.median(paired[c]) for c, (_, cfg) in enumerate(chosen)
                                  if paired[c]}}

        if a.memory:
            mem = []
            print(f"  memory, MiB resident, each configuration in a fresh process:")
            print(f"  {'file':<5} {'configuration':<48} {'loaded':>7} {'run 1':>6} {'run 2':>6} {'thread':>6} {'peak':>6}")
            for label, p, cfg in cases:
                if cfg["level"] != "all" or cfg["mode"] != "sequential" or not cfg["spin"]:
                    continue
                out = subprocess.run([sys.executable, __file__, "--photo", a.photo, "--memory-child", str(p),
                                      json.dumps(cfg), str(size), norm], capture_output=True, text=True)
                if out.returncode != 0:
                    print(f"  {label:<5} {describe(cfg):<48} failed: {out.stderr.strip()[-300:]}")
                    continue
                m = json.loads(out.stdout.strip().splitlines()[-1])
                mem.append({"file": p.name, "label": describe(cfg), **m})
                print(f"  {label:<5} {describe(cfg):<48} {m['loaded']:>7} {m['run 1']:>6} {m['run 2']:>6} "
                      f"{m['other thread']:>6} {m['peak']:>6}")
            entry["memory_mib"] = mem
        results[name] = entry
    print(f"\nload average at the end {os.getloadavg()[0]:.2f} (figures are only comparable within a run)")
    if a.json:
        a.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()

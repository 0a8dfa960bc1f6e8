#!/usr/bin/env python3
"""Where `pro`'s "+300 MB per extra instance" comes from (issue 18).

benches/fps.rs measures one `rbvremove model=pro` instance against four that
share a session, each prerolled on one frame: so "four instances" is also
"four runs of the session" (from four streaming threads). This script tells
the two apart, each case in a fresh process: resident memory (VmRSS, MiB)
after n instances have each run one frame, against one instance that has run
n frames; then the same through ONNX Runtime's Python API with the memory
pattern or the arena turned off (options the element does not expose yet).

usage: python3 benches/pro_memory.py [--plugin-dir DIR] [--model pro] [--frames 4]
(python3 with PyGObject, Debian's python3-gi; the ONNX Runtime part runs in
set-up's tools venv.)
"""
import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def rss_mib():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def child_gst(model, instances, frames):
    import gi
    gi.require_version("Gst", "1.0")
    from gi.repository import Gst
    Gst.init(None)
    if Gst.ElementFactory.find("rbvremove") is None:
        sys.exit("pro_memory: rbvremove not found (GST_PLUGIN_PATH)")
    before = rss_mib()
    pipelines = []
    for _ in range(instances):
        p = Gst.parse_launch(f"videotestsrc num-buffers={frames} ! video/x-raw,width=640,height=360 ! "
                             f"rbvremove model={model} ! fakesink sync=false")
        p.set_state(Gst.State.PLAYING)
        msg = p.get_bus().timed_pop_filtered(600 * Gst.SECOND, Gst.MessageType.EOS | Gst.MessageType.ERROR)
        if msg is None or msg.type == Gst.MessageType.ERROR:
            sys.exit(f"pro_memory: pipeline failed: {msg.parse_error() if msg else 'timeout'}")
        pipelines.append(p)  # kept (at EOS, not stopped): its element and session stay
    print(f"{before:.0f} {rss_mib():.0f}")
    for p in pipelines:
        p.set_state(Gst.State.NULL)


def child_ort(path, runs, arena, pattern):
    import numpy as np
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.enable_cpu_mem_arena = arena
    so.enable_mem_pattern = pattern
    s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal((1, 3, 1024, 1024), dtype=np.float32)
    out = [f"{rss_mib():.0f}"]
    for _ in range(runs):
        s.run(None, {s.get_inputs()[0].name: x})
        out.append(f"{rss_mib():.0f}")
    print(" ".join(out))


def run(cmd, env=None):
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        sys.exit(f"pro_memory: {' '.join(cmd)} failed: {r.stderr[-1500:]}")
    return r.stdout.split()


def main():
    if sys.argv[1] == "--gst":
        return child_gst(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    if sys.argv[1] == "--ort":
        return child_ort(sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1", sys.argv[5] == "1")
    ap = argparse.ArgumentParser()
    ap.add_argument("--plugin-dir", type=Path,
                    default=Path(os.environ.get("RBV_PLUGIN_DIR") or ROOT / "target" / "release"))
    ap.add_argument("--model", default="pro")
    ap.add_argument("--frames", type=int, default=4)
    ap.add_argument("--tools-python", default=str(Path.home() / ".cache/rbv/venv/bin/python"))
    a = ap.parse_args()
    if not (a.plugin_dir / "libgstrbv.so").is_file():
        sys.exit(f"pro_memory: no libgstrbv.so in {a.plugin_dir}")
    env = dict(os.environ, GST_PLUGIN_PATH=str(a.plugin_dir.resolve()))
    n = a.frames
    print(f"rbvremove model={a.model}, resident MiB, each case in a fresh process")
    for inst, frames in ((1, 1), (1, 2), (1, n), (n, 1)):
        before, after = run([sys.executable, __file__, "--gst", a.model, str(inst), str(frames)], env)
        print(f"  {inst} instance(s) x {frames} frame(s) each: {after} MiB ({before} before)")
    if a.model == "pro":
        cache = Path(os.environ.get("RBV_CACHE_DIR") or Path.home() / ".cache/rbv")
        model = str(cache / "models" / "isnet_fp32.onnx")
        print(f"ONNX Runtime alone (Python, one session of {Path(model).name}), MiB after load and after each run:")
        for arena, pattern, what in ((1, 1, "arena on, pattern on (rbv now)"), (1, 0, "arena on, pattern off"),
                                     (0, 1, "arena off, pattern on")):
            print(f"  {what:<32} " + " ".join(run([a.tools_python, __file__, "--ort", model, str(n),
                                                    str(arena), str(pattern)])))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Two builds of the plugin side by side, interleaved: the in-memory rows of
benches/fps.rs against the file rows a user's pipeline has (issue 18: "about
2 ms a frame more outside the in-memory bench").

usage: python3 benches/builds_ab.py BEFORE_DIR AFTER_DIR [--size 1080p] [--rounds 3]
  BEFORE_DIR, AFTER_DIR: directories holding a libgstrbv.so each (for example
  main's build and this branch's: `git archive main | tar -x -C /tmp/main` and
  `cargo build --release -p gst-plugin-rbv` there).
python3 is one with PyGObject (Debian's python3-gi), as for benches/peer.py.

Method: the first 200 frames of vtest.avi decoded and scaled to the size in I420,
written once to a raw file in /dev/shm. Each build runs in a process of its own
(its own GStreamer registry), one process per build per round, the order of the
builds reversed every other round. In each process, `rbvremove model=human` on:
  - memory, cycled: appsrc pushing the same 200 decoded buffers (as fps.rs);
  - memory, fresh: each frame copied into a new buffer before it is pushed, as
    a decoder hands new buffers (fps.rs's fresh-buffers row);
  - raw file: `filesrc ! rawvideoparse ! rbvremove ! fakesink`, the reading on
    the element's thread, timed at the sink from frame 20 to 200;
  - raw file with a `queue` before rbvremove;
  - raw file read alone (no rbvremove).
Per row: fps, CPU ms a frame of the whole process, and context switches a
frame (all threads of the process, voluntary + involuntary). The table shows
medians over the rounds and AFTER's fps over BEFORE's, round by round (median).
"""
import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import peer  # noqa: E402

FIRST, TIMED = 20, 180


def switches():
    n = 0
    for task in Path("/proc/self/task").iterdir():
        try:
            for line in (task / "status").read_text().splitlines():
                if "ctxt_switches:" in line:
                    n += int(line.split()[1])
        except OSError:
            pass
    return n


def child(plugin_dir, raw, w, h):
    key = hashlib.sha256(str(Path(plugin_dir).resolve()).encode()).hexdigest()[:12]
    os.environ["GST_REGISTRY"] = str(Path(tempfile.gettempdir()) / f"rbv-ab-registry-{key}.bin")
    Gst, plugin = peer.gst_init(Path(plugin_dir).resolve())
    size = w * h * 3 // 2
    data = Path(raw).read_bytes()
    frames = [data[i * size:(i + 1) * size] for i in range(len(data) // size)]
    caps = Gst.Caps.from_string(f"video/x-raw,format=I420,width={w},height={h},framerate=30/1,"
                                f"pixel-aspect-ratio=1/1")
    cycled = [Gst.Buffer.new_wrapped(f) for f in frames]

    class Fresh(list):
        """Each get a new buffer holding a copy of the frame."""

        def __getitem__(self, i):
            return cycled[i].copy_deep()  # new memory, the frame copied in C

        def __len__(self):
            return len(frames)

    head = f"filesrc location={raw} ! rawvideoparse format=i420 width={w} height={h} framerate=30/1"
    rows = {
        "memory, cycled buffers": lambda: peer.rbv_memory(Gst, cycled, caps, "rbvremove model=human"),
        "memory, fresh buffers": lambda: peer.rbv_memory(Gst, Fresh(), caps, "rbvremove model=human"),
        "raw file ! rbvremove": lambda: peer.rbv_file(Gst, head, "rbvremove model=human ! ", FIRST, TIMED),
        "raw file ! queue ! rbvremove":
            lambda: peer.rbv_file(Gst, head, "queue ! rbvremove model=human ! ", FIRST, TIMED),
        "raw file read alone": lambda: peer.rbv_file(Gst, head, "", FIRST, TIMED),
    }
    out = {}
    for name, run in rows.items():
        s0 = switches()
        fps, _ms, cpu, _ = run()
        n = len(frames) if name.startswith("memory") else FIRST + TIMED
        out[name] = {"fps": fps, "cpu_ms": cpu, "switches": (switches() - s0) / n}
    print(json.dumps({"plugin": plugin, "rows": out}))


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        return child(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    ap = argparse.ArgumentParser(description="two plugin builds, in-memory and file rows, interleaved")
    ap.add_argument("before", type=Path)
    ap.add_argument("after", type=Path)
    ap.add_argument("--size", default="1080p", choices=["720p", "1080p"])
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    w, h = {"720p": (1280, 720), "1080p": (1920, 1080)}[a.size]
    for d in (a.before, a.after):
        if not (d / "libgstrbv.so").is_file():
            peer.fail(f"no libgstrbv.so in {d}")
    clip = peer.cache_dir() / "data" / "vtest.avi"
    raw = tempfile.NamedTemporaryFile(dir="/dev/shm" if os.path.isdir("/dev/shm") else None,
                                      prefix="rbv-ab-", suffix=".i420")
    subprocess.run(["gst-launch-1.0", "-q", "filesrc", f"location={clip}", "!", "decodebin", "!",
                    "videoconvert", "!", "videoscale", "!",
                    f"video/x-raw,format=I420,width={w},height={h},pixel-aspect-ratio=1/1", "!",
                    "identity", f"eos-after={FIRST + TIMED + 1}", "!", "filesink",
                    f"location={raw.name}"], check=True)
    print(f"{a.size}, {a.rounds} rounds, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; "
          f"before: {a.before}, after: {a.after}")
    got = {"before": [], "after": []}
    for r in range(a.rounds):
        order = [("before", a.before), ("after", a.after)]
        for label, d in (order if r % 2 == 0 else order[::-1]):
            p = subprocess.run([sys.executable, __file__, "--child", str(d), raw.name, str(w), str(h)],
                               capture_output=True, text=True, timeout=900)
            if p.returncode != 0:
                peer.fail(f"{label} ({d}): {p.stderr.strip()[-2000:]}")
            got[label].append(json.loads(p.stdout.strip().splitlines()[-1])["rows"])
        print(f"  round {r + 1}/{a.rounds} done, load average {os.getloadavg()[0]:.2f}", file=sys.stderr)
    print(f"\n| row ({a.size} I420, model=human) | before fps | CPU ms/f | switches/f | after fps | "
          f"CPU ms/f | switches/f | after/before |")
    print("|---|---|---|---|---|---|---|---|")
    for name in got["before"][0]:
        def med(label, key):
            return statistics.median(x[name][key] for x in got[label])
        ratio = statistics.median(a_[name]["fps"] / b_[name]["fps"] for a_, b_ in zip(got["after"], got["before"]))
        print(f"| {name} | {med('before', 'fps'):.0f} | {med('before', 'cpu_ms'):.2f} | "
              f"{med('before', 'switches'):.1f} | {med('after', 'fps'):.0f} | {med('after', 'cpu_ms'):.2f} | "
              f"{med('after', 'switches'):.1f} | {ratio:.2f} |")
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()

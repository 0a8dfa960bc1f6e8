#!/usr/bin/env python3
"""Peer benchmark: `rbvremove model=human` against MediaPipe's Python selfie
segmentation, on the same frames, in one run (issue 18).

Run it with `benches/peer.sh` (creates MediaPipe's venv, builds the plugin), or:
  python3 benches/peer.py --plugin-dir target/release --peer-python ~/.cache/rbv/peer-venv/bin/python
python3 here is one with PyGObject and GStreamer's introspection data (Debian's
python3-gi); MediaPipe runs in a worker process on its own venv's Python
(setup/fetch.py --peer), so neither side loads the other's libraries.

Method:
- Frames: the first 300 frames of vtest.avi (768x576, pedestrians), decoded
  once with GStreamer and scaled (videoscale, default filter) to 1280x720 and to
  1920x1080 (pixel aspect 1:1, so stretched), held in memory as packed RGB;
  for the I420 rows the same frames decoded and scaled again in I420, as a
  decoder hands them. Each side keeps its own copy in its own process's memory:
  300 distinct frames (0.8 / 1.9 GB of RGB), far beyond any cache.
- MediaPipe (mediapipe 0.10.14, legacy `solutions.selfie_segmentation`,
  segmentation only: process() on each RGB frame returns the person mask at the
  frame's full size as float32; nothing is composited). model_selection=1
  (landscape, 256x144 input: the model rbv's `human` uses on 16:9) and 0
  (square, 256x256). Steady state: one instance per model kept for the whole run,
  10 frames of warm-up before each timed pass of 300 frames; fps = 300 / wall.
- rbv in memory: `appsrc ! rbvremove ! fakesink sync=false` with the
  element's defaults (what a user gets: model=human with the detector), and
  `rbvremove model=human detector=false` (the selfie model alone, as MediaPipe
  runs it: no detector); the full job (frame in, frame with the alpha of the cut out, as negotiated and
  printed below), the frames pushed from memory with appsrc (block, at most 4
  queued; appsrc's own thread runs the element, as a decoder's would). 10 frames
  of warm-up, waited for at the sink; then the clock runs from the first of 300
  timed frames until EOS is out of the sink (as benches/fps.rs). Frames carry
  timestamps at the caps' rate (10/1, vtest.avi's): the detector's schedule
  follows the stream's timeline.
- rbv from a file, as a user's pipeline: `filesrc ! decodebin ! videoconvert !
  videoscale ! video/x-raw,width=W,height=H,pixel-aspect-ratio=1/1 ! rbvremove
  ! fakesink sync=false` (and with detector=false); timed at the sink (a pad probe) from
  frame 50 to frame 350, so start-up is not counted. The same with a `queue`
  before rbvremove, and without rbvremove (reading, decoding and scaling alone).
- rbv from a raw file (the issue's file row, no decoder): the 300 I420 frames
  written to a file (then the first 50 again), `filesrc ! rawvideoparse !
  rbvremove ! fakesink` (and with detector=false), timed at the sink from frame 50 on; and
  the same without rbvremove (reading alone).
- Interleaving: each round runs every row once at a size, the order reversed
  every other round, so machine noise reaches both sides alike. The table shows
  the median fps over the rounds (min-max), CPU ms a frame (process CPU time of
  that side: MediaPipe's worker, or this process for rbv), and rbv's fps over
  MediaPipe's (landscape) in the same rounds.
Fails (exit status 1, the reason on stderr) if the plugin or MediaPipe is missing.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

FRAMES = 300
WARMUP = 10
ROOT = Path(__file__).resolve().parent.parent


def fail(msg):
    print(f"peer.py: {msg}", file=sys.stderr)
    sys.exit(1)


def cache_dir():
    if os.environ.get("RBV_CACHE_DIR"):
        return Path(os.environ["RBV_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "rbv"


def cpu_s():
    t = os.times()
    return t.user + t.system


# ---------------------------------------------------------------- MediaPipe worker


def worker():
    """Runs in MediaPipe's venv: JSON commands on stdin, one JSON answer a line."""
    try:
        import mediapipe as mp
        import numpy as np
    except Exception as e:  # noqa: BLE001 - reported to the parent as is
        print(json.dumps({"error": f"cannot import mediapipe: {e!r}"}), flush=True)
        return
    print(json.dumps({"ready": mp.__version__, "python": sys.version.split()[0]}), flush=True)
    frames = None
    models = {}
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd["cmd"] == "load":
            frames = None
            raw = np.fromfile(cmd["path"], dtype=np.uint8)
            frames = raw.reshape(cmd["n"], cmd["h"], cmd["w"], 3)
            print(json.dumps({"loaded": frames.shape}), flush=True)
        elif cmd["cmd"] == "run":
            sel = cmd["selection"]
            if sel not in models:
                models[sel] = mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=sel)
            seg = models[sel]
            n = len(frames)
            for i in range(WARMUP):
                seg.process(frames[(n - WARMUP + i) % n])
            c0, t0 = cpu_s(), time.perf_counter()
            for i in range(n):
                mask = seg.process(frames[i]).segmentation_mask
            wall, cpu = time.perf_counter() - t0, cpu_s() - c0
            print(json.dumps({"fps": n / wall, "ms": wall * 1000 / n, "cpu_ms": cpu * 1000 / n,
                              "mask": [int(mask.shape[1]), int(mask.shape[0]), str(mask.dtype)]}), flush=True)
        elif cmd["cmd"] == "quit":
            return


class MediaPipe:
    def __init__(self, python, log):
        self.log = log
        try:
            self.proc = subprocess.Popen([str(python), __file__, "--worker"], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=log, text=True, bufsize=1)
        except OSError as e:
            fail(f"cannot start MediaPipe's Python {python}: {e} (benches/peer.sh creates it: "
                 f"setup/fetch.py --peer)")
        hello = self.answer()
        if "ready" not in hello:
            fail(f"MediaPipe is missing in {python}: {hello.get('error')} (setup/fetch.py --peer creates "
                 f"its venv)")
        self.version, self.python = hello["ready"], hello["python"]

    def answer(self):
        line = self.proc.stdout.readline()
        if not line:
            self.log.flush()
            tail = Path(self.log.name).read_text()[-2000:]
            fail(f"the MediaPipe worker stopped; its last output:\n{tail}")
        return json.loads(line)

    def ask(self, **cmd):
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        return self.answer()

    def close(self):
        try:
            self.proc.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
            self.proc.stdin.flush()
        except OSError:
            pass
        self.proc.wait(timeout=30)


# ---------------------------------------------------------------- GStreamer side


def gst_init(plugin_dir):
    lib = plugin_dir / "libgstrbv.so"
    if not lib.is_file():
        fail(f"the rbv plugin is missing: no {lib} (build it with `cargo build --release`, or point "
             f"--plugin-dir / RBV_PLUGIN_DIR at the directory holding libgstrbv.so)")
    os.environ["GST_PLUGIN_PATH"] = str(plugin_dir) + (
        os.pathsep + os.environ["GST_PLUGIN_PATH"] if os.environ.get("GST_PLUGIN_PATH") else "")
    try:
        import gi
        gi.require_version("Gst", "1.0")
        gi.require_version("GstApp", "1.0")
        from gi.repository import Gst, GstApp  # noqa: F401
    except (ImportError, ValueError) as e:
        fail(f"this Python ({sys.executable}) has no PyGObject with GStreamer's introspection data: {e} "
             f"(Debian: python3-gi gir1.2-gstreamer-1.0; run with /usr/bin/python3)")
    Gst.init(None)
    factory = Gst.ElementFactory.find("rbvremove")
    if factory is None:
        fail(f"GStreamer does not find the rbvremove element in {plugin_dir} (is {lib} loadable? "
             f"try: GST_PLUGIN_PATH={plugin_dir} gst-inspect-1.0 rbvremove)")
    plugin = factory.get_plugin()
    return Gst, (plugin.get_filename() if plugin else str(lib))


def decode(Gst, path, w, h, fmt, n):
    """The first n frames of path, scaled to w x h, as a list of bytes."""
    p = Gst.parse_launch(
        f"filesrc location={path} ! decodebin ! videoconvert ! videoscale ! "
        f"video/x-raw,format={fmt},width={w},height={h},pixel-aspect-ratio=1/1 ! "
        f"appsink name=sink sync=false max-buffers=8")
    sink = p.get_by_name("sink")
    p.set_state(Gst.State.PLAYING)
    frames, caps = [], None
    while len(frames) < n:
        sample = sink.emit("try-pull-sample", 10 * Gst.SECOND)
        if sample is None:
            break
        caps = sample.get_caps()
        buf = sample.get_buffer()
        frames.append(buf.extract_dup(0, buf.get_size()))
    p.set_state(Gst.State.NULL)
    if len(frames) < n:
        fail(f"{path} gave {len(frames)} frames, {n} wanted")
    return frames, caps


def wait_bus(Gst, p, what, until=None, timeout=600):
    bus = p.get_bus()
    deadline = time.time() + timeout
    while time.time() < deadline:
        if until is not None and until.is_set():
            return
        msg = bus.timed_pop_filtered(50 * Gst.MSECOND, Gst.MessageType.EOS | Gst.MessageType.ERROR)
        if msg is None:
            continue
        if msg.type == Gst.MessageType.ERROR:
            err, dbg = msg.parse_error()
            p.set_state(Gst.State.NULL)
            fail(f"{what}: {err.message} ({dbg})")
        return
    p.set_state(Gst.State.NULL)
    fail(f"{what}: no end after {timeout} s")


def rbv_memory(Gst, buffers, caps, chain):
    """Full job on frames pushed from memory; (fps, ms, cpu ms, output caps)."""
    p = Gst.parse_launch(f"appsrc name=src format=time block=true max-buffers=4 max-bytes=0 ! {chain} ! "
                         f"fakesink name=sink sync=false")
    src, sink = p.get_by_name("src"), p.get_by_name("sink")
    src.set_property("caps", caps)
    p.set_state(Gst.State.PLAYING)
    n = len(buffers)
    ok, num, den = caps.get_structure(0).get_fraction("framerate")
    frame_ns = Gst.SECOND * den // num if ok and num > 0 else Gst.SECOND // 30

    def push(i, k):
        b = buffers[i % n].copy()  # shallow: shares the frame's memory
        b.pts, b.duration = k * frame_ns, frame_ns
        if src.push_buffer(b) != Gst.FlowReturn.OK:
            p.set_state(Gst.State.NULL)
            fail(f"{chain}: appsrc refused a frame")

    for k in range(WARMUP):
        push(n - WARMUP + k, k)
    deadline = time.time() + 120
    while True:  # wait until the warm-up frames are through
        s = sink.get_property("last-sample")
        if s is not None and s.get_buffer().pts == (WARMUP - 1) * frame_ns:
            break
        if time.time() > deadline:
            wait_bus(Gst, p, chain, timeout=1)
            fail(f"{chain}: the warm-up frames did not come through")
        time.sleep(0.001)
    out_caps = sink.get_static_pad("sink").get_current_caps()
    c0, t0 = cpu_s(), time.perf_counter()
    for i in range(n):
        push(i, WARMUP + i)
    src.end_of_stream()
    wait_bus(Gst, p, chain)
    wall, cpu = time.perf_counter() - t0, cpu_s() - c0
    p.set_state(Gst.State.NULL)
    return n / wall, wall * 1000 / n, cpu * 1000 / n, out_caps.to_string() if out_caps else "?"


def rbv_file(Gst, head, chain, first=50, n=FRAMES):
    """`head ! chain fakesink`, timed at the sink from frame `first` to `first + n`."""
    desc = f"{head} ! {chain}fakesink name=sink sync=false"
    p = Gst.parse_launch(desc)
    marks, done = {}, threading.Event()
    count = [0]

    def probe(_pad, _info):
        count[0] += 1
        c = count[0]
        if c == first or c == first + n:
            marks[c] = (time.perf_counter(), cpu_s())
            if c == first + n:
                done.set()
        return Gst.PadProbeReturn.OK

    p.get_by_name("sink").get_static_pad("sink").add_probe(Gst.PadProbeType.BUFFER, probe)
    p.set_state(Gst.State.PLAYING)
    wait_bus(Gst, p, desc, until=done)
    p.set_state(Gst.State.NULL)
    if len(marks) != 2:
        fail(f"{desc}: only {count[0]} frames came out, {first + n} needed")
    (t0, c0), (t1, c1) = marks[first], marks[first + n]
    return n / (t1 - t0), (t1 - t0) * 1000 / n, (c1 - c0) * 1000 / n, desc


# ---------------------------------------------------------------- the run


def main():
    if sys.argv[1:] == ["--worker"]:
        return worker()
    ap = argparse.ArgumentParser(description="rbvremove model=human against MediaPipe selfie segmentation")
    ap.add_argument("--plugin-dir", type=Path,
                    default=Path(os.environ.get("RBV_PLUGIN_DIR") or ROOT / "target" / "release"))
    ap.add_argument("--peer-python", type=Path,
                    default=Path(os.environ.get("RBV_PEER_PYTHON") or cache_dir() / "peer-venv" / "bin" / "python"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--sizes", default="720p,1080p")
    ap.add_argument("--json", type=Path, default=ROOT / "target" / "bench" / "peer.json")
    a = ap.parse_args()
    sizes = {"720p": (1280, 720), "1080p": (1920, 1080)}
    clip = cache_dir() / "data" / "vtest.avi"
    if not clip.is_file():
        fail(f"{clip} missing (run setup/setup.sh)")

    Gst, plugin_file = gst_init(a.plugin_dir.resolve())
    log = tempfile.NamedTemporaryFile("w+", prefix="rbv-peer-mediapipe-", suffix=".log", delete=False)
    mp = MediaPipe(a.peer_python, log)
    cores = os.cpu_count()
    print(f"peer benchmark: {FRAMES} frames of vtest.avi, {a.rounds} rounds, {cores} CPU cores, "
          f"load average {os.getloadavg()[0]:.2f} at start")
    print(f"  rbv: {plugin_file}; MediaPipe {mp.version} (Python {mp.python}, {a.peer_python}); "
          f"{Gst.version_string()}")
    print(__doc__[__doc__.index("Method:"):__doc__.index("Fails (exit")].rstrip())

    results = {"frames": FRAMES, "rounds": a.rounds, "cores": cores, "mediapipe": mp.version,
               "plugin": plugin_file, "sizes": {}}
    for size in a.sizes.split(","):
        w, h = sizes[size]
        rgb, rgb_caps = decode(Gst, clip, w, h, "RGB", FRAMES)
        i420, i420_caps = decode(Gst, clip, w, h, "I420", FRAMES)
        with tempfile.NamedTemporaryFile(dir="/dev/shm" if os.path.isdir("/dev/shm") else None,
                                         prefix="rbv-peer-") as shm:
            for f in rgb:
                shm.write(f)
            shm.flush()
            mp.ask(cmd="load", path=shm.name, w=w, h=h, n=FRAMES)
        # The same I420 frames as a raw file (then the first 50 again, so the
        # 300 frames timed from frame 50 on are all of them), for the issue's
        # file row without a decoder: filesrc ! rawvideoparse.
        raw_file = tempfile.NamedTemporaryFile(dir="/dev/shm" if os.path.isdir("/dev/shm") else None,
                                               prefix="rbv-peer-", suffix=".i420")
        for f in i420 + i420[:50]:
            raw_file.write(f)
        raw_file.flush()
        raw = (f"filesrc location={raw_file.name} ! rawvideoparse format=i420 width={w} height={h} "
               f"framerate=10/1")
        decoded = (f"filesrc location={clip} ! decodebin ! videoconvert ! videoscale ! "
                   f"video/x-raw,width={w},height={h},pixel-aspect-ratio=1/1")
        rgb_bufs = [Gst.Buffer.new_wrapped(f) for f in rgb]
        i420_bufs = [Gst.Buffer.new_wrapped(f) for f in i420]
        del rgb, i420
        alone = "rbvremove model=human detector=false"
        rows = {
            "MediaPipe landscape (model_selection=1), RGB in memory":
                lambda: mp.ask(cmd="run", selection=1),
            "MediaPipe square (model_selection=0), RGB in memory":
                lambda: mp.ask(cmd="run", selection=0),
            "rbv defaults, I420 in memory":
                lambda: rbv_memory(Gst, i420_bufs, i420_caps, "rbvremove"),
            "rbv defaults, raw I420 file":
                lambda: rbv_file(Gst, raw, "rbvremove ! "),
            "rbv defaults, file (filesrc ! decodebin ! ... ! rbvremove)":
                lambda: rbv_file(Gst, decoded, "rbvremove ! "),
            "rbv detector=false, RGB in memory":
                lambda: rbv_memory(Gst, rgb_bufs, rgb_caps, alone),
            "rbv detector=false, I420 in memory":
                lambda: rbv_memory(Gst, i420_bufs, i420_caps, alone),
            "rbv detector=false, file (filesrc ! decodebin ! ... ! rbvremove)":
                lambda: rbv_file(Gst, decoded, f"{alone} ! "),
            "rbv detector=false, file with a queue before rbvremove":
                lambda: rbv_file(Gst, decoded, f"queue ! {alone} ! "),
            "file read, decoded and scaled alone (no rbvremove)":
                lambda: rbv_file(Gst, decoded, ""),
            "rbv detector=false, raw I420 file (filesrc ! rawvideoparse ! rbvremove)":
                lambda: rbv_file(Gst, raw, f"{alone} ! "),
            "raw I420 file read alone (no rbvremove)":
                lambda: rbv_file(Gst, raw, ""),
        }
        got = {k: [] for k in rows}
        notes = {}
        names = list(rows)
        for r in range(a.rounds):
            for name in (names if r % 2 == 0 else names[::-1]):
                out = rows[name]()
                if isinstance(out, dict):
                    fps, ms, cpu = out["fps"], out["ms"], out["cpu_ms"]
                    notes[name] = f"mask {out['mask'][0]}x{out['mask'][1]} {out['mask'][2]}"
                else:
                    fps, ms, cpu, note = out
                    notes[name] = note
                got[name].append((fps, cpu))
            print(f"  {size}: round {r + 1}/{a.rounds} done, load average {os.getloadavg()[0]:.2f}",
                  file=sys.stderr, flush=True)
        del rgb_bufs, i420_bufs
        raw_file.close()

        mp_fps = [f for f, _ in got[names[0]]]
        print(f"\n{size} ({w}x{h}), median of {a.rounds} rounds (min-max); ratio = fps / MediaPipe "
              f"landscape's, per round, median")
        print(f"  {'row':<70} {'fps':>7} {'(min-max)':>15} {'ms/frame':>9} {'CPU ms/f':>9} {'ratio':>6}")
        table = []
        for name in names:
            fps = [f for f, _ in got[name]]
            cpu = statistics.median(c for _, c in got[name])
            ratio = statistics.median(f / m for f, m in zip(fps, mp_fps))
            med = statistics.median(fps)
            print(f"  {name:<70} {med:>7.1f} {f'({min(fps):.0f}-{max(fps):.0f})':>15} {1000 / med:>9.2f} "
                  f"{cpu:>9.2f} {ratio:>6.2f}")
            table.append({"row": name, "fps": med, "fps_rounds": fps, "ms_per_frame": 1000 / med,
                          "cpu_ms_per_frame": cpu, "ratio_to_mediapipe_landscape": ratio,
                          "detail": notes.get(name, "")})
        for name in names:
            print(f"    {name}: {notes.get(name, '')}")
        results["sizes"][size] = table

    mp.close()
    print(f"\nload average at the end {os.getloadavg()[0]:.2f}")
    cols = [("MediaPipe landscape (model_selection=1), RGB in memory", "MediaPipe"),
            ("rbv defaults, I420 in memory", "rbv defaults, I420 in memory"),
            ("rbv defaults, raw I420 file", "rbv defaults, raw I420 file"),
            ("rbv detector=false, I420 in memory", "rbv detector=false, I420 in memory"),
            ("rbv detector=false, raw I420 file (filesrc ! rawvideoparse ! rbvremove)",
             "rbv detector=false, raw I420 file"),
            ("rbv defaults, file (filesrc ! decodebin ! ... ! rbvremove)",
             "rbv defaults, vtest.avi through decodebin")]
    print("\nfps (rbv/MediaPipe); MediaPipe: landscape model, segmentation only; rbv: the element's "
          "defaults (model=human with the detector), and detector=false (the selfie model alone, as "
          "MediaPipe), full job")
    print("| size | " + " | ".join(label for _, label in cols) + " |")
    print("|---|" + "---|" * len(cols))
    for size, table in results["sizes"].items():
        t = {row["row"]: row for row in table}
        cells = [f"{t[cols[0][0]]['fps']:.0f}"] + [
            f"{t[name]['fps']:.0f} ({t[name]['ratio_to_mediapipe_landscape']:.2f})" for name, _ in cols[1:]]
        print(f"| {size} | " + " | ".join(cells) + " |")
    a.json.parent.mkdir(parents=True, exist_ok=True)
    a.json.write_text(json.dumps(results, indent=1))
    print(f"wrote {a.json}")
    os.unlink(log.name)


if __name__ == "__main__":
    main()

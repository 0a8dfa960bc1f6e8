#!/usr/bin/env python3
"""Build the demo clip (1280x720, 25 fps, 8 s, VP8/WebM) from the real photos in the data dir.

No close-up video of people ships in any package, so the clip is made of camera
moves over real photos:
  0-4 s  a slow zoom and pan into zidane.jpg (two men, a 16:9 close-up);
  4-8 s  the grace_hopper.jpg portrait sliding and zooming over the street of bus.jpg.
The photos are decoded and the frames encoded by GStreamer; numpy only samples.
usage: make_demo_clip.py DATA_DIR OUT.webm
"""
import subprocess
import sys
from pathlib import Path

import numpy as np

W, H, FPS, SECONDS = 1280, 720, 25, 8


def load(path, w, h):
    """Decode an image with GStreamer into an RGB float array of the given (known) size."""
    raw = subprocess.run(
        ["gst-launch-1.0", "-q", "filesrc", f"location={path}", "!", "decodebin", "!", "videoconvert", "!",
         f"video/x-raw,format=RGB,width={w},height={h}", "!", "fdsink", "fd=1"],
        check=True, stdout=subprocess.PIPE).stdout
    stride = (w * 3 + 3) // 4 * 4  # GStreamer pads RGB rows to 4 bytes
    if len(raw) != stride * h:
        sys.exit(f"{path}: expected {w}x{h} RGB, got {len(raw)} bytes")
    rows = np.frombuffer(raw, np.uint8).reshape(h, stride)[:, : w * 3]
    return rows.reshape(h, w, 3).astype(np.float32)


def sample(img, x0, y0, scale, out_w, out_h):
    """Bilinear sample: output pixel (u, v) shows source point (x0 + u*scale, y0 + v*scale)."""
    h, w, _ = img.shape
    xs = np.clip(x0 + (np.arange(out_w) + 0.5) * scale - 0.5, 0, w - 1)
    ys = np.clip(y0 + (np.arange(out_h) + 0.5) * scale - 0.5, 0, h - 1)
    xi, yi = np.minimum(xs.astype(int), w - 2), np.minimum(ys.astype(int), h - 2)
    fx, fy = (xs - xi)[None, :, None], (ys - yi)[:, None, None]
    a = img[yi][:, xi] * (1 - fx) + img[yi][:, xi + 1] * fx
    b = img[yi + 1][:, xi] * (1 - fx) + img[yi + 1][:, xi + 1] * fx
    return a * (1 - fy) + b * fy


def smooth(t):
    return t * t * (3 - 2 * t)


def frames(data):
    zidane = load(data / "zidane.jpg", 1280, 720)
    hopper = load(data / "grace_hopper.jpg", 512, 600)
    bus = load(data / "bus.jpg", 810, 1080)
    n = FPS * SECONDS // 2
    for i in range(n):  # zoom 1.0 -> 1.35 towards the right-hand man
        t = smooth(i / (n - 1))
        scale = 1.0 / (1.0 + 0.35 * t)
        x0 = t * (1280 - W * scale) * 0.75
        y0 = t * (720 - H * scale) * 0.3
        yield sample(zidane, x0, y0, scale, W, H)
    street = sample(bus, 0, 120, 810 / W, W, H)  # the top of bus.jpg, scaled to cover the width
    for i in range(n):  # portrait slides left -> right while growing 0.8 -> 1.15
        t = smooth(i / (n - 1))
        frame = street.copy()
        s = 0.8 + 0.35 * t
        pw, ph = int(512 * s), int(600 * s)
        px = int(40 + t * (W - pw - 80))
        py = H - ph if ph <= H else 0
        ph_vis = min(ph, H)
        frame[py:py + ph_vis, px:px + pw] = sample(hopper, 0, 0, 1 / s, pw, ph_vis)
        yield frame


def main():
    data, out = Path(sys.argv[1]), sys.argv[2]
    enc = subprocess.Popen(
        ["gst-launch-1.0", "-q", "fdsrc", "fd=0", "blocksize=%d" % (W * H * 3), "!",
         "rawvideoparse", "format=rgb", f"width={W}", f"height={H}", f"framerate={FPS}/1", "!",
         "videoconvert", "!", "vp8enc", "deadline=1", "cpu-used=8", "target-bitrate=4000000", "!",
         "webmmux", "!", "filesink", f"location={out}"],
        stdin=subprocess.PIPE)
    for f in frames(data):
        enc.stdin.write(np.clip(f + 0.5, 0, 255).astype(np.uint8).tobytes())
    enc.stdin.close()
    if enc.wait() != 0:
        sys.exit("encoding the demo clip failed")


if __name__ == "__main__":
    main()

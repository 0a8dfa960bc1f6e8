#!/usr/bin/env python3
"""Reference masks for tests/reference_match.rs.

Each bundled model runs in onnxruntime (Python) on real photos with the
preprocessing and output handling its own project publishes:
  - MediaPipe selfie (human): RGB scaled to 0..1, NHWC; the output is the
    person probability.
  - rembg u2net / u2netp (original / light): PIL LANCZOS resize, x / max(x),
    ImageNet mean and std, NCHW; first output, min-max normalised.
  - imgly ISNet (pro): bilinear resize to 1024x1024, (x - 128) / 256, NCHW;
    the output clamped to 0..1.
Each photo is resized to the model's input size the way that project does,
and the resized pixels are written out as the element's input, so the test
compares everything after the resize: layout, channel order, normalisation,
the run itself and the reading of the output.

usage: reference_masks.py CACHE_DIR OUT_DIR
writes OUT_DIR/<model>-<photo>.png (RGB, the model's input size) and
OUT_DIR/<model>-<photo>.f32 (the reference mask, float32 little-endian,
row-major at the model's output size, 0..1).
"""
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

MODELS = {
    # name: (file, (width, height), method)
    "human-square": ("selfie_segmentation.onnx", (256, 256), "mediapipe"),
    "human-landscape": ("selfie_segmentation_landscape.onnx", (256, 144), "mediapipe"),
    "light": ("u2netp.onnx", (320, 320), "rembg"),
    "original": ("u2net.onnx", (320, 320), "rembg"),
    "pro": ("isnet_fp16.onnx", (1024, 1024), "imgly"),
}
PHOTOS = ["grace_hopper.jpg", "astronaut.png", "zidane.jpg"]


def main():
    cache, out = Path(sys.argv[1]), Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    for name, (file, size, method) in MODELS.items():
        session = ort.InferenceSession(str(cache / "models" / file), options,
                                       providers=["CPUExecutionProvider"])
        input_name = session.get_inputs()[0].name
        for photo in PHOTOS:
            img = Image.open(cache / "data" / photo).convert("RGB")
            if method == "rembg":
                img = img.resize(size, Image.LANCZOS)
                a = np.array(img).astype(np.float64)
                a = a / np.max(a)
                mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
                x = np.stack([(a[:, :, c] - mean[c]) / std[c] for c in range(3)])[None]
                pred = session.run(None, {input_name: x.astype(np.float32)})[0][0, 0]
                mask = (pred - pred.min()) / (pred.max() - pred.min())
            elif method == "imgly":
                img = img.resize(size, Image.BILINEAR)
                a = np.array(img).astype(np.float32)
                x = ((a - 128.0) / 256.0).transpose(2, 0, 1)[None]
                mask = np.clip(session.run(None, {input_name: x})[0][0, 0], 0.0, 1.0)
            else:
                img = img.resize(size, Image.BILINEAR)
                x = (np.array(img).astype(np.float32) / 255.0)[None]
                mask = session.run(None, {input_name: x})[0][0, :, :, 0]
            stem = f"{name}-{Path(photo).stem}"
            img.save(out / f"{stem}.png")
            mask.astype("<f4").tofile(out / f"{stem}.f32")
            print(f"{stem}: {mask.shape[1]}x{mask.shape[0]}")


if __name__ == "__main__":
    main()

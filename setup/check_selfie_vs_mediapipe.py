#!/usr/bin/env python3
"""Development check of the tflite -> ONNX conversion against MediaPipe's own runtime.

Not part of set-up or CI (it needs the heavy `mediapipe==0.10.14` package and
`opencv-python-headless`, `onnxruntime==1.31.1` in a venv of its own). Feeds
each photo at exactly the model's input size, so no resampling differs, and
compares MediaPipe's legacy SelfieSegmentation mask with our ONNX output.
usage: check_selfie_vs_mediapipe.py CACHE_DIR
"""
import sys

import cv2
import mediapipe as mp
import numpy as np
import onnxruntime as ort

cache = sys.argv[1]
for sel, name, (h, w) in ((0, "selfie_segmentation", (256, 256)), (1, "selfie_segmentation_landscape", (144, 256))):
    session = ort.InferenceSession(f"{cache}/models/{name}.onnx")
    seg = mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=sel)
    for f in ["grace_hopper.jpg", "zidane.jpg", "astronaut.png", "voc_rgb.jpg"]:
        img = cv2.cvtColor(cv2.imread(f"{cache}/data/{f}"), cv2.COLOR_BGR2RGB)
        img = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
        ref = seg.process(img).segmentation_mask
        out = session.run(None, {"input_1": img.astype(np.float32)[None] / 255.0})[0][0, :, :, 0]
        inter = ((out > 0.5) & (ref > 0.5)).sum()
        union = max(1, ((out > 0.5) | (ref > 0.5)).sum())
        print(f"{name} {f}: max abs diff {float(np.abs(out - ref).max()):.2e}, IoU {inter / union:.3f}")

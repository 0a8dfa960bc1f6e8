#!/usr/bin/env python3
"""Reference post-processing for YOLOv5s-seg (models/yolov5s-seg.onnx), numpy only.

What rbv's Rust code has to reproduce, written out step by step with the
choices of YOLOv5's own segment/predict.py (retina masks):
  1. letterbox: scale by r = min(H/h0, W/w0) to (round(w0 r), round(h0 r)),
     bilinear with half-pixel centres and no antialiasing (cv2 INTER_LINEAR
     semantics, in float, rounded to 8 bits), centred on a 114-grey canvas of
     the input size H x W (top = round(dh - 0.1), left = round(dw - 0.1) with
     dh, dw half the free space); RGB / 255, NCHW.
  2. onnxruntime: output0 [1, N, 117] (xywh, objectness, 80 class scores,
     32 mask coefficients), output1 protos [1, 32, H/4, W/4].
  3. candidates: objectness > 0.25; score = objectness x class score, best
     class only, score > 0.25; boxes xywh -> xyxy; sorted by score (stable).
  4. NMS per class (boxes offset by class x 7680, greedy, suppress IoU > 0.45,
     areas without +1), at most 300 detections.
  5. boxes back to the image: minus the (fractional) padding, / r, clipped.
  6. mask of a detection: sigmoid(coefficients . protos) at H/4 x W/4, the
     padding cut off (int() of the padding at proto scale), bilinear
     (align_corners=False) up to the image size, zeroed outside the box
     (pixel column c kept when x1 <= c < x2, rows alike), > 0.5.
     (YOLOv5's NMS also multiplies the mask coefficients by the objectness;
     that leaves the 0.5 threshold of the sigmoid unchanged and is left out.)

usage:
  yolo_reference.py [CACHE_DIR] [--fixtures OUT_DIR] [--gst-decode] [--bench]
CACHE_DIR defaults to the set-up cache (~/.cache/rbv).  Prints the detections
on bus.jpg, zidane.jpg and voc_rgb.jpg at 640x640 and 384x640 and the IoU of
the predicted masks with the VOC ground truth (voc_data.npz).  --fixtures
writes OUT_DIR/<photo>_<H>x<W>.json (letterbox, top detections with boxes and
mask statistics) for the Rust tests (rbv-core/tests/fixtures/yolo, read by
rbv-core/src/detect/tests.rs; made with --gst-decode).  --gst-decode decodes the
photos with GStreamer (gst-launch-1.0: decodebin ! videoconvert ! RGBA, as
rbv's own image loader does) instead of PIL: JPEG decoders differ by up to 44
levels on these photos, enough to move a half-visible person's box by 10 px,
so the Rust test, which decodes with GStreamer, compares with GStreamer's
pixels and the post-processing exactly.  --bench times onnxruntime (2 threads,
median of 10 runs after 2 warm-up runs) at both input sizes.

Fixture fields: image_size and input_size are [width, height]; letterbox has
the gain r, the fractional padding [dw, dh] used to map boxes back, and
`placed` = [left, top, width, height] of the resized photo in the input.
Each of the top 20 detections (by score) has its COCO class id and name, the
score, `box_input` (x1, y1, x2, y2 in input pixels), `box` (in image pixels)
and its mask at the image size (> 0.5): area in pixels, bounding box
[x0, y0, x1, y1) and centroid [x, y].  `mask_detail` is about detection 0:
the mean logit / mean and max probability of sigmoid(coefficients . protos)
over the whole proto map, how many proto cells exceed 0.5, and at the image
size the mean probability inside the box and the area above 0.5.
"""
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

PHOTOS = ["bus.jpg", "zidane.jpg", "voc_rgb.jpg"]
SIZES = [(640, 640), (384, 640)]  # (H, W)
CONF, IOU, MAX_DET, MAX_WH = 0.25, 0.45, 300, 7680.0
PAD_VALUE = 114
MODEL_SHA256 = "4facc2e46befbc31d6e50749790fbd7d1581f3580f67c7e0cb38e3492970773e"  # as pinned in fetch.py
TOP_N = 20  # detections kept in a fixture
# VOC label ids in voc_data.npz -> COCO class ids of the model
VOC_TO_COCO = {"person": (15, 0), "chair": (9, 56), "dining table": (11, 60), "bottle": (5, 39)}


def cache_dir():
    if os.environ.get("RBV_CACHE_DIR"):
        return Path(os.environ["RBV_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "rbv"


# -- pre-processing ---------------------------------------------------------------

def resize_axis(n_out, n_in):
    """Source indices and weights of a half-pixel bilinear resize along one axis."""
    src = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
    src = np.maximum(src, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    return i0, i1, src - i0


def resize_bilinear(a, out_h, out_w):
    """a [h, w, ...] -> float64 [out_h, out_w, ...] (cv2 INTER_LINEAR / torch align_corners=False)."""
    a = np.asarray(a, dtype=np.float64)
    y0, y1, fy = resize_axis(out_h, a.shape[0])
    x0, x1, fx = resize_axis(out_w, a.shape[1])
    fy = fy.reshape((-1, 1) + (1,) * (a.ndim - 2))
    fx = fx.reshape((1, -1) + (1,) * (a.ndim - 2))
    top = a[y0][:, x0] * (1 - fx) + a[y0][:, x1] * fx
    bottom = a[y1][:, x0] * (1 - fx) + a[y1][:, x1] * fx
    return top * (1 - fy) + bottom * fy


def letterbox(img, size):
    """img uint8 [h0, w0, 3] -> (uint8 [H, W, 3], gain, (dw, dh), (left, top, new_w, new_h))."""
    h0, w0 = img.shape[:2]
    H, W = size
    r = min(H / h0, W / w0)
    nw, nh = int(round(w0 * r)), int(round(h0 * r))
    dw, dh = (W - nw) / 2, (H - nh) / 2
    if (nw, nh) != (w0, h0):
        img = np.clip(np.rint(resize_bilinear(img, nh, nw)), 0, 255).astype(np.uint8)
    top, left = int(round(dh - 0.1)), int(round(dw - 0.1))
    out = np.full((H, W, 3), PAD_VALUE, dtype=np.uint8)
    out[top:top + nh, left:left + nw] = img
    return out, r, (dw, dh), (left, top, nw, nh)


# -- post-processing --------------------------------------------------------------

def xywh2xyxy(b):
    out = np.empty_like(b)
    out[:, 0] = b[:, 0] - b[:, 2] / 2
    out[:, 1] = b[:, 1] - b[:, 3] / 2
    out[:, 2] = b[:, 0] + b[:, 2] / 2
    out[:, 3] = b[:, 1] + b[:, 3] / 2
    return out


def nms(boxes, scores, iou_thres):
    """Greedy NMS over boxes already sorted by descending score; indices kept."""
    x1, y1, x2, y2 = boxes.T
    areas = (x2 - x1) * (y2 - y1)
    suppressed = np.zeros(len(boxes), dtype=bool)
    keep = []
    for i in range(len(boxes)):
        if suppressed[i]:
            continue
        keep.append(i)
        w = np.clip(np.minimum(x2[i], x2[i + 1:]) - np.maximum(x1[i], x1[i + 1:]), 0, None)
        h = np.clip(np.minimum(y2[i], y2[i + 1:]) - np.maximum(y1[i], y1[i + 1:]), 0, None)
        inter = w * h
        iou = inter / (areas[i] + areas[i + 1:] - inter)
        suppressed[i + 1:] |= iou > iou_thres
    return np.array(keep, dtype=np.int64)


def detect(pred, nc=80):
    """pred [N, 5 + nc + nm] -> boxes xyxy (input px), scores, classes, mask coefficients."""
    pred = pred.astype(np.float64)
    x = pred[pred[:, 4] > CONF]
    cls_scores = x[:, 5:5 + nc] * x[:, 4:5]
    j = cls_scores.argmax(1)
    score = cls_scores[np.arange(len(x)), j]
    ok = score > CONF
    x, j, score = x[ok], j[ok], score[ok]
    order = np.argsort(-score, kind="stable")
    x, j, score = x[order], j[order], score[order]
    boxes = xywh2xyxy(x[:, :4])
    keep = nms(boxes + j[:, None] * MAX_WH, score, IOU)[:MAX_DET]
    return boxes[keep], score[keep], j[keep], x[keep, 5 + nc:]


def scale_boxes(boxes, gain, pad, shape0):
    b = boxes.copy()
    b[:, [0, 2]] -= pad[0]
    b[:, [1, 3]] -= pad[1]
    b /= gain
    b[:, [0, 2]] = b[:, [0, 2]].clip(0, shape0[1])
    b[:, [1, 3]] = b[:, [1, 3]].clip(0, shape0[0])
    return b


def mask_probs(protos, coefs):
    """sigmoid(coefs . protos): [n, H/4, W/4]."""
    c, mh, mw = protos.shape
    logits = coefs @ protos.reshape(c, -1).astype(np.float64)
    return (1 / (1 + np.exp(-logits))).reshape(-1, mh, mw)


def masks_native(protos, coefs, boxes0, shape0):
    """Masks at the image size (retina masks): [n, h0, w0] probabilities cropped to the boxes."""
    probs = mask_probs(protos, coefs)
    _, mh, mw = protos.shape
    h0, w0 = shape0
    gain = min(mh / h0, mw / w0)
    pw, ph = (mw - w0 * gain) / 2, (mh - h0 * gain) / 2
    top, left, bottom, right = int(ph), int(pw), int(mh - ph), int(mw - pw)
    probs = probs[:, top:bottom, left:right]
    out = np.empty((len(probs), h0, w0))
    cols, rows = np.arange(w0)[None, :], np.arange(h0)[:, None]
    for k, (p, (x1, y1, x2, y2)) in enumerate(zip(probs, boxes0)):
        inside = (cols >= x1) & (cols < x2) & (rows >= y1) & (rows < y2)
        out[k] = resize_bilinear(p, h0, w0) * inside
    return out


# -- running ----------------------------------------------------------------------

def session(model, threads=2):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])


GST_DECODE = False


def load_rgb(path):
    if not GST_DECODE:
        return np.array(Image.open(path).convert("RGB"))
    import subprocess
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        png = os.path.join(tmp, "decoded.png")
        subprocess.run(["gst-launch-1.0", "-q", "filesrc", f"location={path}", "!", "decodebin", "!",
                        "videoconvert", "!", "video/x-raw,format=RGBA", "!", "pngenc", "!",
                        "filesink", f"location={png}"], check=True)
        return np.array(Image.open(png).convert("RGB"))


def infer(sess, img, size):
    lb, gain, pad, placed = letterbox(img, size)
    x = (lb.astype(np.float32) / 255.0).transpose(2, 0, 1)[None]
    pred, protos = sess.run(["output0", "output1"], {"images": np.ascontiguousarray(x)})
    boxes, scores, classes, coefs = detect(pred[0])
    boxes0 = scale_boxes(boxes, gain, pad, img.shape[:2])
    masks = masks_native(protos[0], coefs, boxes0, img.shape[:2])
    return dict(gain=gain, pad=pad, placed=placed, boxes=boxes, boxes0=boxes0, scores=scores,
                classes=classes, coefs=coefs, protos=protos[0], masks=masks)


def rounded(v, nd=3):
    return [round(float(a), nd) for a in v]


def fixture(name, img, size, r, names):
    left, top, nw, nh = r["placed"]
    dets = []
    for k in range(min(TOP_N, len(r["scores"]))):
        m = r["masks"][k] > 0.5
        ys, xs = np.nonzero(m)
        det = {
            "class": int(r["classes"][k]),
            "name": names[int(r["classes"][k])],
            "score": round(float(r["scores"][k]), 5),
            "box_input": rounded(r["boxes"][k]),
            "box": rounded(r["boxes0"][k]),
            "mask_area": int(m.sum()),
        }
        if len(xs):
            det["mask_bbox"] = [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1]
            det["mask_centroid"] = [round(float(xs.mean()), 2), round(float(ys.mean()), 2)]
        dets.append(det)
    # One detection's mask in more detail: the top one.
    probs = mask_probs(r["protos"], r["coefs"][:1])[0] if len(r["scores"]) else None
    detail = None
    if probs is not None:
        m0 = r["masks"][0]
        detail = {
            "detection": 0,
            "proto_logit_mean": round(float(np.log(probs / (1 - probs)).mean()), 4),
            "proto_prob_mean": round(float(probs.mean()), 5),
            "proto_prob_max": round(float(probs.max()), 5),
            "proto_area_gt_half": int((probs > 0.5).sum()),
            "image_prob_mean_in_box": round(float(m0[m0 > 0].mean()) if (m0 > 0).any() else 0.0, 5),
            "image_area_gt_half": int((m0 > 0.5).sum()),
        }
    return {
        "model": "yolov5s-seg.onnx",
        "model_sha256": MODEL_SHA256,
        "image": name,
        "image_size": [img.shape[1], img.shape[0]],
        "input_size": [size[1], size[0]],
        "letterbox": {"gain": round(r["gain"], 6), "pad": rounded(r["pad"], 2),
                      "placed": [left, top, nw, nh], "pad_value": PAD_VALUE},
        "conf_threshold": CONF,
        "iou_threshold": IOU,
        "detections_total": int(len(r["scores"])),
        "detections": dets,
        "mask_detail": detail,
    }


def dump_fixture(fx):
    """JSON with one line per key and per detection, so diffs stay readable."""
    lines = []
    for k, v in fx.items():
        if k == "detections":
            dets = ",\n".join("  " + json.dumps(d) for d in v)
            lines.append(f' "{k}": [\n{dets}\n ]')
        else:
            lines.append(f" {json.dumps(k)}: {json.dumps(v)}")
    return "{\n" + ",\n".join(lines) + "\n}\n"


def iou(a, b):
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else float("nan")


def voc_report(r, cache):
    data = np.load(cache / "data" / "voc_data.npz")
    gt_masks, labels = data["masks"], data["labels"]
    out = {}
    for cname, (voc, coco) in VOC_TO_COCO.items():
        gt = gt_masks[labels == voc].any(axis=0)
        sel = r["classes"] == coco
        pred = (r["masks"][sel] > 0.5).any(axis=0) if sel.any() else np.zeros_like(gt)
        out[cname] = (iou(pred, gt), int(sel.sum()), int((labels == voc).sum()))
    return out


def bench(sess, sizes, runs=10):
    res = {}
    for size in sizes:
        x = np.random.default_rng(0).random((1, 3) + size, dtype=np.float32)
        for _ in range(2):
            sess.run(None, {"images": x})
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            sess.run(None, {"images": x})
            times.append((time.perf_counter() - t) * 1000)
        res[size] = float(np.median(times))
    return res


def main():
    args = sys.argv[1:]
    out_dir = None
    global GST_DECODE
    do_bench = "--bench" in args
    if do_bench:
        args.remove("--bench")
    if "--gst-decode" in args:
        args.remove("--gst-decode")
        GST_DECODE = True
    if "--fixtures" in args:
        k = args.index("--fixtures")
        out_dir = Path(args[k + 1])
        del args[k:k + 2]
    cache = Path(args[0]) if args else cache_dir()
    sess = session(cache / "models" / "yolov5s-seg.onnx")
    names = json.loads(sess.get_modelmeta().custom_metadata_map["names"])

    for photo in PHOTOS:
        img = load_rgb(cache / "data" / photo)
        for size in SIZES:
            r = infer(sess, img, size)
            print(f"{photo} {img.shape[1]}x{img.shape[0]} at {size[1]}x{size[0]} (WxH): "
                  f"{len(r['scores'])} detections")
            for k in range(len(r["scores"])):
                b = r["boxes0"][k]
                print(f"  {names[r['classes'][k]]:<14} {r['scores'][k]:.3f}  "
                      f"[{b[0]:7.1f} {b[1]:7.1f} {b[2]:7.1f} {b[3]:7.1f}]  mask {int((r['masks'][k] > 0.5).sum())} px")
            if out_dir is not None:
                out_dir.mkdir(parents=True, exist_ok=True)
                f = out_dir / f"{Path(photo).stem}_{size[0]}x{size[1]}.json"
                f.write_text(dump_fixture(fixture(photo, img, size, r, names)))
            if photo == "voc_rgb.jpg":
                for cname, (v, n_pred, n_gt) in voc_report(r, cache).items():
                    print(f"  VOC IoU {cname:<13} {v:.3f}  ({n_pred} predicted, {n_gt} ground-truth instances)")

    if do_bench:
        for size, ms in bench(sess, SIZES).items():
            print(f"onnxruntime, 2 threads, {size[1]}x{size[0]} (WxH): median {ms:.1f} ms over 10 runs")


if __name__ == "__main__":
    main()

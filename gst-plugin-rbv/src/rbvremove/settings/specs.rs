// SPDX-License-Identifier: MPL-2.0
//! `rbvremove`'s property specs: names, ranges, defaults, blurbs and
//! whether each may change while playing.

use gst::glib;
use gst::prelude::*;
use rbv_api::api::DEFAULT_API_URL;
use rbv_core::compositor::parse as composition;

use super::detect;
use super::*;
use crate::rbvremove::{AnchorPosition, BeforeFirstMask, ExecutionProvider, OutputFormatProp};

/// The element's properties.
pub fn properties() -> Vec<glib::ParamSpec> {
    vec![
        glib::ParamSpecEnum::builder_with_default("model", DEFAULT_MODEL)
            .nick("Model")
            .blurb(
                "Segmentation model, by the hosted service's names: human (MediaPipe \
                 selfie, people, real time), light (u2netp), original (u2net) or pro \
                 (ISNet; salient objects, seconds per frame on CPU)",
            )
            .mutable_ready()
            .build(),
        glib::ParamSpecString::builder("model-path")
            .nick("Model path")
            .blurb(
                "ONNX file to run instead of the bundled file of 'model'. Input size \
                 and layout are read from the file; pre- and post-processing follow \
                 'model', or the JSON beside the file (x.onnx -> x.json: normalize \
                 {scale 255|\"max\", mean, std}, output probability|logits|min-max, \
                 input_size [w,h]). Unset: the bundled model from RBV_MODEL_DIR or the \
                 rbv cache",
            )
            .mutable_ready()
            .build(),
        glib::ParamSpecEnum::builder_with_default("human-variant", DEFAULT_HUMAN_VARIANT)
            .nick("Human variant")
            .blurb("Which MediaPipe selfie model model=human runs")
            .mutable_ready()
            .build(),
        glib::ParamSpecString::builder("ort-library")
            .nick("ONNX Runtime library")
            .blurb(
                "Path of libonnxruntime.so to load (once per process). Unset: \
                 RBV_ORT_LIBRARY, ORT_DYLIB_PATH, then the rbv cache",
            )
            .mutable_ready()
            .build(),
        glib::ParamSpecUInt::builder("threads")
            .nick("Threads")
            .blurb(
                "Inference threads (ONNX Runtime intra-op). 0 = automatic: 1 for \
                 model=human (a 1 ms model gains nothing from more), ONNX Runtime's \
                 choice (all cores) for heavier models",
            )
            .minimum(0)
            .maximum(64)
            .default_value(DEFAULT_THREADS)
            .mutable_ready()
            .build(),
        glib::ParamSpecEnum::builder_with_default("background", DEFAULT_BACKGROUND)
            .nick("Background")
            .blurb(
                "What replaces the background: transparent (alpha out), color, image, \
                 blur (the frame's own background blurred), or mask (the alpha alone, \
                 GRAY8). Changeable while playing",
            )
            .mutable_playing()
            .build(),
        glib::ParamSpecString::builder("background-color")
            .nick("Background colour")
            .blurb(
                "Colour for background=color: #RRGGBB, #RRGGBBAA, a name (green = \
                 #00FF00, white, black, blue, ...), or the service's 0-1 floats \
                 [0.035,0.635,0.274]",
            )
            .default_value(Some(DEFAULT_COLOR))
            .mutable_playing()
            .build(),
        glib::ParamSpecString::builder("background-image")
            .nick("Background image")
            .blurb(
                "Image file for background=image (any format GStreamer decodes), \
                 scaled to cover the canvas with its aspect kept",
            )
            .mutable_playing()
            .build(),
        glib::ParamSpecUInt::builder("blur-radius")
            .nick("Blur radius")
            .blurb(
                "Blur strength for background=blur: about the standard deviation, in \
                 output pixels, of a Gaussian blur (as CSS blur() means it)",
            )
            .minimum(MIN_BLUR_RADIUS)
            .maximum(MAX_BLUR_RADIUS)
            .default_value(DEFAULT_BLUR_RADIUS)
            .mutable_playing()
            .build(),
        glib::ParamSpecUInt::builder("canvas-width")
            .nick("Canvas width")
            .blurb("Output width; 0 = the input's width. Renegotiates when changed")
            .maximum(composition::MAX_CANVAS)
            .mutable_playing()
            .build(),
        glib::ParamSpecUInt::builder("canvas-height")
            .nick("Canvas height")
            .blurb("Output height; 0 = the input's height. Renegotiates when changed")
            .maximum(composition::MAX_CANVAS)
            .mutable_playing()
            .build(),
        glib::ParamSpecEnum::builder_with_default("anchor", AnchorPosition::Center)
            .nick("Anchor")
            .blurb("Where the foreground sits on the canvas")
            .mutable_playing()
            .build(),
        glib::ParamSpecDouble::builder("scale")
            .nick("Scale")
            .blurb("Size of the foreground relative to the input frame")
            .minimum(composition::MIN_SCALE)
            .maximum(composition::MAX_SCALE)
            .default_value(1.0)
            .mutable_playing()
            .build(),
        glib::ParamSpecInt::builder("offset-x")
            .nick("Offset x")
            .blurb("Pixels to the right of the anchored position (negative: left)")
            .minimum(-composition::MAX_OFFSET)
            .maximum(composition::MAX_OFFSET)
            .mutable_playing()
            .build(),
        glib::ParamSpecInt::builder("offset-y")
            .nick("Offset y")
            .blurb("Pixels below the anchored position (negative: above)")
            .minimum(-composition::MAX_OFFSET)
            .maximum(composition::MAX_OFFSET)
            .mutable_playing()
            .build(),
        glib::ParamSpecString::builder("text-prompt")
            .nick("Text prompt")
            .blurb(
                "What to keep, comma-separated (\"person, dog\", \"clothing \
                 accessories\"; \"and\", \"&\", \"+\" and \"with\" split terms too), as the hosted service's pro model takes it. Locally the \
                 detector maps the terms to COCO's 80 classes (synonyms and groups \
                 understood; people when unset; \"object\" or \"product\": whatever \
                 stands out); terms that name no class are named in a warning. With \
                 detector=false human keeps people and light/original/pro the salient \
                 subject",
            )
            .mutable_playing()
            .build(),
        detect::detector_property(),
        detect::confidence_property(),
        detect::interval_property(),
        detect::size_property(),
        glib::ParamSpecDouble::builder("smoothing")
            .nick("Temporal smoothing")
            .blurb(
                "Steadies the mask over time (0 = off): where the picture is still, \
                 a rising mask value keeps this share of its previous value each frame, \
                 while a falling one and a rise to a sure value (0.95 or more) are taken \
                 at once; where the picture moved, the new value is taken at once (no \
                 trailing). Reset on flush and discontinuities",
            )
            .minimum(0.0)
            .maximum(0.95)
            .default_value(DEFAULT_SMOOTHING)
            .mutable_playing()
            .build(),
        glib::ParamSpecUInt::builder("smoothing-threshold")
            .nick("Smoothing motion threshold")
            .blurb(
                "Change (0-255, per channel, at the model's resolution) above which a \
                 pixel counts as moving and smoothing takes the new mask value there: \
                 lower follows motion more closely, higher tolerates camera noise",
            )
            .maximum(255)
            .default_value(DEFAULT_SMOOTHING_THRESHOLD)
            .mutable_playing()
            .build(),
        glib::ParamSpecBoolean::builder("async-correction")
            .nick("Correct stale heavy masks")
            .blurb(
                "mode=async with light, original or pro: where the picture moved since the \
                 heavy model's newest mask, take the human model's mask of this frame (run on \
                 every frame, about 2 ms); before the first heavy mask, use it alone",
            )
            .default_value(true)
            .mutable_playing()
            .build(),
        glib::ParamSpecDouble::builder("mask-threshold")
            .nick("Mask threshold")
            .blurb(
                "Hard cut-off of the alpha (0 = off, soft alpha kept): where it is at or \
                 over this share (0-1) the pixel is opaque, under it clear. Applied \
                 before mask-grow and mask-feather",
            )
            .minimum(0.0)
            .maximum(1.0)
            .default_value(0.0)
            .mutable_playing()
            .build(),
        glib::ParamSpecInt::builder("mask-grow")
            .nick("Mask grow")
            .blurb(
                "Output pixels the kept part grows by (dilate); negative shrinks it \
                 (erode), e.g. -2 trims a halo of the old background. 0 = off",
            )
            .minimum(-MAX_MASK_RADIUS)
            .maximum(MAX_MASK_RADIUS)
            .default_value(0)
            .mutable_playing()
            .build(),
        glib::ParamSpecUInt::builder("mask-feather")
            .nick("Mask feather")
            .blurb(
                "Output pixels over which the edge is softened (a blur of the alpha \
                 only, after threshold and grow). 0 = off",
            )
            .maximum(MAX_MASK_RADIUS as u32)
            .default_value(0)
            .mutable_playing()
            .build(),
        glib::ParamSpecEnum::builder_with_default("before-first-mask", BeforeFirstMask::Auto)
            .nick("Before the first mask")
            .blurb(
                "mode=async: what leaves before the model's first mask (a heavy model's \
                 first takes seconds): auto (with async-correction the human model's mask \
                 of each frame, else transparent), transparent, input (the frame \
                 unchanged), or wait (the first frame waits for its own mask, then frames \
                 leave at once). rbv-stats has no mask-age until the first mask",
            )
            .mutable_playing()
            .build(),
        glib::ParamSpecBoolean::builder("refine")
            .nick("Refine edges")
            .blurb(
                "Refine the mask's edges at full resolution with a guided filter that \
                 follows the picture's own edges (soft alpha kept)",
            )
            .default_value(DEFAULT_REFINE)
            .mutable_playing()
            .build(),
        glib::ParamSpecUInt::builder("refine-radius")
            .nick("Refinement radius")
            .blurb(
                "Guided-filter window radius, in pixels of the working size (about 270 \
                 rows): larger follows edges further from the model's",
            )
            .minimum(1)
            .maximum(32)
            .default_value(DEFAULT_REFINE_RADIUS)
            .mutable_playing()
            .build(),
        glib::ParamSpecDouble::builder("refine-eps")
            .nick("Refinement regularisation")
            .blurb(
                "Guided-filter regularisation: smaller follows the picture's edges \
                 more tightly, larger stays closer to the model's mask",
            )
            .minimum(1e-6)
            .maximum(1.0)
            .default_value(DEFAULT_REFINE_EPS)
            .mutable_playing()
            .build(),
        glib::ParamSpecUInt::builder("stats-interval")
            .nick("Statistics interval")
            .blurb(
                "Milliseconds (wall clock) between rbv-stats element messages on the \
                 bus; 0 = none. Fields: frames (guint64, processed so far), \
                 window-frames (guint), fps (gdouble), inference-p50-ms, \
                 inference-p95-ms (gdouble, absent when no inference finished in the \
                 window), process-p50-ms, process-p95-ms (gdouble, over the \
                 window), mask-age (guint, frames between the mask and the frame it is \
                 applied to; absent before the first mask), detections (guint64, \
                 detections started so far; absent with detector=false), model \
                 (string), execution-provider (string)",
            )
            .maximum(3_600_000)
            .default_value(DEFAULT_STATS_INTERVAL)
            .mutable_playing()
            .build(),
        glib::ParamSpecString::builder("composition")
            .nick("Composition")
            .blurb(
                "The service's composition object, e.g. {\"canvas\":{\"width\":1920,\
                 \"height\":1080},\"foreground\":{\"anchor\":\"bottom-right\",\"scale\":0.4,\
                 \"offset\":{\"x\":0,\"y\":0}}}; sets canvas-*, anchor, scale and offset-* \
                 at once (left-out parts take their defaults)",
            )
            .mutable_playing()
            .build(),
        glib::ParamSpecEnum::builder_with_default("execution-provider", ExecutionProvider::Auto)
            .nick("Execution provider")
            .blurb(
                "Where ONNX Runtime runs the model: auto (CUDA where the loaded library \
                 has it and a GPU answers, else CPU), cpu, cuda, tensorrt. A provider \
                 that cannot be had falls back to the CPU with a warning, unless \
                 execution-provider-strict. Needs READY",
            )
            .mutable_ready()
            .build(),
        glib::ParamSpecBoolean::builder("execution-provider-strict")
            .nick("Strict execution provider")
            .blurb("Fail the start instead of falling back to the CPU")
            .default_value(false)
            .mutable_ready()
            .build(),
        glib::ParamSpecString::builder("active-execution-provider")
            .nick("Active execution provider")
            .blurb("The execution provider the model runs on (cpu, cuda, tensorrt); unset before the start")
            .read_only()
            .build(),
        glib::ParamSpecEnum::builder_with_default("mode", DEFAULT_MODE)
            .nick("Mode")
            .blurb(
                "sync: every frame waits for its own mask (files; real time with human). \
                 async: inference on its own thread, frames leave at once with the \
                 newest mask, corrected where the picture moved (async-correction; live \
                 sources, heavy models); the \
                 mask's age in frames is in rbv-stats. Needs READY",
            )
            .mutable_ready()
            .build(),
        glib::ParamSpecEnum::builder_with_default("backend", DEFAULT_BACKEND)
            .nick("Backend")
            .blurb(
                "local: every frame through a model here; remote: the whole input \
                 file (found upstream, or video-url) becomes a job of the /v1 service, \
                 whose output is decoded and pushed in place of the input. Remote \
                 needs a file or http(s) source, not a live one",
            )
            .mutable_ready()
            .build(),
        glib::ParamSpecString::builder("api-url")
            .nick("API URL")
            .blurb("backend=remote: the /v1 service's base URL")
            .default_value(Some(DEFAULT_API_URL))
            .mutable_ready()
            .build(),
        glib::ParamSpecString::builder("api-key")
            .nick("API key")
            .blurb(
                "backend=remote: the service's API key (else RBV_API_KEY). Never \
                 logged; reads back as a fingerprint only",
            )
            .mutable_ready()
            .build(),
        glib::ParamSpecString::builder("video-url")
            .nick("Video URL")
            .blurb(
                "backend=remote: an http(s) URL the service fetches the input from, \
                 instead of the file found upstream (which is uploaded)",
            )
            .mutable_ready()
            .build(),
        glib::ParamSpecEnum::builder_with_default(
            "output-format",
            OutputFormatProp::from(DEFAULT_OUTPUT_FORMAT),
        )
        .nick("Output format")
        .blurb(
            "backend=remote: the job's output, webm, mov, mp4 (no alpha: needs a \
             colour or image background), gif, webp or png_sequence",
        )
        .mutable_ready()
        .build(),
        glib::ParamSpecUInt::builder("poll-interval")
            .nick("Poll interval")
            .blurb(
                "backend=remote: ms before the first status poll; later polls back \
                 off to five times it, with jitter",
            )
            .minimum(10)
            .maximum(60_000)
            .default_value(DEFAULT_POLL_INTERVAL)
            .mutable_ready()
            .build(),
        glib::ParamSpecUInt::builder("timeout")
            .nick("Timeout")
            .blurb("backend=remote: seconds the whole job may take, upload to download")
            .minimum(1)
            .maximum(24 * 3600)
            .default_value(DEFAULT_TIMEOUT)
            .mutable_ready()
            .build(),
    ]
}

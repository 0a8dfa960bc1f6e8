// SPDX-License-Identifier: MPL-2.0
//! rbv's cores, usable on their own: no element, no network.
//!
//! - [`model`]: one ONNX segmentation model on ONNX Runtime, RGB in, a soft
//!   mask out (no GStreamer);
//! - [`sample`]: the model's input sampled straight from a video frame;
//! - [`convert`]: the frame to 4-byte RGBA/BGRA for the foreground (SIMD);
//! - [`detect`]: the class-aware detector (YOLOv5s-seg, COCO's 80 classes)
//!   and the gate that keeps the matting model's alpha in its regions;
//! - [`matte`]: the mask made a full-resolution alpha channel, refined and
//!   smoothed over time;
//! - [`compositor`]: the foreground placed on a canvas over a colour, an
//!   image or its own blurred background, with the hosted service's
//!   composition and colour syntax;
//! - [`prompt`]: what a text prompt asks to keep;
//! - [`image`]: background images decoded with GStreamer;
//! - [`paths`]: where the runtime, models and test data are.

pub mod compositor;
pub mod convert;
pub mod detect;
pub mod image;
pub mod matte;
pub mod model;
pub mod paths;
pub mod prompt;
pub mod sample;

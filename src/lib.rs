// SPDX-License-Identifier: MPL-2.0
#![allow(clippy::non_send_fields_in_send_ty, unused_doc_comments)]

/**
 * plugin-rbv:
 *
 * Background removal for video: `rbvremove` keeps the people (or the salient
 * object) in each frame and makes the rest transparent, with ONNX Runtime and
 * real segmentation models.
 *
 * The cores can be used on their own: `runtime` and `model` have no GStreamer
 * in them, `matte` uses only GStreamer's video scaler; the element glues them
 * to GStreamer.
 */
use gst::glib;

pub mod composition;
pub mod compositor;
pub mod image;
pub mod matte;
pub mod model;
pub mod prompt;
pub mod rbvremove;
pub mod remote;
pub mod runtime;
pub mod sample;
#[cfg(feature = "server")]
pub mod server;

fn plugin_init(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    rbvremove::register(plugin)
}

gst::plugin_define!(
    rbv,
    env!("CARGO_PKG_DESCRIPTION"),
    plugin_init,
    concat!(env!("CARGO_PKG_VERSION"), "-", env!("COMMIT_ID")),
    "MPL",
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_REPOSITORY"),
    env!("BUILD_REL_DATE")
);

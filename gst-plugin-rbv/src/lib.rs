// SPDX-License-Identifier: MPL-2.0
#![allow(clippy::non_send_fields_in_send_ty, unused_doc_comments)]

/**
 * plugin-rbv:
 *
 * Background removal for video: `rbvremove` keeps the people (or the salient
 * object) in each frame and makes the rest transparent, with ONNX Runtime and
 * real segmentation models.
 *
 * The cores live in the `rbv-core` crate (models, matte, compositing) and
 * the `/v1` client in `rbv-api`; this crate only glues them to GStreamer.
 */
use gst::glib;

pub mod rbvremove;

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

// SPDX-License-Identifier: MPL-2.0
/**
 * SECTION:element-rbvremove
 *
 * `rbvremove` removes the background of video. Each frame runs through a
 * segmentation model (ONNX Runtime) and leaves as RGBA (or BGRA/ARGB/ABGR)
 * with a soft alpha channel: opaque where the person is, transparent where
 * the background was.
 *
 * ## Example launch line
 * ```bash
 * gst-launch-1.0 filesrc location=in.webm ! decodebin ! videoconvert ! \
 *     rbvremove model=human ! videoconvert ! avenc_ffv1 ! matroskamux ! \
 *     filesink location=out.mkv
 * ```
 *
 * The person can also be laid over a colour, an image or the frame's own
 * blurred background, and placed on a canvas of another size with the hosted
 * service's composition semantics (all changeable while playing):
 * ```bash
 * gst-launch-1.0 v4l2src ! videoconvert ! rbvremove background=blur blur-radius=20 ! \
 *     videoconvert ! autovideosink
 * gst-launch-1.0 filesrc location=in.webm ! decodebin ! videoconvert ! \
 *     rbvremove canvas-width=1920 canvas-height=1080 anchor=bottom-right scale=0.4 \
 *     background=color background-color=#202830 ! videoconvert ! autovideosink
 * ```
 * `background=mask` outputs the matte alone as GRAY8.
 *
 * The ONNX Runtime library and the models are found in the rbv cache
 * (`setup/setup.sh` puts them there), or where `ort-library` and
 * `model-path` (or `RBV_ORT_LIBRARY`, `RBV_MODEL_DIR`, `RBV_CACHE_DIR`) say.
 */
use gst::glib;
use gst::prelude::*;

mod imp;
mod remote;
mod worker;

pub use imp::{
    AnchorPosition, Backend, BackgroundMode, ExecutionProvider, HumanVariant, Mode, Model,
};
pub use remote::{ERROR_DETAILS, JOB_MESSAGE};

glib::wrapper! {
    pub struct RbvRemove(ObjectSubclass<imp::RbvRemove>) @extends gst_video::VideoFilter, gst_base::BaseTransform, gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    Backend::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    Mode::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    ExecutionProvider::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    Model::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    HumanVariant::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    BackgroundMode::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    AnchorPosition::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    gst::Element::register(
        Some(plugin),
        "rbvremove",
        gst::Rank::NONE,
        RbvRemove::static_type(),
    )
}

// SPDX-License-Identifier: MPL-2.0
//! The frame path's per-caps buffers and converters: the model's input
//! (sampled straight from the incoming format where that is cheaper) and
//! the foreground's 4-byte pixels.

use gst_video::prelude::*;
use rbv_core::convert::ToRgba;
use rbv_core::matte::AlphaMode;
use rbv_core::sample::Sampler;

use crate::rbvremove::caps;

/// Per-caps conversion state.
pub struct Frames {
    /// Input format to packed RGB at the model's input size, in one pass.
    pub to_model: gst_video::VideoConverter,
    /// For large frames: sampled straight from the input's components to
    /// twice the model size, then the converter's last halving (4.3 -> 1.5
    /// ms at 1080p, benches/profile.rs; same cut quality, measured). Used
    /// instead of `to_model` where it applies.
    pub staged: Option<Staged>,
    pub model_info: gst_video::VideoInfo,
    pub model_buffer: gst::Buffer,
    /// Input format to 4-byte pixels at the input size: the foreground.
    /// `fast` where it covers the formats (SIMD, rbv_core::convert), else
    /// GStreamer's converter.
    pub to_fg: gst_video::VideoConverter,
    pub fast: Option<ToRgba>,
    pub fg_info: gst_video::VideoInfo,
    /// The foreground when it cannot be written straight into the output.
    pub fg_buffer: gst::Buffer,
    /// Whether the output frame can hold the foreground (same size, 4-byte
    /// format), so the in-place path needs no copy.
    pub fg_is_output: bool,
    /// Byte of the foreground's pixels that holds alpha.
    pub alpha_offset: usize,
    /// Replace, or multiply the input's own alpha when it has one.
    pub alpha_mode: AlphaMode,
    /// For `mask` output of a placed foreground: a canvas in the
    /// foreground's format, made on first use.
    pub canvas: Option<(gst_video::VideoInfo, gst::Buffer)>,
}

impl Frames {
    /// The buffers and converters for `in_info` -> `out_info`, with a model
    /// input of `mw`x`mh`.
    pub fn new(
        (mw, mh): (u32, u32),
        in_info: &gst_video::VideoInfo,
        out_info: &gst_video::VideoInfo,
    ) -> Result<Frames, String> {
        let model_info = gst_video::VideoInfo::builder(gst_video::VideoFormat::Rgb, mw, mh)
            .fps(in_info.fps())
            .interlace_mode(in_info.interlace_mode())
            .build()
            .map_err(|e| e.to_string())?;
        let mut config = gst_video::VideoConverterConfig::new();
        config.set_resampler_method(gst_video::VideoResamplerMethod::Linear);
        let to_model =
            gst_video::VideoConverter::new(in_info, &model_info, Some(config)).map_err(|e| {
                format!(
                    "cannot convert {:?} to the model input: {e}",
                    in_info.format()
                )
            })?;
        let out_format = out_info.format();
        let fg_format = match caps::alpha_offset(out_format) {
            Some(_) => out_format,
            None => gst_video::VideoFormat::Rgba,
        };
        let fg_is_output = fg_format == out_format
            && (in_info.width(), in_info.height()) == (out_info.width(), out_info.height());
        let fg_info = if fg_is_output {
            out_info.clone()
        } else {
            gst_video::VideoInfo::builder(fg_format, in_info.width(), in_info.height())
                .fps(in_info.fps())
                .par(in_info.par())
                .build()
                .map_err(|e| e.to_string())?
        };
        // The full-size conversion is the frame path's largest cost. It runs
        // on one thread: in sync mode the frame's inference runs beside it on
        // the other core (see LocalPath::process), and two converter threads
        // would only take that core from it.
        let mut fg_config = gst_video::VideoConverterConfig::new();
        fg_config.set_threads(1);
        let to_fg =
            gst_video::VideoConverter::new(in_info, &fg_info, Some(fg_config)).map_err(|e| {
                format!(
                    "cannot convert {:?} to {:?}: {e}",
                    in_info.format(),
                    fg_info.format()
                )
            })?;
        let fast = ToRgba::new(in_info, fg_info.format());
        let model_buffer = gst::Buffer::with_size(model_info.size()).map_err(|e| e.to_string())?;
        let fg_buffer = gst::Buffer::with_size(fg_info.size()).map_err(|e| e.to_string())?;
        let staged = Staged::new(in_info, &model_info).transpose()?;
        Ok(Frames {
            to_model,
            staged,
            model_info,
            model_buffer,
            to_fg,
            fast,
            alpha_offset: caps::alpha_offset(fg_format).expect("4-byte format"),
            fg_info,
            fg_buffer,
            fg_is_output,
            alpha_mode: if in_info.has_alpha() {
                AlphaMode::Multiply
            } else {
                AlphaMode::Replace
            },
            canvas: None,
        })
    }

    /// Whether the model input is sampled in two stages.
    pub fn staged(&self) -> bool {
        self.staged.is_some()
    }
}

/// The foreground: `inframe` converted into `out` (4-byte pixels, its
/// size), by `fast` in `bands` bands of rows over the cores where it
/// applies, else by GStreamer's converter.
pub fn foreground(
    fast: Option<&ToRgba>,
    to_fg: &gst_video::VideoConverter,
    inframe: &gst_video::VideoFrameRef<&gst::BufferRef>,
    out: &mut gst_video::VideoFrameRef<&mut gst::BufferRef>,
    bands: usize,
) -> Result<(), String> {
    match fast {
        Some(fast) => {
            let stride = out.plane_stride()[0] as usize;
            let data = out.plane_data_mut(0).map_err(|e| e.to_string())?;
            fast.run(inframe, data, stride, bands)
        }
        None => {
            to_fg.frame_ref(inframe, out);
            Ok(())
        }
    }
}

/// Fills `buffer` (the model's RGB input, `info`) from `inframe`: sampled
/// in two stages where that applies (the sampling in `bands` bands of rows
/// over the cores), else by the converter.
pub fn model_input(
    staged: &mut Option<Staged>,
    to_model: &gst_video::VideoConverter,
    buffer: &mut gst::Buffer,
    info: &gst_video::VideoInfo,
    inframe: &gst_video::VideoFrameRef<&gst::BufferRef>,
    bands: usize,
) -> Result<(), String> {
    let mut frame = gst_video::VideoFrameRef::from_buffer_ref_writable(buffer.make_mut(), info)
        .map_err(|e| format!("cannot map the model input: {e}"))?;
    match staged {
        Some(staged) => staged.run(inframe, &mut frame, bands),
        None => {
            to_model.frame_ref(inframe, &mut frame);
            Ok(())
        }
    }
}

/// The two-stage model input (see `Frames::staged`).
pub struct Staged {
    sampler: Sampler,
    info: gst_video::VideoInfo,
    buffer: gst::Buffer,
    to_model: gst_video::VideoConverter,
}

impl Staged {
    fn new(
        in_info: &gst_video::VideoInfo,
        model_info: &gst_video::VideoInfo,
    ) -> Option<Result<Staged, String>> {
        let (w, h) = Sampler::stage(in_info, model_info.width(), model_info.height())?;
        let sampler = Sampler::new(in_info, w, h)?;
        Some((|| {
            let info = gst_video::VideoInfo::builder(gst_video::VideoFormat::Rgb, w, h)
                .fps(model_info.fps())
                .build()
                .map_err(|e| e.to_string())?;
            let mut config = gst_video::VideoConverterConfig::new();
            config.set_resampler_method(gst_video::VideoResamplerMethod::Linear);
            let to_model = gst_video::VideoConverter::new(&info, model_info, Some(config))
                .map_err(|e| e.to_string())?;
            let buffer = gst::Buffer::with_size(info.size()).map_err(|e| e.to_string())?;
            Ok(Staged {
                sampler,
                info,
                buffer,
                to_model,
            })
        })())
    }

    /// Samples `inframe` down (in `bands` bands of rows), then converts it
    /// into `model_frame`.
    fn run(
        &mut self,
        inframe: &gst_video::VideoFrameRef<&gst::BufferRef>,
        model_frame: &mut gst_video::VideoFrameRef<&mut gst::BufferRef>,
        bands: usize,
    ) -> Result<(), String> {
        {
            let mut frame = gst_video::VideoFrameRef::from_buffer_ref_writable(
                self.buffer.make_mut(),
                &self.info,
            )
            .map_err(|e| e.to_string())?;
            let stride = frame.plane_stride()[0] as usize;
            let data = frame.plane_data_mut(0).map_err(|e| e.to_string())?;
            self.sampler.run_bands(inframe, data, stride, bands)?;
        }
        let frame =
            gst_video::VideoFrameRef::from_buffer_ref_readable(self.buffer.as_ref(), &self.info)
                .map_err(|e| e.to_string())?;
        self.to_model.frame_ref(&frame, model_frame);
        Ok(())
    }
}

/// A model's input made from frames of one format and size, on its own
/// (the async correction's `human` model beside the heavy one).
pub struct ModelInput {
    to_model: gst_video::VideoConverter,
    staged: Option<Staged>,
    pub info: gst_video::VideoInfo,
    buffer: gst::Buffer,
}

impl ModelInput {
    /// Input of `mw`x`mh` packed RGB from frames of `in_info`.
    pub fn new((mw, mh): (u32, u32), in_info: &gst_video::VideoInfo) -> Result<Self, String> {
        let info = gst_video::VideoInfo::builder(gst_video::VideoFormat::Rgb, mw, mh)
            .fps(in_info.fps())
            .build()
            .map_err(|e| e.to_string())?;
        let mut config = gst_video::VideoConverterConfig::new();
        config.set_resampler_method(gst_video::VideoResamplerMethod::Linear);
        let to_model =
            gst_video::VideoConverter::new(in_info, &info, Some(config)).map_err(|e| {
                format!(
                    "cannot convert {:?} to a model input: {e}",
                    in_info.format()
                )
            })?;
        let staged = Staged::new(in_info, &info).transpose()?;
        let buffer = gst::Buffer::with_size(info.size()).map_err(|e| e.to_string())?;
        Ok(ModelInput {
            to_model,
            staged,
            info,
            buffer,
        })
    }

    /// Makes the input from `inframe` and gives it to `f` as (rows, stride).
    pub fn with<R>(
        &mut self,
        inframe: &gst_video::VideoFrameRef<&gst::BufferRef>,
        f: impl FnOnce(&[u8], usize) -> R,
    ) -> Result<R, String> {
        model_input(
            &mut self.staged,
            &self.to_model,
            &mut self.buffer,
            &self.info,
            inframe,
            1,
        )?;
        let frame =
            gst_video::VideoFrameRef::from_buffer_ref_readable(self.buffer.as_ref(), &self.info)
                .map_err(|e| e.to_string())?;
        let stride = frame.plane_stride()[0] as usize;
        let rgb = frame.plane_data(0).map_err(|e| e.to_string())?;
        Ok(f(rgb, stride))
    }
}

// SPDX-License-Identifier: MPL-2.0
//! The frame path's last step: the matte into the foreground's alpha, then
//! the foreground laid over its background on the canvas (in place when the
//! output frame can hold the foreground), or its alpha alone as GRAY8.

use std::sync::Arc;

use gst_video::prelude::*;
use rbv_core::compositor::{self, Background, Blur, Compositor, Cover, Pixels, PixelsMut};
use rbv_core::image::Image;
use rbv_core::matte::{self, AlphaMode, MaskControls, MaskShaper, Matte, Refiner};

use super::FrameError;
use super::frames::Frames;
use crate::rbvremove::BackgroundMode;
use crate::rbvremove::caps;
use crate::rbvremove::settings::Look;

/// A background image prepared for one canvas size and pixel format.
struct CoverCache {
    image: Arc<Image>,
    size: (u32, u32),
    cover: Cover,
    opaque: bool,
}

/// What compositing keeps between frames: nothing is allocated per frame
/// once the sizes are stable.
#[derive(Default)]
pub struct Composite {
    matte: Matte,
    refiner: Refiner,
    shaper: MaskShaper,
    compositor: Compositor,
    blur: Blur,
    /// `blur` holds this frame's background (made by `background_ahead`).
    blur_ahead: bool,
    cover: Option<CoverCache>,
}

impl Composite {
    /// With `background=blur`: the blurred background made now from the
    /// foreground's colours (`fg`, the converted frame: the blur reads no
    /// alpha), so that the frame path can make it beside the inference;
    /// [`run`](Self::run) then uses it. Nothing for other backgrounds.
    pub fn background_ahead(
        &mut self,
        look: &Look,
        alpha: usize,
        out_format: gst_video::VideoFormat,
        canvas: (u32, u32),
        fg: &gst_video::VideoFrameRef<&mut gst::BufferRef>,
    ) -> Result<(), String> {
        self.blur_ahead = false;
        if look.background != BackgroundMode::Blur || out_format == caps::MASK_FORMAT {
            return Ok(());
        }
        let stride = fg.plane_stride()[0] as usize;
        let px = Pixels::new(
            fg.plane_data(0).map_err(|e| e.to_string())?,
            fg.width(),
            fg.height(),
            stride,
        )?;
        self.blur.run(px, alpha, look.blur_radius, canvas)?;
        self.blur_ahead = true;
        Ok(())
    }

    /// Drops a background made ahead (a flush or new caps: it was for a
    /// frame that is gone).
    pub fn forget_ahead(&mut self) {
        self.blur_ahead = false;
    }

    /// `mask` (`mask_size`) made the alpha of the foreground, which the
    /// frame path has converted into `outframe` when `in_place(...)` said so,
    /// else into `frames.fg_buffer`; then the background under it on the
    /// canvas, as `look` says.
    pub fn run(
        &mut self,
        frames: &mut Frames,
        look: &Look,
        mask: &[f32],
        mask_size: (u32, u32),
        outframe: &mut gst_video::VideoFrameRef<&mut gst::BufferRef>,
    ) -> Result<(), FrameError> {
        let fail = FrameError::new;
        let Composite {
            matte,
            refiner,
            shaper,
            compositor,
            blur,
            blur_ahead,
            cover,
        } = self;
        // A blur made ahead is for this frame only.
        let ahead = std::mem::take(blur_ahead);
        let ai = frames.alpha_offset;
        let (w, h) = (frames.fg_info.width(), frames.fg_info.height());
        let canvas = (outframe.width(), outframe.height());
        let out_format = outframe.format();
        let mask_out = out_format == caps::MASK_FORMAT;
        let rect = look.placement.rect((w, h), canvas);
        let full = compositor::Rect {
            x: 0,
            y: 0,
            width: w,
            height: h,
        };
        let mode = match look.background {
            _ if mask_out => BackgroundMode::Transparent,
            BackgroundMode::Mask => BackgroundMode::Transparent,
            m => m,
        };

        let image = look
            .image
            .as_ref()
            .filter(|_| mode == BackgroundMode::Image);
        // The upscaled (or refined) mask into the alpha of a converted frame.
        let alpha_mode = frames.alpha_mode;
        let mut matte_into = |data: &mut [u8], stride: usize| {
            apply_matte(
                matte,
                refiner,
                look.refine,
                mask,
                mask_size,
                (w, h),
                data,
                stride,
                ai,
                alpha_mode,
                shaper,
                &look.mask,
            )
        };

        if frames.fg_is_output && rect == full && !mask_out {
            // In place: the output frame holds the foreground and receives the result.
            let stride = outframe.plane_stride()[0] as usize;
            let data = outframe
                .plane_data_mut(0)
                .map_err(|e| fail("cannot write the output", e.to_string()))?;
            matte_into(data, stride).map_err(|e| fail("matte failed", e))?;
            let mut px =
                PixelsMut::new(data, w, h, stride).map_err(|e| fail("bad output frame", e))?;
            let result = match mode {
                BackgroundMode::Color => compositor::under(
                    &mut px,
                    ai,
                    &Background::Color(caps::in_layout(look.color, out_format)),
                ),
                BackgroundMode::Image => {
                    match prepare_cover(cover, image, canvas, out_format, ai) {
                        Ok(Some(c)) => c
                            .cover
                            .with_pixels(|p| {
                                compositor::under(
                                    &mut px,
                                    ai,
                                    &Background::Pixels {
                                        pixels: p,
                                        opaque: c.opaque,
                                    },
                                )
                            })
                            .and_then(|r| r),
                        Ok(None) => Err("background=image without a background-image".into()),
                        Err(e) => Err(e),
                    }
                }
                BackgroundMode::Blur => blur_of(blur, ahead, px.as_pixels(), ai, look, canvas)
                    .and_then(|()| {
                        blur.with_result(|p| {
                            compositor::under(
                                &mut px,
                                ai,
                                &Background::Pixels {
                                    pixels: p,
                                    opaque: true,
                                },
                            )
                        })
                    })
                    .and_then(|r| r),
                _ => Ok(()),
            };
            result.map_err(|e| fail("compositing failed", e))?;
            return Ok(());
        }

        // Placed: the foreground goes to its own buffer first.
        {
            let mut fg = gst_video::VideoFrameRef::from_buffer_ref_writable(
                frames.fg_buffer.make_mut(),
                &frames.fg_info,
            )
            .map_err(|e| fail("cannot map the foreground", e.to_string()))?;
            let stride = fg.plane_stride()[0] as usize;
            let data = fg
                .plane_data_mut(0)
                .map_err(|e| fail("cannot write the foreground", e.to_string()))?;
            matte_into(data, stride).map_err(|e| fail("matte failed", e))?;
        }
        let fg_frame = gst_video::VideoFrameRef::from_buffer_ref_readable(
            frames.fg_buffer.as_ref(),
            &frames.fg_info,
        )
        .map_err(|e| fail("cannot map the foreground", e.to_string()))?;
        let fg = Pixels::new(
            fg_frame
                .plane_data(0)
                .map_err(|e| fail("cannot read the foreground", e.to_string()))?,
            w,
            h,
            fg_frame.plane_stride()[0] as usize,
        )
        .map_err(|e| fail("bad foreground", e))?;
        let out_stride = outframe.plane_stride()[0] as usize;
        let out_data = outframe
            .plane_data_mut(0)
            .map_err(|e| fail("cannot write the output", e.to_string()))?;

        if mask_out {
            let result = if rect == full && canvas == (w, h) {
                compositor::alpha_plane(fg, ai, out_data, out_stride)
            } else {
                // Placed on a transparent canvas, then its alpha.
                let fits = frames
                    .canvas
                    .as_ref()
                    .is_some_and(|(info, _)| (info.width(), info.height()) == canvas);
                if !fits {
                    let info =
                        gst_video::VideoInfo::builder(frames.fg_info.format(), canvas.0, canvas.1)
                            .build()
                            .map_err(|e| fail("canvas", e.to_string()))?;
                    let buffer = gst::Buffer::with_size(info.size())
                        .map_err(|e| fail("canvas", e.to_string()))?;
                    frames.canvas = Some((info, buffer));
                }
                let (info, buffer) = frames.canvas.as_mut().expect("made above");
                let mut frame =
                    gst_video::VideoFrameRef::from_buffer_ref_writable(buffer.make_mut(), info)
                        .map_err(|e| fail("cannot map the canvas", e.to_string()))?;
                let stride = frame.plane_stride()[0] as usize;
                let data = frame
                    .plane_data_mut(0)
                    .map_err(|e| fail("cannot write the canvas", e.to_string()))?;
                PixelsMut::new(data, canvas.0, canvas.1, stride).and_then(|mut px| {
                    compositor.compose(fg, ai, rect, &Background::Transparent, &mut px)?;
                    compositor::alpha_plane(px.as_pixels(), ai, out_data, out_stride)
                })
            };
            result.map_err(|e| fail("mask failed", e))?;
            return Ok(());
        }

        let mut out = PixelsMut::new(out_data, canvas.0, canvas.1, out_stride)
            .map_err(|e| fail("bad output frame", e))?;
        let result = match mode {
            BackgroundMode::Color => compositor.compose(
                fg,
                ai,
                rect,
                &Background::Color(caps::in_layout(look.color, out_format)),
                &mut out,
            ),
            BackgroundMode::Image => match prepare_cover(cover, image, canvas, out_format, ai) {
                Ok(Some(c)) => c
                    .cover
                    .with_pixels(|p| {
                        compositor.compose(
                            fg,
                            ai,
                            rect,
                            &Background::Pixels {
                                pixels: p,
                                opaque: c.opaque,
                            },
                            &mut out,
                        )
                    })
                    .and_then(|r| r),
                Ok(None) => Err("background=image without a background-image".into()),
                Err(e) => Err(e),
            },
            BackgroundMode::Blur => blur_of(blur, ahead, fg, ai, look, canvas)
                .and_then(|()| {
                    blur.with_result(|p| {
                        compositor.compose(
                            fg,
                            ai,
                            rect,
                            &Background::Pixels {
                                pixels: p,
                                opaque: true,
                            },
                            &mut out,
                        )
                    })
                })
                .and_then(|r| r),
            _ => compositor.compose(fg, ai, rect, &Background::Transparent, &mut out),
        };
        result.map_err(|e| fail("compositing failed", e))?;
        Ok(())
    }
}

/// `blur` made from `fg` for `canvas`, unless it was made ahead for this
/// frame.
fn blur_of(
    blur: &mut Blur,
    ahead: bool,
    fg: Pixels,
    alpha: usize,
    look: &Look,
    canvas: (u32, u32),
) -> Result<(), String> {
    if ahead {
        return Ok(());
    }
    blur.run(fg, alpha, look.blur_radius, canvas)
}

/// Whether the foreground is converted straight into the output frame: the
/// output is its size and format and nothing moves it.
pub fn in_place(frames: &Frames, look: &Look, out_info: &gst_video::VideoInfo) -> bool {
    let (w, h) = (frames.fg_info.width(), frames.fg_info.height());
    let canvas = (out_info.width(), out_info.height());
    let full = compositor::Rect {
        x: 0,
        y: 0,
        width: w,
        height: h,
    };
    frames.fg_is_output
        && look.placement.rect((w, h), canvas) == full
        && out_info.format() != caps::MASK_FORMAT
}

/// The upscaled mask into the alpha of `data`: plain (bilinear), or refined
/// by the guided filter when `refine` is set.
#[allow(clippy::too_many_arguments)]
fn apply_matte(
    plain: &mut Matte,
    refiner: &mut Refiner,
    refine: Option<(usize, f32)>,
    mask: &[f32],
    mask_size: (u32, u32),
    (w, h): (u32, u32),
    data: &mut [u8],
    stride: usize,
    alpha: usize,
    mode: AlphaMode,
    shaper: &mut MaskShaper,
    controls: &MaskControls,
) -> Result<(), String> {
    match refine {
        None => plain.apply(mask, mask_size, (w, h), data, stride, alpha, mode)?,
        Some((radius, eps)) => {
            let plane =
                refiner.refine(mask, mask_size, data, stride, (w, h), alpha, radius, eps)?;
            matte::write_alpha(
                plane, w as usize, w as usize, h as usize, data, stride, alpha, mode,
            );
        }
    }
    // Threshold, grow/shrink, feather: in output pixels, off by default.
    shaper.apply(controls, data, (w as usize, h as usize), stride, alpha);
    Ok(())
}

/// The background image prepared for this canvas and format (cached until
/// the image, the canvas or the format changes).
fn prepare_cover<'c>(
    cache: &'c mut Option<CoverCache>,
    image: Option<&Arc<Image>>,
    canvas: (u32, u32),
    format: gst_video::VideoFormat,
    alpha: usize,
) -> Result<Option<&'c CoverCache>, String> {
    let Some(image) = image else {
        return Ok(None);
    };
    let fresh = cache.as_ref().is_some_and(|c| {
        Arc::ptr_eq(&c.image, image) && c.size == canvas && c.cover.info.format() == format
    });
    if !fresh {
        let cover = Cover::new(&image.buffer, &image.info, canvas, format)?;
        let opaque = cover.with_pixels(|p| p.is_opaque(alpha))?;
        *cache = Some(CoverCache {
            image: image.clone(),
            size: canvas,
            cover,
            opaque,
        });
    }
    Ok(cache.as_ref())
}

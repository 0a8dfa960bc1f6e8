// SPDX-License-Identifier: MPL-2.0
//! What a job may cost and use: billing from what the pipeline measured
//! (frames and their timestamps, never a header's claim), the credits to
//! reserve before it runs, the caps it runs under, and the checks of an
//! input's and a background image's size against the server's limits.

use std::time::Duration;

use rbv_api::ModelName;

use crate::Config;

/// Frames past this many a second are billed as if the video ran at this
/// rate: a 1000 fps clip costs its frames, not its short media time.
pub const BILLED_FPS: f64 = 60.0;

/// Slack on a reservation's media time: timestamps round, a header's
/// duration may miss the last frame.
pub const RESERVE_SLACK_SECONDS: f64 = 1.0;

/// The smallest frame side the encoders take (ProRes and VP8 refuse 8x8).
pub const MIN_SIDE: u64 = 16;

/// The seconds billed for `frames` frames covering `media_seconds`.
pub fn billed_seconds(media_seconds: f64, frames: u64) -> f64 {
    media_seconds.max(frames as f64 / BILLED_FPS)
}

/// Credits for `seconds` of video with `model`, to the cent.
pub fn credits(model: ModelName, seconds: f64) -> f64 {
    crate::store::round2(model.credits_per_minute() * seconds / 60.0)
}

/// Why an input of this size, length and frame count is refused, if it is
/// (the flags named so an operator knows what to raise).
pub fn check_input(
    config: &Config,
    width: u64,
    height: u64,
    frames: u64,
    media_seconds: f64,
) -> Result<(), String> {
    let pixels = width.saturating_mul(height);
    if width < MIN_SIDE || height < MIN_SIDE {
        return Err(format!(
            "the video is {width}x{height}; the smallest this server takes is {MIN_SIDE}x{MIN_SIDE}"
        ));
    }
    if pixels > config.max_pixels {
        return Err(format!(
            "the video is {width}x{height} ({pixels} pixels a frame); this server takes at most {} (--max-pixels)",
            config.max_pixels
        ));
    }
    if frames > config.max_frames {
        return Err(format!(
            "the video has {frames} frames; this server takes at most {} (--max-frames)",
            config.max_frames
        ));
    }
    let max = config.max_duration.as_secs_f64();
    if media_seconds > max {
        return Err(format!(
            "the video is {media_seconds:.1} s long; this server takes at most {max:.0} s (--max-duration)"
        ));
    }
    Ok(())
}

/// The caps a job runs under: the server's, and for a key with a credit
/// limit, no more media time or frames than its reservation covers.
pub fn runner_limits(config: &Config, reserved_seconds: Option<f64>) -> rbv_runner::Limits {
    let mut seconds = config.max_duration.as_secs_f64();
    let mut frames = config.max_frames;
    if let Some(r) = reserved_seconds {
        let r = r + RESERVE_SLACK_SECONDS;
        seconds = seconds.min(r);
        frames = frames.min((r * BILLED_FPS).ceil() as u64);
    }
    rbv_runner::Limits {
        max_pixels: Some(config.max_pixels),
        max_frames: Some(frames),
        max_duration: Some(Duration::from_secs_f64(seconds)),
    }
}

/// Checks a background image's size from its header before anything
/// decodes it.
pub fn check_image(config: &Config, path: &std::path::Path) -> Result<(), String> {
    let size = imagesize::size(path).map_err(|_| {
        "the background image is not an image this server reads (PNG, JPEG, WebP, GIF, BMP)"
            .to_string()
    })?;
    let (w, h) = (size.width as u64, size.height as u64);
    let pixels = w.saturating_mul(h);
    if pixels > config.max_image_pixels {
        return Err(format!(
            "the background image is {w}x{h} ({pixels} pixels); this server takes at most {} (--max-image-pixels)",
            config.max_image_pixels
        ));
    }
    Ok(())
}

/// Checks a composition's canvas (width x height) against the limit.
pub fn check_canvas(config: &Config, composition: &serde_json::Value) -> Result<(), String> {
    let dim = |k: &str| composition["canvas"][k].as_u64().unwrap_or(0);
    let (w, h) = (dim("width"), dim("height"));
    let pixels = w.saturating_mul(h);
    if (w > 0 && w < MIN_SIDE) || (h > 0 && h < MIN_SIDE) {
        return Err(format!(
            "composition.canvas is {w}x{h}; the smallest this server writes is {MIN_SIDE}x{MIN_SIDE}"
        ));
    }
    if pixels > config.max_canvas_pixels {
        return Err(format!(
            "composition.canvas is {w}x{h} ({pixels} pixels); this server takes at most {} (--max-canvas-pixels)",
            config.max_canvas_pixels
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn billing_counts_frames_past_60_a_second() {
        assert_eq!(billed_seconds(1.0, 25), 1.0);
        assert_eq!(billed_seconds(100.0, 100_000), 100_000.0 / 60.0);
        assert_eq!(credits(ModelName::Human, 1.0), 0.75);
        assert_eq!(credits(ModelName::Pro, 60.0), 180.0);
    }

    #[test]
    fn a_reservation_caps_the_run() {
        let c = Config::default();
        let free = runner_limits(&c, None);
        assert_eq!(free.max_duration, Some(c.max_duration));
        let held = runner_limits(&c, Some(1.0));
        assert_eq!(held.max_duration, Some(Duration::from_secs(2)));
        assert_eq!(held.max_frames, Some(120));
    }

    #[test]
    fn inputs_and_canvases_over_the_limits_are_named() {
        let c = Config::default();
        assert!(check_input(&c, 1920, 1080, 100, 4.0).is_ok());
        assert!(check_input(&c, 2, 2, 1, 1.0).unwrap_err().contains("16x16"));
        let e = check_input(&c, 16000, 16000, 2, 2.0).unwrap_err();
        assert!(
            e.contains("16000x16000") && e.contains("--max-pixels"),
            "{e}"
        );
        assert!(
            check_input(&c, 64, 64, 1, 36_000.0)
                .unwrap_err()
                .contains("--max-duration")
        );
        assert!(
            check_input(&c, 64, 64, u64::MAX, 1.0)
                .unwrap_err()
                .contains("--max-frames")
        );
        let e = check_canvas(
            &c,
            &serde_json::json!({"canvas": {"width": 16384, "height": 16384}}),
        )
        .unwrap_err();
        assert!(e.contains("16384x16384") && e.contains("canvas"), "{e}");
        assert!(
            check_canvas(
                &c,
                &serde_json::json!({"canvas": {"width": 1920, "height": 1080}})
            )
            .is_ok()
        );
    }
}

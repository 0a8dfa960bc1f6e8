//! Matte post-processing: the model's low-resolution soft mask becomes a
//! full-resolution alpha plane, and the alpha plane goes into RGBA pixels.
//!
//! Soft alpha is kept end to end (no thresholding); the upscale is a bilinear
//! convolution (fast_image_resize, SIMD), so edges stay smooth.

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};

/// Reusable buffers for turning masks into alpha; no allocation per frame
/// once the sizes are stable.
pub struct Matte {
    resizer: Resizer,
    options: ResizeOptions,
    small: Vec<u8>,
    alpha: Vec<u8>,
}

impl Default for Matte {
    fn default() -> Self {
        Matte {
            resizer: Resizer::new(),
            options: ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear)),
            small: Vec::new(),
            alpha: Vec::new(),
        }
    }
}

impl std::fmt::Debug for Matte {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Matte").finish_non_exhaustive()
    }
}

/// 0..1 to 0..255, rounded.
#[inline]
pub fn to_u8(v: f32) -> u8 {
    (v.clamp(0.0, 1.0) * 255.0 + 0.5) as u8
}

impl Matte {
    pub fn new() -> Self {
        Self::default()
    }

    /// Scales a `mw`x`mh` mask (0..1) to a `width`x`height` alpha plane (0..255, packed rows).
    pub fn alpha(
        &mut self,
        mask: &[f32],
        mw: u32,
        mh: u32,
        width: u32,
        height: u32,
    ) -> Result<&[u8], String> {
        let n = mw as usize * mh as usize;
        if mask.len() < n || mw == 0 || mh == 0 || width == 0 || height == 0 {
            return Err(format!(
                "cannot scale a {mw}x{mh} mask of {} values to {width}x{height}",
                mask.len()
            ));
        }
        self.small.clear();
        self.small.extend(mask[..n].iter().map(|&v| to_u8(v)));
        self.alpha.resize(width as usize * height as usize, 0);
        let src = ImageRef::new(mw, mh, &self.small, PixelType::U8).map_err(|e| e.to_string())?;
        let mut dst = Image::from_slice_u8(width, height, &mut self.alpha, PixelType::U8)
            .map_err(|e| e.to_string())?;
        self.resizer
            .resize(&src, &mut dst, &self.options)
            .map_err(|e| e.to_string())?;
        Ok(&self.alpha)
    }
}

/// Writes a packed `width`x`height` alpha plane into 4-byte pixels
/// (`stride` bytes per row), at byte `offset` within each pixel (3 for RGBA).
pub fn put_alpha(
    alpha: &[u8],
    width: usize,
    height: usize,
    pixels: &mut [u8],
    stride: usize,
    offset: usize,
) {
    combine_alpha(alpha, width, height, pixels, stride, offset, |_, a| a);
}

/// Like [`put_alpha`], but multiplies the alpha already in the pixels (an
/// input that carried its own transparency stays transparent).
pub fn multiply_alpha(
    alpha: &[u8],
    width: usize,
    height: usize,
    pixels: &mut [u8],
    stride: usize,
    offset: usize,
) {
    combine_alpha(alpha, width, height, pixels, stride, offset, |old, a| {
        ((u16::from(old) * u16::from(a) + 127) / 255) as u8
    });
}

#[inline(always)]
fn combine_alpha(
    alpha: &[u8],
    width: usize,
    height: usize,
    pixels: &mut [u8],
    stride: usize,
    offset: usize,
    combine: impl Fn(u8, u8) -> u8,
) {
    for (y, arow) in alpha.chunks_exact(width).take(height).enumerate() {
        let row = &mut pixels[y * stride..y * stride + width * 4];
        for (px, &a) in row.chunks_exact_mut(4).zip(arow) {
            px[offset] = combine(px[offset], a);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_masks_stay_constant() {
        let mut m = Matte::new();
        for (v, want) in [(0.0, 0u8), (1.0, 255), (0.5, 128)] {
            let a = m.alpha(&[v; 16], 4, 4, 37, 23).unwrap();
            assert_eq!(a.len(), 37 * 23);
            assert!(a.iter().all(|&x| x == want), "{v} -> {:?}", &a[..8]);
        }
    }

    #[test]
    fn upscaled_edge_is_soft_and_monotonic() {
        // Left half foreground, right half background.
        let mask: Vec<f32> = (0..8 * 8)
            .map(|i| if i % 8 < 4 { 1.0 } else { 0.0 })
            .collect();
        let mut m = Matte::new();
        let a = m.alpha(&mask, 8, 8, 64, 16).unwrap().to_vec();
        let row = &a[5 * 64..6 * 64];
        assert_eq!(row[0], 255);
        assert_eq!(row[63], 0);
        assert!(
            row.windows(2).all(|w| w[0] >= w[1]),
            "not monotonic: {row:?}"
        );
        let soft = row.iter().filter(|&&x| x > 0 && x < 255).count();
        assert!((2..=12).contains(&soft), "edge width {soft}: {row:?}");
    }

    #[test]
    fn bad_sizes_are_errors() {
        let mut m = Matte::new();
        assert!(m.alpha(&[1.0; 3], 2, 2, 4, 4).is_err());
        assert!(m.alpha(&[1.0; 4], 2, 2, 0, 4).is_err());
    }

    #[test]
    fn alpha_goes_into_the_right_byte_and_respects_stride() {
        let alpha = [10u8, 20, 30, 40];
        let mut px = vec![0u8; 2 * 12];
        put_alpha(&alpha, 2, 2, &mut px, 12, 3);
        assert_eq!(&px[..12], &[0, 0, 0, 10, 0, 0, 0, 20, 0, 0, 0, 0]);
        assert_eq!(&px[12..], &[0, 0, 0, 30, 0, 0, 0, 40, 0, 0, 0, 0]);
    }

    #[test]
    fn alpha_multiplies_existing_alpha() {
        let mut px = vec![9, 9, 9, 255, 9, 9, 9, 128, 9, 9, 9, 0];
        multiply_alpha(&[255, 255, 200], 3, 1, &mut px, 12, 3);
        assert_eq!(px, vec![9, 9, 9, 255, 9, 9, 9, 128, 9, 9, 9, 0]);
        let mut px = vec![9, 9, 9, 255, 9, 9, 9, 128];
        multiply_alpha(&[0, 128], 2, 1, &mut px, 8, 3);
        assert_eq!(px, vec![9, 9, 9, 0, 9, 9, 9, 64]);
    }
}

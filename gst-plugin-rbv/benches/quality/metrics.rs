// SPDX-License-Identifier: MPL-2.0
//! The quality bench's measures: IoU lives in rbv-testkit; here the
//! boundary F-score, alpha errors, flicker and neighbourhoods.

/// Pixels on the edge of the thresholded mask (a 4-neighbour differs).
pub fn boundary(m: &[u8], w: usize, h: usize) -> Vec<bool> {
    let on = |x: usize, y: usize| m[y * w + x] >= 128;
    let mut b = vec![false; w * h];
    for y in 0..h {
        for x in 0..w {
            let v = on(x, y);
            b[y * w + x] = (x > 0 && on(x - 1, y) != v)
                || (x + 1 < w && on(x + 1, y) != v)
                || (y > 0 && on(x, y - 1) != v)
                || (y + 1 < h && on(x, y + 1) != v);
        }
    }
    b
}

/// Each pixel's distance (Chebyshev, capped at `cap`) to the nearest set pixel.
pub fn distance(set: &[bool], w: usize, h: usize, cap: usize) -> Vec<usize> {
    let mut d = vec![cap; w * h];
    for y in 0..h {
        for x in 0..w {
            if !set[y * w + x] {
                continue;
            }
            for yy in y.saturating_sub(cap)..(y + cap + 1).min(h) {
                for xx in x.saturating_sub(cap)..(x + cap + 1).min(w) {
                    let k = (xx.abs_diff(x)).max(yy.abs_diff(y));
                    let i = yy * w + xx;
                    d[i] = d[i].min(k);
                }
            }
        }
    }
    d
}

/// Boundary F-score with a tolerance of 0.75 % of the diagonal.
pub fn boundary_f(a: &[u8], t: &[u8], w: usize, h: usize) -> f64 {
    let tol = ((0.0075 * ((w * w + h * h) as f64).sqrt()).round() as usize).max(1);
    let (ba, bt) = (boundary(a, w, h), boundary(t, w, h));
    let (da, dt) = (distance(&ba, w, h, tol + 1), distance(&bt, w, h, tol + 1));
    let hits = |b: &[bool], d: &[usize]| {
        let n = b.iter().filter(|&&x| x).count();
        let ok = b.iter().zip(d).filter(|&(&x, &d)| x && d <= tol).count();
        ok as f64 / n.max(1) as f64
    };
    let (p, r) = (hits(&ba, &dt), hits(&bt, &da));
    if p + r == 0.0 {
        0.0
    } else {
        2.0 * p * r / (p + r)
    }
}

/// (mean |a - t| over the frame, the same in the band within 10 px of the
/// true edge, mean |grad a - grad t| in that band), all in 0..1 units.
pub fn alpha_errors(a: &[u8], t: &[u8], w: usize, h: usize) -> (f64, f64, f64) {
    let mae = a
        .iter()
        .zip(t)
        .map(|(&x, &y)| f64::from(x.abs_diff(y)))
        .sum::<f64>()
        / (a.len() as f64 * 255.0);
    let band = distance(&boundary(t, w, h), w, h, 11);
    let grad = |m: &[u8], x: usize, y: usize| {
        let v = |x: usize, y: usize| f64::from(m[y * w + x]);
        let gx = v((x + 1).min(w - 1), y) - v(x.saturating_sub(1), y);
        let gy = v(x, (y + 1).min(h - 1)) - v(x, y.saturating_sub(1));
        (gx * gx + gy * gy).sqrt() / 2.0
    };
    let (mut e, mut g, mut n) = (0.0, 0.0, 0usize);
    for y in 0..h {
        for x in 0..w {
            if band[y * w + x] > 10 {
                continue;
            }
            let i = y * w + x;
            e += f64::from(a[i].abs_diff(t[i]));
            g += (grad(a, x, y) - grad(t, x, y)).abs();
            n += 1;
        }
    }
    let n = n.max(1) as f64 * 255.0;
    (mae, e / n, g / n)
}

/// Mean |a_t - a_{t-1}| (0..1) over the pixels `still(t, i)` says are still.
pub fn flicker(alphas: &[Vec<u8>], still: impl Fn(usize, usize) -> bool) -> f64 {
    let (mut sum, mut n) = (0.0, 0u64);
    for (t, pair) in alphas.windows(2).enumerate() {
        for (i, (&now, &before)) in pair[1].iter().zip(&pair[0]).enumerate() {
            if still(t + 1, i) {
                sum += f64::from(now.abs_diff(before));
                n += 1;
            }
        }
    }
    sum / (n.max(1) as f64 * 255.0)
}

/// Pixels within `r` of a set pixel of a `w`-wide map (a square reach).
pub fn near(map: &[u8], w: usize, r: usize) -> Vec<bool> {
    let h = map.len() / w;
    let mut rows = vec![false; map.len()];
    for y in 0..h {
        for x in 0..w {
            if map[y * w + x] > 0 {
                let (a, b) = (x.saturating_sub(r), (x + r + 1).min(w));
                rows[y * w + a..y * w + b]
                    .iter_mut()
                    .for_each(|v| *v = true);
            }
        }
    }
    let mut out = vec![false; map.len()];
    for y in 0..h {
        for x in 0..w {
            if rows[y * w + x] {
                for yy in y.saturating_sub(r)..(y + r + 1).min(h) {
                    out[yy * w + x] = true;
                }
            }
        }
    }
    out
}

/// The mean of `v` (0 for none).
pub fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

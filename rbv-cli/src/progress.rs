// SPDX-License-Identifier: MPL-2.0
//! What the command shows while it works: a bar on a terminal, plain
//! lines otherwise.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A progress display: a bar on a terminal, plain lines otherwise.
pub struct Progress {
    bar: Option<ProgressBar>,
    last_line: Option<(String, u64)>,
}

impl Progress {
    pub fn new() -> Progress {
        let bar = crate::noise::stderr_is_terminal().then(|| {
            // Drawn through stderr, in order with every other line (and
            // through its filter when that is in place).
            let bar = ProgressBar::with_draw_target(
                Some(100),
                ProgressDrawTarget::term_like_with_hz(Box::new(crate::noise::Terminal), 20),
            );
            bar.set_style(
                ProgressStyle::with_template("{spinner} {msg:44} [{bar:30}] {pos:>3}%")
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Progress {
            bar,
            last_line: None,
        }
    }

    pub fn show(&mut self, what: &str, percent: f64) {
        self.show_detail(what, "", percent);
    }

    /// [`Progress::show`] with a detail that changes within the phase
    /// (frames, rate, time left).
    pub fn show_detail(&mut self, what: &str, detail: &str, percent: f64) {
        let pos = percent.clamp(0.0, 100.0) as u64;
        match &self.bar {
            Some(bar) => {
                bar.set_message(if detail.is_empty() {
                    what.to_owned()
                } else {
                    detail.to_owned()
                });
                bar.set_position(pos);
            }
            None => {
                // Plain lines: one per change of phase or each 10 %.
                let step = pos / 10;
                if self.last_line.as_ref() != Some(&(what.to_owned(), step)) {
                    if detail.is_empty() {
                        eprintln!("{what}: {pos}%");
                    } else {
                        eprintln!("{what}: {pos}% ({detail})");
                    }
                    self.last_line = Some((what.to_owned(), step));
                }
            }
        }
    }

    /// A line of its own, above the bar on a terminal.
    pub fn note(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => eprintln!("{line}"),
        }
    }

    pub fn done(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.finish_with_message(line.to_owned()),
            None => eprintln!("{line}"),
        }
    }
}

/// A local job's progress: frames done of about how many, the rate, and
/// the time left, from the media position reached after `elapsed` seconds.
pub fn job_line(frames: u64, position: f64, duration: f64, elapsed: f64) -> String {
    let done = if duration > 0.0 {
        (position / duration).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let fps = frames as f64 / elapsed.max(1e-3);
    let mut line = if done > 0.0 {
        let total = (frames as f64 / done).round() as u64;
        format!("{frames}/~{total} frames, {fps:.1} fps")
    } else {
        format!("{frames} frames, {fps:.1} fps")
    };
    // A guess from the first percent is noise: none before it.
    if (0.01..1.0).contains(&done) {
        line.push_str(&format!(
            ", {} left",
            duration_text(elapsed * (1.0 - done) / done)
        ));
    }
    line
}

/// `12 s`, `3 min 05 s`, `1 h 02 min`.
pub fn duration_text(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {:02} s", s / 60, s % 60),
        _ => format!("{} h {:02} min", s / 3600, s % 3600 / 60),
    }
}

/// Bytes as the user reads a file size.
pub fn megabytes(bytes: u64) -> String {
    if bytes < 1_000_000 {
        format!("{:.0} kB", bytes as f64 / 1e3)
    } else {
        format!("{:.1} MB", bytes as f64 / 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_line_says_frames_rate_and_time_left() {
        // A quarter of an 8 s clip (50 of 200 frames) in 10 s.
        assert_eq!(
            job_line(50, 2.0, 8.0, 10.0),
            "50/~200 frames, 5.0 fps, 30 s left"
        );
        assert_eq!(job_line(10, 1.0, 400.0, 10.0), "10/~4000 frames, 1.0 fps");
        assert_eq!(job_line(0, 0.0, 0.0, 0.5), "0 frames, 0.0 fps");
        assert_eq!(job_line(200, 8.0, 8.0, 40.0), "200/~200 frames, 5.0 fps");
    }

    #[test]
    fn times_and_sizes_read_as_people_write_them() {
        assert_eq!(duration_text(12.4), "12 s");
        assert_eq!(duration_text(185.0), "3 min 05 s");
        assert_eq!(duration_text(3720.0), "1 h 02 min");
        assert_eq!(megabytes(4_200_000), "4.2 MB");
        assert_eq!(megabytes(48_000), "48 kB");
    }
}

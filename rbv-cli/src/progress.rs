// SPDX-License-Identifier: MPL-2.0
//! What the command shows while it works: a bar on a terminal, plain
//! lines otherwise.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// A progress display: a bar on a terminal, plain lines otherwise.
pub struct Progress {
    bar: Option<ProgressBar>,
    last_line: Option<(String, u64)>,
}

impl Progress {
    pub fn new() -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(100);
            bar.set_style(
                ProgressStyle::with_template("{spinner} {msg:30} [{bar:40}] {pos:>3}%")
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
        let pos = percent.clamp(0.0, 100.0) as u64;
        match &self.bar {
            Some(bar) => {
                bar.set_message(what.to_owned());
                bar.set_position(pos);
            }
            None => {
                // Plain lines: one per change of phase or each 10 %.
                let step = pos / 10;
                if self.last_line.as_ref() != Some(&(what.to_owned(), step)) {
                    eprintln!("{what}: {pos}%");
                    self.last_line = Some((what.to_owned(), step));
                }
            }
        }
    }

    pub fn done(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.finish_with_message(line.to_owned()),
            None => eprintln!("{line}"),
        }
    }
}

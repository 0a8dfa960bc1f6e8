// SPDX-License-Identifier: MPL-2.0
//! Third-party libraries' own prints hidden unless asked for (`-v`):
//! OpenH264's encoder writes `[OpenH264] ... cmInitParaError` to stderr on
//! every MP4 although the file is fine, and ONNX Runtime's logger writes
//! lines such as `[E:onnxruntime:, ...]` as the process ends. Both write
//! to the process's stderr themselves, so the filter sits there: stderr
//! (fd 2) becomes a pipe that a thread reads, passing every line on to the
//! real stderr except those libraries' own. What rbv writes (its lines,
//! the progress bar) goes through the same pipe, in order.

use std::io::{IsTerminal, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

/// Marks of the lines hidden: OpenH264's and ONNX Runtime's log lines.
const NOISE: [&str; 2] = ["[OpenH264]", ":onnxruntime:"];

/// Whether a line of stderr is one of the libraries' own.
pub fn is_noise(line: &[u8]) -> bool {
    let text = String::from_utf8_lossy(line);
    NOISE.iter().any(|m| text.contains(m))
}

/// The filter in place: the real stderr, and the thread that writes to it.
struct Installed {
    real: OwnedFd,
    reader: Mutex<Option<JoinHandle<()>>>,
}

static FILTER: OnceLock<Installed> = OnceLock::new();

/// Puts the filter in place (once; a failure leaves stderr as it was).
pub fn install() {
    if FILTER.get().is_some() {
        return;
    }
    // SAFETY: plain descriptor calls; every descriptor made is owned below.
    let (real, read) = unsafe {
        let real = libc::fcntl(2, libc::F_DUPFD_CLOEXEC, 3);
        if real < 0 {
            return;
        }
        let real = OwnedFd::from_raw_fd(real);
        let mut fds = [0; 2];
        if libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) != 0 {
            return;
        }
        let (read, write) = (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1]));
        if libc::dup2(write.as_raw_fd(), 2) < 0 {
            return;
        }
        (real, read)
    };
    let out = real.as_raw_fd();
    let reader = std::thread::Builder::new()
        .name("rbv-stderr".into())
        .spawn(move || pass_on(read, out))
        .ok();
    let _ = FILTER.set(Installed {
        real,
        reader: Mutex::new(reader),
    });
}

/// Whether what rbv writes to stderr reaches a terminal (the real stderr
/// when the filter is in place).
pub fn stderr_is_terminal() -> bool {
    match FILTER.get() {
        Some(f) => f.real.as_fd_is_terminal(),
        None => std::io::stderr().is_terminal(),
    }
}

/// The real stderr's width in columns, when it is a terminal.
pub fn terminal_width() -> Option<u16> {
    let fd = FILTER.get().map_or(2, |f| f.real.as_raw_fd());
    let mut size: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ fills the struct passed.
    let ok = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut size) } == 0;
    (ok && size.ws_col > 0).then_some(size.ws_col)
}

trait FdTerminal {
    fn as_fd_is_terminal(&self) -> bool;
}

impl FdTerminal for OwnedFd {
    fn as_fd_is_terminal(&self) -> bool {
        use std::os::fd::AsFd;
        self.as_fd().is_terminal()
    }
}

/// Puts stderr back and waits (briefly) until everything written before
/// has been passed on: what is written after (a library's lines as the
/// process ends) goes straight to the real stderr, so end the process
/// without running exit handlers.
pub fn finish() {
    let Some(f) = FILTER.get() else { return };
    // SAFETY: fd 2 becomes a copy of the real stderr; the pipe's last
    // write end closes with it, and the reader sees its end.
    unsafe {
        libc::dup2(f.real.as_raw_fd(), 2);
    }
    let reader = f.reader.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(reader) = reader {
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        while !reader.is_finished() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        if reader.is_finished() {
            let _ = reader.join();
        }
    }
}

/// Reads the pipe and writes each line that is not noise to `out`; a line
/// that does not end (a progress bar's redraw) is passed on after a pause
/// of 20 ms, unless what came of it so far is noise.
fn pass_on(read: OwnedFd, out: RawFd) {
    // SAFETY: `out` stays open for the process's life (FILTER holds it).
    let mut real = std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(out) });
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let waiting = !pending.is_empty();
        if waiting && !readable(&read, 20) {
            if !is_noise(&pending) {
                let _ = real.write_all(&pending);
            }
            pending.clear();
            continue;
        }
        // SAFETY: reads into the buffer given, within its length.
        let n = unsafe { libc::read(read.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        if n <= 0 {
            if !pending.is_empty() && !is_noise(&pending) {
                let _ = real.write_all(&pending);
            }
            return;
        }
        pending.extend_from_slice(&buf[..n as usize]);
        let mut kept = Vec::new();
        while let Some(i) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=i).collect();
            if !is_noise(&line) {
                kept.extend_from_slice(&line);
            }
        }
        if !kept.is_empty() {
            let _ = real.write_all(&kept);
        }
    }
}

/// Whether `fd` has something to read within `ms` milliseconds.
fn readable(fd: &OwnedFd, ms: i32) -> bool {
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one pollfd, as passed.
    unsafe { libc::poll(&mut p, 1, ms) > 0 }
}

/// A progress bar's terminal when the filter is in place: it draws through
/// stderr (in order with every other line) and takes the real stderr's
/// width.
#[derive(Debug)]
pub struct Terminal;

impl indicatif::TermLike for Terminal {
    fn width(&self) -> u16 {
        terminal_width().unwrap_or(80)
    }
    fn move_cursor_up(&self, n: usize) -> std::io::Result<()> {
        self.esc(n, 'A')
    }
    fn move_cursor_down(&self, n: usize) -> std::io::Result<()> {
        self.esc(n, 'B')
    }
    fn move_cursor_right(&self, n: usize) -> std::io::Result<()> {
        self.esc(n, 'C')
    }
    fn move_cursor_left(&self, n: usize) -> std::io::Result<()> {
        self.esc(n, 'D')
    }
    fn write_line(&self, s: &str) -> std::io::Result<()> {
        writeln!(std::io::stderr(), "{s}")
    }
    fn write_str(&self, s: &str) -> std::io::Result<()> {
        write!(std::io::stderr(), "{s}")
    }
    fn clear_line(&self) -> std::io::Result<()> {
        write!(std::io::stderr(), "\r\x1b[2K")
    }
    fn flush(&self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl Terminal {
    fn esc(&self, n: usize, code: char) -> std::io::Result<()> {
        match n {
            0 => Ok(()),
            n => write!(std::io::stderr(), "\x1b[{n}{code}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_libraries_lines_are_noise_and_rbvs_are_not() {
        assert!(is_noise(
            b"[OpenH264] this = 0x0x7f69c8017c80, Error:CWelsH264SVCEncoder::EncodeFrame(), cmInitParaError.\n"
        ));
        assert!(is_noise(
            b"\x1b[1;31m2026-12-07 23:42:08.200859020 [E:onnxruntime:, sequential_executor.cc:677 ExecuteKernel] Non-zero status code\x1b[m\n"
        ));
        assert!(!is_noise(
            b"wrote out.mov: 100 frames in 1.2 s (82.7 fps), 528 kB\n"
        ));
        assert!(!is_noise(
            b"rbv: in.mp4: cannot be read as a video or image\n"
        ));
    }
}

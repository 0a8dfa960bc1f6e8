// SPDX-License-Identifier: MPL-2.0
//! Outputs written whole or not at all: a job writes under a hidden name
//! beside its output (the same folder, so the last step is one rename on
//! one file system) and renames it over the output only once everything
//! succeeded. A failure, a timeout or a kill leaves the file that was at
//! the output path as it was. An output that is the input (the same file,
//! also through a symbolic or hard link) is refused before anything runs.

use std::path::{Path, PathBuf};

/// The hidden name beside `output` that a job of this process writes in
/// place of it, marked with `tag`: `.<name>.rbv-<tag>-<pid>.<ext>`. The
/// extension stays last (ffmpeg chooses its muxer by it); a `%` of a
/// pattern becomes `_` (the name may be a folder holding the pattern).
pub(crate) fn beside(output: &Path, tag: &str, ext: Option<&str>) -> PathBuf {
    let dir = output.parent().unwrap_or(Path::new(""));
    let stem = output
        .file_stem()
        .map(|s| s.to_string_lossy().replace('%', "_"))
        .unwrap_or_default();
    let ext = ext
        .map(str::to_owned)
        .or_else(|| output.extension().map(|e| e.to_string_lossy().into_owned()));
    let name = format!(".{stem}.rbv-{tag}-{}", std::process::id());
    dir.join(match ext {
        Some(e) => format!("{name}.{e}"),
        None => name,
    })
}

/// Why `output` cannot be written by a job that reads `input`; `pattern`:
/// the output is a `%d` pattern of frames, not one file.
pub(crate) fn check(input: &Path, output: &Path, pattern: bool) -> Result<(), String> {
    let shown = output.display();
    if output.as_os_str().is_empty() {
        return Err("the output path is empty".into());
    }
    let dir = match output.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(format!("{shown}: {} is not a folder", dir.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!(
                "{shown}: the folder {} does not exist",
                dir.display()
            ));
        }
        Err(e) => return Err(format!("{shown}: {}: {e}", dir.display())),
    }
    if pattern {
        return Ok(());
    }
    if std::fs::metadata(output).is_ok_and(|m| m.is_dir()) {
        return Err(format!(
            "{shown} is a folder: name the file to write, such as {}",
            output.join("cut.mov").display()
        ));
    }
    if same_file(input, output) {
        return Err(format!(
            "{shown} is the input file{}: writing it would destroy the input; name another output",
            if input == output {
                String::new()
            } else {
                format!(" ({})", input.display())
            }
        ));
    }
    Ok(())
}

/// Whether both paths name one file: the same device and inode once links
/// are followed (a symbolic link, a hard link, `./x` for `x`).
pub(crate) fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

/// What a job writes in place of its output until it is renamed over it.
pub(crate) struct Staged {
    output: PathBuf,
    /// A file, or for a pattern of frames a folder of them.
    pub(crate) temp: PathBuf,
    pattern: bool,
}

impl Staged {
    pub(crate) fn new(output: &Path, pattern: bool) -> Staged {
        Staged {
            output: output.to_path_buf(),
            temp: if pattern {
                beside(output, "partial", Some("d"))
            } else {
                beside(output, "partial", None)
            },
            pattern,
        }
    }

    /// Where the pipeline's sink writes: the temporary file, or the
    /// pattern inside the temporary folder (made here).
    pub(crate) fn location(&self) -> Result<PathBuf, String> {
        if !self.pattern {
            return Ok(self.temp.clone());
        }
        std::fs::create_dir_all(&self.temp).map_err(|e| format!("{}: {e}", self.temp.display()))?;
        let name = self.output.file_name().unwrap_or_default();
        Ok(self.temp.join(name))
    }

    /// The finished output moved into place: one rename for a file; for
    /// frames each file renamed into the output's folder once all are
    /// written.
    pub(crate) fn commit(&self) -> Result<(), String> {
        let fail = |e: std::io::Error| format!("{}: cannot be written: {e}", self.output.display());
        if !self.pattern {
            return std::fs::rename(&self.temp, &self.output).map_err(fail);
        }
        let dir = match self.output.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let mut frames: Vec<PathBuf> = std::fs::read_dir(&self.temp)
            .map_err(fail)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        frames.sort();
        for frame in frames {
            let name = frame.file_name().unwrap_or_default();
            std::fs::rename(&frame, dir.join(name)).map_err(fail)?;
        }
        std::fs::remove_dir(&self.temp).map_err(fail)
    }
}

/// Removes what jobs of processes that no longer run left beside `output`
/// (a kill leaves its hidden files: never the output itself).
pub(crate) fn sweep(output: &Path) {
    // Which processes run is read from /proc; without it nothing is swept.
    if !Path::new("/proc/self").exists() {
        return;
    }
    let dir = match output.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let stem = output
        .file_stem()
        .map(|s| s.to_string_lossy().replace('%', "_"))
        .unwrap_or_default();
    let prefix = format!(".{stem}.rbv-");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix(&prefix).and_then(left_by) else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let path = entry.path();
            let _ = match entry.file_type().is_ok_and(|t| t.is_dir()) {
                true => std::fs::remove_dir_all(&path),
                false => std::fs::remove_file(&path),
            };
        }
    }
}

/// The process id in `<tag>-<pid>[.<ext>]`.
fn left_by(rest: &str) -> Option<u32> {
    let (tag_pid, _) = rest.split_once('.').unwrap_or((rest, ""));
    let (tag, pid) = tag_pid.rsplit_once('-')?;
    (!tag.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
        .then(|| pid.parse().ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_names_beside_the_output_keep_its_extension() {
        let pid = std::process::id();
        assert_eq!(
            beside(Path::new("/a/b/cut.webm"), "partial", None),
            PathBuf::from(format!("/a/b/.cut.rbv-partial-{pid}.webm"))
        );
        assert_eq!(
            beside(Path::new("cut.webm"), "ffv1", Some("mkv")),
            PathBuf::from(format!(".cut.rbv-ffv1-{pid}.mkv"))
        );
        assert_eq!(
            beside(Path::new("o/f_%05d.png"), "partial", Some("d")),
            PathBuf::from(format!("o/.f__05d.rbv-partial-{pid}.d"))
        );
        assert_eq!(left_by(&format!("partial-{pid}.webm")), Some(pid));
        assert_eq!(left_by("frames-12"), Some(12));
        assert_eq!(left_by("partial-x.webm"), None);
        assert_eq!(left_by("-12"), None);
    }

    #[test]
    fn the_input_is_never_the_output() {
        let dir = std::env::temp_dir().join(format!("rbv-staging-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let input = dir.join("in.mov");
        std::fs::write(&input, b"video").unwrap();
        let symlink = dir.join("link.mov");
        std::os::unix::fs::symlink(&input, &symlink).unwrap();
        let hard = dir.join("hard.mov");
        std::fs::hard_link(&input, &hard).unwrap();
        let dotted = dir.join(".").join("in.mov");
        for same in [&input, &symlink, &hard, &dotted] {
            let e = check(&input, same, false).unwrap_err();
            assert!(e.contains("is the input file"), "{e}");
        }
        assert!(check(&input, &dir.join("out.mov"), false).is_ok());
        let e = check(&input, &dir, false).unwrap_err();
        assert!(e.contains("is a folder"), "{e}");
        let e = check(&input, &dir.join("nope/out.mov"), false).unwrap_err();
        assert!(e.contains("does not exist"), "{e}");
        assert_eq!(std::fs::read(&input).unwrap(), b"video");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn frames_are_renamed_into_place_and_dead_runs_swept() {
        let dir = std::env::temp_dir().join(format!("rbv-staging-f-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("f_%03d.png");
        let staged = Staged::new(&out, true);
        let loc = staged.location().unwrap();
        assert_eq!(loc.file_name().unwrap(), "f_%03d.png");
        for i in 0..3 {
            std::fs::write(staged.temp.join(format!("f_{i:03}.png")), [i]).unwrap();
        }
        staged.commit().unwrap();
        assert!(!staged.temp.exists());
        assert_eq!(std::fs::read(dir.join("f_002.png")).unwrap(), [2]);
        // What a killed run (a process that is gone) left is removed; what
        // a live one writes, and other files, are not.
        let dead = dir.join(".cut.rbv-partial-999999999.mov");
        let live = beside(&dir.join("cut.mov"), "partial", None);
        let other = dir.join(".cut.mov.swp");
        for f in [&dead, &live, &other] {
            std::fs::write(f, b"x").unwrap();
        }
        sweep(&dir.join("cut.mov"));
        assert!(!dead.exists() && live.exists() && other.exists());
        std::fs::remove_dir_all(&dir).ok();
    }
}

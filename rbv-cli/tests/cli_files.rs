// SPDX-License-Identifier: MPL-2.0
// The `rbv` command as a new user meets it: it never destroys a file (a
// failing, killed or aborted job leaves the output path as it was; the
// input is never the output, also through links), keeps the sound in sync
// and says before the work when a format cannot hold it, says which prompt
// terms it ignored, hides third-party libraries' own prints unless -v,
// lists every option in --help, and survives a closed pipe.

use rbv_testkit as common;
use rbv_testkit::av::{FRAME, decode_av, flash_and_beep};

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn rbv(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rbv"))
        .args(args)
        .env_remove("RBV_API_KEY")
        .output()
        .unwrap()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The hidden files jobs write beside their outputs, left in `dir`.
fn hidden(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".rbv-"))
        .collect()
}

#[test]
fn help_survives_a_closed_pipe_and_lists_every_option() {
    common::init();
    // stdout a pipe whose reader is gone before rbv writes (what `| head
    // -1` does once it has its line).
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    for arg in ["--help", "--version"] {
        let o = Command::new(env!("CARGO_BIN_EXE_rbv"))
            .arg(arg)
            .stdout(writer.try_clone().unwrap())
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "{arg}: {}", err(&o));
        assert!(!err(&o).contains("panicked"), "{arg}: {}", err(&o));
    }
    let o = Command::new("bash")
        .args(["-c", "set -o pipefail; \"$0\" --help | head -1"])
        .arg(env!("CARGO_BIN_EXE_rbv"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "usage:\n");

    // Every property of the element is an option in --help, or one that
    // rbv local refuses by name.
    let help = String::from_utf8_lossy(&rbv(&["--help"]).stdout).into_owned();
    let dir = common::scratch("cli-help");
    let clip = dir.join("clip.webm");
    common::short_clip("vtest.avi", 2, &clip);
    let out = dir.join("o.mkv");
    let (c, o) = (clip.to_str().unwrap(), out.to_str().unwrap());
    use gst::prelude::*;
    let element = gst::ElementFactory::make("rbvremove").build().unwrap();
    let mut listed = 0;
    for p in element.list_properties() {
        if p.owner_type() == gst::Object::static_type()
            || !p.flags().contains(gst::glib::ParamFlags::WRITABLE)
        {
            continue;
        }
        let name = p.name();
        if ["stats-interval", "qos", "backend", "video-url"].contains(&name) {
            let r = rbv(&["local", c, "-o", o, &format!("--{name}"), "1"]);
            assert_eq!(r.status.code(), Some(2), "--{name}: {}", err(&r));
            assert!(err(&r).contains("no such option"), "--{name}: {}", err(&r));
        } else {
            assert!(
                help.contains(&format!("--{name}")),
                "--{name} is not in --help"
            );
            listed += 1;
        }
    }
    assert!(listed >= 39, "{listed} options");
    for want in [
        "--detector true|false",
        "--mode sync|async",
        "--detector-confidence",
    ] {
        assert!(help.contains(want), "{want}");
    }
    // They work: the detector off, the async mode.
    let r = rbv(&[
        "local",
        c,
        "-o",
        o,
        "--detector",
        "false",
        "--mode",
        "async",
    ]);
    assert!(r.status.success(), "{}", err(&r));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_failing_or_killed_job_leaves_the_output_and_the_input_as_they_were() {
    common::init();
    let dir = common::scratch("cli-atomic");
    let clip = dir.join("clip.webm");
    common::short_clip("vtest.avi", 60, &clip);
    let c = clip.to_str().unwrap();
    let keep = dir.join("keep.mov");
    let before = b"an earlier output the user keeps".to_vec();
    std::fs::write(&keep, &before).unwrap();
    let k = keep.to_str().unwrap();
    let notes = dir.join("notes.txt");
    std::fs::write(&notes, "meeting notes, not a video\n".repeat(100)).unwrap();
    let empty = dir.join("no-models");
    std::fs::create_dir_all(&empty).unwrap();

    // Bad input, and no models.
    let o = rbv(&["local", notes.to_str().unwrap(), "-o", k]);
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    assert!(err(&o).contains("cannot be read as a video"), "{}", err(&o));
    assert_eq!(std::fs::read(&keep).unwrap(), before);
    let o = Command::new(env!("CARGO_BIN_EXE_rbv"))
        .args(["local", c, "-o", k])
        .env("RBV_MODEL_DIR", &empty)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    assert!(err(&o).contains("not found"), "{}", err(&o));
    assert_eq!(std::fs::read(&keep).unwrap(), before);
    let fresh = dir.join("x.mov");
    let o = Command::new(env!("CARGO_BIN_EXE_rbv"))
        .args(["local", c, "-o", fresh.to_str().unwrap()])
        .env("RBV_MODEL_DIR", &empty)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(!fresh.exists(), "a failed job left a file");
    assert_eq!(hidden(&dir), Vec::<String>::new());

    // The input as the output: refused, the input intact.
    let input = std::fs::read(&clip).unwrap();
    let link = dir.join("link.webm");
    std::os::unix::fs::symlink(&clip, &link).unwrap();
    let hard = dir.join("hard.webm");
    std::fs::hard_link(&clip, &hard).unwrap();
    for (i, o) in [
        (c, c),
        (link.to_str().unwrap(), c),
        (c, hard.to_str().unwrap()),
    ] {
        let r = rbv(&["local", i, "-o", o]);
        assert_eq!(r.status.code(), Some(2), "{i} -> {o}: {}", err(&r));
        assert!(err(&r).contains("is the input file"), "{}", err(&r));
    }
    assert_eq!(std::fs::read(&clip).unwrap(), input);
    // A folder as the output: said so.
    let r = rbv(&["local", c, "-o", dir.to_str().unwrap()]);
    assert_eq!(r.status.code(), Some(2));
    assert!(
        err(&r).contains("is a folder: -o names the file to write"),
        "{}",
        err(&r)
    );

    // Killed (SIGKILL) in the middle: nothing at the output path changes.
    for (out, existed) in [(&keep, true), (&fresh, false)] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_rbv"))
            .args(["local", c, "-o", out.to_str().unwrap(), "--model", "light"])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let first = lines
            .by_ref()
            .map_while(Result::ok)
            .find(|l| l.contains("frames"));
        assert!(first.is_some(), "no progress line");
        child.kill().unwrap();
        child.wait().unwrap();
        match existed {
            true => assert_eq!(std::fs::read(out).unwrap(), before, "killed: changed"),
            false => assert!(!out.exists(), "killed: a partial file at the output"),
        }
    }
    // What the killed runs left beside the outputs is theirs, hidden; the
    // next run to an output sweeps it.
    assert_eq!(hidden(&dir).len(), 2, "{:?}", hidden(&dir));
    let o = rbv(&["local", c, "-o", k]);
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(hidden(&dir).len(), 1, "{:?}", hidden(&dir));
    assert_eq!(decode_av(&keep).frames, 60);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_double_ctrl_c_says_one_true_thing() {
    common::init();
    let dir = common::scratch("cli-ctrl-c-twice");
    let clip = dir.join("clip.webm");
    common::short_clip("vtest.avi", 60, &clip);
    let out = dir.join("cut.mov");
    let before = b"yesterday's cut".to_vec();
    std::fs::write(&out, &before).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_rbv"))
        .args(["local", clip.to_str().unwrap(), "-o", out.to_str().unwrap()])
        .args(["--model", "original"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut text = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        text.push_str(&line);
        text.push('\n');
        if line.contains("frames") {
            break;
        }
    }
    let int = || {
        Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap()
    };
    assert!(int().success());
    std::thread::sleep(std::time::Duration::from_millis(50));
    assert!(int().success());
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{text}{rest:?}");
    let said: Vec<&String> = rest.iter().filter(|l| !l.trim().is_empty()).collect();
    let stop = said
        .iter()
        .position(|l| l.starts_with("rbv: stopping"))
        .unwrap();
    assert_eq!(
        said[stop + 1..],
        [&format!(
            "rbv: aborted: nothing written ({} is as it was)",
            out.display()
        )],
        "{text}{rest:?}"
    );
    assert_eq!(std::fs::read(&out).unwrap(), before);
    assert_eq!(hidden(&dir), Vec::<String>::new());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn sound_and_ignored_terms_are_said_and_library_noise_hidden() {
    common::init();
    let dir = common::scratch("cli-sound");
    let input = dir.join("talk.mp4");
    // 3 s, the flash and the beep at 2.0 s.
    flash_and_beep(&input, 3, 50);
    let i = input.to_str().unwrap();
    let mp4 = dir.join("out.mp4");
    let m = mp4.to_str().unwrap();

    // MP4 (AAC): the sound kept in sync; OpenH264's own line hidden, shown
    // with -v.
    let o = rbv(&["local", i, "-o", m, "--background", "blur"]);
    assert!(o.status.success(), "{}", err(&o));
    assert!(!err(&o).contains("OpenH264"), "{}", err(&o));
    assert!(err(&o).contains(", with the input's sound"), "{}", err(&o));
    let d = decode_av(&mp4);
    eprintln!("rbv local -o out.mp4: {d:?}");
    let (f, b) = (d.flash.unwrap(), d.beep.unwrap());
    assert!(
        (d.sound_seconds() - d.picture_seconds()).abs() <= FRAME,
        "{d:?}"
    );
    assert!((b - f).abs() <= FRAME, "{d:?}");
    let o = rbv(&["local", i, "-o", m, "--background", "blur", "-v"]);
    assert!(o.status.success(), "{}", err(&o));
    assert!(err(&o).contains("[OpenH264]"), "-v shows it: {}", err(&o));

    // A GIF holds no sound: said before the work.
    let o = rbv(&["local", i, "-o", dir.join("out.gif").to_str().unwrap()]);
    assert!(o.status.success(), "{}", err(&o));
    let e = err(&o);
    let said = e.find("which holds no sound: the input's sound is left out");
    let work = e.find("removing the background");
    assert!(said.is_some() && said < work, "{e}");
    assert!(!e.contains("with the input's sound"), "{e}");

    // Prompt terms that name nothing are said; "and" splits terms.
    let mov = dir.join("out.mov");
    let v = mov.to_str().unwrap();
    let o = rbv(&["local", i, "-o", v, "--text-prompt", "flurbish zorp"]);
    assert!(o.status.success(), "{}", err(&o));
    assert!(
        err(&o).contains("rbv: warning: text-prompt: 'flurbish zorp' name no class"),
        "{}",
        err(&o)
    );
    let o = rbv(&["local", i, "-o", v, "--text-prompt", "people and bus"]);
    assert!(o.status.success(), "{}", err(&o));
    assert!(!err(&o).contains("warning"), "{}", err(&o));
    std::fs::remove_dir_all(&dir).ok();
}

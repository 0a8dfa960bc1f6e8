// SPDX-License-Identifier: MPL-2.0
// The application examples, run as users run them: the Rust app
// (examples/app.rs) and the Python app (examples/python/app.py) against the
// plugin installed by setup/install.sh, with no GST_PLUGIN_PATH.

use rbv_testkit as common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;

/// What an app run must show: the live changes, statistics messages with
/// sane figures, and a complete output file.
fn check_app_run(what: &str, out: &Output, output: &Path, frames: usize) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{what}: {}\n{stdout}\n{stderr}",
        out.status
    );
    assert!(
        stdout.contains("background-color -> #00B140"),
        "{what}:\n{stdout}"
    );
    assert!(
        stdout.contains("composition -> bottom-right"),
        "{what}:\n{stdout}"
    );
    let stats: Vec<&str> = stdout.lines().filter(|l| l.contains("rbv-stats")).collect();
    assert!(!stats.is_empty(), "{what}: no rbv-stats message:\n{stdout}");
    for line in &stats {
        // e.g. "app: rbv-stats frames=12 fps=46.4 inference p50=2.48 ms p95=7.15 ms mask-age=0 ..."
        let field = |k: &str| -> f64 {
            let v = line
                .split(&format!("{k}="))
                .nth(1)
                .unwrap_or_else(|| panic!("{k} in {line}"));
            v.split_whitespace().next().unwrap().parse().unwrap()
        };
        assert!(
            field("frames") >= 1.0 && field("frames") <= frames as f64,
            "{line}"
        );
        assert!(field("fps") > 0.0, "{line}");
        assert!(field("p50") > 0.0 && field("p50") <= field("p95"), "{line}");
        assert_eq!(field("mask-age"), 0.0, "{line}");
        assert!(line.contains("provider=cpu"), "{line}");
    }
    let (n, w, h, _) = decode_rgb(output);
    assert_eq!((n, w, h), (frames, 1280, 720), "{what}: output");
}

fn clip(dir: &Path) -> PathBuf {
    let clip = dir.join("clip.webm");
    short_clip("demo_input.webm", 40, &clip);
    clip
}

#[test]
fn rust_app_changes_settings_live_and_reads_statistics() {
    init();
    let dir = scratch("rust-app");
    let clip = clip(&dir);
    let output = dir.join("out.webm");
    // cargo test builds the examples into target/<profile>/examples.
    let app = plugin_dir().join("examples").join("app");
    let app = if app.is_file() {
        app
    } else {
        plugin_dir().parent().unwrap().join("examples").join("app")
    };
    let out = Command::new(&app)
        .args([&clip, &output])
        .env("GST_PLUGIN_PATH", plugin_dir())
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", app.display()));
    check_app_run("rust app", &out, &output, 40);
    // Bad input: an error message, a non-zero exit, no hang.
    let out = Command::new(&app)
        .args([Path::new("/nonexistent/in.webm"), &output])
        .env("GST_PLUGIN_PATH", plugin_dir())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/nonexistent/in.webm"), "{stderr}");
    std::fs::remove_dir_all(&dir).ok();
}

/// A Python that has PyGObject (Debian's python3-gi lives in /usr/bin/python3's path).
fn python_with_gi() -> PathBuf {
    for p in ["python3", "/usr/bin/python3"] {
        let ok = Command::new(p)
            .args(["-c", "import gi; gi.require_version('Gst', '1.0')"])
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return PathBuf::from(p);
        }
    }
    panic!("no Python with PyGObject: run setup/setup.sh (installs python3-gi)");
}

#[test]
fn python_app_runs_against_the_installed_plugin() {
    init();
    let dir = scratch("python-app");
    let clip = clip(&dir);
    let output = dir.join("out.webm");
    let repo = common::repo();
    // Installed into a scratch user data directory (so the test leaves the
    // machine as it was); GStreamer looks there by itself.
    let data_home = dir.join("share");
    let bin_home = dir.join("bin");
    // The command rides along: any executable stands in for it here (this
    // crate's tests do not build rbv-cli); rbv-cli's tests run the real one.
    let command = dir.join("rbv-stand-in");
    std::fs::write(&command, "#!/bin/sh\necho rbv\n").unwrap();
    let install = |arg: &str| {
        let status = Command::new("bash")
            .arg(repo.join("setup/install.sh"))
            .arg(arg)
            .env("XDG_DATA_HOME", &data_home)
            .env("XDG_BIN_HOME", &bin_home)
            .env("RBV_PLUGIN_LIB", plugin_dir().join("libgstrbv.so"))
            .env("RBV_BIN", &command)
            .env_remove("GST_PLUGIN_PATH")
            .status()
            .unwrap();
        assert!(status.success(), "install.sh {arg}: {status}");
    };
    install("--no-setup");
    let installed = data_home.join("gstreamer-1.0/plugins/libgstrbv.so");
    assert!(installed.is_file());
    let installed_command = bin_home.join("rbv");
    assert!(installed_command.is_file());

    let out = Command::new(python_with_gi())
        .arg(repo.join("examples/python/app.py"))
        .args([&clip, &output])
        .current_dir(&dir)
        .env("XDG_DATA_HOME", &data_home)
        .env_remove("GST_PLUGIN_PATH")
        .output()
        .unwrap();
    check_app_run("python app", &out, &output, 40);

    install("--uninstall");
    assert!(!installed.exists());
    assert!(!installed_command.exists());
    // Without the plugin the app says so and fails.
    let out = Command::new(python_with_gi())
        .arg(repo.join("examples/python/app.py"))
        .args([&clip, &output])
        .env("XDG_DATA_HOME", &data_home)
        .env_remove("GST_PLUGIN_PATH")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("rbvremove not found"));
    std::fs::remove_dir_all(&dir).ok();
}

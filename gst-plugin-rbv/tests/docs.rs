// SPDX-License-Identifier: MPL-2.0
// The reference pages in docs/ stay in step with the element: every property
// is documented with its default, and the rbv-stats fields the element
// really posts are the ones the message page and gst-inspect describe.

use rbv_testkit as common;

use common::*;
use gst::prelude::*;

fn read(path: &str) -> String {
    std::fs::read_to_string(common::repo().join(path)).unwrap()
}

#[test]
fn every_property_is_documented() {
    init();
    let page = read("docs/elements/rbvremove.md");
    let readme = read("README.md");
    let el = gst::ElementFactory::make("rbvremove").build().unwrap();
    for pspec in el.list_properties() {
        if pspec.owner_type() == gst::Object::static_type() {
            continue; // name, parent
        }
        let name = pspec.name();
        let row = page
            .lines()
            .find(|l| l.starts_with(&format!("| `{name}` |")))
            .unwrap_or_else(|| panic!("{name} missing from docs/elements/rbvremove.md"));
        assert!(
            readme.contains(&format!("`{name}`")),
            "{name} missing from README"
        );
        assert!(
            !pspec.blurb().unwrap_or("").is_empty(),
            "{name} has no blurb"
        );
        // The documented default is what a new element really has (for
        // numbers, enums and strings; composition reads back as JSON).
        if name == "composition" {
            continue;
        }
        let value = el.property_value(name);
        let default = &value;
        let shown = if let Ok(v) = default.get::<u32>() {
            v.to_string()
        } else if let Ok(v) = default.get::<i32>() {
            v.to_string()
        } else if let Ok(v) = default.get::<f64>() {
            v.to_string()
        } else if let Ok(v) = default.get::<bool>() {
            v.to_string()
        } else if let Ok(Some(v)) = default.get::<Option<String>>() {
            v
        } else if let Some(v) =
            gst::glib::EnumValue::from_value(default).map(|(_, v)| v.nick().to_string())
        {
            v
        } else {
            continue;
        };
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        assert!(
            cells.iter().any(|c| c.trim_matches('`') == shown),
            "{name}: default {shown} not in its row: {row}"
        );
    }
}

#[test]
fn stats_message_fields_match_the_docs() {
    init();
    let page = read("docs/messages/rbv-stats.md");
    let pipeline = launch(
        "videotestsrc num-buffers=30 ! video/x-raw,width=320,height=240 ! \
         rbvremove stats-interval=1 ! fakesink sync=false",
    );
    pipeline.set_state(gst::State::Playing).unwrap();
    let bus = pipeline.bus().unwrap();
    let mut stats = Vec::new();
    while let Some(msg) = bus.timed_pop_filtered(
        gst::ClockTime::from_seconds(30),
        &[
            gst::MessageType::Element,
            gst::MessageType::Eos,
            gst::MessageType::Error,
        ],
    ) {
        match msg.view() {
            gst::MessageView::Element(e) => {
                let s = e.structure().unwrap();
                if s.name() == "rbv-stats" {
                    stats.push(s.to_owned());
                }
            }
            gst::MessageView::Error(e) => panic!("{}", e.error()),
            _ => break,
        }
    }
    pipeline.set_state(gst::State::Null).unwrap();
    assert!(
        stats.len() >= 2,
        "{} rbv-stats messages for 30 frames",
        stats.len()
    );
    let el = gst::ElementFactory::make("rbvremove").build().unwrap();
    let blurb = el
        .find_property("stats-interval")
        .unwrap()
        .blurb()
        .unwrap()
        .to_string();
    let last = stats.last().unwrap();
    for (field, _) in last.iter() {
        assert!(
            page.contains(&format!("`{field}`")),
            "{field} not in the message page"
        );
        let short = field
            .trim_end_matches("-ms")
            .trim_end_matches("-p50")
            .trim_end_matches("-p95");
        assert!(
            blurb.contains(short),
            "{field} not in the stats-interval blurb"
        );
    }
    // The counts add up and the figures are sane.
    let total: u32 = stats
        .iter()
        .map(|s| s.get::<u32>("window-frames").unwrap())
        .sum();
    assert!(u64::from(total) <= last.get::<u64>("frames").unwrap());
    assert!(last.get::<u64>("frames").unwrap() <= 30);
    for s in &stats {
        let p50 = s.get::<f64>("inference-p50-ms").unwrap();
        let p95 = s.get::<f64>("inference-p95-ms").unwrap();
        assert!(p50 > 0.0 && p50 <= p95, "{s}");
        assert!(s.get::<f64>("process-p50-ms").unwrap() >= p50 * 0.5, "{s}");
        assert_eq!(s.get::<&str>("execution-provider").unwrap(), "cpu");
    }
}

/// The numbers in a markdown table cell that are figures: digits outside
/// backticks (a backticked `model=human smoothing=0.5` is a setting, not a
/// result). Signs are dropped (a range `5.4-6.1` is two figures).
fn cell_figures(cell: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut code = false;
    let mut current = String::new();
    let flush = |current: &mut String, out: &mut Vec<String>| {
        let s = current.trim_end_matches('.');
        if !s.is_empty() {
            out.push(s.to_string());
        }
        current.clear();
    };
    for c in cell.chars() {
        if c == '`' {
            code = !code;
            flush(&mut current, &mut out);
        } else if !code && (c.is_ascii_digit() || (c == '.' && !current.is_empty())) {
            current.push(c);
        } else {
            flush(&mut current, &mut out);
        }
    }
    flush(&mut current, &mut out);
    out
}

/// Every number in a text (JSON, a bench's printed table), as parsed values
/// with the decimals they were written with.
fn source_numbers(text: &str) -> Vec<(f64, usize)> {
    cell_figures(&text.replace('`', " "))
        .iter()
        .filter_map(|t| {
            let decimals = t.split_once('.').map_or(0, |(_, d)| d.len());
            t.parse().ok().map(|v| (v, decimals))
        })
        .collect()
}

/// A figure as the README writes it is in a source when some number there,
/// written with at least as many decimals, rounds to it.
fn traced(figure: &str, numbers: &[(f64, usize)]) -> bool {
    let decimals = figure.split_once('.').map_or(0, |(_, d)| d.len());
    numbers
        .iter()
        .any(|&(v, d)| d >= decimals && format!("{v:.decimals$}") == figure)
}

/// Checks every table of a markdown text: the line above it (blank lines
/// apart) must be `<!-- figures: PATH [PATH...] -->`, naming the committed
/// output the figures come from, or `<!-- figures: none ... -->` for a table
/// of settings and facts. Returns one line per figure no named output has.
fn untraced_figures(markdown: &str, read: &dyn Fn(&str) -> Option<String>) -> Vec<String> {
    let lines: Vec<&str> = markdown.lines().collect();
    let mut problems = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if !lines[i].starts_with('|') {
            i += 1;
            continue;
        }
        let start = i;
        while i < lines.len() && lines[i].starts_with('|') {
            i += 1;
        }
        let marker = lines[..start]
            .iter()
            .rev()
            .find(|l| !l.trim().is_empty())
            .map(|l| l.trim())
            .and_then(|l| l.strip_prefix("<!-- figures:"))
            .and_then(|l| l.strip_suffix("-->"))
            .map(str::trim);
        let Some(marker) = marker else {
            problems.push(format!(
                "line {}: a table without a `<!-- figures: ... -->` line above it",
                start + 1
            ));
            continue;
        };
        if marker.starts_with("none") {
            continue;
        }
        let mut numbers = Vec::new();
        for path in marker.split_whitespace() {
            match read(path) {
                Some(text) => numbers.extend(source_numbers(&text)),
                None => problems.push(format!("line {}: {path} cannot be read", start + 1)),
            }
        }
        // The header row and the |---| row name columns; the rest are figures.
        for (n, row) in lines[start..i].iter().enumerate().skip(2) {
            for figure in row.split('|').flat_map(cell_figures) {
                if !traced(&figure, &numbers) {
                    problems.push(format!(
                        "line {}: {figure} is in none of {marker}",
                        start + n + 1
                    ));
                }
            }
        }
    }
    problems
}

#[test]
fn the_figures_check_catches_a_number_no_output_has() {
    let out = "model=human  0.874  313.19 fps  3.1929 ms  (4.33 CPU ms)\n";
    let read = |p: &str| (p == "out.txt").then(|| out.to_string());
    let good = "<!-- figures: out.txt -->\n\n| run | IoU | fps |\n|---|---|---|\n\
                | `model=human smoothing=0.5` | 0.874 | **313 fps** (3.19 ms, 4.3 CPU ms) |\n";
    assert_eq!(untraced_figures(good, &read), Vec::<String>::new());
    // A figure typed by hand, one rounded wrongly, more decimals than measured.
    for (from, to, figure) in [
        ("| 0.874 |", "| 0.875 |", "0.875"),
        ("**313 fps**", "**314 fps**", "314"),
        ("3.19 ms", "3.19290 ms", "3.19290"),
    ] {
        let problems = untraced_figures(&good.replace(from, to), &read);
        assert!(
            problems.iter().any(|p| p.contains(figure)),
            "{figure} passed: {problems:?}"
        );
    }
    let unmarked = good.replace("<!-- figures: out.txt -->", "Some prose.");
    assert!(untraced_figures(&unmarked, &read)[0].contains("without"));
    let missing = good.replace("out.txt", "gone.txt");
    assert!(untraced_figures(&missing, &read)[0].contains("cannot be read"));
    let spec = good.replace("out.txt", "none, settings");
    assert!(untraced_figures(&spec, &read).is_empty());
}

/// Every figure in the README's tables comes from a bench output committed
/// under docs/bench/ (`benches/figures.sh` writes them all).
#[test]
fn readme_table_figures_are_in_the_committed_bench_output() {
    let readme = read("README.md");
    let problems = untraced_figures(&readme, &|path| {
        std::fs::read_to_string(common::repo().join(path)).ok()
    });
    assert!(
        problems.is_empty(),
        "README figures that no committed output has ({}):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn the_plugin_names_its_project_page_as_origin() {
    init();
    let plugin = gst::Registry::get()
        .find_plugin("rbv")
        .expect("the rbv plugin is registered");
    // What gst-inspect-1.0 shows as "Origin URL": the crate's repository
    // field, a page of the project (it was a placeholder, example.invalid).
    assert_eq!(plugin.origin().as_str(), env!("CARGO_PKG_REPOSITORY"));
    assert_eq!(plugin.origin().as_str(), "https://github.com/rbv-video/rbv");
}

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

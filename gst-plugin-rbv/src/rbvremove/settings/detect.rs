// SPDX-License-Identifier: MPL-2.0
//! The detector's properties (`detector`, `detector-confidence`,
//! `detector-interval`, `detector-size`) and what `text-prompt` selects
//! with it.

use std::sync::Arc;

use gst::glib;
use gst::prelude::*;
use rbv_core::prompt::{self, Selection};

use super::CHECKED;

pub const DEFAULT_DETECTOR: bool = true;
/// YOLOv5's own default.
pub const DEFAULT_CONFIDENCE: f64 = 0.25;
/// The least number of frames between motion-started detections, and an
/// eighth of the refresh period (measured: see the README's quality and fps
/// tables).
pub const DEFAULT_INTERVAL: u32 = 15;
/// The detector input's longer side (measured against 256-512: see the
/// README's detector-size table; smaller sizes lose medium people).
pub const DEFAULT_SIZE: u32 = 640;

/// The detector's settings.
#[derive(Debug, Clone)]
pub struct DetectSettings {
    pub enabled: bool,
    pub confidence: f64,
    pub interval: u32,
    /// The detector input's longer side, pixels.
    pub size: u32,
    /// What `text-prompt` asks for (people when unset).
    pub selection: Arc<Selection>,
}

impl Default for DetectSettings {
    fn default() -> Self {
        DetectSettings {
            enabled: DEFAULT_DETECTOR,
            confidence: DEFAULT_CONFIDENCE,
            interval: DEFAULT_INTERVAL,
            size: DEFAULT_SIZE,
            selection: Arc::new(prompt::select(None)),
        }
    }
}

/// What the frame path reads of them, per frame.
#[derive(Debug, Clone)]
pub struct DetectLook {
    pub selection: Arc<Selection>,
    pub confidence: f32,
    pub interval: u32,
}

impl DetectSettings {
    pub fn look(&self) -> DetectLook {
        DetectLook {
            selection: self.selection.clone(),
            confidence: self.confidence as f32,
            interval: self.interval.max(1),
        }
    }

    /// `text-prompt` changed.
    pub fn prompt(&mut self, prompt: Option<&str>) {
        self.selection = Arc::new(prompt::select(prompt));
    }

    /// Whether `name` is one of these properties.
    pub fn owns(name: &str) -> bool {
        matches!(
            name,
            "detector" | "detector-confidence" | "detector-interval" | "detector-size"
        )
    }

    pub fn set(&mut self, name: &str, value: &glib::Value) {
        match name {
            "detector" => self.enabled = value.get().expect(CHECKED),
            "detector-confidence" => self.confidence = value.get().expect(CHECKED),
            "detector-interval" => self.interval = value.get().expect(CHECKED),
            "detector-size" => self.size = value.get().expect(CHECKED),
            _ => unreachable!("not a detector property: {name}"),
        }
    }

    pub fn get(&self, name: &str) -> glib::Value {
        match name {
            "detector" => self.enabled.to_value(),
            "detector-confidence" => self.confidence.to_value(),
            "detector-interval" => self.interval.to_value(),
            "detector-size" => self.size.to_value(),
            _ => unreachable!("not a detector property: {name}"),
        }
    }
}

pub fn detector_property() -> glib::ParamSpec {
    glib::ParamSpecBoolean::builder("detector")
        .nick("Detector")
        .blurb(
            "Run the class-aware detector (YOLOv5s-seg, COCO's 80 classes) that says \
             what to keep: text-prompt's classes, people when unset (with what they wear \
             or hold: a tie, a bag, a phone); the model's soft alpha is kept only in and \
             around them. It runs on its own thread beside the frames (see \
             detector-interval). false: the model alone, as before (human keeps people, \
             light/original/pro whatever stands out). Needs READY",
        )
        .default_value(DEFAULT_DETECTOR)
        .mutable_ready()
        .build()
}

pub fn confidence_property() -> glib::ParamSpec {
    glib::ParamSpecDouble::builder("detector-confidence")
        .nick("Detector confidence")
        .blurb(
            "Lowest detection score (objectness x class score) a region needs: lower \
             finds more (and more false ones), higher fewer",
        )
        .minimum(0.01)
        .maximum(0.99)
        .default_value(DEFAULT_CONFIDENCE)
        .mutable_playing()
        .build()
}

pub fn interval_property() -> glib::ParamSpec {
    glib::ParamSpecUInt::builder("detector-interval")
        .nick("Detector interval")
        .blurb(
            "The least number of frames between detections started because the picture \
             moved far from every region (someone coming in); a refresh every 8 times \
             that on the stream's timeline; and one on the first frame after a start, \
             flush, discontinuity or new prompt. The detector runs on its own thread \
             beside the frames: mode=sync applies each detection a fixed number of frames \
             after its own (the output depends on the input alone; a frame waits only when \
             the detector is later than that); live sources and mode=async never wait. \
             Between detections the regions stay put and reach into what moved",
        )
        .minimum(1)
        .maximum(10_000)
        .default_value(DEFAULT_INTERVAL)
        .mutable_playing()
        .build()
}

pub fn size_property() -> glib::ParamSpec {
    glib::ParamSpecUInt::builder("detector-size")
        .nick("Detector input size")
        .blurb(
            "The detector sees the frame scaled to this many pixels on its longer side \
             (rounded down to a multiple of 32; the other side padded to one): smaller is \
             faster (about quadratically) and misses small people sooner. Needs READY",
        )
        .minimum(64)
        .maximum(1920)
        .default_value(DEFAULT_SIZE)
        .mutable_ready()
        .build()
}

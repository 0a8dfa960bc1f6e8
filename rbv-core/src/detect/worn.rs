// SPDX-License-Identifier: MPL-2.0
//! What a person wears or holds is part of the person: a user who asks for
//! people wants the tie, the bag on the shoulder, the phone in the hand.
//! The detector's person masks leave such things out (a tie is a hole in
//! the person's mask), so with people asked for, the detector also looks
//! for COCO's worn and held things, and keeps those that sit on a person
//! it found: their regions then keep the matting model's alpha as a
//! person's do. A thing on no person (a bag on the floor) is dropped unless
//! its class was asked for itself.

use super::{Detection, NUM_CLASSES, PERSON};

/// COCO's classes a person wears or holds: backpack, umbrella, handbag,
/// tie, suitcase, frisbee, skis, snowboard, sports ball, baseball bat,
/// baseball glove, skateboard, surfboard, tennis racket, bottle, wine
/// glass, cup, remote, cell phone, book, scissors, teddy bear, hair drier,
/// toothbrush.
pub const WORN_OR_HELD: [usize; 24] = [
    24, 25, 26, 27, 28, 29, 30, 31, 32, 34, 35, 36, 37, 38, 39, 40, 41, 65, 67, 73, 76, 77, 78, 79,
];

/// A thing sits on a person when at least this share of its box lies in
/// the person's box.
const ON_PERSON: f32 = 0.5;

/// The classes to run the detector for: those asked, and with people the
/// things they wear or hold.
pub fn widened(asked: &[bool; NUM_CLASSES]) -> [bool; NUM_CLASSES] {
    let mut wanted = *asked;
    if asked[PERSON] {
        for c in WORN_OR_HELD {
            wanted[c] = true;
        }
    }
    wanted
}

fn area(b: &[f32; 4]) -> f32 {
    (b[2] - b[0]).max(0.0) * (b[3] - b[1]).max(0.0)
}

fn overlap(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    w * h
}

/// Keeps the detections of `asked` classes and the worn or held things
/// on an asked person; drops the rest. Answers, per kept detection, whether
/// it was kept as part of a person.
pub fn attach(list: &mut Vec<Detection>, asked: &[bool; NUM_CLASSES]) -> Vec<bool> {
    let people: Vec<[f32; 4]> = if asked[PERSON] {
        list.iter()
            .filter(|d| d.class == PERSON)
            .map(|d| d.bbox)
            .collect()
    } else {
        Vec::new()
    };
    let on_person = |d: &Detection| {
        WORN_OR_HELD.contains(&d.class)
            && area(&d.bbox) > 0.0
            && people
                .iter()
                .any(|p| overlap(&d.bbox, p) >= ON_PERSON * area(&d.bbox))
    };
    let mut attached = Vec::with_capacity(list.len());
    list.retain(|d| {
        let worn = on_person(d);
        let keep = worn || asked.get(d.class).copied().unwrap_or(false);
        if keep {
            attached.push(worn);
        }
        keep
    });
    attached
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::NUM_COEFS;

    fn det(class: usize, bbox: [f32; 4]) -> Detection {
        Detection {
            class,
            score: 0.9,
            bbox,
            bbox_input: bbox,
            coefs: [0.0; NUM_COEFS],
        }
    }

    #[test]
    fn things_on_a_person_stay_with_them() {
        const TIE: usize = 27;
        const HANDBAG: usize = 26;
        const CHAIR: usize = 56;
        let mut people = [false; NUM_CLASSES];
        people[PERSON] = true;
        let w = widened(&people);
        assert!(w[PERSON] && w[TIE] && w[HANDBAG] && !w[CHAIR]);
        let mut chairs = [false; NUM_CLASSES];
        chairs[CHAIR] = true;
        assert_eq!(widened(&chairs), chairs, "no people asked: nothing added");

        let found = || {
            vec![
                det(PERSON, [100.0, 0.0, 200.0, 300.0]),
                det(TIE, [140.0, 80.0, 160.0, 180.0]),
                // Half in the person's box: on them (held at the side).
                det(HANDBAG, [180.0, 150.0, 220.0, 200.0]),
                // On the floor, far away.
                det(HANDBAG, [400.0, 250.0, 450.0, 300.0]),
                det(CHAIR, [0.0, 0.0, 50.0, 50.0]),
            ]
        };
        let mut list = found();
        let attached = attach(&mut list, &people);
        assert_eq!(
            list.iter().map(|d| d.class).collect::<Vec<_>>(),
            [PERSON, TIE, HANDBAG]
        );
        assert_eq!(attached, [false, true, true]);
        assert_eq!(list[2].bbox[0], 180.0, "the bag on the person");
        // A bag asked for itself is kept wherever it is.
        let mut bags = people;
        bags[HANDBAG] = true;
        let mut list = found();
        let attached = attach(&mut list, &bags);
        assert_eq!(list.len(), 4);
        assert_eq!(attached, [false, true, true, false]);
        // Without people asked, a tie on a person is no reason to keep it.
        let mut list = found();
        assert_eq!(attach(&mut list, &chairs), [false]);
        assert_eq!(list[0].class, CHAIR);
    }
}

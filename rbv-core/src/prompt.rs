// SPDX-License-Identifier: MPL-2.0
//! Text prompts with local models. The hosted service's `pro` model takes a
//! prompt ("person, clothing accessories, glowing ring") that says what to
//! keep. Locally the detector ([`crate::detect`]) makes it work for COCO's
//! 80 classes: [`select`] maps each term (split on commas, `&`, `+`, "and"
//! and "with"), with the synonyms
//! and groups users type ("people", "puppy", "clothing accessories"), to
//! classes, and names the terms that map to none; no prompt keeps people.
//!
//! Without the detector the matting models take no prompt: the selfie
//! models keep people, the salient-object models the main subject, and
//! [`unmatched`] names the terms they cannot honour (never silently
//! dropped).

/// What a local model keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keeps {
    /// People (MediaPipe selfie segmentation).
    People,
    /// The salient foreground, people or things (u2net, u2netp, ISNet).
    SalientSubject,
}

const PEOPLE: &[&str] = &[
    "person",
    "people",
    "human",
    "man",
    "woman",
    "boy",
    "girl",
    "child",
    "kid",
    "face",
    "head",
    "hair",
    "body",
    "portrait",
    "presenter",
    "speaker",
    "selfie",
    "user",
    "foreground",
    "subject",
    "me",
];

const SUBJECT: &[&str] = &[
    "object",
    "main object",
    "salient object",
    "product",
    "thing",
    "item",
    "animal",
    "pet",
    "foreground object",
    "main subject",
];

/// A term in a canonical form: lower case, single spaces, simple plurals
/// made singular (people stays people).
fn canonical(term: &str) -> String {
    let t = term
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase();
    match t.as_str() {
        "men" => "man".into(),
        "women" => "woman".into(),
        "children" => "child".into(),
        "persons" => "person".into(),
        _ => t
            .strip_suffix('s')
            .filter(|s| s.len() > 2 && !s.ends_with('s'))
            .map(str::to_string)
            .unwrap_or(t),
    }
}

/// Words that join terms as a comma does: "people and bus", "person with
/// guitar" ask for two things each (no COCO name nor synonym holds one).
const JOINING_WORDS: [&str; 2] = ["and", "with"];

/// The terms of `prompt`: split on commas, `&`, `+` and the words "and" and
/// "with", trimmed, empty ones dropped.
pub fn terms(prompt: &str) -> Vec<String> {
    let mut out = Vec::new();
    for piece in prompt.split([',', '&', '+']) {
        let mut term: Vec<&str> = Vec::new();
        for word in piece.split_whitespace() {
            if JOINING_WORDS.iter().any(|j| word.eq_ignore_ascii_case(j)) {
                out.push(term.join(" "));
                term.clear();
            } else {
                term.push(word);
            }
        }
        out.push(term.join(" "));
    }
    out.retain(|t| !t.is_empty());
    out
}

/// The terms of `prompt` a model that `keeps` this cannot honour, as written.
pub fn unmatched(prompt: &str, keeps: Keeps) -> Vec<String> {
    terms(prompt)
        .into_iter()
        .filter(|t| {
            let c = canonical(t);
            let people = PEOPLE.contains(&c.as_str());
            let subject = SUBJECT.contains(&c.as_str());
            match keeps {
                Keeps::People => !people,
                Keeps::SalientSubject => !(people || subject),
            }
        })
        .collect()
}

mod classes;

pub use classes::{Selection, select};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn people_terms_match_the_selfie_model() {
        assert!(unmatched("person", Keeps::People).is_empty());
        assert!(unmatched(" People ,  WOMEN, man,hair, faces ", Keeps::People).is_empty());
        assert!(unmatched("", Keeps::People).is_empty());
        assert_eq!(
            unmatched("person, clothing accessories, glowing ring", Keeps::People),
            ["clothing accessories", "glowing ring"]
        );
        assert_eq!(unmatched("person, product", Keeps::People), ["product"]);
    }

    #[test]
    fn salient_models_also_keep_objects() {
        assert!(unmatched("person, product, main object", Keeps::SalientSubject).is_empty());
        assert_eq!(
            unmatched("person, glowing ring, sky", Keeps::SalientSubject),
            ["glowing ring", "sky"]
        );
    }

    #[test]
    fn canonical_forms() {
        assert_eq!(canonical("  Glowing   Rings "), "glowing ring");
        assert_eq!(canonical("glass"), "glass");
        assert_eq!(canonical("Persons"), "person");
        assert_eq!(terms("a,, b ,"), ["a", "b"]);
    }

    #[test]
    fn and_ampersand_plus_and_with_join_terms_as_commas_do() {
        assert_eq!(terms("people and bus"), ["people", "bus"]);
        assert_eq!(terms("person & dog+cat"), ["person", "dog", "cat"]);
        assert_eq!(
            terms("Person WITH guitar, AND chair"),
            ["Person", "guitar", "chair"]
        );
        assert_eq!(terms("cat and and dog &"), ["cat", "dog"]);
        // Whole words only: "sandwich", "hand" and "without" stay as written.
        assert_eq!(
            terms("sandwich, hand bag, without"),
            ["sandwich", "hand bag", "without"]
        );
        assert_eq!(terms("  teddy   bear "), ["teddy bear"]);
        // The bus is no longer dropped as part of one unknown term.
        let s = select(Some("people and bus"));
        assert_eq!(s.names(), "person, bus");
        assert!(s.unknown.is_empty());
        assert_eq!(
            unmatched("person with glowing ring", Keeps::People),
            ["glowing ring"]
        );
    }
}

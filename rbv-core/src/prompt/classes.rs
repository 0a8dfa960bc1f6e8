// SPDX-License-Identifier: MPL-2.0
//! Prompt terms to the detector's COCO classes.

use crate::detect::{COCO, NUM_CLASSES, PERSON};

/// What a prompt asks the detector to keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// The COCO classes to keep (indices into [`COCO`]), ascending.
    pub classes: Vec<usize>,
    /// A term asked for whatever stands out ("object", "product",
    /// "foreground"): the matting model's own choice, no gate.
    pub salient: bool,
    /// The terms that name no class, as written.
    pub unknown: Vec<String>,
}

impl Selection {
    /// The classes as a lookup table.
    pub fn wanted(&self) -> [bool; NUM_CLASSES] {
        let mut w = [false; NUM_CLASSES];
        for &c in &self.classes {
            w[c] = true;
        }
        w
    }

    /// The classes' names, comma-separated.
    pub fn names(&self) -> String {
        self.classes
            .iter()
            .map(|&c| COCO[c])
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Terms that mean "whatever stands out": the matting model decides.
const SALIENT: &[&str] = &[
    "object",
    "main object",
    "salient object",
    "foreground object",
    "product",
    "thing",
    "item",
    "subject",
    "main subject",
    "foreground",
    "everything",
    "anything",
];

/// Words for people.
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
    "baby",
    "adult",
    "teenager",
    "guy",
    "lady",
    "face",
    "head",
    "hair",
    "body",
    "portrait",
    "presenter",
    "speaker",
    "host",
    "selfie",
    "user",
    "me",
    "player",
    "athlete",
    "pedestrian",
    "actor",
    "dancer",
    "singer",
    "crowd",
    "someone",
    "somebody",
];

/// Groups and synonyms: a term, and the COCO names it means.
const TERMS: &[(&str, &[&str])] = &[
    // Groups (COCO's super-categories, and the service's examples).
    (
        "clothing accessories",
        &["tie", "handbag", "backpack", "umbrella"],
    ),
    ("accessories", &["tie", "handbag", "backpack", "umbrella"]),
    ("accessory", &["tie", "handbag", "backpack", "umbrella"]),
    ("bag", &["handbag", "backpack", "suitcase"]),
    ("luggage", &["suitcase", "backpack", "handbag"]),
    (
        "animal",
        &[
            "bird", "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe",
        ],
    ),
    ("pet", &["dog", "cat", "bird"]),
    (
        "vehicle",
        &[
            "bicycle",
            "car",
            "motorcycle",
            "airplane",
            "bus",
            "train",
            "truck",
            "boat",
        ],
    ),
    (
        "furniture",
        &["chair", "couch", "bed", "dining table", "bench", "toilet"],
    ),
    (
        "food",
        &[
            "banana", "apple", "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza",
            "donut", "cake",
        ],
    ),
    ("fruit", &["banana", "apple", "orange"]),
    ("vegetable", &["broccoli", "carrot"]),
    (
        "electronics",
        &["tv", "laptop", "mouse", "remote", "keyboard", "cell phone"],
    ),
    (
        "device",
        &["tv", "laptop", "mouse", "remote", "keyboard", "cell phone"],
    ),
    (
        "appliance",
        &["microwave", "oven", "toaster", "sink", "refrigerator"],
    ),
    (
        "tableware",
        &[
            "bottle",
            "wine glass",
            "cup",
            "fork",
            "knife",
            "spoon",
            "bowl",
        ],
    ),
    ("cutlery", &["fork", "knife", "spoon"]),
    ("drink", &["bottle", "wine glass", "cup"]),
    (
        "sports equipment",
        &[
            "frisbee",
            "skis",
            "snowboard",
            "sports ball",
            "kite",
            "baseball bat",
            "baseball glove",
            "skateboard",
            "surfboard",
            "tennis racket",
        ],
    ),
    // Synonyms.
    ("bike", &["bicycle"]),
    ("cycle", &["bicycle"]),
    ("automobile", &["car"]),
    ("taxi", &["car"]),
    ("cab", &["car"]),
    ("motorbike", &["motorcycle"]),
    ("scooter", &["motorcycle"]),
    ("moped", &["motorcycle"]),
    ("plane", &["airplane"]),
    ("aeroplane", &["airplane"]),
    ("aircraft", &["airplane"]),
    ("jet", &["airplane"]),
    ("coach", &["bus"]),
    ("tram", &["train"]),
    ("locomotive", &["train"]),
    ("lorry", &["truck"]),
    ("pickup", &["truck"]),
    ("ship", &["boat"]),
    ("yacht", &["boat"]),
    ("canoe", &["boat"]),
    ("kayak", &["boat"]),
    ("traffic signal", &["traffic light"]),
    ("hydrant", &["fire hydrant"]),
    ("parrot", &["bird"]),
    ("pigeon", &["bird"]),
    ("duck", &["bird"]),
    ("chicken", &["bird"]),
    ("kitten", &["cat"]),
    ("kitty", &["cat"]),
    ("puppy", &["dog"]),
    ("pup", &["dog"]),
    ("doggy", &["dog"]),
    ("doggo", &["dog"]),
    ("hound", &["dog"]),
    ("pony", &["horse"]),
    ("lamb", &["sheep"]),
    ("cattle", &["cow"]),
    ("calf", &["cow"]),
    ("bull", &["cow"]),
    ("rucksack", &["backpack"]),
    ("knapsack", &["backpack"]),
    ("parasol", &["umbrella"]),
    ("purse", &["handbag"]),
    ("necktie", &["tie"]),
    ("ski", &["skis"]),
    ("ball", &["sports ball"]),
    ("football", &["sports ball"]),
    ("soccer ball", &["sports ball"]),
    ("basketball", &["sports ball"]),
    ("volleyball", &["sports ball"]),
    ("tennis ball", &["sports ball"]),
    ("bat", &["baseball bat"]),
    ("glove", &["baseball glove"]),
    ("mitt", &["baseball glove"]),
    ("racket", &["tennis racket"]),
    ("racquet", &["tennis racket"]),
    ("water bottle", &["bottle"]),
    ("glass", &["wine glass"]),
    ("mug", &["cup"]),
    ("coffee cup", &["cup"]),
    ("hotdog", &["hot dog"]),
    ("doughnut", &["donut"]),
    ("seat", &["chair"]),
    ("sofa", &["couch"]),
    ("plant", &["potted plant"]),
    ("houseplant", &["potted plant"]),
    ("flower pot", &["potted plant"]),
    ("table", &["dining table"]),
    ("desk", &["dining table"]),
    ("television", &["tv"]),
    ("tv monitor", &["tv"]),
    ("monitor", &["tv"]),
    ("screen", &["tv"]),
    ("notebook", &["laptop"]),
    ("computer", &["laptop"]),
    ("remote control", &["remote"]),
    ("phone", &["cell phone"]),
    ("mobile phone", &["cell phone"]),
    ("mobile", &["cell phone"]),
    ("smartphone", &["cell phone"]),
    ("cellphone", &["cell phone"]),
    ("fridge", &["refrigerator"]),
    ("scissor", &["scissors"]),
    ("teddy", &["teddy bear"]),
    ("stuffed animal", &["teddy bear"]),
    ("plush toy", &["teddy bear"]),
    ("hair dryer", &["hair drier"]),
    ("hairdryer", &["hair drier"]),
    ("blow dryer", &["hair drier"]),
];

/// Irregular plurals.
const PLURALS: &[(&str, &str)] = &[
    ("men", "man"),
    ("women", "woman"),
    ("children", "child"),
    ("persons", "person"),
    ("humans", "human"),
    ("mice", "mouse"),
    ("knives", "knife"),
    ("calves", "calf"),
    ("geese", "bird"),
    ("buses", "bus"),
    ("benches", "bench"),
    ("couches", "couch"),
    ("sandwiches", "sandwich"),
    ("glasses", "glass"),
    ("wine glasses", "wine glass"),
    ("boxes", "box"),
    ("toothbrushes", "toothbrush"),
    ("teddies", "teddy"),
];

/// The classes one canonical term names, if any: a COCO name, a synonym
/// or group, or a word for people.
fn lookup(t: &str) -> Option<Vec<usize>> {
    if PEOPLE.contains(&t) {
        return Some(vec![PERSON]);
    }
    if let Some(c) = COCO.iter().position(|&n| n == t) {
        return Some(vec![c]);
    }
    TERMS.iter().find(|(k, _)| *k == t).map(|(_, names)| {
        names
            .iter()
            .filter_map(|n| COCO.iter().position(|c| c == n))
            .collect()
    })
}

/// What one term means: `Some(None)` whatever stands out, `Some(Some(..))`
/// classes, `None` nothing known. Lower case, single spaces, a leading
/// article dropped, plurals made singular.
fn meaning(term: &str) -> Option<Option<Vec<usize>>> {
    let t = term
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase();
    let t = ["a ", "an ", "the ", "some ", "all "]
        .iter()
        .find_map(|a| t.strip_prefix(a))
        .map(str::to_string)
        .unwrap_or(t);
    let mut forms = vec![t.clone()];
    if let Some((_, one)) = PLURALS.iter().find(|(p, _)| *p == t) {
        forms.push((*one).to_string());
    }
    if let Some(s) = t.strip_suffix("ies") {
        forms.push(format!("{s}y"));
    }
    if let Some(s) = t.strip_suffix("es") {
        forms.push(s.to_string());
    }
    if let Some(s) = t.strip_suffix('s') {
        forms.push(s.to_string());
    }
    forms.iter().find_map(|f| {
        if SALIENT.contains(&f.as_str()) {
            Some(None)
        } else {
            lookup(f).map(Some)
        }
    })
}

/// What `prompt` asks to keep: its terms ([`super::terms`]) mapped to classes.
/// No prompt (or only blanks) keeps people; so do prompts none of whose
/// terms names a class (then [`Selection::unknown`] lists them all).
pub fn select(prompt: Option<&str>) -> Selection {
    let mut wanted = [false; NUM_CLASSES];
    let (mut salient, mut unknown) = (false, Vec::new());
    for term in super::terms(prompt.unwrap_or("")) {
        match meaning(&term) {
            Some(None) => salient = true,
            Some(Some(classes)) => classes.into_iter().for_each(|c| wanted[c] = true),
            None => unknown.push(term),
        }
    }
    let mut classes: Vec<usize> = (0..NUM_CLASSES).filter(|&c| wanted[c]).collect();
    if classes.is_empty() && !salient {
        classes.push(PERSON);
    }
    Selection {
        classes,
        salient,
        unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(prompt: &str) -> String {
        select(Some(prompt)).names()
    }

    #[test]
    fn no_prompt_keeps_people() {
        for p in [None, Some(""), Some(" , ,")] {
            let s = select(p);
            assert_eq!((s.names().as_str(), s.salient), ("person", false), "{p:?}");
            assert!(s.unknown.is_empty());
        }
    }

    #[test]
    fn people_words_synonyms_and_groups() {
        for p in [
            "person", "people", "man", "Women", "children", "a child", "HUMAN", "humans",
        ] {
            assert_eq!(names(p), "person", "{p}");
        }
        assert_eq!(names("puppy"), "dog");
        assert_eq!(names("puppies"), "dog");
        assert_eq!(names("dogs, the cat"), "cat, dog");
        assert_eq!(
            names("person, clothing accessories"),
            "person, backpack, umbrella, handbag, tie"
        );
        assert_eq!(names("buses"), "bus");
        assert_eq!(names("sofa"), "couch");
        assert_eq!(names("tables"), "dining table");
        assert_eq!(names("wine glasses"), "wine glass");
        assert_eq!(names("sports ball"), "sports ball");
        assert_eq!(names("skis"), "skis");
        assert_eq!(names("  Teddy   Bears "), "teddy bear");
        assert_eq!(names("phones"), "cell phone");
        assert_eq!(names("vehicles").split(", ").count(), 8);
        // Every COCO name maps to itself.
        for (c, n) in COCO.iter().enumerate() {
            assert_eq!(select(Some(n)).classes, [c], "{n}");
        }
        // Every synonym names real classes.
        for (t, targets) in TERMS {
            assert_eq!(lookup(t).unwrap().len(), targets.len(), "{t}");
        }
    }

    #[test]
    fn unknown_terms_are_named_and_people_kept_when_nothing_maps() {
        let s = select(Some("person, glowing ring, dog"));
        assert_eq!(s.names(), "person, dog");
        assert_eq!(s.unknown, ["glowing ring"]);
        let s = select(Some("glowing ring, sky"));
        assert_eq!(s.names(), "person");
        assert_eq!(s.unknown, ["glowing ring", "sky"]);
    }

    #[test]
    fn salient_terms_leave_the_choice_to_the_model() {
        let s = select(Some("product"));
        assert!(s.salient && s.classes.is_empty() && s.unknown.is_empty());
        let s = select(Some("person, main object"));
        assert!(s.salient);
        assert_eq!(s.names(), "person");
    }
}

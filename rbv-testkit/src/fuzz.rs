// SPDX-License-Identifier: MPL-2.0
//! Fuzzing on the stable toolchain (cargo fuzz needs nightly, which this
//! project does not use): every parser that reads outside input gets seeded,
//! randomly mutated inputs - byte flips, insertions, deletions, splices of
//! other seeds, truncations, deep nesting - and must answer Ok or Err, never
//! panic. Bounded: 3 s per parser in CI; `RBV_FUZZ_SECONDS=60` for a longer
//! run (each crate's `tests/fuzz.rs`, `-- --nocapture` prints the inputs
//! tried per parser).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

/// Seconds each parser is fuzzed for: `RBV_FUZZ_SECONDS`, else 3.
pub fn budget() -> Duration {
    Duration::from_secs_f64(
        std::env::var("RBV_FUZZ_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(3.0),
    )
}

/// One random mutation of `input`, using the other seeds for splices.
pub fn mutate(rng: &mut fastrand::Rng, input: &[u8], seeds: &[&[u8]]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..rng.usize(1..4) {
        let at = if v.is_empty() {
            0
        } else {
            rng.usize(0..=v.len())
        };
        match rng.u8(0..7) {
            0 if !v.is_empty() => {
                let i = rng.usize(0..v.len());
                v[i] ^= 1 << rng.u8(0..8);
            }
            1 => v.insert(at, rng.u8(..)),
            2 if at < v.len() => {
                v.remove(at);
            }
            3 => {
                let other = seeds[rng.usize(0..seeds.len())];
                let from = rng.usize(0..=other.len());
                v.splice(at..at, other[from..].iter().copied());
            }
            4 => v.truncate(at),
            5 => {
                let deep = rng.usize(1..3000);
                let (open, close) = if rng.bool() {
                    (b'[', b']')
                } else {
                    (b'{', b'}')
                };
                let mut nest = vec![open; deep];
                nest.extend(std::iter::repeat_n(close, rng.usize(0..=deep)));
                v.splice(at..at, nest);
            }
            _ => {
                let special: &[&[u8]] = &[
                    b"\"",
                    b"\\u0000",
                    b"\xF0\x9F\x98\x80",
                    b"\xff\xfe",
                    b"1e999",
                    b"-0",
                    b"NaN",
                    b"null",
                    b"9999999999999999999999",
                    b"#",
                    b",",
                    b"[]",
                    b"{}",
                ];
                let s = special[rng.usize(0..special.len())];
                v.splice(at..at, s.iter().copied());
            }
        }
    }
    v
}

/// Runs `f` on mutated seeds for the budget; panics name the input.
pub fn fuzz(name: &str, seeds: &[&[u8]], mut f: impl FnMut(&[u8])) {
    let mut rng = fastrand::Rng::with_seed(0x5eed ^ name.len() as u64);
    let end = Instant::now() + budget();
    let mut n = 0u64;
    for s in seeds {
        f(s);
    }
    while Instant::now() < end {
        for _ in 0..64 {
            let seed = seeds[rng.usize(0..seeds.len())];
            let input = mutate(&mut rng, seed, seeds);
            if catch_unwind(AssertUnwindSafe(|| f(&input))).is_err() {
                panic!("{name} panicked on {:?}", String::from_utf8_lossy(&input));
            }
            n += 1;
        }
    }
    println!("{name}: {n} inputs, no panic");
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

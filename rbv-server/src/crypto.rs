// SPDX-License-Identifier: MPL-2.0
//! Secrets and signatures: random ids and keys, hashed API keys, signed
//! output links and webhook signatures (HMAC-SHA256).

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// `n` random bytes from the operating system, as hex.
pub fn random_hex(n: usize) -> String {
    let mut buf = vec![0u8; n];
    getrandom::fill(&mut buf).expect("the operating system's random source");
    hex::encode(buf)
}

/// A new id with a prefix: `job_3f9c...`.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", random_hex(12))
}

/// A new API key: 32 random bytes. Only its hash is stored.
pub fn new_api_key() -> String {
    format!("rbv_{}", random_hex(32))
}

/// What is stored for a key. Keys are 256 random bits, so a plain SHA-256
/// is enough (no password stretching needed) and lookups stay one query.
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

fn mac(secret: &[u8], parts: &[&[u8]]) -> HmacSha256 {
    let mut m = HmacSha256::new_from_slice(secret).expect("HMAC takes any key length");
    for p in parts {
        m.update(p);
    }
    m
}

/// `sha256=<hex>` over `timestamp + "." + body`, as the service signs webhooks.
pub fn webhook_signature(secret: &str, timestamp: &str, body: &[u8]) -> String {
    let m = mac(secret.as_bytes(), &[timestamp.as_bytes(), b".", body]);
    format!("sha256={}", hex::encode(m.finalize().into_bytes()))
}

fn link_message(job_id: &str, file: &str, expires: u64) -> String {
    format!("{job_id}/{file}/{expires}")
}

/// The signature of an output link valid until `expires` (Unix seconds).
pub fn sign_link(secret: &[u8], job_id: &str, file: &str, expires: u64) -> String {
    let m = mac(secret, &[link_message(job_id, file, expires).as_bytes()]);
    hex::encode(m.finalize().into_bytes())
}

/// Checks a link's signature in constant time.
pub fn link_signature_ok(
    secret: &[u8],
    job_id: &str,
    file: &str,
    expires: u64,
    signature: &str,
) -> bool {
    let Ok(sig) = hex::decode(signature) else {
        return false;
    };
    mac(secret, &[link_message(job_id, file, expires).as_bytes()])
        .verify_slice(&sig)
        .is_ok()
}

/// Compares two secrets in constant time (through their HMACs).
pub fn same(a: &str, b: &str) -> bool {
    let key = random_hex(16);
    let m = mac(key.as_bytes(), &[a.as_bytes()]).finalize().into_bytes();
    mac(key.as_bytes(), &[b.as_bytes()])
        .verify_slice(&m)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_keys_are_random_and_hashes_stable() {
        assert_ne!(new_id("job"), new_id("job"));
        let k = new_api_key();
        assert!(k.starts_with("rbv_") && k.len() == 4 + 64);
        assert_eq!(hash_key(&k), hash_key(&k));
        assert_ne!(hash_key(&k), hash_key(&new_api_key()));
        // A known SHA-256 vector.
        assert_eq!(
            hash_key("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn webhook_signature_matches_a_known_hmac() {
        // Python's hmac.new(b"Jefe", b"what do ya want .for nothing?", sha256).
        let s = webhook_signature("Jefe", "what do ya want ", b"for nothing?");
        assert_eq!(
            s,
            "sha256=83fb3421ec48dc8ee8cd58e1f03bb1f80ae0110c64a82771c98a0cea22cecdd2"
        );
    }

    #[test]
    fn link_signatures_check_every_part() {
        let secret = b"link secret";
        let sig = sign_link(secret, "job_1", "out.webm", 100);
        assert!(link_signature_ok(secret, "job_1", "out.webm", 100, &sig));
        assert!(!link_signature_ok(secret, "job_2", "out.webm", 100, &sig));
        assert!(!link_signature_ok(secret, "job_1", "out.mov", 100, &sig));
        assert!(!link_signature_ok(secret, "job_1", "out.webm", 101, &sig));
        assert!(!link_signature_ok(b"other", "job_1", "out.webm", 100, &sig));
        assert!(!link_signature_ok(secret, "job_1", "out.webm", 100, "zz"));
    }
}

// SPDX-License-Identifier: MPL-2.0
//! API keys: stored as SHA-256 hashes, checked on every request (so a key
//! disabled through any node is refused by every node sharing the store at
//! once), listed and switched off and on by operators.

use super::db::{Row, p};
use super::{Key, Result, Store, now};
use crate::crypto;

/// `last_used_at` is written at most this often per key, so a busy key
/// does not turn every request into a write.
const LAST_USED_EVERY_S: i64 = 60;

/// Hex characters of the key's SHA-256 that make its fingerprint.
pub const FINGERPRINT_LEN: usize = 16;

/// A key as an operator sees it: never its secret.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyInfo {
    pub id: String,
    /// The first 16 hex characters of the key's SHA-256: a holder of the
    /// key can work it out (`printf %s "$KEY" | sha256sum | cut -c1-16`).
    pub fingerprint: String,
    /// The client the key was made for (`rbv keys create --name`).
    pub client_id: String,
    pub note: String,
    pub credits: Option<f64>,
    pub enabled: bool,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

const KEY_COLUMNS: &str =
    "id, substr(hash, 1, 16), name, note, credits, revoked, created_at, last_used_at";

fn key_info(r: &Row) -> Result<KeyInfo> {
    Ok(KeyInfo {
        id: r.get(0)?,
        fingerprint: r.get(1)?,
        client_id: r.get(2)?,
        note: r.get(3)?,
        credits: r.get(4)?,
        enabled: r.get::<i64>(5)? == 0,
        created_at: r.get(6)?,
        last_used_at: r.get(7)?,
    })
}

/// The fingerprint a key has.
pub fn fingerprint(secret: &str) -> String {
    crypto::hash_key(secret)[..FINGERPRINT_LEN].to_owned()
}

impl Store {
    /// A new key: returns its id and the secret, which is shown once and
    /// stored only as a hash.
    pub fn create_key(&self, name: &str, credits: Option<f64>) -> Result<(String, String)> {
        let (info, secret) = self.create_key_noted(name, "", credits)?;
        Ok((info.id, secret))
    }

    /// A new key with an operator's note: what listings show of it, and the
    /// secret (shown once, stored only as a hash).
    pub fn create_key_noted(
        &self,
        name: &str,
        note: &str,
        credits: Option<f64>,
    ) -> Result<(KeyInfo, String)> {
        let id = crypto::new_id("key");
        let secret = crypto::new_api_key();
        let hash = crypto::hash_key(&secret);
        let info = self.with(|c| {
            c.exec(
                "INSERT INTO api_keys (id, hash, name, note, credits, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                p![&id, &hash, name, note, credits, now()],
            )?;
            key_info(&c.one_row(
                &format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = ?1"),
                p![&id],
            )?)
        })?;
        Ok((info, secret))
    }

    /// The enabled key with this secret; notes that it was used.
    pub fn key_by_secret(&self, secret: &str) -> Result<Option<Key>> {
        let hash = crypto::hash_key(secret);
        let t = now();
        self.with(|c| {
            let key = c
                .row(
                    "SELECT id, name, credits FROM api_keys WHERE hash = ?1 AND revoked = 0",
                    p![&hash],
                )?
                .map(|r| {
                    Ok::<_, super::Error>(Key {
                        id: r.get(0)?,
                        name: r.get(1)?,
                        credits: r.get(2)?,
                    })
                })
                .transpose()?;
            if let Some(k) = &key {
                c.exec(
                    "UPDATE api_keys SET last_used_at = ?1 \
                     WHERE id = ?2 AND (last_used_at IS NULL OR last_used_at <= ?3)",
                    p![t, &k.id, t - LAST_USED_EVERY_S],
                )?;
            }
            Ok(key)
        })
    }

    /// Every key, oldest first (keys made in the same second in id order).
    pub fn list_keys(&self) -> Result<Vec<KeyInfo>> {
        self.with(|c| {
            c.rows(
                &format!("SELECT {KEY_COLUMNS} FROM api_keys ORDER BY created_at, id"),
                p![],
            )?
            .iter()
            .map(key_info)
            .collect()
        })
    }

    /// Disables a key by its id (`rbv keys revoke`).
    pub fn revoke_key(&self, id: &str) -> Result<bool> {
        self.with(|c| c.exec("UPDATE api_keys SET revoked = 1 WHERE id = ?1", p![id]))
            .map(|n| n > 0)
    }

    /// Disables or enables the key with this fingerprint; returns it as it
    /// is now, or None when no key has it.
    pub fn set_key_enabled(&self, fingerprint: &str, enabled: bool) -> Result<Option<KeyInfo>> {
        self.with(|c| {
            let id: Option<String> = c
                .row(
                    "SELECT id FROM api_keys WHERE substr(hash, 1, 16) = ?1",
                    p![fingerprint],
                )?
                .map(|r| r.get(0))
                .transpose()?;
            let Some(id) = id else { return Ok(None) };
            c.exec(
                "UPDATE api_keys SET revoked = ?1 WHERE id = ?2",
                p![i64::from(!enabled), &id],
            )?;
            key_info(&c.one_row(
                &format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = ?1"),
                p![&id],
            )?)
            .map(Some)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::store;
    use super::*;

    #[test]
    fn keys_list_disable_and_enable_by_fingerprint() {
        let s = store();
        let (a, secret) = s.create_key_noted("acme", "render farm", None).unwrap();
        let (b, _) = s.create_key_noted("zeta", "", Some(5.0)).unwrap();
        assert_eq!(a.fingerprint, fingerprint(&secret));
        assert_eq!(a.fingerprint.len(), FINGERPRINT_LEN);
        assert!(a.enabled && a.last_used_at.is_none());
        assert_eq!(
            (a.client_id.as_str(), a.note.as_str()),
            ("acme", "render farm")
        );
        let listed = |id: &str| {
            let all = s.list_keys().unwrap();
            assert_eq!(all.len(), 2);
            all.into_iter().find(|k| k.id == id).unwrap()
        };
        assert_eq!(listed(&a.id), a);
        assert_eq!(listed(&b.id).credits, Some(5.0));

        // Using the key stamps it, once a minute at most.
        assert!(s.key_by_secret(&secret).unwrap().is_some());
        let used = listed(&a.id).last_used_at.expect("stamped");
        assert!((now() - used).abs() <= 1);

        let off = s.set_key_enabled(&a.fingerprint, false).unwrap().unwrap();
        assert!(!off.enabled);
        assert!(
            s.key_by_secret(&secret).unwrap().is_none(),
            "refused at once"
        );
        assert!(!s.key_active(&a.id).unwrap());
        assert!(listed(&b.id).enabled, "the other key is untouched");
        let on = s.set_key_enabled(&a.fingerprint, true).unwrap().unwrap();
        assert!(on.enabled);
        assert!(s.key_by_secret(&secret).unwrap().is_some());
        assert!(
            s.set_key_enabled("0123456789abcdef", false)
                .unwrap()
                .is_none()
        );
    }
}

// SPDX-License-Identifier: MPL-2.0
//! The `/v1` API key: kept out of every log line, error and readable property.

use std::fmt;

/// An API key. `Debug` and `Display` show only [`ApiKey::fingerprint`]; the
/// key itself leaves this type only as the `X-Api-Key` header value.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

/// The environment variable the key is read from when none is given.
pub const ENV_VAR: &str = "RBV_API_KEY";

impl ApiKey {
    /// A key from text; `None` when it is empty or blank.
    pub fn new(key: &str) -> Option<ApiKey> {
        let key = key.trim();
        (!key.is_empty()).then(|| ApiKey(key.to_owned()))
    }

    /// The key in `RBV_API_KEY`, if set and not blank.
    pub fn from_env() -> Option<ApiKey> {
        std::env::var(ENV_VAR).ok().and_then(|k| ApiKey::new(&k))
    }

    /// What may be shown of the key: its last four characters when it is
    /// long enough that they say nothing useful about the rest, else nothing.
    pub fn fingerprint(&self) -> String {
        let chars: Vec<char> = self.0.chars().collect();
        if chars.len() >= 16 {
            let tail: String = chars[chars.len() - 4..].iter().collect();
            format!("key ...{tail}")
        } else {
            "key ****".to_owned()
        }
    }

    #[cfg(any(feature = "client", test))]
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.fingerprint())
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.fingerprint())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_shows_the_key() {
        let key = ApiKey::new("  rbv_live_0123456789abcdefWXYZ ").unwrap();
        assert_eq!(key.expose(), "rbv_live_0123456789abcdefWXYZ");
        for shown in [format!("{key}"), format!("{key:?}"), key.fingerprint()] {
            assert!(!shown.contains("0123456789"), "{shown}");
            assert_eq!(shown, "key ...WXYZ");
        }
        let short = ApiKey::new("abc123").unwrap();
        assert_eq!(format!("{short:?}"), "key ****");
        assert!(ApiKey::new("  ").is_none());
    }
}

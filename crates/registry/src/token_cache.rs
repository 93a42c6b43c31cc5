//! Bearer tokens, cached per registry and scope until shortly before they expire.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A bearer token. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Token(String);

impl Token {
    pub(crate) fn new(token: String) -> Token {
        Token(token)
    }

    pub(crate) fn secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(****)")
    }
}

/// Tokens by `(registry, scope key)`.
#[derive(Debug, Default)]
pub(crate) struct TokenCache {
    tokens: Mutex<HashMap<(String, String), (Token, Instant)>>,
}

impl TokenCache {
    /// A token for `registry` and `scope` that is still valid, if cached.
    pub(crate) fn get(&self, registry: &str, scope: &str) -> Option<Token> {
        let mut tokens = self.lock();
        let key = (registry.to_owned(), scope.to_owned());
        match tokens.get(&key) {
            Some((token, until)) if Instant::now() < *until => Some(token.clone()),
            Some(_) => {
                tokens.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Caches `token`, valid for `lifetime` from now, minus a margin for the request in
    /// flight and clock skew.
    pub(crate) fn insert(&self, registry: &str, scope: &str, token: Token, lifetime: Duration) {
        let until = Instant::now() + usable_lifetime(lifetime);
        self.lock()
            .insert((registry.to_owned(), scope.to_owned()), (token, until));
    }

    /// Drops the token for `registry` and `scope` (the registry refused it).
    pub(crate) fn remove(&self, registry: &str, scope: &str) {
        self.lock().remove(&(registry.to_owned(), scope.to_owned()));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), (Token, Instant)>> {
        // The map stays consistent even if a holder panicked: every operation is one call.
        self.tokens.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// `lifetime` minus a margin: 10 s, but never more than half the lifetime.
fn usable_lifetime(lifetime: Duration) -> Duration {
    lifetime - Duration::from_secs(10).min(lifetime / 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caches_until_expiry() {
        let cache = TokenCache::default();
        cache.insert("r", "s", Token::new("t".into()), Duration::from_secs(60));
        assert_eq!(cache.get("r", "s").unwrap().secret(), "t");
        assert!(cache.get("r", "other").is_none());
        assert!(cache.get("other", "s").is_none());
        cache.remove("r", "s");
        assert!(cache.get("r", "s").is_none());
        cache.insert("r", "s", Token::new("t".into()), Duration::ZERO);
        assert!(cache.get("r", "s").is_none());
        assert_eq!(
            usable_lifetime(Duration::from_secs(300)),
            Duration::from_secs(290)
        );
        assert_eq!(
            usable_lifetime(Duration::from_secs(4)),
            Duration::from_secs(2)
        );
        assert_eq!(format!("{:?}", Token::new("sekrit".into())), "Token(****)");
    }
}

//! Keys derived from the appsecret, one per purpose, so that an app needs no key settings.
//!
//! HKDF-SHA256 (RFC 5869) with the appsecret as input key material and a label per purpose: a key
//! for one purpose says nothing about another, and every instance of the app derives the same ones.
//! Rotating the appsecret rotates them all (pending sign-ins then restart; nothing else is lost).

use actix_web::cookie::Key;
use hkdf::Hkdf;
use sha2::Sha256;

use crate::tokens::AppSecret;

/// The label of the key that encrypts pending sign-in cookies.
pub(crate) const PENDING_COOKIES: &str = "actix-wechat-auth v1 pending sign-in cookies";
/// The label of the key that encrypts tokens shared between instances through Redis.
#[cfg(feature = "redis")]
pub(crate) const FLEET_TOKENS: &str = "actix-wechat-auth v1 fleet tokens";

/// A 64-byte cookie key for `label`.
pub(crate) fn derive(secret: &AppSecret, label: &str) -> Key {
    Key::from(&bytes::<64>(secret, label))
}

/// `N` bytes of key material for `label`.
pub(crate) fn bytes<const N: usize>(secret: &AppSecret, label: &str) -> [u8; N] {
    let mut out = [0; N];
    Hkdf::<Sha256>::new(None, secret.secret().as_bytes())
        .expand(label.as_bytes(), &mut out)
        .expect("HKDF-SHA256 yields up to 8,160 bytes");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_differ_by_label_and_secret_and_are_stable() {
        let a = AppSecret::new("secret-a");
        let key = |secret: &AppSecret, label| derive(secret, label).master().to_vec();
        assert_eq!(key(&a, PENDING_COOKIES), key(&a, PENDING_COOKIES));
        assert_ne!(key(&a, PENDING_COOKIES), key(&a, "another purpose"));
        assert_ne!(
            key(&a, PENDING_COOKIES),
            key(&AppSecret::new("secret-b"), PENDING_COOKIES)
        );
    }
}

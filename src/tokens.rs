//! Secrets, tokens, scopes and the CSRF `state`: small types whose job is to be hard to misuse.
//!
//! Every secret is a newtype whose `Debug` prints `[redacted]`, and none of them implements
//! `Display`, so a secret cannot end up in a log line or an error page by accident. The raw value is
//! reachable only through an explicitly named `secret()` method, as in oauth2-rs.

use std::fmt;

use rand::distr::{Alphanumeric, SampleString};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

macro_rules! secret_newtype {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps a raw value.
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }

            /// The raw value. Named so that every place that reveals it is easy to find.
            pub fn secret(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "([redacted])"))
            }
        }

        impl From<String> for $name {
            fn from(value: String) -> Self {
                Self(value)
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                Self(value.to_owned())
            }
        }
    };
}

secret_newtype!(
    /// The Official Account's appsecret. Only ever sent from the server to `api.weixin.qq.com`.
    ///
    /// ```
    /// use actix_wechat_auth::AppSecret;
    /// let secret = AppSecret::new("0123456789abcdef");
    /// assert_eq!(format!("{secret:?}"), "AppSecret([redacted])");
    /// assert_eq!(secret.secret(), "0123456789abcdef");
    /// ```
    AppSecret
);

secret_newtype!(
    /// A user's web access token (`access_token` of `/sns/oauth2/access_token`), valid for
    /// `expires_in` seconds. It is not the Official Account's basic access token.
    ///
    /// ```
    /// use actix_wechat_auth::AccessToken;
    /// let token = AccessToken::new("ACCESS");
    /// assert_eq!(format!("{token:?}"), "AccessToken([redacted])");
    /// ```
    AccessToken
);

secret_newtype!(
    /// A user's refresh token: lives 30 days and is not extended by refreshing.
    ///
    /// ```
    /// use actix_wechat_auth::RefreshToken;
    /// let token = RefreshToken::new("REFRESH");
    /// assert_eq!(format!("{token:?}"), "RefreshToken([redacted])");
    /// ```
    RefreshToken
);

/// The OAuth scope asked for on the authorize page.
///
/// `Base` signs in silently and yields only the openid; `UserInfo` shows a consent page and lets
/// the token read the profile. A `UserInfo` grant satisfies a route that needs only `Base`.
/// `Login` is the Website app's QR sign-in (网站应用): it grants what `UserInfo` grants, so it
/// satisfies routes that require `Base` or `UserInfo`.
///
/// ```
/// use actix_wechat_auth::Scope;
/// assert_eq!(Scope::UserInfo.as_str(), "snsapi_userinfo");
/// assert!(Scope::UserInfo.satisfies(Scope::Base));
/// assert!(!Scope::Base.satisfies(Scope::UserInfo));
/// assert!(Scope::Login.satisfies(Scope::UserInfo));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Scope {
    /// `snsapi_base`: no consent page, the openid only.
    #[serde(rename = "snsapi_base")]
    Base,
    /// `snsapi_userinfo`: a consent page, then the profile through `/sns/userinfo`.
    #[serde(rename = "snsapi_userinfo")]
    UserInfo,
    /// `snsapi_login`: a Website app's QR sign-in, then the profile through `/sns/userinfo`.
    #[serde(rename = "snsapi_login")]
    Login,
}

impl Scope {
    /// The wire name, as sent in the `scope` parameter.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Base => "snsapi_base",
            Scope::UserInfo => "snsapi_userinfo",
            Scope::Login => "snsapi_login",
        }
    }

    /// Whether a grant of `self` is enough for a route that needs `required`.
    pub fn satisfies(self, required: Scope) -> bool {
        self >= required
    }

    /// Whether the token reads the profile with `/sns/userinfo`.
    pub fn has_profile(self) -> bool {
        self >= Scope::UserInfo
    }

    /// The strongest scope named in a granted `scope` field, which may list several scopes
    /// separated by commas. Unknown names are ignored; a grant always carries the openid, so the
    /// weakest answer is `Base`.
    ///
    /// ```
    /// use actix_wechat_auth::Scope;
    /// assert_eq!(Scope::from_granted("snsapi_base,snsapi_userinfo"), Scope::UserInfo);
    /// assert_eq!(Scope::from_granted("snsapi_base"), Scope::Base);
    /// ```
    pub fn from_granted(granted: &str) -> Scope {
        granted
            .split(',')
            .filter_map(|s| match s.trim() {
                "snsapi_login" => Some(Scope::Login),
                "snsapi_userinfo" => Some(Scope::UserInfo),
                _ => None,
            })
            .max()
            .unwrap_or(Scope::Base)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The CSRF `state` sent to the authorize page and checked on the callback.
///
/// WeChat accepts only `[A-Za-z0-9]` up to 128 bytes, so the value is 32 random alphanumerics from
/// a CSPRNG: about 190 bits of entropy. Comparison is constant-time.
///
/// ```
/// use actix_wechat_auth::CsrfState;
/// let state = CsrfState::random();
/// assert_eq!(state.as_str().len(), 32);
/// assert!(state.as_str().bytes().all(|b| b.is_ascii_alphanumeric()));
/// assert!(state.matches(state.as_str()));
/// assert!(!state.matches("forged"));
/// ```
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CsrfState(String);

impl CsrfState {
    const LEN: usize = 32;

    /// A fresh random state.
    pub fn random() -> Self {
        Self(Alphanumeric.sample_string(&mut rand::rng(), Self::LEN))
    }

    /// The value as sent on the wire.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Constant-time comparison with a value received on the callback.
    pub fn matches(&self, received: &str) -> bool {
        self.0.as_bytes().ct_eq(received.as_bytes()).into()
    }
}

impl fmt::Debug for CsrfState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A pending state is a live CSRF token: show only enough to correlate log lines.
        write!(f, "CsrfState({}…)", self.0.get(..4).unwrap_or(""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_of_a_foreign_state_does_not_panic() {
        let state: CsrfState = serde_json::from_str("\"é€x\"").unwrap();
        assert_eq!(format!("{state:?}"), "CsrfState(…)");
    }
}

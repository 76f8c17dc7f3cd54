//! The sns API's answers, mirrored field for field, and the tolerant parser WeChat's quirks call for.
//!
//! WeChat answers errors as HTTP 200 with `{"errcode":N,"errmsg":"…"}`, often with
//! `Content-Type: text/plain`; every number (`expires_in`, `errcode`, `sex`, `is_snapshotuser`) may
//! come as a number or as a string; a body may start with a UTF-8 byte-order mark; nicknames have
//! been seen with raw control characters inside JSON strings; new fields appear over time. [`parse`]
//! deals with all of these and never panics, whatever the bytes.
//!
//! What identifies a user or grants access is validated as it is read, because everything after
//! the parser trusts it: an openid or unionid is 1–64 characters of `[A-Za-z0-9_-]` and a token is
//! 1–512 bytes of visible ASCII. An empty openid would sign everyone answered with it in as one
//! user, and a 10 KB one would overflow the session cookie.

use std::fmt;

use serde::{de::DeserializeOwned, Deserialize, Deserializer, Serialize};

use crate::tokens::{AccessToken, RefreshToken};

/// A WeChat `errcode`, with names for the codes this crate acts on.
///
/// ```
/// use actix_wechat_auth::ErrCode;
/// assert_eq!(ErrCode::from(42001), ErrCode::AccessTokenExpired);
/// assert_eq!(ErrCode::from(-1).code(), -1);
/// assert_eq!(ErrCode::from(99999), ErrCode::Other(99999));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrCode {
    /// -1: system busy, retry later.
    SystemBusy,
    /// 40001: invalid credential (wrong appsecret, or a bad token).
    InvalidCredential,
    /// 40003: invalid openid (token and openid do not match).
    InvalidOpenId,
    /// 40013: invalid appid.
    InvalidAppId,
    /// 40014: invalid access_token.
    InvalidAccessToken,
    /// 40029: invalid code.
    InvalidCode,
    /// 40030: invalid refresh_token.
    InvalidRefreshToken,
    /// 40163: code already used.
    CodeUsed,
    /// 41008: missing code.
    MissingCode,
    /// 42001: access_token expired.
    AccessTokenExpired,
    /// 42002: refresh_token expired.
    RefreshTokenExpired,
    /// 42003: code expired.
    CodeExpired,
    /// 45009: rate limited.
    RateLimited,
    /// 48001: API unauthorized (e.g. userinfo with a snsapi_base token).
    ApiUnauthorized,
    /// 50001: the user did not authorize this API.
    UserUnauthorized,
    /// Any other code.
    Other(i64),
}

impl ErrCode {
    /// The numeric code as WeChat sends it.
    pub fn code(self) -> i64 {
        match self {
            ErrCode::SystemBusy => -1,
            ErrCode::InvalidCredential => 40001,
            ErrCode::InvalidOpenId => 40003,
            ErrCode::InvalidAppId => 40013,
            ErrCode::InvalidAccessToken => 40014,
            ErrCode::InvalidCode => 40029,
            ErrCode::InvalidRefreshToken => 40030,
            ErrCode::CodeUsed => 40163,
            ErrCode::MissingCode => 41008,
            ErrCode::AccessTokenExpired => 42001,
            ErrCode::RefreshTokenExpired => 42002,
            ErrCode::CodeExpired => 42003,
            ErrCode::RateLimited => 45009,
            ErrCode::ApiUnauthorized => 48001,
            ErrCode::UserUnauthorized => 50001,
            ErrCode::Other(code) => code,
        }
    }

    /// The access token no longer works, but the refresh token may: refresh.
    pub fn means_token_invalid(self) -> bool {
        matches!(
            self,
            ErrCode::InvalidCredential
                | ErrCode::InvalidOpenId
                | ErrCode::InvalidAccessToken
                | ErrCode::AccessTokenExpired
        )
    }

    /// The refresh token is gone: the user must authorize again.
    pub fn means_reauthorize(self) -> bool {
        matches!(
            self,
            ErrCode::InvalidRefreshToken | ErrCode::RefreshTokenExpired
        )
    }

    /// The `code` of a callback is stale: used, expired or unknown (back button, reload, double
    /// callback).
    pub fn means_stale_code(self) -> bool {
        matches!(
            self,
            ErrCode::InvalidCode | ErrCode::CodeUsed | ErrCode::CodeExpired
        )
    }

    /// WeChat is busy or throttling: try again later.
    pub fn means_busy(self) -> bool {
        matches!(self, ErrCode::SystemBusy | ErrCode::RateLimited)
    }
}

impl From<i64> for ErrCode {
    fn from(code: i64) -> Self {
        match code {
            -1 => ErrCode::SystemBusy,
            40001 => ErrCode::InvalidCredential,
            40003 => ErrCode::InvalidOpenId,
            40013 => ErrCode::InvalidAppId,
            40014 => ErrCode::InvalidAccessToken,
            40029 => ErrCode::InvalidCode,
            40030 => ErrCode::InvalidRefreshToken,
            40163 => ErrCode::CodeUsed,
            41008 => ErrCode::MissingCode,
            42001 => ErrCode::AccessTokenExpired,
            42002 => ErrCode::RefreshTokenExpired,
            42003 => ErrCode::CodeExpired,
            45009 => ErrCode::RateLimited,
            48001 => ErrCode::ApiUnauthorized,
            50001 => ErrCode::UserUnauthorized,
            other => ErrCode::Other(other),
        }
    }
}

impl fmt::Display for ErrCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code())
    }
}

/// The answer of `/sns/oauth2/access_token` and `/sns/oauth2/refresh_token`. (`Serialize` so that
/// a refresh can be shared between instances.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TokenResponse {
    #[serde(deserialize_with = "token")]
    pub(crate) access_token: AccessToken,
    #[serde(deserialize_with = "seconds")]
    pub(crate) expires_in: u64,
    #[serde(deserialize_with = "token")]
    pub(crate) refresh_token: RefreshToken,
    #[serde(deserialize_with = "identity")]
    pub(crate) openid: String,
    #[serde(default)]
    pub(crate) scope: String,
    #[serde(default, deserialize_with = "optional_identity")]
    pub(crate) unionid: Option<String>,
    /// Set when the user only saw the snapshot page: the openid is virtual. Only `0` and `1` (as
    /// numbers or strings) are understood; anything else fails closed, as a snapshot.
    #[serde(
        default,
        deserialize_with = "snapshot_flag",
        serialize_with = "snapshot_flag_out"
    )]
    pub(crate) is_snapshotuser: bool,
}

/// A user's profile from `/sns/userinfo` (snsapi_userinfo only), field for field.
///
/// Since late 2021 WeChat returns `sex` 0 and empty places. `headimgurl`'s last path segment is the
/// size (0 = 640×640, 46, 64, 96, 132) and is empty when the user has no avatar.
///
/// ```
/// use actix_wechat_auth::Profile;
/// let profile: Profile = serde_json::from_str(
///     r#"{"openid":"o1","nickname":"小明","sex":"1","headimgurl":"","privilege":[]}"#,
/// )?;
/// assert_eq!(profile.sex, 1);
/// assert_eq!(profile.province, "");
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Profile {
    /// The user's openid for this Official Account.
    #[serde(deserialize_with = "identity")]
    pub openid: String,
    /// Nickname: any Unicode, emoji included. HTML-escape it before rendering.
    #[serde(default)]
    pub nickname: String,
    /// 1 male, 2 female, 0 unknown (always 0 since late 2021).
    #[serde(default, deserialize_with = "int_or_string")]
    pub sex: i64,
    /// Province ("" since late 2021).
    #[serde(default)]
    pub province: String,
    /// City ("" since late 2021).
    #[serde(default)]
    pub city: String,
    /// Country ("" since late 2021).
    #[serde(default)]
    pub country: String,
    /// Avatar URL, "" when none.
    #[serde(default)]
    pub headimgurl: String,
    /// Privileges (e.g. WeChat card holders).
    #[serde(default)]
    pub privilege: Vec<String>,
    /// Present only when the account is bound to an Open Platform account.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "optional_identity"
    )]
    pub unionid: Option<String>,
}

/// Why a body could not be read as the expected answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ParseError {
    /// A well-formed WeChat error: `errcode` non-zero.
    Api { code: ErrCode, errmsg: String },
    /// Not JSON, or JSON of another shape.
    Malformed(String),
}

#[derive(Deserialize)]
struct ErrorProbe {
    #[serde(default, deserialize_with = "optional_int")]
    errcode: Option<i64>,
    #[serde(default)]
    errmsg: Option<String>,
}

/// An answer of `/sns/auth`: only the error fields matter.
#[derive(Deserialize)]
pub(crate) struct Acknowledgement {}

/// Parses a WeChat answer from the raw body bytes, whatever the Content-Type said.
pub(crate) fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ParseError> {
    // Some gateways in front of WeChat prefix a UTF-8 byte-order mark, which JSON forbids.
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    match parse_json(body) {
        Ok(value) => value,
        Err(first_error) => {
            // Raw control characters inside strings: escape them and try once more. Only on the
            // slow path, so well-formed answers are never copied.
            match escape_raw_controls(body) {
                Some(repaired) => parse_json(&repaired).unwrap_or(Err(first_error)),
                None => Err(first_error),
            }
        }
    }
}

/// `Ok(result)` when the body is JSON (the result being an API error or the value);
/// `Err` when it is not JSON at all.
fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<Result<T, ParseError>, ParseError> {
    let probe: ErrorProbe = serde_json::from_slice(body).map_err(malformed)?;
    if let Some(code) = probe.errcode.filter(|&c| c != 0) {
        let mut errmsg = probe.errmsg.unwrap_or_default();
        truncate_at_char(&mut errmsg, 200);
        return Ok(Err(ParseError::Api {
            code: ErrCode::from(code),
            errmsg,
        }));
    }
    Ok(serde_json::from_slice(body).map_err(malformed))
}

/// How the validating readers below start their messages: these name a field, never its value.
const REFUSED: &str = "refused: ";

fn malformed(e: serde_json::Error) -> ParseError {
    // serde_json's own messages can quote the input (`invalid type: string "…"`), which may hold
    // a token: keep only the category and the position, plus our own value-free reasons.
    let message = e.to_string();
    let reason = message
        .strip_prefix(REFUSED)
        .and_then(|m| m.split(" at line ").next())
        .map(|m| format!(" ({m})"))
        .unwrap_or_default();
    ParseError::Malformed(format!(
        "{:?} error{reason} at line {} column {}",
        e.classify(),
        e.line(),
        e.column()
    ))
}

/// Escapes the raw control bytes found inside JSON strings; `None` when there are none.
fn escape_raw_controls(body: &[u8]) -> Option<Vec<u8>> {
    let mut out: Option<Vec<u8>> = None;
    let (mut in_string, mut escaped) = (false, false);
    for (i, &b) in body.iter().enumerate() {
        let needs_escape = in_string && b < 0x20;
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else if b == b'"' {
            in_string = true;
        }
        if needs_escape {
            let out = out.get_or_insert_with(|| body[..i].to_vec());
            out.extend_from_slice(format!("\\u{b:04x}").as_bytes());
            escaped = false;
        } else if let Some(out) = out.as_mut() {
            out.push(b);
        }
    }
    out
}

pub(crate) fn truncate_at_char(s: &mut String, max_bytes: usize) {
    if s.len() > max_bytes {
        let mut end = max_bytes;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
}

/// A number as WeChat may send it: a JSON number, or a string holding one.
#[derive(Deserialize)]
#[serde(untagged)]
enum Loose {
    Int(i64),
    Float(f64),
    Str(String),
    /// `true`, `null`, an array…: no number.
    Other(serde::de::IgnoredAny),
}

impl Loose {
    /// The whole number it holds, if it holds exactly one.
    fn integer(&self) -> Option<i64> {
        match self {
            Loose::Int(n) => Some(*n),
            Loose::Str(s) => s.trim().parse().ok(),
            Loose::Float(_) | Loose::Other(_) => None,
        }
    }
}

/// `sex`: a number or a string; anything unreadable is 0 (unknown), since nothing depends on it.
fn int_or_string<'de, D: Deserializer<'de>>(de: D) -> Result<i64, D::Error> {
    Ok(match Loose::deserialize(de)? {
        Loose::Float(f) if f.is_finite() => f as i64,
        other => other.integer().unwrap_or(0),
    })
}

/// `errcode`: a number or a string. Something that is not a number at all is not an errcode.
fn optional_int<'de, D: Deserializer<'de>>(de: D) -> Result<Option<i64>, D::Error> {
    Ok(Loose::deserialize(de)?.integer())
}

/// `expires_in`: a non-negative whole number of seconds, as a number or a string.
fn seconds<'de, D: Deserializer<'de>>(de: D) -> Result<u64, D::Error> {
    Loose::deserialize(de)?
        .integer()
        .and_then(|n| u64::try_from(n).ok())
        .ok_or_else(|| serde::de::Error::custom(format!("{REFUSED}expires_in is not a number")))
}

/// `is_snapshotuser`: `0` and `1` (numbers or strings) mean what they say; any other value fails
/// closed, as a snapshot, because a wrong "no" would sign a virtual openid in.
fn snapshot_flag<'de, D: Deserializer<'de>>(de: D) -> Result<bool, D::Error> {
    Ok(Loose::deserialize(de)?.integer() != Some(0))
}

fn snapshot_flag_out<S: serde::Serializer>(flag: &bool, out: S) -> Result<S::Ok, S::Error> {
    out.serialize_u8(u8::from(*flag))
}

/// Longest openid or unionid accepted (WeChat's are 28–29 characters).
const MAX_IDENTITY: usize = 64;
/// Longest token accepted (WeChat's are about 110 bytes).
const MAX_TOKEN: usize = 512;

/// Whether `s` can be an openid or unionid: 1–64 characters of `[A-Za-z0-9_-]`.
fn is_identity(s: &str) -> bool {
    (1..=MAX_IDENTITY).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn identity<'de, D: Deserializer<'de>>(de: D) -> Result<String, D::Error> {
    let s = String::deserialize(de)?;
    if is_identity(&s) {
        Ok(s)
    } else {
        Err(serde::de::Error::custom(format!(
            "{REFUSED}openid is not 1-{MAX_IDENTITY} characters of [A-Za-z0-9_-] ({} bytes)",
            s.len()
        )))
    }
}

/// A unionid when there is one. `null` and `""` are "none": neither can merge two users.
fn optional_identity<'de, D: Deserializer<'de>>(de: D) -> Result<Option<String>, D::Error> {
    match Option::<String>::deserialize(de)? {
        None => Ok(None),
        Some(s) if s.is_empty() => Ok(None),
        Some(s) if is_identity(&s) => Ok(Some(s)),
        Some(s) => Err(serde::de::Error::custom(format!(
            "{REFUSED}unionid is not 1-{MAX_IDENTITY} characters of [A-Za-z0-9_-] ({} bytes)",
            s.len()
        ))),
    }
}

fn token<'de, D: Deserializer<'de>, T: From<String>>(de: D) -> Result<T, D::Error> {
    let s = String::deserialize(de)?;
    if (1..=MAX_TOKEN).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(T::from(s))
    } else {
        Err(serde::de::Error::custom(format!(
            "{REFUSED}a token is not 1-{MAX_TOKEN} bytes of visible ASCII ({} bytes)",
            s.len()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_answer_with_unknown_fields_and_text_plain_quirks() {
        let body = br#"{"access_token":"AT","expires_in":7200,"refresh_token":"RT","openid":"o1",
            "scope":"snsapi_base,snsapi_userinfo","is_snapshotuser":1,"unionid":"u1","new_field":{"x":[1]}}"#;
        let t: TokenResponse = parse(body).unwrap();
        assert_eq!(t.access_token.secret(), "AT");
        assert_eq!(t.refresh_token.secret(), "RT");
        assert_eq!(
            (t.expires_in, t.openid.as_str(), t.is_snapshotuser),
            (7200, "o1", true)
        );
        assert_eq!(t.unionid.as_deref(), Some("u1"));
    }

    #[test]
    fn nonzero_errcode_is_an_error_even_negative() {
        let e = parse::<TokenResponse>(br#"{"errcode":-1,"errmsg":"system error"}"#).unwrap_err();
        assert_eq!(
            e,
            ParseError::Api {
                code: ErrCode::SystemBusy,
                errmsg: "system error".into()
            }
        );
        let e = parse::<TokenResponse>(br#"{"errcode":40163,"errmsg":"code been used, rid: 1"}"#)
            .unwrap_err();
        assert!(matches!(
            e,
            ParseError::Api {
                code: ErrCode::CodeUsed,
                ..
            }
        ));
        let ok: Acknowledgement = parse(br#"{"errcode":0,"errmsg":"ok"}"#).unwrap();
        let _ = ok;
    }

    #[test]
    fn sex_as_number_or_string_and_raw_control_characters() {
        let p: Profile =
            parse(b"{\"openid\":\"o\",\"nickname\":\"a\x01b\tc\",\"sex\":\"2\"}").unwrap();
        assert_eq!(p.nickname, "a\u{1}b\tc");
        assert_eq!(p.sex, 2);
        let p: Profile =
            parse(br#"{"openid":"o","nickname":"\ud83d\ude00 \"q\"","sex":1}"#).unwrap();
        assert_eq!(p.nickname, "😀 \"q\"");
        assert_eq!(p.sex, 1);
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        for body in [
            &b""[..],
            b"<html>",
            b"{",
            b"\xff\xfe",
            b"null",
            b"[1,2]",
            b"{\"openid\":5}",
        ] {
            assert!(
                matches!(parse::<Profile>(body), Err(ParseError::Malformed(_))),
                "{body:?}"
            );
        }
    }

    #[test]
    fn numbers_as_strings_and_a_byte_order_mark() {
        let body =
            "\u{feff}{\"access_token\":\"AT\",\"expires_in\":\"7200\",\"refresh_token\":\"RT\",\
                    \"openid\":\"o1\",\"is_snapshotuser\":\"0\"}";
        let t: TokenResponse = parse(body.as_bytes()).unwrap();
        assert_eq!((t.expires_in, t.is_snapshotuser), (7200, false));
        let e =
            parse::<TokenResponse>("\u{feff}{\"errcode\":\"40029\",\"errmsg\":\"x\"}".as_bytes());
        assert!(matches!(
            e,
            Err(ParseError::Api {
                code: ErrCode::InvalidCode,
                ..
            })
        ));
        for bad in [r#""soon""#, "-5", "1.5", "null"] {
            let body = format!(
                r#"{{"access_token":"AT","expires_in":{bad},"refresh_token":"RT","openid":"o1"}}"#
            );
            assert!(parse::<TokenResponse>(body.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn snapshot_flag_fails_closed() {
        let flag = |v: &str| {
            let body = format!(
                r#"{{"access_token":"AT","expires_in":7200,"refresh_token":"RT","openid":"o1","is_snapshotuser":{v}}}"#
            );
            parse::<TokenResponse>(body.as_bytes())
                .unwrap()
                .is_snapshotuser
        };
        assert!(!flag("0") && !flag(r#""0""#));
        for snapshot in [
            "1", r#""1""#, r#""1.0""#, "0.5", "true", "false", "null", "2", r#""""#,
        ] {
            assert!(flag(snapshot), "{snapshot}");
        }
        // The flag survives the trip through a shared refresh.
        let body = br#"{"access_token":"AT","expires_in":7200,"refresh_token":"RT","openid":"o1"}"#;
        let t: TokenResponse = parse(body).unwrap();
        let back: TokenResponse = parse(serde_json::to_string(&t).unwrap().as_bytes()).unwrap();
        assert!(!back.is_snapshotuser);
    }

    #[test]
    fn identities_and_tokens_are_validated() {
        let answer = |openid: &str, unionid: &str, at: &str| {
            format!(
                r#"{{"access_token":"{at}","expires_in":7200,"refresh_token":"RT","openid":"{openid}","unionid":"{unionid}"}}"#
            )
        };
        assert!(parse::<TokenResponse>(answer("oAb_-9", "uX", "AT").as_bytes()).is_ok());
        let long = "o".repeat(65);
        let huge = "A".repeat(513);
        for (openid, unionid, at) in [
            ("", "u1", "AT"),
            (long.as_str(), "u1", "AT"),
            ("o 1", "u1", "AT"),
            ("o1", "u/1", "AT"),
            ("o1", long.as_str(), "AT"),
            ("o1", "u1", ""),
            ("o1", "u1", huge.as_str()),
        ] {
            let e = parse::<TokenResponse>(answer(openid, unionid, at).as_bytes()).unwrap_err();
            let ParseError::Malformed(why) = e else {
                panic!("{e:?}")
            };
            assert!(why.contains("refused") || why.contains("is not"), "{why}");
            assert!(!why.contains(&huge) && !why.contains(&long), "{why}");
        }
        let empty_union = answer("o1", "", "AT");
        assert_eq!(
            parse::<TokenResponse>(empty_union.as_bytes())
                .unwrap()
                .unionid,
            None
        );
        assert!(parse::<Profile>(br#"{"openid":""}"#).is_err());
    }
}

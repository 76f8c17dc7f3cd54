//! Hostile input as property tests (proptest), and the limits, each tested.
//!
//! - The parser: arbitrary bytes, and JSON-shaped answers with hostile contents (raw control
//!   characters, odd types, unknown fields), never panic; well-formed answers parse whatever their
//!   strings hold; a non-zero `errcode` is an error whatever else the body says.
//! - The return-to: whatever the candidate, a browser resolving the callback's `Location` stays on
//!   the app's origin (checked with the WHATWG URL parser), and the middleware only ever stores
//!   such return-tos, whatever raw request target it sees.
//! - The callback: arbitrary queries (repeated, percent-encoded or raw non-UTF-8 parameters, huge
//!   values) get a 400 and WeChat is never called; with a real `state`, hostile `code`s get a 400,
//!   a 403 or a fresh authorization, never a 5xx; every answer carries `Referrer-Policy` (the restart
//!   after a stale code too: finding F1 in RELIABILITY.md) and never echoes the query.
//! - Session cookies: tampered, spliced or signed with another key, they are anonymous; with the
//!   right key (data that passed the MAC) but arbitrary content, never a 5xx.
//! - Limits: pending sign-ins per session, header and query sizes (actix-http's 96 headers and
//!   128 KiB head, the `http` crate's 65,534-byte URI), WeChat's answer size and the profile caps.
//! - WeChat answering for another openid (a profile at the callback, a refresh later): refused.
//!
//! Requests are written by hand on a TCP socket so that what reaches the server is exactly what
//! the property generated (an HTTP client would normalise it). Cases per property: the numbers
//! below, or `PROPTEST_CASES` for every property.

#[path = "../../tests/it/common/mod.rs"]
#[allow(
    dead_code,
    reason = "the harness of tests/it, of which these properties use a part"
)]
mod common;

use std::{
    io::{Read as _, Write as _},
    net::{TcpListener, TcpStream},
    time::Duration,
};

use actix_session::{
    config::CookieContentSecurity, storage::CookieSessionStore, SessionMiddleware,
};
use actix_web::{
    cookie::{Cookie, CookieJar, Key, SameSite},
    web, App, HttpResponse, HttpServer,
};
use actix_wechat_auth::{
    __private::parse_answers,
    emulator::{EmulatedUser, Emulator, Endpoint},
    same_origin_path, Scope, WeChatAuth, WeChatUser,
};
use common::{Setup, Shape};
use proptest::{
    prelude::*,
    test_runner::{Config, TestCaseError, TestRunner},
};
use url::Url;

// ---------------------------------------------------------------------------------------------
// Helpers

fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn config(default_cases: u32) -> Config {
    Config {
        cases: cases(default_cases),
        failure_persistence: None,
        ..Config::default()
    }
}

fn runner(default_cases: u32) -> TestRunner {
    TestRunner::new(config(default_cases))
}

/// Counts outcomes inside a property (whose closure is `Fn`), to print at the end.
#[derive(Default)]
struct Tally(std::cell::RefCell<std::collections::BTreeMap<String, u32>>);

impl Tally {
    fn add(&self, key: impl Into<String>) {
        *self.0.borrow_mut().entry(key.into()).or_default() += 1;
    }

    fn get(&self, key: &str) -> u32 {
        self.0.borrow().get(key).copied().unwrap_or(0)
    }

    fn any(&self, pred: impl Fn(&str) -> bool) -> bool {
        self.0.borrow().keys().any(|k| pred(k))
    }
}

impl std::fmt::Debug for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.borrow().fmt(f)
    }
}

/// An answer read off the socket.
#[derive(Debug)]
struct Raw {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Raw {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The `id` cookie this answer sets, as `id=VALUE`.
    fn session_cookie(&self) -> Option<String> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
            .find_map(|(_, v)| {
                v.starts_with("id=")
                    .then(|| v.split(';').next().unwrap().to_owned())
            })
    }

    /// The crate's own error answers name their kind: JSON `error`, or the HTML page's code line.
    fn crate_error(&self) -> Option<&'static str> {
        [
            "invalid_state",
            "bad_callback",
            "access_denied",
            "code_rejected",
            "sign_in_required",
            "upstream_invalid",
            "upstream_timeout",
            "upstream_unavailable",
            "wechat_error",
            "session_error",
            "misconfigured",
        ]
        .into_iter()
        .find(|e| self.body.contains(e))
    }
}

/// Writes `GET target` with `headers` on a fresh connection and reads the whole answer. `Err`
/// when the server closed without answering (it may reset a connection it refused to read).
fn raw_get(addr: &str, target: &[u8], headers: &[(&str, &[u8])]) -> Result<Raw, String> {
    let mut stream = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .set_write_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut req = b"GET ".to_vec();
    req.extend_from_slice(target);
    req.extend_from_slice(b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    // Pages from WeChat's browser, where the Official Account flow (a 302) answers a challenge;
    // callbacks from a desktop one, where a lost state is a 400 at once (in WeChat it restarts
    // the sign-in once, which `pages.rs` tests).
    let ua = if target.starts_with(b"/wechat/callback") {
        common::DESKTOP_UA
    } else {
        common::WECHAT_UA
    };
    req.extend_from_slice(format!("User-Agent: {ua}\r\n").as_bytes());
    for (name, value) in headers {
        req.extend_from_slice(name.as_bytes());
        req.extend_from_slice(b": ");
        req.extend_from_slice(value);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"\r\n");
    // The server may answer and close before reading everything (an oversized head).
    let _ = stream.write_all(&req);
    let mut buf = Vec::new();
    let read = stream.read_to_end(&mut buf);
    let Some(split) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Err(format!("no answer ({} bytes, {read:?})", buf.len()));
    };
    let head = String::from_utf8_lossy(&buf[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line: {head}"))?;
    let headers = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    Ok(Raw {
        status,
        headers,
        body: String::from_utf8_lossy(&buf[split + 4..]).into_owned(),
    })
}

fn addr(base: &str) -> &str {
    base.strip_prefix("http://").unwrap()
}

/// Runs a future on a fresh actix system (the properties themselves are synchronous).
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    actix_web::rt::System::new().block_on(f)
}

use common::cookie_header;

/// Applies an answer's `Set-Cookie`s to a `Cookie` header value, as a browser would (by name:
/// these tests use one path per name).
fn keep_cookies(cookie: &mut String, res: &Raw) {
    let mut jar: Vec<(String, String)> = cookie
        .split("; ")
        .filter_map(|c| c.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    for (_, set) in res
        .headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
    {
        let (pair, attributes) = set.split_once(';').unwrap_or((set, ""));
        let (name, value) = pair.split_once('=').unwrap();
        jar.retain(|(n, _)| n != name);
        if !attributes.contains("Max-Age=0") {
            jar.push((name.to_owned(), value.to_owned()));
        }
    }
    *cookie = jar
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("; ");
}

/// A pending sign-in cookie's content (`{"s": state, "t": return_to, "c": scope, …}`), if it is
/// one of ours (the harness configures its key).
fn open_pending(name: &str, value: &str) -> Option<serde_json::Value> {
    let jar = actix_web::cookie::CookieJar::new();
    let cookie = actix_web::cookie::Cookie::new(name.to_owned(), value.to_owned());
    let opened = jar.private(&common::pending_key()).decrypt(cookie)?;
    serde_json::from_str(opened.value()).ok()
}

/// The pending sign-ins a `Cookie` header value holds, oldest first.
fn pending_in(cookie: &str) -> Vec<serde_json::Value> {
    let mut pending: Vec<serde_json::Value> = cookie
        .split("; ")
        .filter_map(|c| c.split_once('='))
        .filter(|(k, _)| k.starts_with("wxs_"))
        .filter_map(|(k, v)| open_pending(k, v))
        .collect();
    pending.sort_by_key(|p| p["at"].as_u64());
    pending
}

/// Starts a sign-in on `path` with the cookies `cookie` (updated in place): the new `state`.
fn challenge(addr: &str, path: &str, cookie: &mut String) -> String {
    let res = raw_get(addr, path.as_bytes(), &[("cookie", cookie.as_bytes())]).unwrap();
    assert_eq!(res.status, 302, "{res:?}");
    keep_cookies(cookie, &res);
    let location = res.header("location").unwrap();
    Url::parse(location)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned()
}

// ---------------------------------------------------------------------------------------------
// The parser

/// A JSON value, rendered by hand so that strings may hold raw control characters as WeChat's
/// sometimes do.
#[derive(Debug, Clone)]
enum J {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Arr(Vec<J>),
    Obj(Vec<(String, J)>),
}

impl J {
    fn render(&self, raw_controls: bool, out: &mut String) {
        match self {
            J::Null => out.push_str("null"),
            J::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            J::Int(n) => out.push_str(&n.to_string()),
            J::Float(f) if f.is_finite() => out.push_str(&format!("{f:e}")),
            // Out of f64's range is not JSON any parser accepts; the corruption properties cover it.
            J::Float(_) => out.push_str("1e308"),
            J::Str(s) => render_str(s, raw_controls, out),
            J::Arr(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.render(raw_controls, out);
                }
                out.push(']');
            }
            J::Obj(fields) => {
                out.push('{');
                for (i, (k, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    render_str(k, false, out);
                    out.push(':');
                    v.render(raw_controls, out);
                }
                out.push('}');
            }
        }
    }

    fn to_body(&self, raw_controls: bool) -> Vec<u8> {
        let mut out = String::new();
        self.render(raw_controls, &mut out);
        out.into_bytes()
    }
}

fn render_str(s: &str, raw_controls: bool, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 && !raw_controls => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Strings as WeChat may send them: any Unicode, quotes, backslashes, control characters.
fn wechat_string() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            4 => any::<char>(),
            1 => (0u8..0x20).prop_map(char::from),
            1 => prop::sample::select(vec!['"', '\\', '/', '\u{2028}', '😀', '微']),
        ],
        0..24,
    )
    .prop_map(String::from_iter)
}

fn json_value() -> impl Strategy<Value = J> {
    let leaf = prop_oneof![
        Just(J::Null),
        any::<bool>().prop_map(J::Bool),
        any::<i64>().prop_map(J::Int),
        any::<f64>().prop_map(J::Float),
        wechat_string().prop_map(J::Str),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(J::Arr),
            prop::collection::vec(("x_[a-z]{0,6}", inner), 0..6).prop_map(J::Obj),
        ]
    })
}

/// `is_snapshotuser` and `sex` arrive as numbers, strings, booleans or null.
fn loose_int() -> impl Strategy<Value = J> {
    prop_oneof![
        any::<i64>().prop_map(J::Int),
        any::<f64>().prop_map(J::Float),
        wechat_string().prop_map(J::Str),
        "-?[0-9]{1,25}".prop_map(J::Str),
        any::<bool>().prop_map(J::Bool),
        Just(J::Null),
    ]
}

/// A token as WeChat issues it: visible ASCII, at most 512 bytes.
fn wire_token() -> impl Strategy<Value = String> {
    "[!-~]{1,512}"
}

/// An openid or unionid: 1–64 characters of `[A-Za-z0-9_-]`.
fn identity() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_-]{1,64}"
}

/// A well-formed token answer with hostile contents, extra fields, in any field order.
fn token_answer() -> impl Strategy<Value = J> {
    (
        wire_token(),
        0..=i64::MAX,
        wire_token(),
        identity(),
        prop::option::of(wechat_string()),
        prop::option::of(prop::option::of(identity())),
        prop::option::of(loose_int()),
        prop::option::of(Just(0i64)),
        prop::collection::vec(("x_[a-z]{0,6}", json_value()), 0..4),
        any::<u64>(),
    )
        .prop_map(
            |(at, expires, rt, openid, scope, unionid, snapshot, errcode, extra, order)| {
                let mut fields = vec![
                    ("access_token".to_owned(), J::Str(at)),
                    ("expires_in".to_owned(), J::Int(expires)),
                    ("refresh_token".to_owned(), J::Str(rt)),
                    ("openid".to_owned(), J::Str(openid)),
                ];
                if let Some(scope) = scope {
                    fields.push(("scope".into(), J::Str(scope)));
                }
                if let Some(unionid) = unionid {
                    fields.push(("unionid".into(), unionid.map_or(J::Null, J::Str)));
                }
                if let Some(snapshot) = snapshot {
                    fields.push(("is_snapshotuser".into(), snapshot));
                }
                if let Some(code) = errcode {
                    fields.push(("errcode".into(), J::Int(code)));
                }
                fields.extend(extra);
                // A deterministic shuffle from the generated number.
                let n = fields.len();
                for i in (1..n).rev() {
                    let j = (order.rotate_left(i as u32) as usize) % (i + 1);
                    fields.swap(i, j);
                }
                J::Obj(fields)
            },
        )
}

proptest! {
    #![proptest_config(config(3000))]

    /// Whatever WeChat (or something in between) sends, the parser returns.
    #[test]
    fn arbitrary_bytes_never_panic_the_parser(body in prop::collection::vec(any::<u8>(), 0..2048)) {
        let _ = parse_answers(&body);
    }

    /// JSON-shaped bodies, then cut or corrupted at random: no panic either.
    #[test]
    fn corrupted_json_never_panics_the_parser(
        value in json_value(),
        raw in any::<bool>(),
        cut in any::<prop::sample::Index>(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
    ) {
        let mut body = value.to_body(raw);
        let _ = parse_answers(&body);
        for (at, byte) in flips {
            if !body.is_empty() {
                let i = at.index(body.len());
                body[i] = byte;
            }
        }
        let _ = parse_answers(&body);
        let keep = cut.index(body.len() + 1);
        let _ = parse_answers(&body[..keep]);
    }
}

proptest! {
    #![proptest_config(config(1000))]

    /// A well-formed token answer parses as one whatever its strings hold, raw control characters
    /// included, and whatever unknown fields come along.
    #[test]
    fn token_answers_parse_whatever_their_strings_hold(answer in token_answer(), raw in any::<bool>()) {
        let body = answer.to_body(raw);
        let [token, _, ack] = parse_answers(&body);
        prop_assert!(token, "token answer refused: {}", String::from_utf8_lossy(&body));
        prop_assert!(ack);
    }

    /// An identity or a token outside what WeChat issues is refused, never signed in: an empty
    /// or oversized openid, a unionid or token with other characters.
    #[test]
    fn odd_identities_and_tokens_are_refused(
        answer in token_answer(),
        field in prop::sample::select(vec!["openid", "unionid", "access_token", "refresh_token"]),
        bad in prop_oneof![
            Just(String::new()),
            "[A-Za-z0-9]{513,600}",
            "[a-z]{0,5}[ /+=.!\u{80}-\u{10ffff}][a-z]{0,5}",
        ],
    ) {
        let J::Obj(mut fields) = answer else { unreachable!() };
        let is_token = field.ends_with("_token");
        if is_token && !bad.is_empty() && bad.len() <= 512 && bad.bytes().all(|b| b.is_ascii_graphic()) {
            // A visible-ASCII token under 512 bytes is a token.
            return Ok(());
        }
        if field == "unionid" && bad.is_empty() {
            // An empty unionid is "none".
            return Ok(());
        }
        fields.retain(|(k, _)| k != field);
        fields.push((field.to_owned(), J::Str(bad.clone())));
        let body = J::Obj(fields).to_body(false);
        prop_assert!(!parse_answers(&body)[0], "{field}={bad:?} accepted");
    }

    /// A non-zero `errcode` is an error whatever else the body holds (even a whole token answer).
    #[test]
    fn a_non_zero_errcode_is_an_error_whatever_else_is_there(
        code in any::<i64>().prop_filter("non-zero", |c| *c != 0),
        errmsg in prop::option::of(wechat_string()),
        rest in token_answer(),
        raw in any::<bool>(),
    ) {
        let J::Obj(mut fields) = rest else { unreachable!() };
        fields.retain(|(k, _)| k != "errcode");
        fields.insert(0, ("errcode".into(), J::Int(code)));
        if let Some(errmsg) = errmsg {
            fields.push(("errmsg".into(), J::Str(errmsg)));
        }
        let body = J::Obj(fields).to_body(raw);
        prop_assert_eq!(parse_answers(&body), [false; 3], "{}", String::from_utf8_lossy(&body));
    }
}

/// Nesting past serde_json's recursion limit (128) is refused; nesting inside a field nobody
/// reads is skipped without recursion, and so is a field only the other answers read. Neither
/// overflows the stack, and neither is a token or a profile. (Such bodies, and `[]`, read as a
/// `/sns/auth` acknowledgement: they hold no errcode.)
#[test]
fn deeply_nested_json_never_overflows_the_stack() {
    for depth in [200, 10_000, 100_000] {
        let arrays = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        assert_eq!(parse_answers(arrays.as_bytes()), [false; 3]);
        let unknown_field = format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth));
        assert_eq!(
            parse_answers(unknown_field.as_bytes()),
            [false, false, true]
        );
        let known_field = format!(
            "{{\"openid\":\"o\",\"privilege\":{}{}}}",
            "[".repeat(depth),
            "]".repeat(depth)
        );
        assert_eq!(parse_answers(known_field.as_bytes()), [false, false, true]);
    }
    assert_eq!(parse_answers(b"[]"), [false, false, true]);
}

// ---------------------------------------------------------------------------------------------
// The return-to

/// Pieces browsers and URL parsers treat specially.
fn hostile_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "/", "//", "\\", "/\\", "\\/", "%2F", "%2f", "%5C", "%5c", "%09", "%0A", "%00", "\t",
            "\n", "\r", " ", "\u{0}", "\u{7f}", "\u{3000}", "\u{ff0f}", "\u{2215}", "\u{a0}", ".",
            "..", "./", "../", "@", ":", "?", "#", "&", "=", "http:", "https:", "https://",
            "javascript:", "data:", "evil.example", "EVIL.example:443", "a", "é", "%",
        ])
        .prop_map(str::to_owned),
        1 => any::<String>(),
    ]
}

fn return_to_candidate() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec!["/", "", "//", "/\\", " /", "\t/"]),
        prop::collection::vec(hostile_piece(), 0..10),
    )
        .prop_map(|(start, pieces)| format!("{start}{}", pieces.concat()))
}

/// The origin a browser lands on after the callback's `Location: {mount}{return_to}#`.
fn landing_origin(mount: &str, return_to: &str) -> Option<String> {
    let callback = Url::parse(&format!(
        "https://h5.example.com{mount}/wechat/callback?code=c&state=s"
    ))
    .ok()?;
    let landed = callback.join(&format!("{mount}{return_to}#")).ok()?;
    Some(landed.origin().ascii_serialization())
}

proptest! {
    #![proptest_config(config(5000))]

    /// The return-to is the candidate or `/`, and a browser resolving it never leaves the origin.
    #[test]
    fn return_to_never_leaves_the_origin(candidate in return_to_candidate()) {
        let kept = same_origin_path(&candidate);
        prop_assert!(kept == "/" || kept == candidate);
        prop_assert!(kept.starts_with('/') && kept.len() <= 256);
        for mount in ["", "/shop"] {
            let landed = landing_origin(mount, kept);
            prop_assert_eq!(
                landed.as_deref(),
                Some("https://h5.example.com"),
                "{:?} under {:?}", kept, mount
            );
        }
    }
}

/// Request targets as they arrive on the wire: path and query bytes, percent-encoding tricks.
fn raw_target() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        4 => prop::sample::select(vec![
            "/", "//", "%2F", "%2F%2F", "%5C", "%09", "%0D%0A", ".", "..", "@", ":", "?", "&", "=",
            "%", "%zz", "evil.example", "https:", "a", "info", "%E5%BE%AE", "+", ";",
        ])
        .prop_map(|s| s.as_bytes().to_vec()),
        1 => prop::collection::vec(0x21u8..0x7f, 1..8),
        1 => prop::collection::vec(0x80u8..=0xff, 1..4),
    ];
    (
        prop::sample::select(vec!["/info", "/base", "//info", "/info/", "/x"]),
        prop::collection::vec(piece, 0..12),
    )
        .prop_map(|(start, pieces)| {
            let mut target = start.as_bytes().to_vec();
            for p in pieces {
                target.extend(p);
            }
            target
        })
}

/// Whatever raw target a page request has, the return-to the middleware records is one a browser
/// resolves on the app's origin.
#[test]
fn recorded_return_tos_stay_on_the_origin_whatever_the_request_target() {
    let s = Setup::new(Shape::Strict, |c| c);
    let addr = addr(&s.app.base).to_owned();
    let origin = Url::parse(&s.app.base)
        .unwrap()
        .origin()
        .ascii_serialization();
    let mut runner = runner(300);
    let statuses = Tally::default();
    runner
        .run(&raw_target(), |target| {
            let res = raw_get(&addr, &target, &[]).map_err(TestCaseError::fail)?;
            statuses.add(res.status.to_string());
            prop_assert!(res.status < 500, "{res:?}");
            if res.status != 302 {
                // actix refused the request line (400) before the middleware saw it.
                prop_assert_eq!(res.status, 400, "{:?}", res);
                return Ok(());
            }
            prop_assert!(
                res.session_cookie().is_none(),
                "no session before a sign-in"
            );
            let mut cookie = String::new();
            keep_cookies(&mut cookie, &res);
            let pending = pending_in(&cookie);
            prop_assert_eq!(pending.len(), 1, "{:?}", res);
            let return_to = pending[0]["t"].as_str().unwrap().to_owned();
            prop_assert_eq!(same_origin_path(&return_to), return_to.as_str());
            let callback = Url::parse(&s.url("/wechat/callback?code=c&state=s")).unwrap();
            let landed = callback.join(&format!("{return_to}#")).unwrap();
            prop_assert_eq!(landed.origin().ascii_serialization(), origin.clone());
            Ok(())
        })
        .unwrap();
    println!("answers by status: {statuses:?}");
    assert!(statuses.get("302") > 100, "{statuses:?}");
}

// ---------------------------------------------------------------------------------------------
// The callback

/// A callback query: parameters whose names and values play every trick.
fn callback_query() -> impl Strategy<Value = Vec<u8>> {
    let key = prop_oneof![
        3 => prop::sample::select(vec!["code", "state"]).prop_map(|s| s.as_bytes().to_vec()),
        2 => prop::sample::select(vec![
            "CODE", "State", "st%61te", "co%64e", "state%00", "state[]", "", "code ", "%73tate",
            "x",
        ])
        .prop_map(|s| s.as_bytes().to_vec()),
        1 => "[a-z_]{1,8}".prop_map(String::into_bytes),
    ];
    let value = prop_oneof![
        3 => "[A-Za-z0-9]{1,40}".prop_map(String::into_bytes),
        1 => "[A-Za-z0-9]{129,300}".prop_map(String::into_bytes),
        // Four of the five a query can hold pass 65,534 bytes (the `http` crate's URI limit:
        // actix's bare 400); five stay under actix's 128 KiB head, past which the answer is a 431
        // or a closed connection depending on how the bytes arrive (`oversized_heads_…` has it).
        1 => (1000usize..20_000).prop_map(|n| "A".repeat(n).into_bytes()),
        2 => prop::collection::vec(any::<u8>(), 0..40).prop_map(|bytes| {
            percent_encoding::percent_encode(&bytes, percent_encoding::NON_ALPHANUMERIC)
                .to_string()
                .into_bytes()
        }),
        1 => prop::collection::vec(0x80u8..=0xff, 1..12),
        1 => prop::sample::select(vec![
            "", "+", "%", "%%", "%zz", "%00", "%FF%FE", "=", "&&", "%26state%3Dx", "a%20b", "%2B",
        ])
        .prop_map(|s| s.as_bytes().to_vec()),
    ];
    prop::collection::vec((key, prop::option::of(value), any::<bool>()), 0..6).prop_map(|pairs| {
        let mut query = Vec::new();
        for (i, (key, value, semicolon)) in pairs.into_iter().enumerate() {
            if i > 0 {
                query.push(if semicolon { b';' } else { b'&' });
            }
            query.extend(key);
            if let Some(value) = value {
                query.push(b'=');
                query.extend(value);
            }
        }
        query
    })
}

/// Arbitrary callback queries from a browser with pending sign-ins (whose states they never
/// guess) or from none: a 400 naming the problem, WeChat never called, nothing echoed.
#[test]
fn arbitrary_callback_queries_get_a_400_never_a_500() {
    let s = Setup::new(Shape::Routes, |c| c);
    let addr = addr(&s.app.base).to_owned();
    let mut cookie = String::new();
    challenge(&addr, "/info", &mut cookie);
    challenge(&addr, "/base", &mut cookie);
    let mut runner = runner(400);
    let kinds = Tally::default();
    runner
        .run(
            &(callback_query(), any::<bool>()),
            |(query, with_session)| {
                let mut target = b"/wechat/callback?".to_vec();
                target.extend(&query);
                let headers: Vec<(&str, &[u8])> = if with_session {
                    vec![("cookie", cookie.as_bytes())]
                } else {
                    vec![]
                };
                let res = raw_get(&addr, &target, &headers).map_err(TestCaseError::fail)?;
                let kind = res.crate_error().unwrap_or("actix");
                kinds.add(format!("{} {kind}", res.status));
                prop_assert_eq!(
                    res.status,
                    400,
                    "{:?} for {:?}",
                    res,
                    String::from_utf8_lossy(&query)
                );
                if let Some(kind) = res.crate_error() {
                    prop_assert!(
                        kind == "invalid_state" || kind == "bad_callback",
                        "{}",
                        kind
                    );
                    prop_assert_eq!(res.header("referrer-policy"), Some("no-referrer"));
                    prop_assert_eq!(res.header("cache-control"), Some("no-store"));
                    // The page never shows what the query held.
                    for value in query.split(|b| *b == b'&' || *b == b';' || *b == b'=') {
                        if value.len() >= 12 {
                            let value = String::from_utf8_lossy(value);
                            prop_assert!(!res.body.contains(value.as_ref()), "{} echoed", value);
                        }
                    }
                }
                Ok(())
            },
        )
        .unwrap();
    println!("answers: {kinds:?}");
    assert_eq!(s.emulator.call_count(Endpoint::AccessToken), 0);
    assert!(kinds.any(|k| k.contains("invalid_state")), "{kinds:?}");
    assert!(kinds.any(|k| k.contains("bad_callback")), "{kinds:?}");
}

/// `code` values that play tricks, sent with the browser's real `state`.
fn hostile_code() -> impl Strategy<Value = Option<Vec<u8>>> {
    prop::option::of(prop_oneof![
        Just(Vec::new()),
        "[A-Za-z0-9]{1,40}".prop_map(String::into_bytes),
        (513usize..2000).prop_map(|n| "c".repeat(n).into_bytes()),
        prop::collection::vec(any::<u8>(), 1..30).prop_map(|bytes| {
            percent_encoding::percent_encode(&bytes, percent_encoding::NON_ALPHANUMERIC)
                .to_string()
                .into_bytes()
        }),
        prop::sample::select(vec![
            "%00",
            "a%0Ab",
            "a+b",
            "%E5%BE%AE",
            "<script>",
            "%22%3E"
        ])
        .prop_map(|s| s.as_bytes().to_vec()),
    ])
}

/// With the real `state`, a hostile `code` (or a repeated parameter) gets a clear 4xx or a fresh
/// authorization; never a 5xx; every answer carries `Referrer-Policy`.
#[test]
fn hostile_codes_with_a_real_state_never_get_a_500() {
    let s = Setup::new(Shape::Routes, |c| c);
    let addr = addr(&s.app.base).to_owned();
    let mut runner = runner(120);
    let outcomes = Tally::default();
    runner
        .run(&(hostile_code(), 0u8..4), |(code, repeat)| {
            let mut cookie = String::new();
            let state = challenge(&addr, "/info", &mut cookie);
            let mut target = format!("/wechat/callback?state={state}").into_bytes();
            if let Some(code) = &code {
                target.extend(b"&code=");
                target.extend(code);
            }
            match repeat {
                1 => target.extend(format!("&state={state}").as_bytes()),
                2 => target.extend(b"&code=again"),
                _ => {}
            }
            let res = raw_get(&addr, &target, &[("cookie", cookie.as_bytes())])
                .map_err(TestCaseError::fail)?;
            let kind = res.crate_error().unwrap_or("");
            outcomes.add(format!("{} {kind}", res.status));
            prop_assert!(res.status < 500, "{:?}", res);
            if res.status == 400 && res.body.is_empty() {
                // actix refused the request target (e.g. a raw `<`): the middleware never ran.
                return Ok(());
            }
            let decoded = code.as_ref().map(|c| {
                url::form_urlencoded::parse(&[b"c=".as_slice(), c].concat())
                    .next()
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default()
            });
            let expected = if repeat == 1 || (repeat == 2 && code.is_some()) {
                (400, "bad_callback")
            } else {
                match decoded.as_deref().or((repeat == 2).then_some("again")) {
                    None | Some("") => (403, "access_denied"),
                    Some(c) if c.len() > 512 || !c.bytes().all(|b| b.is_ascii_graphic()) => {
                        (400, "bad_callback")
                    }
                    // Unknown to WeChat: 40029, so the sign-in starts over once.
                    Some(_) => (302, ""),
                }
            };
            prop_assert_eq!((res.status, kind), expected, "{:?}", res);
            // Every answer of the callback, the restart's 302 included (finding F1, fixed).
            prop_assert_eq!(
                res.header("referrer-policy"),
                Some("no-referrer"),
                "{:?}",
                res
            );
            Ok(())
        })
        .unwrap();
    println!("outcomes: {outcomes:?}");
}

// ---------------------------------------------------------------------------------------------
// Session cookies

/// How an attacker may change a cookie they hold.
#[derive(Debug, Clone)]
enum Tamper {
    /// Replace one character of the (percent-encoded) value.
    Replace(prop::sample::Index, char),
    /// Cut the value.
    Truncate(prop::sample::Index),
    /// Insert a character.
    Insert(prop::sample::Index, char),
    /// This browser's MAC on the other browser's content.
    Splice,
    /// The content with a changed openid (the other browser's), MAC kept.
    SwapOpenid,
    /// The content signed with a key of the attacker's.
    Foreign { private: bool },
    /// Arbitrary bytes.
    Garbage(Vec<u8>),
}

impl Tamper {
    fn name(&self) -> &'static str {
        match self {
            Tamper::Replace(..) => "replace",
            Tamper::Truncate(_) => "truncate",
            Tamper::Insert(..) => "insert",
            Tamper::Splice => "splice",
            Tamper::SwapOpenid => "swap openid",
            Tamper::Foreign { private: false } => "foreign key, signed",
            Tamper::Foreign { private: true } => "foreign key, private",
            Tamper::Garbage(_) => "garbage",
        }
    }
}

fn tamper() -> impl Strategy<Value = Tamper> {
    let ch = prop_oneof![
        prop::sample::select(vec![
            'A', 'a', '0', '%', '=', '+', '/', '"', '{', '}', ';', ' '
        ]),
        any::<char>().prop_filter("visible ASCII", |c| c.is_ascii_graphic()),
    ];
    prop_oneof![
        4 => (any::<prop::sample::Index>(), ch.clone()).prop_map(|(i, c)| Tamper::Replace(i, c)),
        1 => any::<prop::sample::Index>().prop_map(Tamper::Truncate),
        1 => (any::<prop::sample::Index>(), ch).prop_map(|(i, c)| Tamper::Insert(i, c)),
        1 => Just(Tamper::Splice),
        1 => Just(Tamper::SwapOpenid),
        1 => any::<bool>().prop_map(|private| Tamper::Foreign { private }),
        1 => prop::collection::vec(0x21u8..0x7f, 0..200).prop_map(Tamper::Garbage),
    ]
}

fn decode(value: &str) -> String {
    percent_encoding::percent_decode_str(value)
        .decode_utf8()
        .unwrap()
        .into_owned()
}

fn encode_cookie(value: &str) -> String {
    Cookie::new("id", value.to_owned())
        .encoded()
        .to_string()
        .strip_prefix("id=")
        .unwrap()
        .to_owned()
}

fn apply(t: &Tamper, mine: &str, other: &str, my_openid: &str, other_openid: &str) -> String {
    let mut v: Vec<char> = mine.chars().collect();
    match t {
        Tamper::Replace(i, c) => {
            let i = i.index(v.len());
            v[i] = *c;
            v.into_iter().collect()
        }
        Tamper::Truncate(i) => v[..i.index(v.len())].iter().collect(),
        Tamper::Insert(i, c) => {
            v.insert(i.index(v.len() + 1), *c);
            v.into_iter().collect()
        }
        Tamper::Splice => {
            let (mine, other) = (decode(mine), decode(other));
            encode_cookie(&format!("{}{}", &mine[..44], &other[44..]))
        }
        Tamper::SwapOpenid => encode_cookie(&decode(mine).replace(my_openid, other_openid)),
        Tamper::Foreign { private } => {
            let content = decode(mine)[44..].to_owned();
            let mut jar = CookieJar::new();
            let key = Key::generate();
            let cookie = Cookie::new("id", content);
            if *private {
                jar.private_mut(&key).add(cookie);
            } else {
                jar.signed_mut(&key).add(cookie);
            }
            jar.get("id").unwrap().encoded().to_string()[3..].to_owned()
        }
        Tamper::Garbage(bytes) => String::from_utf8_lossy(bytes).into_owned(),
    }
}

/// A signed-in browser's cookie, changed by its holder in any way, is anonymous (or, when the
/// change did not change the decoded value, the same user): never another user, never a 5xx.
#[test]
fn tampered_or_foreign_session_cookies_are_anonymous() {
    let s = Setup::new(Shape::Routes, |c| c);
    let addr = addr(&s.app.base).to_owned();
    let (me, other) = block_on(async {
        let mut out = Vec::new();
        for _ in 0..2 {
            let browser = common::Browser::new();
            let page = common::sign_in(&browser, &s.url("/info")).await.json();
            let cookie = cookie_header(&browser, &s.app.base);
            let id = cookie
                .split("; ")
                .find_map(|c| c.strip_prefix("id="))
                .unwrap()
                .to_owned();
            out.push((id, page["openid"].as_str().unwrap().to_owned()));
        }
        (out[0].clone(), out[1].clone())
    });
    // The untouched cookie works.
    let res = raw_get(
        &addr,
        b"/api/me",
        &[
            ("cookie", format!("id={}", me.0).as_bytes()),
            ("accept", b"application/json"),
        ],
    )
    .unwrap();
    assert_eq!(res.status, 200, "{res:?}");
    let mut runner = runner(300);
    let outcomes = Tally::default();
    runner
        .run(&(tamper(), any::<bool>()), |(t, page)| {
            let value = apply(&t, &me.0, &other.0, &me.1, &other.1);
            // The cookie parser trims whitespace around a value before decoding it (RFC 6265
            // §5.2), so a space added at either end leaves the same cookie.
            let same = percent_encoding::percent_decode_str(value.trim()).collect::<Vec<u8>>()
                == percent_encoding::percent_decode_str(&me.0).collect::<Vec<u8>>();
            let cookie = format!("id={value}");
            let (target, accept): (&[u8], &[u8]) = if page {
                (b"/info", b"text/html")
            } else {
                (b"/api/me", b"application/json")
            };
            let res = raw_get(
                &addr,
                target,
                &[("cookie", cookie.as_bytes()), ("accept", accept)],
            )
            .map_err(TestCaseError::fail)?;
            outcomes.add(format!("{} {}", t.name(), res.status));
            prop_assert!(res.status < 500, "{:?}", res);
            if res.status == 200 {
                prop_assert!(
                    same,
                    "a changed cookie was accepted: {:?} → {}",
                    t,
                    res.body
                );
                prop_assert!(res.body.contains(&me.1));
            } else {
                let anonymous = if page { 302 } else { 401 };
                prop_assert_eq!(res.status, anonymous, "{:?}: {:?}", t, res);
            }
            prop_assert!(!res.body.contains(&other.1), "the other user's identity");
            Ok(())
        })
        .unwrap();
    println!("outcomes: {outcomes:?}");
}

// An app whose session key the test knows, to send content that passed the MAC.

fn start_keyed_app(emulator: &Emulator, key: Key) -> common::Server {
    let (listener, base): (TcpListener, String) = common::free_base();
    let config = common::config(emulator, &base).build().unwrap();
    common::spawn_server(base, move || async move {
        let wechat = WeChatAuth::new(config);
        Ok(HttpServer::new(move || {
            App::new()
                .service(
                    web::resource(["/api/me", "/page"])
                        .wrap(wechat.require(Scope::Base))
                        .get(|user: WeChatUser| async move {
                            HttpResponse::Ok().json(serde_json::json!({ "openid": user.openid() }))
                        }),
                )
                .wrap(wechat.optional())
                .wrap(
                    SessionMiddleware::builder(CookieSessionStore::default(), key.clone())
                        .cookie_secure(false)
                        .cookie_same_site(SameSite::Lax)
                        .cookie_content_security(CookieContentSecurity::Signed)
                        .build(),
                )
        })
        .workers(1)
        .disable_signals()
        .listen(listener)?
        .run())
    })
}

/// Session content as it could look in the store: the crate's own keys with any JSON, well-typed
/// sign-ins of this or another appid, with any expiry.
fn session_content(appid: String) -> impl Strategy<Value = serde_json::Value> {
    fn to_json(j: &J) -> serde_json::Value {
        serde_json::from_slice(&j.to_body(false)).unwrap_or(serde_json::Value::Null)
    }
    let signed_in = (
        prop_oneof![Just(appid), "wx[a-z0-9]{0,10}".prop_map(|s| s)],
        "o[A-Za-z0-9_-]{0,30}",
        prop::sample::select(vec!["snsapi_base", "snsapi_userinfo", "snsapi_login", ""]),
        any::<u64>(),
        any::<u64>(),
        prop::option::of(json_value()),
    )
        .prop_map(|(appid, openid, scope, e, c, profile)| {
            let mut v = serde_json::json!({
                "i": appid, "o": openid, "s": scope, "a": "AT", "r": "RT", "e": e, "c": c,
            });
            if let Some(p) = profile {
                v["p"] = to_json(&p);
            }
            v
        });
    let pending = prop::collection::vec(
        (
            "[A-Za-z0-9]{0,40}",
            ".{0,40}",
            prop::sample::select(vec!["snsapi_base", "snsapi_userinfo", "x"]),
            any::<u64>(),
            any::<u8>(),
            any::<bool>(),
        )
            .prop_map(|(s, t, c, at, n, used)| {
                serde_json::json!({ "s": s, "t": t, "c": c, "at": at, "n": n, "used": used })
            }),
        0..6,
    );
    (
        prop::option::of(prop_oneof![
            signed_in,
            json_value().prop_map(|j| to_json(&j))
        ]),
        prop::option::of(prop_oneof![
            pending.prop_map(serde_json::Value::Array),
            json_value().prop_map(|j| to_json(&j))
        ]),
    )
        .prop_map(|(wx, wxp)| {
            let mut map = serde_json::Map::new();
            if let Some(wx) = wx {
                map.insert("wx".into(), serde_json::Value::String(wx.to_string()));
            }
            if let Some(wxp) = wxp {
                map.insert("wxp".into(), serde_json::Value::String(wxp.to_string()));
            }
            serde_json::Value::Object(map)
        })
}

/// Content that passed the MAC (written by an older version, or by the app itself) but is not
/// what the crate expects: never a 5xx; a sign-in of another appid is nobody; a sign-in is only
/// ever shown as its own openid.
#[test]
fn any_session_content_behind_a_valid_mac_never_gets_a_500() {
    let emulator = Emulator::builder().auto_approve(true).start().unwrap();
    common::capture_logs();
    let key = Key::generate();
    let app = start_keyed_app(&emulator, key.clone());
    let addr = addr(&app.base).to_owned();
    let appid = emulator.appid().to_owned();
    let mut runner = runner(200);
    let statuses = Tally::default();
    runner
        .run(
            &(session_content(appid.clone()), 0u8..3),
            |(content, target)| {
                let mut jar = CookieJar::new();
                jar.signed_mut(&key)
                    .add(Cookie::new("id", content.to_string()));
                let cookie = jar.get("id").unwrap().encoded().to_string();
                let target: &[u8] = match target {
                    0 => b"/api/me",
                    1 => b"/page",
                    _ => b"/wechat/callback?code=abc&state=abc",
                };
                let res = raw_get(
                    &addr,
                    target,
                    &[
                        ("cookie", cookie.as_bytes()),
                        ("accept", b"application/json"),
                    ],
                )
                .map_err(TestCaseError::fail)?;
                statuses.add(res.status.to_string());
                prop_assert!(res.status < 500, "{:?} for {}", res, content);
                if res.status == 200 && target == b"/api/me" {
                    let wx: serde_json::Value =
                        serde_json::from_str(content["wx"].as_str().unwrap()).unwrap();
                    prop_assert_eq!(&wx["i"], &serde_json::Value::String(appid.clone()));
                    let shown: serde_json::Value = serde_json::from_str(&res.body).unwrap();
                    prop_assert_eq!(&shown["openid"], &wx["o"]);
                }
                Ok(())
            },
        )
        .unwrap();
    println!("answers by status: {statuses:?}");
}

// ---------------------------------------------------------------------------------------------
// Limits

/// At most three pending sign-ins per session: a fourth drops the oldest, whose callback is then
/// refused, while the newest still completes.
#[test]
fn pending_sign_ins_are_bounded_and_the_oldest_dropped() {
    let s = Setup::new(Shape::Routes, |c| c);
    let addr = addr(&s.app.base).to_owned();
    let mut cookie = String::new();
    let states: Vec<String> = (0..10)
        .map(|i| challenge(&addr, &format!("/info?tab={i}"), &mut cookie))
        .collect();
    let pending = pending_in(&cookie);
    let kept: Vec<&str> = pending.iter().map(|p| p["s"].as_str().unwrap()).collect();
    assert_eq!(
        kept,
        states[7..].iter().map(String::as_str).collect::<Vec<_>>()
    );
    let target = format!("/wechat/callback?code=whatever&state={}", states[0]);
    let res = raw_get(&addr, target.as_bytes(), &[("cookie", cookie.as_bytes())]).unwrap();
    assert_eq!(
        (res.status, res.crate_error()),
        (400, Some("invalid_state"))
    );
    assert_eq!(s.emulator.call_count(Endpoint::AccessToken), 0);
    // The newest completes through the emulator.
    let location = raw_get(&addr, b"/info?tab=last", &[("cookie", cookie.as_bytes())]).unwrap();
    keep_cookies(&mut cookie, &location);
    let authorize = location
        .header("location")
        .unwrap()
        .replace("#wechat_redirect", "");
    let callback = block_on(async {
        reqwest::Client::builder()
            .user_agent(common::WECHAT_UA)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .get(&authorize)
            .send()
            .await
            .unwrap()
            .headers()["location"]
            .to_str()
            .unwrap()
            .to_owned()
    });
    let path = callback.strip_prefix(&s.app.base).unwrap();
    let res = raw_get(&addr, path.as_bytes(), &[("cookie", cookie.as_bytes())]).unwrap();
    assert_eq!(res.status, 303, "{res:?}");
    assert_eq!(res.header("location"), Some("/info?tab=last#"));
}

/// actix-http's own limits answer oversized heads before the middleware sees them: 431 (or a
/// closed connection) past 96 headers or a 128 KiB head, a bare 400 for a URI over 65,534 bytes
/// (the `http` crate's limit); below that the middleware answers a huge callback query with a 400
/// and keeps only the path of a huge page query. Never a 5xx.
#[test]
fn oversized_heads_and_queries_get_4xx_never_500() {
    let s = Setup::new(Shape::Routes, |c| c);
    let addr = addr(&s.app.base).to_owned();
    let answer = |target: &[u8], headers: &[(&str, &[u8])]| raw_get(&addr, target, headers);

    // 95 extra headers fit (with Host and Connection, 97 > 96: refused); 90 are fine.
    let many: Vec<(String, Vec<u8>)> = (0..95)
        .map(|i| (format!("x-h{i}"), b"v".to_vec()))
        .collect();
    let refs: Vec<(&str, &[u8])> = many
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_slice()))
        .collect();
    let res = answer(b"/healthz", &refs).unwrap();
    assert_eq!(res.status, 431, "{res:?}");
    let res = answer(b"/healthz", &refs[..90]).unwrap();
    assert_eq!(res.status, 200, "{res:?}");

    // A 140 KiB header or query: over the 128 KiB head.
    let big = vec![b'a'; 140 * 1024];
    for outcome in [
        answer(b"/info", &[("x-big", &big)]),
        answer(&[b"/wechat/callback?code=".as_slice(), &big].concat(), &[]),
    ] {
        match outcome {
            Ok(res) => assert_eq!(res.status, 431, "{res:?}"),
            Err(closed) => println!("oversized head: connection closed ({closed})"),
        }
    }

    // Over 65,534 bytes the `http` crate refuses the URI: actix answers a bare 400.
    let query = "a".repeat(100 * 1024);
    for target in [
        format!("/wechat/callback?state={query}"),
        format!("/info?{query}"),
    ] {
        let res = answer(target.as_bytes(), &[]).unwrap();
        assert_eq!((res.status, res.body.as_str()), (400, ""), "{res:?}");
    }

    // 60 KiB: parsed; the callback refuses it, a page keeps only its path as the return-to.
    let query = "a".repeat(60 * 1024);
    for q in [
        format!("state={query}"),
        format!("code={query}&state=x"),
        format!("x={query}"),
    ] {
        let res = answer(format!("/wechat/callback?{q}").as_bytes(), &[]).unwrap();
        assert_eq!(
            (res.status, res.crate_error()),
            (400, Some("invalid_state"))
        );
        assert!(!res.body.contains(&query[..64]));
    }
    let res = answer(format!("/info?{query}").as_bytes(), &[]).unwrap();
    assert_eq!(res.status, 302);
    let mut cookie = String::new();
    keep_cookies(&mut cookie, &res);
    assert_eq!(pending_in(&cookie)[0]["t"], "/info");
    assert_eq!(s.emulator.call_count(Endpoint::AccessToken), 0);
}

/// WeChat's profile fields are capped for the cookie (nickname 128 bytes, avatar URL 512 bytes or
/// dropped, 4 privileges of 32 bytes) however long they come, and an answer over
/// `max_response_bytes` (64 KiB) is a 502, not a 500 and not a truncated profile.
#[test]
fn huge_profiles_are_capped_and_oversized_answers_refused() {
    let s = Setup::new(Shape::Routes, |c| c);
    let mut user =
        EmulatedUser::new("昵".repeat(20_000)) // 60,000 bytes: under 64 KiB
            .with_headimgurl(format!("https://thirdwx.qlogo.cn/{}/132", "a".repeat(600)));
    user.privilege = vec!["p".repeat(100); 10];
    let capped = s.emulator.add_user(user);
    let huge = s
        .emulator
        .add_user(EmulatedUser::new("x".repeat(70 * 1024)));
    block_on(async {
        let browser = common::Browser::new();
        let hops = sign_in_as(&browser, &s, &capped).await;
        let page = hops.last().unwrap();
        assert_eq!(page.status, 200, "{}", page.body);
        let me = page.json();
        assert_eq!(
            me["nickname"],
            "昵".repeat(42),
            "128 bytes at most, cut at a character"
        );
        assert_eq!(me["headimgurl"], "");
        let session = browser.session(&s.app.base);
        assert_eq!(
            session["wx"]["p"]["privilege"],
            serde_json::json!(vec!["p".repeat(32); 4])
        );
        assert!(browser.session_cookie_len(&s.app.base) < 4096);

        let browser = common::Browser::new();
        let hops = sign_in_as(&browser, &s, &huge).await;
        let callback = hops
            .iter()
            .find(|h| h.url.contains("/wechat/callback"))
            .unwrap();
        assert_eq!(callback.status, 502, "{}", callback.body);
        assert!(callback.body.contains("upstream_invalid"));
        assert!(browser.session(&s.app.base).get("wx").is_none());
    });
}

/// A sign-in through the emulator as the user `openid`, every hop returned.
async fn sign_in_as(browser: &common::Browser, s: &Setup, openid: &str) -> Vec<common::Hop> {
    let first = browser.get(&s.url("/info")).await;
    let authorize = first.location.unwrap().replace("#wechat_redirect", "");
    let page = browser
        .get_with(&authorize, &[("x-emulator-user", openid)])
        .await;
    let mut hops = browser.navigate(page.location.as_deref().unwrap()).await;
    hops.insert(0, page);
    hops
}

// ---------------------------------------------------------------------------------------------
// WeChat answering for someone else

/// A fake sns API that answers for another openid on `/sns/userinfo` (when `userinfo_lies`), and,
/// once `refresh_lies` is set, says the token expired and refreshes it for another openid.
struct LyingApi {
    server: common::Server,
    refresh_lies: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

fn start_lying_api(userinfo_lies: bool) -> LyingApi {
    use std::sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    };
    let (listener, base) = common::free_base();
    let refresh_lies = Arc::new(AtomicBool::new(false));
    let lies = Arc::clone(&refresh_lies);
    let server = common::spawn_server(base, move || async move {
        fn text(body: serde_json::Value) -> HttpResponse {
            HttpResponse::Ok()
                .content_type("text/plain")
                .body(body.to_string())
        }
        Ok(HttpServer::new(move || {
            let (auth_lies, refresh_lies) = (Arc::clone(&lies), Arc::clone(&lies));
            App::new()
                .route(
                    "/sns/oauth2/access_token",
                    web::get().to(|| async {
                        text(serde_json::json!({
                            "access_token": "AT-victim", "expires_in": 7200,
                            "refresh_token": "RT-victim", "openid": "oVictim",
                            "scope": "snsapi_userinfo"
                        }))
                    }),
                )
                .route(
                    "/sns/userinfo",
                    web::get().to(move || async move {
                        let openid = if userinfo_lies {
                            "oSomeoneElse"
                        } else {
                            "oVictim"
                        };
                        text(serde_json::json!({
                            "openid": openid, "nickname": "who?", "sex": 0, "province": "",
                            "city": "", "country": "", "headimgurl": "", "privilege": []
                        }))
                    }),
                )
                .route(
                    "/sns/auth",
                    web::get().to(move || {
                        let lying = auth_lies.load(Ordering::SeqCst);
                        async move {
                            let code = if lying { 42001 } else { 0 };
                            text(serde_json::json!({ "errcode": code, "errmsg": "x" }))
                        }
                    }),
                )
                .route(
                    "/sns/oauth2/refresh_token",
                    web::get().to(move || {
                        let lying = refresh_lies.load(Ordering::SeqCst);
                        async move {
                            let openid = if lying { "oSomeoneElse" } else { "oVictim" };
                            text(serde_json::json!({
                                "access_token": "AT-new", "expires_in": 7200,
                                "refresh_token": "RT-victim", "openid": openid,
                                "scope": "snsapi_userinfo"
                            }))
                        }
                    }),
                )
        })
        .workers(1)
        .disable_signals()
        .listen(listener)?
        .run())
    });
    LyingApi {
        server,
        refresh_lies,
    }
}

/// A profile or a refresh for another openid than the one signed in is never taken: the callback
/// answers 502 without signing in, and a refreshed session is signed out (never shown as the other
/// user).
#[test]
fn wechat_answering_for_another_openid_is_refused() {
    for userinfo_lies in [true, false] {
        let api = start_lying_api(userinfo_lies);
        let api_base = api.server.base.clone();
        let s = Setup::with_emulator(
            Emulator::builder().auto_approve(true).start().unwrap(),
            Shape::Routes,
            move |c| c.api_base(api_base).check_interval(Duration::ZERO),
        );
        block_on(async {
            let browser = common::Browser::new();
            let hops = browser.navigate(&s.url("/info")).await;
            let last = hops.last().unwrap();
            if userinfo_lies {
                assert_eq!(last.status, 502, "{}", last.body);
                assert!(last.body.contains("upstream_invalid"));
                assert!(browser.session(&s.app.base).get("wx").is_none());
                return;
            }
            assert_eq!(last.status, 200, "{}", last.body);
            assert_eq!(last.json()["openid"], "oVictim");
            // Now the token "expires" and its refresh answers for someone else.
            api.refresh_lies
                .store(true, std::sync::atomic::Ordering::SeqCst);
            let me = browser
                .get_with(&s.url("/api/me"), &[("accept", "application/json")])
                .await;
            assert_eq!(me.status, 401, "{}", me.body);
            assert!(!me.body.contains("oSomeoneElse"));
            assert!(browser.session(&s.app.base).get("wx").is_none());
            assert!(common::logs()
                .iter()
                .any(|l| l.contains("answered for another openid")));
        });
    }
}

//! The apps the benchmarks measure, shared by `bench_server` (over HTTP) and
//! `xtests/benches/request_path.rs` (in-process, which includes this file with `#[path]`).

use actix_session::{storage::CookieSessionStore, Session, SessionMiddleware};
use actix_web::{
    cookie::{Key, SameSite},
    HttpResponse,
};
use actix_wechat_auth::WeChatUser;

/// As long as an openid, so that every mode answers the same number of bytes.
pub const NOBODY: &str = "o-baseline-has-no-openid-000";

/// actix-session's cookie store in its production shape (encrypted `Private` cookie,
/// `SameSite=Lax`, `HttpOnly`); only `Secure` is off, for plain http over loopback.
pub fn session(key: &Key) -> SessionMiddleware<CookieSessionStore> {
    SessionMiddleware::builder(CookieSessionStore::default(), key.clone())
        .cookie_secure(false)
        .cookie_same_site(SameSite::Lax)
        .build()
}

/// `hello <openid>` of the signed-in user.
pub async fn hello_user(user: WeChatUser) -> HttpResponse {
    HttpResponse::Ok().body(format!("hello {}", user.openid()))
}

/// Formats its answer as the others do (`black_box`: a constant would be folded into the format
/// string, and the baseline would skip the formatting every real handler does).
pub async fn hello_nobody() -> HttpResponse {
    HttpResponse::Ok().body(format!("hello {}", std::hint::black_box(NOBODY)))
}

/// `hello <openid>` of the sign-in the handler parses from the session itself, as an app keeping
/// it would.
pub async fn hello_from_session(session: Session) -> HttpResponse {
    let openid = session
        .get::<serde_json::Value>("wx")
        .ok()
        .flatten()
        .and_then(|v| v.get("o").and_then(|o| o.as_str().map(str::to_owned)))
        .unwrap_or_else(|| NOBODY.to_owned());
    HttpResponse::Ok().body(format!("hello {openid}"))
}

/// Outside `WeChatAuth` in every mode (`exclude_path`).
pub async fn healthz() -> &'static str {
    "ok"
}

//! A tiny shop behind WeChat sign-in: an account page and an orders API.

use actix_session::{storage::CookieSessionStore, SessionMiddleware};
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::{cookie::Key, web, App, Error, HttpResponse};
use actix_wechat_auth::{Scope, WeChatAuth, WeChatUser};

/// `GET /account`: a page greeting the signed-in user by nickname.
pub async fn account(user: WeChatUser) -> HttpResponse {
    let nickname = user.profile().map_or("", |p| p.nickname.as_str());
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(format!(
            "<!doctype html><meta charset=utf-8><h1>你好，{}</h1>",
            html_escape(nickname)
        ))
}

/// `GET /api/orders`: the user's orders (none yet), keyed by openid.
pub async fn orders(user: WeChatUser) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "openid": user.openid(), "orders": [] }))
}

/// The shop's app: every route needs a `snsapi_userinfo` sign-in; `/api/` answers 401 JSON.
pub fn app(
    wechat: WeChatAuth,
    key: Key,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = Error,
        InitError = (),
    >,
> {
    App::new()
        .route("/account", web::get().to(account))
        .route("/api/orders", web::get().to(orders))
        .wrap(wechat.require(Scope::UserInfo))
        .wrap(SessionMiddleware::new(CookieSessionStore::default(), key))
}

/// Nicknames are any Unicode: escape them before they go into HTML.
fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

//! The `api.weixin.qq.com` role: the four sns endpoints.

use std::collections::HashMap;

use actix_web::{web, HttpRequest, HttpResponse};

use super::faults::{serve, Answer};
use super::state::Shared;
use super::Endpoint;

/// The query parameters (percent-decoded; the first of duplicated names wins).
fn query_map(req: &HttpRequest) -> HashMap<String, String> {
    let mut map = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(req.query_string().as_bytes()) {
        map.entry(k.into_owned()).or_insert_with(|| v.into_owned());
    }
    map
}

/// `GET /sns/oauth2/access_token`.
pub(crate) async fn access_token(req: HttpRequest, shared: web::Data<Shared>) -> HttpResponse {
    serve(&shared, Endpoint::AccessToken, || {
        Answer::api(shared.exchange_code(&query_map(&req)))
    })
    .await
}

/// `GET /sns/oauth2/refresh_token`.
pub(crate) async fn refresh_token(req: HttpRequest, shared: web::Data<Shared>) -> HttpResponse {
    serve(&shared, Endpoint::RefreshToken, || {
        Answer::api(shared.refresh(&query_map(&req)))
    })
    .await
}

/// `GET /sns/userinfo`.
pub(crate) async fn userinfo(req: HttpRequest, shared: web::Data<Shared>) -> HttpResponse {
    serve(&shared, Endpoint::UserInfo, || {
        Answer::api(shared.userinfo(&query_map(&req)))
    })
    .await
}

/// `GET /sns/auth`.
pub(crate) async fn auth(req: HttpRequest, shared: web::Data<Shared>) -> HttpResponse {
    serve(&shared, Endpoint::Auth, || {
        Answer::api(shared.auth(&query_map(&req)))
    })
    .await
}

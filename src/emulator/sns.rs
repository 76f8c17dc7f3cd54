//! The `api.weixin.qq.com` role: the four sns endpoints and the protocol behind them.

use std::collections::HashMap;
use std::time::Instant;

use actix_web::{web, HttpRequest};

use super::answer::{Answer, ApiOutcome};
use super::faults::serve;
use super::state::{deadline, App, Grant, Scope, Shared, State, TokenRecord};
use super::Endpoint;

/// A call's query parameters (percent-decoded; the first of duplicated names wins).
type Params = HashMap<String, String>;

/// What one protocol step answers: `Err` is an error answer that ends the call early.
type Reply = Result<ApiOutcome, ApiOutcome>;

/// One endpoint's protocol step.
type Step = fn(&Shared, &Params) -> Reply;

/// Registers the four endpoints, each its protocol step inside faults and the call log.
pub(crate) fn routes(cfg: &mut web::ServiceConfig) {
    let steps: [(&str, Endpoint, Step); 4] = [
        (
            "/sns/oauth2/access_token",
            Endpoint::AccessToken,
            exchange_code,
        ),
        ("/sns/oauth2/refresh_token", Endpoint::RefreshToken, refresh),
        ("/sns/userinfo", Endpoint::UserInfo, userinfo),
        ("/sns/auth", Endpoint::Auth, auth),
    ];
    for (path, endpoint, step) in steps {
        cfg.service(web::resource(path).route(web::get().to(
            move |req: HttpRequest, shared: web::Data<Shared>| async move {
                serve(&shared, endpoint, || {
                    Answer::api(step(&shared, &query_map(&req)).unwrap_or_else(|e| e))
                })
                .await
            },
        )));
    }
}

fn query_map(req: &HttpRequest) -> Params {
    let mut map = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(req.query_string().as_bytes()) {
        map.entry(k.into_owned()).or_insert_with(|| v.into_owned());
    }
    map
}

fn non_empty<'a>(params: &'a Params, key: &str) -> Option<&'a str> {
    params
        .get(key)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
}

/// The app named by the call's `appid` (41002 missing, 40013 unknown) with the `grant_type` the
/// endpoint expects (40002).
fn app_of(shared: &Shared, params: &Params, grant_type: &str) -> Result<App, ApiOutcome> {
    let app = match non_empty(params, "appid") {
        None => return Err(ApiOutcome::err(41002, None)),
        Some(a) if a == shared.config.appid => App::OfficialAccount,
        Some(a) if a == shared.config.web_appid => App::Website,
        Some(_) => return Err(ApiOutcome::err(40013, None)),
    };
    if params.get("grant_type").map(String::as_str) != Some(grant_type) {
        return Err(ApiOutcome::err(40002, None));
    }
    Ok(app)
}

/// The token answer of a code exchange or a refresh: a new access token for `grant`, next to
/// `refresh_token`.
fn token_answer(
    shared: &Shared,
    state: &mut State,
    grant: &Grant,
    refresh_token: &str,
    now: Instant,
) -> Reply {
    #[derive(serde::Serialize)]
    struct TokenBody<'a> {
        access_token: &'a str,
        expires_in: u64,
        refresh_token: &'a str,
        openid: &'a str,
        scope: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        is_snapshotuser: Option<u8>,
        #[serde(skip_serializing_if = "Option::is_none")]
        unionid: Option<&'a str>,
    }
    let ttl = shared.config.access_token_ttl;
    let access_token = state.new_access_token(grant, now, ttl);
    let body = TokenBody {
        access_token: &access_token,
        expires_in: ttl.as_secs(),
        refresh_token,
        openid: &grant.openid,
        scope: grant.scope.as_str(),
        is_snapshotuser: grant.snapshot.then_some(1),
        unionid: grant.unionid.as_deref(),
    };
    Ok(ApiOutcome::json(&body, Some(grant.openid.clone())))
}

/// `GET /sns/oauth2/access_token`: a single-use code for a grant.
fn exchange_code(shared: &Shared, params: &Params) -> Reply {
    let cfg = &shared.config;
    let app = app_of(shared, params, "authorization_code")?;
    let secret = match app {
        App::OfficialAccount => &cfg.secret,
        App::Website => &cfg.web_secret,
    };
    match non_empty(params, "secret") {
        None => return Err(ApiOutcome::err(41004, None)),
        Some(s) if s != secret => return Err(ApiOutcome::err(40125, None)),
        Some(_) => {}
    }
    let code = non_empty(params, "code").ok_or_else(|| ApiOutcome::err(41008, None))?;
    let now = Instant::now();
    let mut state = shared.lock();
    let record = match state.codes.get_mut(code) {
        // A code is valid only for the app whose page issued it.
        Some(r) if r.app != app => return Err(ApiOutcome::err(40029, None)),
        None => return Err(ApiOutcome::err(40029, None)),
        Some(r) if r.used => return Err(ApiOutcome::err(40163, Some(r.openid.clone()))),
        Some(r) if now >= r.expires_at => {
            return Err(ApiOutcome::err(42003, Some(r.openid.clone())))
        }
        Some(r) => {
            r.used = true;
            r.clone()
        }
    };
    let user = state
        .users
        .get(&record.openid)
        .cloned()
        .ok_or_else(|| ApiOutcome::err(40029, None))?;
    let snapshot = user.user.snapshot && app == App::OfficialAccount;
    let openid = match app {
        _ if snapshot => user.virtual_openid,
        App::OfficialAccount => record.openid.clone(),
        App::Website => user.web_openid,
    };
    // An Official Account has unionids only once bound, and only for snsapi_userinfo; a Website
    // app's snsapi_login grant always carries it when bound.
    let unionid = (record.scope != Scope::Base && cfg.open_platform_bound && !snapshot)
        .then(|| state.unionid_of(&record.openid));
    let grant = Grant {
        openid,
        user_openid: record.openid,
        app,
        scope: record.scope,
        unionid,
        snapshot,
    };
    let refresh_token = state.unused_token();
    state.refresh_tokens.insert(
        refresh_token.clone(),
        TokenRecord {
            grant: grant.clone(),
            expires_at: deadline(now, cfg.refresh_token_ttl),
        },
    );
    token_answer(shared, &mut state, &grant, &refresh_token, now)
}

/// `GET /sns/oauth2/refresh_token`: a new access token for the grant (and, when the emulator
/// rotates them, a new refresh token that does not extend the grant's life).
fn refresh(shared: &Shared, params: &Params) -> Reply {
    let app = app_of(shared, params, "refresh_token")?;
    let old = non_empty(params, "refresh_token").ok_or_else(|| ApiOutcome::err(41003, None))?;
    let now = Instant::now();
    let mut state = shared.lock();
    let record = match state.refresh_tokens.get(old) {
        Some(r) if r.grant.app != app => return Err(ApiOutcome::err(40030, None)),
        None => return Err(ApiOutcome::err(40030, None)),
        Some(r) if now >= r.expires_at => {
            return Err(ApiOutcome::err(42002, Some(r.grant.openid.clone())))
        }
        Some(r) => r.clone(),
    };
    let refresh_token = if shared.config.rotate_refresh_token {
        state.refresh_tokens.remove(old);
        let new = state.unused_token();
        state.refresh_tokens.insert(new.clone(), record.clone());
        new
    } else {
        old.to_owned()
    };
    // WeChat's documented refresh answer has no unionid.
    let grant = Grant {
        unionid: None,
        ..record.grant
    };
    token_answer(shared, &mut state, &grant, &refresh_token, now)
}

/// The grant of a valid access token for the call's `openid` (shared by userinfo and auth).
fn check_access_token(shared: &Shared, params: &Params) -> Result<Grant, ApiOutcome> {
    let token = non_empty(params, "access_token").ok_or_else(|| ApiOutcome::err(41001, None))?;
    let openid = non_empty(params, "openid").ok_or_else(|| ApiOutcome::err(41009, None))?;
    let asked = Some(openid.to_owned());
    let state = shared.lock();
    match state.access_tokens.get(token) {
        None => Err(ApiOutcome::err(40014, asked)),
        Some(t) if Instant::now() >= t.expires_at => Err(ApiOutcome::err(42001, asked)),
        Some(t) if t.grant.openid != openid => Err(ApiOutcome::err(40003, asked)),
        Some(t) => Ok(t.grant.clone()),
    }
}

/// `GET /sns/userinfo`: the profile behind an `snsapi_userinfo` (or `snsapi_login`) token.
fn userinfo(shared: &Shared, params: &Params) -> Reply {
    #[derive(serde::Serialize)]
    struct UserInfoBody<'a> {
        openid: &'a str,
        nickname: &'a str,
        sex: u8,
        province: &'a str,
        city: &'a str,
        country: &'a str,
        headimgurl: &'a str,
        privilege: &'a [String],
        #[serde(skip_serializing_if = "Option::is_none")]
        unionid: Option<&'a str>,
    }
    let grant = check_access_token(shared, params)?;
    let openid = Some(grant.openid.clone());
    if grant.scope == Scope::Base {
        return Err(ApiOutcome::err(48001, openid));
    }
    match params.get("lang").map(String::as_str) {
        None | Some("" | "zh_CN" | "zh_TW" | "en") => {}
        Some(_) => return Err(ApiOutcome::err(40097, openid)),
    }
    if grant.snapshot {
        // Snapshot-mode users are anonymous: WeChat shows them as "微信用户" with the default avatar.
        let headimgurl = shared.avatar_url(0, 132);
        let body = UserInfoBody {
            openid: &grant.openid,
            nickname: "微信用户",
            sex: 0,
            province: "",
            city: "",
            country: "",
            headimgurl: &headimgurl,
            privilege: &[],
            unionid: None,
        };
        return Ok(ApiOutcome::json(&body, openid));
    }
    let user = shared
        .user(&grant.user_openid)
        .ok_or_else(|| ApiOutcome::err(40003, openid.clone()))?;
    let body = UserInfoBody {
        openid: &grant.openid,
        nickname: &user.nickname,
        sex: user.sex,
        province: &user.province,
        city: &user.city,
        country: &user.country,
        headimgurl: &user.headimgurl,
        privilege: &user.privilege,
        unionid: grant.unionid.as_deref(),
    };
    Ok(ApiOutcome::json(&body, openid))
}

/// `GET /sns/auth`: whether an access token is valid for the openid.
fn auth(shared: &Shared, params: &Params) -> Reply {
    let grant = check_access_token(shared, params)?;
    Ok(ApiOutcome::ok(
        r#"{"errcode":0,"errmsg":"ok"}"#.to_owned(),
        Some(grant.openid),
    ))
}

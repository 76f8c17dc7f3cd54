//! The `open.weixin.qq.com` role: authorize page, consent form, error pages, login helper, avatars.

use std::borrow::Cow;
use std::collections::HashMap;

use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use actix_web::http::{Method, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use html_escape::{encode_double_quoted_attribute as attr, encode_text as text};
use url::Url;

use super::answer::{Answer, PageError, TEXT_HTML};
use super::faults::serve;
use super::state::{valid_openid, Scope, Shared};
use super::{Answered, Endpoint};

/// The cookie naming the WeChat user signed in "in the app".
const USER_COOKIE: &str = "wxemu_user";
/// The header that overrides the cookie (for test clients).
const USER_HEADER: &str = "x-emulator-user";

/// The parameters, in the only order WeChat accepts.
const ORDER: [&str; 6] = [
    "appid",
    "redirect_uri",
    "response_type",
    "scope",
    "state",
    "connect_redirect",
];

/// A validated authorization request.
#[derive(Debug, Clone)]
pub(crate) struct AuthorizeRequest {
    /// As received (percent-decoded), for the consent form.
    pub redirect_uri_raw: String,
    pub redirect_uri: Url,
    pub scope: Scope,
    pub state: String,
    pub connect_redirect: bool,
}

/// Splits the raw query into decoded pairs, checking names, duplicates and order.
fn parse_ordered_query(raw: &str) -> Result<HashMap<String, String>, PageError> {
    let mut seen: HashMap<String, String> = HashMap::new();
    let mut last: Option<usize> = None;
    for (key, value) in url::form_urlencoded::parse(raw.as_bytes()) {
        let Some(idx) = ORDER.iter().position(|name| *name == key) else {
            return Err(PageError::new(
                10001,
                format!("参数错误：未知参数 {key} (unknown parameter)"),
            ));
        };
        if seen.contains_key(key.as_ref()) {
            return Err(PageError::new(
                10001,
                format!("参数错误：参数 {key} 重复 (duplicated parameter)"),
            ));
        }
        if last.is_some_and(|l| idx < l) {
            return Err(PageError::new(
                10001,
                "参数错误：参数顺序必须为 appid, redirect_uri, response_type, scope, state (parameters out of order)",
            ));
        }
        last = Some(idx);
        seen.insert(key.into_owned(), value.into_owned());
    }
    Ok(seen)
}

/// Validates the values (shared by the authorize page and the consent form).
pub(crate) fn validate(
    shared: &Shared,
    params: &HashMap<String, String>,
) -> Result<AuthorizeRequest, PageError> {
    let get = |k: &str| params.get(k).map(String::as_str).filter(|v| !v.is_empty());

    match get("appid") {
        None => return Err(PageError::new(10012, "appid 参数不能为空 (appid is empty)")),
        Some(a) if a != shared.config.appid => {
            return Err(PageError::new(10002, "appid 无效 (unknown appid)"))
        }
        Some(_) => {}
    }

    let Some(redirect_uri_raw) = get("redirect_uri") else {
        return Err(PageError::new(
            10011,
            "redirect_uri 参数不能为空 (redirect_uri is empty)",
        ));
    };
    let redirect_uri = redirect_uri_of(shared, redirect_uri_raw)?;

    if params.get("response_type").map(String::as_str) != Some("code") {
        return Err(PageError::new(
            10001,
            "参数错误：response_type 必须为 code (response_type must be code)",
        ));
    }

    let scope = match get("scope") {
        None => return Err(PageError::new(10010, "scope 参数不能为空 (scope is empty)")),
        // `snsapi_login` is a Website app's, on `/connect/qrconnect`.
        Some(s) => Scope::parse(s)
            .filter(|scope| *scope != Scope::Login)
            .ok_or_else(|| {
                PageError::new(
                    10005,
                    "此公众号并没有这些 scope 的权限 (no permission for this scope)",
                )
            })?,
    };

    let Some(state) = params.get("state") else {
        return Err(PageError::new(
            10013,
            "state 参数不能为空 (state is missing)",
        ));
    };
    if state.len() > 128 || !state.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(PageError::new(
            10007,
            "state 参数错误：只能包含字母和数字，最多 128 字节 (state must be [A-Za-z0-9]{0,128})",
        ));
    }

    let connect_redirect = match params.get("connect_redirect").map(String::as_str) {
        None => false,
        Some("1") => true,
        Some(_) => {
            return Err(PageError::new(
                10001,
                "参数错误：connect_redirect 只能为 1 (connect_redirect must be 1)",
            ))
        }
    };

    Ok(AuthorizeRequest {
        redirect_uri_raw: redirect_uri_raw.to_owned(),
        redirect_uri,
        scope,
        state: state.clone(),
        connect_redirect,
    })
}

/// A `redirect_uri` as WeChat checks it: an absolute http(s) URL, on the registered domain when
/// one is configured (shared by the authorize page and the Website app's QR page).
pub(crate) fn redirect_uri_of(shared: &Shared, raw: &str) -> Result<Url, PageError> {
    let redirect_uri = match Url::parse(raw) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => u,
        _ => {
            return Err(PageError::new(
                10008,
                "redirect_uri 参数错误 (not an absolute http(s) URL)",
            ))
        }
    };
    if let Some(domain) = &shared.config.redirect_domain {
        let host = redirect_uri.host_str().unwrap_or_default();
        if !host.eq_ignore_ascii_case(domain) {
            return Err(PageError::new(
                10003,
                "redirect_uri 域名与后台配置不一致 (redirect_uri domain mismatch)",
            ));
        }
    }
    Ok(redirect_uri)
}

/// The openid in the `wxemu_user` cookie, if any.
pub(crate) fn cookie_user(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get_all(actix_web::http::header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == USER_COOKIE)
        .map(|(_, value)| value.trim_matches('"').to_owned())
}

/// The openid in `X-Emulator-User`: `Ok(None)` when absent, `Err` when present but invalid.
pub(crate) fn header_user(req: &HttpRequest) -> Result<Option<String>, Answer> {
    match req.headers().get(USER_HEADER) {
        None => Ok(None),
        Some(v) => match v.to_str() {
            Ok(s) if valid_openid(s.trim()) => Ok(Some(s.trim().to_owned())),
            _ => {
                let mut a = Answer::html(
                    StatusCode::BAD_REQUEST,
                    "<!DOCTYPE html><p>X-Emulator-User must be 1-64 characters of [A-Za-z0-9_-]</p>"
                        .to_owned(),
                );
                a.answered = Answered::ErrCode(10001);
                Err(a)
            }
        },
    }
}

pub(crate) fn set_cookie(openid: &str) -> (&'static str, String) {
    (
        "set-cookie",
        format!("{USER_COOKIE}={openid}; Path=/; Max-Age=31536000; SameSite=Lax"),
    )
}

/// `redirect_uri` plus `code` (when allowed) and `state`, `&`-joined when it already has a query.
pub(crate) fn callback_url(redirect_uri: &Url, code: Option<&str>, state: &str) -> String {
    let mut url = redirect_uri.clone();
    {
        let mut query = url.query_pairs_mut();
        if let Some(code) = code {
            query.append_pair("code", code);
        }
        query.append_pair("state", state);
    }
    url.into()
}

/// Issues a code and redirects to the callback.
fn approve(shared: &Shared, openid: &str, request: &AuthorizeRequest) -> Answer {
    let code = shared.issue_code(openid, request.scope);
    Answer::redirect(callback_url(
        &request.redirect_uri,
        Some(&code),
        &request.state,
    ))
}

/// `GET /connect/oauth2/authorize`.
pub(crate) async fn authorize(req: HttpRequest, shared: web::Data<Shared>) -> HttpResponse {
    serve(&shared, Endpoint::Authorize, || {
        authorize_answer(&shared, &req)
    })
    .await
}

fn authorize_answer(shared: &Shared, req: &HttpRequest) -> Answer {
    let request = match parse_ordered_query(req.query_string()).and_then(|p| validate(shared, &p)) {
        Ok(r) => r,
        Err(e) => return Answer::from(e),
    };
    let header = match header_user(req) {
        Ok(h) => h,
        Err(a) => return a,
    };
    let cookie = cookie_user(req);
    let openid = shared.resolve_user(header.as_deref().or(cookie.as_deref()));

    let mut answer = if shared.needs_consent(&openid, request.scope) {
        consent_page(shared, &openid, &request)
    } else {
        approve(shared, &openid, &request)
    };
    if header.is_none() && cookie.as_deref() != Some(openid.as_str()) {
        answer.headers.push(set_cookie(&openid));
    }
    answer.openid = Some(openid);
    answer
}

/// The consent page's look (WeChat's "获取你的昵称、头像" sheet).
const CONSENT_STYLE: &str = "body{background:#fff;color:#191919}
main{max-width:480px;margin:0 auto;padding:40px 24px}
.app{font-size:15px;color:#7f7f7f}
.app code{color:#191919}
h1{font-size:20px;font-weight:500;margin:24px 0 8px}
.scope{color:#7f7f7f;font-size:14px;border-bottom:1px solid #eee;padding-bottom:16px}
.user{display:flex;align-items:center;gap:12px;padding:16px 0;border-bottom:1px solid #eee}
.user img{width:48px;height:48px;border-radius:6px}
.buttons{display:flex;flex-direction:column;gap:12px;margin-top:40px;align-items:center}
button{width:184px;padding:10px;border:0;border-radius:8px;font-size:17px}
#allow{background:#07c160;color:#fff}
#deny{background:#f2f2f2;color:#06ae56}
";

fn consent_page(shared: &Shared, openid: &str, request: &AuthorizeRequest) -> Answer {
    let user = shared.user(openid).unwrap_or_default();
    let avatar = if user.headimgurl.is_empty() {
        shared.avatar_url(0, 132)
    } else {
        user.headimgurl.clone()
    };
    let hidden = |name: &str, value: &str| {
        format!(
            "<input type=\"hidden\" name=\"{name}\" value=\"{}\">\n",
            attr(value)
        )
    };
    let mut fields = String::new();
    fields.push_str(&hidden("appid", &shared.config.appid));
    fields.push_str(&hidden("redirect_uri", &request.redirect_uri_raw));
    fields.push_str(&hidden("response_type", "code"));
    fields.push_str(&hidden("scope", request.scope.as_str()));
    fields.push_str(&hidden("state", &request.state));
    if request.connect_redirect {
        fields.push_str(&hidden("connect_redirect", "1"));
    }
    fields.push_str(&hidden("openid", openid));
    let body = format!(
        r#"<main>
<p class="app">网页应用 <code id="appid">{appid}</code> 申请使用</p>
<h1>获取你的昵称、头像</h1>
<p class="scope">scope: <span id="scope">{scope}</span></p>
<div class="user">
<img id="avatar" src="{avatar}" alt="">
<span id="nickname">{nickname}</span>
<span class="hint">微信个人信息</span>
</div>
<form id="consent" method="post" action="/connect/oauth2/authorize/confirm">
{fields}<div class="buttons">
<button type="submit" name="action" value="allow" id="allow">允许</button>
<button type="submit" name="action" value="deny" id="deny">拒绝</button>
</div>
</form>
</main>
"#,
        appid = text(&shared.config.appid),
        scope = request.scope.as_str(),
        avatar = attr(&avatar),
        nickname = text(&user.nickname),
    );
    Answer::page(StatusCode::OK, "微信登录", CONSENT_STYLE, &body)
}

/// `GET|POST /connect/oauth2/authorize/confirm`: the consent form's Allow / Deny.
pub(crate) async fn confirm(
    req: HttpRequest,
    body: web::Bytes,
    shared: web::Data<Shared>,
) -> HttpResponse {
    let raw: Cow<'_, [u8]> = if req.method() == Method::POST {
        Cow::Owned(body.to_vec())
    } else {
        Cow::Borrowed(req.query_string().as_bytes())
    };
    let params: HashMap<String, String> = url::form_urlencoded::parse(&raw).into_owned().collect();
    let request = match validate(&shared, &params) {
        Ok(r) => r,
        Err(e) => return Answer::from(e).into_response(),
    };
    let header = match header_user(&req) {
        Ok(h) => h,
        Err(a) => return a.into_response(),
    };
    let form_user = params.get("openid").filter(|o| valid_openid(o)).cloned();
    let wanted = form_user.or(header).or_else(|| cookie_user(&req));
    let openid = shared.resolve_user(wanted.as_deref());
    match params.get("action").map(String::as_str) {
        Some("allow") => {
            shared.remember_consent(&openid, request.scope);
            log::debug!(
                "wechat emulator: {openid} allowed {}",
                request.scope.as_str()
            );
            approve(&shared, &openid, &request).into_response()
        }
        Some("deny") => {
            log::debug!(
                "wechat emulator: {openid} denied {}",
                request.scope.as_str()
            );
            Answer::redirect(callback_url(&request.redirect_uri, None, &request.state))
                .into_response()
        }
        _ => Answer::error_page(
            10001,
            "参数错误：action 必须为 allow 或 deny (action must be allow or deny)",
        )
        .into_response(),
    }
}

/// `GET /_emulator/login?openid=X&next=URL`: signs the browser in as a WeChat user.
pub(crate) async fn login(req: HttpRequest, shared: web::Data<Shared>) -> HttpResponse {
    let params: HashMap<String, String> =
        url::form_urlencoded::parse(req.query_string().as_bytes())
            .into_owned()
            .collect();
    let wanted = params.get("openid").filter(|o| !o.is_empty());
    if let Some(o) = wanted {
        if !valid_openid(o) {
            return HttpResponse::BadRequest()
                .content_type("text/plain; charset=utf-8")
                .body("openid must be 1-64 characters of [A-Za-z0-9_-]");
        }
    }
    let next = params.get("next").filter(|n| !n.is_empty());
    if let Some(next) = next {
        if !allowed_next(next, shared.config.redirect_domain.as_deref()) {
            return HttpResponse::BadRequest()
                .content_type("text/plain; charset=utf-8")
                .body(
                    "next must be a path on the emulator, or a URL of the app: the configured \
                     redirect_domain, or a loopback host when none is configured",
                );
        }
    }
    let openid = shared.resolve_user(wanted.map(String::as_str));
    let cookie = set_cookie(&openid);
    match next {
        Some(next) => HttpResponse::Found()
            .insert_header(cookie)
            .insert_header(("location", next.as_str()))
            .finish(),
        None => HttpResponse::Ok()
            .insert_header(cookie)
            .content_type(TEXT_HTML)
            .body(format!(
                "<!DOCTYPE html><meta charset=\"utf-8\"><p>已登录微信用户 / signed in as <code id=\"openid\">{}</code></p>\n",
                text(&openid)
            )),
    }
}

/// Where `/_emulator/login` may send the browser: not an open redirect. A path on the emulator,
/// or an http(s) URL on the registered web authorization domain (`redirect_domain`), or on a
/// loopback host when none is registered (the app under test runs there).
fn allowed_next(next: &str, redirect_domain: Option<&str>) -> bool {
    let bytes = next.as_bytes();
    if bytes.first() == Some(&b'/') {
        return !matches!(bytes.get(1), Some(b'/' | b'\\'))
            && !next.contains('\\')
            && next.bytes().all(|b| b > b' ' && b != 0x7f);
    }
    let Ok(url) = Url::parse(next) else {
        return false;
    };
    if !matches!(url.scheme(), "http" | "https") {
        return false;
    }
    match (redirect_domain, url.host()) {
        (Some(domain), Some(url::Host::Domain(host))) => host.eq_ignore_ascii_case(domain),
        (Some(domain), Some(host)) => host.to_string() == domain,
        (None, Some(url::Host::Domain(host))) => host.eq_ignore_ascii_case("localhost"),
        (None, Some(url::Host::Ipv4(ip))) => ip.is_loopback(),
        (None, Some(url::Host::Ipv6(ip))) => ip.is_loopback(),
        (_, None) => false,
    }
}

/// `GET /_emulator/avatar/{n}/{size}`: a small SVG avatar (n = 0 is the grey default avatar).
pub(crate) async fn avatar(path: web::Path<(String, String)>) -> HttpResponse {
    let (n, size) = path.into_inner();
    let (Ok(n), Ok(size)) = (n.parse::<u64>(), size.parse::<u32>()) else {
        return HttpResponse::NotFound().finish();
    };
    let px = match size {
        0 => 640,
        46 | 64 | 96 | 132 => size,
        _ => return HttpResponse::NotFound().finish(),
    };
    let fill = if n == 0 {
        "hsl(0,0%,78%)".to_owned()
    } else {
        format!("hsl({},55%,58%)", (n * 137) % 360)
    };
    let svg = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{px}" height="{px}" viewBox="0 0 100 100"><rect width="100" height="100" fill="{fill}"/><circle cx="50" cy="38" r="18" fill="#fff" fill-opacity=".92"/><path d="M16 100c2-22 17-34 34-34s32 12 34 34z" fill="#fff" fill-opacity=".92"/></svg>"##
    );
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "image/svg+xml"))
        .insert_header((CACHE_CONTROL, "public, max-age=86400"))
        .body(svg)
}

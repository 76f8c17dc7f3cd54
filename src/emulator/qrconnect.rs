//! The Website app's `open.weixin.qq.com` role: the QR sign-in page (full page, or the frame that
//! WeChat's wxLogin.js embeds) and its "scan with WeChat" / "deny" buttons.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use html_escape::{encode_double_quoted_attribute as attr, encode_text as text};
use url::Url;

use super::answer::{Answer, PageError};
use super::authorize::{callback_url, cookie_user, header_user, redirect_uri_of, set_cookie};
use super::faults::serve;
use super::state::{valid_openid, Scope, Shared};
use super::Endpoint;

/// The full page's parameters, in WeChat's order.
const FULL_PAGE: [&str; 5] = ["appid", "redirect_uri", "response_type", "scope", "state"];
/// What wxLogin.js adds for the embedded frame (any order is accepted here).
const FRAME: [&str; 11] = [
    "login_type",
    "self_redirect",
    "styletype",
    "sizetype",
    "bgcolor",
    "rst",
    "style",
    "href",
    "stylelite",
    "fast_login",
    "lang",
];

/// A validated QR sign-in request.
struct QrRequest {
    redirect_uri_raw: String,
    redirect_uri: Url,
    state: String,
    /// `self_redirect=true`: the callback lands inside the frame instead of the top window.
    self_redirect: bool,
    embedded: bool,
}

fn params_of(raw: &str) -> Result<HashMap<String, String>, PageError> {
    let mut params = HashMap::new();
    let mut last = None;
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(raw.as_bytes())
        .into_owned()
        .collect();
    let embedded = pairs.iter().any(|(k, v)| k == "login_type" && v == "jssdk");
    for (key, value) in pairs {
        let position = FULL_PAGE.iter().position(|k| *k == key);
        if position.is_none() && !(embedded && FRAME.contains(&key.as_str())) {
            return Err(PageError::new(
                10001,
                format!("参数错误：未知参数 {key} (unknown parameter)"),
            ));
        }
        // The full page must list its parameters in WeChat's order.
        if !embedded {
            if position < last {
                return Err(PageError::new(
                    10001,
                    "参数错误：参数顺序错误 (parameters out of order)",
                ));
            }
            last = position;
        }
        if params.insert(key.clone(), value).is_some() {
            return Err(PageError::new(
                10001,
                format!("参数错误：参数 {key} 重复 (duplicated parameter)"),
            ));
        }
    }
    Ok(params)
}

fn validate(shared: &Shared, params: &HashMap<String, String>) -> Result<QrRequest, PageError> {
    let get = |k: &str| params.get(k).map(String::as_str).filter(|v| !v.is_empty());
    match get("appid") {
        None => return Err(PageError::new(10012, "appid 参数不能为空 (appid is empty)")),
        Some(a) if a != shared.config.web_appid => {
            return Err(PageError::new(
                10002,
                "appid 无效：不是网站应用 (not the Website app's appid)",
            ))
        }
        Some(_) => {}
    }
    let embedded = get("login_type") == Some("jssdk");
    if !embedded && get("response_type") != Some("code") {
        return Err(PageError::new(
            10001,
            "参数错误：response_type 必须为 code (response_type must be code)",
        ));
    }
    if get("scope").and_then(Scope::parse) != Some(Scope::Login) {
        return Err(PageError::new(
            10005,
            "网站应用只有 snsapi_login 权限 (the only scope is snsapi_login)",
        ));
    }
    let Some(redirect_uri_raw) = get("redirect_uri") else {
        return Err(PageError::new(
            10011,
            "redirect_uri 参数不能为空 (redirect_uri is empty)",
        ));
    };
    let redirect_uri = redirect_uri_of(shared, redirect_uri_raw)?;
    let state = params.get("state").cloned().unwrap_or_default();
    if state.len() > 128 || !state.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(PageError::new(
            10007,
            "state 参数错误 (state must be [A-Za-z0-9]{0,128})",
        ));
    }
    Ok(QrRequest {
        redirect_uri_raw: redirect_uri_raw.to_owned(),
        redirect_uri,
        state,
        self_redirect: get("self_redirect") == Some("true"),
        embedded,
    })
}

/// `GET /connect/qrconnect`: the QR sign-in page.
pub(crate) async fn page(req: HttpRequest, shared: web::Data<Shared>) -> HttpResponse {
    serve(&shared, Endpoint::QrConnect, || {
        let request = match params_of(req.query_string()).and_then(|p| validate(&shared, &p)) {
            Ok(r) => r,
            Err(e) => return Answer::from(e),
        };
        qr_page(&shared, &request)
    })
    .await
}

/// The QR page's look (the frame of WeChat's wxLogin.js, or the full page).
const QR_STYLE: &str = "h1{font-size:18px;font-weight:500;margin:0 0 12px}
svg{width:180px;height:180px;background:#fff;padding:8px;border:1px solid #e5e5e5}
p{color:#7f7f7f;font-size:13px}
a.btn{width:180px;margin:6px auto;display:block;padding:9px;border-radius:6px;font-size:15px;text-decoration:none}
#scan{background:#07c160;color:#fff}#deny{background:#f2f2f2;color:#06ae56}
";

/// A QR-like placeholder and the two buttons a phone's scan stands for.
fn qr_page(shared: &Shared, request: &QrRequest) -> Answer {
    // Links rather than a form: WeChat's frame is sandboxed without `allow-forms`.
    let confirm = |action: &str| {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("appid", &shared.config.web_appid)
            .append_pair("redirect_uri", &request.redirect_uri_raw)
            .append_pair("scope", "snsapi_login")
            .append_pair("state", &request.state)
            .append_pair("action", action)
            .finish();
        attr(&format!("/connect/qrconnect/confirm?{query}")).into_owned()
    };
    // The default moves the top window (the frame is cross-origin: the page's sandbox must allow
    // top navigation); `self_redirect=true` keeps the callback inside the frame.
    let target = if request.self_redirect {
        "_self"
    } else {
        "_top"
    };
    let mut cells = String::new();
    for i in 0..81u32 {
        if (i * 7 + i / 9 * 3) % 5 < 2 || [0, 1, 9, 10, 7, 8, 16, 17, 63, 64, 72, 73].contains(&i) {
            cells.push_str(&format!(
                r#"<rect x="{}" y="{}" width="1" height="1"/>"#,
                i % 9,
                i / 9
            ));
        }
    }
    let style = format!(
        "body{{background:{bg};color:#191919;text-align:center}}\n{QR_STYLE}main{{padding:{pad}px 12px}}\n",
        bg = if request.embedded {
            "transparent"
        } else {
            "#fff"
        },
        pad = if request.embedded { 8 } else { 48 },
    );
    let body = format!(
        r#"<main>
<h1>微信登录</h1>
<svg viewBox="0 0 9 9" id="qr" aria-label="QR">{cells}</svg>
<p>使用微信扫一扫登录 <code id="web-appid">{appid}</code></p>
<a class="btn" id="scan" href="{allow}" target="{target}">用微信扫码 (scan with WeChat)</a>
<a class="btn" id="deny" href="{deny}" target="{target}">拒绝 (deny)</a>
</main>
"#,
        appid = text(&shared.config.web_appid),
        allow = confirm("allow"),
        deny = confirm("deny"),
    );
    Answer::page(StatusCode::OK, "微信登录", &style, &body)
}

/// `GET /connect/qrconnect/confirm`: the phone scanned and confirmed (or denied).
pub(crate) async fn confirm(req: HttpRequest, shared: web::Data<Shared>) -> HttpResponse {
    let params: HashMap<String, String> =
        url::form_urlencoded::parse(req.query_string().as_bytes())
            .into_owned()
            .collect();
    let mut checked = params.clone();
    checked.insert("response_type".into(), "code".into());
    checked.remove("action");
    let request = match validate(&shared, &checked) {
        Ok(r) => r,
        Err(e) => return Answer::from(e).into_response(),
    };
    let header = match header_user(&req) {
        Ok(h) => h,
        Err(a) => return a.into_response(),
    };
    // Whose phone scans: the one set with `scan_as`, else the browser's emulated user.
    let wanted = shared
        .scanner()
        .or(header)
        .or_else(|| cookie_user(&req))
        .filter(|o| valid_openid(o));
    let openid = shared.resolve_user(wanted.as_deref());
    let mut answer = match params.get("action").map(String::as_str) {
        Some("allow") => {
            let code = shared.issue_code(&openid, Scope::Login);
            Answer::redirect(callback_url(
                &request.redirect_uri,
                Some(&code),
                &request.state,
            ))
        }
        Some("deny") => Answer::redirect(callback_url(&request.redirect_uri, None, &request.state)),
        _ => {
            return Answer::from(PageError::new(10001, "action 必须为 allow 或 deny"))
                .into_response()
        }
    };
    answer.headers.push(set_cookie(&openid));
    answer.into_response()
}

//! What people see: every page the crate answers itself, in each of its three languages, over
//! real HTTP; the app's renderer replacing every kind; a lost `state` restarting once in WeChat;
//! the `#hash` interstitial.

use crate::common;

use std::time::Duration;

use crate::common::{query_pairs, Browser, Hop, Setup, Shape, WECHAT_UA};
use actix_web::HttpResponse;
use actix_wechat_auth::{
    emulator::{EmulatedUser, Emulator, Endpoint, Fault},
    Lang, PageKind, SignInRefused, WeChatConfigBuilder,
};
use reqwest::StatusCode;

const ANDROID_CHROME_UA: &str = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 \
    (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36";
const CHROME_UA: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 \
    (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";

/// The three languages: what a browser sends, the `lang` attribute, the crate's language.
const LANGS: [(&str, &str, Lang); 3] = [
    ("zh-CN,zh;q=0.9,en;q=0.8", "zh-CN", Lang::ZhCn),
    ("zh-TW,zh;q=0.9", "zh-TW", Lang::ZhTw),
    ("en-US,en;q=0.9,zh-CN;q=0.5", "en", Lang::En),
];

/// A sentence of each default page in Simplified Chinese, written here rather than taken from the
/// crate, so that a change of the words is a visible change of this test.
fn chinese_sentence(kind: PageKind) -> &'static str {
    match kind {
        PageKind::SignInRequired => "请使用微信登录后继续",
        PageKind::StateInvalid => "这个登录链接已失效或已过期",
        PageKind::CallbackUnreadable => "无法读取微信返回的登录信息",
        PageKind::Declined => "你已拒绝微信授权",
        PageKind::Snapshot => "使用完整服务",
        PageKind::SignInRefused => "这个微信账号不能登录本网站",
        PageKind::CodeRejected => "微信未能确认这次登录",
        PageKind::ScopeNotGranted => "需要你的微信昵称和头像",
        PageKind::WeChatBusy => "微信系统繁忙",
        PageKind::WeChatError => "微信登录出错了",
        PageKind::WeChatUnreachable => "暂时无法连接微信",
        PageKind::WeChatTimeout => "微信没有及时响应",
        PageKind::Unavailable => "登录服务暂时不可用",
        PageKind::Misconfigured => "网站的登录配置有误",
        PageKind::QrSignIn => "请使用微信扫描二维码",
        PageKind::OpenInWeChat => "请用微信扫描二维码，或复制链接后在微信中打开",
        other => panic!("{other:?} has no sentence here: add one"),
    }
}

fn header<'a>(headers: &[(&'a str, &'a str)], accept_language: &'a str) -> Vec<(&'a str, &'a str)> {
    let mut all = headers.to_vec();
    all.push(("accept-language", accept_language));
    all.push(("accept", "text/html"));
    all
}

/// Follows a sign-in from `path` with the code exchange faulted by `fault` (if any): the page at
/// the end.
async fn sign_in_ending(s: &Setup, path: &str, headers: &[(&str, &str)]) -> Hop {
    let browser = Browser::new();
    let mut url = s.url(path);
    for _ in 0..8 {
        let hop = browser.get_with(&url, headers).await;
        match hop.location.clone().filter(|_| hop.status.is_redirection()) {
            Some(next) => {
                let mut next = reqwest::Url::parse(&url).unwrap().join(&next).unwrap();
                next.set_fragment(None);
                url = next.to_string();
            }
            None => return hop,
        }
    }
    panic!("no page at the end of {path}")
}

/// Makes the middleware answer `kind`, with `accept_language`, from an app configured by `tweak`.
async fn provoke(
    kind: PageKind,
    accept_language: &str,
    tweak: fn(WeChatConfigBuilder) -> WeChatConfigBuilder,
) -> Hop {
    match kind {
        PageKind::SignInRequired => {
            let s = Setup::new(Shape::Routes, tweak);
            Browser::new()
                .get_with(&s.url("/whoami"), &header(&[], accept_language))
                .await
        }
        PageKind::StateInvalid => {
            let s = Setup::new(Shape::Routes, tweak);
            let url = s.url("/wechat/callback?code=abc&state=NotThisBrowsers");
            let desktop = [("user-agent", CHROME_UA)];
            let hop = Browser::new()
                .get_with(&url, &header(&desktop, accept_language))
                .await;
            assert_eq!(s.emulator.call_count(Endpoint::AccessToken), 0);
            hop
        }
        PageKind::CallbackUnreadable => {
            let s = Setup::new(Shape::Routes, tweak);
            let url = s.url("/wechat/callback?code=a&code=b&state=x");
            Browser::new()
                .get_with(&url, &header(&[], accept_language))
                .await
        }
        PageKind::Declined => {
            let s = Setup::new(Shape::Routes, tweak);
            let browser = Browser::new();
            let hop = browser
                .get_with(&s.url("/info"), &header(&[], accept_language))
                .await;
            let state = query_pairs(&hop.location.unwrap())[4].1.clone();
            let callback = s.url(&format!("/wechat/callback?state={state}"));
            browser
                .get_with(&callback, &header(&[], accept_language))
                .await
        }
        PageKind::Snapshot => {
            let s = Setup::new(Shape::Routes, tweak);
            let snap = s.emulator.add_user(EmulatedUser::new("快照").snapshot());
            let browser = Browser::new();
            let hop = browser
                .get_with(&s.url("/info"), &header(&[], accept_language))
                .await;
            let at_wechat = hop.location.unwrap().replace("#wechat_redirect", "");
            let hop = browser
                .get_with(&at_wechat, &[("x-emulator-user", snap.as_str())])
                .await;
            browser
                .get_with(&hop.location.unwrap(), &header(&[], accept_language))
                .await
        }
        PageKind::SignInRefused => {
            let s = Setup::new(Shape::Routes, |c| {
                tweak(c).on_sign_in(|_| async { Err(SignInRefused::because("not a member")) })
            });
            sign_in_ending(&s, "/info", &header(&[], accept_language)).await
        }
        PageKind::CodeRejected => {
            let s = Setup::new(Shape::Routes, tweak);
            s.emulator
                .inject_fault(Endpoint::AccessToken, Fault::ErrCode(40163), None);
            sign_in_ending(&s, "/info", &header(&[], accept_language)).await
        }
        PageKind::ScopeNotGranted => {
            let s = Setup::new(Shape::Routes, tweak);
            let body = r#"{"access_token":"AT","expires_in":7200,"refresh_token":"RT","openid":"oBase","scope":"snsapi_base"}"#;
            s.emulator
                .inject_fault(Endpoint::AccessToken, Fault::Body(body.into()), None);
            sign_in_ending(&s, "/info", &header(&[], accept_language)).await
        }
        PageKind::WeChatBusy => {
            let s = Setup::new(Shape::Routes, tweak);
            s.emulator
                .inject_fault(Endpoint::AccessToken, Fault::Busy, None);
            sign_in_ending(&s, "/info", &header(&[], accept_language)).await
        }
        PageKind::WeChatError => {
            let s = Setup::new(Shape::Routes, tweak);
            s.emulator
                .inject_fault(Endpoint::AccessToken, Fault::ErrCode(40013), None);
            sign_in_ending(&s, "/info", &header(&[], accept_language)).await
        }
        PageKind::WeChatUnreachable => {
            let emulator = Emulator::builder().auto_approve(true).start().unwrap();
            let s = Setup::with_emulator(emulator, Shape::Routes, |c| {
                tweak(c).api_base("http://127.0.0.1:1").max_attempts(1)
            });
            sign_in_ending(&s, "/info", &header(&[], accept_language)).await
        }
        PageKind::WeChatTimeout => {
            let emulator = Emulator::builder().auto_approve(true).start().unwrap();
            let s = Setup::with_emulator(emulator, Shape::Routes, |c| {
                tweak(c).request_timeout(Duration::from_millis(200))
            });
            s.emulator.inject_fault(
                Endpoint::AccessToken,
                Fault::Delay(Duration::from_secs(1)),
                None,
            );
            sign_in_ending(&s, "/info", &header(&[], accept_language)).await
        }
        PageKind::Unavailable => {
            // A required refresh past the openid's budget.
            let emulator = Emulator::builder()
                .auto_approve(true)
                .access_token_ttl(Duration::from_secs(1))
                .start()
                .unwrap();
            let s = Setup::with_emulator(emulator, Shape::Routes, |c| {
                tweak(c)
                    .refresh_margin(Duration::ZERO)
                    .upstream_calls_per_minute(1)
            });
            s.emulator
                .inject_fault(Endpoint::RefreshToken, Fault::Delay(Duration::ZERO), None);
            let browser = Browser::new();
            common::sign_in(&browser, &s.url("/info")).await;
            // Two refreshes due: the first spends the budget, the second is refused.
            for _ in 0..2 {
                actix_web::rt::time::sleep(Duration::from_millis(1100)).await;
                let hop = browser
                    .get_with(&s.url("/info"), &header(&[], accept_language))
                    .await;
                if hop.status != StatusCode::OK {
                    return hop;
                }
            }
            panic!("the budget was never spent (a minute boundary?)")
        }
        PageKind::Misconfigured => {
            let s = Setup::new(Shape::WrongOrder, tweak);
            Browser::new()
                .get_with(&s.url("/x"), &header(&[], accept_language))
                .await
        }
        PageKind::QrSignIn => {
            let s = Setup::new(Shape::Routes, |c| {
                tweak(c).website_app("wxweb0123456789", "web-secret")
            });
            let desktop = [("user-agent", CHROME_UA)];
            Browser::new()
                .get_with(&s.url("/info"), &header(&desktop, accept_language))
                .await
        }
        PageKind::OpenInWeChat => {
            let s = Setup::new(Shape::Routes, tweak);
            let phone = [("user-agent", ANDROID_CHROME_UA)];
            Browser::new()
                .get_with(&s.url("/info?item=1"), &header(&phone, accept_language))
                .await
        }
        other => panic!("no way to provoke {other:?} here: add one"),
    }
}

fn lang_attribute(body: &str) -> &str {
    body.split("<html lang=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no <html lang>: {body}"))
}

/// Waits until the current minute has a few seconds left (the per-minute budget).
async fn not_at_a_minute_boundary() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    if now.as_secs() % 60 > 52 {
        actix_web::rt::time::sleep(Duration::from_secs(9)).await;
    }
}

#[actix_web::test]
async fn every_page_in_every_language() {
    not_at_a_minute_boundary().await;
    for kind in PageKind::ALL {
        for (accept_language, attribute, lang) in LANGS {
            let hop = provoke(kind, accept_language, |c| c).await;
            let what = format!("{kind:?} in {attribute}");
            assert_eq!(
                hop.status.as_u16(),
                actix_wechat_auth::Page::new(kind, lang).status.as_u16(),
                "{what}: {}",
                hop.body
            );
            assert!(
                hop.headers["content-type"]
                    .to_str()
                    .unwrap()
                    .starts_with("text/html"),
                "{what}"
            );
            assert_eq!(lang_attribute(&hop.body), attribute, "{what}");
            let text = kind.text(lang);
            assert!(
                hop.body.contains(&*html_escape::encode_text(text.message)),
                "{what}: {}",
                hop.body
            );
            if lang == Lang::ZhCn {
                assert!(hop.body.contains(chinese_sentence(kind)), "{what}");
            }
            // The way forward: a button with a same-origin link, where the page has one (the
            // sign-in pages: WeChat's QR sign-in, when there is a Website app).
            let sign_in_page = matches!(kind, PageKind::QrSignIn | PageKind::OpenInWeChat);
            if let Some(action) = text.action.filter(|_| kind != PageKind::OpenInWeChat) {
                assert!(hop.body.contains(action), "{what}: no {action}");
                let href = hop
                    .body
                    .split("id=\"action\" href=\"")
                    .nth(1)
                    .and_then(|rest| rest.split('"').next())
                    .unwrap_or_else(|| panic!("{what}: no link: {}", hop.body));
                if sign_in_page {
                    assert!(href.contains("/connect/qrconnect?"), "{what}: {href}");
                } else {
                    assert!(href.starts_with('/'), "{what}: {href}");
                }
            }
            assert_eq!(hop.headers["cache-control"], "no-store", "{what}");
            assert_eq!(hop.headers["referrer-policy"], "no-referrer", "{what}");
            if !sign_in_page {
                assert!(
                    !hop.body.contains("http://") && !hop.body.contains("https://"),
                    "{what}"
                );
            }
        }
    }
}

#[actix_web::test]
async fn the_apps_renderer_replaces_every_page_and_page_lang_fixes_the_language() {
    not_at_a_minute_boundary().await;
    fn renderer(c: WeChatConfigBuilder) -> WeChatConfigBuilder {
        c.page_lang(Lang::ZhTw).pages(|page| {
            HttpResponse::build(page.status)
                .content_type("text/html; charset=utf-8")
                .body(format!(
                    "<html lang=\"app\">APP PAGE {:?} {:?} {} {}",
                    page.kind,
                    page.lang,
                    page.code,
                    page.link.as_deref().unwrap_or("-")
                ))
        })
    }
    for kind in PageKind::ALL {
        // English asked for, Traditional Chinese fixed by the app.
        let hop = provoke(kind, "en", renderer).await;
        assert!(
            hop.body
                .starts_with(&format!("<html lang=\"app\">APP PAGE {kind:?} ZhTw ")),
            "{kind:?}: {}",
            hop.body
        );
        assert_eq!(hop.headers["cache-control"], "no-store");
    }
}

#[actix_web::test]
async fn json_messages_follow_the_language_and_keep_their_codes() {
    let s = Setup::new(Shape::Routes, |c| c);
    for (accept_language, _, lang) in LANGS {
        let hop = Browser::new()
            .get_with(&s.url("/api/me"), &[("accept-language", accept_language)])
            .await;
        assert_eq!(hop.status, StatusCode::UNAUTHORIZED);
        let json = hop.json();
        assert_eq!(json["error"], "sign_in_required");
        assert_eq!(json["message"], PageKind::SignInRequired.text(lang).message);
    }
    // No Accept-Language: WeChat's own Language/ token.
    let ua = WECHAT_UA.replace("Language/zh_CN", "Language/en");
    let hop = Browser::new()
        .get_with(&s.url("/api/me"), &[("user-agent", ua.as_str())])
        .await;
    assert_eq!(
        hop.json()["message"],
        "Please sign in with WeChat to continue."
    );
}

// ---------------------------------------------------------------------------------------------
// A lost state

/// The callback of a state this browser does not hold: the request as WeChat sends it back.
fn lost_callback(s: &Setup) -> String {
    s.url("/wechat/callback?code=SomeoneElsesCode&state=NotHeldByThisBrowser123")
}

#[actix_web::test]
async fn a_lost_state_restarts_once_in_wechat_with_cookies() {
    let s = Setup::new(Shape::Routes, |c| c);
    let browser = Browser::new();
    let wechat = [("user-agent", WECHAT_UA)];
    let hop = browser.get_with(&lost_callback(&s), &wechat).await;
    assert_eq!(hop.status, StatusCode::FOUND, "{}", hop.body);
    let location = hop.location.unwrap();
    assert!(
        location.contains("/connect/oauth2/authorize?"),
        "{location}"
    );
    let params = query_pairs(&location);
    assert_eq!(params[1].1, s.url("/wechat/callback?wxr=1"));
    assert_eq!(params[3].1, "snsapi_base", "the configured scope");
    assert_ne!(params[4].1, "NotHeldByThisBrowser123", "a fresh state");
    // Again in the same browser: the page with its button, no second restart.
    let again = browser.get_with(&lost_callback(&s), &wechat).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    assert!(again.body.contains("重新登录"), "{}", again.body);
    // The restart itself completes, back to the site's root.
    let hops = browser.navigate(&location).await;
    let callback = hops
        .iter()
        .find(|h| h.url.contains("/wechat/callback"))
        .unwrap();
    assert_eq!(callback.status, StatusCode::SEE_OTHER, "{}", callback.body);
    assert_eq!(callback.location.as_deref(), Some("/#"));
    // Never an exchange of the lost code: the one exchange is the restart's own.
    assert_eq!(s.emulator.call_count(Endpoint::AccessToken), 1);
}

#[actix_web::test]
async fn a_lost_state_restarts_once_in_wechat_without_cookies() {
    let s = Setup::new(Shape::Routes, |c| c);
    // A webview that keeps no cookie at all: every request from a fresh jar.
    let wechat = [("user-agent", WECHAT_UA)];
    let hop = Browser::new().get_with(&lost_callback(&s), &wechat).await;
    assert_eq!(hop.status, StatusCode::FOUND);
    let at_wechat = Browser::new()
        .get(&hop.location.unwrap().replace("#wechat_redirect", ""))
        .await;
    let back = at_wechat.location.unwrap();
    assert!(back.contains("wxr=1&code="), "{back}");
    let second = Browser::new().get_with(&back, &wechat).await;
    assert_eq!(
        second.status,
        StatusCode::BAD_REQUEST,
        "the marker stops a loop"
    );
    assert!(second.body.contains("这个登录链接已失效或已过期"));
    assert_eq!(s.emulator.call_count(Endpoint::AccessToken), 0);
}

#[actix_web::test]
async fn a_lost_state_outside_wechat_is_the_page_at_once() {
    let s = Setup::new(Shape::Routes, |c| c);
    let wecom = format!("{WECHAT_UA} wxwork/4.1.0");
    for ua in [CHROME_UA, wecom.as_str()] {
        let hop = Browser::new()
            .get_with(&lost_callback(&s), &[("user-agent", ua)])
            .await;
        assert_eq!(hop.status, StatusCode::BAD_REQUEST, "{ua}");
    }
    assert_eq!(s.emulator.call_count(Endpoint::AccessToken), 0);
    assert_eq!(s.emulator.call_count(Endpoint::Authorize), 0);
}

// ---------------------------------------------------------------------------------------------
// The hash route

#[actix_web::test]
async fn the_hash_interstitial_carries_the_route_through_the_callback() {
    let s = Setup::new(Shape::Routes, |c| c.keep_hash_route_on("/info"));
    let browser = Browser::new();
    let hop = browser
        .get_with(&s.url("/info"), &[("accept", "text/html")])
        .await;
    assert_eq!(hop.status, StatusCode::OK);
    assert_eq!(hop.headers["cache-control"], "no-store");
    let csp = hop.headers["content-security-policy"].to_str().unwrap();
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .unwrap()
        .split('\'')
        .next()
        .unwrap();
    assert!(
        hop.body.contains(&format!("<script nonce=\"{nonce}\">")),
        "{}",
        hop.body
    );
    assert!(hop.body.contains("location.hash"));
    assert!(browser.pending_cookies(&s.app.base).len() == 1);
    // What the script does in a browser (the Chromium test runs it): the same authorize URL with
    // the hash on the redirect_uri. Over HTTP, its noscript link, then the callback with `wxh`.
    let link = hop
        .body
        .split("<noscript><a href=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .replace("&amp;", "&");
    let state = query_pairs(&link)[4].1.clone();
    let callback = Browser::new()
        .get(&link.replace("#wechat_redirect", ""))
        .await
        .location
        .unwrap();
    let code = query_pairs(&callback)[0].1.clone();
    let with_hash = s.url(&format!(
        "/wechat/callback?wxh=%2Forders%2F12%3Ftab%3D2&code={code}&state={state}"
    ));
    let landed = browser.get(&with_hash).await;
    assert_eq!(landed.status, StatusCode::SEE_OTHER, "{}", landed.body);
    assert_eq!(landed.location.as_deref(), Some("/info#/orders/12?tab=2"));
    // A hash can only be a fragment: markup and quotes are encoded.
    let hop = browser.get(&s.url("/info")).await;
    assert_eq!(hop.status, StatusCode::OK, "signed in: no interstitial");
}

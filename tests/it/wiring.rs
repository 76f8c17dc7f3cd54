//! Misuse fails loudly (rule 7, the extractor without the middleware), and secrets stay secret.

use std::time::Duration;

use crate::common::{logs, sign_in, Browser, Setup, Shape};
use actix_wechat_auth::{
    emulator::{Endpoint, Fault},
    AccessToken, AppSecret, RefreshToken, WeChatConfig,
};
use reqwest::StatusCode;

#[actix_web::test]
async fn session_middleware_inside_wechat_auth_is_a_500_naming_the_fix() {
    for shape in [Shape::WrongOrder, Shape::NoSession] {
        let s = Setup::new(shape, |c| c);
        let browser = s.browser();
        let page = browser.get(&s.url("/anything")).await;
        assert_eq!(page.status, StatusCode::INTERNAL_SERVER_ERROR, "{shape:?}");
        assert!(page.location.is_none());
        assert!(page.body.contains("misconfigured"), "{}", page.body);
        // The configuration points at the emulator: a developer's machine, told what to fix.
        assert!(
            page.body.contains(r#"id="hint""#) && page.body.contains(".wrap(WeChatAuth) first"),
            "{}",
            page.body
        );
        let api = browser
            .get_with(&s.url("/anything"), &[("accept", "application/json")])
            .await;
        assert_eq!(api.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(api.json()["error"], "misconfigured");
        assert!(api.json()["hint"]
            .as_str()
            .is_some_and(|h| h.contains("SessionMiddleware must wrap outside")));
        // Every request, not just the first one of a worker.
        assert_eq!(browser.get(&s.url("/again")).await.status, 500);
        assert_eq!(s.emulator.calls().len(), 0);
    }
    assert!(logs().iter().any(|l| l.starts_with("ERROR")
        && l.contains("SessionMiddleware must wrap outside")
        && l.contains(".wrap(WeChatAuth) first")));
}

#[actix_web::test]
async fn in_production_a_misconfiguration_is_only_misconfigured() {
    // WeChat's real hosts and a public https URL: nothing says this is a developer's machine,
    // though the request itself comes from loopback.
    let s = Setup::new(Shape::NoSession, |c| {
        c.public_url("https://h5.example.com")
            .open_base("https://open.weixin.qq.com")
            .api_base("https://api.weixin.qq.com")
    });
    let browser = s.browser();
    let page = browser.get(&s.url("/anything")).await;
    assert_eq!(page.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(page.body.contains("misconfigured"), "{}", page.body);
    assert!(
        !page.body.contains(r#"id="hint""#) && !page.body.contains(".wrap("),
        "{}",
        page.body
    );
    let api = browser
        .get_with(&s.url("/anything"), &[("accept", "application/json")])
        .await;
    assert_eq!(api.json()["error"], "misconfigured");
    assert!(api.json().get("hint").is_none(), "{}", api.body);
}

#[actix_web::test]
async fn extractor_without_the_middleware_is_a_clear_500_logged_once_per_worker() {
    let s = Setup::new(Shape::NoMiddleware, |c| c);
    let count = || {
        logs()
            .iter()
            .filter(|l| l.starts_with("ERROR") && l.contains("no WeChatAuth wraps"))
            .count()
    };
    let before = count();
    let browser = Browser::new();
    for _ in 0..10 {
        let hop = browser.get(&s.url("/x")).await;
        assert_eq!(hop.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(hop.body.contains("misconfigured"));
        assert!(
            hop.body.contains(".wrap(WeChatAuth::new(config))"),
            "{}",
            hop.body
        );
    }
    // The app has two workers: at most one line each, however many requests.
    let logged = count() - before;
    assert!((1..=2).contains(&logged), "{logged} lines for 10 requests");
}

#[actix_web::test]
async fn secrets_never_reach_logs_pages_or_debug_output() {
    let s = Setup::new(Shape::Routes, |c| {
        c.check_interval(Duration::ZERO).max_attempts(1)
    });
    let secret = s.emulator.secret().to_owned();
    let browser = s.browser();
    let mut pages = Vec::new();
    let mut tokens = Vec::new();
    // A sign-in, checks, a refresh, and every kind of failure along the way.
    let hop = sign_in(&browser, &s.url("/info")).await;
    pages.push(hop.body.clone());
    let session = browser.session(&s.app.base);
    tokens.push(session["wx"]["a"].as_str().unwrap().to_owned());
    s.emulator.expire_access_tokens();
    for fault in [
        None,
        Some(Fault::Busy),
        Some(Fault::Malformed),
        Some(Fault::HttpStatus(500)),
        Some(Fault::ErrCode(40001)),
    ] {
        if let Some(fault) = fault {
            s.emulator
                .inject_fault(Endpoint::RefreshToken, fault, Some(1));
            s.emulator.expire_access_tokens();
        }
        let hop = browser.get(&s.url("/api/me")).await;
        pages.push(hop.body.clone());
        // A refresh refused for good (40001) signs out: no tokens left to collect then.
        let session = browser.session(&s.app.base);
        for field in ["a", "r"] {
            if let Some(token) = session["wx"][field].as_str() {
                tokens.push(token.to_owned());
            }
        }
    }
    // Failed exchanges too.
    for code in [40001, 40013, -1] {
        s.emulator
            .inject_fault(Endpoint::AccessToken, Fault::ErrCode(code), Some(1));
        let hops = Browser::new().navigate(&s.url("/info")).await;
        pages.extend(hops.into_iter().map(|h| h.body));
    }
    tokens.sort();
    tokens.dedup();
    assert!(tokens.len() >= 3, "refreshes happened: {tokens:?}");

    // Everything the server side logged (the crate, actix, awc), not the test's own HTTP client,
    // which logs the test app's deliberately readable cookies.
    let client_side = ["cookie_store", "reqwest", "hyper"];
    let logs: Vec<String> = logs()
        .into_iter()
        .filter(|l| {
            !client_side
                .iter()
                .any(|c| l.split(' ').nth(1).is_some_and(|t| t.starts_with(c)))
        })
        .collect();
    assert!(
        logs.iter().any(|l| l.contains("actix_wechat_auth::")),
        "logs captured"
    );
    let logs = logs.join("\n");
    for needle in tokens.iter().chain([&secret]) {
        let leak = logs.lines().find(|l| l.contains(needle.as_str()));
        assert!(leak.is_none(), "a secret is in the logs: {leak:?}");
        // The test app chooses to show the access token on /api/me; error pages never do.
        for page in pages.iter().filter(|p| !p.contains("\"access_token\"")) {
            assert!(
                !page.contains(needle.as_str()),
                "a secret is on a page: {page}"
            );
        }
    }

    let config = WeChatConfig::builder("wx1234", secret.as_str())
        .public_url("https://h5.example.com")
        .build()
        .unwrap();
    for debug in [
        format!("{config:?}"),
        format!("{:?}", AppSecret::new(secret.as_str())),
        format!("{:?}", AccessToken::new(tokens[0].as_str())),
        format!("{:?}", RefreshToken::new(tokens[1].as_str())),
    ] {
        assert!(debug.contains("[redacted]"), "{debug}");
        assert!(!debug.contains(&secret) && !tokens.iter().any(|t| debug.contains(t.as_str())));
    }
}

#[actix_web::test]
async fn worst_case_session_cookie_fits_the_browser_limit() {
    use actix_wechat_auth::emulator::EmulatedUser;
    let s = Setup::new(Shape::Routes, |c| c);
    // A long emoji nickname, a long avatar URL, a unionid, privileges: the most WeChat sends.
    let mut user = EmulatedUser::new("😀".repeat(64))
        .with_unionid(format!("o{}", "U".repeat(28)))
        .with_headimgurl(format!(
            "https://thirdwx.qlogo.cn/mmopen/vi_32/{}/132",
            "Q".repeat(440)
        ));
    user.privilege = vec!["chinaunicom".to_owned(); 4];
    user.province = "广东".into();
    user.city = "深圳".into();
    user.country = "中国".into();
    let openid = s.emulator.add_user(user);
    let browser = s.browser();
    // Sign in while other sign-ins are pending (other tabs), each with the longest return-to kept.
    let long_query = "q".repeat(240);
    for tab in 0..3 {
        let hop = browser
            .get(&s.url(&format!("/info?{tab}{long_query}")))
            .await;
        let pending = hop.headers["set-cookie"].to_str().unwrap();
        assert!(
            pending.len() < 700,
            "pending sign-in cookie of {} bytes",
            pending.len()
        );
    }
    let location = browser
        .get(&s.url(&format!("/info?{long_query}")))
        .await
        .location
        .unwrap();
    let hop = browser
        .get_with(
            &location.replace("#wechat_redirect", ""),
            &[("x-emulator-user", &openid)],
        )
        .await;
    let hops = browser.navigate(&hop.location.unwrap()).await;
    let me = hops.last().unwrap().json();
    assert_eq!(
        me["nickname"],
        "😀".repeat(32),
        "nickname capped at 128 bytes"
    );
    assert!(me["headimgurl"].as_str().unwrap().len() > 400);
    // Four challenges, three pending sign-ins kept; one was consumed by the sign-in.
    assert_eq!(
        browser.pending_cookies(&s.app.base).len(),
        2,
        "pending sign-ins are bounded"
    );
    let session = browser.session(&s.app.base);

    // The state exactly as actix-session keeps it (each value a JSON string), then sealed the
    // way the default Private cookie store does, with actix's own cookie jar.
    let state: serde_json::Map<String, serde_json::Value> = session
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.to_string())))
        .collect();
    let json = serde_json::to_string(&state).unwrap();
    let mut jar = actix_web::cookie::CookieJar::new();
    jar.private_mut(&actix_web::cookie::Key::generate())
        .add(actix_web::cookie::Cookie::new("id", json.clone()));
    let sealed = jar.get("id").unwrap().encoded().to_string().len();
    let signed = browser.session_cookie_len(&s.app.base);
    println!(
        "worst-case session: {} bytes of JSON, encrypted cookie {sealed} bytes, signed cookie {signed} bytes",
        json.len()
    );
    assert!(sealed < 4096, "encrypted cookie {sealed} bytes");
}

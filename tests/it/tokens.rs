//! Keeping a signed-in session's token usable (rules 1 and 2), and the client's behaviour under
//! upstream faults, over real HTTP against the emulator.

use crate::common;

use std::time::{Duration, Instant};

use crate::common::{logs, sign_in, Browser, Setup, Shape};
use actix_wechat_auth::emulator::{Emulator, Endpoint, Fault};
use reqwest::StatusCode;

fn emulator() -> actix_wechat_auth::emulator::EmulatorBuilder {
    Emulator::builder().auto_approve(true)
}

async fn sleep(d: Duration) {
    actix_web::rt::time::sleep(d).await;
}

#[actix_web::test]
async fn signed_in_requests_make_no_upstream_call_until_a_check_is_due() {
    let s = Setup::new(Shape::Routes, |c| c);
    let browser = s.browser();
    let me = sign_in(&browser, &s.url("/info")).await.json();
    s.emulator.reset_calls();
    for _ in 0..20 {
        let hop = browser.get(&s.url("/api/me")).await;
        assert_eq!(hop.json()["openid"], me["openid"]);
        // Nothing to write: the session cookie is not re-sent.
        assert!(hop.headers.get("set-cookie").is_none());
    }
    assert_eq!(s.emulator.calls().len(), 0);
}

#[actix_web::test]
async fn check_every_request_with_interval_zero_over_reused_connections() {
    let s = Setup::new(Shape::Routes, |c| c.check_interval(Duration::ZERO));
    let browser = s.browser();
    sign_in(&browser, &s.url("/info")).await;
    s.emulator.reset_calls();
    let connections = s.emulator.connections_accepted();
    for _ in 0..30 {
        let hop = browser.get(&s.url("/api/me")).await;
        assert_eq!(hop.status, StatusCode::OK);
        // A check's time changes no decision when every request checks: nothing is rewritten.
        assert!(hop.headers.get("set-cookie").is_none());
    }
    assert_eq!(s.emulator.call_count(Endpoint::Auth), 30);
    // Two app workers, each with its pooled client: connections are reused, not one per call.
    let opened = s.emulator.connections_accepted() - connections;
    assert!(opened <= 4, "{opened} new connections for 30 checks");
}

#[actix_web::test]
async fn invalid_token_on_check_is_refreshed() {
    let s = Setup::new(Shape::Routes, |c| c.check_interval(Duration::ZERO));
    let browser = s.browser();
    let before = sign_in(&browser, &s.url("/info")).await.json();
    s.emulator.expire_access_tokens();
    let after = browser.get(&s.url("/api/me")).await;
    assert_eq!(after.status, StatusCode::OK);
    let after = after.json();
    assert_eq!(after["openid"], before["openid"]);
    assert_ne!(after["access_token"], before["access_token"]);
    assert_eq!(s.emulator.call_count(Endpoint::RefreshToken), 1);
    // The new token is stored: the next request checks it and needs no refresh.
    assert_eq!(
        browser.get(&s.url("/api/me")).await.json()["access_token"],
        after["access_token"]
    );
    assert_eq!(s.emulator.call_count(Endpoint::RefreshToken), 1);
}

#[actix_web::test]
async fn errcodes_40001_and_40003_on_check_also_refresh() {
    let s = Setup::new(Shape::Routes, |c| c.check_interval(Duration::ZERO));
    let browser = s.browser();
    sign_in(&browser, &s.url("/base")).await;
    for code in [40001, 40003, 40014, 42001] {
        s.emulator
            .inject_fault(Endpoint::Auth, Fault::ErrCode(code), Some(1));
        let refreshes = s.emulator.call_count(Endpoint::RefreshToken);
        assert_eq!(browser.get(&s.url("/base")).await.status, StatusCode::OK);
        assert_eq!(
            s.emulator.call_count(Endpoint::RefreshToken),
            refreshes + 1,
            "errcode {code}"
        );
    }
}

#[actix_web::test]
async fn tokens_near_expiry_are_refreshed_early_and_expired_ones_must_be() {
    let s = Setup::with_emulator(
        emulator()
            .access_token_ttl(Duration::from_secs(5))
            .start()
            .unwrap(),
        Shape::Routes,
        |c| c.refresh_margin(Duration::from_secs(2)),
    );
    // Times are whole seconds: 5-second tokens and waits of 3.1 s keep each step inside its
    // window (fresh, within the margin, expired) wherever in a second the sign-in falls and
    // however slow the machine.
    let browser = s.browser();
    let first = sign_in(&browser, &s.url("/base")).await.json();
    sleep(Duration::from_millis(3100)).await;
    // Within the margin, not expired: refreshed, with no /sns/auth call.
    let second = browser.get(&s.url("/base")).await.json();
    assert_ne!(second["access_token"], first["access_token"]);
    assert_eq!(s.emulator.call_count(Endpoint::RefreshToken), 1);
    assert_eq!(s.emulator.call_count(Endpoint::Auth), 0);

    // Within the margin and WeChat busy: the current token still works, so serve.
    sleep(Duration::from_millis(3100)).await;
    s.emulator
        .inject_fault(Endpoint::RefreshToken, Fault::Busy, None);
    let hop = browser.get(&s.url("/base")).await;
    assert_eq!(hop.status, StatusCode::OK);
    assert_eq!(hop.json()["access_token"], second["access_token"]);

    // Expired and WeChat busy: a clear 503, JSON for the API and HTML for pages; session kept.
    sleep(Duration::from_millis(2100)).await;
    let api = browser.get(&s.url("/api/me")).await;
    assert_eq!(api.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(api.json()["error"], "wechat_error");
    assert_eq!(api.json()["errcode"], -1);
    let page = browser.get(&s.url("/base")).await;
    assert_eq!(page.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(page.body.contains("微信繁忙"), "{}", page.body);
    assert!(browser.session(&s.app.base).get("wx").is_some());

    // WeChat back: the same session goes on without signing in again.
    s.emulator.clear_faults();
    let back = browser.get(&s.url("/base")).await;
    assert_eq!(back.status, StatusCode::OK);
    assert_eq!(back.json()["openid"], first["openid"]);
}

#[actix_web::test]
async fn expired_refresh_token_signs_out_pages_reauthorize_apis_get_401() {
    let s = Setup::new(Shape::Routes, |c| c.check_interval(Duration::ZERO));
    let page_browser = s.browser();
    let api_browser = s.browser();
    sign_in(&page_browser, &s.url("/info")).await;
    sign_in(&api_browser, &s.url("/info")).await;
    s.emulator.expire_access_tokens();
    s.emulator.expire_refresh_tokens();

    let page = page_browser.get(&s.url("/info")).await;
    assert_eq!(page.status, StatusCode::FOUND);
    assert!(page
        .location
        .unwrap()
        .contains("/connect/oauth2/authorize?"));
    assert!(
        page_browser.session(&s.app.base).get("wx").is_none(),
        "sign-in cleared"
    );

    let api = api_browser.get(&s.url("/api/me")).await;
    assert_eq!(api.status, StatusCode::UNAUTHORIZED);
    assert_eq!(api.json()["error"], "sign_in_required");
    assert!(logs()
        .iter()
        .any(|l| l.contains("refresh token of") && l.contains("42002")));

    // And signing in again works.
    sign_in(&page_browser, &s.url("/info")).await;
}

#[actix_web::test]
async fn a_flaky_upstream_during_a_check_keeps_the_session() {
    let s = Setup::with_emulator(emulator().start().unwrap(), Shape::Routes, |c| {
        c.check_interval(Duration::ZERO)
            .request_timeout(Duration::from_millis(300))
            .max_attempts(1)
    });
    let browser = s.browser();
    let me = sign_in(&browser, &s.url("/info")).await.json();
    for fault in [
        Fault::Busy,
        Fault::HttpStatus(500),
        Fault::Malformed,
        Fault::ErrCode(45009),
        Fault::Delay(Duration::from_millis(800)),
        Fault::StallBody,
    ] {
        s.emulator
            .inject_fault(Endpoint::Auth, fault.clone(), Some(1));
        let started = Instant::now();
        let hop = browser.get(&s.url("/api/me")).await;
        assert_eq!(hop.status, StatusCode::OK, "{fault:?}: {}", hop.body);
        assert_eq!(hop.json()["openid"], me["openid"]);
        // Bounded by the deadline (300 ms), with a wide margin for a loaded machine.
        assert!(started.elapsed() < Duration::from_secs(5), "{fault:?} hung");
    }
    assert!(logs()
        .iter()
        .any(|l| l.starts_with("WARN") && l.contains("token check for")));
    assert_eq!(s.emulator.call_count(Endpoint::RefreshToken), 0);
}

#[actix_web::test]
async fn concurrent_requests_needing_a_refresh_make_one_upstream_call() {
    let s = Setup::new(Shape::Routes, |c| c.check_interval(Duration::ZERO));
    let browser = s.browser();
    sign_in(&browser, &s.url("/info")).await;
    s.emulator.expire_access_tokens();
    // Slow the refresh down so that every request arrives while it is in flight.
    s.emulator.inject_fault(
        Endpoint::RefreshToken,
        Fault::Delay(Duration::from_millis(300)),
        Some(1),
    );
    let results = futures_util::future::join_all(
        (0..60).map(|_| async { browser.get(&s.url("/api/me")).await }),
    )
    .await;
    let tokens: std::collections::HashSet<String> = results
        .iter()
        .map(|hop| {
            assert_eq!(hop.status, StatusCode::OK, "{}", hop.body);
            hop.json()["access_token"].as_str().unwrap().to_owned()
        })
        .collect();
    // One refresh across both workers, and every request got its result.
    assert_eq!(s.emulator.call_count(Endpoint::RefreshToken), 1);
    assert_eq!(tokens.len(), 1);
}

#[actix_web::test]
async fn busy_is_retried_with_backoff_then_answered_503() {
    let s = Setup::with_emulator(
        emulator()
            .access_token_ttl(Duration::from_secs(1))
            .start()
            .unwrap(),
        Shape::Routes,
        |c| c.refresh_margin(Duration::ZERO).max_attempts(3),
    );
    let browser = s.browser();
    sign_in(&browser, &s.url("/base")).await;
    sleep(Duration::from_millis(1100)).await;
    // Busy once: the retry succeeds, the user sees nothing.
    s.emulator
        .inject_fault(Endpoint::RefreshToken, Fault::Busy, Some(1));
    assert_eq!(browser.get(&s.url("/base")).await.status, StatusCode::OK);
    assert_eq!(s.emulator.call_count(Endpoint::RefreshToken), 2);

    // Busy every time: three attempts, then 503.
    sleep(Duration::from_millis(1100)).await;
    s.emulator.reset_calls();
    s.emulator
        .inject_fault(Endpoint::RefreshToken, Fault::Busy, None);
    assert_eq!(
        browser.get(&s.url("/base")).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(s.emulator.call_count(Endpoint::RefreshToken), 3);
}

#[actix_web::test]
async fn upstream_faults_on_a_required_refresh_have_their_own_status() {
    let s = Setup::with_emulator(
        emulator()
            .access_token_ttl(Duration::from_secs(1))
            .start()
            .unwrap(),
        Shape::Routes,
        |c| {
            c.refresh_margin(Duration::ZERO)
                .request_timeout(Duration::from_millis(300))
                .max_attempts(2)
        },
    );
    let browser = s.browser();
    sign_in(&browser, &s.url("/base")).await;
    sleep(Duration::from_millis(1100)).await;
    for (fault, status, error) in [
        (
            Fault::Delay(Duration::from_millis(900)),
            504,
            "upstream_timeout",
        ),
        (Fault::StallBody, 504, "upstream_timeout"),
        (Fault::Malformed, 502, "upstream_invalid"),
        (Fault::HttpStatus(500), 502, "upstream_invalid"),
        (Fault::HttpStatus(302), 502, "upstream_invalid"),
    ] {
        s.emulator
            .inject_fault(Endpoint::RefreshToken, fault.clone(), None);
        let started = Instant::now();
        let hop = browser
            .get_with(&s.url("/base"), &[("accept", "application/json")])
            .await;
        assert_eq!(hop.status.as_u16(), status, "{fault:?}: {}", hop.body);
        assert_eq!(hop.json()["error"], error, "{fault:?}");
        assert!(started.elapsed() < Duration::from_secs(5), "{fault:?} hung");
        s.emulator.clear_faults();
    }
    // The session survived every fault.
    assert_eq!(browser.get(&s.url("/base")).await.status, StatusCode::OK);

    // WeChat refusing the refresh token for good (not busy): signed out, not stuck on errors.
    sleep(Duration::from_millis(1100)).await;
    s.emulator
        .inject_fault(Endpoint::RefreshToken, Fault::ErrCode(40001), Some(1));
    let hop = browser
        .get_with(&s.url("/base"), &[("accept", "application/json")])
        .await;
    assert_eq!(hop.status, StatusCode::UNAUTHORIZED, "{}", hop.body);
    assert!(browser.session(&s.app.base).get("wx").is_none());
}

#[actix_web::test]
async fn wechat_unreachable_is_503_and_oversized_answers_502() {
    // An API base where nothing listens.
    let (listener, dead) = common::free_base();
    drop(listener);
    let s = Setup::new(Shape::Routes, move |c| c.api_base(dead));
    let browser = s.browser();
    let hops = browser.navigate(&s.url("/base")).await;
    assert_eq!(hops.last().unwrap().status, StatusCode::SERVICE_UNAVAILABLE);

    let s = Setup::new(Shape::Routes, |c| c.max_response_bytes(64));
    let hops = Browser::new().navigate(&s.url("/base")).await;
    let last = hops.last().unwrap();
    assert_eq!(last.status, StatusCode::BAD_GATEWAY, "{}", last.body);
    assert!(logs()
        .iter()
        .any(|l| l.contains("body over the size limit")));
}

#[actix_web::test]
async fn https_api_base_builds_a_rustls_client_without_panicking() {
    // The default api_base is https: every worker builds its TLS client at start.
    let s = Setup::new(Shape::Routes, |c| c.api_base("https://api.weixin.qq.com"));
    assert_eq!(
        Browser::new().get(&s.url("/healthz")).await.status,
        StatusCode::OK
    );
}

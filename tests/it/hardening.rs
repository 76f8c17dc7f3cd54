//! The findings of the security review (SECURITY.md's threat table names each test), over real
//! HTTP against the emulator: OPTIONS, bounded upstream calls, parallel challenges, rival grants,
//! WeChat's loose numbers, hostile identities, HTTP/2, and the sign-in's age.

use crate::common;

use std::{
    net::TcpListener,
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use crate::common::{
    cookie_header, free_base, logs, query_pairs, sign_in, spawn_server, Server, Setup, Shape,
};
use actix_cors::Cors;
use actix_web::{cookie::Key, web, App, HttpRequest, HttpResponse, HttpServer};
use actix_wechat_auth::{
    emulator::{EmulatedUser, Emulator, Endpoint, Fault},
    WeChatAuth, WeChatUser,
};
use futures_util::StreamExt as _;
use reqwest::StatusCode;

/// `n` requests of `path` carrying exactly `cookie` (a replayed cookie: answers' `Set-Cookie`s
/// are ignored), 32 at a time; their statuses.
async fn replay(base: &str, path: &str, cookie: &str, n: usize) -> Vec<u16> {
    let client = reqwest::Client::builder()
        .user_agent(common::WECHAT_UA)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    futures_util::stream::iter(0..n)
        .map(|_| {
            let req = client
                .get(format!("{base}{path}"))
                .header("cookie", cookie)
                .header("accept", "application/json");
            async move { req.send().await.unwrap().status().as_u16() }
        })
        .buffer_unordered(32)
        .collect()
        .await
}

fn count(statuses: &[u16], status: u16) -> usize {
    statuses.iter().filter(|s| **s == status).count()
}

// ---------------------------------------------------------------------------------------------
// 1. OPTIONS

/// An app whose routes answer any method, with actix-cors wrapped outside WeChatAuth.
fn cors_app(emulator: &Emulator) -> Server {
    let (listener, base) = free_base();
    let config = common::config(emulator, &base).build().unwrap();
    spawn_server(base, move || async move {
        let wechat = WeChatAuth::new(config);
        let key = Key::generate();
        Ok(HttpServer::new(move || {
            App::new()
                // Any method: a GraphQL or proxy handler.
                .service(web::resource("/graphql").to(|user: WeChatUser| async move {
                    HttpResponse::Ok().body(format!("secret data of {}", user.openid()))
                }))
                .wrap(wechat.clone())
                .wrap(
                    actix_session::SessionMiddleware::builder(
                        actix_session::storage::CookieSessionStore::default(),
                        key.clone(),
                    )
                    .cookie_secure(false)
                    .build(),
                )
                // Outside: preflights are answered here and never reach WeChatAuth.
                .wrap(
                    Cors::default()
                        .allowed_origin("https://spa.example")
                        .allowed_methods(["GET", "POST"])
                        .supports_credentials(),
                )
        })
        .workers(1)
        .disable_signals()
        .listen(listener)?
        .run())
    })
}

#[actix_web::test]
async fn options_is_gated_and_cors_preflights_are_answered_outside() {
    let emulator = Emulator::builder().auto_approve(true).start().unwrap();
    let app = cors_app(&emulator);
    let client = reqwest::Client::builder()
        .user_agent(common::WECHAT_UA)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    // A bare OPTIONS (what `curl -X OPTIONS` sends) is challenged like a GET.
    let bare = client
        .request(reqwest::Method::OPTIONS, format!("{}/graphql", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(bare.status(), StatusCode::FOUND);
    assert!(!bare.text().await.unwrap().contains("secret data"));
    // A preflight carries Origin and Access-Control-Request-Method: actix-cors answers it.
    let preflight = client
        .request(reqwest::Method::OPTIONS, format!("{}/graphql", app.base))
        .header("origin", "https://spa.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), StatusCode::OK);
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        "https://spa.example"
    );
    assert!(preflight.headers().get("location").is_none());
    // From another origin the preflight is refused by actix-cors, still without our data.
    let foreign = client
        .request(reqwest::Method::OPTIONS, format!("{}/graphql", app.base))
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(!foreign.status().is_success());
    assert_eq!(emulator.calls().len(), 0);
}

// ---------------------------------------------------------------------------------------------
// 2. Bounded upstream calls

#[actix_web::test]
async fn ten_thousand_replays_of_a_stale_cookie_cost_one_check_per_interval() {
    let interval = Duration::from_secs(2);
    let s = Setup::new(Shape::Routes, |c| c.check_interval(interval));
    let browser = s.browser();
    sign_in(&browser, &s.url("/info")).await;
    let cookie = cookie_header(&browser, &s.app.base);
    actix_web::rt::time::sleep(interval + Duration::from_millis(100)).await;
    s.emulator.reset_calls();
    let started = Instant::now();
    let statuses = replay(&s.app.base, "/api/me", &cookie, 10_000).await;
    let elapsed = started.elapsed();
    let checks = s.emulator.call_count(Endpoint::Auth);
    let allowed = elapsed.as_secs_f64() / interval.as_secs_f64();
    println!(
        "10,000 replays of a stale cookie in {elapsed:?}: {checks} /sns/auth call(s) \
         (interval {interval:?})"
    );
    assert_eq!(count(&statuses, 200), 10_000);
    assert!(
        (checks as f64) <= allowed.ceil() + 1.0,
        "{checks} checks in {elapsed:?}"
    );
    assert_eq!(s.emulator.call_count(Endpoint::RefreshToken), 0);
}

#[actix_web::test]
async fn ten_thousand_replays_of_a_dead_cookie_make_one_refresh_in_all() {
    let s = Setup::new(Shape::Routes, |c| c.check_interval(Duration::from_secs(1)));
    let browser = s.browser();
    sign_in(&browser, &s.url("/info")).await;
    let cookie = cookie_header(&browser, &s.app.base);
    s.emulator.expire_access_tokens();
    s.emulator.expire_refresh_tokens();
    actix_web::rt::time::sleep(Duration::from_millis(1100)).await;
    let started = Instant::now();
    let statuses = replay(&s.app.base, "/api/me", &cookie, 10_000).await;
    let refreshes = s.emulator.call_count(Endpoint::RefreshToken);
    let checks = s.emulator.call_count(Endpoint::Auth);
    println!(
        "10,000 replays of a dead cookie in {:?}: {refreshes} refresh call(s), {checks} check(s)",
        started.elapsed()
    );
    assert_eq!(count(&statuses, 401), 10_000, "answered as signed out");
    assert!(refreshes <= 1, "{refreshes} refreshes");
    assert!(checks <= 1, "{checks} checks");
}

#[actix_web::test]
async fn a_page_fanning_out_ten_requests_makes_one_check() {
    // A check's success is remembered for the interval: long enough for the ten requests to be
    // answered within it even on a loaded machine.
    let s = Setup::new(Shape::Routes, |c| c.check_interval(Duration::from_secs(3)));
    let browser = s.browser();
    sign_in(&browser, &s.url("/info")).await;
    actix_web::rt::time::sleep(Duration::from_millis(3100)).await;
    s.emulator.inject_fault(
        Endpoint::Auth,
        Fault::Delay(Duration::from_millis(200)),
        Some(1),
    );
    let urls: Vec<String> = (0..10).map(|_| s.url("/api/me")).collect();
    let hops = futures_util::future::join_all(urls.iter().map(|u| browser.get(u))).await;
    assert!(hops.iter().all(|h| h.status == StatusCode::OK));
    assert_eq!(s.emulator.call_count(Endpoint::Auth), 1);
}

/// Waits until the current minute has at least `need` seconds left, so that a test of the
/// per-minute budget does not straddle two minutes.
async fn with_time_left_in_the_minute(need: u64) {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let left = 60 - now.as_secs() % 60;
    if left < need {
        actix_web::rt::time::sleep(Duration::from_secs(left) + Duration::from_millis(200)).await;
    }
}

#[actix_web::test]
async fn over_the_per_openid_budget_checks_wait_and_required_refreshes_get_503() {
    with_time_left_in_the_minute(15).await;
    let emulator = Emulator::builder()
        .auto_approve(true)
        .access_token_ttl(Duration::from_secs(4))
        .start()
        .unwrap();
    let s = Setup::with_emulator(emulator, Shape::Routes, |c| {
        c.check_interval(Duration::from_secs(1))
            .refresh_margin(Duration::ZERO)
            .upstream_calls_per_minute(1)
    });
    let browser = s.browser();
    sign_in(&browser, &s.url("/info")).await;
    let calls = |s: &Setup| {
        s.emulator.call_count(Endpoint::Auth) + s.emulator.call_count(Endpoint::RefreshToken)
    };
    // The one call of the minute: a check.
    actix_web::rt::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(browser.get(&s.url("/api/me")).await.status, StatusCode::OK);
    assert_eq!(calls(&s), 1);
    // A due check past the budget is put off: served, no call.
    actix_web::rt::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(browser.get(&s.url("/api/me")).await.status, StatusCode::OK);
    assert_eq!(calls(&s), 1);
    // An expired token past the budget: 503 with Retry-After, no call.
    actix_web::rt::time::sleep(Duration::from_secs(2)).await;
    let hop = browser
        .get_with(&s.url("/api/me"), &[("accept", "application/json")])
        .await;
    assert_eq!(hop.status, StatusCode::SERVICE_UNAVAILABLE, "{}", hop.body);
    assert_eq!(hop.json()["error"], "upstream_throttled");
    let retry_after: u64 = hop.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_eq!(
        browser.get(&s.url("/api/me")).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(calls(&s), 1);
    let warnings = logs()
        .iter()
        .filter(|l| l.contains("upstream calls this minute"))
        .count();
    assert_eq!(warnings, 1, "one warning a minute, not one per request");
}

#[actix_web::test]
async fn with_a_check_on_every_request_the_budget_never_skips_a_check() {
    with_time_left_in_the_minute(10).await;
    let s = Setup::new(Shape::Routes, |c| {
        c.check_interval(Duration::ZERO)
            .upstream_calls_per_minute(1)
    });
    let browser = s.browser();
    sign_in(&browser, &s.url("/info")).await;
    s.emulator.reset_calls();
    for _ in 0..5 {
        assert_eq!(browser.get(&s.url("/api/me")).await.status, StatusCode::OK);
    }
    assert_eq!(s.emulator.call_count(Endpoint::Auth), 5);
}

// ---------------------------------------------------------------------------------------------
// 4. Parallel challenges

#[actix_web::test]
async fn parallel_challenges_keep_every_state_and_repeated_ones_share_one() {
    let s = Setup::new(Shape::Routes, |c| c);
    let browser = s.browser();
    // An SPA firing 3 API calls at once: each 401 carries an authorize URL that still works.
    let urls: Vec<String> = (0..3)
        .map(|i| s.url(&format!("/api/me?call={i}")))
        .collect();
    let hops = futures_util::future::join_all(urls.iter().map(|u| browser.get(u))).await;
    let authorize: Vec<String> = hops
        .iter()
        .map(|h| {
            assert_eq!(h.status, StatusCode::UNAUTHORIZED);
            h.json()["authorize_url"].as_str().unwrap().to_owned()
        })
        .collect();
    for url in &authorize {
        // Each one, followed in turn, reaches a signed-in page (none lost its state).
        let hops = browser.navigate(url).await;
        let callback = hops
            .iter()
            .find(|h| h.url.contains("/wechat/callback"))
            .unwrap();
        assert_eq!(callback.status, StatusCode::SEE_OTHER, "{}", callback.body);
    }
    // Sequential API calls of a signed-out page: one pending sign-in, reused.
    let fresh = s.browser();
    let mut states = std::collections::HashSet::new();
    for _ in 0..4 {
        let hop = fresh.get(&s.url("/api/me")).await;
        let url = hop.json()["authorize_url"].as_str().unwrap().to_owned();
        states.insert(query_pairs(&url)[4].1.clone());
    }
    assert_eq!(states.len(), 1);
    assert_eq!(fresh.pending_cookies(&s.app.base).len(), 1);
}

// ---------------------------------------------------------------------------------------------
// 5. Rival grants

#[actix_web::test]
async fn a_weaker_grant_finishing_later_keeps_the_stronger_one() {
    let s = Setup::new(Shape::Routes, |c| c);
    let browser = s.browser();
    // Tabs A and C start snsapi_base sign-ins and leave them at WeChat.
    let tab_a = browser.get(&s.url("/base")).await.location.unwrap();
    let tab_c = browser.get(&s.url("/base?c")).await.location.unwrap();
    // Tab B signs in with snsapi_userinfo.
    let me = sign_in(&browser, &s.url("/info")).await.json();
    assert!(me["nickname"].is_string());
    // Tab A comes back: same person, weaker grant.
    let hops = browser.navigate(&tab_a).await;
    assert_eq!(hops.last().unwrap().status, StatusCode::OK);
    let after = browser.get(&s.url("/info")).await;
    assert_eq!(after.status, StatusCode::OK, "no consent page again");
    assert_eq!(after.json()["scope"], "snsapi_userinfo");
    assert_eq!(after.json()["nickname"], me["nickname"]);
    // Tab C comes back as another person: that grant replaces it.
    let other = s.emulator.add_user(EmulatedUser::new("另一个人"));
    let authorize = tab_c.replace("#wechat_redirect", "");
    let at_wechat = browser
        .get_with(&authorize, &[("x-emulator-user", other.as_str())])
        .await;
    browser.navigate(&at_wechat.location.unwrap()).await;
    let now = browser.get(&s.url("/base")).await.json();
    assert_eq!(now["openid"], other.as_str());
    assert_eq!(now["scope"], "snsapi_base");
}

// ---------------------------------------------------------------------------------------------
// 6, 7. What WeChat sends

#[actix_web::test]
async fn numbers_as_strings_and_a_byte_order_mark_sign_in() {
    let s = Setup::new(Shape::Routes, |c| c);
    for endpoint in [Endpoint::AccessToken, Endpoint::UserInfo] {
        s.emulator
            .inject_fault(endpoint, Fault::LooseNumbers, Some(1));
    }
    let browser = s.browser();
    let me = sign_in(&browser, &s.url("/info")).await.json();
    assert_eq!(me["scope"], "snsapi_userinfo");
    assert!(me["nickname"].as_str().is_some_and(|n| !n.is_empty()));
    // An error code as a string is still an error code: a stale code restarts the sign-in.
    s.emulator.inject_fault(
        Endpoint::AccessToken,
        Fault::Body("\u{feff}{\"errcode\":\"40163\",\"errmsg\":\"code been used\"}".into()),
        Some(1),
    );
    let fresh = s.browser();
    let hops = fresh.navigate(&s.url("/base")).await;
    let statuses: Vec<u16> = hops.iter().map(|h| h.status.as_u16()).collect();
    assert_eq!(statuses, [302, 302, 302, 302, 303, 200], "restarted once");
}

fn token_body(openid: &str, extra: &str) -> String {
    format!(
        r#"{{"access_token":"ACCESSTOKEN","expires_in":7200,"refresh_token":"REFRESHTOKEN","openid":"{openid}","scope":"snsapi_base"{extra}}}"#
    )
}

/// Signs in through `/base` with the code exchange answered by `body`: the callback's answer.
async fn callback_answered_with(s: &Setup, body: String) -> common::Hop {
    s.emulator
        .inject_fault(Endpoint::AccessToken, Fault::Body(body), Some(1));
    let browser = s.browser();
    let mut hops = browser.navigate(&s.url("/base")).await;
    let last = hops.pop().unwrap();
    assert!(last.url.contains("/wechat/callback"), "{}", last.url);
    assert!(
        browser.session(&s.app.base).get("wx").is_none(),
        "not signed in"
    );
    last
}

#[actix_web::test]
async fn snapshot_flags_other_than_0_or_1_fail_closed() {
    let s = Setup::new(Shape::Routes, |c| c);
    for flag in [r#""1.0""#, "0.5", "true", "null", r#""yes""#] {
        let extra = format!(r#","is_snapshotuser":{flag}"#);
        let hop = callback_answered_with(&s, token_body("oSnap", &extra)).await;
        assert_eq!(hop.status, StatusCode::FORBIDDEN, "{flag}");
        assert!(hop.body.contains("snapshot_user"), "{flag}: {}", hop.body);
    }
    // "0" as a string is a real user (and `expires_in` may be a string too).
    let body = token_body("oReal", r#","is_snapshotuser":"0""#).replace("7200", "\"7200\"");
    s.emulator
        .inject_fault(Endpoint::AccessToken, Fault::Body(body), Some(1));
    let browser = s.browser();
    let hops = browser.navigate(&s.url("/base")).await;
    assert_eq!(hops.last().unwrap().json()["openid"], "oReal");
}

#[actix_web::test]
async fn empty_or_oversized_openids_are_a_502_never_a_sign_in() {
    let s = Setup::new(Shape::Routes, |c| c);
    let huge = "o".repeat(10 * 1024);
    for openid in ["", huge.as_str(), "o/../1", "o 1"] {
        let hop = callback_answered_with(&s, token_body(openid, "")).await;
        assert_eq!(
            hop.status,
            StatusCode::BAD_GATEWAY,
            "{}",
            &openid[..openid.len().min(9)]
        );
        assert!(hop.body.contains("upstream_invalid"));
        assert!(!hop.body.contains(&huge[..64]));
    }
    let unionid = format!(r#","unionid":"{}""#, "u".repeat(65));
    let hop = callback_answered_with(&s, token_body("oFine", &unionid)).await;
    assert_eq!(hop.status, StatusCode::BAD_GATEWAY);
    let token = format!(r#","access_token":"{}""#, "A".repeat(600));
    let hop = callback_answered_with(&s, token_body("oFine", &token)).await;
    assert_eq!(hop.status, StatusCode::BAD_GATEWAY);
    let logged = logs();
    assert!(
        logged
            .iter()
            .any(|l| l.contains("access_token failed") && l.contains("openid is not")),
        "a log line names the field"
    );
    assert!(!logged.iter().any(|l| l.contains(&huge[..64])));
}

// ---------------------------------------------------------------------------------------------
// 8. No HTTP/2 to WeChat

/// A stand-in for api.weixin.qq.com over TLS that offers h2 and http/1.1 (ALPN) and records the
/// HTTP version of every request.
fn tls_api(versions: Arc<Mutex<Vec<String>>>) -> (Server, Vec<u8>) {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert_der = certified.cert.der().to_vec();
    let key_der = certified.signing_key.serialize_der();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!(
        "https://localhost:{}",
        listener.local_addr().unwrap().port()
    );
    let mut tls = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![cert_der.clone().into()],
        rustls::pki_types::PrivateKeyDer::Pkcs8(key_der.into()),
    )
    .unwrap();
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let server = spawn_server(base, move || async move {
        Ok(HttpServer::new(move || {
            let versions = versions.clone();
            App::new().default_service(web::to(move |req: HttpRequest| {
                let versions = versions.clone();
                async move {
                    versions
                        .lock()
                        .unwrap()
                        .push(format!("{:?}", req.version()));
                    HttpResponse::Ok()
                        .content_type("text/plain")
                        .body(token_body("oOverTls", ""))
                }
            }))
        })
        .workers(1)
        .disable_signals()
        .listen_rustls_0_23(listener, tls)?
        .run())
    });
    (server, cert_der)
}

#[actix_web::test]
async fn upstream_calls_use_http_1_1_even_when_h2_is_offered_and_log_no_secret() {
    let versions = Arc::new(Mutex::new(Vec::new()));
    let (api, cert) = tls_api(versions.clone());
    let api_base = api.base.clone();
    let s = Setup::new(Shape::Routes, |c| {
        c.api_base(api_base).trust_root_certificate(cert)
    });
    let browser = s.browser();
    let hops = browser.navigate(&s.url("/base")).await;
    let code = hops
        .iter()
        .find(|h| h.url.contains("/wechat/callback"))
        .map(|h| query_pairs(&h.url)[0].1.clone())
        .unwrap();
    assert_eq!(hops.last().unwrap().json()["openid"], "oOverTls");
    assert_eq!(*versions.lock().unwrap(), ["HTTP/1.1"]);
    // Everything the server side logged at trace level (the crate, awc, actix-http, h2, rustls;
    // not the test's own client): no secret, no code, no token.
    let client_side = ["cookie_store", "reqwest", "hyper_util"];
    for line in logs().into_iter().filter(|l| {
        !client_side
            .iter()
            .any(|c| l.split(' ').nth(1).is_some_and(|t| t.starts_with(c)))
    }) {
        for secret in [
            s.emulator.secret(),
            code.as_str(),
            "ACCESSTOKEN",
            "REFRESHTOKEN",
            "secret=",
        ] {
            assert!(!line.contains(secret), "{line}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 10. The sign-in's age

#[actix_web::test]
async fn max_sign_in_age_ends_a_copied_cookie() {
    let s = Setup::new(Shape::Routes, |c| c.max_sign_in_age(Duration::from_secs(2)));
    let browser = s.browser();
    sign_in(&browser, &s.url("/info")).await;
    let copied = cookie_header(&browser, &s.app.base);
    assert_eq!(
        count(&replay(&s.app.base, "/api/me", &copied, 3).await, 200),
        3
    );
    actix_web::rt::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(
        count(&replay(&s.app.base, "/api/me", &copied, 3).await, 401),
        3
    );
    assert_eq!(browser.get(&s.url("/info")).await.status, StatusCode::FOUND);
    assert_eq!(s.emulator.call_count(Endpoint::RefreshToken), 0);
}

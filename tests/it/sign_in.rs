//! Signing in: the challenge (rule 3), the callback (rule 4), redirect_uri (rule 5) and scopes per
//! instance (rule 6), over real HTTP against the emulator.

use crate::common;

use std::time::Duration;

use crate::common::{query_pairs, sign_in, Browser, Setup, Shape};
use actix_wechat_auth::emulator::{EmulatedUser, Emulator, Endpoint, Fault};
use reqwest::StatusCode;

fn authorize_params(location: &str) -> Vec<(String, String)> {
    query_pairs(location)
}

#[actix_web::test]
async fn anonymous_page_is_sent_to_the_authorize_page_with_exact_parameters() {
    let s = Setup::new(Shape::Routes, |c| c);
    let browser = s.browser();
    let hop = browser.get(&s.url("/info?item=42&x=%2F")).await;
    assert_eq!(hop.status, StatusCode::FOUND);
    let location = hop.location.unwrap();
    let prefix = format!("{}/connect/oauth2/authorize?", s.emulator.open_base());
    assert!(location.starts_with(&prefix), "{location}");
    assert!(
        location.ends_with("&connect_redirect=1#wechat_redirect"),
        "{location}"
    );
    let params = authorize_params(&location);
    let names: Vec<&str> = params.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "appid",
            "redirect_uri",
            "response_type",
            "scope",
            "state",
            "connect_redirect"
        ]
    );
    assert_eq!(params[0].1, s.emulator.appid());
    assert_eq!(params[1].1, s.url("/wechat/callback"));
    // redirect_uri is percent-encoded completely, not form-encoded.
    let encoded = location
        .split("redirect_uri=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    assert!(
        encoded.starts_with("http%3A%2F%2F127.0.0.1%3A"),
        "{encoded}"
    );
    assert_eq!(params[2].1, "code");
    assert_eq!(params[3].1, "snsapi_userinfo");
    let state = &params[4].1;
    assert!(
        state.len() >= 22 && state.bytes().all(|b| b.is_ascii_alphanumeric()),
        "{state}"
    );
    assert_eq!(hop.headers.get("cache-control").unwrap(), "no-store");

    // The state is kept in an encrypted cookie of its own, named after it, not in the session:
    // an anonymous request creates no session.
    let set_cookie: Vec<&str> = hop
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(set_cookie.len(), 1, "{set_cookie:?}");
    let cookie = set_cookie[0];
    assert!(
        cookie.starts_with(&format!("wxs_{}=", &state[..12])),
        "{cookie}"
    );
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=600"] {
        assert!(cookie.contains(attribute), "{attribute}: {cookie}");
    }
    assert!(
        !cookie.contains(state.as_str()) && !cookie.contains("info"),
        "{cookie}"
    );
    assert_eq!(browser.session(&s.app.base), serde_json::Value::Null);

    // Another page gets a state of its own; the same page again reuses its pending sign-in.
    let again = browser.get(&s.url("/info")).await.location.unwrap();
    assert_ne!(&authorize_params(&again)[4].1, state);
    let same = browser.get(&s.url("/info")).await.location.unwrap();
    assert_eq!(same, again);
    assert_eq!(browser.pending_cookies(&s.app.base).len(), 2);
}

#[actix_web::test]
async fn full_sign_in_lands_on_the_page_asked_for_with_a_renewed_session() {
    let s = Setup::new(Shape::Routes, |c| c);
    let browser = s.browser();
    let hops = browser.navigate(&s.url("/info?item=42")).await;
    let statuses: Vec<u16> = hops.iter().map(|h| h.status.as_u16()).collect();
    // app 302 → emulator 302 (auto-approved) → callback 303 → the page.
    assert_eq!(
        statuses,
        [302, 302, 303, 200],
        "{:?}",
        hops.iter().map(|h| &h.url).collect::<Vec<_>>()
    );
    let callback = &hops[2];
    assert!(
        callback.url.starts_with(&s.url("/wechat/callback?code=")),
        "{}",
        callback.url
    );
    assert_eq!(callback.location.as_deref(), Some("/info?item=42#"));
    assert_eq!(
        callback.headers.get("referrer-policy").unwrap(),
        "no-referrer"
    );
    let me = hops[3].json();
    let openid = me["openid"].as_str().unwrap();
    let user = s.emulator.user(openid).expect("an emulator user");
    assert_eq!(me["nickname"], user.nickname.as_str());
    assert_eq!(me["scope"], "snsapi_userinfo");
    assert_eq!(s.emulator.call_count(Endpoint::AccessToken), 1);
    assert_eq!(s.emulator.call_count(Endpoint::UserInfo), 1);

    // What the session keeps, and that the used state is recorded as used.
    let session = browser.session(&s.app.base);
    let wx = &session["wx"];
    assert_eq!(wx["o"], openid);
    assert_eq!(wx["s"], "snsapi_userinfo");
    assert!(wx["a"].as_str().unwrap().len() > 20 && wx["r"].as_str().unwrap().len() > 20);
    assert!(wx["e"].as_u64().unwrap() > wx["c"].as_u64().unwrap());
    assert_eq!(wx["p"]["nickname"], user.nickname.as_str());
    assert!(session.get("wxp").is_none());
    // The pending sign-in is consumed; a marker only the callback sees remembers it as used.
    assert!(browser.pending_cookies(&s.app.base).is_empty());
    let at_callback = browser.cookie_names(&s.url("/wechat/callback"));
    assert!(
        at_callback.iter().any(|n| n.starts_with("wxu_")),
        "{at_callback:?}"
    );
}

#[actix_web::test]
async fn api_requests_get_401_json_never_a_redirect() {
    let s = Setup::new(Shape::Routes, |c| c);
    let browser = s.browser();
    for (path, headers) in [
        ("/api/me", vec![]),
        ("/info", vec![("accept", "application/json")]),
        (
            "/info",
            vec![("accept", "application/json;q=0.9, text/html;q=0.1")],
        ),
        ("/info", vec![("x-requested-with", "XMLHttpRequest")]),
        // fetch() sends Accept: */* but says what it is.
        ("/info", vec![("accept", "*/*"), ("sec-fetch-mode", "cors")]),
    ] {
        let hop = browser.get_with(&s.url(path), &headers).await;
        assert_eq!(hop.status, StatusCode::UNAUTHORIZED, "{path} {headers:?}");
        assert!(hop.location.is_none());
        assert!(hop.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json"));
        let body = hop.json();
        assert_eq!(body["error"], "sign_in_required");
        let url = body["authorize_url"].as_str().unwrap();
        assert!(url.starts_with(&format!(
            "{}/connect/oauth2/authorize?appid=",
            s.emulator.open_base()
        )));
    }
    // A browser page prefers HTML: redirect.
    let hop = browser
        .get_with(
            &s.url("/info"),
            &[("accept", "text/html,application/xhtml+xml,*/*;q=0.8")],
        )
        .await;
    assert_eq!(hop.status, StatusCode::FOUND);

    // The authorize_url of a 401 works: its state is in the session, and the API's Referer
    // (a same-origin page) is where the browser comes back to.
    let fresh = Browser::new();
    let referer = s.url("/info?from=api");
    let hop = fresh
        .get_with(&s.url("/api/me"), &[("referer", &referer)])
        .await;
    let url = hop.json()["authorize_url"].as_str().unwrap().to_owned();
    let hops = fresh.navigate(&url).await;
    assert_eq!(hops.last().unwrap().status, StatusCode::OK);
    assert!(hops
        .iter()
        .any(|h| h.location.as_deref() == Some("/info?from=api#")));
    let me = fresh.get(&s.url("/api/me")).await;
    assert_eq!(me.status, StatusCode::OK);

    // A foreign Referer is never a return-to.
    let other = Browser::new();
    let hop = other
        .get_with(&s.url("/api/me"), &[("referer", "https://evil.example/x")])
        .await;
    let hops = other
        .navigate(hop.json()["authorize_url"].as_str().unwrap())
        .await;
    assert!(hops.iter().any(|h| h.location.as_deref() == Some("/#")));
}

#[actix_web::test]
async fn excluded_paths_pass_untouched() {
    let s = Setup::new(Shape::Strict, |c| c.exclude_prefix("/static/"));
    let browser = s.browser();
    let hop = browser.get(&s.url("/healthz")).await;
    assert_eq!((hop.status, hop.body.as_str()), (StatusCode::OK, "ok"));
    assert!(hop.headers.get("set-cookie").is_none());
    // An excluded prefix reaches the handler, which finds no middleware context: the extractor's
    // error, not a redirect.
    let hop = browser.get(&s.url("/static/app.js")).await;
    assert_eq!(hop.status, StatusCode::INTERNAL_SERVER_ERROR);
    // OPTIONS is gated like any other method: a forged "preflight" does not get through.
    let options = browser
        .client
        .request(reqwest::Method::OPTIONS, s.url("/other"))
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    assert_eq!(options.status(), StatusCode::FOUND);
    // Not excluded: redirect.
    assert_eq!(
        browser.get(&s.url("/other")).await.status,
        StatusCode::FOUND
    );
    assert_eq!(s.emulator.calls().len(), 0);
}

#[actix_web::test]
async fn callback_with_wrong_or_missing_state_is_400_and_never_calls_wechat() {
    let s = Setup::new(Shape::Routes, |c| c);
    let browser = s.browser();
    let location = browser.get(&s.url("/info")).await.location.unwrap();
    let real_state = authorize_params(&location)[4].1.clone();
    let mut almost = real_state.clone();
    almost.replace_range(
        ..1,
        if real_state.starts_with('A') {
            "B"
        } else {
            "A"
        },
    );
    for query in [
        "code=abc".to_owned(),
        "code=abc&state=".to_owned(),
        format!("code=abc&state={almost}"),
        format!("code=abc&state={real_state}x"),
        "code=abc&state=has%20space".to_owned(),
        format!("code=abc&state={}", "A".repeat(129)),
        format!("code=abc&state={real_state}&state={real_state}"),
        "code=a&code=b&state=x".to_owned(),
        "code=%ff%fe&state=%c3%28".to_owned(),
    ] {
        // From a desktop browser: a lost state is the page at once (in WeChat it restarts the
        // sign-in once: `pages.rs`). Either way, no exchange.
        let hop = browser
            .get_with(
                &s.url(&format!("/wechat/callback?{query}")),
                &[("user-agent", common::DESKTOP_UA)],
            )
            .await;
        assert_eq!(hop.status, StatusCode::BAD_REQUEST, "{query}: {}", hop.body);
        assert!(hop.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        assert!(
            !hop.body.contains("code=abc"),
            "the callback URL is never rendered"
        );
    }
    // Another browser's valid state is not this browser's.
    let thief = Browser::new();
    let hop = thief
        .get_with(
            &s.url(&format!("/wechat/callback?code=abc&state={real_state}")),
            &[("user-agent", common::DESKTOP_UA)],
        )
        .await;
    assert_eq!(hop.status, StatusCode::BAD_REQUEST);
    // In WeChat, the thief's browser is sent to sign in afresh, for itself, with a new state.
    let hop = thief
        .get(&s.url(&format!("/wechat/callback?code=abc&state={real_state}")))
        .await;
    assert_eq!(hop.status, StatusCode::FOUND);
    assert!(!hop.location.unwrap().contains(&real_state));
    assert_eq!(s.emulator.call_count(Endpoint::AccessToken), 0);
}

#[actix_web::test]
async fn state_is_single_use() {
    let s = Setup::new(Shape::Routes, |c| c);
    let browser = s.browser();
    let hops = browser.navigate(&s.url("/info")).await;
    let callback_url = hops[2].url.clone();
    assert_eq!(hops[3].status, StatusCode::OK);
    let exchanges = s.emulator.call_count(Endpoint::AccessToken);

    // Replaying the callback in the same, signed-in browser (reload, double callback): no second
    // exchange, straight back to the page.
    let replay = browser.get(&callback_url).await;
    assert_eq!(replay.status, StatusCode::SEE_OTHER);
    assert_eq!(replay.location.as_deref(), Some("/info#"));
    assert_eq!(s.emulator.call_count(Endpoint::AccessToken), exchanges);
}

#[actix_web::test]
async fn state_expires() {
    // Timestamps are whole seconds: a 1 s lifetime is surely over after 2.1 s.
    let s = Setup::new(Shape::Routes, |c| c.state_ttl(Duration::from_secs(1)));
    let exchanges = s.emulator.call_count(Endpoint::AccessToken);
    let other = Browser::new();
    let location = other.get(&s.url("/info")).await.location.unwrap();
    let emulator_hop = other.get(&location.replace("#wechat_redirect", "")).await;
    tokio_sleep(Duration::from_millis(2100)).await;
    let callback = emulator_hop.location.unwrap();
    // Expired: in WeChat one fresh sign-in, elsewhere the page; never the exchange.
    let hop = other.get(&callback).await;
    assert_eq!(hop.status, StatusCode::FOUND);
    assert!(hop.location.unwrap().contains("/connect/oauth2/authorize?"));
    let hop = other
        .get_with(&callback, &[("user-agent", common::DESKTOP_UA)])
        .await;
    assert_eq!(hop.status, StatusCode::BAD_REQUEST);
    assert_eq!(s.emulator.call_count(Endpoint::AccessToken), exchanges);
}

async fn tokio_sleep(d: Duration) {
    actix_web::rt::time::sleep(d).await;
}

#[actix_web::test]
async fn a_used_state_in_a_browser_that_is_not_signed_in_is_refused() {
    let s = Setup::new(Shape::Routes, |c| c);
    let browser = s.browser();
    let hops = browser.navigate(&s.url("/base")).await;
    let callback_url = hops[2].url.clone();
    browser.get(&s.url("/logout")).await;
    // The session is gone: a used state is not a sign-in. No exchange: a desktop browser gets
    // the page, WeChat one fresh sign-in.
    let exchanges = s.emulator.call_count(Endpoint::AccessToken);
    assert_eq!(
        browser
            .get_with(&callback_url, &[("user-agent", common::DESKTOP_UA)])
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(browser.get(&callback_url).await.status, StatusCode::FOUND);
    assert_eq!(s.emulator.call_count(Endpoint::AccessToken), exchanges);
}

#[actix_web::test]
async fn refusal_gets_a_403_page_with_a_way_back() {
    let emulator = Emulator::builder().start().unwrap(); // consent page shown
    let s = Setup::with_emulator(emulator, Shape::Routes, |c| c);
    let browser = s.browser();
    let location = browser.get(&s.url("/info?a=1")).await.location.unwrap();
    let state = authorize_params(&location)[4].1.clone();
    // The user taps Deny: WeChat comes back with the state and no code.
    let hop = browser
        .get(&s.url(&format!("/wechat/callback?state={state}")))
        .await;
    assert_eq!(hop.status, StatusCode::FORBIDDEN);
    assert!(hop.body.contains("href=\"/info?a=1\""), "{}", hop.body);
    assert_eq!(s.emulator.call_count(Endpoint::AccessToken), 0);
    // Trying again starts a new sign-in.
    assert_eq!(
        browser.get(&s.url("/info?a=1")).await.status,
        StatusCode::FOUND
    );
}

#[actix_web::test]
async fn consent_page_allow_and_deny_through_the_emulator() {
    let emulator = Emulator::builder().start().unwrap();
    let s = Setup::with_emulator(emulator, Shape::Routes, |c| c);
    let browser = s.browser();
    let hops = browser.navigate(&s.url("/info")).await;
    let consent = hops.last().unwrap();
    assert_eq!(consent.status, StatusCode::OK);
    assert!(
        consent.body.contains("id=\"deny\""),
        "consent page expected: {}",
        consent.body
    );
    // Deny through the emulator's own form, like a person.
    let (action, fields) = form_submission(consent, "deny", &s.emulator.open_base());
    let hop = browser.post_form(&action, &fields).await;
    let hops = browser
        .navigate(&hop.location.expect("a redirect back"))
        .await;
    assert_eq!(hops.last().unwrap().status, StatusCode::FORBIDDEN);
    // Allow.
    let hops = browser.navigate(&s.url("/info")).await;
    let (action, fields) = form_submission(hops.last().unwrap(), "allow", &s.emulator.open_base());
    let hop = browser.post_form(&action, &fields).await;
    let hops = browser
        .navigate(&hop.location.expect("a redirect back"))
        .await;
    let last = hops.last().unwrap();
    assert_eq!(last.status, StatusCode::OK, "{}", last.body);
    assert_eq!(last.json()["scope"], "snsapi_userinfo");
}

/// What a consent page's form submits when the button `id` is pressed: action URL and fields.
fn form_submission(
    page: &common::Hop,
    id: &str,
    open_base: &str,
) -> (String, Vec<(String, String)>) {
    let html = &page.body;
    let form_start = html.find("<form").expect("a form");
    let form = &html[form_start..];
    let action = attr(form, "action").unwrap_or_default();
    let mut params: Vec<(String, String)> = Vec::new();
    let mut rest = form;
    while let Some(i) = rest.find("<input") {
        let tag = &rest[i..rest[i..].find('>').map_or(rest.len(), |e| i + e)];
        if let (Some(name), Some(value)) = (attr(tag, "name"), attr(tag, "value")) {
            params.push((name, value));
        }
        rest = &rest[i + 6..];
    }
    let button_at = html.find(&format!("id=\"{id}\"")).expect("the button");
    let button = &html[html[..button_at].rfind('<').unwrap()..];
    let button = &button[..button.find('>').unwrap()];
    if let (Some(name), Some(value)) = (attr(button, "name"), attr(button, "value")) {
        params.push((name, value));
    }
    let url = if action.starts_with("http") {
        action
    } else {
        format!("{open_base}{action}")
    };
    (url, params)
}

fn attr(tag: &str, name: &str) -> Option<String> {
    let start = tag.find(&format!("{name}=\""))? + name.len() + 2;
    let end = tag[start..].find('"')? + start;
    Some(html_escape::decode_html_entities(&tag[start..end]).into_owned())
}

#[actix_web::test]
async fn snapshot_users_are_not_signed_in() {
    let s = Setup::new(Shape::Routes, |c| c);
    let openid = s.emulator.add_user(EmulatedUser::new("快照").snapshot());
    let browser = s.browser();
    let location = browser.get(&s.url("/info")).await.location.unwrap();
    let hop = browser
        .get_with(
            &location.replace("#wechat_redirect", ""),
            &[("x-emulator-user", &openid)],
        )
        .await;
    let hop = browser.get(&hop.location.unwrap()).await;
    assert_eq!(hop.status, StatusCode::FORBIDDEN);
    assert!(hop.body.contains("snapshot"), "{}", hop.body);
    assert!(browser.session(&s.app.base).get("wx").is_none());
    assert_eq!(s.emulator.call_count(Endpoint::UserInfo), 0);
}

#[actix_web::test]
async fn stale_code_restarts_once_then_explains() {
    let s = Setup::new(Shape::Routes, |c| c);
    let browser = s.browser();
    let location = browser.get(&s.url("/base?p=1")).await.location.unwrap();
    let state = authorize_params(&location)[4].1.clone();

    // A used code (40163): not signed in, so authorize once more with a new state.
    s.emulator
        .inject_fault(Endpoint::AccessToken, Fault::ErrCode(40163), Some(1));
    let hop = browser
        .get(&s.url(&format!("/wechat/callback?code=used&state={state}")))
        .await;
    assert_eq!(hop.status, StatusCode::FOUND);
    let again = hop.location.unwrap();
    let state2 = authorize_params(&again)[4].1.clone();
    assert_ne!(state, state2);

    // Stale again (42003): the loop guard stops with an error page that offers a fresh start.
    s.emulator
        .inject_fault(Endpoint::AccessToken, Fault::ErrCode(42003), Some(1));
    let hop = browser
        .get(&s.url(&format!("/wechat/callback?code=old&state={state2}")))
        .await;
    assert_eq!(hop.status, StatusCode::BAD_REQUEST);
    assert!(
        hop.body.contains("42003") && hop.body.contains("href=\"/base?p=1\""),
        "{}",
        hop.body
    );

    // The fresh start works.
    let last = sign_in(&browser, &s.url("/base?p=1")).await;
    assert_eq!(last.json()["scope"], "snsapi_base");
}

#[actix_web::test]
async fn stale_code_in_a_signed_in_browser_goes_on() {
    let s = Setup::new(Shape::Routes, |c| c);
    let browser = s.browser();
    sign_in(&browser, &s.url("/base")).await;
    // A second tab's sign-in completes after this browser is already signed in.
    let location = browser.get(&s.url("/info")).await.location.unwrap();
    let state = authorize_params(&location)[4].1.clone();
    sign_in(&browser, &s.url("/info")).await;
    s.emulator
        .inject_fault(Endpoint::AccessToken, Fault::ErrCode(40029), Some(1));
    let hop = browser
        .get(&s.url(&format!("/wechat/callback?code=x&state={state}")))
        .await;
    assert_eq!(hop.status, StatusCode::SEE_OTHER, "{}", hop.body);
    assert_eq!(hop.location.as_deref(), Some("/info#"));
}

#[actix_web::test]
async fn return_to_never_leaves_the_origin() {
    let s = Setup::new(Shape::Strict, |c| c);
    for (path, expected) in [
        ("//evil.example/x", "/"),
        ("/\\evil.example", "/"),
        ("/%2F%2Fevil.example", "/%2F%2Fevil.example"),
        ("/ok?next=//evil.example", "/ok?next=//evil.example"),
    ] {
        let browser = Browser::new();
        let hops = browser.navigate(&s.url(path)).await;
        let back = hops
            .iter()
            .find(|h| h.status == StatusCode::SEE_OTHER)
            .expect("callback hop");
        assert_eq!(
            back.location.as_deref(),
            Some(format!("{expected}#").as_str()),
            "for {path}"
        );
    }
}

#[actix_web::test]
async fn redirect_uri_ignores_the_host_header() {
    let s = Setup::new(Shape::Routes, |c| c);
    let hop = Browser::new()
        .get_with(
            &s.url("/info"),
            &[
                ("host", "evil.example"),
                ("x-forwarded-host", "evil.example"),
            ],
        )
        .await;
    let params = authorize_params(&hop.location.unwrap());
    assert_eq!(params[1].1, s.url("/wechat/callback"));
}

#[actix_web::test]
async fn scope_per_instance_and_upgrade_from_base_to_userinfo() {
    let s = Setup::new(Shape::Routes, |c| c);
    let browser = s.browser();
    // snsapi_base: silent, no profile.
    let base = sign_in(&browser, &s.url("/base")).await.json();
    assert_eq!(base["scope"], "snsapi_base");
    assert!(base["nickname"].is_null() && base["unionid"].is_null());
    assert_eq!(s.emulator.call_count(Endpoint::UserInfo), 0);
    // The base session is enough for /base: no new sign-in.
    assert_eq!(browser.get(&s.url("/base")).await.status, StatusCode::OK);
    // ... but not for /info: authorize again, asking for snsapi_userinfo.
    let hop = browser.get(&s.url("/info")).await;
    assert_eq!(hop.status, StatusCode::FOUND);
    assert_eq!(
        authorize_params(&hop.location.unwrap())[3].1,
        "snsapi_userinfo"
    );
    let info = sign_in(&browser, &s.url("/info")).await.json();
    assert_eq!(info["scope"], "snsapi_userinfo");
    assert_eq!(info["openid"], base["openid"]);
    assert!(info["unionid"].is_string() && info["nickname"].is_string());
    // A userinfo grant satisfies base routes.
    assert_eq!(
        browser.get(&s.url("/base")).await.json()["scope"],
        "snsapi_userinfo"
    );
}

#[actix_web::test]
async fn optional_routes_see_the_user_when_there_is_one() {
    let s = Setup::new(Shape::Routes, |c| c);
    let browser = s.browser();
    let hop = browser.get(&s.url("/public")).await;
    assert_eq!(hop.status, StatusCode::OK);
    assert!(hop.json()["openid"].is_null());
    let me = sign_in(&browser, &s.url("/base")).await.json();
    assert_eq!(
        browser.get(&s.url("/public")).await.json()["openid"],
        me["openid"]
    );
    browser.get(&s.url("/logout")).await;
    assert!(browser.get(&s.url("/public")).await.json()["openid"].is_null());
}

/// Each worker reuses the containers it leaves users in once actix drops their request: a
/// handler that keeps its request keeps that container, and nobody may then see its user, nor
/// the user of a container reused after someone else's request.
#[actix_web::test]
async fn requests_kept_by_handlers_never_lend_their_user_to_later_ones() {
    let s = Setup::new(Shape::Routes, |c| c);
    let browsers: Vec<Browser> = (0..6).map(|_| Browser::new()).collect();
    let mut openids = Vec::new();
    for b in &browsers {
        let me = sign_in(b, &s.url("/info")).await.json();
        openids.push(me["openid"].as_str().unwrap().to_owned());
    }
    let anonymous = Browser::new();
    let api = [("accept", "application/json")];
    // Rounds in which every browser's requests interleave, a held one among them, each on a
    // connection of its own (so both workers hold requests) and one anonymous request between.
    for round in 0..8 {
        for (b, openid) in browsers.iter().zip(&openids) {
            let path = if round % 2 == 0 { "/held" } else { "/whoami" };
            let me = b.get_with(&s.url(path), &api).await;
            assert_eq!(me.status, StatusCode::OK, "{path}: {}", me.body);
            assert_eq!(
                me.json()["openid"],
                openid.as_str(),
                "{path} in round {round}"
            );
            let stranger = anonymous.get_with(&s.url("/held"), &api).await;
            assert_eq!(
                stranger.status,
                StatusCode::UNAUTHORIZED,
                "{}",
                stranger.body
            );
            let stranger = anonymous.get_with(&s.url("/public"), &api).await;
            assert_eq!(
                stranger.json()["openid"],
                serde_json::Value::Null,
                "round {round}"
            );
        }
    }
}

#[actix_web::test]
async fn concurrent_users_never_see_each_other() {
    let s = Setup::new(Shape::Routes, |c| c.check_interval(Duration::ZERO));
    let browsers: Vec<Browser> = (0..16).map(|_| Browser::new()).collect();
    let results = futures_util::future::join_all(browsers.iter().map(|b| async {
        let first = sign_in(b, &s.url("/info")).await.json();
        let mut seen = vec![first["openid"].as_str().unwrap().to_owned()];
        for _ in 0..5 {
            seen.push(
                b.get(&s.url("/api/me")).await.json()["openid"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            );
        }
        (first, seen)
    }))
    .await;
    let mut openids = std::collections::HashSet::new();
    for (first, seen) in &results {
        let openid = first["openid"].as_str().unwrap();
        assert!(
            seen.iter().all(|o| o == openid),
            "a browser saw another identity: {seen:?}"
        );
        let user = s.emulator.user(openid).unwrap();
        assert_eq!(first["nickname"], user.nickname.as_str());
        assert!(
            openids.insert(openid.to_owned()),
            "two browsers got one identity"
        );
    }
    assert_eq!(openids.len(), 16);
}

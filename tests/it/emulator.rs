//! Black-box tests of the WeChat emulator over real HTTP.

use std::time::{Duration, Instant};

use actix_wechat_auth::emulator::Answered::{self, ErrCode, HttpStatus, Malformed, Stalled};
use actix_wechat_auth::emulator::{Call, EmulatedUser, Emulator, Endpoint, Fault};
use reqwest::redirect::Policy;
use reqwest::{Client, Response, StatusCode};
use serde_json::Value;

const CALLBACK: &str = "https://app.example/wechat/callback";

fn client() -> Client {
    Client::builder()
        .redirect(Policy::none())
        .build()
        .expect("client")
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn authorize_url(emu: &Emulator, redirect_uri: &str, scope: &str, state: &str) -> String {
    format!(
        "{}/connect/oauth2/authorize?appid={}&redirect_uri={}&response_type=code&scope={scope}&state={state}&connect_redirect=1",
        emu.open_base(),
        emu.appid(),
        enc(redirect_uri)
    )
}

fn query_param(location: &str, name: &str) -> Option<String> {
    let url = url::Url::parse(location).expect("absolute location");
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn location(res: &Response) -> String {
    res.headers()
        .get("location")
        .expect("location header")
        .to_str()
        .expect("ascii location")
        .to_owned()
}

fn content_type(res: &Response) -> String {
    res.headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap_or_default().to_owned())
        .unwrap_or_default()
}

/// GET an API URL: asserts HTTP 200 + text/plain, returns the parsed JSON.
async fn api(http: &Client, url: &str) -> Value {
    let res = http.get(url).send().await.expect("api call");
    assert_eq!(res.status(), StatusCode::OK, "{url}");
    assert_eq!(content_type(&res), "text/plain", "{url}");
    let body = res.text().await.expect("body");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

fn errcode(v: &Value) -> i64 {
    v["errcode"].as_i64().unwrap_or(0)
}

/// Runs the authorize page as `openid` and returns the code (consent must not be needed).
async fn code_for(emu: &Emulator, http: &Client, openid: &str, scope: &str) -> String {
    let res = http
        .get(authorize_url(emu, CALLBACK, scope, "st4te"))
        .header("X-Emulator-User", openid)
        .send()
        .await
        .expect("authorize");
    assert_eq!(res.status(), StatusCode::FOUND, "authorize should redirect");
    let loc = location(&res);
    assert_eq!(query_param(&loc, "state").as_deref(), Some("st4te"));
    query_param(&loc, "code").expect("code in callback")
}

fn exchange_url(emu: &Emulator, code: &str) -> String {
    format!(
        "{}/sns/oauth2/access_token?appid={}&secret={}&code={code}&grant_type=authorization_code",
        emu.api_base(),
        emu.appid(),
        emu.secret()
    )
}

fn refresh_url(emu: &Emulator, refresh_token: &str) -> String {
    format!(
        "{}/sns/oauth2/refresh_token?appid={}&grant_type=refresh_token&refresh_token={refresh_token}",
        emu.api_base(),
        emu.appid()
    )
}

fn userinfo_url(emu: &Emulator, token: &Value, lang: &str) -> String {
    format!(
        "{}/sns/userinfo?access_token={}&openid={}&lang={lang}",
        emu.api_base(),
        token["access_token"].as_str().expect("access_token"),
        token["openid"].as_str().expect("openid"),
    )
}

fn auth_url(emu: &Emulator, access_token: &str, openid: &str) -> String {
    format!(
        "{}/sns/auth?access_token={access_token}&openid={openid}",
        emu.api_base()
    )
}

async fn sign_in(emu: &Emulator, http: &Client, openid: &str, scope: &str) -> Value {
    let code = code_for(emu, http, openid, scope).await;
    let token = api(http, &exchange_url(emu, &code)).await;
    assert_eq!(errcode(&token), 0, "{token}");
    token
}

/// Expects an authorize error page with `code`.
async fn expect_page_error(http: &Client, url: &str, code: i64) {
    let res = http.get(url).send().await.expect("authorize");
    assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{url}");
    assert_eq!(
        res.headers()
            .get("x-wechat-error")
            .and_then(|v| v.to_str().ok()),
        Some(code.to_string().as_str()),
        "{url}"
    );
    assert!(content_type(&res).starts_with("text/html"));
    let body = res.text().await.expect("body");
    assert!(
        body.contains(&format!("<span id=\"errcode\">{code}</span>")),
        "{body}"
    );
}

/// The hidden fields of the consent form, as a browser would submit them.
fn hidden_fields(page: &str) -> Vec<(String, String)> {
    page.split("<input type=\"hidden\" ")
        .skip(1)
        .map(|chunk| {
            let name = chunk
                .split("name=\"")
                .nth(1)
                .and_then(|s| s.split('"').next())
                .expect("name");
            let value = chunk
                .split("value=\"")
                .nth(1)
                .and_then(|s| s.split('"').next())
                .expect("value");
            (
                name.to_owned(),
                html_escape::decode_html_entities(value).into_owned(),
            )
        })
        .collect()
}

#[actix_web::test]
async fn authorize_rejects_parameters_out_of_order() {
    let emu = Emulator::start().unwrap();
    let http = client();
    let base = format!("{}/connect/oauth2/authorize", emu.open_base());
    let cb = enc(CALLBACK);
    let appid = emu.appid();
    // redirect_uri before appid
    expect_page_error(
        &http,
        &format!(
            "{base}?redirect_uri={cb}&appid={appid}&response_type=code&scope=snsapi_base&state=a"
        ),
        10001,
    )
    .await;
    // state before scope
    expect_page_error(
        &http,
        &format!(
            "{base}?appid={appid}&redirect_uri={cb}&response_type=code&state=a&scope=snsapi_base"
        ),
        10001,
    )
    .await;
    // connect_redirect before state
    expect_page_error(
        &http,
        &format!("{base}?appid={appid}&redirect_uri={cb}&response_type=code&scope=snsapi_base&connect_redirect=1&state=a"),
        10001,
    )
    .await;
    // The right order works.
    let res = http
        .get(format!(
            "{base}?appid={appid}&redirect_uri={cb}&response_type=code&scope=snsapi_base&state=a"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FOUND);
    assert_eq!(emu.call_count(Endpoint::Authorize), 4);
    let codes: Vec<Answered> = emu.calls().into_iter().map(|c| c.answered).collect();
    assert_eq!(
        codes,
        [ErrCode(10001), ErrCode(10001), ErrCode(10001), Answered::Ok]
    );
}

#[actix_web::test]
async fn authorize_validates_every_parameter() {
    let emu = Emulator::start().unwrap();
    let http = client();
    let base = format!("{}/connect/oauth2/authorize", emu.open_base());
    let cb = enc(CALLBACK);
    let appid = emu.appid();
    let long_state = "a".repeat(129);
    let cases: Vec<(String, i64)> = vec![
        (format!("redirect_uri={cb}&response_type=code&scope=snsapi_base&state=a"), 10012),
        (format!("appid=&redirect_uri={cb}&response_type=code&scope=snsapi_base&state=a"), 10012),
        (format!("appid=wxnope&redirect_uri={cb}&response_type=code&scope=snsapi_base&state=a"), 10002),
        (format!("appid={appid}&response_type=code&scope=snsapi_base&state=a"), 10011),
        (format!("appid={appid}&redirect_uri=%2Frelative&response_type=code&scope=snsapi_base&state=a"), 10008),
        (format!("appid={appid}&redirect_uri={}&response_type=code&scope=snsapi_base&state=a", enc("ftp://x.example/")), 10008),
        (format!("appid={appid}&redirect_uri={cb}&scope=snsapi_base&state=a"), 10001),
        (format!("appid={appid}&redirect_uri={cb}&response_type=token&scope=snsapi_base&state=a"), 10001),
        (format!("appid={appid}&redirect_uri={cb}&response_type=code&state=a"), 10010),
        (format!("appid={appid}&redirect_uri={cb}&response_type=code&scope=snsapi_login&state=a"), 10005),
        (format!("appid={appid}&redirect_uri={cb}&response_type=code&scope=snsapi_base"), 10013),
        (format!("appid={appid}&redirect_uri={cb}&response_type=code&scope=snsapi_base&state=a-b"), 10007),
        (format!("appid={appid}&redirect_uri={cb}&response_type=code&scope=snsapi_base&state=a%23wechat_redirect"), 10007),
        (format!("appid={appid}&redirect_uri={cb}&response_type=code&scope=snsapi_base&state={long_state}"), 10007),
        (format!("appid={appid}&redirect_uri={cb}&response_type=code&scope=snsapi_base&state=a&connect_redirect=2"), 10001),
        (format!("appid={appid}&redirect_uri={cb}&response_type=code&scope=snsapi_base&state=a&extra=1"), 10001),
        (format!("appid={appid}&appid={appid}&redirect_uri={cb}&response_type=code&scope=snsapi_base&state=a"), 10001),
    ];
    for (query, code) in &cases {
        expect_page_error(&http, &format!("{base}?{query}"), *code).await;
    }
    // Accepted edge cases: 128-byte state, empty state, connect_redirect=1.
    for state in ["a".repeat(128), String::new()] {
        let res = http
            .get(authorize_url(&emu, CALLBACK, "snsapi_base", &state))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::FOUND, "state {state:?}");
        assert_eq!(query_param(&location(&res), "state"), Some(state));
    }
    assert_eq!(emu.call_count(Endpoint::Authorize), cases.len() + 2);
}

#[actix_web::test]
async fn authorize_checks_the_registered_domain() {
    let emu = Emulator::builder()
        .redirect_domain("app.example")
        .start()
        .unwrap();
    let http = client();
    expect_page_error(
        &http,
        &authorize_url(&emu, "https://evil.example/cb", "snsapi_base", "a"),
        10003,
    )
    .await;
    for ok in ["https://app.example/cb", "http://APP.example:8080/cb?x=1"] {
        let res = http
            .get(authorize_url(&emu, ok, "snsapi_base", "a"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::FOUND, "{ok}");
    }
}

#[actix_web::test]
async fn snsapi_base_redirects_at_once_and_remembers_the_user() {
    let emu = Emulator::start().unwrap();
    let jar_client = Client::builder()
        .redirect(Policy::none())
        .cookie_store(true)
        .build()
        .unwrap();
    let res = jar_client
        .get(authorize_url(
            &emu,
            "https://app.example/cb?next=%2Fhome",
            "snsapi_base",
            "Abc123",
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FOUND);
    let set_cookie = res
        .headers()
        .get("set-cookie")
        .expect("cookie for a new user")
        .to_str()
        .unwrap()
        .to_owned();
    assert!(set_cookie.starts_with("wxemu_user=o"), "{set_cookie}");
    assert!(set_cookie.contains("SameSite=Lax") && set_cookie.contains("Path=/"));
    let loc = location(&res);
    assert!(
        loc.starts_with("https://app.example/cb?next=%2Fhome&code="),
        "{loc}"
    );
    let code = query_param(&loc, "code").unwrap();
    assert_eq!(code.len(), 32);
    assert!(code.bytes().all(|b| b.is_ascii_alphanumeric()));
    assert_eq!(query_param(&loc, "state").as_deref(), Some("Abc123"));

    // The cookie makes the same user come back; no new cookie is set.
    let res = jar_client
        .get(authorize_url(&emu, CALLBACK, "snsapi_base", "x"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FOUND);
    assert!(res.headers().get("set-cookie").is_none());
    let calls = emu.calls();
    assert_eq!(calls.len(), 2);
    assert!(calls[0].openid.is_some());
    assert_eq!(calls[0].openid, calls[1].openid);
    let openid = calls[0].openid.clone().unwrap();
    assert_eq!(openid.len(), 28);

    // The generated user looks real: nickname and an avatar served by the emulator.
    let user = emu.user(&openid).expect("generated user");
    assert!(user.nickname.starts_with("测试用户 "), "{}", user.nickname);
    assert!(
        user.headimgurl
            .starts_with(&format!("{}/_emulator/avatar/", emu.open_base())),
        "{}",
        user.headimgurl
    );
    let avatar = client().get(&user.headimgurl).send().await.unwrap();
    assert_eq!(avatar.status(), StatusCode::OK);
    assert_eq!(content_type(&avatar), "image/svg+xml");
    assert!(avatar.text().await.unwrap().starts_with("<svg"));

    // The code gives a snsapi_base token for that user, without unionid.
    let token = api(&jar_client, &exchange_url(&emu, &code)).await;
    assert_eq!(token["openid"], openid.as_str());
    assert_eq!(token["scope"], "snsapi_base");
    assert!(token.get("unionid").is_none());
    assert!(token.get("is_snapshotuser").is_none());
}

#[actix_web::test]
async fn userinfo_consent_allow_and_deny() {
    let emu = Emulator::start().unwrap();
    let http = client();
    let openid = emu.add_user(EmulatedUser::new("小明 <b>&🐼"));
    let url = authorize_url(&emu, CALLBACK, "snsapi_userinfo", "s1");

    // Deny.
    let res = http
        .get(&url)
        .header("X-Emulator-User", &openid)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let page = res.text().await.unwrap();
    assert!(page.contains("id=\"allow\"") && page.contains("id=\"deny\""));
    assert!(page.contains("name=\"viewport\""));
    assert!(page.contains(emu.appid()));
    assert!(page.contains("小明 &lt;b&gt;&amp;🐼"), "nickname escaped");
    let mut form = hidden_fields(&page);
    assert!(form.contains(&("redirect_uri".to_owned(), CALLBACK.to_owned())));
    form.push(("action".into(), "deny".into()));
    let confirm = format!("{}/connect/oauth2/authorize/confirm", emu.open_base());
    let res = http.post(&confirm).form(&form).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::FOUND);
    let loc = location(&res);
    assert_eq!(loc, format!("{CALLBACK}?state=s1"));

    // Denying remembers nothing: the page comes again. Allow.
    let res = http
        .get(&url)
        .header("X-Emulator-User", &openid)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let mut form = hidden_fields(&res.text().await.unwrap());
    form.push(("action".into(), "allow".into()));
    let res = http.post(&confirm).form(&form).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::FOUND);
    let loc = location(&res);
    assert_eq!(query_param(&loc, "state").as_deref(), Some("s1"));
    let code = query_param(&loc, "code").expect("code after allow");
    let token = api(&http, &exchange_url(&emu, &code)).await;
    assert_eq!(token["openid"], openid.as_str());
    assert_eq!(token["scope"], "snsapi_userinfo");

    // Consent is remembered: straight redirect now.
    let code2 = code_for(&emu, &http, &openid, "snsapi_userinfo").await;
    assert_ne!(code, code2);

    // The consent form is validated again.
    let mut tampered = form.clone();
    for (k, v) in tampered.iter_mut() {
        if k == "state" {
            *v = "bad state!".into();
        }
    }
    let res = http.post(&confirm).form(&tampered).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(res.headers()["x-wechat-error"], "10007");
}

#[actix_web::test]
async fn auto_approve_skips_the_consent_page() {
    let emu = Emulator::builder().auto_approve(true).start().unwrap();
    let http = client();
    let openid = emu.add_user(EmulatedUser::new("A"));
    let code = code_for(&emu, &http, &openid, "snsapi_userinfo").await;
    assert_eq!(code.len(), 32);
}

#[actix_web::test]
async fn code_is_single_use_and_validated() {
    let emu = Emulator::start().unwrap();
    let http = client();
    let openid = emu.add_user(EmulatedUser::new("A"));
    let code = code_for(&emu, &http, &openid, "snsapi_base").await;
    let first = api(&http, &exchange_url(&emu, &code)).await;
    assert_eq!(errcode(&first), 0);
    let again = api(&http, &exchange_url(&emu, &code)).await;
    assert_eq!(errcode(&again), 40163, "{again}");
    assert!(again["errmsg"]
        .as_str()
        .unwrap()
        .starts_with("code been used"));

    let unknown = api(&http, &exchange_url(&emu, "NoSuchCode")).await;
    assert_eq!(errcode(&unknown), 40029);
    let missing = api(
        &http,
        &format!(
            "{}/sns/oauth2/access_token?appid={}&secret={}&grant_type=authorization_code",
            emu.api_base(),
            emu.appid(),
            emu.secret()
        ),
    )
    .await;
    assert_eq!(errcode(&missing), 41008);
    let codes: Vec<Answered> = emu
        .calls()
        .into_iter()
        .filter(|c| c.endpoint == Endpoint::AccessToken)
        .map(|c| c.answered)
        .collect();
    assert_eq!(
        codes,
        [Answered::Ok, ErrCode(40163), ErrCode(40029), ErrCode(41008)]
    );
}

#[actix_web::test]
async fn code_expires() {
    let emu = Emulator::builder()
        .code_ttl(Duration::from_millis(100))
        .start()
        .unwrap();
    let http = client();
    let openid = emu.add_user(EmulatedUser::new("A"));
    let code = code_for(&emu, &http, &openid, "snsapi_base").await;
    actix_web::rt::time::sleep(Duration::from_millis(250)).await;
    let expired = api(&http, &exchange_url(&emu, &code)).await;
    assert_eq!(errcode(&expired), 42003, "{expired}");
    // A fresh code still works.
    let code = code_for(&emu, &http, &openid, "snsapi_base").await;
    assert_eq!(errcode(&api(&http, &exchange_url(&emu, &code)).await), 0);
}

#[actix_web::test]
async fn exchange_checks_app_credentials() {
    let emu = Emulator::start().unwrap();
    let http = client();
    let openid = emu.add_user(EmulatedUser::new("A"));
    let code = code_for(&emu, &http, &openid, "snsapi_base").await;
    let base = format!("{}/sns/oauth2/access_token", emu.api_base());
    let appid = emu.appid();
    let secret = emu.secret();
    let cases = [
        (
            format!("{base}?appid={appid}&secret=wrong&code={code}&grant_type=authorization_code"),
            40125,
        ),
        (
            format!("{base}?appid={appid}&code={code}&grant_type=authorization_code"),
            41004,
        ),
        (
            format!(
                "{base}?appid=wxother&secret={secret}&code={code}&grant_type=authorization_code"
            ),
            40013,
        ),
        (
            format!("{base}?secret={secret}&code={code}&grant_type=authorization_code"),
            41002,
        ),
        (
            format!(
                "{base}?appid={appid}&secret={secret}&code={code}&grant_type=client_credential"
            ),
            40002,
        ),
    ];
    for (url, expected) in &cases {
        let v = api(&http, url).await;
        assert_eq!(errcode(&v), *expected, "{url}: {v}");
        assert!(v["errmsg"].as_str().unwrap().contains("rid: "));
    }
    // None of these consumed the code.
    let v = api(&http, &exchange_url(&emu, &code)).await;
    assert_eq!(errcode(&v), 0, "{v}");
    let token = v["access_token"].as_str().unwrap();
    assert!((90..=110).contains(&token.len()), "{token}");
    assert_eq!(v["expires_in"], 7200);
}

#[actix_web::test]
async fn refresh_returns_a_new_access_token_and_keeps_the_refresh_token() {
    let emu = Emulator::builder()
        .auto_approve(true)
        .refresh_token_ttl(Duration::from_millis(2000))
        .start()
        .unwrap();
    let http = client();
    let openid = emu.add_user(EmulatedUser::new("A"));
    let token = sign_in(&emu, &http, &openid, "snsapi_userinfo").await;
    assert!(token["unionid"].is_string(), "{token}");
    let refresh_token = token["refresh_token"].as_str().unwrap();
    let old_access = token["access_token"].as_str().unwrap();

    let refreshed = api(&http, &refresh_url(&emu, refresh_token)).await;
    assert_eq!(errcode(&refreshed), 0, "{refreshed}");
    assert_eq!(refreshed["refresh_token"], refresh_token);
    assert_eq!(refreshed["openid"], openid.as_str());
    assert_eq!(refreshed["scope"], "snsapi_userinfo");
    assert_eq!(refreshed["expires_in"], 7200);
    assert!(refreshed.get("unionid").is_none(), "{refreshed}");
    let new_access = refreshed["access_token"].as_str().unwrap();
    assert_ne!(new_access, old_access);
    // Both access tokens are valid.
    for t in [old_access, new_access] {
        let v = api(&http, &auth_url(&emu, t, &openid)).await;
        assert_eq!(v, serde_json::json!({"errcode":0,"errmsg":"ok"}));
    }
    // Refreshing does not extend the refresh token's life.
    actix_web::rt::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(
        errcode(&api(&http, &refresh_url(&emu, refresh_token)).await),
        0
    );
    actix_web::rt::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(
        errcode(&api(&http, &refresh_url(&emu, refresh_token)).await),
        42002
    );

    // Parameter errors.
    let base = format!("{}/sns/oauth2/refresh_token", emu.api_base());
    let appid = emu.appid();
    let cases = [
        (refresh_url(&emu, "nope"), 40030),
        (
            format!("{base}?appid={appid}&grant_type=refresh_token"),
            41003,
        ),
        (
            format!("{base}?appid={appid}&grant_type=authorization_code&refresh_token=x"),
            40002,
        ),
        (
            format!("{base}?appid=wxother&grant_type=refresh_token&refresh_token=x"),
            40013,
        ),
        (
            format!("{base}?grant_type=refresh_token&refresh_token=x"),
            41002,
        ),
    ];
    for (url, expected) in &cases {
        assert_eq!(errcode(&api(&http, url).await), *expected, "{url}");
    }
}

#[actix_web::test]
async fn rotating_refresh_tokens_invalidates_the_old_one() {
    let emu = Emulator::builder()
        .rotate_refresh_token(true)
        .start()
        .unwrap();
    let http = client();
    let openid = emu.add_user(EmulatedUser::new("A"));
    let token = sign_in(&emu, &http, &openid, "snsapi_base").await;
    let old = token["refresh_token"].as_str().unwrap();
    let refreshed = api(&http, &refresh_url(&emu, old)).await;
    assert_eq!(errcode(&refreshed), 0);
    let new = refreshed["refresh_token"].as_str().unwrap();
    assert_ne!(new, old);
    assert_eq!(errcode(&api(&http, &refresh_url(&emu, old)).await), 40030);
    assert_eq!(errcode(&api(&http, &refresh_url(&emu, new)).await), 0);
}

#[actix_web::test]
async fn expire_controls() {
    let emu = Emulator::builder().auto_approve(true).start().unwrap();
    let http = client();
    let openid = emu.add_user(EmulatedUser::new("A"));
    let token = sign_in(&emu, &http, &openid, "snsapi_userinfo").await;
    let access = token["access_token"].as_str().unwrap();
    let refresh = token["refresh_token"].as_str().unwrap();
    assert_eq!(
        errcode(&api(&http, &userinfo_url(&emu, &token, "zh_CN")).await),
        0
    );

    emu.expire_access_tokens();
    assert_eq!(
        errcode(&api(&http, &userinfo_url(&emu, &token, "zh_CN")).await),
        42001
    );
    assert_eq!(
        errcode(&api(&http, &auth_url(&emu, access, &openid)).await),
        42001
    );
    // A refresh gives a working token again.
    let refreshed = api(&http, &refresh_url(&emu, refresh)).await;
    assert_eq!(errcode(&refreshed), 0);
    let new_access = refreshed["access_token"].as_str().unwrap();
    assert_eq!(
        errcode(&api(&http, &auth_url(&emu, new_access, &openid)).await),
        0
    );

    emu.expire_refresh_tokens();
    assert_eq!(
        errcode(&api(&http, &refresh_url(&emu, refresh)).await),
        42002
    );
    // Access tokens are untouched by expiring refresh tokens; new grants are unaffected.
    assert_eq!(
        errcode(&api(&http, &auth_url(&emu, new_access, &openid)).await),
        0
    );
    let fresh = sign_in(&emu, &http, &openid, "snsapi_base").await;
    assert_eq!(
        errcode(
            &api(
                &http,
                &refresh_url(&emu, fresh["refresh_token"].as_str().unwrap())
            )
            .await
        ),
        0
    );
}

#[actix_web::test]
async fn userinfo_answers_and_errors() {
    let emu = Emulator::builder().auto_approve(true).start().unwrap();
    let http = client();
    let openid = emu.add_user(EmulatedUser {
        sex: 2,
        country: "中国".into(),
        province: "广东".into(),
        city: "深圳".into(),
        privilege: vec!["chinaunicom".into()],
        ..EmulatedUser::new("阿花 🌸").with_headimgurl("https://thirdwx.qlogo.cn/mmopen/x/132")
    });
    let token = sign_in(&emu, &http, &openid, "snsapi_userinfo").await;
    let unionid = token["unionid"].as_str().expect("unionid").to_owned();
    assert_eq!(
        emu.user(&openid).unwrap().unionid.as_deref(),
        Some(unionid.as_str())
    );

    for lang in ["zh_CN", "zh_TW", "en", ""] {
        let info = api(&http, &userinfo_url(&emu, &token, lang)).await;
        assert_eq!(errcode(&info), 0, "{info}");
        assert_eq!(info["openid"], openid.as_str());
        assert_eq!(info["nickname"], "阿花 🌸");
        assert_eq!(info["sex"], 2);
        assert!(info["sex"].is_u64());
        assert_eq!(info["country"], "中国");
        assert_eq!(info["province"], "广东");
        assert_eq!(info["city"], "深圳");
        assert_eq!(info["headimgurl"], "https://thirdwx.qlogo.cn/mmopen/x/132");
        assert_eq!(info["privilege"], serde_json::json!(["chinaunicom"]));
        assert_eq!(info["unionid"], unionid.as_str());
    }
    // The unionid is stable across grants.
    let again = sign_in(&emu, &http, &openid, "snsapi_userinfo").await;
    assert_eq!(again["unionid"], unionid.as_str());

    assert_eq!(
        errcode(&api(&http, &userinfo_url(&emu, &token, "fr")).await),
        40097
    );
    let access = token["access_token"].as_str().unwrap();
    let base = format!("{}/sns/userinfo", emu.api_base());
    let cases = [
        (
            format!("{base}?access_token={access}&openid=oSomeoneElse"),
            40003,
        ),
        (
            format!("{base}?access_token=unknown&openid={openid}"),
            40014,
        ),
        (format!("{base}?openid={openid}"), 41001),
        (format!("{base}?access_token={access}"), 41009),
    ];
    for (url, expected) in &cases {
        assert_eq!(errcode(&api(&http, url).await), *expected, "{url}");
    }

    // A snsapi_base token cannot read the profile.
    let base_token = sign_in(&emu, &http, &openid, "snsapi_base").await;
    assert!(base_token.get("unionid").is_none());
    assert_eq!(
        errcode(&api(&http, &userinfo_url(&emu, &base_token, "zh_CN")).await),
        48001
    );
}

#[actix_web::test]
async fn no_unionid_without_open_platform() {
    let emu = Emulator::builder()
        .open_platform_bound(false)
        .auto_approve(true)
        .start()
        .unwrap();
    let http = client();
    let openid = emu.add_user(EmulatedUser::new("A").with_unionid("oUnionGiven"));
    let token = sign_in(&emu, &http, &openid, "snsapi_userinfo").await;
    assert!(token.get("unionid").is_none(), "{token}");
    let info = api(&http, &userinfo_url(&emu, &token, "zh_CN")).await;
    assert_eq!(errcode(&info), 0);
    assert!(info.get("unionid").is_none(), "{info}");
}

#[actix_web::test]
async fn sns_auth_checks_tokens() {
    let emu = Emulator::start().unwrap();
    let http = client();
    let openid = emu.add_user(EmulatedUser::new("A"));
    let token = sign_in(&emu, &http, &openid, "snsapi_base").await;
    let access = token["access_token"].as_str().unwrap();
    assert_eq!(
        api(&http, &auth_url(&emu, access, &openid)).await,
        serde_json::json!({"errcode":0,"errmsg":"ok"})
    );
    assert_eq!(
        errcode(&api(&http, &auth_url(&emu, "bogus", &openid)).await),
        40014
    );
    assert_eq!(
        errcode(&api(&http, &auth_url(&emu, access, "oOther")).await),
        40003
    );
    emu.expire_access_tokens();
    assert_eq!(
        errcode(&api(&http, &auth_url(&emu, access, &openid)).await),
        42001
    );
    assert_eq!(emu.call_count(Endpoint::Auth), 4);
}

#[actix_web::test]
async fn api_answers_are_text_plain() {
    let emu = Emulator::builder().auto_approve(true).start().unwrap();
    let http = client();
    // `api` asserts HTTP 200 and exactly `text/plain` on success and error answers alike.
    let openid = emu.add_user(EmulatedUser::new("A"));
    let token = sign_in(&emu, &http, &openid, "snsapi_userinfo").await;
    api(&http, &userinfo_url(&emu, &token, "en")).await;
    api(&http, &refresh_url(&emu, "x")).await;
    api(&http, &auth_url(&emu, "x", "y")).await;
    let res = http.get(exchange_url(&emu, "bad")).send().await.unwrap();
    assert_eq!(res.headers()["content-type"], "text/plain");
}

#[actix_web::test]
async fn busy_fault_then_normal_answer() {
    let emu = Emulator::start().unwrap();
    let http = client();
    let openid = emu.add_user(EmulatedUser::new("A"));
    let code = code_for(&emu, &http, &openid, "snsapi_base").await;
    emu.inject_fault(Endpoint::AccessToken, Fault::Busy, Some(2));
    for _ in 0..2 {
        let v = api(&http, &exchange_url(&emu, &code)).await;
        assert_eq!(v, serde_json::json!({"errcode":-1,"errmsg":"system error"}));
    }
    // The code was not consumed by the faulted calls.
    let v = api(&http, &exchange_url(&emu, &code)).await;
    assert_eq!(errcode(&v), 0, "{v}");
    let log: Vec<(Answered, Option<Fault>)> = emu
        .calls()
        .into_iter()
        .filter(|c| c.endpoint == Endpoint::AccessToken)
        .map(|c| (c.answered, c.fault))
        .collect();
    assert_eq!(
        log,
        [
            (ErrCode(-1), Some(Fault::Busy)),
            (ErrCode(-1), Some(Fault::Busy)),
            (Answered::Ok, None)
        ]
    );
}

#[actix_web::test]
async fn http_status_malformed_and_errcode_faults() {
    let emu = Emulator::start().unwrap();
    let http = client();
    let url = auth_url(&emu, "x", "y");

    emu.inject_fault(Endpoint::Auth, Fault::HttpStatus(502), Some(1));
    let res = http.get(&url).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_GATEWAY);
    assert!(res.text().await.unwrap().contains("502 Bad Gateway"));

    emu.inject_fault(Endpoint::Auth, Fault::Malformed, Some(1));
    let res = http.get(&url).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body = res.text().await.unwrap();
    assert!(serde_json::from_str::<Value>(&body).is_err(), "{body}");

    emu.inject_fault(Endpoint::Auth, Fault::ErrCode(45009), Some(1));
    assert_eq!(errcode(&api(&http, &url).await), 45009);

    // Used up: the normal answer again.
    assert_eq!(errcode(&api(&http, &url).await), 40014);

    let codes: Vec<Answered> = emu.calls().into_iter().map(|c| c.answered).collect();
    assert_eq!(
        codes,
        [HttpStatus(502), Malformed, ErrCode(45009), ErrCode(40014)]
    );
}

#[actix_web::test]
async fn faults_until_cleared_and_in_order() {
    let emu = Emulator::start().unwrap();
    let http = client();
    let url = refresh_url(&emu, "x");
    emu.inject_fault(Endpoint::RefreshToken, Fault::ErrCode(45011), Some(1));
    emu.inject_fault(Endpoint::RefreshToken, Fault::Busy, None);
    assert_eq!(errcode(&api(&http, &url).await), 45011);
    for _ in 0..3 {
        assert_eq!(errcode(&api(&http, &url).await), -1);
    }
    // Other endpoints are not affected.
    assert_eq!(errcode(&api(&http, &auth_url(&emu, "x", "y")).await), 40014);
    emu.clear_faults();
    assert_eq!(errcode(&api(&http, &url).await), 40030);
}

#[actix_web::test]
async fn delay_fault_waits_then_answers() {
    let emu = Emulator::start().unwrap();
    let http = client();
    emu.inject_fault(
        Endpoint::UserInfo,
        Fault::Delay(Duration::from_millis(400)),
        Some(1),
    );
    let started = Instant::now();
    let v = api(
        &http,
        &format!("{}/sns/userinfo?access_token=x&openid=y", emu.api_base()),
    )
    .await;
    assert!(started.elapsed() >= Duration::from_millis(400));
    assert_eq!(errcode(&v), 40014);
    let started = Instant::now();
    api(
        &http,
        &format!("{}/sns/userinfo?access_token=x&openid=y", emu.api_base()),
    )
    .await;
    assert!(started.elapsed() < Duration::from_millis(400));
    assert_eq!(emu.calls()[0].answered, ErrCode(40014));
}

#[actix_web::test]
async fn stall_fault_sends_half_a_body_and_hangs() {
    let emu = Emulator::start().unwrap();
    let openid = emu.add_user(EmulatedUser::new("A"));
    let http = client();
    let code = code_for(&emu, &http, &openid, "snsapi_base").await;
    emu.inject_fault(Endpoint::AccessToken, Fault::StallBody, Some(1));
    let res = http
        .get(exchange_url(&emu, &code))
        .timeout(Duration::from_millis(800))
        .send()
        .await
        .expect("headers arrive");
    assert_eq!(res.status(), StatusCode::OK);
    let length: usize = res.headers()["content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(length > 100);
    let started = Instant::now();
    let err = res.text().await.expect_err("the body never completes");
    assert!(err.is_timeout(), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    // The exchange did happen (the answer was lost): the code is now used.
    assert_eq!(
        errcode(&api(&http, &exchange_url(&emu, &code)).await),
        40163
    );
    assert_eq!(emu.calls()[1].answered, Stalled);
    assert_eq!(emu.calls()[1].openid.as_deref(), Some(openid.as_str()));
    // Dropping the emulator does not wait for the stalled answer.
    let started = Instant::now();
    drop(emu);
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[actix_web::test]
async fn authorize_page_faults() {
    let emu = Emulator::start().unwrap();
    let http = client();
    let url = authorize_url(&emu, CALLBACK, "snsapi_base", "a");
    emu.inject_fault(Endpoint::Authorize, Fault::ErrCode(10009), Some(1));
    expect_page_error(&http, &url, 10009).await;
    emu.inject_fault(Endpoint::Authorize, Fault::Busy, Some(1));
    let res = http.get(&url).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(res.headers()["x-wechat-error"], "-1");
    emu.inject_fault(Endpoint::Authorize, Fault::HttpStatus(500), Some(1));
    let res = http.get(&url).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let res = http.get(&url).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::FOUND);
    let codes: Vec<Answered> = emu.calls().into_iter().map(|c| c.answered).collect();
    assert_eq!(
        codes,
        [ErrCode(10009), ErrCode(-1), HttpStatus(500), Answered::Ok]
    );
}

#[actix_web::test]
async fn snapshot_users_get_a_virtual_openid() {
    let emu = Emulator::start().unwrap();
    let http = client();
    let openid = emu.add_user(EmulatedUser::new("真名").snapshot());
    // No consent page for snapshot users, even without auto_approve.
    let token = sign_in(&emu, &http, &openid, "snsapi_userinfo").await;
    assert_eq!(token["is_snapshotuser"], 1);
    let virtual_openid = token["openid"].as_str().unwrap().to_owned();
    assert_ne!(virtual_openid, openid);
    assert_eq!(virtual_openid.len(), 28);
    assert!(token.get("unionid").is_none(), "{token}");
    // Stable per user.
    let again = sign_in(&emu, &http, &openid, "snsapi_base").await;
    assert_eq!(again["openid"], virtual_openid.as_str());
    assert_eq!(again["is_snapshotuser"], 1);
    // The profile is anonymous.
    let info = api(&http, &userinfo_url(&emu, &token, "zh_CN")).await;
    assert_eq!(info["openid"], virtual_openid.as_str());
    assert_eq!(info["nickname"], "微信用户");
    // Refresh keeps the flag.
    let refreshed = api(
        &http,
        &refresh_url(&emu, token["refresh_token"].as_str().unwrap()),
    )
    .await;
    assert_eq!(refreshed["is_snapshotuser"], 1);
    // A normal user has no flag.
    let normal = emu.add_user(EmulatedUser::new("B"));
    let t = sign_in(&emu, &http, &normal, "snsapi_base").await;
    assert!(t.get("is_snapshotuser").is_none());
}

#[actix_web::test]
async fn call_log_and_connection_counter() {
    let emu = Emulator::builder().auto_approve(true).start().unwrap();
    assert_eq!(emu.connections_accepted(), 0);
    let openid = emu.add_user(EmulatedUser::new("A"));
    let http = client();
    let before = std::time::SystemTime::now();
    let token = sign_in(&emu, &http, &openid, "snsapi_userinfo").await;
    api(&http, &userinfo_url(&emu, &token, "zh_CN")).await;
    api(
        &http,
        &auth_url(&emu, token["access_token"].as_str().unwrap(), &openid),
    )
    .await;
    api(
        &http,
        &refresh_url(&emu, token["refresh_token"].as_str().unwrap()),
    )
    .await;
    // One client with keep-alive: a single connection.
    assert_eq!(emu.connections_accepted(), 1);
    let calls = emu.calls();
    let endpoints: Vec<Endpoint> = calls.iter().map(|c| c.endpoint).collect();
    assert_eq!(
        endpoints,
        [
            Endpoint::Authorize,
            Endpoint::AccessToken,
            Endpoint::UserInfo,
            Endpoint::Auth,
            Endpoint::RefreshToken
        ]
    );
    assert!(calls
        .iter()
        .all(|c| c.answered == Answered::Ok && c.fault.is_none()));
    assert!(calls
        .iter()
        .all(|c| c.openid.as_deref() == Some(openid.as_str())));
    assert!(calls.windows(2).all(|w| w[0].at <= w[1].at));
    assert!(calls[0].at >= before);
    for e in [
        Endpoint::Authorize,
        Endpoint::AccessToken,
        Endpoint::RefreshToken,
        Endpoint::UserInfo,
        Endpoint::Auth,
    ] {
        assert_eq!(emu.call_count(e), 1, "{e:?}");
    }
    // New clients open new connections.
    api(&client(), &auth_url(&emu, "x", "y")).await;
    api(&client(), &auth_url(&emu, "x", "y")).await;
    assert_eq!(emu.connections_accepted(), 3);
    assert_eq!(emu.call_count(Endpoint::Auth), 3);

    emu.reset_calls();
    assert!(emu.calls().is_empty());
    assert_eq!(emu.call_count(Endpoint::Auth), 0);
}

#[actix_web::test]
async fn http_control_endpoints() {
    let emu = Emulator::start().unwrap();
    let http = client();
    let base = format!("{}/_emulator", emu.api_base());

    // Users.
    let res = http
        .post(format!("{base}/users"))
        .json(&serde_json::json!({"nickname":"远程用户","openid":"oRemote_1","sex":1}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v, serde_json::json!({"openid":"oRemote_1"}));
    assert_eq!(emu.user("oRemote_1").unwrap().nickname, "远程用户");
    let res = http
        .post(format!("{base}/users"))
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    let generated = res.json::<Value>().await.unwrap()["openid"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(generated.len(), 28);
    let bad = http
        .post(format!("{base}/users"))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let bad = http
        .post(format!("{base}/users"))
        .json(&serde_json::json!({"openid":"bad;id"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let users: Vec<EmulatedUser> = http
        .get(format!("{base}/users"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(users.len(), 2);
    assert_eq!(users[0].openid.as_deref(), Some("oRemote_1"));

    // Faults.
    let res = http
        .post(format!("{base}/faults"))
        .json(&serde_json::json!({"endpoint":"userinfo","fault":{"err_code":50001},"times":1}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = http
        .post(format!("{base}/faults"))
        .json(&serde_json::json!({"endpoint":"auth","fault":"busy"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = http
        .post(format!("{base}/faults"))
        .json(&serde_json::json!({"endpoint":"nowhere","fault":"busy"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let userinfo = format!("{}/sns/userinfo?access_token=x&openid=y", emu.api_base());
    assert_eq!(errcode(&api(&http, &userinfo).await), 50001);
    assert_eq!(errcode(&api(&http, &userinfo).await), 40014);
    assert_eq!(errcode(&api(&http, &auth_url(&emu, "x", "y")).await), -1);
    let res = http.delete(format!("{base}/faults")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(errcode(&api(&http, &auth_url(&emu, "x", "y")).await), 40014);

    // Calls and stats.
    let calls: Vec<Value> = http
        .get(format!("{base}/calls"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(calls.len(), 4);
    assert_eq!(calls[0]["endpoint"], "userinfo");
    assert_eq!(calls[0]["answered"]["err_code"], 50001);
    assert_eq!(calls[0]["fault"], serde_json::json!({"err_code":50001}));
    assert!(calls[0]["at"].as_u64().unwrap() > 1_600_000_000_000);
    let typed: Vec<Call> = serde_json::from_value(Value::Array(calls)).unwrap();
    let direct = emu.calls();
    assert_eq!(typed.len(), direct.len());
    for (t, d) in typed.iter().zip(&direct) {
        assert_eq!(
            (t.endpoint, &t.openid, &t.answered, &t.fault),
            (d.endpoint, &d.openid, &d.answered, &d.fault)
        );
        let skew = d.at.duration_since(t.at).expect("ms precision rounds down");
        assert!(skew < Duration::from_millis(1));
    }
    let stats: Value = http
        .get(format!("{base}/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["calls"]["userinfo"], 2);
    assert_eq!(stats["calls"]["auth"], 2);
    assert_eq!(stats["calls"]["access_token"], 0);
    assert_eq!(stats["users"], 2);
    assert_eq!(stats["connections"], emu.connections_accepted());
    assert!(emu.connections_accepted() >= 1);
    let res = http.delete(format!("{base}/calls")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(emu.calls().is_empty());

    // Expiry over HTTP.
    let openid = emu.add_user(EmulatedUser::new("A"));
    let token = sign_in(&emu, &http, &openid, "snsapi_base").await;
    let res = http
        .post(format!("{base}/expire-access-tokens"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        errcode(
            &api(
                &http,
                &auth_url(&emu, token["access_token"].as_str().unwrap(), &openid)
            )
            .await
        ),
        42001
    );
    http.post(format!("{base}/expire-refresh-tokens"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        errcode(
            &api(
                &http,
                &refresh_url(&emu, token["refresh_token"].as_str().unwrap())
            )
            .await
        ),
        42002
    );
}

#[actix_web::test]
async fn login_endpoint_sets_the_user_cookie() {
    let emu = Emulator::builder()
        .redirect_domain("app.example")
        .start()
        .unwrap();
    let openid = emu.add_user(EmulatedUser::new("登录用户"));
    let browser = Client::builder()
        .redirect(Policy::none())
        .cookie_store(true)
        .build()
        .unwrap();
    let res = browser
        .get(format!(
            "{}/_emulator/login?openid={openid}&next={}",
            emu.open_base(),
            enc("https://app.example/")
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FOUND);
    assert_eq!(location(&res), "https://app.example/");
    // Not an open redirect: other sites, protocol-relative and script URLs are refused.
    for next in [
        "https://evil.example/",
        "//evil.example/",
        "/\\evil.example",
        "javascript:alert(1)",
        "http://app.example.evil.example/",
    ] {
        let res = browser
            .get(format!(
                "{}/_emulator/login?openid={openid}&next={}",
                emu.open_base(),
                enc(next)
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{next}");
    }
    let res = browser
        .get(format!(
            "{}/_emulator/login?openid={openid}&next={}",
            emu.open_base(),
            enc("/connect/oauth2/authorize?x=1")
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FOUND);
    // The browser is now that user on the authorize page.
    let res = browser
        .get(authorize_url(&emu, CALLBACK, "snsapi_userinfo", "z"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.text().await.unwrap().contains("登录用户"));
    assert_eq!(emu.calls()[0].openid.as_deref(), Some(openid.as_str()));
}

#[actix_web::test]
async fn unknown_user_header_creates_that_user() {
    let emu = Emulator::builder().auto_approve(true).start().unwrap();
    let http = client();
    let token = sign_in(&emu, &http, "oLoadTest000001", "snsapi_userinfo").await;
    assert_eq!(token["openid"], "oLoadTest000001");
    assert!(emu.user("oLoadTest000001").is_some());
    let res = http
        .get(authorize_url(&emu, CALLBACK, "snsapi_base", "a"))
        .header("X-Emulator-User", "not valid!")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
}

#[test]
fn starts_from_sync_code_and_stops_on_drop() {
    let emu = Emulator::builder().workers(2).start().unwrap();
    let port = emu.port();
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
    drop(emu);
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
}

#[test]
fn handle_is_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Emulator>();
    let emu = std::sync::Arc::new(Emulator::start().unwrap());
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let emu = emu.clone();
            std::thread::spawn(move || emu.add_user(EmulatedUser::new(format!("user {i}"))))
        })
        .collect();
    for h in handles {
        let openid = h.join().unwrap();
        assert!(emu.user(&openid).is_some());
    }
}

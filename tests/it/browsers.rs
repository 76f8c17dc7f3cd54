//! Every visitor gets in: the sign-in flow per browser (a table of real user agents), the
//! Website app's QR sign-in end to end keeping one unionid with the Official Account's, the 401
//! JSON's flows, and the app's sign-in hook.

use crate::common::{query_pairs, sign_in, Browser, Hop, Setup, Shape};
use actix_wechat_auth::{
    emulator::{EmulatedUser, Emulator, Endpoint},
    SignInRefused, WeChatConfigBuilder,
};
use reqwest::StatusCode;

const WECHAT_IOS: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.47(0x18002f2c) NetType/WIFI Language/zh_CN";
const WECHAT_ANDROID: &str = "Mozilla/5.0 (Linux; Android 14; V2309A Build/UP1A.231005.007; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/116.0.0.0 Mobile Safari/537.36 XWEB/1160065 MMWEBSDK/20231202 MMWEBID/2247 MicroMessenger/8.0.47.2560(0x28002F30) WeChat/arm64 Weixin NetType/WIFI Language/zh_CN ABI/arm64";
const WECHAT_WINDOWS: &str = "Mozilla/5.0 (Windows NT 10.0; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/81.0.4044.138 Safari/537.36 NetType/WIFI MicroMessenger/7.0.20.1781(0x6700143B) WindowsWechat(0x63090a13) XWEB/9129 Flue";
const WECHAT_MAC: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) MicroMessenger/6.8.0(0x16080000) MacWechat/3.8.6(0x13080610) XWEB/1156 Flue";
const WECOM: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 wxwork/4.1.16 MicroMessenger/7.0.1 Language/zh ColorScheme/Light";
const CHROME_DESKTOP: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";
const SAFARI_MAC: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Safari/605.1.15";
const FIREFOX_DESKTOP: &str =
    "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0";
const CHROME_ANDROID: &str = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36";
const SAFARI_IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1";
const FIREFOX_ANDROID: &str =
    "Mozilla/5.0 (Android 14; Mobile; rv:121.0) Gecko/121.0 Firefox/121.0";

/// What a browser should be answered on an anonymous page.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    /// 302 to the Official Account's authorize page; `true`: with `connect_redirect=1`.
    Authorize(bool),
    /// 200: our page embedding WeChat's QR frame.
    QrPage,
    /// 200: open this link in WeChat.
    OpenInWeChat,
}

const TABLE: [(&str, &str, Expect, Expect); 11] = [
    // (name, user agent, with a Website app, without)
    (
        "WeChat iOS",
        WECHAT_IOS,
        Expect::Authorize(true),
        Expect::Authorize(true),
    ),
    (
        "WeChat Android",
        WECHAT_ANDROID,
        Expect::Authorize(true),
        Expect::Authorize(true),
    ),
    (
        "WeChat Windows",
        WECHAT_WINDOWS,
        Expect::Authorize(false),
        Expect::Authorize(false),
    ),
    (
        "WeChat Mac",
        WECHAT_MAC,
        Expect::Authorize(false),
        Expect::Authorize(false),
    ),
    ("WeCom", WECOM, Expect::OpenInWeChat, Expect::OpenInWeChat),
    (
        "Chrome desktop",
        CHROME_DESKTOP,
        Expect::QrPage,
        Expect::OpenInWeChat,
    ),
    (
        "Safari macOS",
        SAFARI_MAC,
        Expect::QrPage,
        Expect::OpenInWeChat,
    ),
    (
        "Firefox desktop",
        FIREFOX_DESKTOP,
        Expect::QrPage,
        Expect::OpenInWeChat,
    ),
    (
        "Chrome Android",
        CHROME_ANDROID,
        Expect::OpenInWeChat,
        Expect::OpenInWeChat,
    ),
    (
        "Safari iPhone",
        SAFARI_IPHONE,
        Expect::OpenInWeChat,
        Expect::OpenInWeChat,
    ),
    (
        "Firefox Android",
        FIREFOX_ANDROID,
        Expect::OpenInWeChat,
        Expect::OpenInWeChat,
    ),
];

fn with_website(emulator: &Emulator) -> impl FnOnce(WeChatConfigBuilder) -> WeChatConfigBuilder {
    let (appid, secret) = (
        emulator.web_appid().to_owned(),
        emulator.web_secret().to_owned(),
    );
    move |c| c.website_app(appid, secret)
}

fn website_setup() -> Setup {
    let emulator = Emulator::builder().auto_approve(true).start().unwrap();
    let tweak = with_website(&emulator);
    Setup::with_emulator(emulator, Shape::Routes, tweak)
}

/// Every `<a href>` of a page, entities decoded.
fn links(body: &str) -> Vec<String> {
    body.split("<a ")
        .skip(1)
        .filter_map(|a| a.split("href=\"").nth(1)?.split('"').next())
        .map(|href| html_escape::decode_html_entities(href).into_owned())
        .collect()
}

/// The full-page QR sign-in link of a page, checked for WeChat's exact parameters.
fn qrconnect_link(s: &Setup, body: &str) -> String {
    let qr: Vec<String> = links(body)
        .into_iter()
        .filter(|l| l.contains("/connect/qrconnect"))
        .collect();
    assert_eq!(qr.len(), 1, "one link to qrconnect: {body}");
    let link = qr[0].clone();
    assert!(
        link.starts_with(&format!("{}/connect/qrconnect?", s.emulator.open_base())),
        "{link}"
    );
    assert!(link.ends_with("#wechat_redirect"), "{link}");
    let names: Vec<String> = query_pairs(&link).into_iter().map(|(k, _)| k).collect();
    assert_eq!(
        names,
        ["appid", "redirect_uri", "response_type", "scope", "state"]
    );
    let params = query_pairs(&link);
    assert_eq!(params[0].1, s.emulator.web_appid());
    assert_eq!(params[1].1, s.url("/wechat/callback"));
    assert_eq!(params[3].1, "snsapi_login");
    link
}

fn check(s: &Setup, name: &str, hop: &Hop, expect: Expect, website: bool) {
    match expect {
        Expect::Authorize(connect_redirect) => {
            assert_eq!(hop.status, StatusCode::FOUND, "{name}");
            let location = hop.location.clone().unwrap();
            assert!(
                location.contains("/connect/oauth2/authorize?"),
                "{name}: {location}"
            );
            assert_eq!(
                location.contains("&connect_redirect=1"),
                connect_redirect,
                "{name}: {location}"
            );
        }
        Expect::QrPage => {
            assert_eq!(hop.status, StatusCode::OK, "{name}");
            assert!(hop.body.contains("<iframe"), "{name}");
            let frame = hop
                .body
                .split("src=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap();
            let frame = html_escape::decode_html_entities(frame);
            assert!(frame.contains("/connect/qrconnect?appid="), "{frame}");
            assert!(frame.contains("login_type=jssdk"), "{frame}");
            assert!(
                hop.body
                    .contains("sandbox=\"allow-scripts allow-same-origin allow-top-navigation\""),
                "{name}"
            );
            qrconnect_link(s, &hop.body);
        }
        Expect::OpenInWeChat => {
            assert_eq!(hop.status, StatusCode::OK, "{name}");
            assert!(hop.body.contains("<svg"), "{name}: an inline QR code");
            assert!(
                hop.body.contains(&*html_escape::encode_text(
                    reqwest::Url::parse(&s.url("/info?item=1&x=<y>"))
                        .unwrap()
                        .as_str()
                )),
                "{name}: the page's absolute URL, escaped: {}",
                hop.body
            );
            let qr = links(&hop.body)
                .into_iter()
                .filter(|l| l.contains("/connect/qrconnect"))
                .count();
            assert_eq!(qr, usize::from(website), "{name}");
            if website {
                qrconnect_link(s, &hop.body);
            }
            assert!(!hop.body.contains("/connect/oauth2/authorize"), "{name}");
        }
    }
    if hop.status == StatusCode::OK {
        assert_eq!(hop.headers["cache-control"], "no-store", "{name}");
        assert_eq!(hop.headers["vary"], "User-Agent", "{name}");
        assert!(hop.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
    }
}

#[actix_web::test]
async fn the_flow_for_each_browser() {
    let with = website_setup();
    let without = Setup::new(Shape::Routes, |c| c);
    for (name, ua, expect_with, expect_without) in TABLE {
        for (s, expect, website) in [
            (&with, expect_with, true),
            (&without, expect_without, false),
        ] {
            let hop = Browser::new()
                .get_with(&s.url("/info?item=1&x=<y>"), &[("user-agent", ua)])
                .await;
            check(s, name, &hop, expect, website);
        }
    }
}

#[actix_web::test]
async fn api_calls_get_the_flows_their_browser_can_use() {
    let s = website_setup();
    let api = |ua: &'static str| {
        let s = &s;
        async move {
            Browser::new()
                .get_with(&s.url("/api/me"), &[("user-agent", ua)])
                .await
                .json()
        }
    };
    let desktop = api(CHROME_DESKTOP).await;
    assert_eq!(desktop["error"], "sign_in_required");
    let website = desktop["flows"]["website"].as_str().unwrap();
    assert!(website.contains("/connect/qrconnect?"), "{desktop}");
    assert_eq!(desktop["authorize_url"], website);
    assert!(desktop["flows"].get("official_account").is_none());
    let wechat = api(WECHAT_IOS).await;
    assert!(wechat["flows"]["official_account"]
        .as_str()
        .unwrap()
        .contains("/connect/oauth2/authorize?"));
    let without = Setup::new(Shape::Routes, |c| c);
    let phone = Browser::new()
        .get_with(&without.url("/api/me"), &[("user-agent", SAFARI_IPHONE)])
        .await
        .json();
    assert_eq!(phone["error"], "sign_in_required");
    assert!(
        phone.get("flows").is_none() && phone.get("authorize_url").is_none(),
        "{phone}"
    );
}

/// A desktop browser signs in by scanning: the callback is the same `/wechat/callback`, and the
/// person keeps the unionid of their WeChat sign-in.
#[actix_web::test]
async fn a_desktop_sign_in_by_qr_keeps_the_unionid_of_the_wechat_sign_in() {
    let s = website_setup();
    let openid = s.emulator.add_user(EmulatedUser::new("扫码用户"));
    // In WeChat: the Official Account, snsapi_userinfo.
    let phone = Browser::new();
    let hop = phone.get(&s.url("/info")).await;
    let at_wechat = hop.location.unwrap().replace("#wechat_redirect", "");
    let hop = phone
        .get_with(&at_wechat, &[("x-emulator-user", openid.as_str())])
        .await;
    let in_wechat = phone
        .navigate(&hop.location.unwrap())
        .await
        .pop()
        .unwrap()
        .json();
    assert_eq!(in_wechat["openid"], openid.as_str());
    assert_eq!(in_wechat["app"], "official_account");
    let unionid = in_wechat["unionid"].as_str().unwrap().to_owned();

    // On a laptop: the QR page, then the same person's phone scans.
    let laptop = Browser::new();
    let desktop = [("user-agent", CHROME_DESKTOP)];
    let page = laptop.get_with(&s.url("/info?from=laptop"), &desktop).await;
    assert_eq!(page.status, StatusCode::OK);
    let qr = qrconnect_link(&s, &page.body);
    s.emulator.scan_as(Some(&openid));
    let qr_page = laptop
        .get_with(&qr.replace("#wechat_redirect", ""), &desktop)
        .await;
    assert_eq!(qr_page.status, StatusCode::OK, "{}", qr_page.body);
    let params = query_pairs(&qr);
    let confirm = reqwest::Url::parse_with_params(
        &format!("{}/connect/qrconnect/confirm", s.emulator.open_base()),
        [
            ("appid", params[0].1.as_str()),
            ("redirect_uri", params[1].1.as_str()),
            ("scope", "snsapi_login"),
            ("state", params[4].1.as_str()),
            ("action", "allow"),
        ],
    )
    .unwrap();
    let scanned = laptop.get_with(confirm.as_str(), &desktop).await;
    let callback = scanned.location.unwrap();
    assert!(
        callback.starts_with(&s.url("/wechat/callback?code=")),
        "{callback}"
    );
    let hops = laptop.navigate(&callback).await;
    assert_eq!(hops[0].location.as_deref(), Some("/info?from=laptop#"));
    let on_laptop = hops.last().unwrap().json();
    assert_eq!(on_laptop["app"], "website");
    assert_eq!(on_laptop["scope"], "snsapi_login");
    assert_eq!(
        on_laptop["openid"],
        s.emulator.website_openid(&openid).unwrap().as_str()
    );
    assert_ne!(
        on_laptop["openid"], in_wechat["openid"],
        "openids are per app"
    );
    assert_eq!(
        on_laptop["unionid"],
        unionid.as_str(),
        "one person, one unionid"
    );
    assert_eq!(on_laptop["nickname"], "扫码用户");
    // snsapi_login satisfies routes that need snsapi_base too; later upkeep uses the Website app.
    let base = laptop.get_with(&s.url("/base"), &desktop).await;
    assert_eq!(base.status, StatusCode::OK);
    assert_eq!(base.json()["openid"], on_laptop["openid"]);
    assert_eq!(s.emulator.call_count(Endpoint::QrConnect), 1);
}

#[actix_web::test]
async fn a_denied_qr_sign_in_gets_the_declined_page() {
    let s = website_setup();
    let laptop = Browser::new();
    let desktop = [("user-agent", CHROME_DESKTOP)];
    let page = laptop.get_with(&s.url("/info"), &desktop).await;
    let params = query_pairs(&qrconnect_link(&s, &page.body));
    let deny = s.url(&format!("/wechat/callback?state={}", params[4].1));
    let hop = laptop.get_with(&deny, &desktop).await;
    assert_eq!(hop.status, StatusCode::FORBIDDEN);
    assert!(hop.body.contains("你已拒绝微信授权"));
}

#[actix_web::test]
async fn the_sign_in_hook_refuses_and_attaches() {
    let emulator = Emulator::builder().auto_approve(true).start().unwrap();
    let banned = emulator.add_user(EmulatedUser::new("被拒绝的人"));
    let banned_in_hook = banned.clone();
    let s = Setup::with_emulator(emulator, Shape::Routes, move |c| {
        c.on_sign_in(move |user| {
            let refuse = user.openid() == banned_in_hook;
            async move {
                if refuse {
                    Err(SignInRefused::because("banned in the app"))
                } else {
                    Ok(Some(format!("member:{}", user.unionid().unwrap_or("none"))))
                }
            }
        })
    });
    let browser = Browser::new();
    let me = sign_in(&browser, &s.url("/info")).await.json();
    let unionid = me["unionid"].as_str().unwrap();
    assert_eq!(me["attached"], format!("member:{unionid}"));
    // Still there on the next request, from the session.
    let again = browser.get(&s.url("/api/me")).await.json();
    assert_eq!(again["attached"], format!("member:{unionid}"));

    let refused = Browser::new();
    let hop = refused.get(&s.url("/info")).await;
    let at_wechat = hop.location.unwrap().replace("#wechat_redirect", "");
    let hop = refused
        .get_with(&at_wechat, &[("x-emulator-user", banned.as_str())])
        .await;
    let end = refused
        .navigate(&hop.location.unwrap())
        .await
        .pop()
        .unwrap();
    assert_eq!(end.status, StatusCode::FORBIDDEN);
    assert!(
        end.body.contains("这个微信账号不能登录本网站"),
        "{}",
        end.body
    );
    assert!(refused.session(&s.app.base).get("wx").is_none());
}

/// The test kit users get (`actix_wechat_auth::testing`): one call signs a browser in, for both
/// scopes and both apps, through the app's real sign-in and the emulator's consent page.
#[actix_web::test]
async fn the_test_kit_signs_in_with_both_scopes_and_both_apps() {
    use actix_session::{storage::CookieSessionStore, SessionMiddleware};
    use actix_web::{cookie::Key, web, App, HttpResponse};
    use actix_wechat_auth::testing::{TestApp, TestClient};
    use actix_wechat_auth::{Scope, WeChatUser};

    // No auto-approval: the kit must get through the consent page itself.
    let emu = Emulator::start().unwrap();
    let openid = emu.add_user(EmulatedUser::new("测试者"));
    let key = Key::generate();
    let config = emu.config().website_app(emu.web_appid(), emu.web_secret());
    let app = TestApp::start(config, move |wechat| {
        let me = |user: WeChatUser| async move {
            HttpResponse::Ok().json(serde_json::json!({
                "openid": user.openid(),
                "scope": user.scope().as_str(),
                "app": user.app().as_str(),
                "nickname": user.profile().map(|p| p.nickname.clone()),
            }))
        };
        App::new()
            .service(
                web::resource("/base")
                    .wrap(wechat.require(Scope::Base))
                    .get(me),
            )
            .service(
                web::resource("/info")
                    .wrap(wechat.require(Scope::UserInfo))
                    .get(me),
            )
            .wrap(wechat.optional())
            .wrap(SessionMiddleware::new(
                CookieSessionStore::default(),
                key.clone(),
            ))
    });

    let phone = TestClient::wechat();
    assert_eq!(phone.get_json(&app.url("/base")).await.status, 401);
    phone.sign_in(&app.url("/base"), &openid).await;
    let base = phone.get_json(&app.url("/base")).await.json();
    assert_eq!(base["openid"], openid.as_str());
    assert_eq!(base["scope"], "snsapi_base");
    assert_eq!(base["nickname"], serde_json::Value::Null);
    // The stronger scope is a new sign-in, through the consent page.
    assert_eq!(phone.get_json(&app.url("/info")).await.status, 401);
    phone.sign_in(&app.url("/info"), &openid).await;
    let info = phone.get_json(&app.url("/info")).await.json();
    assert_eq!(info["scope"], "snsapi_userinfo");
    assert_eq!(info["nickname"], "测试者");
    assert_eq!(info["app"], "official_account");

    // A laptop signs in by QR code with the Website app: the same person, another openid.
    let laptop = TestClient::desktop();
    laptop.sign_in(&app.url("/info"), &openid).await;
    let web = laptop.get_json(&app.url("/info")).await.json();
    assert_eq!(web["app"], "website");
    assert_eq!(web["scope"], "snsapi_login");
    assert_eq!(web["openid"], emu.website_openid(&openid).unwrap().as_str());
    assert_eq!(web["nickname"], "测试者");
    // Each browser kept its own cookies.
    assert_eq!(
        phone.get_json(&app.url("/info")).await.json()["app"],
        "official_account"
    );
}

/// A handler unit test with a fake user: no server, no emulator; `Option<WeChatUser>` too.
#[actix_web::test]
async fn a_fake_user_is_extracted_in_unit_tests() {
    use actix_web::{test, web, App};
    use actix_wechat_auth::testing::FakeUser;
    use actix_wechat_auth::{AppKind, WeChatUser};

    async fn hello(user: Option<WeChatUser>) -> String {
        match user {
            Some(u) => format!("{} {:?} {}", u.openid(), u.unionid(), u.app().as_str()),
            None => "stranger".to_owned(),
        }
    }
    async fn strict(user: WeChatUser) -> String {
        user.openid().to_owned()
    }
    let app = test::init_service(
        App::new()
            .route("/", web::get().to(hello))
            .route("/strict", web::get().to(strict)),
    )
    .await;
    let req = test::TestRequest::get().uri("/").to_request();
    FakeUser::new("o_web")
        .unionid("u1")
        .app(AppKind::Website, "wxweb")
        .attach(&req);
    let body = test::call_and_read_body(&app, req).await;
    assert_eq!(body, "o_web Some(\"u1\") website");

    let req = test::TestRequest::get().uri("/").to_request();
    FakeUser::attach_anonymous(&req);
    assert_eq!(test::call_and_read_body(&app, req).await, "stranger");
    let req = test::TestRequest::get()
        .uri("/strict")
        .insert_header(("accept", "application/json"))
        .to_request();
    FakeUser::attach_anonymous(&req);
    let res = test::call_service(&app, req).await;
    assert_eq!(res.status(), 401);
}

//! The sample H5 site (`examples/h5.rs`) as a person uses it.
//!
//! - `h5_in_chromium`: Debian's headless Chromium, driven over WebDriver by `chromedriver`, goes
//!   through the real flow against a WeChat emulator started here: `/` → the emulator's consent
//!   page (on `localhost`, another site than the app on `127.0.0.1`, as with real WeChat) → Allow →
//!   the H5 page → the `/api/me` button → sign out → `/api/me` is 401 → `/quick` signs in silently
//!   with `snsapi_base` → a user with a hostile nickname sees it escaped. Screenshots of each step,
//!   at a phone's size (375×667 CSS pixels, 2× pixels), go to `target/browser-shots/`; with
//!   `UPDATE_SCREENSHOT=1` the H5 page is also written to `docs/h5.png`.
//! - The other tests need no browser: the example's own emulator mode (no `WECHAT_APPID`), the
//!   `SESSION_KEY` contract, and the settings it refuses.
//!
//! The example is built with `cargo build --example h5` (exactly what `cargo run --example h5`
//! runs) and started as a separate process, configured only through its environment.
//!
//! Chromium and chromedriver are required: `/usr/bin/chromium` and `/usr/bin/chromedriver`
//! (Debian's `chromium` and `chromium-driver`), or the paths in `CHROMIUM` and `CHROMEDRIVER`.
//! Without them `h5_in_chromium` fails; it never skips.

use std::{
    fs,
    future::Future,
    io::Read as _,
    os::unix::process::CommandExt as _,
    panic::AssertUnwindSafe,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    sync::OnceLock,
    thread,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use actix_wechat_auth::emulator::{EmulatedUser, Emulator, Endpoint, Fault};

use crate::common;
use fantoccini::{Client, ClientBuilder, Locator};
use futures_util::FutureExt as _;
use serde_json::{json, Value};

/// The User-Agent of WeChat's in-app browser on an iPhone.
const WECHAT_UA: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) \
    AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.47(0x18002f2c) \
    NetType/WIFI Language/zh_CN";

/// Chrome on an Android phone: outside WeChat.
const PHONE_UA: &str = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 \
    (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36";
/// Chrome on a laptop.
const DESKTOP_UA: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 \
    (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";

/// What Chromium pretends to be.
#[derive(Debug, Clone, Copy)]
enum Device {
    WeChatPhone,
    Phone,
    Desktop,
}

/// How long any one thing may take to happen (a page, a process, an element).
const PATIENCE: Duration = Duration::from_secs(20);

/// Variables the example reads; cleared before each start so that the caller's shell cannot leak in.
const SITE_VARS: [&str; 12] = [
    "BIND",
    "ALLOW_INSECURE_HTTP",
    "PUBLIC_URL",
    "WECHAT_APPID",
    "WECHAT_SECRET",
    "WECHAT_OPEN_BASE",
    "WECHAT_API_BASE",
    "WECHAT_CHECK_INTERVAL",
    "SESSION_KEY",
    "REDIS_URL",
    "RUST_LOG",
    "RUST_LOG_STYLE",
];

// ---------------------------------------------------------------------------------------------
// The browser tests
// ---------------------------------------------------------------------------------------------

/// Every browser signs in to the sample site: a laptop's Chromium scans the Website app's QR code
/// in WeChat's embedded frame and lands signed in with the unionid of the same person's WeChat
/// sign-in; a phone browser outside WeChat sees the open-in-WeChat page, whose QR code decodes to
/// the page's URL. With `UPDATE_SCREENSHOT=1` both pages are written to `docs/`.
#[actix_web::test]
async fn every_browser_in_chromium() {
    let (chromium, chromedriver) = browser_paths();
    let emu = Emulator::builder()
        .host_name("localhost")
        .appid("wxh5browsertest")
        .secret("h5-browser-test-secret")
        .start()
        .expect("start the WeChat emulator");
    let site = Site::start(
        "every-browser",
        &[
            ("WECHAT_APPID", emu.appid().to_owned()),
            ("WECHAT_SECRET", emu.secret().to_owned()),
            ("WECHAT_WEB_APPID", emu.web_appid().to_owned()),
            ("WECHAT_WEB_SECRET", emu.web_secret().to_owned()),
            ("WECHAT_OPEN_BASE", emu.open_base()),
            ("WECHAT_API_BASE", emu.api_base()),
        ],
    );
    // The person signs in inside WeChat first (over HTTP, WeChat's User-Agent).
    let phone_in_wechat = http_client();
    sign_in_over_http(&phone_in_wechat, &site.url).await;
    let me: Value = phone_in_wechat
        .get(format!("{}/api/me", site.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (openid, unionid) = (
        me["openid"].as_str().unwrap(),
        me["unionid"].as_str().unwrap(),
    );
    emu.scan_as(Some(openid));

    let driver = ChromeDriver::start(&chromedriver);
    let laptop = driver.connect_as(&chromium, Device::Desktop).await;
    let outcome = AssertUnwindSafe(laptop_flow(&laptop, &emu, &site, openid, unionid))
        .catch_unwind()
        .await;
    let _ = laptop.close().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
    let phone = driver.connect_as(&chromium, Device::Phone).await;
    let outcome = AssertUnwindSafe(phone_flow(&phone, &site))
        .catch_unwind()
        .await;
    let _ = phone.close().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

async fn laptop_flow(browser: &Client, emu: &Emulator, site: &Site, openid: &str, unionid: &str) {
    let shots = Shots::new();
    browser.goto(&format!("{}/", site.url)).await.unwrap();
    // Our page (under the site's X-Frame-Options: DENY) embeds WeChat's frame.
    wait_for(browser, "iframe#qr-frame").await;
    let title = browser.title().await.unwrap();
    assert_eq!(title, "微信扫码登录");
    eventually(browser, "the QR frame's content", |b| async move {
        b.clone().enter_frame(0).await.ok()?;
        let found = b.find(Locator::Id("scan")).await.is_ok();
        b.clone().enter_parent_frame().await.ok()?;
        found.then_some(())
    })
    .await;
    shots.take(browser, "qr-sign-in").await;
    if std::env::var_os("UPDATE_SCREENSHOT").is_some_and(|v| v == "1") {
        shots.copy(
            "qr-sign-in",
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/qr-sign-in.png"),
        );
    }
    // The phone "scans": the frame moves the top window to the callback.
    browser.clone().enter_frame(0).await.unwrap();
    browser
        .find(Locator::Id("scan"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser.clone().enter_parent_frame().await.ok();
    wait_for(browser, "#unionid").await;
    assert_eq!(
        text_of(browser, "#unionid").await,
        unionid,
        "one person, one unionid"
    );
    let web_openid = emu.website_openid(openid).unwrap();
    assert_eq!(text_of(browser, "#openid").await, web_openid);
    assert_ne!(web_openid, openid);
    let url = browser.current_url().await.unwrap();
    assert_eq!(url.as_str(), format!("{}/#", site.url));
}

/// The QR codes found in a screenshot (PNG of whatever colour type Chromium wrote), each decoded
/// or why not.
fn qr_codes(png: &[u8]) -> Vec<Result<String, rqrr::DeQRError>> {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(png));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let frame = reader.next_frame(&mut pixels).unwrap();
    let channels = frame.color_type.samples();
    let width = frame.width as usize;
    let luma = |x: usize, y: usize| {
        let px = &pixels[(y * width + x) * channels..][..channels];
        match px {
            [r, g, b, ..] => {
                ((u32::from(*r) * 299 + u32::from(*g) * 587 + u32::from(*b) * 114) / 1000) as u8
            }
            [l, ..] => *l,
            [] => 0,
        }
    };
    let mut prepared =
        rqrr::PreparedImage::prepare_from_greyscale(width, frame.height as usize, luma);
    let grids = prepared.detect_grids();
    grids
        .iter()
        .map(|g| g.decode().map(|(_, text)| text))
        .collect()
}

async fn phone_flow(browser: &Client, site: &Site) {
    let shots = Shots::new();
    let page = format!("{}/quick?from=a-shared-link", site.url);
    browser.goto(&page).await.unwrap();
    wait_for(browser, "#page-qr svg").await;
    assert_eq!(text_of(browser, "#page-url").await, page);
    shots.take(browser, "open-in-wechat").await;
    let png = fs::read(shots.dir.join("open-in-wechat.png")).unwrap();
    let codes = qr_codes(&png);
    assert_eq!(codes.len(), 1, "one QR code on the page");
    let decoded = codes[0].as_ref().expect("the QR code decodes");
    assert_eq!(decoded, &page, "the QR code is the page's own URL");
    if std::env::var_os("UPDATE_SCREENSHOT").is_some_and(|v| v == "1") {
        shots.copy(
            "open-in-wechat",
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/open-in-wechat.png"),
        );
    }
}

/// The crate's own pages in Chromium, as a WeChat user in China sees them: an SPA's `#hash`
/// route kept through the sign-in, then the pages of a sign-in that cannot go on. With
/// `UPDATE_SCREENSHOT=1` three of them are written to `docs/`.
#[actix_web::test]
async fn pages_in_chromium() {
    let (chromium, chromedriver) = browser_paths();
    let emu = Emulator::builder()
        .host_name("localhost")
        .auto_approve(true)
        .start()
        .expect("start the WeChat emulator");
    let app = common::Setup::with_emulator(emu, common::Shape::Routes, |c| {
        c.keep_hash_route_on("/info")
    });
    let driver = ChromeDriver::start(&chromedriver);
    let browser = driver.connect(&chromium).await;
    let outcome = AssertUnwindSafe(pages_flow(&browser, &app))
        .catch_unwind()
        .await;
    let _ = browser.close().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

async fn pages_flow(browser: &Client, app: &common::Setup) {
    let shots = Shots::new();
    let update = std::env::var_os("UPDATE_SCREENSHOT").is_some_and(|v| v == "1");
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs");

    // 1. An SPA's route: an anonymous visit to /info#/orders/12 lands back on it after WeChat.
    browser
        .goto(&app.url("/info#/orders/12"))
        .await
        .expect("open the hash route");
    let landed = eventually(browser, "the page after the sign-in", |b| async move {
        let url = b.current_url().await.ok()?;
        (url.path() == "/info" && !b.source().await.ok()?.contains("location.hash")).then_some(url)
    })
    .await;
    assert_eq!(landed.fragment(), Some("/orders/12"), "{landed}");
    let body = browser
        .execute("return document.body.innerText;", vec![])
        .await
        .unwrap();
    let me: Value = serde_json::from_str(body.as_str().unwrap()).expect("the page's JSON");
    assert_eq!(me["scope"], "snsapi_userinfo");

    // 2. A lost state after the one restart: the page with its button.
    browser
        .goto(&app.url("/wechat/callback?code=x&state=LostInTheWebview&wxr=1"))
        .await
        .unwrap();
    page_shot(browser, &shots, "page-state-lost", "重新登录").await;
    if update {
        shots.copy("page-state-lost", &docs.join("page-state-lost.png"));
    }

    // 3. The snapshot page: a user who only saw WeChat's preview, in a fresh browser session.
    let snapshot = app
        .emulator
        .add_user(EmulatedUser::new("快照用户").snapshot());
    sign_in_as(browser, app, &snapshot, "/info").await;
    page_shot(browser, &shots, "page-snapshot", "使用完整服务").await;
    if update {
        shots.copy("page-snapshot", &docs.join("page-snapshot.png"));
    }

    // 4. WeChat busy during the code exchange.
    app.emulator
        .inject_fault(Endpoint::AccessToken, Fault::Busy, None);
    let other = app.emulator.add_user(EmulatedUser::new("另一个用户"));
    sign_in_as(browser, app, &other, "/base").await;
    page_shot(browser, &shots, "page-wechat-busy", "微信系统繁忙").await;
    if update {
        shots.copy("page-wechat-busy", &docs.join("page-wechat-busy.png"));
    }
    app.emulator.clear_faults();
}

/// Forgets the app's cookies, makes `openid` the emulator's WeChat user, and opens `path`.
async fn sign_in_as(browser: &Client, app: &common::Setup, openid: &str, path: &str) {
    browser.goto(&app.url("/healthz")).await.unwrap();
    browser.delete_all_cookies().await.unwrap();
    let login = url::Url::parse_with_params(
        &format!("{}/_emulator/login", app.emulator.open_base()),
        [("openid", openid), ("next", &app.url(path))],
    )
    .unwrap();
    browser.goto(login.as_str()).await.unwrap();
}

/// Waits for the crate's page holding `sentence`, checks its language, and takes its picture.
async fn page_shot(browser: &Client, shots: &Shots, name: &str, sentence: &str) {
    wait_for(browser, "main.msg h1").await;
    let (lang, text) = eventually(browser, sentence, |b| async move {
        let got = b
            .execute(
                "return [document.documentElement.lang, document.body.innerText];",
                vec![],
            )
            .await
            .ok()?;
        let text = got[1].as_str()?.to_owned();
        text.contains(sentence)
            .then(|| (got[0].as_str().unwrap_or_default().to_owned(), text))
    })
    .await;
    assert_eq!(lang, "zh-CN", "{text}");
    shots.take(browser, name).await;
}

#[actix_web::test]
async fn h5_in_chromium() {
    let (chromium, chromedriver) = browser_paths();
    let emu = Emulator::builder()
        .host_name("localhost")
        .appid("wxh5browsertest")
        .secret("h5-browser-test-secret")
        .start()
        .expect("start the WeChat emulator");
    let site = Site::start(
        "browser",
        &[
            ("WECHAT_APPID", emu.appid().to_owned()),
            ("WECHAT_SECRET", emu.secret().to_owned()),
            ("WECHAT_OPEN_BASE", emu.open_base()),
            ("WECHAT_API_BASE", emu.api_base()),
            ("WECHAT_CHECK_INTERVAL", "0".to_owned()),
        ],
    );
    assert!(
        site.url.starts_with("http://127.0.0.1:"),
        "the site must be on 127.0.0.1: {}",
        site.url
    );
    let driver = ChromeDriver::start(&chromedriver);
    let browser = driver.connect(&chromium).await;

    // Whatever happens in the flow, end the WebDriver session (it quits Chromium); the guards then
    // stop chromedriver and the site.
    let outcome = AssertUnwindSafe(flow(&browser, &emu, &site))
        .catch_unwind()
        .await;
    let _ = browser.close().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// The sample site as a person walks through it, phase by phase.
async fn flow(browser: &Client, emu: &Emulator, site: &Site) {
    let walk = Walk {
        browser,
        emu,
        site,
        shots: Shots::new(),
        root: format!("{}/", site.url),
    };
    let (openid, user) = walk.consent().await;
    let unionid = walk.allow(&openid, &user).await;
    walk.call_api(&openid, &unionid, &user).await;
    walk.sign_out().await;
    walk.quick(&openid).await;
    walk.hostile_nickname().await;
}

/// What the phases of the walk share: the browser, WeChat, the site, its screenshots.
struct Walk<'a> {
    browser: &'a Client,
    emu: &'a Emulator,
    site: &'a Site,
    shots: Shots,
    root: String,
}

impl Walk<'_> {
    /// 1. A person opens the site; returns who WeChat says they are.
    async fn consent(&self) -> (String, EmulatedUser) {
        let Walk {
            browser,
            emu,
            site,
            shots,
            root,
        } = self;
        // WeChat (the emulator, another site) asks for consent.
        browser.goto(root).await.expect("open /");
        wait_for(browser, "#allow").await;
        let consent_url = browser.current_url().await.unwrap();
        assert_eq!(
            consent_url.origin().ascii_serialization(),
            emu.open_base(),
            "the consent page is the emulator's: {consent_url}"
        );
        assert_eq!(consent_url.path(), "/connect/oauth2/authorize");
        let query: Vec<(String, String)> = consent_url.query_pairs().into_owned().collect();
        assert!(
            query.contains(&("scope".into(), "snsapi_userinfo".into())),
            "{consent_url}"
        );
        assert!(
            query.contains(&(
                "redirect_uri".into(),
                format!("{}/wechat/callback", site.url)
            )),
            "{consent_url}"
        );
        let openid = browser
            .find(Locator::Css("input[name=openid]"))
            .await
            .expect("the consent form names the WeChat user")
            .attr("value")
            .await
            .unwrap()
            .expect("openid value");
        let user = emu
            .user(&openid)
            .expect("the emulator created a WeChat user for this browser");
        assert_eq!(text_of(browser, "#nickname").await, user.nickname);
        shots.take(browser, "01-consent").await;
        (openid, user)
    }

    /// 2. They allow, and land on the site signed in; returns their unionid.
    async fn allow(&self, openid: &str, user: &EmulatedUser) -> String {
        let Walk {
            browser,
            emu,
            shots,
            root,
            ..
        } = self;
        // back on the site (a cross-site redirect to the callback), signed in.
        browser
            .find(Locator::Css("#allow"))
            .await
            .expect("the Allow button")
            .click()
            .await
            .expect("click Allow");
        wait_for(browser, "#call-api").await;
        assert_eq!(page_url(browser).await, *root);
        assert_eq!(text_of(browser, "#nickname").await, user.nickname);
        assert_eq!(text_of(browser, "#openid").await, openid);
        assert_eq!(text_of(browser, "#scope").await, "snsapi_userinfo");
        let unionid = text_of(browser, "#unionid").await;
        assert!(
            unionid.starts_with('o') && unionid.len() > 10,
            "unionid {unionid:?}"
        );
        assert_eq!(
            browser
                .find(Locator::Css("#avatar"))
                .await
                .unwrap()
                .attr("src")
                .await
                .unwrap()
                .as_deref(),
            Some(user.headimgurl.as_str())
        );
        eventually(browser, "the avatar is loaded", |b| async move {
            let loaded = b
                .execute(
                    "const img = document.getElementById('avatar'); \
                     return img.complete && img.naturalWidth > 0;",
                    vec![],
                )
                .await
                .ok()?;
            (loaded == json!(true)).then_some(())
        })
        .await;
        // The viewport is a phone's, the User-Agent WeChat's.
        let viewport = browser
            .execute("return [window.innerWidth, navigator.userAgent];", vec![])
            .await
            .unwrap();
        assert_eq!(viewport, json!([375, WECHAT_UA]));
        shots.take(browser, "02-h5").await;
        assert_eq!(emu.call_count(Endpoint::Authorize), 1, "{:?}", emu.calls());
        assert_eq!(
            emu.call_count(Endpoint::AccessToken),
            1,
            "{:?}",
            emu.calls()
        );
        assert_eq!(emu.call_count(Endpoint::UserInfo), 1, "{:?}", emu.calls());
        unionid
    }

    /// 3. The page's button calls the API.
    async fn call_api(&self, openid: &str, unionid: &str, user: &EmulatedUser) {
        let Walk {
            browser,
            emu,
            shots,
            ..
        } = self;
        // The button calls /api/me with fetch and shows the answer.
        let checks_before = emu.call_count(Endpoint::Auth);
        browser
            .find(Locator::Css("#call-api"))
            .await
            .unwrap()
            .click()
            .await
            .expect("press the /api/me button");
        let answer = eventually(browser, "the /api/me answer", |b| async move {
            let shown = b
                .execute(
                    "const pre = document.getElementById('api-json'); \
                     return pre.hidden ? null : pre.textContent;",
                    vec![],
                )
                .await
                .ok()?;
            shown.as_str().map(str::to_owned)
        })
        .await;
        let me: Value = serde_json::from_str(&answer).expect("the page shows JSON");
        assert_eq!(me["openid"], openid);
        assert_eq!(me["unionid"], unionid);
        assert_eq!(me["nickname"], user.nickname.as_str());
        assert_eq!(me["headimgurl"], user.headimgurl.as_str());
        assert_eq!(me["scope"], "snsapi_userinfo");
        assert_eq!(me["sex"], 0);
        assert_eq!(me["privilege"], json!([]));
        for field in ["province", "city", "country"] {
            assert_eq!(me[field], "", "{field}");
        }
        assert_eq!(
            browser
                .find(Locator::Css("#api-status"))
                .await
                .unwrap()
                .attr("data-status")
                .await
                .unwrap()
                .as_deref(),
            Some("200")
        );
        // WECHAT_CHECK_INTERVAL=0: the token is checked with /sns/auth on every request.
        assert!(
            emu.call_count(Endpoint::Auth) > checks_before,
            "no /sns/auth check for /api/me: {:?}",
            emu.calls()
        );
        // Tap something neutral first, so that the button is not caught looking pressed.
        browser
            .find(Locator::Css("#api-status"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        shots.take(browser, "03-api-me").await;
        // The README's picture: the H5 page with the answer of /api/me.
        if std::env::var_os("UPDATE_SCREENSHOT").is_some_and(|v| v == "1") {
            shots.copy(
                "03-api-me",
                &Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/h5.png"),
            );
        }
    }

    /// 4. They sign out.
    async fn sign_out(&self) {
        let Walk {
            browser,
            emu,
            site,
            shots,
            ..
        } = self;
        // a public page that says so; /api/me is now a 401 JSON, not a redirect.
        browser
            .find(Locator::Id("logout"))
            .await
            .unwrap()
            .click()
            .await
            .expect("click Sign out");
        wait_for(browser, "#signed-out").await;
        assert_eq!(page_url(browser).await, format!("{}/logout", site.url));
        shots.take(browser, "04-signed-out").await;
        let api = fetch_me(browser).await;
        assert_eq!(api["status"], 401, "{api}");
        assert_eq!(api["redirected"], false, "{api}");
        assert_eq!(api["body"]["error"], "sign_in_required", "{api}");
        assert!(
            api["body"]["authorize_url"]
                .as_str()
                .is_some_and(|u| u.starts_with(&emu.open_base())),
            "{api}"
        );
    }

    /// 5. A page needing only the base scope signs them in silently.
    async fn quick(&self, openid: &str) {
        let Walk {
            browser,
            emu,
            site,
            shots,
            ..
        } = self;
        // /quick needs only snsapi_base: WeChat signs the same user in silently, no consent page.
        let authorize_before = emu.call_count(Endpoint::Authorize);
        browser
            .goto(&format!("{}/quick", site.url))
            .await
            .expect("open /quick");
        wait_for(browser, "#openid").await;
        assert_eq!(page_url(browser).await, format!("{}/quick", site.url));
        assert_eq!(text_of(browser, "#openid").await, openid);
        assert_eq!(text_of(browser, "#scope").await, "snsapi_base");
        assert_eq!(emu.call_count(Endpoint::Authorize), authorize_before + 1);
        assert_eq!(
            emu.call_count(Endpoint::UserInfo),
            1,
            "snsapi_base reads no profile"
        );
        shots.take(browser, "05-quick").await;
    }

    /// 6. Another WeChat user, with a hostile nickname.
    async fn hostile_nickname(&self) {
        let Walk {
            browser,
            emu,
            site,
            shots,
            root,
        } = self;
        // Another WeChat user, whose nickname is HTML: shown as text, never as markup.
        let hostile = r#"<img src=x onerror="document.title='pwned'"> & "小明" </h1>🐼"#;
        let other = emu.add_user(EmulatedUser::new(hostile).with_openid("oHostileNickname"));
        let login = url::Url::parse_with_params(
            &format!("{}/_emulator/login", emu.open_base()),
            [
                ("openid", other.as_str()),
                ("next", &format!("{}/logout", site.url)),
            ],
        )
        .unwrap();
        browser
            .goto(login.as_str())
            .await
            .expect("switch WeChat user");
        wait_for(browser, "#signed-out").await;
        browser.goto(root).await.expect("open / as the other user");
        wait_for(browser, "#allow")
            .await
            .click()
            .await
            .expect("click Allow");
        wait_for(browser, "#call-api").await;
        assert_eq!(text_of(browser, "#nickname").await, hostile);
        assert_eq!(text_of(browser, "#openid").await, other);
        let markup = browser
            .execute(
                "return [document.querySelectorAll('#nickname *').length, document.title];",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(markup, json!([0, "我的 · WeChat H5"]));
        shots.take(browser, "06-escaped-nickname").await;
    }
}

/// The page's URL, without its (empty) fragment. A redirect without a fragment keeps the one of
/// the URL it came from, so without the callback's explicit empty fragment the page would show
/// the authorize URL's `#wechat_redirect`.
async fn page_url(browser: &Client) -> String {
    let mut url = browser.current_url().await.expect("the current URL");
    assert!(
        url.fragment().is_none_or(str::is_empty),
        "a fragment followed the browser to {url}"
    );
    url.set_fragment(None);
    url.into()
}

/// `fetch('/api/me')` from the page, as the page's own script does.
async fn fetch_me(browser: &Client) -> Value {
    browser
        .execute_async(
            "const done = arguments[arguments.length - 1]; \
             fetch('/api/me', { headers: { Accept: 'application/json' }, redirect: 'manual' }) \
               .then(async (r) => done({ status: r.status, redirected: r.redirected, \
                                         body: await r.json() })) \
               .catch((e) => done({ error: String(e) }));",
            vec![],
        )
        .await
        .expect("fetch /api/me")
}

async fn wait_for(browser: &Client, css: &str) -> fantoccini::elements::Element {
    match browser
        .wait()
        .at_most(PATIENCE)
        .for_element(Locator::Css(css))
        .await
    {
        Ok(element) => element,
        Err(e) => {
            let url = browser
                .current_url()
                .await
                .map(String::from)
                .unwrap_or_default();
            let source = browser.source().await.unwrap_or_default();
            panic!("{css} did not appear on {url}: {e}\n{source}");
        }
    }
}

/// The element's `textContent`, exactly.
async fn text_of(browser: &Client, css: &str) -> String {
    wait_for(browser, css).await;
    let text = browser
        .execute(
            "return document.querySelector(arguments[0]).textContent;",
            vec![json!(css)],
        )
        .await
        .unwrap_or_else(|e| panic!("read {css}: {e}"));
    text.as_str().unwrap_or_default().to_owned()
}

/// Polls `probe` until it yields a value, for at most [`PATIENCE`].
async fn eventually<'a, T, F, Fut>(browser: &'a Client, what: &str, probe: F) -> T
where
    F: Fn(&'a Client) -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(value) = probe(browser).await {
            return value;
        }
        if Instant::now() > deadline {
            let source = browser.source().await.unwrap_or_default();
            panic!("timed out waiting for {what}\n{source}");
        }
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Where screenshots go: `target/browser-shots/`.
struct Shots {
    dir: PathBuf,
}

impl Shots {
    fn new() -> Self {
        let dir = target_dir().join("browser-shots");
        fs::create_dir_all(&dir).expect("create target/browser-shots");
        Shots { dir }
    }

    async fn take(&self, browser: &Client, name: &str) {
        let png = browser.screenshot().await.expect("screenshot");
        assert!(png.starts_with(b"\x89PNG"), "a screenshot is a PNG");
        fs::write(self.dir.join(format!("{name}.png")), png).expect("write the screenshot");
    }

    fn copy(&self, name: &str, to: &Path) {
        fs::create_dir_all(to.parent().unwrap()).unwrap();
        fs::copy(self.dir.join(format!("{name}.png")), to).expect("copy the screenshot");
        eprintln!("updated {}", to.display());
    }
}

fn browser_paths() -> (PathBuf, PathBuf) {
    let path = |var: &str, default: &str| {
        std::env::var_os(var).map_or_else(|| PathBuf::from(default), PathBuf::from)
    };
    let chromium = path("CHROMIUM", "/usr/bin/chromium");
    let chromedriver = path("CHROMEDRIVER", "/usr/bin/chromedriver");
    for (what, file, var) in [
        ("Chromium", &chromium, "CHROMIUM"),
        ("chromedriver", &chromedriver, "CHROMEDRIVER"),
    ] {
        assert!(
            file.is_file(),
            "{what} not found at {}: this test needs a real browser. Install Debian's `chromium` \
             and `chromium-driver` (apt-get install -y chromium chromium-driver) or set {var} to \
             its path.",
            file.display()
        );
    }
    (chromium, chromedriver)
}

/// A chromedriver on a free port, in its own process group with the Chromium it starts. Dropping
/// it ends the whole group and removes the browser profile.
struct ChromeDriver {
    child: Child,
    port: u16,
    log: PathBuf,
    profile: PathBuf,
}

impl ChromeDriver {
    fn start(binary: &Path) -> Self {
        let unique = unique_name("chromedriver");
        let log = target_dir()
            .join("browser-shots")
            .join(format!("{unique}.log"));
        fs::create_dir_all(log.parent().unwrap()).unwrap();
        let out = fs::File::create(&log).expect("create the chromedriver log");
        let child = Command::new(binary)
            .arg("--port=0")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", binary.display()));
        let mut driver = ChromeDriver {
            child,
            port: 0,
            profile: std::env::temp_dir().join(unique),
            log,
        };
        let line = wait_for_line(
            &mut driver.child,
            &driver.log,
            "started successfully on port ",
        );
        driver.port = line
            .rsplit(' ')
            .next()
            .and_then(|p| p.trim_end_matches('.').parse().ok())
            .unwrap_or_else(|| panic!("no port in {line:?}"));
        driver
    }

    async fn connect(&self, chromium: &Path) -> Client {
        self.connect_as(chromium, Device::WeChatPhone).await
    }

    async fn connect_as(&self, chromium: &Path, device: Device) -> Client {
        let profile = self.profile.join(format!("{device:?}"));
        fs::create_dir_all(&profile).unwrap();
        let (ua, width, height, mobile) = match device {
            Device::WeChatPhone => (WECHAT_UA, 375, 667, true),
            Device::Phone => (PHONE_UA, 375, 667, true),
            Device::Desktop => (DESKTOP_UA, 1024, 768, false),
        };
        let mut capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--disable-quic",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--hide-scrollbars",
                    format!("--window-size={width},{height}"),
                    format!("--user-agent={ua}"),
                    "--lang=zh-CN",
                    format!("--user-data-dir={}", profile.display()),
                ],
                // A WeChat user in mainland China: the crate's pages come in Simplified Chinese.
                "prefs": { "intl.accept_languages": "zh-CN,zh" },
            },
        });
        if mobile {
            capabilities["goog:chromeOptions"]["mobileEmulation"] = json!({
                "deviceMetrics": { "width": width, "height": height, "pixelRatio": 2.0, "touch": true },
                "userAgent": ua,
            });
        }
        let Value::Object(capabilities) = capabilities else {
            unreachable!()
        };
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start Chromium through chromedriver: {e}\n{}",
                    fs::read_to_string(&self.log).unwrap_or_default()
                )
            })
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        // The group holds chromedriver and the browser it started (if the session did not end).
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.profile);
    }
}

// ---------------------------------------------------------------------------------------------
// Without a browser
// ---------------------------------------------------------------------------------------------

/// No `WECHAT_APPID`: the example starts its own emulator on `localhost`, and a whole sign-in
/// works from the URL it prints.
#[actix_web::test]
async fn h5_runs_its_own_emulator_without_credentials() {
    let site = Site::start("own-emulator", &[]);
    let log = site.log_text();
    assert!(log.contains("embedded emulator"), "{log}");
    let http = http_client();

    let health = http
        .get(format!("{}/healthz", site.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(health.text().await.unwrap(), "ok");

    // Pages go to the emulator's authorize page on localhost, with WeChat's parameter order.
    let res = http.get(format!("{}/", site.url)).send().await.unwrap();
    assert_eq!(res.status(), 302);
    let authorize = location(&res);
    let expected = format!(
        "/connect/oauth2/authorize?appid=wx0123456789emu&redirect_uri={}&response_type=code\
         &scope=snsapi_userinfo&state=",
        url::form_urlencoded::byte_serialize(format!("{}/wechat/callback", site.url).as_bytes())
            .collect::<String>()
    );
    assert!(authorize.starts_with("http://localhost:"), "{authorize}");
    assert!(
        authorize.contains(&expected),
        "{authorize}\nexpected {expected}"
    );
    assert!(
        authorize.ends_with("&connect_redirect=1#wechat_redirect"),
        "{authorize}"
    );

    // An anonymous API call is a 401 JSON, never a redirect.
    let res = http_client()
        .get(format!("{}/api/me", site.url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert!(res.headers().get("location").is_none());
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "sign_in_required");

    // /quick asks only for snsapi_base.
    let res = http_client()
        .get(format!("{}/quick", site.url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 302);
    assert!(location(&res).contains("&scope=snsapi_base&"));

    // A whole sign-in through the example's emulator.
    let page = sign_in_over_http(&http, &site.url).await;
    assert!(page.contains("测试用户"), "{page}");
    let me: Value = http
        .get(format!("{}/api/me", site.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["scope"], "snsapi_userinfo");
    assert!(
        me["nickname"].as_str().unwrap().starts_with("测试用户"),
        "{me}"
    );
    let mut fields: Vec<&str> = me.as_object().unwrap().keys().map(String::as_str).collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        [
            "city",
            "country",
            "headimgurl",
            "nickname",
            "openid",
            "privilege",
            "province",
            "scope",
            "sex",
            "unionid"
        ]
    );

    // Signing out is public and sticks.
    let res = http
        .get(format!("{}/logout", site.url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = http
        .get(format!("{}/api/me", site.url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
}

/// A fixed `SESSION_KEY` keeps sessions across restarts; without it every start has a new key.
#[actix_web::test]
async fn session_key_keeps_sessions_across_restarts() {
    let emu = Emulator::builder()
        .host_name("localhost")
        .start()
        .expect("start the WeChat emulator");
    let key: String = (0..64)
        .map(|i| format!("{:02x}", (i * 37 + 11) % 256))
        .collect();
    let settings = |key: Option<&str>| {
        let mut vars = vec![
            ("WECHAT_APPID", emu.appid().to_owned()),
            ("WECHAT_SECRET", emu.secret().to_owned()),
            ("WECHAT_OPEN_BASE", emu.open_base()),
            ("WECHAT_API_BASE", emu.api_base()),
        ];
        if let Some(key) = key {
            vars.push(("SESSION_KEY", key.to_owned()));
        }
        vars
    };
    let http = http_client();

    let first = Site::start("session-key-1", &settings(Some(&key)));
    sign_in_over_http(&http, &first.url).await;
    let me = |site: String| {
        let http = http.clone();
        async move { http.get(format!("{site}/api/me")).send().await.unwrap() }
    };
    assert_eq!(me(first.url.clone()).await.status(), 200);
    drop(first);

    // The same key (upper case this time): still signed in. Cookies do not care about the port.
    let second = Site::start("session-key-2", &settings(Some(&key.to_uppercase())));
    let res = me(second.url.clone()).await;
    assert_eq!(res.status(), 200);
    drop(second);

    // A random key: the old cookie means nothing.
    let third = Site::start("session-key-3", &settings(None));
    assert_eq!(me(third.url.clone()).await.status(), 401);
}

/// `REDIS_URL`: two sites share one Redis and one `SESSION_KEY`, so a sign-in on one is a sign-in
/// on the other, and so is a sign-out.
#[actix_web::test]
async fn h5_with_redis_url_shares_sessions_between_instances() {
    let redis = common::redis_server::Redis::start();
    let emu = Emulator::builder()
        .host_name("localhost")
        .start()
        .expect("start the WeChat emulator");
    let key: String = (0..64)
        .map(|i| format!("{:02x}", (i * 7 + 3) % 256))
        .collect();
    let vars = vec![
        ("WECHAT_APPID", emu.appid().to_owned()),
        ("WECHAT_SECRET", emu.secret().to_owned()),
        ("WECHAT_OPEN_BASE", emu.open_base()),
        ("WECHAT_API_BASE", emu.api_base()),
        ("SESSION_KEY", key),
        ("REDIS_URL", redis.url()),
    ];
    let a = Site::start("redis-a", &vars);
    let b = Site::start("redis-b", &vars);
    assert!(
        a.log_text().contains("Sessions: Redis at"),
        "{}",
        a.log_text()
    );
    let http = http_client();
    sign_in_over_http(&http, &a.url).await;
    let me = |site: &str| http.get(format!("{site}/api/me")).send();
    let on_a: Value = me(&a.url).await.unwrap().json().await.unwrap();
    let on_b = me(&b.url).await.unwrap();
    assert_eq!(
        on_b.status(),
        200,
        "the session is in Redis, not in one process"
    );
    let on_b: Value = on_b.json().await.unwrap();
    assert_eq!(on_a["openid"], on_b["openid"]);
    // Signing out on B ends the session on A as well.
    http.get(format!("{}/logout", b.url)).send().await.unwrap();
    assert_eq!(me(&a.url).await.unwrap().status(), 401);
}

/// The sample's contract for browsers outside WeChat: never a redirect to the Official Account's
/// authorize page; with a Website app one full-page QR sign-in link of exactly WeChat's five
/// parameters; without one, the page's absolute URL and an inline QR code of it.
#[actix_web::test]
async fn h5_serves_browsers_outside_wechat() {
    let get = |url: String, ua: &'static str| async move {
        let res = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(ua)
            .build()
            .unwrap()
            .get(url)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let kind = res.headers()["content-type"].to_str().unwrap().to_owned();
        (status, kind, res.text().await.unwrap())
    };
    // The embedded emulator: a Website app too.
    let site = Site::start("website-app", &[]);
    let (status, kind, body) = get(format!("{}/", site.url), DESKTOP_UA).await;
    assert_eq!(status, 200, "{body}");
    assert!(kind.starts_with("text/html"));
    let links: Vec<String> = body
        .split("<a ")
        .skip(1)
        .filter_map(|a| a.split("href=\"").nth(1)?.split('"').next())
        .map(|h| html_escape::decode_html_entities(h).into_owned())
        .filter(|h| h.contains("/connect/qrconnect"))
        .collect();
    assert_eq!(links.len(), 1, "{body}");
    let link = url::Url::parse(&links[0]).unwrap();
    let names: Vec<String> = link.query_pairs().map(|(k, _)| k.into_owned()).collect();
    assert_eq!(
        names,
        ["appid", "redirect_uri", "response_type", "scope", "state"]
    );
    assert_eq!(link.fragment(), Some("wechat_redirect"));
    assert!(links[0].contains("appid=wx0123456789web&"), "{}", links[0]);
    assert!(!body.contains("/connect/oauth2/authorize"));

    // A Website app only when both variables are set: here none.
    let emu = Emulator::builder().start().unwrap();
    let site = Site::start(
        "no-website-app",
        &[
            ("WECHAT_APPID", emu.appid().to_owned()),
            ("WECHAT_SECRET", emu.secret().to_owned()),
            ("WECHAT_OPEN_BASE", emu.open_base()),
            ("WECHAT_API_BASE", emu.api_base()),
        ],
    );
    for ua in [DESKTOP_UA, PHONE_UA] {
        let page = format!("{}/quick?x=1&y=%3Cz%3E", site.url);
        let (status, kind, body) = get(page.clone(), ua).await;
        assert_eq!(status, 200, "{ua}: {body}");
        assert!(kind.starts_with("text/html"));
        assert!(body.contains(&*html_escape::encode_text(&page)), "{body}");
        assert!(body.contains("<svg"), "{body}");
        assert!(!body.contains("/connect/"), "{body}");
    }
}

/// A WeChat test account reaching a laptop over the LAN: plain http off loopback, opted in, with a
/// warning; listening on every interface with the embedded emulator, a warning that other
/// machines cannot use its pages.
#[test]
fn h5_opts_in_to_plain_http_on_a_lan_address() {
    let site = Site::start(
        "lan",
        &[
            ("BIND", "0.0.0.0:0".to_owned()),
            ("PUBLIC_URL", "http://192.0.2.10:8080".to_owned()),
            ("ALLOW_INSECURE_HTTP", "1".to_owned()),
        ],
    );
    let log = site.log_text();
    assert!(log.contains("ALLOW_INSECURE_HTTP=1"), "{log}");
    assert!(log.contains("other machines cannot sign in"), "{log}");
    assert!(
        site.url.starts_with("http://192.0.2.10:8080"),
        "{}",
        site.url
    );
}

/// Settings the example refuses, loudly and with a non-zero exit.
#[test]
fn h5_refuses_bad_settings() {
    for (vars, expected) in [
        (vec![("REDIS_URL", "not a url")], "REDIS_URL"),
        (vec![("SESSION_KEY", "abcd")], "SESSION_KEY"),
        (vec![("SESSION_KEY", &*"zz".repeat(64))], "SESSION_KEY"),
        (
            vec![("WECHAT_APPID", "wx1234567890abcdef")],
            "WECHAT_SECRET",
        ),
        (
            vec![("WECHAT_CHECK_INTERVAL", "soon")],
            "WECHAT_CHECK_INTERVAL",
        ),
        (vec![("PUBLIC_URL", "h5.example.com")], "public_url"),
        // Plain http on a LAN address needs the opt-in.
        (
            vec![("PUBLIC_URL", "http://192.168.1.20:8080")],
            "allow_insecure_http",
        ),
        (vec![("ALLOW_INSECURE_HTTP", "yes")], "ALLOW_INSECURE_HTTP"),
    ] {
        let vars: Vec<(&str, String)> = vars.into_iter().map(|(k, v)| (k, v.to_owned())).collect();
        let (status, log) = run_to_exit(&vars);
        assert!(!status.success(), "{vars:?} accepted:\n{log}");
        assert!(
            log.contains(expected),
            "{vars:?}: the error does not name {expected}:\n{log}"
        );
        assert!(
            log.contains("ERROR"),
            "{vars:?}: not logged as an error:\n{log}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The example as a process
// ---------------------------------------------------------------------------------------------

/// `cargo build --example h5`, once per test run: the binary `cargo run --example h5` runs.
fn example_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let out = Command::new(env!("CARGO"))
            .args([
                "build",
                "--example",
                "h5",
                "--message-format=json-render-diagnostics",
            ])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdin(Stdio::null())
            .output()
            .expect("run cargo build --example h5");
        assert!(
            out.status.success(),
            "cargo build --example h5 failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .find(|msg| msg["reason"] == "compiler-artifact" && msg["target"]["name"] == "h5")
            .and_then(|msg| msg["executable"].as_str().map(PathBuf::from))
            .expect("cargo reported no executable for the h5 example")
    })
}

fn command(vars: &[(&str, String)]) -> Command {
    let mut cmd = Command::new(example_binary());
    for var in SITE_VARS {
        cmd.env_remove(var);
    }
    cmd.env("BIND", "127.0.0.1:0")
        .env("RUST_LOG", "info")
        .env("RUST_LOG_STYLE", "never")
        .stdin(Stdio::null());
    for (name, value) in vars {
        cmd.env(name, value);
    }
    cmd
}

/// A running example, stopped when dropped. Its output goes to `target/browser-shots/*.log`.
struct Site {
    child: Child,
    /// The URL it printed, without the trailing slash.
    url: String,
    log: PathBuf,
}

impl Site {
    fn start(name: &str, vars: &[(&str, String)]) -> Site {
        let log = log_file(&format!("h5-{name}"));
        let out = fs::File::create(&log).expect("create the site log");
        let child = command(vars)
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("start the h5 example");
        let mut site = Site {
            child,
            url: String::new(),
            log,
        };
        let line = wait_for_line(&mut site.child, &site.log, "Open http");
        site.url = line
            .split_whitespace()
            .nth(1)
            .unwrap()
            .trim_end_matches('/')
            .to_owned();
        site
    }

    fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if thread::panicking() {
            eprintln!(
                "---- output of the h5 example ({}) ----\n{}",
                self.log.display(),
                self.log_text()
            );
        }
    }
}

/// Runs the example with `vars` until it exits (it must, within [`PATIENCE`]).
fn run_to_exit(vars: &[(&str, String)]) -> (ExitStatus, String) {
    let mut child = command(vars)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the h5 example");
    let deadline = Instant::now() + PATIENCE;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the h5 example with {vars:?} did not exit");
        }
        thread::sleep(Duration::from_millis(20));
    };
    let mut log = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    (status, log)
}

/// Waits for a line holding `needle` in `log`, written by `child`.
fn wait_for_line(child: &mut Child, log: &Path, needle: &str) -> String {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let text = fs::read_to_string(log).unwrap_or_default();
        if let Some(line) = text.lines().find(|l| l.contains(needle)) {
            return line.to_owned();
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "{} exited ({status}) before saying {needle:?}:\n{text}",
                log.display()
            );
        }
        if Instant::now() > deadline {
            panic!("{} did not say {needle:?} in time:\n{text}", log.display());
        }
        thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP helpers
// ---------------------------------------------------------------------------------------------

fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .user_agent(WECHAT_UA)
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .timeout(PATIENCE)
        .build()
        .unwrap()
}

fn location(res: &reqwest::Response) -> String {
    res.headers()
        .get("location")
        .unwrap_or_else(|| panic!("no Location on {} {}", res.status(), res.url()))
        .to_str()
        .unwrap()
        .to_owned()
}

/// A whole `snsapi_userinfo` sign-in as a browser does it (consent included), with a cookie jar.
/// Returns the H5 page.
async fn sign_in_over_http(http: &reqwest::Client, site: &str) -> String {
    let res = http.get(format!("{site}/")).send().await.unwrap();
    assert_eq!(res.status(), 302);
    let authorize = url::Url::parse(&location(&res)).unwrap();
    let consent = http.get(authorize.as_str()).send().await.unwrap();
    assert_eq!(consent.status(), 200, "the consent page");
    let consent = consent.text().await.unwrap();
    let mut form = hidden_fields(&consent);
    form.push(("action".into(), "allow".into()));
    let res = http
        .post(format!(
            "{}/connect/oauth2/authorize/confirm",
            authorize.origin().ascii_serialization()
        ))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 302, "Allow");
    let callback = location(&res);
    assert!(
        callback.starts_with(&format!("{site}/wechat/callback?code=")),
        "{callback}"
    );
    let res = http.get(&callback).send().await.unwrap();
    assert_eq!(res.status(), 303, "the callback");
    assert_eq!(location(&res), "/#");
    let res = http.get(format!("{site}/")).send().await.unwrap();
    assert_eq!(res.status(), 200, "the H5 page");
    res.text().await.unwrap()
}

/// The consent form's hidden fields.
fn hidden_fields(html: &str) -> Vec<(String, String)> {
    html.split("<input type=\"hidden\" ")
        .skip(1)
        .map(|input| {
            let attr = |name: &str| {
                let start = input.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
                let len = input[start..].find('"').unwrap();
                html_escape::decode_html_entities(&input[start..start + len]).into_owned()
            };
            (attr("name"), attr("value"))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------------------------

/// `target/` (this test runs as `target/debug/deps/browser-…`).
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's path");
    exe.ancestors()
        .nth(3)
        .expect("the test runs from target/<profile>/deps")
        .to_path_buf()
}

fn log_file(name: &str) -> PathBuf {
    let dir = target_dir().join("browser-shots");
    fs::create_dir_all(&dir).unwrap();
    dir.join(format!("{name}.log"))
}

fn unique_name(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{prefix}-{}-{nanos}", std::process::id())
}

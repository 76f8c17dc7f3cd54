//! The per-request path in CPU time, without a load generator: `cargo bench -p xtests --bench request_path`.
//!
//! Every case calls an in-process app (`actix_web::test::init_service`) with the same encrypted
//! session cookie (actix-session's cookie store as shipped; one key for every app), obtained by a
//! real sign-in against the crate's emulator when the bench starts:
//!
//! | case | what runs |
//! |---|---|
//! | `session_only` | the baseline: `SessionMiddleware` (decrypts and parses the cookie) and a handler reading nothing |
//! | `session_read` | `SessionMiddleware` and a handler that parses the stored sign-in itself (`session.get::<Value>("wx")`) |
//! | `wechat_signed_in` | `WeChatAuth` + `SessionMiddleware`, no check due: session read, token bookkeeping, the `AuthContext` extension, the `WeChatUser` extractor |
//! | `wechat_excluded_path` | `WeChatAuth` on an excluded path (`/healthz`): the middleware's fixed cost |
//! | `wechat_anonymous` | no cookie: a new `state`, the pending sign-in written to a new encrypted cookie, the 302 |
//!
//! `wechat_signed_in` − `session_only` is what the middleware costs a signed-in request. Under
//! `cargo test --benches` (the smoke run) each case runs once, as a test.

use std::time::Duration;

use actix_web::{
    body::MessageBody,
    cookie::{Cookie, Key},
    dev::{Service, ServiceResponse},
    http::{header, StatusCode},
    rt::SystemRunner,
    test, web, App,
};
use actix_wechat_auth::{
    emulator::{EmulatedUser, Emulator},
    Scope, WeChatAuth, WeChatConfig,
};
use criterion::{criterion_group, criterion_main, Criterion};

#[path = "../../examples/bench_server/apps.rs"]
mod apps;

use apps::{healthz, hello_from_session, hello_nobody, hello_user, session};

/// A request from WeChat's in-app browser, where an anonymous page is sent to WeChat (302).
fn in_wechat(req: test::TestRequest) -> test::TestRequest {
    req.insert_header((
        header::USER_AGENT,
        "Mozilla/5.0 (iPhone) AppleWebKit/605.1.15 Mobile/15E148 MicroMessenger/8.0.47",
    ))
}

fn id_cookie<B>(res: &ServiceResponse<B>) -> Option<Cookie<'static>> {
    named_cookie(res, |name| name == "id")
}

fn named_cookie<B>(
    res: &ServiceResponse<B>,
    name: impl Fn(&str) -> bool,
) -> Option<Cookie<'static>> {
    res.response()
        .cookies()
        .find(|c| name(c.name()))
        .map(Cookie::into_owned)
}

fn location<B>(res: &ServiceResponse<B>) -> String {
    res.headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .expect("a Location header")
        .to_owned()
}

/// Calls `app` once to check the answer, then benches it.
fn bench<S, B, R>(
    c: &mut Criterion,
    rt: &SystemRunner,
    name: &str,
    app: &S,
    request: impl Fn() -> R,
    expect: StatusCode,
) where
    S: Service<R, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let res = rt.block_on(app.call(request())).expect("the app answers");
    assert_eq!(res.status(), expect, "{name}");
    c.bench_function(name, |b| {
        b.iter(|| {
            rt.block_on(async {
                let res = app.call(request()).await.expect("the app answers");
                std::hint::black_box(res.status())
            })
        })
    });
}

fn request_path(c: &mut Criterion) {
    let rt = actix_web::rt::System::new();
    let emulator = Emulator::builder()
        .auto_approve(true)
        .start()
        .expect("the emulator starts");
    let openid = emulator.add_user(
        EmulatedUser::new("测试用户 ✨")
            .with_headimgurl("https://thirdwx.qlogo.cn/mmopen/vi_32/Q0j4TwGTfTKxbench7ZrQ1ibA8Bq9FgXkL3mZcJw4pYtD0xVnN5s2RkUe8HoW6iPaTqS1yLfGdCb/132"),
    );
    let config = WeChatConfig::builder(emulator.appid(), emulator.secret())
        .public_url("http://localhost")
        .open_base(emulator.open_base())
        .api_base(emulator.api_base())
        .scope(Scope::UserInfo)
        .exclude_path("/healthz")
        .check_interval(Duration::from_secs(86_400))
        .build()
        .expect("a valid configuration");
    let wechat = WeChatAuth::new(config);
    let key = Key::generate();

    let baseline = rt.block_on(test::init_service(
        App::new()
            .route("/", web::get().to(hello_nobody))
            .wrap(session(&key)),
    ));
    let reading = rt.block_on(test::init_service(
        App::new()
            .route("/", web::get().to(hello_from_session))
            .wrap(session(&key)),
    ));
    let guarded = rt.block_on(test::init_service(
        App::new()
            .route("/", web::get().to(hello_user))
            .route("/healthz", web::get().to(healthz))
            .wrap(wechat.clone())
            .wrap(session(&key)),
    ));

    // A real sign-in: the app's redirect, the emulator's authorize page, the app's callback.
    let cookie = rt.block_on(async {
        let res = test::call_service(
            &guarded,
            in_wechat(test::TestRequest::get().uri("/")).to_request(),
        )
        .await;
        assert_eq!(res.status(), StatusCode::FOUND);
        let pending =
            named_cookie(&res, |name| name.starts_with("wxs_")).expect("a pending sign-in cookie");
        let authorize = location(&res).replace("#wechat_redirect", "");
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .unwrap();
        let callback = http
            .get(&authorize)
            .header("x-emulator-user", &openid)
            .send()
            .await
            .expect("the emulator answers");
        let callback = reqwest::Url::parse(
            callback.headers()[header::LOCATION.as_str()]
                .to_str()
                .unwrap(),
        )
        .unwrap();
        let res = test::call_service(
            &guarded,
            test::TestRequest::get()
                .uri(&format!(
                    "{}?{}",
                    callback.path(),
                    callback.query().unwrap_or("")
                ))
                .cookie(pending)
                .to_request(),
        )
        .await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "callback");
        id_cookie(&res).expect("a signed-in cookie")
    });
    let signed_in = || {
        test::TestRequest::get()
            .uri("/")
            .cookie(cookie.clone())
            .to_request()
    };

    // The pair that matters first, back to back: criterion measures the cases seconds apart, and
    // the machine's load may change in between.
    bench(c, &rt, "session_only", &baseline, signed_in, StatusCode::OK);
    bench(
        c,
        &rt,
        "wechat_signed_in",
        &guarded,
        signed_in,
        StatusCode::OK,
    );
    bench(c, &rt, "session_read", &reading, signed_in, StatusCode::OK);
    bench(
        c,
        &rt,
        "wechat_excluded_path",
        &guarded,
        || {
            test::TestRequest::get()
                .uri("/healthz")
                .cookie(cookie.clone())
                .to_request()
        },
        StatusCode::OK,
    );
    bench(
        c,
        &rt,
        "wechat_anonymous",
        &guarded,
        || in_wechat(test::TestRequest::get().uri("/")).to_request(),
        StatusCode::FOUND,
    );
    drop(emulator);
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50);
    targets = request_path
}
criterion_main!(benches);

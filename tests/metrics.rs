//! The operator's numbers (the `metrics` facade) under a tiny recorder: sign-ins by flow and
//! outcome, upstream calls by endpoint and errcode with their latency, refreshes made vs shared.
//! Its own binary: it installs the process's one global recorder. Written with the public test
//! kit, as an app's own test would be.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use actix_session::{storage::CookieSessionStore, SessionMiddleware};
use actix_web::{web, App, HttpResponse};
use actix_wechat_auth::emulator::{EmulatedUser, Emulator, Endpoint, Fault};
use actix_wechat_auth::testing::{TestApp, TestClient};
use actix_wechat_auth::{Scope, WeChatUser};
use metrics::{
    Counter, Gauge, Histogram, Key as MetricKey, KeyName, Metadata, Recorder, SharedString, Unit,
};

/// Counters and histogram samples by `name{label=value,…}` (labels sorted).
#[derive(Default)]
struct Tiny {
    counters: Mutex<HashMap<String, Arc<AtomicU64>>>,
    histograms: Mutex<HashMap<String, Arc<Samples>>>,
}

#[derive(Default)]
struct Samples(Mutex<Vec<f64>>);

impl metrics::HistogramFn for Samples {
    fn record(&self, value: f64) {
        self.0.lock().unwrap().push(value);
    }
}

fn id(key: &MetricKey) -> String {
    let labels: BTreeMap<&str, &str> = key.labels().map(|l| (l.key(), l.value())).collect();
    let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{}{{{}}}", key.name(), labels.join(","))
}

impl Recorder for Tiny {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &MetricKey, _: &Metadata<'_>) -> Counter {
        let mut counters = self.counters.lock().unwrap();
        Counter::from_arc(Arc::clone(counters.entry(id(key)).or_default()))
    }
    fn register_gauge(&self, _: &MetricKey, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }
    fn register_histogram(&self, key: &MetricKey, _: &Metadata<'_>) -> Histogram {
        let mut histograms = self.histograms.lock().unwrap();
        Histogram::from_arc(Arc::clone(histograms.entry(id(key)).or_default()))
    }
}

fn recorder() -> &'static Tiny {
    static TINY: OnceLock<&'static Tiny> = OnceLock::new();
    TINY.get_or_init(|| {
        let tiny: &'static Tiny = Box::leak(Box::default());
        metrics::set_global_recorder(tiny).expect("the only recorder of this test binary");
        tiny
    })
}

fn count(name: &str) -> u64 {
    let counters = recorder().counters.lock().unwrap();
    counters.get(name).map_or(0, |c| c.load(Ordering::Relaxed))
}

fn samples(name: &str) -> Vec<f64> {
    let histograms = recorder().histograms.lock().unwrap();
    histograms
        .get(name)
        .map_or_else(Vec::new, |h| h.0.lock().unwrap().clone())
}

#[actix_web::test]
async fn sign_ins_upstream_calls_and_shared_refreshes_are_counted() {
    recorder();
    let emu = Emulator::builder().auto_approve(true).start().unwrap();
    let openid = emu.add_user(EmulatedUser::new("小明"));
    let key = actix_web::cookie::Key::generate();
    let config = emu.config().check_interval(Duration::ZERO).max_attempts(1);
    let app = TestApp::start(config, move |wechat| {
        let me = |u: WeChatUser| async move { HttpResponse::Ok().json(u.openid()) };
        App::new()
            .route("/info", web::get().to(me))
            .route("/api/me", web::get().to(me))
            .wrap(wechat.require(Scope::UserInfo))
            .wrap(SessionMiddleware::new(
                CookieSessionStore::default(),
                key.clone(),
            ))
    });
    let wechat = TestClient::wechat();
    assert_eq!(wechat.sign_in(&app.url("/info"), &openid).await.status, 200);
    assert_eq!(
        count("wechat_auth_sign_ins_total{flow=official_account,outcome=signed_in}"),
        1
    );
    assert_eq!(
        count("wechat_auth_upstream_calls_total{endpoint=access_token,errcode=0}"),
        1
    );
    assert_eq!(
        count("wechat_auth_upstream_calls_total{endpoint=userinfo,errcode=0}"),
        1
    );
    let took = samples("wechat_auth_upstream_seconds{endpoint=access_token}");
    assert!(
        took.len() == 1 && took[0] > 0.0 && took[0] < 2.0,
        "{took:?}"
    );

    // Eight requests needing the same refresh: one made, seven shared.
    emu.expire_access_tokens();
    emu.inject_fault(
        Endpoint::RefreshToken,
        Fault::Delay(Duration::from_millis(300)),
        Some(1),
    );
    let me = app.url("/api/me");
    let hops = futures_util::future::join_all((0..8).map(|_| wechat.get(&me))).await;
    assert!(hops.iter().all(|h| h.status == 200), "{hops:?}");
    assert_eq!(count("wechat_auth_refreshes_total{by=made}"), 1);
    assert_eq!(count("wechat_auth_refreshes_total{by=shared}"), 7);
    assert_eq!(
        count("wechat_auth_upstream_calls_total{endpoint=refresh_token,errcode=0}"),
        1
    );
    // The check before it found the token expired (42001), and the requests after it check.
    assert!(count("wechat_auth_upstream_calls_total{endpoint=auth,errcode=42001}") >= 1);
    assert!(count("wechat_auth_checks_total{by=made}") >= 1);

    // A failed exchange: its errcode, and the sign-in's outcome.
    emu.inject_fault(Endpoint::AccessToken, Fault::ErrCode(40013), Some(1));
    let failed = TestClient::wechat()
        .sign_in(&app.url("/info"), &openid)
        .await;
    assert_eq!(failed.status, 502, "{}", failed.body);
    assert_eq!(
        count("wechat_auth_upstream_calls_total{endpoint=access_token,errcode=40013}"),
        1
    );
    assert_eq!(
        count("wechat_auth_sign_ins_total{flow=official_account,outcome=wechat_error}"),
        1
    );
    // A callback with a state this browser does not hold: in WeChat one fresh sign-in, then
    // the page.
    let stranger = TestClient::wechat();
    let lost = app.url("/wechat/callback?code=abc&state=0123456789abcdef0123456789abcdef");
    assert_eq!(stranger.get(&lost).await.status, 302);
    assert_eq!(
        count("wechat_auth_sign_ins_total{flow=unknown,outcome=restarted}"),
        1
    );
    assert_eq!(stranger.get(&lost).await.status, 400);
    assert_eq!(
        count("wechat_auth_sign_ins_total{flow=unknown,outcome=invalid_state}"),
        1
    );
}

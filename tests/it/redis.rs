//! Scale-out: two app instances sharing sessions and refreshes through a real `redis-server`
//! (started here on a free loopback port with its own directory), the emulator as WeChat, and a
//! browser alternating between the instances.

use crate::common;

use std::{
    net::TcpListener,
    time::{Duration, Instant},
};

use crate::common::{
    capture_logs, free_base, logs, redis_server::Redis, sign_in, spawn_server, Browser, Server,
};
use actix_session::{storage::RedisSessionStore, Session, SessionMiddleware};
use actix_web::{
    cookie::{Key, SameSite},
    middleware::from_fn,
    web, App, HttpResponse, HttpServer,
};
use actix_wechat_auth::{
    deadpool_redis::{self, Pool, PoolConfig, Runtime, Timeouts},
    emulator::{Emulator, Endpoint, Fault},
    session_store_guard, Scope, WeChatAuth, WeChatConfig, WeChatUser,
};
use futures_util::StreamExt as _;
use reqwest::StatusCode;
use serde_json::json;

fn pool(redis: &Redis) -> Pool {
    let timeout = Some(Duration::from_millis(500));
    let mut config = deadpool_redis::Config::from_url(redis.url());
    config.pool = Some(PoolConfig {
        max_size: 16,
        timeouts: Timeouts {
            wait: timeout,
            create: timeout,
            recycle: timeout,
        },
        ..PoolConfig::default()
    });
    config.create_pool(Some(Runtime::Tokio1)).unwrap()
}

async fn show(user: WeChatUser) -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "openid": user.openid(),
        "access_token": user.access_token().secret(),
    }))
}

/// One app instance: Redis sessions, refreshes shared through Redis, the store guard outside.
fn instance(listener: TcpListener, config: WeChatConfig, redis: &Redis, key: Key) -> Server {
    let base = format!("http://{}", listener.local_addr().unwrap());
    let pool = pool(redis);
    spawn_server(base, move || async move {
        let store = RedisSessionStore::new_pooled(pool.clone()).await.unwrap();
        let wechat = WeChatAuth::new(config).share_refreshes(pool);
        Ok(HttpServer::new(move || {
            App::new()
                .service(
                    web::resource("/info")
                        .wrap(wechat.require(Scope::UserInfo))
                        .get(show),
                )
                .service(
                    web::resource("/api/me")
                        .wrap(wechat.require(Scope::UserInfo))
                        .get(show),
                )
                .route(
                    "/logout",
                    web::get().to(|s: Session| async move {
                        s.purge();
                        HttpResponse::Ok().body("signed out")
                    }),
                )
                .route(
                    "/sign-out",
                    web::get().to(|s: Session| async move {
                        actix_wechat_auth::sign_out(&s);
                        HttpResponse::Ok().body("signed out")
                    }),
                )
                // The app's own session data, next to the sign-in.
                .route(
                    "/cart",
                    web::get().to(|s: Session| async move {
                        s.insert("cart", 3).unwrap();
                        HttpResponse::Ok().body("added")
                    }),
                )
                .wrap(wechat.optional())
                .wrap(
                    SessionMiddleware::builder(store.clone(), key.clone())
                        .cookie_secure(false)
                        .cookie_same_site(SameSite::Lax)
                        .build(),
                )
                .wrap(from_fn(session_store_guard))
        })
        .workers(2)
        .disable_signals()
        .listen(listener)?
        .run())
    })
}

/// Redis, the emulator, and two instances behind one public URL (instance A's, standing for the
/// load balancer).
struct Fleet {
    redis: Redis,
    emulator: Emulator,
    a: Server,
    b: Server,
}

impl Fleet {
    fn start(
        tweak: impl Fn(actix_wechat_auth::WeChatConfigBuilder) -> actix_wechat_auth::WeChatConfigBuilder,
    ) -> Fleet {
        capture_logs();
        let redis = Redis::start();
        let emulator = Emulator::builder().auto_approve(true).start().unwrap();
        let key = Key::generate();
        let (listener_a, base_a) = free_base();
        let (listener_b, _) = free_base();
        let config = tweak(common::config(&emulator, &base_a)).build().unwrap();
        let a = instance(listener_a, config.clone(), &redis, key.clone());
        let b = instance(listener_b, config, &redis, key);
        Fleet {
            redis,
            emulator,
            a,
            b,
        }
    }
}

#[actix_web::test]
async fn a_session_follows_the_user_across_instances() {
    let f = Fleet::start(|c| c);
    let browser = Browser::new();
    let me = sign_in(&browser, &format!("{}/info", f.a.base))
        .await
        .json();
    // The cookie is per host, not per port: the same browser, now on B.
    let on_b = browser.get(&format!("{}/api/me", f.b.base)).await;
    assert_eq!(on_b.status, StatusCode::OK);
    assert_eq!(on_b.json()["openid"], me["openid"]);
    // Logout on B signs the user out on A too.
    browser.get(&format!("{}/logout", f.b.base)).await;
    assert_eq!(
        browser.get(&format!("{}/api/me", f.a.base)).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[actix_web::test]
async fn the_callback_may_land_on_another_instance_than_the_one_that_issued_the_state() {
    let f = Fleet::start(|c| c);
    let browser = Browser::new();
    // B issues the state (in Redis); the public redirect_uri brings the callback to A.
    let hop = browser.get(&format!("{}/info", f.b.base)).await;
    assert_eq!(hop.status, StatusCode::FOUND);
    let before = f.redis.keys();
    assert!(
        before.is_empty(),
        "the pending state is in a cookie, not a session: {before:?}"
    );
    let hops = browser.navigate(hop.location.as_deref().unwrap()).await;
    let callback = hops
        .iter()
        .find(|h| h.url.contains("/wechat/callback"))
        .unwrap();
    assert!(callback.url.starts_with(&f.a.base), "{}", callback.url);
    assert_eq!(hops.last().unwrap().status, StatusCode::OK);
    assert_eq!(
        browser.get(&format!("{}/api/me", f.b.base)).await.status,
        StatusCode::OK
    );
    // Session fixation: the session key changed at sign-in, and the old one is gone from Redis.
    let after = f.redis.keys();
    assert_eq!(after.len(), 1, "{after:?}");
    assert_ne!(after, before, "the session id was renewed");
    assert_eq!(f.emulator.call_count(Endpoint::AccessToken), 1);
}

#[actix_web::test]
async fn one_refresh_across_the_fleet() {
    let f = Fleet::start(|c| c.check_interval(Duration::ZERO));
    let browser = Browser::new();
    sign_in(&browser, &format!("{}/info", f.a.base)).await;
    f.emulator.expire_access_tokens();
    // A slow refresh, so that every request arrives while it is in flight.
    f.emulator.inject_fault(
        Endpoint::RefreshToken,
        Fault::Delay(Duration::from_millis(300)),
        Some(1),
    );
    let urls: Vec<String> = (0..100)
        .map(|i| format!("{}/api/me", if i % 2 == 0 { &f.a.base } else { &f.b.base }))
        .collect();
    let hops = futures_util::future::join_all(urls.iter().map(|u| browser.get(u))).await;
    let mut tokens = std::collections::HashSet::new();
    for hop in &hops {
        assert_eq!(hop.status, StatusCode::OK, "{}", hop.body);
        tokens.insert(hop.json()["access_token"].as_str().unwrap().to_owned());
    }
    let refreshes = f.emulator.call_count(Endpoint::RefreshToken);
    println!("100 concurrent requests over 2 instances: {refreshes} refresh call(s) upstream");
    assert_eq!(refreshes, 1);
    assert_eq!(tokens.len(), 1, "every request got the one new token");
}

#[actix_web::test]
async fn redis_outage_is_a_clear_503_and_service_resumes_when_it_is_back() {
    let mut f = Fleet::start(|c| c);
    let browser = Browser::new();
    let me = sign_in(&browser, &format!("{}/info", f.a.base))
        .await
        .json();
    f.redis.stop();

    let started = Instant::now();
    // The guard runs before any configuration is at hand: it goes by what a browser's fetch sends.
    let api = browser
        .get_with(
            &format!("{}/api/me", f.a.base),
            &[("sec-fetch-mode", "cors")],
        )
        .await;
    assert_eq!(api.status, StatusCode::SERVICE_UNAVAILABLE, "{}", api.body);
    assert_eq!(api.json()["error"], "session_unavailable");
    let page = browser
        .get_with(&format!("{}/info", f.b.base), &[("accept", "text/html")])
        .await;
    assert_eq!(page.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(page.body.contains("unavailable"), "{}", page.body);
    // Bounded by the pool's 500 ms timeouts, with a wide margin for a loaded machine.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(logs()
        .iter()
        .any(|l| l.starts_with("ERROR") && l.contains("session store unavailable")));

    // Redis back (its append-only file kept the sessions): the same session goes on, no restart.
    f.redis.run();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let hop = browser.get(&format!("{}/api/me", f.a.base)).await;
        if hop.status == StatusCode::OK {
            assert_eq!(hop.json()["openid"], me["openid"]);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not back: {} {}",
            hop.status,
            hop.body
        );
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        browser.get(&format!("{}/api/me", f.b.base)).await.status,
        StatusCode::OK
    );
}

#[actix_web::test]
async fn dropped_redis_connections_are_recovered_transparently() {
    let f = Fleet::start(|c| c);
    let browser = Browser::new();
    sign_in(&browser, &format!("{}/info", f.a.base)).await;
    for round in 0..3 {
        let killed = f.redis.command("CLIENT KILL TYPE normal SKIPME yes");
        assert!(killed.starts_with(':'), "{killed}");
        for base in [&f.a.base, &f.b.base] {
            let hop = browser.get(&format!("{base}/api/me")).await;
            assert_eq!(
                hop.status,
                StatusCode::OK,
                "round {round} on {base}: {}",
                hop.body
            );
        }
    }
}

/// Finding 3: anonymous requests (pages, JSON 401s, garbage or stale `id=` cookies) never write a
/// session, so they create no Redis key for `volatile-ttl` eviction to weigh against real ones.
#[actix_web::test]
async fn anonymous_requests_leave_the_redis_key_count_unchanged() {
    let f = Fleet::start(|c| c);
    // A signed-out session's cookie, replayed: its key is gone from Redis.
    let browser = Browser::new();
    sign_in(&browser, &format!("{}/info", f.a.base)).await;
    let stale = common::cookie_header(&browser, &f.a.base);
    browser.get(&format!("{}/logout", f.a.base)).await;
    assert!(f.redis.keys().is_empty(), "{:?}", f.redis.keys());
    let before = f.redis.command("DBSIZE");

    let client = reqwest::Client::builder()
        .user_agent(common::WECHAT_UA)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let garbage = format!("id={}", "A".repeat(80));
    let cookies = [
        String::new(),
        "id=garbage".to_owned(),
        garbage,
        "id=%00%ff%fe".to_owned(),
        stale,
    ];
    let started = Instant::now();
    let statuses = futures_util::stream::iter(0..10_000)
        .map(|i| {
            let base = if i % 2 == 0 { &f.a.base } else { &f.b.base };
            let path = if i % 4 < 2 { "/info" } else { "/api/me" };
            let mut req = client.get(format!("{base}{path}"));
            let cookie = &cookies[i % cookies.len()];
            if !cookie.is_empty() {
                req = req.header("cookie", cookie.as_str());
            }
            async move { req.send().await.unwrap().status().as_u16() }
        })
        .buffer_unordered(32)
        .collect::<Vec<u16>>()
        .await;
    let after = f.redis.command("DBSIZE");
    println!(
        "10,000 anonymous requests in {:?}: Redis DBSIZE {before} before, {after} after",
        started.elapsed()
    );
    assert!(
        statuses.iter().all(|s| *s == 302 || *s == 401),
        "{statuses:?}"
    );
    assert_eq!(before, after);
    assert_eq!(after, ":0");
}

/// Finding 10: signing out deletes the session when nothing of the app's is left in it, and gives
/// a session that still holds the app's data a new id.
#[actix_web::test]
async fn sign_out_purges_an_empty_session_and_renews_one_with_app_data() {
    let f = Fleet::start(|c| c);
    let browser = Browser::new();
    sign_in(&browser, &format!("{}/info", f.a.base)).await;
    assert_eq!(f.redis.keys().len(), 1);
    browser.get(&format!("{}/sign-out", f.a.base)).await;
    assert!(f.redis.keys().is_empty(), "{:?}", f.redis.keys());

    sign_in(&browser, &format!("{}/info", f.a.base)).await;
    browser.get(&format!("{}/cart", f.a.base)).await;
    let signed_in = f.redis.keys();
    let copied = common::cookie_header(&browser, &f.a.base);
    browser.get(&format!("{}/sign-out", f.b.base)).await;
    let signed_out = f.redis.keys();
    assert_eq!(signed_out.len(), 1, "{signed_out:?}");
    assert_ne!(signed_out, signed_in, "a new session id");
    assert_eq!(
        browser.get(&format!("{}/api/me", f.a.base)).await.status,
        StatusCode::UNAUTHORIZED
    );
    // A copy of the cookie from before the sign-out is worth nothing.
    let replay = reqwest::Client::builder()
        .user_agent(common::WECHAT_UA)
        .build()
        .unwrap()
        .get(format!("{}/api/me", f.a.base))
        .header("cookie", copied)
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), StatusCode::UNAUTHORIZED);
}

/// Finding 11: a waiting instance backs off (25 ms doubling to 400 ms, with jitter) instead of
/// polling every 25 ms, and what is published for it is encrypted, under the appid's prefix.
#[actix_web::test]
async fn fleet_waiters_back_off_and_published_tokens_are_encrypted() {
    let f = Fleet::start(|c| {
        c.check_interval(Duration::ZERO)
            .request_timeout(Duration::from_secs(4))
    });
    let browser = Browser::new();
    sign_in(&browser, &format!("{}/info", f.a.base)).await;
    f.emulator.expire_access_tokens();
    // The refresh takes 3 s (under the 4 s deadline): one instance holds the lock, the other waits.
    f.emulator.inject_fault(
        Endpoint::RefreshToken,
        Fault::Delay(Duration::from_secs(3)),
        Some(1),
    );
    let monitor = f.redis.monitor();
    let (a, b) = futures_util::future::join(
        browser.get(&format!("{}/api/me", f.a.base)),
        browser.get(&format!("{}/api/me", f.b.base)),
    )
    .await;
    let commands = monitor.stop();
    assert_eq!(
        (a.status, b.status),
        (StatusCode::OK, StatusCode::OK),
        "{} {}",
        a.body,
        b.body
    );
    assert_eq!(a.json()["access_token"], b.json()["access_token"]);
    assert_eq!(f.emulator.call_count(Endpoint::RefreshToken), 1);
    let fleet: Vec<&String> = commands
        .iter()
        .filter(|c| c.contains("wechat-auth:"))
        .collect();
    // The holder: GET, SET NX, SET (publish), EVAL (unlock). The rest is the waiter's polling.
    let waiter = fleet.len().saturating_sub(4);
    println!(
        "a 3 s refresh: {} fleet commands, {waiter} by the waiting instance (polling every 25 ms: ~240)",
        fleet.len()
    );
    assert!(waiter <= 40, "{fleet:#?}");

    let appid = f.emulator.appid();
    let keys = f.redis.keys();
    let published = keys
        .iter()
        .find(|k| k.contains(":refreshed:"))
        .expect("the new tokens are published for a while");
    assert!(
        published.starts_with(&format!("wechat-auth:{appid}:refreshed:")),
        "{published}"
    );
    let value = f.redis.value(published).unwrap();
    let token = a.json()["access_token"].as_str().unwrap().to_owned();
    assert!(
        !value.windows(token.len()).any(|w| w == token.as_bytes()),
        "the access token is in Redis in clear"
    );
    assert!(!String::from_utf8_lossy(&value).contains("refresh_token"));
}

/// Finding 2 across instances: a stale cookie's check is made once for the whole fleet.
#[actix_web::test]
async fn one_check_across_the_fleet() {
    // The check's success is remembered for the interval: long enough for the 20 requests to be
    // answered within it even on a loaded machine (a later request would rightly check again).
    let f = Fleet::start(|c| c.check_interval(Duration::from_secs(3)));
    let browser = Browser::new();
    sign_in(&browser, &format!("{}/info", f.a.base)).await;
    actix_web::rt::time::sleep(Duration::from_millis(3100)).await;
    f.emulator.inject_fault(
        Endpoint::Auth,
        Fault::Delay(Duration::from_millis(300)),
        Some(1),
    );
    let cookie = common::cookie_header(&browser, &f.a.base);
    let client = reqwest::Client::builder()
        .user_agent(common::WECHAT_UA)
        .build()
        .unwrap();
    let hops = futures_util::future::join_all((0..20).map(|i| {
        let base = if i % 2 == 0 { &f.a.base } else { &f.b.base };
        client
            .get(format!("{base}/api/me"))
            .header("cookie", cookie.as_str())
            .send()
    }))
    .await;
    assert!(hops
        .iter()
        .all(|h| h.as_ref().unwrap().status() == StatusCode::OK));
    let checks = f.emulator.call_count(Endpoint::Auth);
    println!("20 requests of a stale cookie over 2 instances: {checks} check(s)");
    assert_eq!(checks, 1);
}

//! The server side of the benchmark suite (`scripts/bench.sh`, results in `BENCHMARKS.md`).
//!
//! ```sh
//! cargo run --release --example bench_server -- --mode wechat
//! ```
//!
//! One small handler, `GET /` answering `hello <28 characters>` (the same length in every mode),
//! behind actix-session's `SessionMiddleware` with the cookie store in its production shape
//! (encrypted `Private` cookie, `SameSite=Lax`, `HttpOnly`; only `Secure` is off, for plain http
//! over loopback). `--mode` selects what else runs:
//!
//! | mode | what |
//! |---|---|
//! | `session-only` | the baseline: `SessionMiddleware` alone; the handler reads nothing (the middleware still decrypts and parses the cookie on every request) |
//! | `session-read` | `SessionMiddleware` alone; the handler parses the sign-in the app would otherwise keep itself (`session.get::<Value>("wx")`) and answers its openid |
//! | `wechat` | `WeChatAuth` (`snsapi_userinfo`, `/sns/auth` check once a day) + `SessionMiddleware`; the handler takes `WeChatUser` and answers its openid |
//! | `wechat-check0` | as `wechat` with a check on every request (`check_interval = 0`) |
//! | `sample` | the sample site's own stack (`examples/h5.rs`): `Logger`, `session_store_guard`, `DefaultHeaders`, `SessionMiddleware`, an App-level `WeChatAuth::optional` and a resource-level `require(Scope::UserInfo)`; `GET /` answers the sample's `/api/me` JSON from `WeChatUser` |
//! | `sample-bare` | the same app without `WeChatAuth` (nor its store guard): `Logger`, `DefaultHeaders`, `SessionMiddleware`; `GET /` parses the same sign-in record from the session into the app's own typed struct and answers the same JSON |
//! | `emulator` | the crate's WeChat emulator alone (auto-approve), for out-of-process drivers: its HTTP controls are under `/_emulator/` |
//!
//! `GET /healthz` answers `ok` in every mode, outside `WeChatAuth` (`exclude_path`).
//!
//! It prints one line, `LISTENING http://127.0.0.1:PORT` (`EMULATOR http://...` in emulator mode),
//! then serves until killed.
//!
//! # Environment (an empty variable counts as unset)
//!
//! | variable | meaning |
//! |---|---|
//! | `BIND` | listen address, default `127.0.0.1:0` (a free port) |
//! | `WORKERS` | server worker threads, default 1 (the emulator's too) |
//! | `SESSION_KEY` | the cookie key, 128 hex digits; servers sharing it accept each other's cookies, which is how the baseline gets the same cookie as the `wechat` modes. Default: random |
//! | `WECHAT_APPID`, `WECHAT_SECRET` | the appid and secret (the emulator's in emulator mode), default `wxbench0000000001` / `bench-secret-not-a-real-one` |
//! | `WECHAT_OPEN_BASE`, `WECHAT_API_BASE` | the emulator to use; unset: an emulator is started in this process |
//! | `WECHAT_CHECK_INTERVAL` | seconds between `/sns/auth` checks (`wechat` default 86400, `wechat-check0` 0) |
//! | `WECHAT_REFRESH_MARGIN` | seconds before expiry a token is refreshed, default the crate's (300) |
//! | `EMULATOR_ACCESS_TOKEN_TTL` | emulator mode: access token lifetime in seconds, default 7200 |

use std::{env, net::TcpListener, process::ExitCode, time::Duration};

mod apps;

use apps::{healthz, hello_from_session, hello_nobody, hello_user, session};

use actix_session::Session;
use actix_web::{
    cookie::Key,
    http::header,
    middleware::{from_fn, DefaultHeaders, Logger},
    web, App, HttpResponse, HttpServer,
};
use actix_wechat_auth::{
    emulator::Emulator, session_store_guard, Profile, Scope, WeChatAuth, WeChatConfig, WeChatUser,
};

const DEFAULT_APPID: &str = "wxbench0000000001";
const DEFAULT_SECRET: &str = "bench-secret-not-a-real-one";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    SessionOnly,
    SessionRead,
    WeChat,
    WeChatCheck0,
    Sample,
    SampleBare,
    Emulator,
}

impl Mode {
    fn parse(s: &str) -> Option<Mode> {
        Some(match s {
            "session-only" => Mode::SessionOnly,
            "session-read" => Mode::SessionRead,
            "wechat" => Mode::WeChat,
            "wechat-check0" => Mode::WeChatCheck0,
            "sample" => Mode::Sample,
            "sample-bare" => Mode::SampleBare,
            "emulator" => Mode::Emulator,
            _ => return None,
        })
    }
}

fn var(name: &str) -> Option<String> {
    env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn secs(name: &str) -> Result<Option<Duration>, String> {
    var(name)
        .map(|v| {
            v.trim()
                .parse::<u64>()
                .map(Duration::from_secs)
                .map_err(|_| format!("{name} must be a whole number of seconds, got {v:?}"))
        })
        .transpose()
}

fn session_key() -> Result<Key, String> {
    let Some(hex) = var("SESSION_KEY") else {
        return Ok(Key::generate());
    };
    let hex = hex.trim();
    if hex.len() != 128 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("SESSION_KEY must be 128 hex digits".to_owned());
    }
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex digits"))
        .collect();
    Ok(Key::from(&bytes))
}

/// The sample's `/api/me` answer.
fn me_json(openid: &str, unionid: Option<&str>, scope: &str, profile: &Profile) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(serde_json::json!({
            "openid": openid,
            "unionid": unionid,
            "nickname": profile.nickname,
            "sex": profile.sex,
            "province": profile.province,
            "city": profile.city,
            "country": profile.country,
            "headimgurl": profile.headimgurl,
            "privilege": profile.privilege,
            "scope": scope,
        }))
}

async fn me(user: WeChatUser) -> HttpResponse {
    let empty = Profile::default();
    let profile = user.profile().unwrap_or(&empty);
    me_json(
        user.openid(),
        user.unionid(),
        &user.scope().to_string(),
        profile,
    )
}

/// The sign-in record as an app keeping it itself would: its fields owned and typed.
#[derive(serde::Deserialize)]
struct AppRecord {
    i: String,
    o: String,
    u: Option<String>,
    s: String,
    a: String,
    r: String,
    e: u64,
    g: u64,
    p: Option<Profile>,
}

/// What such an app does on every request: parse its record, check it is its app's and still
/// valid (a token, not expired, signed in less than 30 days ago), answer.
async fn me_from_session(session: Session, appid: web::Data<String>) -> HttpResponse {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    match session.get::<AppRecord>("wx") {
        Ok(Some(record))
            if record.i == **appid
                && !record.a.is_empty()
                && !record.r.is_empty()
                && record.e > now
                && now.saturating_sub(record.g) < 30 * 86_400 =>
        {
            let empty = Profile::default();
            let profile = record.p.as_ref().unwrap_or(&empty);
            me_json(&record.o, record.u.as_deref(), &record.s, profile)
        }
        _ => HttpResponse::Unauthorized().finish(),
    }
}

/// The sample's middleware outside the session, as `examples/h5.rs` wraps them.
fn logger() -> Logger {
    Logger::new("%s %{method}xi %U %Dms")
        .custom_request_replace("method", |req| req.method().to_string())
}

fn security_headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .add((header::X_FRAME_OPTIONS, "DENY"))
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("bench_server: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let mut args = env::args().skip(1);
    let mut mode = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--mode" => mode = args.next().as_deref().and_then(Mode::parse),
            other => return Err(format!("unknown argument {other:?} (usage: --mode MODE)")),
        }
    }
    let mode = mode.ok_or(
        "--mode session-only|session-read|wechat|wechat-check0|sample|sample-bare|emulator is required"
            .to_owned(),
    )?;
    let workers = var("WORKERS")
        .map(|w| w.parse::<usize>().map_err(|_| "WORKERS must be a number"))
        .transpose()?
        .unwrap_or(1);
    let bind = var("BIND").unwrap_or_else(|| "127.0.0.1:0".to_owned());
    let appid = var("WECHAT_APPID").unwrap_or_else(|| DEFAULT_APPID.to_owned());
    let secret = var("WECHAT_SECRET").unwrap_or_else(|| DEFAULT_SECRET.to_owned());

    if mode == Mode::Emulator {
        let addr = bind
            .parse()
            .map_err(|e| format!("BIND must be an IP address and port: {e}"))?;
        let mut builder = Emulator::builder()
            .appid(appid)
            .secret(secret)
            .bind(addr)
            .workers(workers)
            .auto_approve(true);
        if let Some(ttl) = secs("EMULATOR_ACCESS_TOKEN_TTL")? {
            builder = builder.access_token_ttl(ttl);
        }
        let emulator = builder
            .start()
            .map_err(|e| format!("cannot start the emulator: {e}"))?;
        println!("EMULATOR {}", emulator.api_base());
        loop {
            std::thread::park();
        }
    }

    let key = session_key()?;
    let listener =
        TcpListener::bind(bind.as_str()).map_err(|e| format!("cannot listen on {bind}: {e}"))?;
    let base = format!(
        "http://{}",
        listener.local_addr().map_err(|e| e.to_string())?
    );

    // An emulator in this process unless one is given.
    let mut own_emulator = None;
    let (open_base, api_base, appid, secret) =
        match (var("WECHAT_OPEN_BASE"), var("WECHAT_API_BASE")) {
            (Some(open), Some(api)) => (open, api, appid, secret),
            _ => {
                let emu = Emulator::builder()
                    .auto_approve(true)
                    .start()
                    .map_err(|e| format!("cannot start the emulator: {e}"))?;
                let wiring = (
                    emu.open_base(),
                    emu.api_base(),
                    emu.appid().to_owned(),
                    emu.secret().to_owned(),
                );
                eprintln!("bench_server: own emulator at {}", emu.api_base());
                own_emulator = Some(emu);
                wiring
            }
        };
    let check_interval = match (secs("WECHAT_CHECK_INTERVAL")?, mode) {
        (Some(interval), _) => interval,
        (None, Mode::WeChatCheck0) => Duration::ZERO,
        (None, _) => Duration::from_secs(86_400),
    };
    let mut config = WeChatConfig::builder(appid.clone(), secret)
        .public_url(base.as_str())
        .open_base(open_base)
        .api_base(api_base)
        .scope(Scope::UserInfo)
        .exclude_path("/healthz")
        .check_interval(check_interval);
    if let Some(margin) = secs("WECHAT_REFRESH_MARGIN")? {
        config = config.refresh_margin(margin);
    }
    let wechat = WeChatAuth::new(config.build().map_err(|e| e.to_string())?);

    println!("LISTENING {base}");
    actix_web::rt::System::new()
        .block_on(async move {
            macro_rules! serve {
                ($factory:expr) => {
                    HttpServer::new($factory)
                        .workers(workers)
                        .backlog(4096)
                        .listen(listener)?
                        .run()
                        .await
                };
            }
            match mode {
                Mode::SessionOnly => serve!(move || App::new()
                    .route("/", web::get().to(hello_nobody))
                    .route("/healthz", web::get().to(healthz))
                    .wrap(session(&key))),
                Mode::SessionRead => serve!(move || App::new()
                    .route("/", web::get().to(hello_from_session))
                    .route("/healthz", web::get().to(healthz))
                    .wrap(session(&key))),
                Mode::WeChat | Mode::WeChatCheck0 => serve!(move || App::new()
                    .route("/", web::get().to(hello_user))
                    .route("/healthz", web::get().to(healthz))
                    .wrap(wechat.clone())
                    .wrap(session(&key))),
                Mode::Sample => serve!(move || App::new()
                    .service(
                        web::resource("/")
                            .wrap(wechat.require(Scope::UserInfo))
                            .get(me)
                    )
                    .route("/healthz", web::get().to(healthz))
                    .wrap(wechat.optional())
                    .wrap(session(&key))
                    .wrap(security_headers())
                    .wrap(from_fn(session_store_guard))
                    .wrap(logger())),
                Mode::SampleBare => serve!(move || App::new()
                    .app_data(web::Data::new(appid.clone()))
                    .route("/", web::get().to(me_from_session))
                    .route("/healthz", web::get().to(healthz))
                    .wrap(session(&key))
                    .wrap(security_headers())
                    .wrap(logger())),
                Mode::Emulator => unreachable!("handled above"),
            }
        })
        .map_err(|e| format!("server error: {e}"))?;
    drop(own_emulator);
    Ok(())
}

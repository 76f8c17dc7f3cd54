//! A sample H5 site signed in with WeChat (微信网页授权), runnable without a WeChat account.
//!
//! ```sh
//! cargo run --example h5
//! ```
//!
//! With `WECHAT_APPID` unset it also starts the crate's WeChat emulator (on `localhost`, a free
//! port) and points itself at it, then prints the URL to open. Open it in a browser: the
//! emulator's consent page comes up, tap **允许** (Allow), and the H5 page shows your (emulated)
//! WeChat profile. With real credentials, and `PUBLIC_URL` on the Official Account's web
//! authorization domain, it talks to WeChat.
//!
//! # Environment
//!
//! An empty variable counts as unset.
//!
//! | variable | meaning |
//! |---|---|
//! | `BIND` | listen address, default `127.0.0.1:8080` (port `0`: a free port, printed) |
//! | `PUBLIC_URL` | the external origin used to build `redirect_uri`, default `http://{BIND}`; an `https` URL makes the session cookie `Secure` |
//! | `WECHAT_APPID`, `WECHAT_SECRET` | the Official Account's credentials; `WECHAT_APPID` unset: the embedded emulator |
//! | `WECHAT_WEB_APPID`, `WECHAT_WEB_SECRET` | a Website app (网站应用) for QR sign-in outside WeChat; set automatically with the embedded emulator; with `WECHAT_APPID` set, only when both are set |
//! | `WECHAT_OPEN_BASE` | authorize page host, default `https://open.weixin.qq.com` |
//! | `WECHAT_API_BASE` | sns API host, default `https://api.weixin.qq.com` |
//! | `WECHAT_CHECK_INTERVAL` | seconds between `/sns/auth` checks of a signed-in token; `0` = every request; unset = the crate's default (300) |
//! | `ALLOW_INSECURE_HTTP` | `1`: accept plain `http` for `PUBLIC_URL` (and the WeChat bases) on a non-loopback host, e.g. a WeChat test account reaching a laptop's LAN address (a warning is logged at start); unset: such a URL is refused. Loopback never needs it |
//! | `SESSION_KEY` | the cookie key: 128 hex digits (64 bytes); default a random key per start, so restarting signs everyone out |
//! | `REDIS_URL` | sessions in Redis (e.g. `redis://127.0.0.1:6379`), shared by every instance, and token refreshes shared through it; unset: sessions in the encrypted cookie |
//! | `RUST_LOG` | `env_logger` filter, default `info` |
//!
//! # Routes
//!
//! | route | what |
//! |---|---|
//! | `GET /` | the H5 page (needs `snsapi_userinfo`): nickname, avatar, openid, a button that calls `/api/me`, a sign-out link |
//! | `GET /api/me` | the signed-in user as JSON (needs `snsapi_userinfo`); anonymous: 401 JSON with the `authorize_url`, never a redirect |
//! | `GET /quick` | a page that needs only `snsapi_base` (silent sign-in, no consent page): shows the openid |
//! | `GET /healthz` | public, `200 ok` |
//! | `GET /logout` | clears the session and says so (public, `200`), with a link back to `/` |
//! | `GET /wechat/callback` | the OAuth callback, answered by the middleware |
//!
//! The session lives in an encrypted cookie (actix-session's cookie store), or in Redis when
//! `REDIS_URL` is set (then run as many instances as you like behind a load balancer, with one
//! `SESSION_KEY`). Its cookie is `SameSite=Lax`: the WeChat callback is a cross-site navigation,
//! and `Strict` would withhold the cookie holding the sign-in `state`.

use std::{env, net::TcpListener, process::ExitCode, time::Duration};

use actix_session::{
    storage::{CookieSessionStore, RedisSessionStore, SessionStore},
    Session, SessionMiddleware,
};
use actix_web::{
    cookie::{Key, SameSite},
    http::header,
    middleware::{from_fn, DefaultHeaders, Logger},
    web, App, HttpRequest, HttpResponse, HttpResponseBuilder, HttpServer,
};
use actix_wechat_auth::{
    deadpool_redis, emulator::Emulator, session_store_guard, Profile, Scope, WeChatAuth,
    WeChatConfig, WeChatUser,
};
use html_escape::{encode_double_quoted_attribute as attr, encode_text as text};
use log::{error, info, warn};

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            error!("{message}");
            ExitCode::FAILURE
        }
    }
}

/// An environment variable, empty counting as unset.
fn var(name: &str) -> Option<String> {
    env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Where WeChat is: the real one or the embedded emulator.
struct Upstream {
    appid: String,
    secret: String,
    /// The Website app's appid and secret, if any.
    website: Option<(String, String)>,
    open_base: Option<String>,
    api_base: Option<String>,
    /// Kept alive for the life of the server: dropping it stops the emulator.
    emulator: Option<Emulator>,
}

fn upstream() -> Result<Upstream, String> {
    let Some(appid) = var("WECHAT_APPID") else {
        for ignored in [
            "WECHAT_SECRET",
            "WECHAT_OPEN_BASE",
            "WECHAT_API_BASE",
            "WECHAT_WEB_APPID",
            "WECHAT_WEB_SECRET",
        ] {
            if var(ignored).is_some() {
                warn!(
                    "{ignored} is ignored: WECHAT_APPID is unset, so the embedded emulator is used"
                );
            }
        }
        let emulator = Emulator::builder()
            .host_name("localhost")
            .start()
            .map_err(|e| format!("cannot start the WeChat emulator: {e}"))?;
        return Ok(Upstream {
            appid: emulator.appid().to_owned(),
            secret: emulator.secret().to_owned(),
            website: Some((
                emulator.web_appid().to_owned(),
                emulator.web_secret().to_owned(),
            )),
            open_base: Some(emulator.open_base()),
            api_base: Some(emulator.api_base()),
            emulator: Some(emulator),
        });
    };
    let secret = var("WECHAT_SECRET").ok_or(
        "WECHAT_SECRET is required when WECHAT_APPID is set (unset both for the emulator)",
    )?;
    let website = match (var("WECHAT_WEB_APPID"), var("WECHAT_WEB_SECRET")) {
        (Some(appid), Some(secret)) => Some((appid, secret)),
        (None, None) => None,
        _ => {
            warn!("WECHAT_WEB_APPID and WECHAT_WEB_SECRET go together: no Website app");
            None
        }
    };
    Ok(Upstream {
        appid,
        secret,
        website,
        open_base: var("WECHAT_OPEN_BASE"),
        api_base: var("WECHAT_API_BASE"),
        emulator: None,
    })
}

/// `SESSION_KEY`: 128 hex digits, or a random key.
fn session_key() -> Result<Key, String> {
    let Some(hex) = var("SESSION_KEY") else {
        info!("SESSION_KEY is unset: a random cookie key, so restarting signs everyone out");
        return Ok(Key::generate());
    };
    let hex = hex.trim();
    let invalid = || {
        format!(
            "SESSION_KEY must be 128 hex digits (64 bytes), e.g. from `openssl rand -hex 64`; \
             got {} characters",
            hex.len()
        )
    };
    if hex.len() != 128 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(invalid());
    }
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).map_err(|_| invalid()))
        .collect::<Result<Vec<u8>, String>>()?;
    Ok(Key::from(&bytes))
}

fn run() -> Result<(), String> {
    let settings = read_settings()?;
    let wechat = match &settings.redis {
        Some((pool, _)) => WeChatAuth::new(wechat_config(&settings)?).share_refreshes(pool.clone()),
        None => WeChatAuth::new(wechat_config(&settings)?),
    };
    print_banner(&settings);
    let Settings {
        redis,
        key,
        listener,
        https,
        upstream,
        ..
    } = settings;
    let site = Site {
        wechat,
        data: web::Data::new(SiteData {
            emulated: upstream.emulator.is_some(),
        }),
        key,
        https,
    };
    let served = actix_web::rt::System::new().block_on(async move {
        match redis {
            // The pool connects lazily: the site starts, and recovers, while Redis is down.
            Some((pool, _)) => {
                let store = RedisSessionStore::new_pooled(pool)
                    .await
                    .map_err(|e| std::io::Error::other(format!("Redis session store: {e}")))?;
                serve(listener, site, move || store.clone()).await
            }
            None => serve(listener, site, CookieSessionStore::default).await,
        }
    });
    // The emulator stops only now, after the server.
    drop(upstream);
    served.map_err(|e| format!("server error: {e}"))
}

/// The sample's settings, read from the environment (the table in the module docs).
struct Settings {
    redis: Option<(deadpool_redis::Pool, String)>,
    check_interval: Option<Duration>,
    key: Key,
    allow_insecure_http: bool,
    listener: TcpListener,
    local: std::net::SocketAddr,
    public_url: String,
    /// `PUBLIC_URL` is `https`: the session cookie is `Secure`.
    https: bool,
    upstream: Upstream,
}

/// Reads and checks the environment, binds `BIND`, starts the emulator when `WECHAT_APPID` is
/// unset, and warns about settings that work but are risky.
fn read_settings() -> Result<Settings, String> {
    let redis = var("REDIS_URL").map(|url| redis_pool(&url)).transpose()?;
    let check_interval = var("WECHAT_CHECK_INTERVAL")
        .map(|v| {
            v.trim()
                .parse::<u64>()
                .map(Duration::from_secs)
                .map_err(|_| {
                    format!("WECHAT_CHECK_INTERVAL must be a whole number of seconds, got {v:?}")
                })
        })
        .transpose()?;
    let key = session_key()?;
    let allow_insecure_http = match var("ALLOW_INSECURE_HTTP").as_deref() {
        None | Some("0") => false,
        Some("1") => true,
        Some(other) => return Err(format!("ALLOW_INSECURE_HTTP must be 1 or 0, got {other:?}")),
    };

    let bind = var("BIND").unwrap_or_else(|| "127.0.0.1:8080".to_owned());
    let listener =
        TcpListener::bind(bind.as_str()).map_err(|e| format!("cannot listen on {bind}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    let public_url = var("PUBLIC_URL").unwrap_or_else(|| {
        // `BIND` as given, unless it asked for a free port: then the port we got.
        if bind.ends_with(":0") {
            format!("http://{local}")
        } else {
            format!("http://{bind}")
        }
    });
    let https = public_url.to_ascii_lowercase().starts_with("https://");
    if local.ip().is_unspecified() && var("PUBLIC_URL").is_none() {
        warn!("BIND listens on every interface: set PUBLIC_URL to the origin browsers use");
    }

    let upstream = upstream()?;
    if upstream.emulator.is_some() && !local.ip().is_loopback() {
        warn!(
            "BIND {bind} is reachable from other machines, but the embedded emulator's pages are \
             on localhost: other machines cannot sign in through it"
        );
    }
    if allow_insecure_http {
        warn!(
            "ALLOW_INSECURE_HTTP=1: plain http is accepted off loopback; sign-in codes and tokens \
             cross the network unencrypted (a test network only)"
        );
    }
    Ok(Settings {
        redis,
        check_interval,
        key,
        allow_insecure_http,
        listener,
        local,
        public_url,
        https,
        upstream,
    })
}

/// The `WeChatAuth` configuration the settings describe.
fn wechat_config(settings: &Settings) -> Result<WeChatConfig, String> {
    let upstream = &settings.upstream;
    let mut builder = WeChatConfig::builder(upstream.appid.as_str(), upstream.secret.as_str())
        .allow_insecure_http(settings.allow_insecure_http)
        .public_url(settings.public_url.as_str())
        .scope(Scope::UserInfo)
        .api_path_prefix("/api/")
        .exclude_path("/healthz")
        .exclude_path("/logout");
    if let Some(open_base) = &upstream.open_base {
        builder = builder.open_base(open_base.as_str());
    }
    if let Some(api_base) = &upstream.api_base {
        builder = builder.api_base(api_base.as_str());
    }
    if let Some(interval) = settings.check_interval {
        builder = builder.check_interval(interval);
    }
    if let Some((appid, secret)) = &upstream.website {
        builder = builder.website_app(appid.as_str(), secret.as_str());
    }
    builder
        .build()
        .map_err(|e| format!("invalid WeChat configuration: {e}"))
}

/// Where the site listens, which WeChat it talks to, where sessions live, and what to open.
fn print_banner(settings: &Settings) {
    let upstream = &settings.upstream;
    println!("WeChat H5 sample listening on http://{}", settings.local);
    match &upstream.emulator {
        Some(emu) => println!(
            "WeChat: the embedded emulator at {} (appid {}, Website app {}); set WECHAT_APPID and WECHAT_SECRET for the real one",
            emu.open_base(),
            emu.appid(),
            emu.web_appid()
        ),
        None => println!(
            "WeChat: {} (appid {})",
            upstream
                .open_base
                .as_deref()
                .unwrap_or("https://open.weixin.qq.com"),
            upstream.appid
        ),
    }
    match &settings.redis {
        Some((_, shown)) => println!("Sessions: Redis at {shown}"),
        None => println!("Sessions: in the encrypted cookie"),
    }
    println!(
        "Open {}/ in a browser",
        settings.public_url.trim_end_matches('/')
    );
}

/// What every worker's app is made of.
#[derive(Clone)]
struct Site {
    wechat: WeChatAuth,
    data: web::Data<SiteData>,
    key: Key,
    https: bool,
}

/// Serves the site on `listener`, its sessions in the store that `store` makes for each worker
/// (the encrypted cookie, or Redis).
async fn serve<S>(
    listener: TcpListener,
    site: Site,
    store: impl Fn() -> S + Send + Clone + 'static,
) -> std::io::Result<()>
where
    S: SessionStore + 'static,
{
    HttpServer::new(move || {
        let Site {
            wechat,
            data,
            key,
            https,
        } = site.clone();
        App::new()
            .app_data(data)
            .service(
                web::resource("/")
                    .wrap(wechat.require(Scope::UserInfo))
                    .get(index),
            )
            .service(
                web::resource("/api/me")
                    .wrap(wechat.require(Scope::UserInfo))
                    .get(me),
            )
            .service(
                web::resource("/quick")
                    .wrap(wechat.require(Scope::Base))
                    .get(quick),
            )
            .route("/healthz", web::get().to(healthz))
            .route("/logout", web::get().to(logout))
            // Answers /wechat/callback, and keeps a signed-in user's token fresh everywhere.
            .wrap(wechat.optional())
            .wrap(
                SessionMiddleware::builder(store(), key)
                    .cookie_secure(https)
                    .cookie_same_site(SameSite::Lax)
                    .build(),
            )
            .wrap(
                DefaultHeaders::new()
                    .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
                    .add((header::X_FRAME_OPTIONS, "DENY")),
            )
            // A Redis outage answers 503 with a log line, not actix-session's bare 500.
            .wrap(from_fn(session_store_guard))
            // %U is the path without the query: the callback's code stays out of the log.
            .wrap(
                Logger::new("%s %{method}xi %U %Dms")
                    .custom_request_replace("method", |req| req.method().to_string()),
            )
    })
    .listen(listener)?
    .run()
    .await
}

/// A pool for `REDIS_URL`, with bounded waits so that a Redis outage cannot hold requests, and
/// the URL as it may be printed (no password).
fn redis_pool(url: &str) -> Result<(deadpool_redis::Pool, String), String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("REDIS_URL is not a URL: {e}"))?;
    let shown = format!(
        "{}://{}:{}",
        parsed.scheme(),
        parsed.host_str().unwrap_or("?"),
        parsed.port().unwrap_or(6379)
    );
    let timeout = Some(Duration::from_secs(1));
    let mut config = deadpool_redis::Config::from_url(url);
    config.pool = Some(deadpool_redis::PoolConfig {
        max_size: 32,
        timeouts: deadpool_redis::Timeouts {
            wait: timeout,
            create: timeout,
            recycle: timeout,
        },
        ..deadpool_redis::PoolConfig::default()
    });
    let pool = config
        .create_pool(Some(deadpool_redis::Runtime::Tokio1))
        .map_err(|e| format!("REDIS_URL: {e}"))?;
    Ok((pool, shown))
}

/// What the pages need to know about the site.
struct SiteData {
    emulated: bool,
}

/// `GET /`: the H5 page.
async fn index(req: HttpRequest, user: WeChatUser, site: web::Data<SiteData>) -> HttpResponse {
    let empty = Profile::default();
    let profile = user.profile().unwrap_or(&empty);
    let nickname = if profile.nickname.is_empty() {
        "微信用户"
    } else {
        profile.nickname.as_str()
    };
    let region = [&profile.country, &profile.province, &profile.city]
        .into_iter()
        .filter(|s| !s.is_empty())
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(" ");
    let mut details = format!(
        "<dt>openid</dt><dd><code id=\"openid\">{}</code></dd>\
         <dt>unionid</dt><dd><code id=\"unionid\">{}</code></dd>",
        text(user.openid()),
        text(user.unionid().unwrap_or("—")),
    );
    if !region.is_empty() {
        details.push_str(&format!("<dt>region</dt><dd>{}</dd>", text(&region)));
    }
    let client = wechat_version(&req).map_or_else(
        || "another browser (real WeChat sign-in works only inside WeChat)".to_owned(),
        |version| format!("WeChat {version}"),
    );
    details.push_str(&format!(
        "<dt>client</dt><dd id=\"client\">{}</dd>",
        text(&client)
    ));
    let nonce = nonce();
    let body = format!(
        r#"<section class="card profile">
{avatar}
<div class="who"><h1 id="nickname">{nickname}</h1><p class="scope" id="scope">{scope}</p></div>
</section>
<section class="card"><dl>{details}</dl></section>
<section class="card">
<button type="button" class="btn" id="call-api">Call /api/me</button>
<p class="muted" id="api-status" hidden></p>
<pre id="api-json" hidden></pre>
</section>
<nav class="links"><a href="/quick">snsapi_base page</a><a href="/logout" id="logout">Sign out</a></nav>
{footer}
<script nonce="{nonce}">
document.getElementById('call-api').addEventListener('click', async () => {{
  const status = document.getElementById('api-status');
  const out = document.getElementById('api-json');
  status.hidden = false;
  status.textContent = 'Loading…';
  out.hidden = true;
  try {{
    const res = await fetch('/api/me', {{ headers: {{ Accept: 'application/json' }}, cache: 'no-store' }});
    const body = await res.json();
    status.textContent = 'HTTP ' + res.status + (res.ok ? ' · signed in' : ' · ' + (body.message || 'error'));
    status.dataset.status = res.status;
    out.textContent = JSON.stringify(body, null, 2);
    out.hidden = false;
  }} catch (e) {{
    status.textContent = 'Request failed: ' + e;
  }}
}});
</script>"#,
        avatar = avatar(&profile.headimgurl, nickname),
        nickname = text(nickname),
        scope = user.scope(),
        footer = footer(&site),
    );
    page("我的 · WeChat H5", &body, &nonce)
}

/// `GET /api/me`: the signed-in user as JSON.
async fn me(user: WeChatUser) -> HttpResponse {
    let empty = Profile::default();
    let profile = user.profile().unwrap_or(&empty);
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(serde_json::json!({
            "openid": user.openid(),
            "unionid": user.unionid(),
            "nickname": profile.nickname,
            "sex": profile.sex,
            "province": profile.province,
            "city": profile.city,
            "country": profile.country,
            "headimgurl": profile.headimgurl,
            "privilege": profile.privilege,
            "scope": user.scope().to_string(),
        }))
}

/// `GET /quick`: needs only snsapi_base.
async fn quick(user: WeChatUser, site: web::Data<SiteData>) -> HttpResponse {
    let body = format!(
        r#"<section class="card">
<h1>Quick sign-in</h1>
<p class="muted">This page needs only <code>snsapi_base</code>: WeChat signs you in without a consent page and tells the site nothing but your openid.</p>
<dl><dt>openid</dt><dd><code id="openid">{openid}</code></dd><dt>scope</dt><dd id="scope">{scope}</dd></dl>
</section>
<nav class="links"><a href="/">Profile page</a><a href="/logout" id="logout">Sign out</a></nav>
{footer}"#,
        openid = text(user.openid()),
        scope = user.scope(),
        footer = footer(&site),
    );
    page("Quick · WeChat H5", &body, &nonce())
}

/// `GET /healthz`.
async fn healthz() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body("ok")
}

/// `GET /logout`: a public page, so that the browser is not sent to sign in again at once.
async fn logout(session: Session, site: web::Data<SiteData>) -> HttpResponse {
    session.purge();
    let body = format!(
        r#"<section class="card center">
<div class="icon"><svg viewBox="0 0 24 24" width="30" height="30" aria-hidden="true"><path d="M5 12.5l4.5 4.5L19 7.5" fill="none" stroke="white" stroke-width="2.6" stroke-linecap="round" stroke-linejoin="round"/></svg></div>
<h1 id="signed-out">You are signed out</h1>
<p class="muted">The session is cleared. WeChat remembers that you allowed this site, so signing in again takes one tap or none.</p>
<a class="btn" href="/" id="sign-in">Sign in again</a>
</section>
<nav class="links"><a href="/quick">snsapi_base page</a></nav>
{footer}"#,
        footer = footer(&site),
    );
    page("Signed out · WeChat H5", &body, &nonce())
}

/// WeChat's version from its in-app browser's User-Agent (`… MicroMessenger/8.0.47(0x…) …`).
fn wechat_version(req: &HttpRequest) -> Option<&str> {
    let ua = req.headers().get(header::USER_AGENT)?.to_str().ok()?;
    let (_, after) = ua.split_once("MicroMessenger/")?;
    let end = after
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(after.len());
    Some(&after[..end]).filter(|v| !v.is_empty())
}

/// The round avatar, or a placeholder with the nickname's first letter.
fn avatar(url: &str, nickname: &str) -> String {
    if url.starts_with("https://") || url.starts_with("http://") {
        // WeChat's image host refuses some hotlinked requests that carry a Referer.
        format!(
            r#"<img class="avatar" id="avatar" src="{}" alt="" referrerpolicy="no-referrer">"#,
            attr(url)
        )
    } else {
        let initial: String = nickname.chars().take(1).collect();
        format!(
            r#"<div class="avatar placeholder" id="avatar">{}</div>"#,
            text(&initial)
        )
    }
}

fn footer(site: &SiteData) -> &'static str {
    if site.emulated {
        r#"<footer>WeChat sign-in by the embedded emulator</footer>"#
    } else {
        r#"<footer>WeChat web sign-in (微信网页授权)</footer>"#
    }
}

/// A random value for the Content-Security-Policy's `nonce-…`.
fn nonce() -> String {
    format!("{:032x}", rand::random::<u128>())
}

const CSS: &str = r#"
:root{--green:#07c160;--bg:#ededed;--text:#191919;--muted:#7f7f7f;--link:#576b95}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--text);font:16px/1.5 -apple-system,BlinkMacSystemFont,"PingFang SC","Helvetica Neue","Microsoft YaHei",sans-serif;-webkit-text-size-adjust:100%}
main{max-width:480px;margin:0 auto;padding:12px 12px calc(16px + env(safe-area-inset-bottom))}
.card{background:#fff;border-radius:12px;padding:16px;margin-bottom:10px}
.profile{display:flex;align-items:center;gap:14px}
.avatar{width:60px;height:60px;border-radius:50%;flex:none;object-fit:cover;background:#f2f2f2;box-shadow:0 0 0 3px #fff,0 0 0 4px #e5e5e5}
.placeholder{display:flex;align-items:center;justify-content:center;font-size:26px;color:#fff;background:var(--green)}
.who{min-width:0}
h1{font-size:19px;font-weight:600;line-height:1.3;margin:0;overflow-wrap:anywhere}
.scope{margin:6px 0 0;display:inline-block;font-size:12px;line-height:18px;color:#06ad56;background:#e7f8ef;border-radius:4px;padding:0 6px}
dl{margin:0;display:grid;grid-template-columns:auto 1fr;gap:6px 12px;font-size:14px}
dt{color:var(--muted)}
dd{margin:0;min-width:0}
code{font:13px/1.5 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;overflow-wrap:anywhere}
.btn{display:block;width:100%;padding:10px;border:0;border-radius:8px;background:var(--green);color:#fff;font-family:inherit;font-size:17px;font-weight:500;line-height:1.4;text-align:center;text-decoration:none;cursor:pointer;-webkit-tap-highlight-color:transparent}
.btn:active{background:#06ad56}
.muted{color:var(--muted);font-size:14px}
.card>.muted{margin:6px 0 12px}
#api-status{margin:10px 0 0;font-size:13px}
#api-status[data-status="200"]{color:#06ad56}
pre{margin:6px 0 0;padding:10px 12px;background:#f7f7f7;border-radius:8px;font:11px/1.45 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;white-space:pre-wrap;word-break:break-all}
.links{display:flex;justify-content:center;gap:28px;margin:14px 0 10px;font-size:15px}
.links a{color:var(--link);text-decoration:none}
.center{text-align:center;padding:28px 20px}
.center h1{margin-bottom:8px}
.center .btn{margin-top:20px}
.icon{width:56px;height:56px;margin:0 auto 14px;border-radius:50%;background:var(--green);display:flex;align-items:center;justify-content:center}
footer{text-align:center;color:#b2b2b2;font-size:12px}
"#;

/// A page: mobile viewport, one stylesheet, no caching of personal data, and a strict
/// Content-Security-Policy (defence in depth behind the HTML escaping).
fn page(title: &str, body: &str, nonce: &str) -> HttpResponse {
    let html = format!(
        r#"<!DOCTYPE html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1, viewport-fit=cover">
<title>{title}</title>
<style nonce="{nonce}">{CSS}</style>
</head>
<body>
<main>
{body}
</main>
</body>
</html>
"#,
        title = text(title),
    );
    let mut res: HttpResponseBuilder = HttpResponse::Ok();
    res.content_type(header::ContentType::html())
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            format!(
                "default-src 'none'; img-src http: https: data:; style-src 'nonce-{nonce}'; \
                 script-src 'nonce-{nonce}'; connect-src 'self'; base-uri 'none'; \
                 form-action 'none'; frame-ancestors 'none'"
            ),
        ));
    res.body(html)
}

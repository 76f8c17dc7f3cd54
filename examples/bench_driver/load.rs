//! The Rust-side load cases: sign-ins (case 4), refresh storms (case 3) and the largest cookie
//! (case 5).

use super::*;

pub(crate) struct SignInLoad {
    pub(crate) signins: usize,
    pub(crate) errors: usize,
    pub(crate) first_error: Option<String>,
    pub(crate) secs: f64,
    pub(crate) latencies_ms: Vec<f64>,
    /// The app server's CPU time over the round, when the caller knows its process.
    pub(crate) server_cpu_secs: Option<f64>,
}

impl SignInLoad {
    pub(crate) fn rate(&self) -> f64 {
        self.signins as f64 / self.secs
    }

    /// The app server's CPU time per complete sign-in, ms (its four requests, the callback's
    /// two upstream calls, the session written).
    pub(crate) fn server_cpu_ms(&self) -> Option<f64> {
        self.server_cpu_secs
            .map(|cpu| cpu * 1e3 / self.signins.max(1) as f64)
    }

    pub(crate) fn to_json(&self) -> Value {
        let l = sorted(self.latencies_ms.clone());
        json!({
            "signins": self.signins, "errors": self.errors, "first_error": self.first_error,
            "secs": self.secs, "per_sec": self.rate(),
            "p50_ms": percentile(&l, 50.0), "p99_ms": percentile(&l, 99.0),
            "server_cpu_ms_per_signin": self.server_cpu_ms(),
        })
    }
}

/// `users.len()` browsers, each its own connections and cookies, signing in again and again (a
/// new session each time) until `duration` is over.
pub(crate) async fn sign_in_load(
    app: &str,
    users: &[String],
    duration: Duration,
) -> Res<SignInLoad> {
    let started = Instant::now();
    let deadline = started + duration;
    let browsers = users.iter().map(|openid| async move {
        let http = client()?;
        let (mut done, mut errors, mut first_error, mut latencies) = (0, 0, None, Vec::new());
        while Instant::now() < deadline {
            let t = Instant::now();
            match sign_in_with(&http, &mut CookieJar::default(), app, openid, "/").await {
                Ok(()) => {
                    done += 1;
                    latencies.push(ms(t.elapsed()));
                }
                Err(e) => {
                    errors += 1;
                    first_error.get_or_insert(e);
                }
            }
        }
        Ok::<_, String>((done, errors, first_error, latencies))
    });
    let mut load = SignInLoad {
        signins: 0,
        errors: 0,
        first_error: None,
        secs: 0.0,
        latencies_ms: Vec::new(),
        server_cpu_secs: None,
    };
    for result in join_all(browsers).await {
        let (done, errors, first_error, latencies) = result?;
        load.signins += done;
        load.errors += errors;
        if load.first_error.is_none() {
            load.first_error = first_error;
        }
        load.latencies_ms.extend(latencies);
    }
    load.secs = started.elapsed().as_secs_f64();
    Ok(load)
}

pub(crate) struct RoundTrips {
    pub(crate) count: usize,
    /// A whole sign-in, one at a time.
    pub(crate) signin_ms: Vec<f64>,
    /// The emulator's own round trips of a sign-in, called directly: authorize + access_token +
    /// userinfo.
    pub(crate) emulator_ms: Vec<f64>,
    /// One plain request to the app (`GET /healthz`).
    pub(crate) app_rtt_ms: Vec<f64>,
}

impl RoundTrips {
    pub(crate) fn medians(&self) -> (f64, f64, f64) {
        (
            median(&self.signin_ms),
            median(&self.emulator_ms),
            median(&self.app_rtt_ms),
        )
    }

    pub(crate) fn to_json(&self) -> Value {
        let (signin, emulator, app) = self.medians();
        json!({
            "count": self.count, "signin_p50_ms": signin, "emulator_p50_ms": emulator,
            "app_rtt_p50_ms": app, "added_p50_ms": signin - emulator,
        })
    }
}

pub(crate) async fn emulator_round_trips(
    http: &Client,
    app: &str,
    emu: &str,
    openid: &str,
) -> Res<()> {
    let redirect_uri: String =
        url::form_urlencoded::byte_serialize(format!("{app}/wechat/callback").as_bytes()).collect();
    let authorize = format!(
        "{emu}/connect/oauth2/authorize?appid={}&redirect_uri={redirect_uri}&response_type=code\
         &scope=snsapi_userinfo&state=rtt&connect_redirect=1",
        appid()
    );
    let res = http
        .get(&authorize)
        .header("x-emulator-user", openid)
        .send()
        .await
        .map_err(err("authorize"))?;
    expect(&res, StatusCode::FOUND, "direct authorize")?;
    let callback = Url::parse(&location(&res, &authorize)?).map_err(|e| e.to_string())?;
    let code = callback
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .ok_or("no code")?;
    let token: Value = serde_json::from_str(
        &http
            .get(format!(
                "{emu}/sns/oauth2/access_token?appid={}&secret={}&code={code}&grant_type=authorization_code",
                appid(),
                secret()
            ))
            .send()
            .await
            .map_err(err("access_token"))?
            .text()
            .await
            .map_err(err("access_token"))?,
    )
    .map_err(|e| e.to_string())?;
    let access_token = token["access_token"]
        .as_str()
        .ok_or_else(|| format!("access_token answered {token}"))?;
    let profile: Value = serde_json::from_str(
        &http
            .get(format!(
                "{emu}/sns/userinfo?access_token={access_token}&openid={openid}&lang=zh_CN"
            ))
            .send()
            .await
            .map_err(err("userinfo"))?
            .text()
            .await
            .map_err(err("userinfo"))?,
    )
    .map_err(|e| e.to_string())?;
    if profile["openid"] != openid {
        return Err(format!("userinfo answered {profile}"));
    }
    Ok(())
}

/// One thing at a time, interleaved: a whole sign-in, the emulator's three round trips of a
/// sign-in made directly, and one plain request to the app.
pub(crate) async fn round_trips(app: &str, emu: &str, count: usize) -> Res<RoundTrips> {
    let http = client()?;
    let openid = add_user(&http, emu, typical_user(9999)).await?;
    // Warm the connections on both sides.
    sign_in(&http, app, &openid, "/").await?;
    emulator_round_trips(&http, app, emu, &openid).await?;
    let mut out = RoundTrips {
        count,
        signin_ms: Vec::new(),
        emulator_ms: Vec::new(),
        app_rtt_ms: Vec::new(),
    };
    for _ in 0..count {
        let t = Instant::now();
        sign_in(&http, app, &openid, "/").await?;
        out.signin_ms.push(ms(t.elapsed()));

        let t = Instant::now();
        emulator_round_trips(&http, app, emu, &openid).await?;
        out.emulator_ms.push(ms(t.elapsed()));

        let t = Instant::now();
        let res = http
            .get(format!("{app}/healthz"))
            .send()
            .await
            .map_err(err("healthz"))?;
        expect(&res, StatusCode::OK, "healthz")?;
        res.bytes().await.map_err(err("healthz"))?;
        out.app_rtt_ms.push(ms(t.elapsed()));
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Case 3: refresh storms.

pub(crate) struct Storm {
    pub(crate) concurrency: usize,
    pub(crate) ok: usize,
    pub(crate) statuses: Vec<(u16, usize)>,
    pub(crate) refresh_calls: u64,
    pub(crate) auth_calls: u64,
    pub(crate) connections: u64,
    pub(crate) elapsed_ms: f64,
}

impl Storm {
    pub(crate) fn to_json(&self) -> Value {
        json!({
            "concurrency": self.concurrency, "ok": self.ok, "statuses": self.statuses,
            "refresh_calls": self.refresh_calls, "auth_calls": self.auth_calls,
            "emulator_connections": self.connections, "elapsed_ms": self.elapsed_ms,
        })
    }
}

/// One user signs in; its access token runs out (`wait`: the emulator's short token lifetime
/// passes; `expire_upstream`: the emulator is told to expire every token, which a server checking
/// on every request finds out); then `n` requests carrying that cookie at once, on `n` connections
/// opened beforehand.
pub(crate) async fn storm(
    app: &str,
    emu: &str,
    n: usize,
    wait: Duration,
    expire_upstream: bool,
) -> Res<Storm> {
    let http = client()?;
    let openid = add_user(&http, emu, typical_user(7777)).await?;
    let cookie = sign_in(&http, app, &openid, "/").await?.cookie;
    // n idle connections in the pool, so that the n requests leave together.
    let warm = (0..n).map(|_| async {
        let res = http.get(format!("{app}/healthz")).send().await;
        res.map(drop).map_err(err("healthz"))
    });
    for r in join_all(warm).await {
        r?;
    }
    if expire_upstream {
        fresh_connection_client()?
            .post(format!("{emu}/_emulator/expire-access-tokens"))
            .send()
            .await
            .map_err(err("expire-access-tokens"))?;
    }
    sleep(wait).await;
    let before = emulator_stats(emu).await?;
    let started = Instant::now();
    let requests = (0..n).map(|_| async {
        let res = http
            .get(format!("{app}/"))
            .header(header::COOKIE, &cookie)
            .send()
            .await
            .map_err(err("storm request"))?;
        let status = res.status();
        let body = res.text().await.unwrap_or_default();
        Ok::<_, String>((status, body))
    });
    let results = join_all(requests).await;
    let elapsed_ms = ms(started.elapsed());
    let after = emulator_stats(emu).await?;
    let mut statuses: HashMap<u16, usize> = HashMap::new();
    let mut ok = 0;
    for r in results {
        let (status, body) = r?;
        *statuses.entry(status.as_u16()).or_default() += 1;
        if status == StatusCode::OK && body == format!("hello {openid}") {
            ok += 1;
        }
    }
    let (connections, refresh_calls) = stats_delta(&before, &after, "refresh_token");
    let (_, auth_calls) = stats_delta(&before, &after, "auth");
    let mut statuses: Vec<(u16, usize)> = statuses.into_iter().collect();
    statuses.sort_unstable();
    Ok(Storm {
        concurrency: n,
        ok,
        statuses,
        refresh_calls,
        auth_calls,
        connections,
        elapsed_ms,
    })
}

// ---------------------------------------------------------------------------------------------
// Case 5: the largest cookie.

pub(crate) struct CookieSize {
    /// `id=…` as sent back by the browser (name + value).
    pub(crate) pair: usize,
    /// The whole `Set-Cookie` header value (name, value, attributes).
    pub(crate) header: usize,
}

impl CookieSize {
    pub(crate) fn to_json(&self) -> Value {
        json!({ "cookie_name_value_bytes": self.pair, "set_cookie_bytes": self.header })
    }
}

/// The most WeChat sends (nickname capped at 128 bytes, a 480-byte avatar URL kept whole, a
/// unionid, 4 privileges), signed in while three other sign-ins are pending with the longest
/// return-to kept (other tabs).
pub(crate) async fn worst_case_cookie(app: &str, emu: &str) -> Res<CookieSize> {
    let http = client()?;
    let openid = add_user(
        &http,
        emu,
        json!({
            "nickname": "😀".repeat(64),
            "unionid": format!("o{}", "U".repeat(28)),
            "headimgurl": format!("https://thirdwx.qlogo.cn/mmopen/vi_32/{}/132", "Q".repeat(440)),
            "privilege": vec!["chinaunicom"; 4],
            "province": "广东", "city": "深圳", "country": "中国",
        }),
    )
    .await?;
    let path = format!("/?{}", "q".repeat(240));
    let mut jar = CookieJar::default();
    for _ in 0..3 {
        let res = jar
            .request(&http, &format!("{app}{path}"))
            .send()
            .await
            .map_err(err("page"))?;
        expect(&res, StatusCode::FOUND, "anonymous page")?;
        jar.take(&res);
    }
    sign_in_with(&http, &mut jar, app, &openid, &path).await?;
    Ok(CookieSize {
        pair: jar.largest.0,
        header: jar.largest.1,
    })
}

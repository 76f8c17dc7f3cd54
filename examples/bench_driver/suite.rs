//! The whole suite (`run`): the servers, every case in turn, and the results written.

use super::*;

pub(crate) struct Settings {
    pub(crate) smoke: bool,
    pub(crate) rounds: usize,
    pub(crate) secs: u64,
    pub(crate) connections: usize,
    pub(crate) browsers: usize,
    pub(crate) storm: usize,
    pub(crate) rtt_count: usize,
    pub(crate) wrk: String,
    pub(crate) server_cpu: Option<usize>,
    pub(crate) client_cpu: Option<usize>,
    pub(crate) profile: &'static str,
}

/// One steady-state server and what wrk measured on it, round by round.
pub(crate) struct Steady {
    pub(crate) label: &'static str,
    pub(crate) mode: &'static str,
    pub(crate) proc: Proc,
    pub(crate) runs: Vec<Wrk>,
    /// `wechat-check0`: (connections accepted, `/sns/auth` calls) per round.
    pub(crate) upstream: Vec<(u64, u64)>,
    /// Per round: the server's CPU time (user + system, all threads) while wrk ran, in seconds.
    pub(crate) cpu_secs: Vec<f64>,
    pub(crate) command: String,
}

impl Steady {
    /// The server's CPU time per answered request, in µs, round by round.
    pub(crate) fn cpu_us(&self) -> Vec<f64> {
        self.runs
            .iter()
            .zip(&self.cpu_secs)
            .map(|(w, cpu)| cpu * 1e6 / w.requests.max(1) as f64)
            .collect()
    }

    /// How busy the server's core was while wrk ran, in % of one core, round by round.
    pub(crate) fn busy(&self, secs: u64) -> Vec<f64> {
        self.cpu_secs
            .iter()
            .map(|cpu| cpu * 100.0 / secs as f64)
            .collect()
    }

    pub(crate) fn rps(&self) -> Vec<f64> {
        self.runs.iter().map(|w| w.rps).collect()
    }
    pub(crate) fn p50(&self) -> Vec<f64> {
        self.runs.iter().map(|w| w.p50_ms).collect()
    }
    pub(crate) fn p99(&self) -> Vec<f64> {
        self.runs.iter().map(|w| w.p99_ms).collect()
    }
}

pub(crate) fn random_key() -> String {
    (0..8).fold(String::with_capacity(128), |mut key, _| {
        let _ = write!(key, "{:016x}", rand::random::<u64>());
        key
    })
}

/// What every case needs: the settings, where the binaries and logs are, and the emulator every
/// server but the storm's uses, with the environment that points a server at it.
pub(crate) struct Bench {
    pub(crate) settings: Settings,
    pub(crate) bin: PathBuf,
    /// A second build of the middleware (e.g. with a fix) measured in the same rounds.
    pub(crate) candidate: Option<PathBuf>,
    pub(crate) logs: PathBuf,
    /// The session key every server shares, so that one cookie is accepted by all.
    key: String,
    pub(crate) emulator: Proc,
    /// The environment of a 1-worker server using [`emulator`](Self::emulator).
    pub(crate) upstream: Vec<(&'static str, String)>,
}

impl Bench {
    fn start(args: &Args) -> Res<Bench> {
        let smoke = args.flag("smoke");
        let can_pin = !args.flag("no-pin") && which("taskset").is_some() && online_cpus() >= 2;
        let exe = env::current_exe().map_err(|e| e.to_string())?;
        let profile = if exe.components().any(|c| c.as_os_str() == "release") {
            "release"
        } else {
            "debug"
        };
        let settings = Settings {
            smoke,
            rounds: args.number("rounds", if smoke { 1 } else { 5 })?,
            secs: args.number("secs", if smoke { 1 } else { 10 })?,
            connections: args.number("connections", 50)?,
            browsers: args.number("browsers", if smoke { 5 } else { 50 })?,
            storm: args.number("storm", if smoke { 20 } else { 200 })?,
            rtt_count: args.number("rtt-count", if smoke { 5 } else { 200 })?,
            wrk: args.string("wrk").unwrap_or_else(|| "wrk".to_owned()),
            server_cpu: can_pin.then_some(0),
            client_cpu: can_pin.then_some(1),
            profile,
        };
        let bin = args
            .string("server-bin")
            .map(PathBuf::from)
            .unwrap_or_else(|| exe.with_file_name("bench_server"));
        let logs = exe
            .parent()
            .and_then(Path::parent)
            .unwrap_or(Path::new("."))
            .join("bench-logs");
        fs::create_dir_all(&logs).map_err(|e| e.to_string())?;
        let key = random_key();
        let env = |workers| server_env(&key, workers);
        // The emulator (the "outside world") shares CPU 1 with the load generator.
        let emulator = Proc::spawn(
            &bin,
            "emulator",
            "emulator",
            settings.client_cpu,
            &env(1),
            &logs,
        )?;
        let mut upstream = env(1);
        upstream.push(("WECHAT_OPEN_BASE", emulator.url.clone()));
        upstream.push(("WECHAT_API_BASE", emulator.url.clone()));
        Ok(Bench {
            settings,
            bin,
            candidate: args.string("compare-bin").map(PathBuf::from),
            logs,
            key,
            emulator,
            upstream,
        })
    }

    pub(crate) fn emu(&self) -> &str {
        &self.emulator.url
    }

    /// The environment of a server with `workers` workers and no emulator chosen.
    fn env(&self, workers: usize) -> Vec<(&'static str, String)> {
        server_env(&self.key, workers)
    }
}

/// What every server is started with: its workers, the shared session key, quiet logs.
fn server_env(key: &str, workers: usize) -> Vec<(&'static str, String)> {
    vec![
        ("WORKERS", workers.to_string()),
        ("SESSION_KEY", key.to_owned()),
        ("RUST_LOG", "warn".to_owned()),
    ]
}

/// Case 1 head to head: per server (index of the steady servers), its throughput and CPU µs per
/// request in each round, and the wrk command.
pub(crate) struct HeadToHead {
    pub(crate) rps: Vec<Vec<f64>>,
    pub(crate) cpu_us: Vec<Vec<f64>>,
    pub(crate) command: String,
}

pub(crate) fn run(system: &SystemRunner, args: &Args) -> Res<()> {
    let started = Instant::now();
    let loadavg = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let b = Bench::start(args)?;
    let mut steady = start_steady(&b)?;
    let (cookie, openid) = system.block_on(first_sign_in(b.emu(), &steady))?;
    steady_rounds(system, &b, &mut steady, &cookie)?;
    let h2h = head_to_head(&b, &steady, &cookie)?;
    // Case 6: peak RSS after the steady-state rounds.
    let memory: Vec<(String, (u64, u64))> = steady
        .iter()
        .map(|s| (s.mode.to_owned(), s.proc.memory_kib()))
        .collect();
    let instructions = instruction_counts(&b, &cookie)?;
    let breakdown = if instructions.is_empty() {
        Vec::new()
    } else {
        let n = if b.settings.smoke { 20 } else { 2000 };
        breakdown(&b.logs, ("session-only", "wechat"), n, 15)?
    };
    // Case 7: the sample site's stack with and without WeChatAuth, 1 and many users.
    let sample = sample_stack::measure(
        system,
        &b.settings,
        (&b.bin, &b.upstream, &b.logs),
        b.emu(),
        (&steady[1].proc, &steady[3].proc),
    )?;
    let (signin, rtt) = sign_ins(system, &b, &steady[1].proc)?;
    // Case 5: cookie sizes.
    let worst = system.block_on(worst_case_cookie(&steady[1].proc.url, b.emu()))?;
    eprintln!(
        "cookie: typical {} bytes, worst {}",
        cookie.len(),
        worst.to_json()
    );
    let (storms_expired, storms_revoked) = storms(system, &b, &steady[3].proc.url)?;

    let micro = args
        .string("criterion")
        .map(|dir| read_criterion(Path::new(&dir)))
        .unwrap_or_default();
    let report = Report {
        settings: &b.settings,
        micro: &micro,
        head_to_head: &h2h.rps,
        h2h_cpu_us: &h2h.cpu_us,
        h2h_command: &h2h.command,
        instructions: &instructions,
        breakdown: &breakdown,
        icount_requests: if b.settings.smoke { 20 } else { 2000 },
        steady: &steady,
        memory: &memory,
        signin: &signin,
        rtt: &rtt,
        typical_cookie: cookie.len(),
        worst: &worst,
        storms_expired: &storms_expired,
        storms_revoked: &storms_revoked,
        sample: &sample,
        openid_len: openid.len(),
        loadavg: loadavg.trim().to_owned(),
        elapsed: started.elapsed(),
    }
    .markdown();
    println!("{report}");
    let out_path = args
        .string("out")
        .or_else(|| (!b.settings.smoke).then(|| "BENCHMARKS.md".to_owned()));
    if let Some(path) = out_path {
        write_results(Path::new(&path), &report)?;
        eprintln!("bench: results written to {path}");
    }
    Ok(())
}

/// The steady-state servers: the baseline, `wechat`, `session-read`, `wechat-check0` (in that
/// order) and the candidate build, if any.
fn start_steady(b: &Bench) -> Res<Vec<Steady>> {
    let spawn = |label, mode, bin: &Path, as_mode| -> Res<Steady> {
        Ok(Steady {
            label,
            mode,
            proc: Proc::spawn(
                bin,
                mode,
                as_mode,
                b.settings.server_cpu,
                &b.upstream,
                &b.logs,
            )?,
            runs: Vec::new(),
            upstream: Vec::new(),
            cpu_secs: Vec::new(),
            command: String::new(),
        })
    };
    let mut steady = vec![
        spawn(
            "SessionMiddleware alone (baseline)",
            "session-only",
            &b.bin,
            "session-only",
        )?,
        spawn("WeChatAuth + SessionMiddleware", "wechat", &b.bin, "wechat")?,
        spawn(
            "SessionMiddleware, handler parses the sign-in",
            "session-read",
            &b.bin,
            "session-read",
        )?,
        spawn(
            "WeChatAuth, check every request",
            "wechat-check0",
            &b.bin,
            "wechat-check0",
        )?,
    ];
    if let Some(other) = &b.candidate {
        steady.push(spawn(
            "WeChatAuth + SessionMiddleware, candidate build (`--compare-bin`)",
            "wechat-candidate",
            other,
            "wechat",
        )?);
    }
    eprintln!(
        "bench: {} build, emulator {}, servers {}",
        b.settings.profile,
        b.emu(),
        steady
            .iter()
            .map(|s| format!("{}={}", s.mode, s.proc.url))
            .collect::<Vec<_>>()
            .join(" ")
    );
    Ok(steady)
}

/// One signed-in cookie, accepted by every server (they share the key), and its openid.
async fn first_sign_in(emu: &str, steady: &[Steady]) -> Res<(String, String)> {
    let http = client()?;
    let openid = add_user(&http, emu, typical_user(0)).await?;
    let signed = sign_in(&http, &steady[1].proc.url, &openid, "/").await?;
    for s in steady {
        let res = http
            .get(format!("{}/", s.proc.url))
            .header(header::COOKIE, &signed.cookie)
            .send()
            .await
            .map_err(err("check"))?;
        let status = res.status();
        let body = res.text().await.unwrap_or_default();
        if status != StatusCode::OK || body.len() != "hello ".len() + 28 {
            return Err(format!("{} answered {status} {body:?}", s.mode));
        }
    }
    Ok((signed.cookie, openid))
}

/// Cases 1 and 2: rounds of wrk against each steady server, the order rotated each round.
fn steady_rounds(system: &SystemRunner, b: &Bench, steady: &mut [Steady], cookie: &str) -> Res<()> {
    for round in 0..b.settings.rounds {
        let servers = steady.len();
        for i in 0..servers {
            let s = &mut steady[(i + round) % servers];
            let cmd = wrk_command(&b.settings, Load::Cookie(cookie), &s.proc);
            let before = system.block_on(emulator_stats(b.emu()))?;
            let cpu_before = s.proc.cpu_secs();
            let result = run_wrk(&cmd)?;
            let cpu = s.proc.cpu_secs() - cpu_before;
            // Requests wrk left in flight finish their upstream calls after it exits.
            std::thread::sleep(Duration::from_millis(1000));
            let after = system.block_on(emulator_stats(b.emu()))?;
            let (connections, auth) = stats_delta(&before, &after, "auth");
            eprintln!(
                "round {}/{} {:<14} {:>9.0} req/s  p50 {:>6.2} ms  p99 {:>6.2} ms  {} requests{}",
                round + 1,
                b.settings.rounds,
                s.mode,
                result.rps,
                result.p50_ms,
                result.p99_ms,
                result.requests,
                if s.mode == "wechat-check0" {
                    format!(", emulator: {connections} connections, {auth} /sns/auth calls")
                } else {
                    String::new()
                }
            );
            if result.bad > 0 {
                return Err(format!(
                    "{}: {} non-2xx answers or socket errors",
                    s.mode, result.bad
                ));
            }
            if s.mode != "wechat-check0" && auth > 0 {
                return Err(format!("{}: {auth} unexpected /sns/auth calls", s.mode));
            }
            s.upstream.push((connections, auth));
            s.cpu_secs.push(cpu);
            s.runs.push(result);
            s.command = shell_words(&cmd).replace(cookie, "id=…");
        }
    }
    Ok(())
}

/// Case 1, head to head: the servers share CPU 0 at the same time, each loaded by its own wrk,
/// so that whatever else the machine does slows them alike; the ratio of their throughputs is
/// the inverse ratio of their CPU cost per request.
fn head_to_head(b: &Bench, steady: &[Steady], cookie: &str) -> Res<HeadToHead> {
    let contenders: Vec<usize> = (0..steady.len())
        .filter(|&i| steady[i].mode != "wechat-check0")
        .collect();
    let mut h2h = HeadToHead {
        rps: vec![Vec::new(); steady.len()],
        cpu_us: vec![Vec::new(); steady.len()],
        command: String::new(),
    };
    for round in 0..b.settings.rounds {
        let runs: Vec<(&Proc, Vec<String>)> = contenders
            .iter()
            .map(|&i| {
                let server = &steady[i].proc;
                (
                    server,
                    wrk_command(&b.settings, Load::Cookie(cookie), server),
                )
            })
            .collect();
        if h2h.command.is_empty() {
            h2h.command = shell_words(&runs[0].1).replace(cookie, "id=…");
        }
        let mut line = format!("round {}/{} head to head:", round + 1, b.settings.rounds);
        for (&i, (wrk, cpu_us)) in contenders.iter().zip(run_wrk_at_once(&runs)?) {
            let _ = write!(line, " {} {:.0}", steady[i].mode, wrk.rps);
            h2h.rps[i].push(wrk.rps);
            h2h.cpu_us[i].push(cpu_us);
        }
        eprintln!("{line} req/s");
    }
    Ok(h2h)
}

/// Case 1, in instructions: callgrind on a server of each steady mode.
fn instruction_counts(b: &Bench, cookie: &String) -> Res<Vec<(&'static str, f64)>> {
    let mut instructions = Vec::new();
    if which("valgrind").is_some() && which("callgrind_control").is_some() {
        let counts = if b.settings.smoke {
            (5, 20)
        } else {
            (200, 2000)
        };
        let mut runs = vec![
            (&b.bin, "session-only", "session-only"),
            (&b.bin, "wechat", "wechat"),
            (&b.bin, "session-read", "session-read"),
        ];
        if let Some(other) = &b.candidate {
            runs.push((other, "wechat-candidate", "wechat"));
        }
        for (server_bin, name, mode) in runs {
            let ir = icount(
                server_bin,
                (name, mode),
                b.settings.server_cpu,
                &b.upstream,
                &b.logs,
                std::slice::from_ref(cookie),
                counts,
            )?;
            eprintln!("callgrind {name:<16} {ir:>9.0} instructions per request");
            instructions.push((name, ir));
        }
    } else {
        eprintln!("bench: valgrind not found, no instruction counts");
    }
    Ok(instructions)
}

/// Case 4: sign-ins against the `wechat` server, with its CPU time per sign-in, and their round
/// trips.
fn sign_ins(system: &SystemRunner, b: &Bench, wechat: &Proc) -> Res<(Vec<SignInLoad>, RoundTrips)> {
    let wechat_url = wechat.url.as_str();
    let users =
        system.block_on(async { add_users(&client()?, b.emu(), b.settings.browsers).await })?;
    let mut signin_rounds = Vec::new();
    for round in 0..b.settings.rounds {
        let cpu_before = wechat.cpu_secs();
        let mut load = system.block_on(sign_in_load(
            wechat_url,
            &users,
            Duration::from_secs(b.settings.secs),
        ))?;
        load.server_cpu_secs = Some(wechat.cpu_secs() - cpu_before);
        eprintln!(
            "round {}/{} sign-in        {:>9.1} sign-ins/s, {:.3} ms server CPU each, {} errors",
            round + 1,
            b.settings.rounds,
            load.rate(),
            load.server_cpu_ms().unwrap_or(f64::NAN),
            load.errors
        );
        if load.errors > 0 {
            return Err(format!(
                "sign-in errors: {}",
                load.first_error.unwrap_or_default()
            ));
        }
        signin_rounds.push(load);
    }
    let rtt = system.block_on(round_trips(wechat_url, b.emu(), b.settings.rtt_count))?;
    eprintln!("sign-in round trips: {}", rtt.to_json());
    Ok((signin_rounds, rtt))
}

/// Case 3: refresh storms, (a) the token's lifetime ran out, (b) WeChat revoked it (found by the
/// check-every-request server at `check0_url`).
fn storms(system: &SystemRunner, b: &Bench, check0_url: &str) -> Res<(Vec<Storm>, Vec<Storm>)> {
    // Case 3a: the access token's lifetime runs out; a server with 2 workers and its own emulator.
    let ttl = 2u64;
    let mut storm_env = b.env(1);
    storm_env.push(("EMULATOR_ACCESS_TOKEN_TTL", ttl.to_string()));
    let storm_emulator = Proc::spawn(
        &b.bin,
        "storm-emulator",
        "emulator",
        b.settings.client_cpu,
        &storm_env,
        &b.logs,
    )?;
    let mut storm_app_env = b.env(2);
    storm_app_env.push(("WECHAT_OPEN_BASE", storm_emulator.url.clone()));
    storm_app_env.push(("WECHAT_API_BASE", storm_emulator.url.clone()));
    storm_app_env.push(("WECHAT_REFRESH_MARGIN", "0".to_owned()));
    let storm_app = Proc::spawn(&b.bin, "storm-app", "wechat", None, &storm_app_env, &b.logs)?;
    let storm_rounds = b.settings.rounds.clamp(1, 5);
    let mut storms_expired = Vec::new();
    for round in 0..storm_rounds {
        let s = system.block_on(storm(
            &storm_app.url,
            &storm_emulator.url,
            b.settings.storm,
            Duration::from_millis(ttl * 1000 + 1200),
            false,
        ))?;
        eprintln!(
            "storm {}/{storm_rounds} (expired): {}",
            round + 1,
            s.to_json()
        );
        storms_expired.push(s);
    }
    drop(storm_app);
    drop(storm_emulator);

    // Case 3b: WeChat says the token is gone (42001 on /sns/auth), found by the check-every-request
    // server. Last, because it expires every token of the main emulator.
    let mut storms_revoked = Vec::new();
    for round in 0..storm_rounds {
        let s = system.block_on(storm(
            check0_url,
            b.emu(),
            b.settings.storm,
            Duration::ZERO,
            true,
        ))?;
        eprintln!(
            "storm {}/{storm_rounds} (revoked): {}",
            round + 1,
            s.to_json()
        );
        storms_revoked.push(s);
    }
    Ok((storms_expired, storms_revoked))
}

pub(crate) const START: &str =
    "<!-- bench-results:start (written by scripts/bench.sh; edits inside are lost) -->";
pub(crate) const END: &str = "<!-- bench-results:end -->";

/// Replaces the generated section of `path`, keeping what is written around it.
pub(crate) fn write_results(path: &Path, report: &str) -> Res<()> {
    let section = format!("{START}\n{report}\n{END}");
    let text = match fs::read_to_string(path) {
        Ok(old) => match (old.find(START), old.find(END)) {
            (Some(a), Some(b)) if a < b => {
                format!("{}{section}{}", &old[..a], &old[b + END.len()..])
            }
            _ => format!("{}\n{section}\n", old.trim_end()),
        },
        Err(_) => format!("# Benchmarks\n\n{section}\n"),
    };
    fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

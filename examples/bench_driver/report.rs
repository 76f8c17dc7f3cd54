//! The results as markdown, section by section.

use super::*;

pub(crate) struct Report<'a> {
    pub(crate) settings: &'a Settings,
    pub(crate) micro: &'a [(&'static str, Estimate)],
    /// Per server (index of `steady`), its throughput in each head-to-head round.
    pub(crate) head_to_head: &'a [Vec<f64>],
    /// The same rounds: each server's CPU µs per request.
    pub(crate) h2h_cpu_us: &'a [Vec<f64>],
    pub(crate) h2h_command: &'a str,
    pub(crate) instructions: &'a [(&'static str, f64)],
    /// `wechat` − `session-only`, function by function (callgrind), when valgrind ran.
    pub(crate) breakdown: &'a [(String, f64)],
    pub(crate) icount_requests: usize,
    pub(crate) steady: &'a [Steady],
    pub(crate) memory: &'a [(String, (u64, u64))],
    pub(crate) signin: &'a [SignInLoad],
    pub(crate) rtt: &'a RoundTrips,
    pub(crate) typical_cookie: usize,
    pub(crate) worst: &'a CookieSize,
    pub(crate) storms_expired: &'a [Storm],
    pub(crate) storms_revoked: &'a [Storm],
    pub(crate) sample: &'a sample_stack::SampleStack,
    pub(crate) openid_len: usize,
    pub(crate) loadavg: String,
    pub(crate) elapsed: Duration,
}

/// Whether the sequential rounds measured the servers, not the load generator: both kept their
/// core at least 90 % busy (median over rounds).
pub(crate) fn seq_cpu_bound(a: &Steady, b: &Steady, secs: u64) -> bool {
    median(&a.busy(secs)) >= 90.0 && median(&b.busy(secs)) >= 90.0
}

/// Round by round, `a`'s CPU per request over `b`'s.
pub(crate) fn paired_cpu(a: &Steady, b: &Steady) -> Spread {
    Spread::of(
        &a.cpu_us()
            .iter()
            .zip(b.cpu_us())
            .map(|(x, y)| x / y)
            .collect::<Vec<_>>(),
    )
}

pub(crate) fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "**missed**"
    }
}

/// What several sections use: the steady servers by role and the figures derived from the runs.
pub(crate) struct Figures<'a> {
    base: &'a Steady,
    wechat: &'a Steady,
    read: &'a Steady,
    check0: &'a Steady,
    tput: Spread,
    p99: Spread,
    p50: Spread,
    read_tput: Spread,
    check_tput: Spread,
    conns: Vec<f64>,
    reqs_per_conn: Vec<f64>,
    auth_per_req: Vec<f64>,
    refresh_expired: Vec<f64>,
    refresh_revoked: Vec<f64>,
    rates: Vec<f64>,
    /// The `wechat` server's CPU time per sign-in, ms, round by round.
    signin_cpu: Vec<f64>,
    signin_lat: Vec<f64>,
    rtt_signin: f64,
    rtt_emu: f64,
    rtt_app: f64,
    cpu_bound: bool,
    all_one: bool,
    candidate: Option<&'a Steady>,
}

/// Round by round, `f` of `a`'s runs over `f` of `b`'s (the rounds are interleaved, so a round's
/// pair saw the same machine).
pub(crate) fn paired(a: &Steady, b: &Steady, f: fn(&Wrk) -> f64) -> Spread {
    Spread::of(
        &a.runs
            .iter()
            .zip(&b.runs)
            .map(|(x, y)| f(x) / f(y))
            .collect::<Vec<_>>(),
    )
}

impl Report<'_> {
    pub(crate) fn markdown(&self) -> String {
        let f = self.figures();
        let mut o = String::new();
        let w = &mut o;
        self.intro(w);
        self.steady_state(w, &f);
        self.check_every_request(w, &f);
        self.storms(w, &f);
        self.sign_ins(w, &f);
        self.cookie_size(w);
        self.memory(w);
        self.sample.markdown(w, self.settings, self.icount_requests);
        self.micro_benchmark(w);
        self.closing(w, &f);
        o
    }

    /// The figures several sections share, worked out once.
    fn figures(&self) -> Figures<'_> {
        let (base, wechat, read, check0) = (
            self.by_mode("session-only"),
            self.by_mode("wechat"),
            self.by_mode("session-read"),
            self.by_mode("wechat-check0"),
        );
        let tput = paired(wechat, base, |w| w.rps);
        let p99 = paired(wechat, base, |w| w.p99_ms);
        let p50 = paired(wechat, base, |w| w.p50_ms);
        let read_tput = paired(wechat, read, |w| w.rps);
        let check_tput = paired(check0, wechat, |w| w.rps);
        let conns: Vec<f64> = check0.upstream.iter().map(|u| u.0 as f64).collect();
        let reqs_per_conn: Vec<f64> = check0
            .runs
            .iter()
            .zip(&check0.upstream)
            .map(|(w, u)| w.requests as f64 / (u.0.max(1)) as f64)
            .collect();
        let auth_per_req: Vec<f64> = check0
            .runs
            .iter()
            .zip(&check0.upstream)
            .map(|(w, u)| u.1 as f64 / w.requests.max(1) as f64)
            .collect();
        let refresh_expired: Vec<f64> = self
            .storms_expired
            .iter()
            .map(|x| x.refresh_calls as f64)
            .collect();
        let refresh_revoked: Vec<f64> = self
            .storms_revoked
            .iter()
            .map(|x| x.refresh_calls as f64)
            .collect();
        let rates: Vec<f64> = self.signin.iter().map(SignInLoad::rate).collect();
        let signin_cpu: Vec<f64> = self
            .signin
            .iter()
            .filter_map(SignInLoad::server_cpu_ms)
            .collect();
        let signin_lat = sorted(
            self.signin
                .iter()
                .flat_map(|l| l.latencies_ms.iter().copied())
                .collect(),
        );
        let (rtt_signin, rtt_emu, rtt_app) = self.rtt.medians();
        let cpu_bound = seq_cpu_bound(base, wechat, self.settings.secs);
        let all_one = refresh_expired
            .iter()
            .chain(&refresh_revoked)
            .all(|&r| r == 1.0);
        let candidate = self.steady.iter().find(|x| x.mode == "wechat-candidate");
        Figures {
            base,
            wechat,
            read,
            check0,
            tput,
            p99,
            p50,
            read_tput,
            check_tput,
            conns,
            reqs_per_conn,
            auth_per_req,
            refresh_expired,
            refresh_revoked,
            rates,
            signin_cpu,
            signin_lat,
            rtt_signin,
            rtt_emu,
            rtt_app,
            cpu_bound,
            all_one,
            candidate,
        }
    }

    /// The heading, the machine and the setup.
    fn intro(&self, w: &mut String) {
        let s = self.settings;
        let _ = writeln!(
            w,
            "## Results{}\n",
            if s.smoke {
                " (SMOKE RUN: 1 short round, tiny counts; the numbers mean nothing)"
            } else {
                ""
            }
        );
        let _ =
            writeln!(
            w,
            "Produced by `scripts/bench.sh{}` (driver: `bench_driver {}`) in {:.0} s ({} build). \
             Machine: {}, {} CPUs, Linux {}, {}. Load average at the start: {}.\n",
            if s.smoke { " --smoke" } else { "" },
            env::args().skip(1).collect::<Vec<_>>().join(" "),
            self.elapsed.as_secs_f64(),
            s.profile,
            command_output("sh", &["-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"]),
            online_cpus(),
            command_output("uname", &["-r"]),
            command_output("rustc", &["--version"]),
            self.loadavg,
        );
        let _ = writeln!(
            w,
            "Setup: every app server runs **1 worker**{}; the emulator (1 worker), `wrk` (1 thread) and \
             the driver{}. Steady state: {} rounds of {} s per server, the servers' order rotated each \
             round; values are the median (min–max) over rounds; ratios are taken round by round \
             (the runs of a round are less than a minute apart) and then summarised the same way. \
             Session: actix-session's cookie store as shipped (encrypted `Private` cookie), one key \
             shared by the servers so that one signed-in cookie ({} bytes, `snsapi_userinfo`, \
             typical profile, unionid) is sent to all of them.\n",
            if s.server_cpu.is_some() { " pinned to CPU 0 (`taskset -c 0`)" } else { "" },
            if s.client_cpu.is_some() { " share CPU 1" } else { " are not pinned" },
            s.rounds,
            s.secs,
            self.typical_cookie,
        );
    }

    /// Case 1: the signed-in steady state, sequential, head to head and in instructions.
    fn steady_state(&self, w: &mut String, f: &Figures<'_>) {
        let Figures {
            base,
            wechat,
            read,
            tput,
            p99,
            p50,
            read_tput,
            cpu_bound,
            candidate,
            ..
        } = f;
        let s = self.settings;
        let _ = writeln!(w, "### 1. Signed-in steady state, no check due\n");
        let _ = writeln!(
            w,
            "`GET /` answering `hello <openid>` ({} bytes of body in every mode). Command per round \
             (the cookie elided):\n\n```sh\n{}\n```\n",
            "hello ".len() + self.openid_len,
            wechat.command
        );
        let _ = writeln!(
            w,
            "| server | requests/s | p50 ms | p99 ms | server CPU µs per request | server core busy |\n\
             |---|---|---|---|---|---|"
        );
        for x in [base, wechat, read].into_iter().chain(candidate) {
            let _ = writeln!(
                w,
                "| {} (`{}`) | {} | {} | {} | {} | {} % |",
                x.label,
                x.mode,
                Spread::of(&x.rps()).show(0),
                Spread::of(&x.p50()).show(2),
                Spread::of(&x.p99()).show(2),
                Spread::of(&x.cpu_us()).show(1),
                Spread::of(&x.busy(s.secs)).show(0),
            );
        }
        let _ = writeln!(
            w,
            "\n- throughput, `wechat` / `session-only`: **{}** (target ≥ 0.90: {})\n\
             - server CPU per request, `session-only` / `wechat` (the throughput it allows): **{}**\n\
             - p99, `wechat` / `session-only`: **{}×** (target ≤ 1.2×: {}); p50: {}×\n\
             - throughput, `wechat` / `session-read` (an app parsing the same sign-in itself): {}\n",
            tput.show(3),
            if *cpu_bound {
                verdict(tput.median >= 0.90)
            } else {
                "not measurable in this run: the servers' core was not saturated (the load \
                 generator or the machine was the limit), see the CPU columns and head to head"
            },
            paired_cpu(base, wechat).show(3),
            p99.show(2),
            verdict(p99.median <= 1.2),
            p50.show(2),
            read_tput.show(3),
        );
        self.head_to_head_table(w, f);
        self.instruction_table(w);
    }

    /// Case 1 head to head: the servers sharing one core at the same time.
    fn head_to_head_table(&self, w: &mut String, f: &Figures<'_>) {
        let Figures {
            base,
            wechat,
            candidate,
            ..
        } = f;
        let s = self.settings;
        if let Some(h2h_wechat) = self.h2h("wechat") {
            let _ = writeln!(
                w,
                "**Head to head**, the same comparison made immune to the machine's load: the \
                 servers run *at the same time*, all on CPU 0, each under its own `wrk` (started \
                 together, {} rounds of {} s), so that whatever else runs slows them alike and each \
                 gets an equal share of the core; the ratio of their throughputs is the inverse \
                 ratio of their CPU cost per request. Latencies are meaningless here (the servers \
                 wait for each other's time slices).\n\n```sh\n{}   # one per server, concurrently\n```\n\n\
                 | server | requests/s sharing the core | / `session-only` | CPU µs per request | `session-only`'s / this |\n|---|---|---|---|---|",
                s.rounds, s.secs, self.h2h_command
            );
            let base_i = self.idx("session-only");
            for (i, x) in self.steady.iter().enumerate() {
                if self.head_to_head[i].is_empty() {
                    continue;
                }
                let cpu_ratio = base_i.map(|b| {
                    Spread::of(
                        &self.h2h_cpu_us[b]
                            .iter()
                            .zip(&self.h2h_cpu_us[i])
                            .map(|(y, x)| y / x)
                            .collect::<Vec<_>>(),
                    )
                });
                let _ = writeln!(
                    w,
                    "| `{}` | {} | {} | {} | {} |",
                    x.mode,
                    Spread::of(&self.head_to_head[i]).show(0),
                    self.h2h(x.mode).map_or("–".to_owned(), |r| r.show(3)),
                    Spread::of(&self.h2h_cpu_us[i]).show(1),
                    cpu_ratio.map_or("–".to_owned(), |r| r.show(3)),
                );
            }
            let _ = writeln!(
                w,
                "\nThroughput head to head, `wechat` / `session-only`: **{}** (target ≥ 0.90: {}).\n",
                h2h_wechat.show(3),
                verdict(h2h_wechat.median >= 0.90)
            );
        }
        if let Some(cand) = candidate {
            let _ = writeln!(
                w,
                "- candidate build: throughput / `session-only` **{}**, / `wechat` {}; p99 / \
                 `session-only` {}×\n",
                paired(cand, base, |w| w.rps).show(3),
                paired(cand, wechat, |w| w.rps).show(3),
                paired(cand, base, |w| w.p99_ms).show(2),
            );
        }
    }

    /// Case 1 in user-space instructions (callgrind).
    fn instruction_table(&self, w: &mut String) {
        if !self.instructions.is_empty() {
            let ir = |mode: &str| self.ir(mode).unwrap_or(f64::NAN);
            let _ = writeln!(
                w,
                "The same servers in user-space instructions per request, which do not move with the \
                 machine's load: each server run under `valgrind --tool=callgrind` (1 worker), \
                 counters zeroed after a warm-up, then {} sequential keep-alive requests with the \
                 cookie, then dumped (`callgrind_control -z` / `-d`). The kernel's share (socket \
                 reads and writes, the same in every mode) is not counted, so these ratios overstate \
                 the difference in wall-clock throughput.\n\n\
                 | server | instructions per request | / `session-only` |\n|---|---|---|",
                self.icount_requests
            );
            for (mode, count) in self.instructions {
                let _ = writeln!(
                    w,
                    "| `{mode}` | {count:.0} | {:.3} |",
                    count / ir("session-only")
                );
            }
            let _ = writeln!(
                w,
                "\n`WeChatAuth` adds **{:.0} instructions** to a signed-in request ({:+.1} %; \
                 target ≤ +2,000: {}).\n",
                ir("wechat") - ir("session-only"),
                (ir("wechat") / ir("session-only") - 1.0) * 100.0,
                verdict(ir("wechat") - ir("session-only") <= 2000.0)
            );
            if !self.breakdown.is_empty() {
                let _ = writeln!(
                    w,
                    "Where they go: each function's own instructions per request (exclusive, \
                     `callgrind_annotate`), `wechat` − `session-only`, the largest first:\n\n\
                     | function | instructions per request |\n|---|---|"
                );
                for (function, delta) in self.breakdown {
                    let _ = writeln!(w, "| `{function}` | {delta:+.0} |");
                }
                let _ = writeln!(w);
            }
        }
    }

    /// Case 2: a check on every request.
    fn check_every_request(&self, w: &mut String, f: &Figures<'_>) {
        let Figures {
            check0,
            check_tput,
            conns,
            reqs_per_conn,
            auth_per_req,
            ..
        } = f;
        let s = self.settings;
        let _ = writeln!(
            w,
            "### 2. A `/sns/auth` check on every request (`check_interval = 0`)\n"
        );
        let _ = writeln!(w, "```sh\n{}\n```\n", check0.command);
        let _ = writeln!(
            w,
            "| | median (min–max) |\n|---|---|\n\
             | requests/s | {} |\n| p50 / p99 ms | {} / {} |\n\
             | throughput / case 1 (`wechat`) (target ≥ 0.5) | **{}** |\n\
             | TCP connections the emulator accepted per round | **{}** |\n\
             | requests per upstream connection | {} |\n\
             | `/sns/auth` calls per request | {} |\n",
            Spread::of(&check0.rps()).show(0),
            Spread::of(&check0.p50()).show(2),
            Spread::of(&check0.p99()).show(2),
            check_tput.show(3),
            Spread::of(conns).show(0),
            Spread::of(reqs_per_conn).show(0),
            Spread::of(auth_per_req).show(3),
        );
        let _ = writeln!(
            w,
            "The connections are counted by the emulator (`GET /_emulator/stats`, `connections`, \
             before and after each round). With {} requests in flight on 1 worker, awc's pool opens \
             at most one connection per concurrent upstream call and keeps them: the count follows \
             the concurrency (≤ {} here, awc's limit is 100 per worker), not the {}-odd requests per \
             round. Target (bounded by workers × in-flight requests, not by requests): {}.\n",
            s.connections,
            s.connections,
            check0.runs.first().map_or(0, |r| r.requests),
            verdict(conns.iter().all(|&c| c <= (s.connections as f64))),
        );
    }

    /// Case 3: refresh storms.
    fn storms(&self, w: &mut String, f: &Figures<'_>) {
        let Figures {
            refresh_expired,
            refresh_revoked,
            all_one,
            ..
        } = f;
        let s = self.settings;
        let _ = writeln!(w, "### 3. Refresh storm\n");
        let _ = writeln!(
            w,
            "One user signs in; {} requests carrying that cookie leave at once, on {} connections \
             opened beforehand. (a) the token's lifetime ran out: a `wechat` server with **2 \
             workers**, `refresh_margin = 0`, against its own emulator issuing 2-second tokens, \
             the storm 3.2 s after sign-in. (b) WeChat revoked it: the `wechat-check0` server, \
             after `POST /_emulator/expire-access-tokens` (every request's `/sns/auth` answers \
             42001). Refresh calls counted by the emulator.\n\n\
             ```sh\nbench_driver storm --app APP --emulator EMU --concurrency {} --wait 3.2          # (a)\n\
             bench_driver storm --app APP --emulator EMU --concurrency {} --expire-upstream      # (b)\n```\n",
            s.storm, s.storm, s.storm, s.storm
        );
        let _ = writeln!(
            w,
            "| storm | rounds | answered 200 with the user | refresh calls per storm | `/sns/auth` calls | storm duration ms |\n|---|---|---|---|---|---|"
        );
        for (name, storms, refresh) in [
            ("(a) expired", self.storms_expired, &refresh_expired),
            (
                "(b) revoked upstream",
                self.storms_revoked,
                &refresh_revoked,
            ),
        ] {
            let _ = writeln!(
                w,
                "| {name} | {} | {} | **{}** | {} | {} |",
                storms.len(),
                storms
                    .iter()
                    .map(|x| format!("{}/{}", x.ok, x.concurrency))
                    .collect::<Vec<_>>()
                    .join(", "),
                Spread::of(refresh).show(0),
                Spread::of(
                    &storms
                        .iter()
                        .map(|x| x.auth_calls as f64)
                        .collect::<Vec<_>>()
                )
                .show(0),
                Spread::of(&storms.iter().map(|x| x.elapsed_ms).collect::<Vec<_>>()).show(1),
            );
        }
        let _ = writeln!(
            w,
            "\nTarget (1 refresh per storm): {}.\n",
            verdict(*all_one)
        );
    }

    /// Case 4: sign-ins.
    fn sign_ins(&self, w: &mut String, f: &Figures<'_>) {
        let Figures {
            rates,
            signin_cpu,
            signin_lat,
            rtt_signin,
            rtt_emu,
            rtt_app,
            ..
        } = f;
        let s = self.settings;
        let _ = writeln!(w, "### 4. Sign-in\n");
        let _ = writeln!(
            w,
            "{} browsers, each with its own connections and cookies, sign in again and again as \
             first-time visitors against the `wechat` server (1 worker) for {} s per round: `GET /` \
             → 302 authorize (emulator, auto-approve) → 302 callback → code exchange + userinfo \
             (server to emulator) → 303 → `GET /` 200.\n\n\
             ```sh\nbench_driver signin --app APP --emulator EMU --browsers {} --secs {}\n\
             bench_driver rtt --app APP --emulator EMU --count {}\n```\n",
            s.browsers, s.secs, s.browsers, s.secs, s.rtt_count
        );
        let _ = writeln!(
            w,
            "| | value |\n|---|---|\n\
             | complete sign-ins per second, {} browsers | **{}** |\n\
             | **server CPU per sign-in** (the `wechat` server's CPU time over the round / sign-ins; target ≤ 0.3 ms) | **{} ms**: {} |\n\
             | sign-in latency under that load, p50 / p99 ms | {:.2} / {:.2} |\n\
             | one sign-in alone (4 browser requests, 2 upstream calls), p50 ms | {:.3} |\n\
             | the emulator's own round trips of a sign-in (authorize + access_token + userinfo, called directly), p50 ms | {:.3} |\n\
             | **time a sign-in adds** over them, p50 ms | **{:.3}** |\n\
             | for scale: one plain request to the app (`GET /healthz`), p50 ms | {:.3} |\n",
            s.browsers,
            Spread::of(rates).show(1),
            Spread::of(signin_cpu).show(3),
            verdict(Spread::of(signin_cpu).median <= 0.3),
            percentile(signin_lat, 50.0),
            percentile(signin_lat, 99.0),
            rtt_signin,
            rtt_emu,
            rtt_signin - rtt_emu,
            rtt_app,
        );
        let _ = writeln!(
            w,
            "The added time is three more browser↔app round trips (the page, the callback, the page \
             again; ≈ 3 × {:.3} ms) and the middleware's own work (state, session encryption, \
             the profile); {} sequential sign-ins, medians.\n",
            rtt_app, self.rtt.count
        );
    }

    /// Case 5: the session cookie.
    fn cookie_size(&self, w: &mut String) {
        let _ = writeln!(w, "### 5. Session cookie size\n");
        let _ = writeln!(
            w,
            "```sh\nbench_driver size --app APP --emulator EMU\n```\n\n\
             | cookie | `id=…` (name + value) bytes | whole `Set-Cookie` bytes | of the 4096-byte limit |\n|---|---|---|---|\n\
             | typical (case 1's) | {} | – | {:.0} % |\n\
             | **largest the middleware writes**: 😀×64 nickname (kept: 128 bytes), 480-byte avatar URL, unionid, 4 privileges, 3 pending sign-ins with 241-byte return-tos | **{}** | {} | **{:.0} %** |\n",
            self.typical_cookie,
            self.typical_cookie as f64 * 100.0 / 4096.0,
            self.worst.pair,
            self.worst.header,
            self.worst.header.max(self.worst.pair) as f64 * 100.0 / 4096.0,
        );
        let _ = writeln!(
            w,
            "Target (under 4096 bytes, attributes included): {}.\n",
            verdict(self.worst.header < 4096)
        );
    }

    /// Case 6: memory.
    fn memory(&self, w: &mut String) {
        let s = self.settings;
        let _ = writeln!(w, "### 6. Memory\n");
        let _ = writeln!(
            w,
            "Peak RSS (`VmHWM` from `/proc/PID/status`) of each server after all the steady-state \
             rounds ({} connections):\n\n| server | peak RSS |\n|---|---|",
            s.connections
        );
        for (mode, (peak, _)) in self.memory {
            let _ = writeln!(w, "| `{mode}` | {:.1} MiB |", *peak as f64 / 1024.0);
        }
        let _ = writeln!(
            w,
            "\n`wechat` − `session-only`: {:+.1} MiB.\n",
            (self.hwm("wechat") as f64 - self.hwm("session-only") as f64) / 1024.0
        );
    }

    /// The criterion micro-benchmark.
    fn micro_benchmark(&self, w: &mut String) {
        let _ = writeln!(w, "### Micro-benchmark: the per-request path in CPU time\n");
        if self.micro.iter().any(|(_, e)| e.is_some()) {
            let _ = writeln!(
                w,
                "`xtests/benches/request_path.rs` (criterion; in-process app via `actix_web::test`, the \
                 same encrypted cookie; median per call, 95 % interval):\n\n\
                 ```sh\ntaskset -c 0 cargo bench -p xtests --bench request_path\n```\n\n\
                 | case | µs per request | / `session_only` |\n|---|---|---|"
            );
            let base = self.micro_case("session_only").map(|m| m.0);
            for (name, estimate) in self.micro {
                if let Some((m, lo, hi)) = estimate {
                    let _ = writeln!(
                        w,
                        "| `{name}` | {:.2} ({:.2}–{:.2}) | {} |",
                        m / 1000.0,
                        lo / 1000.0,
                        hi / 1000.0,
                        base.map_or("–".to_owned(), |b| format!("{:.3}", m / b)),
                    );
                }
            }
            if let (Some(g), Some(b)) = (
                self.micro_case("wechat_signed_in"),
                self.micro_case("session_only"),
            ) {
                let _ = writeln!(
                    w,
                    "\nWhat `WeChatAuth` adds to a signed-in request: **{:.2} µs** of CPU{}.\n",
                    (g.0 - b.0) / 1000.0,
                    if g.0 < b.0 {
                        " (below zero: the machine's load changed between the two cases, which \
                         criterion measures seconds apart; the instruction counts above do not \
                         move with it)"
                    } else {
                        ""
                    }
                );
            }
        } else {
            let _ = writeln!(
                w,
                "Not run in this run (`taskset -c 0 cargo bench -p xtests --bench request_path`; the smoke \
                 run executes each case once as a test).\n"
            );
        }
    }

    /// The closing table of every ratio against its target.
    fn closing(&self, w: &mut String, f: &Figures<'_>) {
        let Figures {
            base,
            check0,
            tput,
            p99,
            check_tput,
            conns,
            refresh_expired,
            refresh_revoked,
            rates,
            signin_cpu,
            rtt_signin,
            rtt_emu,
            cpu_bound,
            all_one,
            candidate,
            ..
        } = f;
        let s = self.settings;
        let _ = writeln!(w, "### Closing note: the ratios\n");
        let _ = writeln!(
            w,
            "| case | measure | result | target | |\n|---|---|---|---|---|\n\
             | 1 | throughput `wechat` / `session-only`, sequential rounds | {:.3} ({:.3}–{:.3}) | ≥ 0.90 | {} |\n\
             | 1 | p99 `wechat` / `session-only` | {:.2}× ({:.2}–{:.2}) | ≤ 1.2× | {} |\n\
             | 2 | throughput check-every-request / case 1 | {:.3} ({:.3}–{:.3}) | ≥ 0.5 | {} |\n\
             | 2 | emulator connections per round ({} requests in flight, 1 worker) | {:.0} ({:.0}–{:.0}) for ~{} requests | bounded, not per request | {} |\n\
             | 3 | refresh calls per {}-request storm (expired / revoked) | {:.0} / {:.0} (max {:.0}) | 1 | {} |\n\
             | 4 | sign-ins per second ({} browsers) | {:.1} | – | |\n\
             | 4 | server CPU per sign-in | {:.3} ms ({:.3}–{:.3}) | ≤ 0.3 ms | {} |\n\
             | 4 | time a sign-in adds over the emulator's round trips | {:.3} ms | – | |\n\
             | 5 | largest session cookie | {} bytes ({:.0} % of 4096) | < 4096 | {} |\n\
             | 6 | peak RSS, `wechat` server | {:.1} MiB (baseline {:.1} MiB) | – | |",
            tput.median, tput.min, tput.max,
            if *cpu_bound { verdict(tput.median >= 0.90) } else { "not measured (core not saturated)" },
            p99.median, p99.min, p99.max, verdict(p99.median <= 1.2),
            check_tput.median, check_tput.min, check_tput.max, verdict(check_tput.median >= 0.5),
            s.connections,
            Spread::of(conns).median, Spread::of(conns).min, Spread::of(conns).max,
            check0.runs.first().map_or(0, |r| r.requests),
            verdict(conns.iter().all(|&c| c <= (s.connections as f64))),
            s.storm,
            median(refresh_expired), median(refresh_revoked),
            refresh_expired.iter().chain(refresh_revoked.iter()).copied().fold(0.0, f64::max),
            verdict(*all_one),
            s.browsers, Spread::of(rates).median,
            Spread::of(signin_cpu).median, Spread::of(signin_cpu).min, Spread::of(signin_cpu).max,
            verdict(Spread::of(signin_cpu).median <= 0.3),
            rtt_signin - rtt_emu,
            self.worst.header, self.worst.header as f64 * 100.0 / 4096.0,
            verdict(self.worst.header < 4096),
            self.hwm("wechat") as f64 / 1024.0, self.hwm("session-only") as f64 / 1024.0,
        );
        if let Some(r) = self.h2h("wechat") {
            let _ = writeln!(
                w,
                "| 1 | throughput head to head (sharing one core) `wechat` / `session-only` | {:.3} ({:.3}–{:.3}) | ≥ 0.90 | {} |",
                r.median,
                r.min,
                r.max,
                verdict(r.median >= 0.90)
            );
        }
        if let Some(r) = self.h2h("wechat-candidate") {
            let _ = writeln!(
                w,
                "| 1 | candidate build, head to head / `session-only` | {:.3} ({:.3}–{:.3}) | ≥ 0.90 | {} |",
                r.median,
                r.min,
                r.max,
                verdict(r.median >= 0.90)
            );
        }
        if let (Some(g), Some(b)) = (self.ir("wechat"), self.ir("session-only")) {
            let _ = writeln!(
                w,
                "| 1 | user-space instructions per request `wechat` / `session-only` (callgrind) | {:.3} (+{:.0}) | ≤ +2,000 | {} |",
                g / b,
                g - b,
                verdict(g - b <= 2000.0)
            );
        }
        if let (Some(g), Some(b)) = (
            self.micro_case("wechat_signed_in"),
            self.micro_case("session_only"),
        ) {
            let _ = writeln!(
                w,
                "| 1 | CPU per request in-process `wechat_signed_in` / `session_only` (criterion) | {:.3} (+{:.2} µs) | – | |",
                g.0 / b.0,
                (g.0 - b.0) / 1000.0
            );
        }
        self.sample.closing_rows(w);
        if let Some(cand) = candidate {
            let t = paired(cand, base, |w| w.rps);
            let _ = writeln!(
                w,
                "| 1 | candidate build (`--compare-bin`): throughput / `session-only`, sequential rounds | {:.3} ({:.3}–{:.3}) | ≥ 0.90 | {} |",
                t.median,
                t.min,
                t.max,
                if seq_cpu_bound(base, cand, s.secs) {
                    verdict(t.median >= 0.90)
                } else {
                    "not measured (core not saturated)"
                }
            );
            if let (Some(c), Some(b)) = (self.ir("wechat-candidate"), self.ir("session-only")) {
                let _ = writeln!(
                    w,
                    "| 1 | candidate build: instructions per request / `session-only` | {:.3} (+{:.0}) | – | |",
                    c / b,
                    c - b
                );
            }
        }
        let _ = writeln!(
            w,
            "\nLoad average at the end: {}.\n",
            fs::read_to_string("/proc/loadavg")
                .unwrap_or_default()
                .trim()
        );
    }

    fn by_mode(&self, mode: &str) -> &Steady {
        self.steady
            .iter()
            .find(|x| x.mode == mode)
            .expect("every steady mode runs")
    }

    fn idx(&self, mode: &str) -> Option<usize> {
        self.steady.iter().position(|x| x.mode == mode)
    }

    /// Round by round head to head, `mode`'s throughput over the baseline's.
    fn h2h(&self, mode: &str) -> Option<Spread> {
        let (i, b) = (self.idx(mode)?, self.idx("session-only")?);
        let v: Vec<f64> = self.head_to_head[i]
            .iter()
            .zip(&self.head_to_head[b])
            .map(|(x, y)| x / y)
            .collect();
        (!v.is_empty()).then(|| Spread::of(&v))
    }

    /// Instructions per request of `mode` (callgrind), when it ran.
    fn ir(&self, mode: &str) -> Option<f64> {
        self.instructions
            .iter()
            .find(|(m, _)| *m == mode)
            .map(|(_, ir)| *ir)
    }

    /// A criterion case's estimate, when it ran.
    fn micro_case(&self, name: &str) -> Estimate {
        self.micro
            .iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, e)| *e)
    }

    /// Peak RSS of `mode`'s server, in KiB.
    fn hwm(&self, mode: &str) -> u64 {
        self.memory
            .iter()
            .find(|(m, _)| m == mode)
            .map_or(0, |(_, (hwm, _))| *hwm)
    }
}

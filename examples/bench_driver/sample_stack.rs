//! Case 7: the sample site's own stack with and without `WeChatAuth`, head to head, with one
//! signed-in user and with thousands, each request carrying the next user's cookie.

use super::*;

/// Signs `n` typical users in through `app`, 50 at a time; their session cookies, in order.
pub(crate) async fn sign_in_users(app: &str, emu: &str, n: usize) -> Res<Vec<String>> {
    let http = client()?;
    let openids = add_users(&http, emu, n).await?;
    let mut cookies = Vec::with_capacity(n);
    for batch in openids.chunks(50) {
        for signed in join_all(batch.iter().map(|openid| sign_in(&http, app, openid, "/"))).await {
            cookies.push(signed?.cookie);
        }
    }
    Ok(cookies)
}

/// Writes `cookies` and a wrk script that gives each request the next of them (wrk runs one Lua
/// state per thread; `-t1` keeps one rotation); the script's path.
pub(crate) fn rotation(logs: &Path, name: &str, cookies: &[String]) -> Res<PathBuf> {
    let list = logs.join(format!("cookies-{name}.txt"));
    fs::write(&list, cookies.join("\n") + "\n").map_err(|e| e.to_string())?;
    let script = logs.join(format!("rotate-{name}.lua"));
    let lua = format!(
        "-- Each request carries the next cookie of {list}.\n\
         local cookies = {{}}\n\
         for line in io.lines(\"{list}\") do cookies[#cookies + 1] = line end\n\
         local i = 0\n\
         request = function()\n  \
           i = i % #cookies + 1\n  \
           return wrk.format(nil, nil, {{ [\"Cookie\"] = cookies[i] }})\n\
         end\n",
        list = list.display()
    );
    fs::write(&script, lua).map_err(|e| e.to_string())?;
    Ok(script)
}

/// One wrk round against one server.
pub(crate) struct Run {
    pub(crate) wrk: Wrk,
    /// The server's CPU time per answered request, in µs.
    pub(crate) cpu_us: f64,
    /// `/sns/auth` calls the emulator answered during the round.
    pub(crate) checks: u64,
}

/// Rounds of wrk against each of `servers` in turn (the order rotated each round), every request
/// carrying the next cookie of `script`'s rotation; per server, its runs.
pub(crate) fn rounds(
    system: &SystemRunner,
    settings: &Settings,
    emu: &str,
    servers: &[&Proc],
    script: &Path,
    label: &str,
) -> Res<Vec<Vec<Run>>> {
    let mut runs: Vec<Vec<Run>> = servers.iter().map(|_| Vec::new()).collect();
    for round in 0..settings.rounds {
        for k in 0..servers.len() {
            let i = (k + round) % servers.len();
            let server = servers[i];
            let cmd = wrk_command(settings, Load::Rotate(script), server);
            let before = system.block_on(emulator_stats(emu))?;
            let cpu_before = server.cpu_secs();
            let wrk = run_wrk(&cmd)?;
            let cpu = server.cpu_secs() - cpu_before;
            // Requests wrk left in flight finish their upstream calls after it exits.
            std::thread::sleep(Duration::from_millis(500));
            let after = system.block_on(emulator_stats(emu))?;
            let (_, checks) = stats_delta(&before, &after, "auth");
            eprintln!(
                "round {}/{} {label} {:<14} {:>9.0} req/s  p99 {:>6.2} ms  {} requests, {checks} checks",
                round + 1,
                settings.rounds,
                server.name,
                wrk.rps,
                wrk.p99_ms,
                wrk.requests,
            );
            if wrk.bad > 0 {
                return Err(format!(
                    "{} ({label}): {} non-2xx answers or socket errors",
                    server.name, wrk.bad
                ));
            }
            runs[i].push(Run {
                cpu_us: cpu * 1e6 / wrk.requests.max(1) as f64,
                wrk,
                checks,
            });
        }
    }
    Ok(runs)
}

/// Rounds of wrk against all of `servers` at the same time, all on the servers' CPU (head to
/// head, as case 1's), every request carrying the next cookie of `script`'s rotation; per
/// server, its runs (their `checks` not counted).
pub(crate) fn at_once(
    settings: &Settings,
    servers: &[&Proc],
    script: &Path,
    label: &str,
) -> Res<Vec<Vec<Run>>> {
    let mut runs: Vec<Vec<Run>> = servers.iter().map(|_| Vec::new()).collect();
    for round in 0..settings.rounds {
        let cmds: Vec<(&Proc, Vec<String>)> = servers
            .iter()
            .map(|&server| (server, wrk_command(settings, Load::Rotate(script), server)))
            .collect();
        let mut line = format!(
            "round {}/{} {label} head to head:",
            round + 1,
            settings.rounds
        );
        for (i, (wrk, cpu_us)) in run_wrk_at_once(&cmds)?.into_iter().enumerate() {
            let _ = write!(line, " {} {:.0}", servers[i].name, wrk.rps);
            runs[i].push(Run {
                wrk,
                cpu_us,
                checks: 0,
            });
        }
        eprintln!("{line} req/s");
    }
    Ok(runs)
}

/// Runs the case: starts `sample-bare` and `sample` (the servers' placement and environment as
/// the others'), signs in many users, then measures both servers with one of them and with all
/// (in turn, then head to head), and the check on every request of `wechat` and
/// `wechat-check0` with a thousand.
pub(crate) fn measure(
    system: &SystemRunner,
    settings: &Settings,
    (bin, envs, logs): (&Path, &[(&str, String)], &Path),
    emu: &str,
    (wechat, check0): (&Proc, &Proc),
) -> Res<SampleStack> {
    let spawn = |mode| Proc::spawn(bin, mode, mode, settings.server_cpu, envs, logs);
    let (bare, sample) = (spawn("sample-bare")?, spawn("sample")?);
    let (many, distinct) = if settings.smoke {
        (20, 10)
    } else {
        (5000, 1000)
    };
    let started = Instant::now();
    let cookies = system.block_on(sign_in_users(&sample.url, emu, many))?;
    eprintln!(
        "sample stack: {many} users signed in in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let valgrind = which("valgrind").is_some() && which("callgrind_control").is_some();
    let counts = if settings.smoke { (5, 20) } else { (200, 2000) };
    let mut populations = Vec::new();
    let mut command = String::new();
    for users in [1, many] {
        let name = users.to_string();
        let script = rotation(logs, &name, &cookies[..users])?;
        if command.is_empty() {
            let cmd = wrk_command(settings, Load::Rotate(&script), &sample);
            // The script named from the repository, as the reader would type it.
            let cwd = env::current_dir().unwrap_or_default();
            let shown = logs
                .strip_prefix(&cwd)
                .unwrap_or(logs)
                .display()
                .to_string();
            command = shell_words(&cmd).replace(&logs.display().to_string(), &shown);
        }
        let label = format!("{users} users");
        let mut runs = rounds(system, settings, emu, &[&bare, &sample], &script, &label)?;
        let mut together = at_once(settings, &[&bare, &sample], &script, &label)?;
        let instructions = if valgrind {
            let count = |mode: &str| {
                let name = format!("{mode}-{users}");
                let cpu = settings.server_cpu;
                let ir = icount(
                    bin,
                    (&name, mode),
                    cpu,
                    envs,
                    logs,
                    &cookies[..users],
                    counts,
                )?;
                eprintln!("callgrind {name:<16} {ir:>9.0} instructions per request");
                Ok::<_, String>(ir)
            };
            Some((count("sample-bare")?, count("sample")?))
        } else {
            None
        };
        populations.push(Population {
            users,
            sample: runs.pop().expect("two servers"),
            bare: runs.pop().expect("two servers"),
            together_sample: together.pop().expect("two servers"),
            together_bare: together.pop().expect("two servers"),
            instructions,
        });
    }
    let script = rotation(logs, "distinct", &cookies[..distinct])?;
    let label = format!("{distinct} users");
    let mut runs = rounds(system, settings, emu, &[wechat, check0], &script, &label)?;
    let checks = DistinctChecks {
        users: distinct,
        check0: runs.pop().expect("two servers"),
        wechat: runs.pop().expect("two servers"),
    };
    Ok(SampleStack {
        populations,
        checks,
        command,
    })
}

/// Round by round, `f` of `a` over `f` of `b`.
pub(crate) fn ratio(a: &[Run], b: &[Run], f: fn(&Run) -> f64) -> Spread {
    Spread::of(
        &a.iter()
            .zip(b)
            .map(|(x, y)| f(x) / f(y))
            .collect::<Vec<_>>(),
    )
}

/// One number of users, the two servers' runs.
pub(crate) struct Population {
    pub(crate) users: usize,
    pub(crate) bare: Vec<Run>,
    pub(crate) sample: Vec<Run>,
    /// The same two, head to head.
    pub(crate) together_bare: Vec<Run>,
    pub(crate) together_sample: Vec<Run>,
    /// Instructions per request (callgrind) of `sample-bare` and `sample`, when valgrind ran.
    pub(crate) instructions: Option<(f64, f64)>,
}

/// `wechat-check0` and `wechat` with the same many users: a check on every request, none shared.
pub(crate) struct DistinctChecks {
    pub(crate) users: usize,
    pub(crate) wechat: Vec<Run>,
    pub(crate) check0: Vec<Run>,
}

pub(crate) struct SampleStack {
    pub(crate) populations: Vec<Population>,
    pub(crate) checks: DistinctChecks,
    pub(crate) command: String,
}

fn rps(r: &Run) -> f64 {
    r.wrk.rps
}
fn cpu(r: &Run) -> f64 {
    r.cpu_us
}
fn p99(r: &Run) -> f64 {
    r.wrk.p99_ms
}

impl SampleStack {
    /// Its rows of the closing table.
    pub(crate) fn closing_rows(&self, w: &mut String) {
        for p in &self.populations {
            let tput = ratio(&p.sample, &p.bare, rps);
            let cost = ratio(&p.sample, &p.bare, cpu);
            let tail = ratio(&p.sample, &p.bare, p99);
            let tput_h2h = ratio(&p.together_sample, &p.together_bare, rps);
            let cost_h2h = ratio(&p.together_sample, &p.together_bare, cpu);
            for (measure, value, target, ok) in [
                (
                    "throughput `sample` / `sample-bare`, head to head",
                    tput_h2h.show(3),
                    "≥ 0.95",
                    tput_h2h.median >= 0.95,
                ),
                (
                    "CPU per request `sample` / `sample-bare`, head to head",
                    format!("{}×", cost_h2h.show(3)),
                    "≤ 1.05×",
                    cost_h2h.median <= 1.05,
                ),
                (
                    "throughput `sample` / `sample-bare`, sequential rounds",
                    tput.show(3),
                    "≥ 0.95",
                    tput.median >= 0.95,
                ),
                (
                    "CPU per request `sample` / `sample-bare`, sequential rounds",
                    format!("{}×", cost.show(3)),
                    "≤ 1.05×",
                    cost.median <= 1.05,
                ),
                (
                    "p99 `sample` / `sample-bare`",
                    format!("{}×", tail.show(2)),
                    "≤ 1.1×",
                    tail.median <= 1.1,
                ),
            ] {
                let _ = writeln!(
                    w,
                    "| 7 | {measure}, {} user{} | {value} | {target} | {} |",
                    p.users,
                    if p.users == 1 { "" } else { "s" },
                    verdict(ok)
                );
            }
        }
        let c = &self.checks;
        let _ = writeln!(
            w,
            "| 7 | throughput check-every-request / `wechat`, {} distinct users | {} | – | |",
            c.users,
            ratio(&c.check0, &c.wechat, rps).show(3)
        );
    }

    pub(crate) fn markdown(&self, w: &mut String, s: &Settings, icount_requests: usize) {
        let _ = writeln!(
            w,
            "### 7. The sample site's own stack, with and without `WeChatAuth`\n\n\
             The middleware of `examples/h5.rs` (`Logger`, `session_store_guard`, `DefaultHeaders`, \
             `SessionMiddleware`, an App-level `WeChatAuth::optional` and a resource-level \
             `require(Scope::UserInfo)`: two nested instances), `GET /` answering the sample's \
             `/api/me` JSON from `WeChatUser` (`sample`), against the same app without \
             `WeChatAuth` and its store guard whose handler parses the same sign-in record from \
             the session into its own typed struct, checks it (its app, a token, not expired, \
             signed in less than 30 days ago) and answers the same JSON (`sample-bare`). \
             `RUST_LOG=warn`, as every server here: `Logger` formats nothing. Each request \
             carries the next user's cookie (wrk with a Lua script; the users signed in \
             beforehand through the emulator), so with {} users no per-worker table of \
             sign-ins can hold them. {} rounds of {} s per server, the order alternating; \
             ratios round by round.\n",
            self.populations.last().map_or(0, |p| p.users),
            s.rounds,
            s.secs
        );
        let _ = writeln!(w, "```sh\n{}\n```\n", self.command);
        let _ = writeln!(
            w,
            "| users | server | requests/s | p99 ms | server CPU µs per request |\n|---|---|---|---|---|"
        );
        for p in &self.populations {
            for (name, runs) in [("`sample-bare`", &p.bare), ("`sample`", &p.sample)] {
                let col = |f: fn(&Run) -> f64| Spread::of(&runs.iter().map(f).collect::<Vec<_>>());
                let _ = writeln!(
                    w,
                    "| {} | {name} | {} | {} | {} |",
                    p.users,
                    col(rps).show(0),
                    col(p99).show(2),
                    col(cpu).show(1)
                );
            }
        }
        let _ = writeln!(w);
        for p in &self.populations {
            let tput = ratio(&p.sample, &p.bare, rps);
            let cost = ratio(&p.sample, &p.bare, cpu);
            let tail = ratio(&p.sample, &p.bare, p99);
            let _ = writeln!(
                w,
                "- {} user{}: throughput `sample` / `sample-bare` **{}** (target ≥ 0.95: {}); \
                 CPU per request **{}×** (target ≤ 1.05×: {}); p99 **{}×** (target ≤ 1.1×: {})",
                p.users,
                if p.users == 1 { "" } else { "s" },
                tput.show(3),
                verdict(tput.median >= 0.95),
                cost.show(3),
                verdict(cost.median <= 1.05),
                tail.show(2),
                verdict(tail.median <= 1.1),
            );
        }
        let _ = writeln!(
            w,
            "\n**Head to head**, the ratio to trust on this machine (as in case 1): the two \
             servers at the same time, both on CPU 0, each under its own wrk with the same \
             rotation, {} rounds of {} s; ratios round by round.\n\n\
             | users | `sample-bare` requests/s | `sample` requests/s | throughput `sample` / \
             `sample-bare` (target ≥ 0.95) | CPU per request `sample` / `sample-bare` (target \
             ≤ 1.05×) |\n|---|---|---|---|---|",
            s.rounds, s.secs
        );
        for p in &self.populations {
            let col = |runs: &[Run]| Spread::of(&runs.iter().map(rps).collect::<Vec<_>>());
            let tput = ratio(&p.together_sample, &p.together_bare, rps);
            let cost = ratio(&p.together_sample, &p.together_bare, cpu);
            let _ = writeln!(
                w,
                "| {} | {} | {} | **{}**: {} | **{}×**: {} |",
                p.users,
                col(&p.together_bare).show(0),
                col(&p.together_sample).show(0),
                tput.show(3),
                verdict(tput.median >= 0.95),
                cost.show(3),
                verdict(cost.median <= 1.05),
            );
        }
        if self.populations.iter().any(|p| p.instructions.is_some()) {
            let _ = writeln!(
                w,
                "\nIn user-space instructions per request (callgrind, {icount_requests} \
                 sequential keep-alive requests, each with the next user's cookie, after a \
                 warm-up on others):\n\n\
                 | users | `sample-bare` | `sample` | `sample` − `sample-bare` | / `sample-bare` |\n\
                 |---|---|---|---|---|"
            );
            for p in &self.populations {
                if let Some((bare, sample)) = p.instructions {
                    let _ = writeln!(
                        w,
                        "| {} | {bare:.0} | {sample:.0} | {:+.0} | {:.3} |",
                        p.users,
                        sample - bare,
                        sample / bare
                    );
                }
            }
        }
        let c = &self.checks;
        let tput = ratio(&c.check0, &c.wechat, rps);
        let per_request: Vec<f64> = c
            .check0
            .iter()
            .map(|r| r.checks as f64 / r.wrk.requests.max(1) as f64)
            .collect();
        let _ = writeln!(
            w,
            "\nA check on every request with {} distinct users (`wechat-check0` against `wechat`, \
             the same rotation): with {} connections, requests in flight rarely share a user, so \
             checks are rarely shared. Throughput `wechat-check0` / `wechat`: **{}**; `/sns/auth` calls per \
             request {}.\n",
            c.users,
            s.connections,
            tput.show(3),
            Spread::of(&per_request).show(3),
        );
    }
}

//! The load side of the benchmark suite: runs every case against `bench_server` processes over
//! loopback and writes the results (`scripts/bench.sh` builds and calls it; results in
//! `BENCHMARKS.md`).
//!
//! ```sh
//! taskset -c 1 target/release/examples/bench_driver run            # the whole suite
//! taskset -c 1 target/release/examples/bench_driver run --smoke    # 1 short round, tiny counts
//! ```
//!
//! `run` starts the emulator and the servers itself (`bench_server --mode …`, the app servers
//! pinned to CPU 0 with `taskset`, the emulator, `wrk` and this driver on CPU 1), signs in to get
//! a session cookie, then measures:
//!
//! 1. steady state: `wrk` against `session-only` (baseline), `session-read` and `wechat`, the same
//!    cookie for all (the servers share `SESSION_KEY`), rounds interleaved;
//! 2. `wechat-check0` with `wrk`, the emulator's accepted connections and `/sns/auth` calls counted
//!    from its `GET /_emulator/stats`;
//! 3. refresh storms (`storm`), 4. sign-ins (`signin`, `rtt`), 5. cookie size (`size`),
//! 6. peak RSS (`VmHWM` of each server after the steady-state rounds),
//! 7. the sample site's own stack with and without `WeChatAuth` (`sample`, `sample-bare`) with
//!    1 and 5,000 signed-in users, each request carrying the next user's cookie (a wrk Lua
//!    script), and a check on every request with 1,000 distinct users.
//!
//! Its modules: `flows` (the browser side: sign-ins through the emulator), `wrk`, `stats`,
//! `load` (the Rust-side cases 3–5), `procs` (the servers, callgrind, criterion's estimates),
//! `suite` (`run`, case by case), `sample_stack` (case 7) and `report` (the markdown, a method per
//! section).
//!
//! The other subcommands run one case against servers you started yourself:
//!
//! | subcommand | options |
//! |---|---|
//! | `cookie` | `--app URL --emulator URL [--count 1]`: signs typical users in, prints their `id=…` cookies one per line (for `wrk -H "Cookie: …"`, or a rotation) |
//! | `signin` | `--app URL --emulator URL [--browsers 50] [--secs 10]`: complete sign-ins per second |
//! | `rtt` | `--app URL --emulator URL [--count 200]`: a sign-in's latency against the emulator's own round trips |
//! | `storm` | `--app URL --emulator URL [--concurrency 200] [--wait SECS] [--expire-upstream]`: one user's expired token, N requests at once; counts refreshes |
//! | `size` | `--app URL --emulator URL`: the largest session cookie written (worst-case profile, 3 pending sign-ins) |
//!
//! Every subcommand prints JSON on stdout. Timings are reported, never asserted: the only
//! failures are broken flows (a sign-in that does not end on the page, a non-200 answer).

use std::{
    collections::HashMap,
    env,
    fmt::Write as _,
    fs,
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, ChildStdout, Command, ExitCode, Stdio},
    time::{Duration, Instant},
};

use actix_web::rt::{time::sleep, System, SystemRunner};
use futures_util::future::join_all;
use reqwest::{header, redirect, Client, StatusCode, Url};
use serde_json::{json, Value};

const DEFAULT_APPID: &str = "wxbench0000000001";
const DEFAULT_SECRET: &str = "bench-secret-not-a-real-one";

type Res<T> = Result<T, String>;

mod flows;
mod load;
mod procs;
mod report;
mod sample_stack;
mod stats;
mod suite;
mod wrk;

use flows::*;
use load::*;
use procs::*;
use report::*;
use stats::*;
use suite::*;
use wrk::*;

// ---------------------------------------------------------------------------------------------
// Command line.

struct Args {
    command: String,
    options: HashMap<String, Option<String>>,
}

impl Args {
    fn parse() -> Res<Args> {
        let mut raw = env::args().skip(1).peekable();
        let command = raw.next().ok_or_else(usage)?;
        let mut options = HashMap::new();
        while let Some(arg) = raw.next() {
            let name = arg
                .strip_prefix("--")
                .ok_or_else(|| format!("unexpected argument {arg:?}\n{}", usage()))?
                .to_owned();
            let value = match raw.peek() {
                Some(next) if !next.starts_with("--") => raw.next(),
                _ => None,
            };
            options.insert(name, value);
        }
        Ok(Args { command, options })
    }

    fn flag(&self, name: &str) -> bool {
        self.options.contains_key(name)
    }

    fn string(&self, name: &str) -> Option<String> {
        self.options.get(name).cloned().flatten()
    }

    fn required(&self, name: &str) -> Res<String> {
        self.string(name)
            .ok_or_else(|| format!("--{name} is required\n{}", usage()))
    }

    fn number<T: std::str::FromStr>(&self, name: &str, default: T) -> Res<T> {
        match self.string(name) {
            Some(v) => v
                .parse()
                .map_err(|_| format!("--{name} must be a number, got {v:?}")),
            None => Ok(default),
        }
    }
}

fn usage() -> String {
    "usage: bench_driver run [--smoke] [--rounds N] [--secs S] [--connections C] [--browsers B] \
     [--storm N] [--rtt-count N] [--out FILE] [--server-bin PATH] [--wrk PATH] [--no-pin]\n       \
     bench_driver cookie|signin|rtt|storm|size --app URL --emulator URL [options]"
        .to_owned()
}

fn main() -> ExitCode {
    let result = Args::parse().and_then(|args| {
        let system = System::new();
        match args.command.as_str() {
            "run" => run(&system, &args),
            "cookie" => {
                let (app, emu) = (args.required("app")?, args.required("emulator")?);
                let count = args.number("count", 1usize)?;
                let cookies = system.block_on(sample_stack::sign_in_users(&app, &emu, count))?;
                println!("{}", cookies.join("\n"));
                Ok(())
            }
            "signin" => {
                let (app, emu) = (args.required("app")?, args.required("emulator")?);
                let browsers = args.number("browsers", 50usize)?;
                let secs = args.number("secs", 10.0f64)?;
                let out = system.block_on(async {
                    let users = add_users(&client()?, &emu, browsers).await?;
                    sign_in_load(&app, &users, Duration::from_secs_f64(secs)).await
                })?;
                println!("{}", out.to_json());
                Ok(())
            }
            "rtt" => {
                let (app, emu) = (args.required("app")?, args.required("emulator")?);
                let count = args.number("count", 200usize)?;
                let out = system.block_on(round_trips(&app, &emu, count))?;
                println!("{}", out.to_json());
                Ok(())
            }
            "storm" => {
                let (app, emu) = (args.required("app")?, args.required("emulator")?);
                let n = args.number("concurrency", 200usize)?;
                let wait = Duration::from_secs_f64(args.number("wait", 0.0f64)?);
                let upstream = args.flag("expire-upstream");
                let out = system.block_on(storm(&app, &emu, n, wait, upstream))?;
                println!("{}", out.to_json());
                Ok(())
            }
            "size" => {
                let (app, emu) = (args.required("app")?, args.required("emulator")?);
                let out = system.block_on(worst_case_cookie(&app, &emu))?;
                println!("{}", out.to_json());
                Ok(())
            }
            other => Err(format!("unknown subcommand {other:?}\n{}", usage())),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench_driver: {e}");
            ExitCode::FAILURE
        }
    }
}

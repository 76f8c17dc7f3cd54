//! The processes measured: `bench_server`s started and pinned, their CPU time and memory,
//! callgrind's instruction counts, and criterion's estimates.

use super::*;

/// A `bench_server` process; killed (by its pid) when dropped.
pub(crate) struct Proc {
    pub(crate) child: Child,
    pub(crate) name: String,
    pub(crate) url: String,
    pub(crate) _stdout: BufReader<ChildStdout>,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    pub(crate) fn spawn(
        bin: &Path,
        name: &str,
        mode: &str,
        cpu: Option<usize>,
        envs: &[(&str, String)],
        logs: &Path,
    ) -> Res<Proc> {
        Proc::spawn_under(&[], bin, name, mode, cpu, envs, logs)
    }

    /// As [`spawn`](Self::spawn), run by `wrapper` (e.g. valgrind).
    pub(crate) fn spawn_under(
        wrapper: &[String],
        bin: &Path,
        name: &str,
        mode: &str,
        cpu: Option<usize>,
        envs: &[(&str, String)],
        logs: &Path,
    ) -> Res<Proc> {
        let mut words: Vec<std::ffi::OsString> = Vec::new();
        if let Some(cpu) = cpu {
            words.extend(["taskset".into(), "-c".into(), cpu.to_string().into()]);
        }
        words.extend(wrapper.iter().map(Into::into));
        words.push(bin.into());
        let mut cmd = Command::new(&words[0]);
        cmd.args(&words[1..]);
        let log = fs::File::create(logs.join(format!("{name}.log"))).map_err(|e| e.to_string())?;
        cmd.args(["--mode", mode])
            .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log);
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let mut stdout = BufReader::new(child.stdout.take().ok_or("no stdout")?);
        let mut line = String::new();
        stdout.read_line(&mut line).map_err(|e| e.to_string())?;
        let url = line
            .split_whitespace()
            .nth(1)
            .map(str::to_owned)
            .ok_or_else(|| {
                format!(
                    "{name} did not start (see {}/{name}.log): {line:?}",
                    logs.display()
                )
            })?;
        Ok(Proc {
            child,
            name: name.to_owned(),
            url,
            _stdout: stdout,
        })
    }

    /// CPU time used so far (user + system, every thread), in seconds; NaN when the process's
    /// stat cannot be read (it died), so that no figure made from it passes for a measurement.
    pub(crate) fn cpu_secs(&self) -> f64 {
        let stat =
            fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        // Fields after the command name (which may hold spaces) end with `)`.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map_or("", |(_, rest)| rest)
            .split_whitespace()
            .collect();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(f64::NAN)
        };
        // utime and stime are fields 14 and 15 of stat(5), 12 and 13 after the name.
        (ticks(11) + ticks(12)) / clock_ticks()
    }

    /// Peak and current resident set size, in KiB.
    pub(crate) fn memory_kib(&self) -> (u64, u64) {
        let status =
            fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
                .unwrap_or(0)
        };
        (field("VmHWM:"), field("VmRSS:"))
    }
}

pub(crate) const MICRO_CASES: [&str; 5] = [
    "session_only",
    "wechat_signed_in",
    "session_read",
    "wechat_excluded_path",
    "wechat_anonymous",
];

/// Criterion's median and its 95 % interval, in ns, of one case (`None`: not run).
pub(crate) type Estimate = Option<(f64, f64, f64)>;

/// Criterion's median estimate (ns per call, with its 95 % confidence interval) of each case of
/// `xtests/benches/request_path.rs`, from `DIR/<case>/new/estimates.json`.
pub(crate) fn read_criterion(dir: &Path) -> Vec<(&'static str, Estimate)> {
    MICRO_CASES
        .iter()
        .map(|name| {
            let estimate = fs::read_to_string(dir.join(name).join("new/estimates.json"))
                .ok()
                .and_then(|t| serde_json::from_str::<Value>(&t).ok())
                .and_then(|v| {
                    let m = &v["median"];
                    Some((
                        m["point_estimate"].as_f64()?,
                        m["confidence_interval"]["lower_bound"].as_f64()?,
                        m["confidence_interval"]["upper_bound"].as_f64()?,
                    ))
                });
            (*name, estimate)
        })
        .collect()
}

/// Clock ticks per second of `/proc/PID/stat`.
pub(crate) fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        command_output("getconf", &["CLK_TCK"])
            .parse()
            .unwrap_or(100.0)
    })
}

/// CPUs of the machine (not of this process's affinity mask, which `taskset` narrows).
pub(crate) fn online_cpus() -> usize {
    fs::read_to_string("/proc/cpuinfo")
        .map(|t| t.lines().filter(|l| l.starts_with("processor")).count())
        .unwrap_or(1)
        .max(1)
}

pub(crate) fn which(program: &str) -> Option<PathBuf> {
    env::var_os("PATH").and_then(|paths| {
        env::split_paths(&paths)
            .map(|p| p.join(program))
            .find(|p| p.is_file())
    })
}

/// One keep-alive connection sending what wrk sends (`Host` and `Cookie`, nothing else: no
/// `Accept`), one request at a time, each with the next of its cookies.
pub(crate) struct RawClient {
    pub(crate) stream: std::net::TcpStream,
    pub(crate) requests: Vec<Vec<u8>>,
    pub(crate) next: usize,
    pub(crate) buf: Vec<u8>,
}

impl RawClient {
    pub(crate) fn connect(url: &str, cookies: &[String]) -> Res<RawClient> {
        let addr = url
            .strip_prefix("http://")
            .ok_or("an http:// URL")?
            .trim_end_matches('/');
        let stream = std::net::TcpStream::connect(addr).map_err(|e| format!("{addr}: {e}"))?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        Ok(RawClient {
            stream,
            requests: cookies
                .iter()
                .map(|cookie| {
                    format!("GET / HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\n\r\n")
                        .into_bytes()
                })
                .collect(),
            next: 0,
            buf: vec![0; 64 * 1024],
        })
    }

    pub(crate) fn requests(&mut self, n: usize) -> Res<()> {
        use std::io::{Read, Write};
        for _ in 0..n {
            let request = &self.requests[self.next % self.requests.len()];
            self.next += 1;
            self.stream.write_all(request).map_err(|e| e.to_string())?;
            let mut filled = 0;
            let mut need = None;
            loop {
                let k = self
                    .stream
                    .read(&mut self.buf[filled..])
                    .map_err(|e| e.to_string())?;
                if k == 0 {
                    return Err("the server closed the connection".to_owned());
                }
                filled += k;
                if need.is_none() {
                    if let Some(end) = self.buf[..filled].windows(4).position(|w| w == b"\r\n\r\n")
                    {
                        let head = String::from_utf8_lossy(&self.buf[..end]).to_ascii_lowercase();
                        if !head.starts_with("http/1.1 200") {
                            return Err(format!("answered {}", head.lines().next().unwrap_or("")));
                        }
                        let length: usize = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse().ok())
                            .ok_or("no content-length")?;
                        need = Some(end + 4 + length);
                    }
                }
                if need.is_some_and(|need| filled >= need) {
                    break;
                }
            }
        }
        Ok(())
    }
}

/// User-space instructions per request of a `bench_server` in `mode`, counted by callgrind:
/// counters zeroed after `warm` requests, then `n` requests on one keep-alive connection, each
/// with the next of `cookies`, then dumped. Instruction counts do not depend on what else the machine runs.
pub(crate) fn icount(
    bin: &Path,
    (name, mode): (&str, &str),
    cpu: Option<usize>,
    envs: &[(&str, String)],
    logs: &Path,
    cookies: &[String],
    (warm, n): (usize, usize),
) -> Res<f64> {
    let dump_prefix = logs.join(format!("callgrind.{name}"));
    let wrapper = [
        "valgrind".to_owned(),
        "--tool=callgrind".to_owned(),
        format!("--callgrind-out-file={}.%p.out", dump_prefix.display()),
    ];
    for old in fs::read_dir(logs).map_err(|e| e.to_string())?.flatten() {
        if old
            .file_name()
            .to_str()
            .is_some_and(|f| f.starts_with(&format!("callgrind.{name}.")))
        {
            let _ = fs::remove_file(old.path());
        }
    }
    let server = Proc::spawn_under(
        &wrapper,
        bin,
        &format!("callgrind-{name}"),
        mode,
        cpu,
        envs,
        logs,
    )?;
    let pid = server.child.id().to_string();
    let control = |what: &str| -> Res<()> {
        let out = Command::new("callgrind_control")
            .args([what, pid.as_str()])
            .output()
            .map_err(|e| format!("cannot run callgrind_control: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "callgrind_control {what} {pid}: {}",
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    };
    let mut conn = RawClient::connect(&server.url, cookies)?;
    conn.requests(warm)?;
    control("-z")?;
    conn.requests(n)?;
    control("-d")?;
    let dump = fs::read_dir(logs)
        .map_err(|e| e.to_string())?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|f| f.to_str())
                .is_some_and(|f| f.starts_with(&format!("callgrind.{name}.{pid}.out.")))
        })
        .ok_or("no callgrind dump")?;
    let text = fs::read_to_string(&dump).map_err(|e| e.to_string())?;
    let total: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("summary:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or("no summary in the callgrind dump")?;
    drop(server);
    Ok(total / n as f64)
}

/// Where `name`'s instructions per request differ from `base`'s, function by function (each
/// function's own instructions in the dumps `icount` left in `logs`, `n` requests each): the
/// `top` largest differences, then the sum of the rest as `(other)`.
pub(crate) fn breakdown(
    logs: &Path,
    (base, name): (&str, &str),
    n: usize,
    top: usize,
) -> Res<Vec<(String, f64)>> {
    let per_function = |name: &str| -> Res<HashMap<String, f64>> {
        let dump = fs::read_dir(logs)
            .map_err(|e| e.to_string())?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| {
                // The dump `callgrind_control -d` made (`….out.1`), not the one at exit.
                p.file_name().and_then(|f| f.to_str()).is_some_and(|f| {
                    f.starts_with(&format!("callgrind.{name}.")) && f.contains(".out.")
                })
            })
            .ok_or_else(|| format!("no callgrind dump of {name}"))?;
        let text = fs::read_to_string(&dump).map_err(|e| e.to_string())?;
        Ok(self_costs(&text)
            .into_iter()
            .map(|(function, ir)| (function, ir / n as f64))
            .collect())
    };
    let (a, b) = (per_function(base)?, per_function(name)?);
    let mut rows: Vec<(String, f64)> = a
        .keys()
        .chain(b.keys())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .map(|f| {
            let delta = b.get(f).unwrap_or(&0.0) - a.get(f).unwrap_or(&0.0);
            (f.clone(), delta)
        })
        .filter(|(_, delta)| delta.abs() >= 0.5)
        .collect();
    rows.sort_by(|x, y| y.1.total_cmp(&x.1));
    let rest: f64 = rows.iter().skip(top).map(|(_, d)| d).sum();
    rows.truncate(top);
    rows.push(("(other)".to_owned(), rest));
    Ok(rows)
}

/// Each function's own instructions in a callgrind dump: the cost lines of its `fn=` block,
/// less the lines after `calls=` (those are what its callees cost, counted in their own blocks).
/// Read from the file itself: `callgrind_annotate` of this valgrind shows inclusive counts
/// whatever `--inclusive` says.
fn self_costs(dump: &str) -> HashMap<String, f64> {
    // Names are compressed: `(12) name` defines id 12, `(12)` refers to it.
    fn resolve(names: &mut HashMap<String, String>, spec: &str) -> String {
        let spec = spec.trim();
        let Some(rest) = spec.strip_prefix('(') else {
            return spec.to_owned();
        };
        let (id, name) = rest.split_once(')').unwrap_or((rest, ""));
        let name = name.trim();
        if name.is_empty() {
            names.get(id).cloned().unwrap_or_default()
        } else {
            names.insert(id.to_owned(), name.to_owned());
            name.to_owned()
        }
    }
    let mut names = HashMap::new();
    let mut costs: HashMap<String, f64> = HashMap::new();
    let mut current = String::new();
    let mut callee_cost_next = false;
    for line in dump.lines() {
        if let Some(spec) = line.strip_prefix("fn=") {
            current = resolve(&mut names, spec);
        } else if let Some(spec) = line.strip_prefix("cfn=") {
            resolve(&mut names, spec);
        } else if line.starts_with("calls=") {
            callee_cost_next = true;
        } else if matches!(
            line.as_bytes().first(),
            Some(b'0'..=b'9' | b'+' | b'-' | b'*')
        ) {
            if std::mem::take(&mut callee_cost_next) {
                continue;
            }
            if let Some(ir) = line
                .split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<f64>().ok())
            {
                *costs.entry(current.clone()).or_default() += ir;
            }
        }
    }
    costs
}

pub(crate) fn command_output(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

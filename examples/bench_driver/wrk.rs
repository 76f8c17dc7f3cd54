//! wrk: its command line, its run and its output.

use super::*;

pub(crate) struct Wrk {
    pub(crate) rps: f64,
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) requests: u64,
    pub(crate) bad: u64,
}

/// What each of wrk's requests carries.
#[derive(Clone, Copy)]
pub(crate) enum Load<'a> {
    /// The same cookie on every request.
    Cookie(&'a str),
    /// A Lua script (`sample_stack::rotation`) giving each request the next cookie of a file.
    Rotate(&'a Path),
}

/// The wrk command of one run against `server`'s `/`, as `settings` place and time it.
pub(crate) fn wrk_command(settings: &Settings, load: Load<'_>, server: &Proc) -> Vec<String> {
    let (wrk, cpu, conns, secs) = (
        &settings.wrk,
        settings.client_cpu,
        settings.connections,
        settings.secs,
    );
    let url = format!("{}/", server.url);
    let mut cmd = Vec::new();
    if let Some(cpu) = cpu {
        cmd.extend(["taskset".to_owned(), "-c".to_owned(), cpu.to_string()]);
    }
    cmd.extend([
        wrk.to_owned(),
        "-t1".to_owned(),
        format!("-c{conns}"),
        format!("-d{secs}s"),
        "--latency".to_owned(),
    ]);
    match load {
        Load::Cookie(cookie) => cmd.extend(["-H".to_owned(), format!("Cookie: {cookie}")]),
        Load::Rotate(script) => cmd.extend(["-s".to_owned(), script.display().to_string()]),
    }
    cmd.push(url);
    cmd
}

pub(crate) fn run_wrk(cmd: &[String]) -> Res<Wrk> {
    let out = Command::new(&cmd[0])
        .args(&cmd[1..])
        .output()
        .map_err(|e| format!("cannot run {}: {e}", cmd[0]))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(format!(
            "wrk failed: {}{}",
            text,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    parse_wrk(&text).ok_or_else(|| format!("cannot read wrk's output:\n{text}"))
}

/// Runs `servers`' wrk commands at the same time (head to head); per server, wrk's figures and
/// the server's CPU time per answered request in µs. A non-2xx answer or a socket error fails it.
pub(crate) fn run_wrk_at_once(servers: &[(&Proc, Vec<String>)]) -> Res<Vec<(Wrk, f64)>> {
    let cpu_before: Vec<f64> = servers.iter().map(|(p, _)| p.cpu_secs()).collect();
    let mut children = Vec::new();
    for (_, cmd) in servers {
        let child = Command::new(&cmd[0])
            .args(&cmd[1..])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", cmd[0]))?;
        children.push(child);
    }
    // Every run waited for before any is judged: none is left running into the next case.
    let outputs: Vec<_> = children.into_iter().map(Child::wait_with_output).collect();
    let mut results = Vec::new();
    for ((server, _), (out, before)) in servers.iter().zip(outputs.into_iter().zip(cpu_before)) {
        let out = out.map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&out.stdout);
        let wrk = parse_wrk(&text).ok_or_else(|| format!("cannot read wrk's output:\n{text}"))?;
        if wrk.bad > 0 {
            return Err(format!(
                "{}: {} bad answers head to head",
                server.name, wrk.bad
            ));
        }
        let cpu_us = (server.cpu_secs() - before) * 1e6 / wrk.requests.max(1) as f64;
        results.push((wrk, cpu_us));
    }
    Ok(results)
}

pub(crate) fn parse_wrk(text: &str) -> Option<Wrk> {
    let duration_ms = |s: &str| -> Option<f64> {
        let split = s.find(|c: char| c.is_ascii_alphabetic())?;
        let (n, unit) = s.split_at(split);
        let n: f64 = n.parse().ok()?;
        Some(match unit {
            "us" => n / 1000.0,
            "ms" => n,
            "s" => n * 1000.0,
            "m" => n * 60_000.0,
            _ => return None,
        })
    };
    let (mut rps, mut p50, mut p99, mut requests, mut bad) = (None, None, None, None, 0);
    for line in text.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["Requests/sec:", n] => rps = n.parse().ok(),
            ["50%", d] => p50 = duration_ms(d),
            ["99%", d] => p99 = duration_ms(d),
            [n, "requests", "in", ..] => requests = n.parse().ok(),
            ["Non-2xx", "or", "3xx", "responses:", n] => bad += n.parse::<u64>().ok()?,
            ["Socket", "errors:", rest @ ..] => {
                // connect N, read N, write N, timeout N
                bad += rest
                    .iter()
                    .filter_map(|w| w.trim_end_matches(',').parse::<u64>().ok())
                    .sum::<u64>();
            }
            _ => {}
        }
    }
    Some(Wrk {
        rps: rps?,
        p50_ms: p50?,
        p99_ms: p99?,
        requests: requests?,
        bad,
    })
}

pub(crate) fn shell_words(cmd: &[String]) -> String {
    cmd.iter()
        .map(|w| {
            if w.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./:=%@".contains(c))
            {
                w.clone()
            } else {
                format!("'{}'", w.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

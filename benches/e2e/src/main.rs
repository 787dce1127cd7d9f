//! The end-to-end echo benchmark, in the manner of uWebSockets' `load_test`:
//! C connections, each with one masked message of S bytes in flight, every
//! echo checked, against three echo servers written the way their own docs
//! show, each on one tokio current-thread runtime of its own:
//!
//! - sansproto: `examples/tokio_echo.rs` itself (reading straight into the
//!   connection's buffer, writing with `writev` from `output()`);
//! - tokio-tungstenite: `accept_async`, then `next()` and `send()`;
//! - fastwebsockets: `FragmentCollector`, as in its echo example (the HTTP
//!   upgrade is answered by hand instead of through hyper).
//!
//! and a floor beside them: a server with no library and none of a
//! library's checks, which only unmasks each frame in place and writes it
//! back with one `writev`. Its CPU per message is what the sockets and the
//! runtime cost any server here, and `vs floor` says how far above it each
//! one is.
//!
//! Rounds are interleaved (every server once per round, in a rotating
//! order). Reported per scenario: messages per second, and the server
//! thread's CPU time per message from `/proc/.../schedstat` (the load
//! generator shares the CPU, so messages per second alone is diluted).
//! Then each server runs alone in a child process holding 5,000 idle
//! connections, and its resident memory per connection is reported.
//!
//! ```text
//! cd benches/e2e && cargo run --release            # or through scripts/bench-report.sh
//! E2E_ROUNDS=5 E2E_SECS=3 cargo run --release
//! E2E_SCENARIOS=100,500 E2E_RSS=0 cargo run --release   # some scenarios, no memory figure
//! ```

#[path = "../../../examples/tokio_echo.rs"]
#[allow(dead_code)]
mod tokio_echo;

mod load;
mod peers;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

/// The servers compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    Sansproto,
    TokioTungstenite,
    Fastwebsockets,
    /// No library: the sockets, the runtime and the unmasking alone.
    Floor,
}

impl Server {
    const ALL: [Server; 4] = [
        Server::Sansproto,
        Server::TokioTungstenite,
        Server::Fastwebsockets,
        Server::Floor,
    ];

    fn name(self) -> &'static str {
        match self {
            Server::Sansproto => "sansproto",
            Server::TokioTungstenite => "tokio-tungstenite",
            Server::Fastwebsockets => "fastwebsockets",
            Server::Floor => "floor",
        }
    }

    fn parse(name: &str) -> Option<Server> {
        Server::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// Connections, and the size of each one's message.
const SCENARIOS: [(usize, usize, &str); 3] = [
    (100, 20, "100 x 20 B"),
    (500, 16 << 10, "500 x 16 KiB"),
    (10, 1 << 20, "10 x 1 MiB"),
];

/// Idle connections held for the memory figure.
const IDLE: usize = 5000;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let (Some("--serve"), Some(name)) = (args.get(1).map(String::as_str), args.get(2)) {
        let server = Server::parse(name).expect("a server name");
        let (addr, _) = peers::start(server);
        println!("{addr}");
        loop {
            std::thread::park();
        }
    }
    let rounds: usize = env_or("E2E_ROUNDS", 3);
    let secs: f64 = env_or("E2E_SECS", 2.0);
    let window = Duration::from_secs_f64(secs);
    let servers: Vec<(Server, SocketAddr, u32)> = Server::ALL
        .into_iter()
        .filter(|s| std::env::var("E2E_SERVER").map_or(true, |only| only == s.name()))
        .map(|s| {
            let (addr, tid) = peers::start(s);
            (s, addr, tid)
        })
        .collect();
    let mut generator = load::Generator::new();

    println!("end to end: {rounds} interleaved rounds of {secs} s per server and scenario");
    println!(
        "{:<14} {:<18} {:>12} {:>16} {:>10} {:>10} {:>10}",
        "scenario", "server", "messages/s", "server CPU/msg", "vs fws", "vs tung", "vs floor"
    );
    let only: String = env_or("E2E_SCENARIOS", String::new());
    for (conns, size, label) in SCENARIOS {
        if !only.is_empty() && !only.split(',').any(|o| label.starts_with(o)) {
            continue;
        }
        // Totals per server: messages, server CPU ns, wall ns.
        let mut totals = [(0u64, 0u64, 0u64); Server::ALL.len()];
        for round in 0..rounds {
            for k in 0..servers.len() {
                let i = (k + round) % servers.len();
                let (_, addr, tid) = servers[i];
                let r = generator.round(addr, tid, conns, size, window);
                totals[i].0 += r.messages;
                totals[i].1 += r.server_cpu_ns;
                totals[i].2 += r.wall_ns;
            }
        }
        let per_msg = |i: usize| totals[i].1 as f64 / totals[i].0.max(1) as f64;
        // Ratios against a server that did not run read as NaN.
        let at = |s: Server| servers.iter().position(|&(x, _, _)| x == s);
        let vs = |i: usize, s: Server| at(s).map_or(f64::NAN, |j| per_msg(i) / per_msg(j));
        for (i, (server, _, _)) in servers.iter().enumerate() {
            let rate = totals[i].0 as f64 / (totals[i].2 as f64 / 1e9);
            println!(
                "{:<14} {:<18} {:>12.0} {:>13.2} us {:>9.2}x {:>9.2}x {:>9.2}x",
                label,
                server.name(),
                rate,
                per_msg(i) / 1e3,
                vs(i, Server::Fastwebsockets),
                vs(i, Server::TokioTungstenite),
                vs(i, Server::Floor),
            );
        }
    }

    if env_or("E2E_RSS", 1) == 0 {
        return;
    }
    println!("\nresident memory per idle connection ({IDLE} connections, each server alone)");
    let mut rss = Vec::new();
    for server in Server::ALL.into_iter().filter(|&s| s != Server::Floor) {
        let per_conn = idle_rss(server, &mut generator);
        rss.push(per_conn);
        println!("{:<18} {:>8.0} B", server.name(), per_conn);
    }
    println!(
        "sansproto / fastwebsockets: {:.2}x, sansproto / tokio-tungstenite: {:.2}x",
        rss[0] / rss[2],
        rss[0] / rss[1]
    );
}

/// Runs `server` alone in a child process and returns its resident memory
/// per idle connection: the growth from a few connections to `IDLE` more.
fn idle_rss(server: Server, generator: &mut load::Generator) -> f64 {
    let exe = std::env::current_exe().expect("own path");
    let mut child = Command::new(exe)
        .args(["--serve", server.name()])
        .stdout(Stdio::piped())
        .spawn()
        .expect("child server");
    let mut line = String::new();
    let stdout = child.stdout.take().expect("stdout");
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("address");
    let addr: SocketAddr = line.trim().parse().expect("an address");
    let pid = child.id();
    let warm = generator.open_idle(addr, 16);
    std::thread::sleep(Duration::from_millis(300));
    let before = load::rss_bytes(pid);
    let idle = generator.open_idle(addr, IDLE);
    std::thread::sleep(Duration::from_millis(500));
    let after = load::rss_bytes(pid);
    drop((warm, idle));
    let _ = child.kill();
    let _ = child.wait();
    (after.saturating_sub(before)) as f64 / IDLE as f64
}

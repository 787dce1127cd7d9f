//! The load generator: sansproto clients on a tokio current-thread runtime
//! of their own, each with one masked message in flight, every echo
//! checked. And the two figures read from `/proc`: a thread's CPU time and
//! a process's resident memory.

use bytes::{Buf, Bytes};
use sansproto::ws::{ClientRequest, Config, Connection, Event, Message};
use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::runtime::Runtime;

/// What one round measured.
pub struct Round {
    pub messages: u64,
    pub server_cpu_ns: u64,
    pub wall_ns: u64,
}

/// The generator's runtime.
pub struct Generator {
    rt: Runtime,
}

/// A client connection, handshaken.
struct Client {
    stream: TcpStream,
    conn: Connection,
    buf: Vec<u8>,
}

impl Client {
    async fn open(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).await.expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        let config = Config::default().with_max_message_size(2 << 20);
        let conn =
            Connection::client(config, ClientRequest::new(addr.to_string(), "/")).expect("client");
        let mut client = Client {
            stream,
            conn,
            buf: vec![0u8; 64 << 10],
        };
        client.flush().await;
        loop {
            match client.next_event().await {
                Event::Open(_) => return client,
                Event::Closed(c) => panic!("handshake failed: {c:?}"),
                _ => {}
            }
        }
    }

    async fn flush(&mut self) {
        let mut out = self.conn.output();
        if out.has_remaining() {
            self.stream.write_all_buf(&mut out).await.expect("write");
        }
    }

    async fn next_event(&mut self) -> Event {
        loop {
            if let Some(event) = self.conn.poll_event() {
                return event;
            }
            let n = self.stream.read(&mut self.buf).await.expect("read");
            assert!(n > 0, "the server hung up");
            self.conn.receive(&self.buf[..n]).expect("valid frames");
        }
    }

    /// Sends `payload` and waits for its echo, which must equal it.
    async fn echo(&mut self, payload: &Bytes) {
        self.conn
            .send(Message::Binary(payload.clone()))
            .expect("room to send");
        self.flush().await;
        loop {
            match self.next_event().await {
                Event::Message(m) => {
                    assert!(m.as_bytes() == &payload[..], "echo differs");
                    return;
                }
                Event::Closed(c) => panic!("closed: {c:?}"),
                _ => {}
            }
        }
    }
}

impl Generator {
    pub fn new() -> Self {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        Generator { rt }
    }

    /// `conns` clients echo `size`-byte messages for `window`; the server
    /// thread `tid`'s CPU time is read around it.
    pub fn round(
        &mut self,
        addr: SocketAddr,
        tid: u32,
        conns: usize,
        size: usize,
        window: Duration,
    ) -> Round {
        let payload = Bytes::from((0..size).map(|i| (i * 7 + 3) as u8).collect::<Vec<u8>>());
        let local = tokio::task::LocalSet::new();
        local.block_on(&self.rt, async move {
            let mut clients = Vec::new();
            for _ in 0..conns {
                clients.push(Client::open(addr).await);
            }
            // One echo each before measuring: every buffer is warm.
            for c in &mut clients {
                c.echo(&payload).await;
            }
            let count = Rc::new(Cell::new(0u64));
            let stop = Rc::new(Cell::new(false));
            let mut tasks = Vec::new();
            for mut c in clients {
                let (count, stop, payload) = (count.clone(), stop.clone(), payload.clone());
                tasks.push(tokio::task::spawn_local(async move {
                    while !stop.get() {
                        c.echo(&payload).await;
                        count.set(count.get() + 1);
                    }
                    c
                }));
            }
            tokio::task::yield_now().await;
            let (cpu0, n0, t0) = (thread_cpu_ns(tid), count.get(), Instant::now());
            tokio::time::sleep(window).await;
            let (cpu1, n1, wall) = (thread_cpu_ns(tid), count.get(), t0.elapsed());
            stop.set(true);
            for t in tasks {
                let mut c = t.await.expect("client");
                let _ = c.conn.close(sansproto::ws::CloseCode::NORMAL, "");
                c.flush().await;
            }
            Round {
                messages: n1 - n0,
                server_cpu_ns: cpu1.saturating_sub(cpu0),
                wall_ns: wall.as_nanos() as u64,
            }
        })
    }

    /// Opens `n` connections and leaves them idle until the returned value
    /// is dropped.
    pub fn open_idle(&mut self, addr: SocketAddr, n: usize) -> Vec<(TcpStream, Connection)> {
        self.rt.block_on(async move {
            let mut held = Vec::with_capacity(n);
            for _ in 0..n {
                let c = Client::open(addr).await;
                held.push((c.stream, c.conn));
            }
            held
        })
    }
}

/// The calling thread's id.
pub fn thread_id() -> u32 {
    std::fs::read_link("/proc/thread-self")
        .ok()
        .and_then(|p| p.file_name()?.to_str()?.parse().ok())
        .expect("/proc/thread-self")
}

/// CPU time a thread of this process has run, from its schedstat.
fn thread_cpu_ns(tid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat"))
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .expect("schedstat")
}

/// A process's resident memory, from its status.
pub fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| {
            let kib: u64 = l
                .strip_prefix("VmRSS:")?
                .trim()
                .strip_suffix("kB")?
                .trim()
                .parse()
                .ok()?;
            Some(kib * 1024)
        })
        .expect("VmRSS")
}

//! Hostile peers against the WebSocket machines: what each attack makes a
//! connection hold, measured with a counting allocator, and that the
//! machine still serves afterwards. Every test runs alone (the counter is
//! process-wide).

use sansproto::ws::{encode_frame, Config, Connection, Event, Message, OpCode, Role};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Mutex;

struct Counting;
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static SERIAL: Mutex<()> = Mutex::new(());

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = System.alloc(l);
        if !p.is_null() {
            let now = LIVE.fetch_add(l.size(), Relaxed) + l.size();
            PEAK.fetch_max(now, Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l);
        LIVE.fetch_sub(l.size(), Relaxed);
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        let q = System.realloc(p, l, new);
        if !q.is_null() {
            if new > l.size() {
                let now = LIVE.fetch_add(new - l.size(), Relaxed) + new - l.size();
                PEAK.fetch_max(now, Relaxed);
            } else {
                LIVE.fetch_sub(l.size() - new, Relaxed);
            }
        }
        q
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Runs `attack` alone and returns its result with the peak heap growth
/// above what was live when it started.
fn measure<T>(attack: impl FnOnce() -> T) -> (T, usize) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let base = LIVE.load(Relaxed);
    PEAK.store(base, Relaxed);
    let out = attack();
    (out, PEAK.load(Relaxed).saturating_sub(base))
}

fn masked(opcode: OpCode, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    encode_frame(&mut v, true, 0, opcode, Some([1, 2, 3, 4]), payload);
    v
}

fn server(config: Config) -> Connection {
    Connection::after_handshake(
        Role::Server,
        config,
        None,
        None,
        sansproto::seeded_random(5),
    )
}

/// Kept tiny messages hold about what they weigh, not the reads they came
/// in: 1,000 one-byte messages, each in its own read after a large one.
#[test]
fn kept_tiny_messages_do_not_pin_their_reads() {
    let (kept, growth) = measure(|| {
        let mut s = server(Config::default());
        s.receive(&masked(OpCode::Binary, &vec![0u8; 60 << 10]))
            .unwrap();
        assert!(matches!(s.poll_event(), Some(Event::Message(_))));
        let mut kept = Vec::new();
        for i in 0..1000u32 {
            s.receive(&masked(OpCode::Binary, &[i as u8])).unwrap();
            while let Some(Event::Message(m)) = s.poll_event() {
                kept.push(m);
            }
        }
        // Still serving.
        s.send("still here").unwrap();
        kept
    });
    assert_eq!(kept.len(), 1000);
    assert_eq!(kept[999], Message::Binary(vec![231u8].into()));
    assert!(
        growth < 1 << 20,
        "1,000 kept one-byte messages held {growth} bytes"
    );
}

/// The same when each tiny message shares its read with a large message
/// the application drops: the large one is split off on its own, and the
/// tiny one is copied out of the read.
#[test]
fn kept_tiny_messages_do_not_pin_large_neighbours() {
    let (kept, growth) = measure(|| {
        let mut s = server(Config::default());
        let mut kept = Vec::new();
        for i in 0..1000u32 {
            let mut read = masked(OpCode::Binary, &[i as u8]);
            read.extend(masked(OpCode::Binary, &vec![7u8; 60 << 10]));
            s.receive(&read).unwrap();
            while let Some(Event::Message(m)) = s.poll_event() {
                if m.len() == 1 {
                    kept.push(m);
                }
            }
        }
        s.send("still here").unwrap();
        kept
    });
    assert_eq!(kept.len(), 1000);
    assert!(
        growth < 2 << 20,
        "1,000 kept one-byte messages held {growth} bytes"
    );
}

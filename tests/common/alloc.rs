//! A counting global allocator: live heap bytes and their peak, for tests
//! that bound what a machine holds. A test file installs it with
//! `#[global_allocator] static ALLOC: Counting = Counting;`. The counts are
//! per thread (the machines under test run on the test's own thread), so
//! what the test harness and other tests allocate meanwhile is not counted;
//! every test of such a file still holds [`serial`] for its whole run, so
//! that the figures it prints come out one test at a time.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::{Mutex, MutexGuard};

/// The counting allocator (the system one underneath).
pub struct Counting;

thread_local! {
    /// Heap bytes this thread allocated and has not freed (negative when it
    /// freed what another thread allocated).
    static LIVE: Cell<isize> = const { Cell::new(0) };
    /// The most `LIVE` has been since it was last reset.
    static PEAK: Cell<isize> = const { Cell::new(0) };
}
static SERIAL: Mutex<()> = Mutex::new(());

/// Adds `delta` to this thread's live bytes and raises its peak.
fn count(delta: isize) {
    // `try_with`: nothing is counted while the thread's locals are torn down.
    let _ = LIVE.try_with(|live| {
        let now = live.get() + delta;
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = System.alloc(l);
        if !p.is_null() {
            count(l.size() as isize);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l);
        count(-(l.size() as isize));
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        let q = System.realloc(p, l, new);
        if !q.is_null() {
            count(new as isize - l.size() as isize);
        }
        q
    }
}

/// Heap bytes this thread holds now (allocated and not freed).
pub fn live() -> isize {
    LIVE.with(Cell::get)
}

/// Held by every test of a file that measures, for its whole run.
pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs `f` (the attack named `name`) and returns its result with the
/// peak heap growth above what was live when it started, which it also
/// prints (`cargo test -- --nocapture` shows the figures). The caller
/// holds [`serial`].
pub fn measure<T>(name: &str, f: impl FnOnce() -> T) -> (T, usize) {
    let base = LIVE.with(Cell::get);
    PEAK.with(|peak| peak.set(base));
    let out = f();
    let growth = usize::try_from(PEAK.with(Cell::get) - base).unwrap_or(0);
    eprintln!("peak heap growth: {name}: {growth} bytes");
    (out, growth)
}

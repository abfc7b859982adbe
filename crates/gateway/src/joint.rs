//! A client connection and its upstream connections, driven in one task.
//!
//! A task of their own for the upstream connections would cost a task switch
//! and a trip through the scheduler each time a request or response passes
//! between the two sides, and cache misses on the state of both at a
//! thousand connections. Here each side is polled only when it was woken,
//! and a wake from one side to the other while this task runs (a request
//! sent, a response received) is served in the same poll instead of
//! scheduling the task again. The connection's timer and shutdown signal
//! are a third side, so the wakes of a request do not poll them too.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use crate::lock;
use crate::upstream::Driver;

/// The futures that drive a client connection's upstream connections: the
/// current one, and replaced ones until they have closed.
#[derive(Default)]
pub(crate) struct Drivers {
    current: Option<Driver>,
    /// Usually empty, so no allocation.
    retired: Vec<Driver>,
    /// Let go on purpose (see [`Drivers::let_go`]): driven until closed,
    /// and their end is no event.
    let_go: Vec<Driver>,
    /// Whoever polls the drivers, woken when one is added.
    waker: Option<Waker>,
}

impl Drivers {
    pub(crate) fn add(&mut self, driver: Driver) {
        if let Some(old) = self.current.replace(driver) {
            self.retired.push(old);
        }
        if let Some(w) = &self.waker {
            w.wake_by_ref();
        }
    }

    /// Let the current upstream connection go, its sender dropped by the
    /// caller: it closes, and the client connection stays open (the
    /// gateway, not Exchange, ended it).
    pub(crate) fn let_go(&mut self) {
        if let Some(old) = self.current.take() {
            self.let_go.push(old);
        }
        if let Some(w) = &self.waker {
            w.wake_by_ref();
        }
    }

    /// Drive every upstream connection; ready when one of them has ended.
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if !self.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            self.waker = Some(cx.waker().clone());
        }
        let mut ended = false;
        if let Some(d) = &mut self.current {
            if d.as_mut().poll(cx).is_ready() {
                self.current = None;
                ended = true;
            }
        }
        if !self.retired.is_empty() {
            let before = self.retired.len();
            self.retired.retain_mut(|d| d.as_mut().poll(cx).is_pending());
            ended |= self.retired.len() < before;
        }
        if !self.let_go.is_empty() {
            self.let_go.retain_mut(|d| d.as_mut().poll(cx).is_pending());
        }
        if ended {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

/// What [`Joint::poll`] saw happen.
pub(crate) enum Event<T> {
    /// The client connection ended.
    ClientDone,
    /// An upstream connection ended.
    UpstreamEnded,
    /// The control future (timer, shutdown) is ready with this.
    Control(T),
}

const CLIENT: u8 = 1;
const UPSTREAM: u8 = 2;
const CONTROL: u8 = 4;
const ALL: u8 = CLIENT | UPSTREAM | CONTROL;

/// Rounds of polls in one poll of the task, at most: futures that keep
/// waking each other (tokio's cooperative budget spent, say) must not hold
/// the thread.
const MAX_ROUNDS: u32 = 8;

struct Flags {
    /// Which sides were woken since they were last polled.
    woken: AtomicU8,
    /// While [`Joint::poll`] runs, a wake needs no rescheduling: the loop
    /// there sees it.
    polling: AtomicBool,
    task: Mutex<Option<Waker>>,
}

/// The waker one side is polled with.
struct Side {
    flags: Arc<Flags>,
    bit: u8,
}

impl Wake for Side {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.flags.woken.fetch_or(self.bit, SeqCst);
        if !self.flags.polling.load(SeqCst) {
            if let Some(task) = &*lock(&self.flags.task) {
                task.wake_by_ref();
            }
        }
    }
}

/// The wakers of one client connection's sides.
pub(crate) struct Joint {
    flags: Arc<Flags>,
    client: Waker,
    upstream: Waker,
    control: Waker,
}

impl Joint {
    pub(crate) fn new() -> Joint {
        let flags =
            Arc::new(Flags { woken: AtomicU8::new(ALL), polling: AtomicBool::new(false), task: Mutex::new(None) });
        let side = |bit| Waker::from(Arc::new(Side { flags: flags.clone(), bit }));
        let (client, upstream, control) = (side(CLIENT), side(UPSTREAM), side(CONTROL));
        Joint { flags, client, upstream, control }
    }

    /// Have every side polled next time, as after a change made from outside
    /// or a new control future.
    pub(crate) fn wake_all(&self) {
        self.flags.woken.fetch_or(ALL, SeqCst);
    }

    /// Poll the client connection, the upstream drivers and the control
    /// future, each only if woken, until none is; the client first, so that
    /// a request it has just handed to the upstream connection goes out in
    /// this same poll.
    pub(crate) fn poll<F: Future, C: Future>(
        &self,
        mut client: Pin<&mut F>,
        drivers: &Mutex<Drivers>,
        mut control: Pin<&mut C>,
        cx: &mut Context<'_>,
    ) -> Poll<Event<C::Output>> {
        {
            let mut task = lock(&self.flags.task);
            if !task.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                *task = Some(cx.waker().clone());
            }
        }
        self.flags.polling.store(true, SeqCst);
        let event = self.rounds(client.as_mut(), drivers, control.as_mut());
        self.flags.polling.store(false, SeqCst);
        match event {
            Some(event) => {
                // Whatever else was woken is polled on the next call.
                Poll::Ready(event)
            }
            None => {
                // Woken after the last round, or in the window before
                // `polling` was cleared: go round again later.
                if self.flags.woken.load(SeqCst) != 0 {
                    cx.waker().wake_by_ref();
                }
                Poll::Pending
            }
        }
    }

    fn rounds<F: Future, C: Future>(
        &self,
        mut client: Pin<&mut F>,
        drivers: &Mutex<Drivers>,
        mut control: Pin<&mut C>,
    ) -> Option<Event<C::Output>> {
        for _ in 0..MAX_ROUNDS {
            let woken = self.flags.woken.swap(0, SeqCst);
            if woken == 0 {
                return None;
            }
            if woken & CLIENT != 0 && client.as_mut().poll(&mut Context::from_waker(&self.client)).is_ready() {
                return Some(Event::ClientDone);
            }
            if woken & UPSTREAM != 0 {
                let mut d = lock(drivers);
                if d.poll(&mut Context::from_waker(&self.upstream)).is_ready() {
                    return Some(Event::UpstreamEnded);
                }
            }
            if woken & CONTROL != 0 {
                if let Poll::Ready(out) = control.as_mut().poll(&mut Context::from_waker(&self.control)) {
                    return Some(Event::Control(out));
                }
            }
        }
        None
    }
}

//! The circuit breaker on the primary provider: after [`FAILURES_TO_OPEN`] consecutive
//! availability failures it opens for [`OPEN_FOR_SECS`], during which every call goes to the
//! fallback; then exactly one probe call goes to the primary, whose outcome closes it or opens
//! it again. Time comes from the injected [`Clock`].

use std::sync::{Arc, Mutex, PoisonError};

use bastion_core::Clock;

/// Consecutive availability failures (connect error, timeout, 429, 5xx) that open the breaker.
pub const FAILURES_TO_OPEN: u32 = 3;
/// How long an open breaker sends every call to the fallback before it lets one probe through.
pub const OPEN_FOR_SECS: u64 = 30;

const NANOS_PER_SEC: u64 = 1_000_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed {
        failures: u32,
    },
    Open {
        until_nanos: u64,
    },
    /// Open, with the one probe call in flight.
    Probing,
}

/// Where the breaker sends one call.
#[derive(Debug)]
pub enum Route {
    /// To the primary, the breaker closed.
    Primary,
    /// To the primary as the one probe; the ticket reports its outcome.
    Probe(ProbeTicket),
    /// Straight to the fallback: the breaker is open (or its probe is in flight).
    Fallback,
}

/// How a primary call ended, as far as the breaker cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The primary answered: a completion, or an error that is not about availability (a 400,
    /// a malformed body). It is reachable, so the consecutive count restarts.
    Answered,
    /// A connect error, timeout, 429 or 5xx.
    Unavailable,
}

/// What changed, for the caller's log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    None,
    Opened,
    Closed,
}

/// The breaker's state, shared by every call through one provider.
#[derive(Clone)]
pub struct Breaker {
    state: Arc<Mutex<State>>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Breaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Breaker")
            .field("state", &*self.lock())
            .finish_non_exhaustive()
    }
}

impl Breaker {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            state: Arc::new(Mutex::new(State::Closed { failures: 0 })),
            clock,
        }
    }

    // The state is a plain value, consistent after any panic: a poisoned lock is still usable.
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Where the next call goes. An open breaker whose time is up hands out one probe ticket
    /// and sends every other call to the fallback until that probe reports.
    pub fn admit(&self) -> Route {
        let now = self.clock.now_nanos();
        let mut state = self.lock();
        match *state {
            State::Closed { .. } => Route::Primary,
            State::Open { until_nanos } if now >= until_nanos => {
                *state = State::Probing;
                Route::Probe(ProbeTicket {
                    breaker: Some(self.clone()),
                })
            }
            State::Open { .. } | State::Probing => Route::Fallback,
        }
    }

    /// Reports how a call admitted as [`Route::Primary`] ended.
    pub fn primary(&self, outcome: Outcome) -> Transition {
        let mut state = self.lock();
        match (outcome, *state) {
            (Outcome::Answered, State::Closed { .. }) => {
                *state = State::Closed { failures: 0 };
                Transition::None
            }
            // A call let in before the breaker opened came back fine: the primary is up again.
            (Outcome::Answered, State::Open { .. }) => {
                *state = State::Closed { failures: 0 };
                Transition::Closed
            }
            (Outcome::Unavailable, State::Closed { failures }) => {
                let failures = failures.saturating_add(1);
                if failures >= FAILURES_TO_OPEN {
                    *state = self.open();
                    Transition::Opened
                } else {
                    *state = State::Closed { failures };
                    Transition::None
                }
            }
            // Already open, or the probe in flight decides.
            (Outcome::Unavailable, State::Open { .. }) | (_, State::Probing) => Transition::None,
        }
    }

    fn probe(&self, outcome: Outcome) -> Transition {
        let mut state = self.lock();
        match outcome {
            Outcome::Answered => {
                *state = State::Closed { failures: 0 };
                Transition::Closed
            }
            Outcome::Unavailable => {
                *state = self.open();
                Transition::Opened
            }
        }
    }

    fn open(&self) -> State {
        let until_nanos = self
            .clock
            .now_nanos()
            .saturating_add(OPEN_FOR_SECS * NANOS_PER_SEC);
        State::Open { until_nanos }
    }

    /// A probe that never reported (its call was dropped): the next call probes instead, so
    /// the primary is never shut out for good.
    fn abandon_probe(&self) {
        let mut state = self.lock();
        if *state == State::Probing {
            *state = State::Open { until_nanos: 0 };
        }
    }

    /// Whether calls currently skip the primary (for tests and logs).
    pub fn is_open(&self) -> bool {
        !matches!(*self.lock(), State::Closed { .. })
    }
}

/// The one probe call's right to report; dropped without a report, it hands the probe on.
#[derive(Debug)]
pub struct ProbeTicket {
    breaker: Option<Breaker>,
}

impl ProbeTicket {
    /// Reports the probe's outcome: closes the breaker or opens it for another period.
    pub fn report(mut self, outcome: Outcome) -> Transition {
        match self.breaker.take() {
            Some(breaker) => breaker.probe(outcome),
            None => Transition::None,
        }
    }
}

impl Drop for ProbeTicket {
    fn drop(&mut self) {
        if let Some(breaker) = self.breaker.take() {
            breaker.abandon_probe();
        }
    }
}

#[cfg(test)]
mod tests {
    use bastion_core::{ManualClock, Timestamp};

    use super::*;

    fn breaker() -> (Breaker, ManualClock) {
        let clock = ManualClock::new(Timestamp(1_000));
        (Breaker::new(Arc::new(clock.clone())), clock)
    }

    fn fail(b: &Breaker, times: u32) -> Vec<Transition> {
        (0..times)
            .map(|_| {
                assert!(matches!(b.admit(), Route::Primary));
                b.primary(Outcome::Unavailable)
            })
            .collect()
    }

    #[test]
    fn three_consecutive_failures_open_it_and_a_success_between_restarts_the_count() {
        let (b, _clock) = breaker();
        assert_eq!(fail(&b, 2), vec![Transition::None; 2]);
        assert_eq!(b.primary(Outcome::Answered), Transition::None);
        assert_eq!(fail(&b, 2), vec![Transition::None; 2]);
        assert!(!b.is_open());
        assert_eq!(fail(&b, 1), vec![Transition::Opened]);
        assert!(b.is_open());
        assert!(matches!(b.admit(), Route::Fallback));
    }

    #[test]
    fn an_open_breaker_skips_the_primary_until_thirty_seconds_then_admits_one_probe() {
        let (b, clock) = breaker();
        fail(&b, 3);
        clock.advance(29);
        assert!(matches!(b.admit(), Route::Fallback));
        clock.advance(1);
        let Route::Probe(ticket) = b.admit() else {
            panic!("no probe after 30 s")
        };
        assert!(matches!(b.admit(), Route::Fallback));
        assert!(matches!(b.admit(), Route::Fallback));
        assert_eq!(ticket.report(Outcome::Answered), Transition::Closed);
        assert!(!b.is_open());
        assert!(matches!(b.admit(), Route::Primary));
    }

    #[test]
    fn a_failed_probe_opens_it_for_another_thirty_seconds() {
        let (b, clock) = breaker();
        fail(&b, 3);
        clock.advance(30);
        let Route::Probe(ticket) = b.admit() else {
            panic!("no probe after 30 s")
        };
        assert_eq!(ticket.report(Outcome::Unavailable), Transition::Opened);
        clock.advance(29);
        assert!(matches!(b.admit(), Route::Fallback));
        clock.advance(1);
        assert!(matches!(b.admit(), Route::Probe(_)));
    }

    #[test]
    fn a_probe_dropped_without_an_outcome_lets_the_next_call_probe() {
        let (b, clock) = breaker();
        fail(&b, 3);
        clock.advance(30);
        let ticket = b.admit();
        assert!(matches!(ticket, Route::Probe(_)));
        assert!(matches!(b.admit(), Route::Fallback));
        drop(ticket);
        assert!(matches!(b.admit(), Route::Probe(_)));
    }

    #[test]
    fn late_failures_of_calls_let_in_before_it_opened_do_not_extend_it() {
        let (b, clock) = breaker();
        fail(&b, 3);
        clock.advance(20);
        assert_eq!(b.primary(Outcome::Unavailable), Transition::None);
        clock.advance(10);
        assert!(matches!(b.admit(), Route::Probe(_)));
    }
}

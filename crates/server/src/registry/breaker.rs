//! The circuit breaker in front of the civil registry, as a plain state
//! machine: the caller passes the clock in (a monotonic `Instant` for the
//! cool-down, unix milliseconds for what the console shows), so the tests
//! drive time by hand.
//!
//! Closed: lookups go through; `failures_to_open` consecutive failed lookups
//! open it. Open: lookups are refused without calling the registry until the
//! cool-down passes. Half-open: one lookup is let through as a probe; success
//! closes the circuit, failure opens it for another cool-down. A probe that
//! never reports back (its task was cancelled) stops blocking after one more
//! cool-down.

use super::{BreakerState, RegistryStatus};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Closed,
    Open { until: Instant, since_ms: i64 },
    HalfOpen { probe_until: Instant, since_ms: i64 },
}

#[derive(Clone, Debug)]
pub struct Breaker {
    failures_to_open: u32,
    cool_down: Duration,
    state: State,
    consecutive_failures: u32,
    last_success_ms: Option<i64>,
}

impl Breaker {
    pub fn new(failures_to_open: u32, cool_down: Duration) -> Self {
        Self {
            failures_to_open: failures_to_open.max(1),
            cool_down,
            state: State::Closed,
            consecutive_failures: 0,
            last_success_ms: None,
        }
    }

    /// May a lookup go to the registry now? `Err` carries the milliseconds
    /// until one may.
    pub fn admit(&mut self, now: Instant) -> Result<(), u64> {
        match self.state {
            State::Closed => Ok(()),
            State::Open { until, since_ms } => {
                if now >= until {
                    self.state = State::HalfOpen {
                        probe_until: now + self.cool_down,
                        since_ms,
                    };
                    Ok(())
                } else {
                    Err(millis(until - now))
                }
            }
            State::HalfOpen {
                probe_until,
                since_ms,
            } => {
                if now >= probe_until {
                    // The last probe never reported: let another through.
                    self.state = State::HalfOpen {
                        probe_until: now + self.cool_down,
                        since_ms,
                    };
                    Ok(())
                } else {
                    Err(millis(probe_until - now).max(1))
                }
            }
        }
    }

    /// The registry answered.
    pub fn record_success(&mut self, now_unix_ms: i64) {
        self.state = State::Closed;
        self.consecutive_failures = 0;
        self.last_success_ms = Some(now_unix_ms);
    }

    /// A lookup failed after its retries.
    pub fn record_failure(&mut self, now: Instant, now_unix_ms: i64) {
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        match self.state {
            State::Closed => {
                if self.consecutive_failures >= self.failures_to_open {
                    self.state = State::Open {
                        until: now + self.cool_down,
                        since_ms: now_unix_ms,
                    };
                }
            }
            // The outage goes on: it started when the circuit first opened.
            State::Open { since_ms, .. } | State::HalfOpen { since_ms, .. } => {
                self.state = State::Open {
                    until: now + self.cool_down,
                    since_ms,
                };
            }
        }
    }

    pub fn status(&self, now: Instant) -> RegistryStatus {
        let breaker = match self.state {
            State::Closed => BreakerState::Closed,
            State::Open { until, .. } if now >= until => BreakerState::HalfOpen,
            State::Open { since_ms, .. } => BreakerState::Open { since_ms },
            State::HalfOpen { .. } => BreakerState::HalfOpen,
        };
        RegistryStatus {
            breaker,
            consecutive_failures: self.consecutive_failures,
            last_success_ms: self.last_success_ms,
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const COOL: Duration = Duration::from_millis(1000);

    fn at(base: Instant, ms: u64) -> Instant {
        base + Duration::from_millis(ms)
    }

    #[test]
    fn opens_after_n_failures_and_refuses() {
        let t0 = Instant::now();
        let mut b = Breaker::new(5, COOL);
        for i in 0..4 {
            assert_eq!(b.admit(at(t0, i)), Ok(()));
            b.record_failure(at(t0, i), 100 + i as i64);
            assert_eq!(b.status(at(t0, i)).breaker, BreakerState::Closed);
        }
        assert_eq!(b.admit(at(t0, 4)), Ok(()));
        b.record_failure(at(t0, 4), 104);
        let s = b.status(at(t0, 4));
        assert_eq!(s.breaker, BreakerState::Open { since_ms: 104 });
        assert_eq!(s.consecutive_failures, 5);
        assert!(!s.is_available());
        assert_eq!(b.admit(at(t0, 504)), Err(500));
    }

    #[test]
    fn a_success_resets_the_count() {
        let t0 = Instant::now();
        let mut b = Breaker::new(3, COOL);
        b.record_failure(t0, 1);
        b.record_failure(t0, 2);
        b.record_success(3);
        b.record_failure(t0, 4);
        b.record_failure(t0, 5);
        let s = b.status(t0);
        assert_eq!(s.breaker, BreakerState::Closed);
        assert_eq!(s.consecutive_failures, 2);
        assert_eq!(s.last_success_ms, Some(3));
    }

    fn opened(t0: Instant) -> Breaker {
        let mut b = Breaker::new(1, COOL);
        b.record_failure(t0, 10);
        b
    }

    #[test]
    fn half_open_lets_one_probe_through_and_closes_on_success() {
        let t0 = Instant::now();
        let mut b = opened(t0);
        assert_eq!(b.status(at(t0, 1000)).breaker, BreakerState::HalfOpen);
        assert_eq!(b.admit(at(t0, 1000)), Ok(()));
        // The probe is in flight: others wait.
        assert!(b.admit(at(t0, 1001)).is_err());
        b.record_success(2000);
        assert_eq!(b.status(at(t0, 1002)).breaker, BreakerState::Closed);
        assert_eq!(b.admit(at(t0, 1002)), Ok(()));
    }

    #[test]
    fn a_failed_probe_reopens_keeping_the_outage_start() {
        let t0 = Instant::now();
        let mut b = opened(t0);
        assert_eq!(b.admit(at(t0, 1000)), Ok(()));
        b.record_failure(at(t0, 1100), 1110);
        assert_eq!(
            b.status(at(t0, 1100)).breaker,
            BreakerState::Open { since_ms: 10 }
        );
        assert_eq!(b.admit(at(t0, 1200)), Err(900));
        assert_eq!(b.admit(at(t0, 2100)), Ok(()));
    }

    #[test]
    fn a_lost_probe_stops_blocking_after_a_cool_down() {
        let t0 = Instant::now();
        let mut b = opened(t0);
        assert_eq!(b.admit(at(t0, 1000)), Ok(()));
        assert!(b.admit(at(t0, 1999)).is_err());
        assert_eq!(b.admit(at(t0, 2000)), Ok(()));
    }
}

//! Rate limits against automation on the citizens' booking routes and on
//! staff sign-in. On booking routes: per
//! client (the peer address, or behind a trusted proxy the address it
//! forwarded: `http::client_ip`) on every booking write, and per identity (the
//! keyed hash of the person's document) on new bookings, so a script that
//! books, cancels and books again for one person, or floods from one
//! address, gets `429 Too Many Requests` with `Retry-After`, while people
//! booking once or twice are never slowed. No CAPTCHA: it shuts out people
//! with disabilities. On sign-in (the API's, the console form's and
//! re-authentication): per client address, in a bucket of its own (staff of
//! one office often share an address, and they do not book), beside the
//! per-account throttle in the database (`auth::accounts`) and the bound on
//! password checks running at once ([`RateLimits::sign_in_checks`]).
//!
//! The limiters are GCRA token buckets (`governor`), in memory, per server.
//! Keys are forgotten once their bucket is full again
//! ([`RateLimits::forget_idle`], run by the worker loop), so memory follows
//! the active clients, not every address ever seen.

use crate::http::client_ip::TrustedProxies;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

/// The limits `serve` runs with (0 turns one off).
#[derive(clap::Args, Clone, Debug)]
pub struct LimitArgs {
    /// Booking writes (book, change, cancel) one client address may make per
    /// minute, sustained. A family books once; a bot books hundreds.
    #[arg(long, env = "PASAPORTE_RATE_CLIENT_PER_MIN", default_value_t = 20)]
    pub rate_client_per_min: u32,
    /// How many of those may come at once (a page reloaded, a retry).
    #[arg(long, env = "PASAPORTE_RATE_CLIENT_BURST", default_value_t = 10)]
    pub rate_client_burst: u32,
    /// New bookings one person may be named in per hour, sustained.
    #[arg(long, env = "PASAPORTE_RATE_IDENTITY_PER_HOUR", default_value_t = 4)]
    pub rate_identity_per_hour: u32,
    /// How many of those may come at once.
    #[arg(long, env = "PASAPORTE_RATE_IDENTITY_BURST", default_value_t = 4)]
    pub rate_identity_burst: u32,
    /// Sign-in attempts (API, console form, re-authentication) one client
    /// address may make per minute, sustained: an office's staff behind one
    /// address sign in a few times a day each; a guessing script, thousands.
    #[arg(long, env = "PASAPORTE_RATE_SIGN_IN_PER_MIN", default_value_t = 60)]
    pub rate_sign_in_per_min: u32,
    /// How many of those may come at once (a shift starting).
    #[arg(long, env = "PASAPORTE_RATE_SIGN_IN_BURST", default_value_t = 20)]
    pub rate_sign_in_burst: u32,
    /// Password checks of sign-ins running at once; beyond them a sign-in is
    /// answered 503 with Retry-After. 0: two per core (each check holds a
    /// core and about 19 MiB).
    #[arg(long, env = "PASAPORTE_SIGN_IN_CHECKS_MAX", default_value_t = 0)]
    pub sign_in_checks_max: usize,
    /// Reverse proxies (addresses or CIDR ranges, comma-separated) whose
    /// `X-Forwarded-For` names the client for the limits above and the logs;
    /// from anyone else the header is ignored. Empty: no proxy is trusted.
    #[arg(long, env = "PASAPORTE_TRUSTED_PROXIES", default_value = "")]
    pub trusted_proxies: String,
}

impl LimitArgs {
    /// No rate limits (tests and benchmarks that drive one server from one
    /// address). Password checks keep their bound of two per core: it
    /// protects the process's memory, not a policy.
    pub fn off() -> Self {
        Self {
            rate_client_per_min: 0,
            rate_client_burst: 0,
            rate_identity_per_hour: 0,
            rate_identity_burst: 0,
            rate_sign_in_per_min: 0,
            rate_sign_in_burst: 0,
            sign_in_checks_max: 0,
            trusted_proxies: String::new(),
        }
    }

    /// The proxies `--trusted-proxies` names, or what is wrong with it.
    pub fn trusted_proxies(&self) -> Result<TrustedProxies, String> {
        TrustedProxies::parse(&self.trusted_proxies)
    }
}

/// The limiters of one server.
#[derive(Default)]
pub struct RateLimits {
    client: Option<DefaultKeyedRateLimiter<IpAddr>>,
    identity: Option<DefaultKeyedRateLimiter<String>>,
    sign_in: Option<DefaultKeyedRateLimiter<IpAddr>>,
    /// The permits for password checks of sign-ins.
    pub sign_in_checks: crate::auth::password::PasswordChecks,
    /// Whose forwarding headers name the client (`http::client_ip`).
    pub trusted_proxies: TrustedProxies,
}

fn quota(per: Duration, count: u32, burst: u32) -> Option<Quota> {
    let count = NonZeroU32::new(count)?;
    let burst = NonZeroU32::new(burst.max(1))?;
    Quota::with_period(per / count.get()).map(|q| q.allow_burst(burst))
}

impl RateLimits {
    pub fn new(args: &LimitArgs) -> Self {
        let client = quota(
            Duration::from_secs(60),
            args.rate_client_per_min,
            args.rate_client_burst,
        )
        .map(RateLimiter::keyed);
        let identity = quota(
            Duration::from_secs(3600),
            args.rate_identity_per_hour,
            args.rate_identity_burst,
        )
        .map(RateLimiter::keyed);
        let sign_in = quota(
            Duration::from_secs(60),
            args.rate_sign_in_per_min,
            args.rate_sign_in_burst,
        )
        .map(RateLimiter::keyed);
        Self {
            client,
            identity,
            sign_in,
            sign_in_checks: crate::auth::password::PasswordChecks::new(args.sign_in_checks_max),
            // `serve` refuses a setting that does not parse before this.
            trusted_proxies: args.trusted_proxies().unwrap_or_default(),
        }
    }

    /// Counts a sign-in attempt (or re-authentication) from `ip`.
    pub fn check_sign_in(&self, ip: IpAddr) -> Result<(), Duration> {
        check(self.sign_in.as_ref(), &ip)
    }

    /// Counts a booking write from `ip`; the wait before the next one is
    /// allowed when over the limit.
    pub fn check_client(&self, ip: IpAddr) -> Result<(), Duration> {
        check(self.client.as_ref(), &ip)
    }

    /// Counts a new booking naming the person `doc_key`.
    pub fn check_identity(&self, doc_key: &str) -> Result<(), Duration> {
        match &self.identity {
            None => Ok(()),
            Some(l) => check(Some(l), &doc_key.to_string()),
        }
    }

    /// Drops the keys whose buckets are full again.
    pub fn forget_idle(&self) {
        if let Some(l) = &self.client {
            l.retain_recent();
        }
        if let Some(l) = &self.identity {
            l.retain_recent();
        }
        if let Some(l) = &self.sign_in {
            l.retain_recent();
        }
    }
}

fn check<K>(limiter: Option<&DefaultKeyedRateLimiter<K>>, key: &K) -> Result<(), Duration>
where
    K: std::hash::Hash + Eq + Clone,
{
    let Some(l) = limiter else {
        return Ok(());
    };
    l.check_key(key)
        .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
}

/// Whole seconds to announce in `Retry-After` (at least 1).
pub fn retry_after_secs(wait: Duration) -> u64 {
    u64::try_from(wait.as_millis())
        .unwrap_or(u64::MAX)
        .div_ceil(1000)
        .max(1)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn limits(per_min: u32, burst: u32, per_hour: u32, id_burst: u32) -> RateLimits {
        RateLimits::new(&LimitArgs {
            rate_client_per_min: per_min,
            rate_client_burst: burst,
            rate_identity_per_hour: per_hour,
            rate_identity_burst: id_burst,
            ..LimitArgs::off()
        })
    }

    #[test]
    fn a_client_gets_its_burst_then_waits_others_do_not() {
        let l = limits(60, 3, 0, 0);
        let bot: IpAddr = "127.0.0.2".parse().unwrap();
        let person: IpAddr = "127.0.0.3".parse().unwrap();
        for _ in 0..3 {
            assert!(l.check_client(bot).is_ok());
        }
        let wait = l.check_client(bot).unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        assert!(l.check_client(person).is_ok());
        assert!(retry_after_secs(wait) >= 1);
    }

    #[test]
    fn identities_are_limited_separately_and_off_means_off() {
        let l = limits(0, 0, 2, 2);
        assert!(l.check_identity("a").is_ok());
        assert!(l.check_identity("a").is_ok());
        assert!(l.check_identity("a").is_err());
        assert!(l.check_identity("b").is_ok());
        let ip: IpAddr = "127.0.0.9".parse().unwrap();
        for _ in 0..1000 {
            assert!(l.check_client(ip).is_ok());
        }
        let off = RateLimits::new(&LimitArgs::off());
        for _ in 0..1000 {
            assert!(off.check_identity("a").is_ok());
        }
        l.forget_idle();
    }
}

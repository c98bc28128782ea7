//! Capacity split per slot: which share of a slot's seats each pool gets, and
//! how an office releases its online seats (live booking or a ballot).
//!
//! Layout: [`Pool`] names the four pools; [`Shares`] holds the percentages
//! (validated: each 0..=100, summing to 100) and [`Shares::split`] turns a
//! slot's capacity into [`PoolSeats`] by the largest-remainder method, with a
//! seat guaranteed to urgent, priority and walk-in pools whose share is above
//! zero when the slot is large enough; [`ReleaseMode`] and [`OfficePolicy`]
//! bundle them per office. Pure: no IO, unit and property tests beside it.

use crate::{FieldError, FieldErrors};

/// Where a seat of a slot belongs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Pool {
    /// Seats offered to citizens by live booking or by the ballot.
    Online,
    /// Seats a supervisor grants for an urgent case, with evidence.
    Urgent,
    /// Seats kept for people who come to the office without a booking.
    WalkIn,
    /// Seats for priority access: disability, older people.
    Priority,
}

impl Pool {
    pub const ALL: [Pool; 4] = [Pool::Online, Pool::Urgent, Pool::WalkIn, Pool::Priority];

    /// Stable, stored and shown to programs.
    pub fn as_str(self) -> &'static str {
        match self {
            Pool::Online => "online",
            Pool::Urgent => "urgent",
            Pool::WalkIn => "walk_in",
            Pool::Priority => "priority",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Pool::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// Whether the pool is promised at least one seat when its share is
    /// above zero (the small pools, which rounding would otherwise erase).
    fn has_minimum(self) -> bool {
        match self {
            Pool::Online => false,
            Pool::Urgent | Pool::WalkIn | Pool::Priority => true,
        }
    }

    /// The order in which small pools get their guaranteed seat when the
    /// slot cannot give one to all: urgent, then priority, then walk-in.
    const MINIMUM_ORDER: [Pool; 3] = [Pool::Urgent, Pool::Priority, Pool::WalkIn];
}

impl std::fmt::Display for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Percentages of each slot's seats per pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shares {
    online: u32,
    urgent: u32,
    walk_in: u32,
    priority: u32,
}

/// A slot's seats per pool; the four always sum to the slot's capacity.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolSeats {
    pub online: u32,
    pub urgent: u32,
    pub walk_in: u32,
    pub priority: u32,
}

impl PoolSeats {
    pub fn get(&self, pool: Pool) -> u32 {
        match pool {
            Pool::Online => self.online,
            Pool::Urgent => self.urgent,
            Pool::WalkIn => self.walk_in,
            Pool::Priority => self.priority,
        }
    }

    fn slot(&mut self, pool: Pool) -> &mut u32 {
        match pool {
            Pool::Online => &mut self.online,
            Pool::Urgent => &mut self.urgent,
            Pool::WalkIn => &mut self.walk_in,
            Pool::Priority => &mut self.priority,
        }
    }

    pub fn total(&self) -> u32 {
        self.online + self.urgent + self.walk_in + self.priority
    }
}

/// What all percentages must add up to.
pub const PERCENT_TOTAL: u32 = 100;

impl Default for Shares {
    /// Every seat online: offices without a policy behave as before pools.
    fn default() -> Self {
        Self {
            online: PERCENT_TOTAL,
            urgent: 0,
            walk_in: 0,
            priority: 0,
        }
    }
}

impl Shares {
    /// Checks each share is a percentage and that they sum to 100; names
    /// every faulty field.
    pub fn new(online: u32, urgent: u32, walk_in: u32, priority: u32) -> Result<Self, FieldErrors> {
        let mut errs = FieldErrors::default();
        for (field, v) in [
            ("online", online),
            ("urgent", urgent),
            ("walk_in", walk_in),
            ("priority", priority),
        ] {
            if v > PERCENT_TOTAL {
                errs.push(FieldError::new(
                    field,
                    "share_out_of_range",
                    "El porcentaje debe estar entre 0 y 100.",
                    "The percentage must be between 0 and 100.",
                ));
            }
        }
        let sum = u64::from(online) + u64::from(urgent) + u64::from(walk_in) + u64::from(priority);
        if errs.is_empty() && sum != u64::from(PERCENT_TOTAL) {
            errs.push(FieldError::new(
                "online",
                "shares_sum",
                "Los porcentajes (online, urgent, walk_in, priority) deben sumar 100.",
                "The percentages (online, urgent, walk_in, priority) must add up to 100.",
            ));
        }
        if errs.is_empty() {
            Ok(Self {
                online,
                urgent,
                walk_in,
                priority,
            })
        } else {
            Err(errs)
        }
    }

    pub fn get(&self, pool: Pool) -> u32 {
        match pool {
            Pool::Online => self.online,
            Pool::Urgent => self.urgent,
            Pool::WalkIn => self.walk_in,
            Pool::Priority => self.priority,
        }
    }

    pub fn online(&self) -> u32 {
        self.online
    }
    pub fn urgent(&self) -> u32 {
        self.urgent
    }
    pub fn walk_in(&self) -> u32 {
        self.walk_in
    }
    pub fn priority(&self) -> u32 {
        self.priority
    }

    /// A slot of `capacity` seats cut per pool by the largest-remainder
    /// method: each pool gets the floor of its quota, and the seats left go
    /// to the largest remainders (ties in [`Pool::ALL`] order). Then urgent,
    /// priority and walk-in, when their share is above zero and they got no
    /// seat, each take one from the pool with the most seats to spare, as long
    /// as the slot has seats for it. Deterministic; sums to `capacity`.
    pub fn split(&self, capacity: u32) -> PoolSeats {
        let cap = u64::from(capacity);
        let mut seats = PoolSeats::default();
        let mut rest: Vec<(u64, Pool)> = Vec::with_capacity(Pool::ALL.len());
        let mut given: u64 = 0;
        for p in Pool::ALL {
            let q = cap * u64::from(self.get(p));
            let floor = q / u64::from(PERCENT_TOTAL);
            // `floor <= capacity`, so it fits.
            *seats.slot(p) = u32::try_from(floor).unwrap_or(capacity);
            given += floor;
            rest.push((q % u64::from(PERCENT_TOTAL), p));
        }
        // Largest remainder first; a stable sort keeps `Pool::ALL` order on ties.
        rest.sort_by_key(|r| std::cmp::Reverse(r.0));
        let left = cap.saturating_sub(given);
        for (_, p) in rest.iter().take(usize::try_from(left).unwrap_or(0)) {
            *seats.slot(*p) += 1;
        }
        for p in Pool::MINIMUM_ORDER {
            if self.get(p) == 0 || seats.get(p) > 0 {
                continue;
            }
            let donor = Pool::ALL
                .into_iter()
                .filter(|d| *d != p && seats.get(*d) > self.minimum(*d))
                .max_by(|a, b| {
                    // Most seats; on a tie the earlier pool in `Pool::ALL`.
                    seats.get(*a).cmp(&seats.get(*b)).then(b.cmp(a))
                });
            if let Some(d) = donor {
                *seats.slot(d) -= 1;
                *seats.slot(p) += 1;
            }
        }
        seats
    }

    /// Seats a pool keeps when another asks for its guaranteed one.
    fn minimum(&self, pool: Pool) -> u32 {
        u32::from(pool.has_minimum() && self.get(pool) > 0)
    }
}

/// How an office releases its online seats.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReleaseMode {
    /// Bookable first come, first served (as before ballots).
    #[default]
    Live,
    /// Requested over a period, then allocated by a draw.
    Ballot,
}

impl ReleaseMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ReleaseMode::Live => "live",
            ReleaseMode::Ballot => "ballot",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "live" => Some(ReleaseMode::Live),
            "ballot" => Some(ReleaseMode::Ballot),
            _ => None,
        }
    }
}

/// An office's release mode and capacity split. The default (live, every
/// seat online) is what an office without a stored policy gets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OfficePolicy {
    pub mode: ReleaseMode,
    pub shares: Shares,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn shares(o: u32, u: u32, w: u32, p: u32) -> Shares {
        Shares::new(o, u, w, p).unwrap()
    }

    fn check(s: Shares, capacity: u32, expected: [u32; 4]) {
        let got = s.split(capacity);
        assert_eq!(
            [got.online, got.urgent, got.walk_in, got.priority],
            expected,
            "{s:?} of {capacity}"
        );
    }

    #[test]
    fn split_table() {
        let office = shares(70, 5, 15, 10);
        check(office, 100, [70, 5, 15, 10]);
        check(office, 10, [7, 1, 1, 1]);
        check(office, 20, [14, 1, 3, 2]);
        check(office, 4, [1, 1, 1, 1]);
        check(office, 3, [0, 1, 1, 1]);
        check(office, 2, [0, 1, 0, 1]);
        check(office, 1, [0, 1, 0, 0]);
        check(office, 0, [0, 0, 0, 0]);
        check(Shares::default(), 6, [6, 0, 0, 0]);
        check(shares(50, 0, 50, 0), 3, [2, 0, 1, 0]);
        check(shares(34, 33, 0, 33), 10, [4, 3, 0, 3]);
        check(shares(0, 0, 100, 0), 5, [0, 0, 5, 0]);
    }

    #[test]
    fn validation_names_the_field() {
        let e = Shares::new(70, 5, 150, 10).unwrap_err();
        assert_eq!(e.0.len(), 1);
        assert_eq!(e.0[0].field, "walk_in");
        let e = Shares::new(70, 5, 15, 11).unwrap_err();
        assert_eq!(e.0[0].code, "shares_sum");
        assert!(Shares::new(100, 0, 0, 0).is_ok());
    }

    #[test]
    fn names_round_trip() {
        for p in Pool::ALL {
            assert_eq!(Pool::parse(p.as_str()), Some(p));
        }
        for m in [ReleaseMode::Live, ReleaseMode::Ballot] {
            assert_eq!(ReleaseMode::parse(m.as_str()), Some(m));
        }
        assert_eq!(ReleaseMode::parse("lottery"), None);
        assert_eq!(OfficePolicy::default().shares.online(), 100);
        assert_eq!(OfficePolicy::default().mode, ReleaseMode::Live);
    }

    fn any_shares() -> impl Strategy<Value = Shares> {
        (0u32..=100, 0u32..=100, 0u32..=100).prop_map(|(a, b, c)| {
            // Three cuts of 0..=100 give four parts that sum to 100.
            let mut cuts = [a, b, c];
            cuts.sort_unstable();
            shares(cuts[0], cuts[1] - cuts[0], cuts[2] - cuts[1], 100 - cuts[2])
        })
    }

    proptest! {
        #[test]
        fn split_sums_to_capacity_and_respects_zero_shares(s in any_shares(), cap in 0u32..500) {
            let seats = s.split(cap);
            prop_assert_eq!(seats.total(), cap);
            for p in Pool::ALL {
                if s.get(p) == 0 {
                    prop_assert_eq!(seats.get(p), 0, "{:?}", p);
                }
            }
            prop_assert_eq!(s.split(cap), seats);
        }

        #[test]
        fn small_pools_get_a_seat_when_the_slot_allows(s in any_shares(), cap in 0u32..500) {
            let seats = s.split(cap);
            let wanting = Pool::MINIMUM_ORDER.iter().filter(|p| s.get(**p) > 0).count() as u32;
            if cap >= wanting {
                for p in Pool::MINIMUM_ORDER {
                    if s.get(p) > 0 {
                        prop_assert!(seats.get(p) >= 1, "{:?} {:?}", p, seats);
                    }
                }
            }
        }

        #[test]
        fn each_pool_is_near_its_quota(s in any_shares(), cap in 0u32..500) {
            let seats = s.split(cap);
            for p in Pool::ALL {
                let quota = f64::from(cap) * f64::from(s.get(p)) / 100.0;
                // One seat of rounding, plus at most three guaranteed seats moved.
                prop_assert!((f64::from(seats.get(p)) - quota).abs() < 4.0, "{:?} {:?}", p, seats);
            }
        }
    }
}

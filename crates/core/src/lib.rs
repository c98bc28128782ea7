//! pasaporte's domain model: what an office is, when it is open, which slots it
//! offers, and what a valid booking is. The core does no IO and cannot fail for
//! IO reasons: the clock, ids and randomness are passed in by the caller.
//!
//! Layout: [`person`] parses what a citizen types (documents, names, email);
//! [`office`] describes an office and its weekly hours; [`holidays`] computes
//! Colombian and host-country public holidays by rule; [`calendar`] turns an
//! office, its closures and a date into slots (wall times in the office's zone,
//! with deliberate handling of clock changes); [`booking`] validates a booking
//! request as a whole and names every faulty field; [`code`] makes the short
//! confirmation codes citizens read aloud at the counter; [`application`] is
//! the application state machine (states, commands, who may give them, the
//! queue and deadline that own every live application); [`audit`] defines the
//! audit event, its hash chain and signed checkpoints, and verifies a trail; [`policy`] is the one role-by-action table staff routes are
//! checked against; [`production`] is booklet custody, passport numbers and
//! stock forecasts; [`registry`] compares a captured identity with the civil
//! registry's record; [`shares`] splits each slot's seats into pools
//! (online, urgent, walk-in, priority) and names an office's release mode.

pub mod adjudication;
pub mod application;
pub mod audit;
pub mod ballot;
pub mod booking;
pub mod calendar;
pub mod capture;
pub mod code;
pub mod fees;
pub mod field;
pub mod holidays;
pub mod office;
pub mod person;
pub mod policy;
pub mod production;
pub mod registry;
pub mod shares;

pub use field::{FieldError, FieldErrors};
pub use jiff;

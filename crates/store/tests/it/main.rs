//! The store conformance suite: the same tests on SQLite and on PostgreSQL.

#![allow(clippy::unwrap_used)]

use pasaporte_core::office::parse_offices_csv;
use pasaporte_store::testing::{TestDb, fresh};
use pasaporte_store::*;

const CSV: &str =
    "code,name,kind,city,country,time_zone,weekday_hours,saturday_hours,counters,daily_capacity
AAA,Oficina A,ministry,Bogotá,COL,America/Bogota,07:00-16:00,,2,100
MAD,Consulado en Madrid,consulate,Madrid,ESP,Europe/Madrid,08:30-14:00,,6,150
";

macro_rules! both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn sqlite() { super::$name(super::TestDb::Sqlite).await }
            #[tokio::test]
            async fn postgres() { super::$name(super::TestDb::Postgres).await }
        }
    )*};
}

both!(
    offices_round_trip,
    batch_contains_each_refusal,
    reschedule_and_cancel_keep_counts,
    outbox_lifecycle,
    a_schema_newer_than_the_code_is_refused,
    batch_writes_are_audited_in_their_transaction,
    writes_bump_cache_generations,
);

// After `both!`, which it uses.
mod leases;
mod payments;
mod production;
mod reseat;
mod shares;
mod staff;

async fn setup(db: TestDb) -> Store {
    let (store, _) = fresh(db).await.unwrap();
    for o in parse_offices_csv(CSV).unwrap() {
        store.upsert_office(&o).await.unwrap();
    }
    store
}

fn mail(id: &str) -> MailRow {
    MailRow {
        id: id.into(),
        recipient_enc: "r".into(),
        subject: "s".into(),
        body_enc: "b".into(),
        ics_enc: None,
    }
}

fn booking(id: &str, start_ms: i64, people: &[&str], capacity: u32, key: Option<&str>) -> WriteOp {
    WriteOp::Book(NewBooking {
        actor: crate::citizen(),
        id: id.into(),
        code: format!("C{id}"),
        office: "AAA".into(),
        start_ms,
        capacity,
        applicants: people
            .iter()
            .map(|p| ApplicantRow {
                doc_key: p.to_string(),
                document_type: "cedula_ciudadania".into(),
                document_number_enc: "x".into(),
                surnames_enc: "x".into(),
                given_names_enc: "x".into(),
                birth_date_enc: "x".into(),
            })
            .collect(),
        email_enc: "e".into(),
        phone_enc: None,
        now_ms: 1,
        idempotency: key.map(|k| (k.to_string(), format!("hash-{id}"))),
        mail: mail(&format!("m{id}")),
        pool: pasaporte_core::shares::Pool::Online,
        urgent: None,
    })
}

async fn offices_round_trip(db: TestDb) {
    let store = setup(db).await;
    let offices = store.offices().await.unwrap();
    assert_eq!(offices.len(), 2);
    let mad = store.office("MAD").await.unwrap();
    assert_eq!(mad.time_zone_name(), "Europe/Madrid");
    assert_eq!(
        mad.hours
            .format_day(pasaporte_core::jiff::civil::Weekday::Monday),
        "08:30-14:00"
    );
    assert!(matches!(
        store.office("ZZZ").await,
        Err(StoreError::NotFound)
    ));
    let d = pasaporte_core::jiff::civil::date(2026, 12, 2);
    store.add_closure("AAA", d, "Paro").await.unwrap();
    store.add_closure("AAA", d, "Paro nacional").await.unwrap();
    let c = store.closures("AAA").await.unwrap();
    assert_eq!((c.len(), c[0].reason.as_str()), (1, "Paro nacional"));
    store.remove_closure("AAA", d).await.unwrap();
    assert!(store.closures("AAA").await.unwrap().is_empty());
}

async fn batch_contains_each_refusal(db: TestDb) {
    let store = setup(db).await;
    // Capacity 3; one batch with a family that does not fit, a repeated person,
    // a repeated idempotency key with the same request, and good bookings.
    let ops = vec![
        booking("1", 1000, &["p1"], 3, Some("k1")),
        booking("2", 1000, &["p2", "p3", "p4"], 3, None),
        booking("3", 1000, &["p1"], 3, None),
        booking("1", 1000, &["p1"], 3, Some("k1")),
        booking("5", 1000, &["p5", "p6"], 3, None),
        booking("6", 1000, &["p7"], 3, None),
    ];
    let r = store.apply_batch(&ops).await.unwrap();
    assert!(matches!(&r[0], Ok(WriteOutcome::Booked { code }) if code == "C1"));
    assert!(matches!(r[1], Err(WriteError::SlotFull)));
    assert!(matches!(r[2], Err(WriteError::AlreadyBooked)));
    assert!(matches!(&r[3], Ok(WriteOutcome::Replayed { code }) if code == "C1"));
    assert!(matches!(r[4], Ok(WriteOutcome::Booked { .. })));
    assert!(matches!(r[5], Err(WriteError::SlotFull)));
    assert_eq!(
        store.slot_counts("AAA", 0, 2000).await.unwrap(),
        vec![SlotCount {
            start_ms: 1000,
            capacity: 3,
            booked: 3
        }]
    );
    assert_eq!(store.active_bookings().await.unwrap(), 2);
    assert!(store.check_slots().await.unwrap().is_empty());
    // Nothing of the refused family was kept: p3 can book elsewhere.
    let r = store
        .apply_batch(&[booking("7", 2000, &["p3"], 3, None)])
        .await
        .unwrap();
    assert!(r[0].is_ok());
    // The same key with another request.
    let mut other = booking("8", 2000, &["p9"], 3, Some("k1"));
    if let WriteOp::Book(b) = &mut other {
        b.idempotency = Some(("k1".into(), "another-hash".into()));
    }
    let r = store.apply_batch(&[other]).await.unwrap();
    assert!(matches!(r[0], Err(WriteError::IdempotencyKeyReused)));
    assert_eq!(
        store.active_booking_of("p3").await.unwrap().as_deref(),
        Some("C7")
    );
    assert_eq!(store.active_booking_of("p9").await.unwrap(), None);
}

async fn reschedule_and_cancel_keep_counts(db: TestDb) {
    let store = setup(db).await;
    store
        .apply_batch(&[
            booking("1", 1000, &["p1", "p2"], 2, None),
            booking("2", 3000, &["p3"], 2, None),
        ])
        .await
        .unwrap();
    let moved = |to: i64| WriteOp::Reschedule {
        actor: crate::citizen(),
        booking_id: "1".into(),
        start_ms: to,
        capacity: 2,
        now_ms: 2,
        mail: mail(&format!("r{to}")),
    };
    // Into a slot with one seat left: refused, nothing moved.
    let r = store.apply_batch(&[moved(3000)]).await.unwrap();
    assert!(matches!(r[0], Err(WriteError::SlotFull)));
    let r = store.apply_batch(&[moved(1000)]).await.unwrap();
    assert!(matches!(r[0], Err(WriteError::SameSlot)));
    let r = store.apply_batch(&[moved(2000)]).await.unwrap();
    assert!(matches!(
        &r[0],
        Ok(WriteOutcome::Rescheduled {
            from_ms: 1000,
            to_ms: 2000,
            seats: 2,
            ..
        })
    ));
    let counts = store.slot_counts("AAA", 0, 4000).await.unwrap();
    assert_eq!(
        counts
            .iter()
            .map(|c| (c.start_ms, c.booked))
            .collect::<Vec<_>>(),
        vec![(1000, 0), (2000, 2), (3000, 1)]
    );
    let cancel = WriteOp::Cancel {
        actor: crate::citizen(),
        booking_id: "1".into(),
        now_ms: 3,
        mail: mail("c1"),
    };
    let r = store.apply_batch(&[cancel.clone(), cancel]).await.unwrap();
    assert!(matches!(r[0], Ok(WriteOutcome::Cancelled { seats: 2, .. })));
    assert!(matches!(r[1], Err(WriteError::NotActive)));
    assert_eq!(store.active_booking_of("p1").await.unwrap(), None);
    let r = store
        .apply_batch(&[WriteOp::Cancel {
            actor: crate::citizen(),
            booking_id: "nope".into(),
            now_ms: 3,
            mail: mail("c2"),
        }])
        .await
        .unwrap();
    assert!(matches!(r[0], Err(WriteError::Store(StoreError::NotFound))));
    assert!(store.check_slots().await.unwrap().is_empty());
    let b = store.booking_by_code("C1").await.unwrap();
    assert_eq!(
        (b.status.as_str(), b.start_ms, b.applicants.len()),
        ("cancelled", 2000, 2)
    );
}

async fn outbox_lifecycle(db: TestDb) {
    let store = setup(db).await;
    store
        .apply_batch(&[
            booking("1", 1000, &["p1"], 5, None),
            booking("2", 1000, &["p2"], 5, None),
        ])
        .await
        .unwrap();
    let due = store.due_mail(10, 10).await.unwrap();
    assert_eq!(due.len(), 2);
    store
        .mark_mail_failed(&due[0].id, 500, "connection refused")
        .await
        .unwrap();
    store.mark_mail_sent(&due[1].id, 20).await.unwrap();
    assert_eq!(
        store.outbox_stats().await.unwrap(),
        OutboxStats {
            waiting: 1,
            sent: 1,
            failing: 1
        }
    );
    assert!(
        store.due_mail(100, 10).await.unwrap().is_empty(),
        "not due before its retry time"
    );
    let again = store.due_mail(500, 10).await.unwrap();
    assert_eq!((again.len(), again[0].attempts), (1, 1));
}

/// A node older than the schema (a rolling upgrade went the other way)
/// refuses to run on it and says why.
async fn a_schema_newer_than_the_code_is_refused(db: TestDb) {
    let (store, _) = fresh(db).await.unwrap();
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
         SELECT 99999, 'from a later version', success, checksum, execution_time
         FROM _sqlx_migrations WHERE version = 1",
    )
    .execute(store.pool())
    .await
    .unwrap();
    let e = store.migrate().await.unwrap_err().to_string();
    assert!(e.contains("schema is newer than this pasaporte"), "{e}");
    assert!(e.contains("99999"), "{e}");
}

/// The citizen the suite's bookings are written for.
fn citizen() -> pasaporte_core::application::Actor {
    pasaporte_core::application::Actor {
        id: "citizen-1".into(),
        role: pasaporte_core::application::Role::Citizen,
    }
}

/// Issue 12 item 6: every booking, reschedule, move and cancellation that a
/// batch commits is in the audit trail, in the batch's transaction; refused
/// and replayed writes leave nothing; the chain verifies.
async fn batch_writes_are_audited_in_their_transaction(db: TestDb) {
    use pasaporte_core::application::{Actor, Role};
    use pasaporte_core::audit::{AuditEvent, CheckpointSigner, Verdict};
    let store = setup(db).await;
    let mut urgent = booking("u", 2000, &["p9"], 5, None);
    let supervisor = Actor {
        id: "staff-sup".into(),
        role: Role::Supervisor,
    };
    if let WriteOp::Book(b) = &mut urgent {
        b.actor = supervisor.clone();
        b.urgent = Some(Box::new(UrgentGrant {
            evidence_enc: "sealed".into(),
            audit: AuditEvent::by(&supervisor, 1, "booking.urgent_granted", "AAA", "u"),
        }));
    }
    let r = store
        .apply_batch(&[
            booking("1", 1000, &["p1"], 5, Some("k1")),
            booking("2", 1000, &["p2"], 5, None),
            // Refused: p1 already holds a booking.
            booking("3", 1000, &["p1"], 5, None),
            // Replayed: changes nothing.
            booking("1", 1000, &["p1"], 5, Some("k1")),
            urgent,
        ])
        .await
        .unwrap();
    assert!(r[0].is_ok() && r[1].is_ok() && r[4].is_ok(), "{r:?}");
    assert!(matches!(r[2], Err(WriteError::AlreadyBooked)));
    assert!(matches!(r[3], Ok(WriteOutcome::Replayed { .. })));
    let r = store
        .apply_batch(&[
            WriteOp::Reschedule {
                actor: citizen(),
                booking_id: "1".into(),
                start_ms: 3000,
                capacity: 5,
                now_ms: 7,
                mail: mail("r1"),
            },
            WriteOp::Move {
                actor: citizen(),
                booking_id: "2".into(),
                office: "MAD".into(),
                start_ms: 4000,
                capacity: 5,
                now_ms: 8,
                mail: mail("v2"),
            },
            WriteOp::Cancel {
                actor: citizen(),
                booking_id: "u".into(),
                now_ms: 9,
                mail: mail("cu"),
            },
            // Refused: unknown booking.
            WriteOp::Cancel {
                actor: citizen(),
                booking_id: "nope".into(),
                now_ms: 9,
                mail: mail("cn"),
            },
        ])
        .await
        .unwrap();
    assert!(r[..3].iter().all(|o| o.is_ok()), "{r:?}");
    let events = store.audit_events(1, 100).await.unwrap();
    let seen: Vec<(&str, &str, &str, &str)> = events
        .iter()
        .map(|e| {
            let e = &e.event;
            (
                e.action.as_str(),
                e.actor.as_str(),
                e.office.as_str(),
                e.subject.as_str(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            ("booking.book", "citizen-1", "AAA", "1"),
            ("booking.book", "citizen-1", "AAA", "2"),
            ("booking.urgent_granted", "staff-sup", "AAA", "u"),
            ("booking.book", "staff-sup", "AAA", "u"),
            ("booking.reschedule", "citizen-1", "AAA", "1"),
            ("booking.move", "citizen-1", "MAD", "2"),
            ("booking.cancel", "citizen-1", "AAA", "u"),
        ]
    );
    assert_eq!(events[0].event.detail, "slot_ms=1000 seats=1 pool=online");
    assert_eq!(
        events[4].event.detail,
        "from_slot_ms=1000 to_slot_ms=3000 seats=1 pool=online"
    );
    assert_eq!(events[6].event.to_state.as_deref(), Some("cancelled"));
    // No personal data: the document keys of the applicants appear nowhere.
    for e in &events {
        assert!(!format!("{:?}", e.event).contains("p1"), "{e:?}");
    }
    let key = CheckpointSigner::from_seed(&[3; 32]).public();
    assert_eq!(
        store.verify_audit(&key).await.unwrap(),
        Verdict::Intact {
            count: 7,
            checkpointed_through: 0
        }
    );
}

/// The generation of `scope` as stored (0 before its first write).
async fn generation(store: &Store, scope: CacheScope) -> i64 {
    let key = scope.key();
    store
        .cache_generations()
        .await
        .unwrap()
        .into_iter()
        .find(|(k, _)| *k == key)
        .map_or(0, |(_, g)| g)
}

/// Each write that other nodes' caches depend on moves its scope's
/// generation, in its own transaction: a batch once per office it changed,
/// whatever the number of bookings; a refused or replayed write not at all.
async fn writes_bump_cache_generations(db: TestDb) {
    let store = setup(db).await;
    let seats = |o: &str| CacheScope::Seats(o.to_string());
    let offices = generation(&store, CacheScope::Offices).await;
    assert!(offices >= 2, "each office imported bumps it: {offices}");
    assert_eq!(generation(&store, seats("AAA")).await, 0);

    let ops = vec![
        booking("1", 1000, &["p1"], 3, Some("k1")),
        booking("2", 1000, &["p2"], 3, None),
        booking("3", 2000, &["p3"], 3, None),
    ];
    store.apply_batch(&ops).await.unwrap();
    assert_eq!(generation(&store, seats("AAA")).await, 1, "once per batch");
    assert_eq!(generation(&store, seats("MAD")).await, 0);

    // Refused (the person holds a booking) and replayed: nothing changed.
    let r = store
        .apply_batch(&[
            booking("4", 2000, &["p1"], 3, None),
            booking("1", 1000, &["p1"], 3, Some("k1")),
        ])
        .await
        .unwrap();
    assert!(matches!(r[0], Err(WriteError::AlreadyBooked)));
    assert!(matches!(r[1], Ok(WriteOutcome::Replayed { .. })));
    assert_eq!(generation(&store, seats("AAA")).await, 1);

    // A cancellation frees seats: the office moves again.
    store
        .apply_batch(&[WriteOp::Cancel {
            actor: citizen(),
            booking_id: "2".into(),
            now_ms: 5,
            mail: mail("m-cancel"),
        }])
        .await
        .unwrap();
    assert_eq!(generation(&store, seats("AAA")).await, 2);

    // Office rules: a closure and its removal.
    let d = pasaporte_core::jiff::civil::date(2026, 12, 2);
    store.add_closure("MAD", d, "Paro").await.unwrap();
    assert_eq!(generation(&store, CacheScope::Offices).await, offices + 1);
    store.remove_closure("MAD", d).await.unwrap();
    assert_eq!(generation(&store, CacheScope::Offices).await, offices + 2);
    assert_eq!(generation(&store, seats("MAD")).await, 1);

    // Keys and scopes round-trip.
    for s in [seats("AAA"), CacheScope::Offices, CacheScope::Releases] {
        assert_eq!(CacheScope::parse(&s.key()), Some(s));
    }
}

//! Seats per pool: each pool of a slot within its own capacity (the CHECK,
//! on the rusqlite path for SQLite and the sqlx path for PostgreSQL), and
//! office policies stored with their audit event.

use super::{TestDb, booking, mail, setup};
use pasaporte_core::application::{Actor, Role};
use pasaporte_core::audit::AuditEvent;
use pasaporte_core::shares::{OfficePolicy, Pool, ReleaseMode, Shares};
use pasaporte_store::{StoreError, UrgentGrant, WriteError, WriteOp, WriteOutcome};

both!(pools_are_counted_apart, office_policy_round_trip);

fn in_pool(op: WriteOp, pool: Pool, evidence: Option<&str>) -> WriteOp {
    match op {
        WriteOp::Book(mut b) => {
            b.pool = pool;
            b.urgent = evidence.map(|e| {
                let actor = Actor {
                    id: "sup-1".into(),
                    role: Role::Supervisor,
                };
                Box::new(UrgentGrant {
                    evidence_enc: e.to_string(),
                    audit: AuditEvent::by(&actor, 1, "booking.urgent", "AAA", &b.id),
                })
            });
            WriteOp::Book(b)
        }
        other => other,
    }
}

async fn pools_are_counted_apart(db: TestDb) {
    let store = setup(db).await;
    // A slot of 10 at 70/10/10/10: 7 online seats, 1 urgent.
    let r = store
        .apply_batch(&[
            booking("1", 1000, &["p1", "p2", "p3", "p4", "p5", "p6"], 7, None),
            booking("2", 1000, &["p7"], 7, None),
            // The online pool is full: the eighth person is refused...
            booking("3", 1000, &["p8"], 7, None),
            // ...but an urgent seat is a seat of its own pool.
            in_pool(
                booking("4", 1000, &["p8"], 1, None),
                Pool::Urgent,
                Some("sealed"),
            ),
            in_pool(
                booking("5", 1000, &["p9"], 1, None),
                Pool::Urgent,
                Some("sealed"),
            ),
            in_pool(booking("6", 1000, &["p9"], 1, None), Pool::Priority, None),
        ])
        .await
        .unwrap();
    assert!(r[0].is_ok() && r[1].is_ok(), "{r:?}");
    assert!(matches!(r[2], Err(WriteError::SlotFull)), "{r:?}");
    assert!(r[3].is_ok(), "{r:?}");
    assert!(matches!(r[4], Err(WriteError::SlotFull)), "{r:?}");
    assert!(r[5].is_ok(), "{r:?}");
    assert!(store.check_slots().await.unwrap().is_empty());
    // Citizens' calendars count the online pool only.
    let online = store.slot_counts("AAA", 0, 2000).await.unwrap();
    assert_eq!(online.len(), 1);
    assert_eq!((online[0].capacity, online[0].booked), (7, 7));
    let pools: Vec<(Pool, u32, u32)> = store
        .pool_counts("AAA", 0, 2000)
        .await
        .unwrap()
        .iter()
        .map(|c| (c.pool, c.capacity, c.booked))
        .collect();
    assert_eq!(pools.len(), 3);
    assert!(pools.contains(&(Pool::Online, 7, 7)));
    assert!(pools.contains(&(Pool::Urgent, 1, 1)));
    assert!(pools.contains(&(Pool::Priority, 1, 1)));
    let urgent = store.booking_by_code("C4").await.unwrap();
    assert_eq!(urgent.pool, Pool::Urgent);
    // The urgent grant was audited in the booking's transaction.
    let events = store.audit_events(0, 100).await.unwrap();
    assert_eq!(
        events
            .iter()
            .filter(|e| e.event.action == "booking.urgent")
            .count(),
        1
    );
    // Moving and cancelling keep the seats in their pool.
    let r = store
        .apply_batch(&[WriteOp::Reschedule {
            actor: crate::citizen(),
            booking_id: "4".into(),
            start_ms: 2000,
            capacity: 1,
            now_ms: 2,
            mail: mail("r4"),
        }])
        .await
        .unwrap();
    assert!(matches!(
        r[0],
        Ok(WriteOutcome::Rescheduled {
            pool: Pool::Urgent,
            ..
        })
    ));
    let r = store
        .apply_batch(&[WriteOp::Cancel {
            actor: crate::citizen(),
            booking_id: "6".into(),
            now_ms: 3,
            mail: mail("c6"),
        }])
        .await
        .unwrap();
    assert!(matches!(
        r[0],
        Ok(WriteOutcome::Cancelled {
            pool: Pool::Priority,
            seats: 1,
            ..
        })
    ));
    let after: Vec<(i64, Pool, u32)> = store
        .pool_counts("AAA", 0, 3000)
        .await
        .unwrap()
        .iter()
        .map(|c| (c.start_ms, c.pool, c.booked))
        .collect();
    assert!(after.contains(&(1000, Pool::Online, 7)));
    assert!(after.contains(&(1000, Pool::Urgent, 0)));
    assert!(after.contains(&(1000, Pool::Priority, 0)));
    assert!(after.contains(&(2000, Pool::Urgent, 1)));
    assert!(store.check_slots().await.unwrap().is_empty());
    // The check names the pool whose count drifted.
    sqlx::query("UPDATE slot_seats SET booked = 0 WHERE start_ms = 2000 AND pool = 'urgent'")
        .execute(store.pool())
        .await
        .unwrap();
    let drift = store.check_slots().await.unwrap();
    assert_eq!(drift.len(), 1, "{drift:?}");
    assert_eq!(
        (
            drift[0].start_ms,
            drift[0].pool.as_str(),
            drift[0].booked,
            drift[0].seats_in_bookings
        ),
        (2000, "urgent", 0, 1)
    );
    sqlx::query("UPDATE slot_seats SET booked = 1 WHERE start_ms = 2000 AND pool = 'urgent'")
        .execute(store.pool())
        .await
        .unwrap();
    // A smaller share later (a policy change) is enforced on the next seat.
    let r = store
        .apply_batch(&[booking("7", 3000, &["q1", "q2"], 2, None)])
        .await
        .unwrap();
    assert!(r[0].is_ok());
    let r = store
        .apply_batch(&[booking("8", 3000, &["q3"], 2, None)])
        .await
        .unwrap();
    assert!(matches!(r[0], Err(WriteError::SlotFull)));
}

async fn office_policy_round_trip(db: TestDb) {
    let store = setup(db).await;
    assert_eq!(store.office_policy("AAA").await.unwrap(), None);
    let policy = OfficePolicy {
        mode: ReleaseMode::Ballot,
        shares: Shares::new(70, 5, 15, 10).unwrap(),
    };
    let actor = Actor {
        id: "admin-1".into(),
        role: Role::Administrator,
    };
    let event = AuditEvent::by(&actor, 5, "office.policy", "AAA", "AAA");
    store
        .set_office_policy("AAA", &policy, &event, 5)
        .await
        .unwrap();
    assert_eq!(store.office_policy("AAA").await.unwrap(), Some(policy));
    let all = store.office_policies().await.unwrap();
    assert_eq!(all.get("AAA"), Some(&policy));
    assert!(!all.contains_key("MAD"));
    let live = OfficePolicy::default();
    store
        .set_office_policy("AAA", &live, &event, 6)
        .await
        .unwrap();
    assert_eq!(store.office_policy("AAA").await.unwrap(), Some(live));
    assert!(matches!(
        store.set_office_policy("ZZZ", &live, &event, 7).await,
        Err(StoreError::NotFound)
    ));
    let events = store.audit_events(0, 100).await.unwrap();
    assert_eq!(
        events
            .iter()
            .filter(|e| e.event.action == "office.policy")
            .count(),
        2
    );
}

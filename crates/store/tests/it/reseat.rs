//! Re-seating writes: `WriteOp::Move` across offices (the same outcomes on
//! the portable path and on SQLite's rusqlite writer), displacement, and
//! capping a day's slots, with the seat counts always right.

use super::{booking, mail, setup};
use pasaporte_store::testing::TestDb;
use pasaporte_store::*;

both!(
    a_move_crosses_offices_and_keeps_counts,
    a_displaced_booking_holds_its_person_and_can_be_seated_again,
    capped_slots_refuse_new_seats
);

fn move_to(id: &str, office: &str, start_ms: i64, capacity: u32) -> WriteOp {
    WriteOp::Move {
        actor: crate::citizen(),
        booking_id: id.into(),
        office: office.into(),
        start_ms,
        capacity,
        now_ms: 5,
        mail: mail(&format!("mv{id}{office}{start_ms}")),
    }
}

fn seats(counts: &[SlotCount]) -> Vec<(i64, u32, u32)> {
    counts
        .iter()
        .map(|c| (c.start_ms, c.capacity, c.booked))
        .collect()
}

async fn a_move_crosses_offices_and_keeps_counts(db: TestDb) {
    let store = setup(db).await;
    store
        .apply_batch(&[
            booking("1", 1000, &["p1", "p2"], 2, None),
            booking("2", 1500, &["p3"], 3, None),
        ])
        .await
        .unwrap();
    // A slot elsewhere with one seat: a family of two does not fit.
    let r = store
        .apply_batch(&[move_to("2", "MAD", 7000, 1), move_to("1", "MAD", 7000, 1)])
        .await
        .unwrap();
    assert!(matches!(
        &r[0],
        Ok(WriteOutcome::Moved { from_office, from_ms: 1500, to_office, to_ms: 7000, seats: 1, released: 1 })
            if from_office == "AAA" && to_office == "MAD"
    ));
    assert!(matches!(r[1], Err(WriteError::SlotFull)));
    let r = store
        .apply_batch(&[move_to("1", "MAD", 8000, 4)])
        .await
        .unwrap();
    assert!(matches!(r[0], Ok(WriteOutcome::Moved { seats: 2, .. })));
    let r = store
        .apply_batch(&[move_to("1", "MAD", 8000, 4)])
        .await
        .unwrap();
    assert!(matches!(r[0], Err(WriteError::SameSlot)));
    assert_eq!(
        seats(&store.slot_counts("AAA", 0, 9000).await.unwrap()),
        vec![(1000, 2, 0), (1500, 3, 0)]
    );
    assert_eq!(
        seats(&store.slot_counts("MAD", 0, 9000).await.unwrap()),
        vec![(7000, 1, 1), (8000, 4, 2)]
    );
    let b = store.booking_by_code("C1").await.unwrap();
    assert_eq!(
        (b.office.as_str(), b.start_ms, b.status.as_str()),
        ("MAD", 8000, "active")
    );
    assert!(store.check_slots().await.unwrap().is_empty());
    // A cancelled booking does not move.
    let cancel = WriteOp::Cancel {
        actor: crate::citizen(),
        booking_id: "2".into(),
        now_ms: 6,
        mail: mail("c2"),
    };
    store.apply_batch(&[cancel]).await.unwrap();
    let r = store
        .apply_batch(&[move_to("2", "AAA", 1000, 2)])
        .await
        .unwrap();
    assert!(matches!(r[0], Err(WriteError::NotActive)));
}

async fn a_displaced_booking_holds_its_person_and_can_be_seated_again(db: TestDb) {
    let store = setup(db).await;
    store
        .apply_batch(&[booking("1", 1000, &["p1", "p2"], 2, None)])
        .await
        .unwrap();
    let mut tx = store.begin_write().await.unwrap();
    let r = displace_booking_in(&mut tx, "1", 3, &mail("d1"))
        .await
        .unwrap();
    assert!(matches!(
        r,
        WriteOutcome::Displaced {
            start_ms: 1000,
            seats: 2,
            ..
        }
    ));
    tx.commit().await.unwrap();
    let b = store.booking_by_code("C1").await.unwrap();
    assert_eq!(b.status, "displaced");
    assert_eq!(
        store.active_booking_of("p1").await.unwrap().as_deref(),
        Some("C1")
    );
    assert_eq!(
        seats(&store.slot_counts("AAA", 0, 9000).await.unwrap()),
        vec![(1000, 2, 0)]
    );
    assert!(store.check_slots().await.unwrap().is_empty());
    let listed = store.displaced_bookings(Some("AAA")).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].code.as_str(), listed[0].seats), ("C1", 2));
    // The person cannot book again meanwhile.
    let r = store
        .apply_batch(&[booking("9", 2000, &["p1"], 2, None)])
        .await
        .unwrap();
    assert!(matches!(r[0], Err(WriteError::AlreadyBooked)));
    // The citizen's choice seats it again (the same slot is allowed: it
    // holds no seat there any more).
    let r = store
        .apply_batch(&[move_to("1", "AAA", 1000, 2)])
        .await
        .unwrap();
    assert!(
        matches!(
            r[0],
            Ok(WriteOutcome::Moved {
                seats: 2,
                released: 0,
                ..
            })
        ),
        "{r:?}"
    );
    assert_eq!(store.booking_by_code("C1").await.unwrap().status, "active");
    assert_eq!(
        seats(&store.slot_counts("AAA", 0, 9000).await.unwrap()),
        vec![(1000, 2, 2)]
    );
    assert!(store.displaced_bookings(None).await.unwrap().is_empty());
    assert!(store.check_slots().await.unwrap().is_empty());
    // Or the citizen cancels it: the person is free, no seat was held.
    let mut tx = store.begin_write().await.unwrap();
    displace_booking_in(&mut tx, "1", 6, &mail("d2"))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let cancel = WriteOp::Cancel {
        actor: crate::citizen(),
        booking_id: "1".into(),
        now_ms: 7,
        mail: mail("c1"),
    };
    let r = store.apply_batch(&[cancel]).await.unwrap();
    assert!(
        matches!(r[0], Ok(WriteOutcome::Cancelled { seats: 0, .. })),
        "{r:?}"
    );
    assert_eq!(store.active_booking_of("p1").await.unwrap(), None);
    assert_eq!(
        seats(&store.slot_counts("AAA", 0, 9000).await.unwrap()),
        vec![(1000, 2, 0)]
    );
    assert!(store.check_slots().await.unwrap().is_empty());
}

async fn capped_slots_refuse_new_seats(db: TestDb) {
    let store = setup(db).await;
    store
        .apply_batch(&[booking("1", 1000, &["p1", "p2"], 4, None)])
        .await
        .unwrap();
    // Capping at 0 keeps the two seats held (never below what a slot
    // holds) and creates a closed row for a slot nobody booked yet.
    let mut tx = store.begin_write().await.unwrap();
    cap_slots_in(&mut tx, "AAA", &[(1000, 0), (2000, 0)])
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        seats(&store.slot_counts("AAA", 0, 9000).await.unwrap()),
        vec![(1000, 2, 2), (2000, 0, 0)]
    );
    let r = store
        .apply_batch(&[
            booking("2", 1000, &["p3"], 4, None),
            booking("3", 2000, &["p4"], 4, None),
        ])
        .await
        .unwrap();
    assert!(matches!(r[0], Err(WriteError::SlotFull)));
    assert!(matches!(r[1], Err(WriteError::SlotFull)));
    // Once the booking is moved out, capping again closes the slot fully.
    let mut tx = store.begin_write().await.unwrap();
    let r = move_booking_in(&mut tx, "1", "AAA", 3000, 4, 4, &mail("mv1")).await;
    assert!(matches!(r, Ok(WriteOutcome::Moved { .. })));
    cap_slots_in(&mut tx, "AAA", &[(1000, 0), (2000, 0)])
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        seats(&store.slot_counts("AAA", 0, 9000).await.unwrap()),
        vec![(1000, 0, 0), (2000, 0, 0), (3000, 4, 2)]
    );
    assert!(store.check_slots().await.unwrap().is_empty());
    // Reopening the day forgets its empty capped slots (the calendar's
    // capacity applies again); a slot with seats taken keeps its row.
    let day = pasaporte_core::jiff::civil::date(1969, 12, 31);
    store.add_closure("AAA", day, "Paro").await.unwrap();
    store.remove_closure("AAA", day).await.unwrap();
    assert_eq!(
        seats(&store.slot_counts("AAA", 0, 9000).await.unwrap()),
        vec![(3000, 4, 2)]
    );
}

//! Production's storage on both databases: booklet stock, custody records
//! without gaps, and passport numbers given once.

use super::setup;
use pasaporte_core::production::{
    BookletState, BookletType, CustodyError, CustodyEvent, CustodyEventKind, SerialRange,
};
use pasaporte_store::testing::TestDb;
use pasaporte_store::*;
use std::collections::HashSet;

both!(
    a_range_is_reserved_to_the_last_booklet,
    concurrent_reservations_take_distinct_booklets,
    concurrent_allocations_give_distinct_numbers,
    custody_history_has_no_gaps,
    spoiling_needs_a_reason,
    a_bad_range_stores_nothing,
);

const SITE: &str = "IMPRENTA-BOG";

async fn receive(store: &Store, range: &str, t: BookletType) -> Result<u32> {
    let range = SerialRange::parse(range).unwrap();
    let mut tx = store.begin_write().await?;
    let n = receive_range(&mut tx, &range, t, SITE, "almacen-1", 1_000).await?;
    tx.commit().await?;
    Ok(n)
}

async fn reserve(store: &Store, t: BookletType, app: &str) -> Option<String> {
    let mut tx = store.begin_write().await.unwrap();
    let serial = reserve_booklet(&mut tx, t, SITE, app, "planta-1", 2_000)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    serial
}

async fn event(store: &Store, serial: &str, e: CustodyEvent, at: i64) -> BookletState {
    let mut tx = store.begin_write().await.unwrap();
    let s = booklet_event(&mut tx, serial, &e, "planta-1", at)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    s
}

fn count(levels: &[StockLevel], t: BookletType, s: BookletState) -> u64 {
    levels
        .iter()
        .find(|l| l.booklet_type == t && l.state == s)
        .map_or(0, |l| l.count)
}

async fn a_range_is_reserved_to_the_last_booklet(db: TestDb) {
    let store = setup(db).await;
    assert_eq!(
        receive(&store, "AB0000001-AB0000005", BookletType::Pages32)
            .await
            .unwrap(),
        5
    );
    receive(&store, "EM0000001-EM0000002", BookletType::Pages8)
        .await
        .unwrap();
    let mut serials = Vec::new();
    for i in 0..5 {
        serials.push(
            reserve(&store, BookletType::Pages32, &format!("app-{i}"))
                .await
                .unwrap(),
        );
    }
    assert_eq!(serials[0], "AB0000001");
    assert_eq!(serials.iter().collect::<HashSet<_>>().len(), 5);
    // A retried reservation gets the same booklet, not another.
    assert_eq!(
        reserve(&store, BookletType::Pages32, "app-0")
            .await
            .as_deref(),
        Some("AB0000001")
    );
    assert_eq!(reserve(&store, BookletType::Pages32, "app-5").await, None);
    assert_eq!(reserve(&store, BookletType::Pages48, "app-6").await, None);
    let levels = store.stock_levels(Some(SITE)).await.unwrap();
    assert_eq!(
        count(&levels, BookletType::Pages32, BookletState::Reserved),
        5
    );
    assert_eq!(
        count(&levels, BookletType::Pages32, BookletState::InStock),
        0
    );
    assert_eq!(
        count(&levels, BookletType::Pages8, BookletState::InStock),
        2
    );
    assert!(
        store
            .stock_levels(Some("OTRA-PLANTA"))
            .await
            .unwrap()
            .is_empty()
    );
    // A release puts the booklet back in stock, free of its application.
    assert_eq!(
        event(&store, "AB0000003", CustodyEvent::Release, 3_000).await,
        BookletState::InStock
    );
    let b = store.booklet("AB0000003").await.unwrap();
    assert_eq!((b.state, b.application_id), (BookletState::InStock, None));
    assert_eq!(
        reserve(&store, BookletType::Pages32, "app-5")
            .await
            .as_deref(),
        Some("AB0000003")
    );
}

async fn concurrent_reservations_take_distinct_booklets(db: TestDb) {
    let store = setup(db).await;
    receive(&store, "CR0000001-CR0000010", BookletType::Pages32)
        .await
        .unwrap();
    let tasks: Vec<_> = (0..12)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(
                async move { reserve(&store, BookletType::Pages32, &format!("app-{i}")).await },
            )
        })
        .collect();
    let mut taken = HashSet::new();
    let mut none = 0;
    for t in tasks {
        match t.await.unwrap() {
            Some(serial) => assert!(taken.insert(serial), "a booklet reserved twice"),
            None => none += 1,
        }
    }
    assert_eq!((taken.len(), none), (10, 2));
    for serial in &taken {
        let h = store.booklet_history(serial).await.unwrap();
        assert_eq!(h.len(), 2, "{serial}: one receipt, one reservation");
    }
}

async fn concurrent_allocations_give_distinct_numbers(db: TestDb) {
    let store = setup(db).await;
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut tx = store.begin_write().await.unwrap();
                let n = allocate_passport_number(
                    &mut tx,
                    "AX",
                    &format!("app-{i}"),
                    &format!("app-{i}"),
                    5_000,
                )
                .await
                .unwrap();
                tx.commit().await.unwrap();
                n
            })
        })
        .collect();
    let mut numbers = HashSet::new();
    for t in tasks {
        numbers.insert(t.await.unwrap());
    }
    assert_eq!(numbers.len(), 20);
    let mut seqs: Vec<u32> = numbers.iter().map(|n| n.sequence()).collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=20).collect::<Vec<_>>(), "no gaps, none reused");
    assert!(numbers.iter().all(|n| n.series() == "AX"));
    // Asking again gives the application the number it has.
    let first = store.passport_number_of("app-7").await.unwrap().unwrap();
    let mut tx = store.begin_write().await.unwrap();
    let again = allocate_passport_number(&mut tx, "AX", "app-7", "app-7", 6_000)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(again, first);
    // Concurrent requests for one application wait for each other: one number.
    let tasks: Vec<_> = (0..5)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut tx = store.begin_write().await.unwrap();
                let n = allocate_passport_number(&mut tx, "AX", "app-same", "app-same", 5_500)
                    .await
                    .unwrap();
                tx.commit().await.unwrap();
                n
            })
        })
        .collect();
    let mut same = HashSet::new();
    for t in tasks {
        same.insert(t.await.unwrap());
    }
    assert_eq!(same.len(), 1, "{same:?}");
    assert!(same.iter().all(|n| n.to_string() == "AX0000021"));
    // The next application gets the next number.
    let mut tx = store.begin_write().await.unwrap();
    let next = allocate_passport_number(&mut tx, "AX", "app-new", "app-new", 6_000)
        .await
        .unwrap();
    let bad = allocate_passport_number(&mut tx, "A1", "app-x", "app-x", 6_000).await;
    assert!(matches!(bad, Err(StoreError::Conflict { .. })), "{bad:?}");
    drop(tx);
    assert_eq!(next.to_string(), "AX0000022");
    assert_eq!(store.passport_number_of("app-new").await.unwrap(), None);
}

async fn custody_history_has_no_gaps(db: TestDb) {
    let store = setup(db).await;
    receive(&store, "PA0000100-PA0000101", BookletType::Pages48)
        .await
        .unwrap();
    let serial = reserve(&store, BookletType::Pages48, "app-1")
        .await
        .unwrap();
    let mut tx = store.begin_write().await.unwrap();
    let number = allocate_passport_number(&mut tx, "AX", "app-1", "app-1", 3_000)
        .await
        .unwrap();
    personalise_booklet(&mut tx, &serial, &number, "planta-1", 3_000)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    event(&store, &serial, CustodyEvent::Dispatch, 4_000).await;
    event(&store, &serial, CustodyEvent::ReceiveAtOffice, 5_000).await;
    assert_eq!(
        event(&store, &serial, CustodyEvent::HandOver, 6_000).await,
        BookletState::HandedOver
    );
    let b = store.booklet(&serial).await.unwrap();
    assert_eq!(b.passport_number.as_deref(), Some("AX0000001"));
    assert_eq!(b.application_id.as_deref(), Some("app-1"));
    // A handed-over booklet takes nothing more, and nothing is recorded.
    let mut tx = store.begin_write().await.unwrap();
    let refused = booklet_event(
        &mut tx,
        &serial,
        &CustodyEvent::Annul {
            reason: "no reclamado".into(),
        },
        "x",
        7_000,
    )
    .await;
    assert!(
        matches!(
            refused,
            Err(CustodyWriteError::Custody(CustodyError::NotAllowed { .. }))
        ),
        "{refused:?}"
    );
    drop(tx);

    let history = store.booklet_history(&serial).await.unwrap();
    let events: Vec<&str> = history.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(
        events,
        [
            RECEIVE_EVENT,
            "reserve",
            "personalise",
            "dispatch",
            "receive_at_office",
            "hand_over"
        ]
    );
    let mut previous = None;
    for (i, e) in history.iter().enumerate() {
        assert_eq!(e.seq, i as i64 + 1, "seq runs 1..n");
        assert_eq!(e.from_state, previous, "each from is the previous to");
        if let Some(from) = e.from_state {
            let kind = CustodyEventKind::parse(&e.event).unwrap();
            assert_eq!(
                from.next(&CustodyEvent::from_parts(kind, e.detail.as_deref())),
                Ok(e.to_state)
            );
        }
        previous = Some(e.to_state);
    }
    assert_eq!(previous, Some(BookletState::HandedOver));
    // Issue rate for the forecast: one 48-page booklet personalised.
    assert_eq!(
        store
            .booklets_personalised_since(Some(SITE), 0)
            .await
            .unwrap(),
        vec![(BookletType::Pages48, 1)]
    );
    let day_ms = 86_400_000;
    let forecast = store
        .stock_forecasts(Some(SITE), 3_000 + day_ms, 1)
        .await
        .unwrap();
    let f48 = forecast
        .iter()
        .find(|f| f.booklet_type == BookletType::Pages48)
        .unwrap();
    assert_eq!((f48.in_stock, f48.issued, f48.days_left), (1, 1, Some(1.0)));
    let f32 = forecast
        .iter()
        .find(|f| f.booklet_type == BookletType::Pages32)
        .unwrap();
    assert_eq!((f32.in_stock, f32.issued, f32.days_left), (0, 0, None));
    let later = store
        .stock_forecasts(Some(SITE), 3_001 + day_ms, 1)
        .await
        .unwrap();
    assert!(later.iter().all(|f| f.days_left.is_none()), "{later:?}");
    assert!(
        store
            .booklets_personalised_since(None, 3_001)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn spoiling_needs_a_reason(db: TestDb) {
    let store = setup(db).await;
    receive(&store, "SP0000001", BookletType::Pages32)
        .await
        .unwrap();
    let mut tx = store.begin_write().await.unwrap();
    let refused = booklet_event(
        &mut tx,
        "SP0000001",
        &CustodyEvent::Spoil { reason: " ".into() },
        "planta-1",
        2_000,
    )
    .await;
    assert!(
        matches!(
            refused,
            Err(CustodyWriteError::Custody(CustodyError::MissingText {
                what: "reason",
                ..
            }))
        ),
        "{refused:?}"
    );
    drop(tx);
    assert_eq!(store.booklet_history("SP0000001").await.unwrap().len(), 1);
    let spoil = CustodyEvent::Spoil {
        reason: "página de datos rayada".into(),
    };
    assert_eq!(
        event(&store, "SP0000001", spoil, 3_000).await,
        BookletState::Spoiled
    );
    let mut tx = store.begin_write().await.unwrap();
    let no_witness = booklet_event(
        &mut tx,
        "SP0000001",
        &CustodyEvent::Destroy {
            witness: String::new(),
        },
        "planta-1",
        4_000,
    )
    .await;
    assert!(
        matches!(
            no_witness,
            Err(CustodyWriteError::Custody(CustodyError::MissingText {
                what: "witness",
                ..
            }))
        ),
        "{no_witness:?}"
    );
    drop(tx);
    let destroy = CustodyEvent::Destroy {
        witness: "supervisor-3".into(),
    };
    assert_eq!(
        event(&store, "SP0000001", destroy, 5_000).await,
        BookletState::Destroyed
    );
    let h = store.booklet_history("SP0000001").await.unwrap();
    assert_eq!(h.len(), 3);
    assert_eq!(h[1].detail.as_deref(), Some("página de datos rayada"));
    assert_eq!(h[2].detail.as_deref(), Some("supervisor-3"));
    let mut tx = store.begin_write().await.unwrap();
    assert!(matches!(
        booklet_event(&mut tx, "NO0000001", &CustodyEvent::Release, "x", 1).await,
        Err(CustodyWriteError::Store(StoreError::NotFound))
    ));
}

async fn a_bad_range_stores_nothing(db: TestDb) {
    let store = setup(db).await;
    // Refused before the database: the message names what to fix.
    let err = SerialRange::parse("AB0000010-AB0000001").unwrap_err();
    assert!(err.to_string().contains("swap"), "{err}");
    receive(&store, "AB0000001-AB0000010", BookletType::Pages32)
        .await
        .unwrap();
    // Overlapping a range already received (its first serials are known, the
    // rest, in later statements, new): refused as a whole.
    let overlapping = SerialRange::parse("AB0000005-AB0000500").unwrap();
    let mut tx = store.begin_write().await.unwrap();
    let r = receive_range(
        &mut tx,
        &overlapping,
        BookletType::Pages32,
        SITE,
        "almacen-1",
        2_000,
    )
    .await;
    assert!(matches!(r, Err(StoreError::Conflict { .. })), "{r:?}");
    drop(tx);
    let levels = store.stock_levels(None).await.unwrap();
    assert_eq!(
        levels,
        vec![StockLevel {
            booklet_type: BookletType::Pages32,
            state: BookletState::InStock,
            count: 10
        }]
    );
    assert!(matches!(
        store.booklet("AB0000500").await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(store.booklet_history("AB0000001").await.unwrap().len(), 1);
    // A bad site is refused too.
    let mut tx = store.begin_write().await.unwrap();
    let r = receive_range(
        &mut tx,
        &SerialRange::parse("ZZ0000001").unwrap(),
        BookletType::Pages32,
        " ",
        "almacen-1",
        2_000,
    )
    .await;
    assert!(matches!(r, Err(StoreError::Conflict { .. })), "{r:?}");
}

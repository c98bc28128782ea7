//! Payments' storage on both databases: references paid once, events applied
//! once, refunds, waivers and the reconciliation report.

use super::setup;
use pasaporte_core::fees::{PaymentEventKind, PaymentStatus};
use pasaporte_store::testing::TestDb;
use pasaporte_store::*;

both!(
    a_reference_is_paid_once,
    a_replayed_event_changes_nothing,
    refunds_go_pending_then_refunded,
    one_reference_per_application,
    waivers_are_requested_and_decided_once,
    reconciliation_sums_events_per_currency,
    a_rolled_back_payment_leaves_no_trace,
    concurrent_deliveries_apply_once,
);

fn new_ref(reference: &str, app: &str, office: &str, amount: i64, currency: &str) -> NewReference {
    NewReference {
        reference: reference.into(),
        application_id: app.into(),
        office_code: office.into(),
        amount_minor: amount,
        currency: currency.into(),
        created_ms: 1_000,
    }
}

fn event(id: &str, reference: &str, kind: PaymentEventKind, amount: i64) -> PaymentEventRow {
    PaymentEventRow {
        event_id: id.into(),
        reference: reference.into(),
        kind,
        amount_minor: amount,
        received_ms: 2_000,
    }
}

async fn insert(store: &Store, r: &NewReference) {
    let mut tx = store.pool().begin().await.unwrap();
    insert_payment_reference(&mut tx, r).await.unwrap();
    tx.commit().await.unwrap();
}

/// Records the event and, if it is new, marks the reference paid: what the
/// callback route does.
async fn apply_confirmation(store: &Store, e: &PaymentEventRow) -> bool {
    let mut tx = store.pool().begin().await.unwrap();
    let fresh = record_payment_event(&mut tx, e).await.unwrap();
    if fresh {
        mark_reference_paid(&mut tx, &e.reference, e.received_ms)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    fresh
}

async fn a_reference_is_paid_once(db: TestDb) {
    let store = setup(db).await;
    insert(&store, &new_ref("R1", "app-1", "AAA", 190_000, "COP")).await;
    let r = store.payment_reference("R1").await.unwrap();
    assert_eq!(
        (r.status, r.paid_ms, r.amount_minor),
        (PaymentStatus::Created, None, 190_000)
    );
    let mut tx = store.pool().begin().await.unwrap();
    mark_reference_paid(&mut tx, "R1", 5_000).await.unwrap();
    tx.commit().await.unwrap();
    let mut tx = store.pool().begin().await.unwrap();
    let second = mark_reference_paid(&mut tx, "R1", 6_000).await;
    assert!(
        matches!(&second, Err(StoreError::Conflict { constraint }) if constraint == "payment_references.status"),
        "{second:?}"
    );
    assert!(matches!(
        mark_reference_paid(&mut tx, "NOPE", 6_000).await,
        Err(StoreError::NotFound)
    ));
    drop(tx);
    let r = store.payment_reference("R1").await.unwrap();
    assert_eq!((r.status, r.paid_ms), (PaymentStatus::Paid, Some(5_000)));
    // A paid reference cannot be waived either.
    let mut tx = store.pool().begin().await.unwrap();
    assert!(matches!(
        mark_reference_waived(&mut tx, "R1").await,
        Err(StoreError::Conflict { .. })
    ));
}

async fn a_replayed_event_changes_nothing(db: TestDb) {
    let store = setup(db).await;
    insert(&store, &new_ref("R1", "app-1", "AAA", 190_000, "COP")).await;
    let e = event("evt-1", "R1", PaymentEventKind::PaymentConfirmed, 190_000);
    assert!(apply_confirmation(&store, &e).await);
    let before = store.payment_reference("R1").await.unwrap();
    let mut replay = e.clone();
    replay.received_ms = 9_000;
    assert!(
        !apply_confirmation(&store, &replay).await,
        "a replay is refused"
    );
    assert_eq!(store.payment_reference("R1").await.unwrap(), before);
    let rec = store.reconciliation(None, 0, 10_000).await.unwrap();
    assert_eq!(rec.rows[0].paid_minor, 190_000, "counted once");
    // An event for an unknown reference is refused by the database.
    let mut tx = store.pool().begin().await.unwrap();
    let unknown = record_payment_event(
        &mut tx,
        &event("evt-2", "NOPE", PaymentEventKind::PaymentConfirmed, 1),
    )
    .await;
    assert!(
        matches!(unknown, Err(StoreError::Conflict { .. })),
        "{unknown:?}"
    );
}

async fn refunds_go_pending_then_refunded(db: TestDb) {
    let store = setup(db).await;
    for (r, app) in [("R1", "app-1"), ("R2", "app-2"), ("R3", "app-3")] {
        insert(&store, &new_ref(r, app, "MAD", 6_000, "EUR")).await;
    }
    let mut tx = store.pool().begin().await.unwrap();
    // Only a paid reference can be refunded.
    assert!(matches!(
        mark_refund_pending(&mut tx, "R1").await,
        Err(StoreError::Conflict { .. })
    ));
    drop(tx);
    for r in ["R1", "R2"] {
        apply_confirmation(
            &store,
            &event(
                &format!("pay-{r}"),
                r,
                PaymentEventKind::PaymentConfirmed,
                6_000,
            ),
        )
        .await;
    }
    let mut tx = store.pool().begin().await.unwrap();
    mark_refund_pending(&mut tx, "R2").await.unwrap();
    mark_refund_pending(&mut tx, "R1").await.unwrap();
    // Not yet confirmed by the gateway: refunded is refused from paid.
    assert!(matches!(
        mark_refunded(&mut tx, "R3", 1).await,
        Err(StoreError::Conflict { .. })
    ));
    tx.commit().await.unwrap();
    let pending: Vec<String> = store
        .pending_refunds(10)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.reference)
        .collect();
    assert_eq!(pending, ["R1", "R2"]);
    assert_eq!(store.pending_refunds(1).await.unwrap().len(), 1);
    let mut tx = store.pool().begin().await.unwrap();
    let e = event("refund-R1", "R1", PaymentEventKind::RefundCompleted, 6_000);
    assert!(record_payment_event(&mut tx, &e).await.unwrap());
    mark_refunded(&mut tx, "R1", 7_000).await.unwrap();
    tx.commit().await.unwrap();
    let r1 = store.payment_reference("R1").await.unwrap();
    assert_eq!(
        (r1.status, r1.refunded_ms),
        (PaymentStatus::Refunded, Some(7_000))
    );
    assert_eq!(store.pending_refunds(10).await.unwrap().len(), 1);
}

async fn one_reference_per_application(db: TestDb) {
    let store = setup(db).await;
    insert(&store, &new_ref("R1", "app-1", "AAA", 190_000, "COP")).await;
    let mut tx = store.pool().begin().await.unwrap();
    let again = insert_payment_reference(&mut tx, &new_ref("R2", "app-1", "AAA", 1, "COP")).await;
    assert!(
        matches!(again, Err(StoreError::Conflict { .. })),
        "{again:?}"
    );
    drop(tx);
    let r = store.payment_reference_of("app-1").await.unwrap().unwrap();
    assert_eq!(r.reference, "R1");
    assert_eq!(store.payment_reference_of("app-2").await.unwrap(), None);
    assert!(matches!(
        store.payment_reference("R2").await,
        Err(StoreError::NotFound)
    ));
}

async fn waivers_are_requested_and_decided_once(db: TestDb) {
    let store = setup(db).await;
    let req = |app: &str, office: &str, at: i64| WaiverRequest {
        application_id: app.into(),
        office_code: office.into(),
        reason: "Sisbén A1 con condición que califica".into(),
        requested_by: "clerk-1".into(),
        requested_ms: at,
    };
    let mut tx = store.pool().begin().await.unwrap();
    request_waiver(&mut tx, &req("app-1", "AAA", 10))
        .await
        .unwrap();
    request_waiver(&mut tx, &req("app-2", "MAD", 20))
        .await
        .unwrap();
    request_waiver(&mut tx, &req("app-3", "AAA", 30))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let mut tx = store.pool().begin().await.unwrap();
    assert!(matches!(
        request_waiver(&mut tx, &req("app-1", "AAA", 40)).await,
        Err(StoreError::Conflict { .. })
    ));
    let mut empty = req("app-9", "AAA", 40);
    empty.reason = " ".into();
    assert!(matches!(
        request_waiver(&mut tx, &empty).await,
        Err(StoreError::Conflict { .. })
    ));
    drop(tx);
    let apps =
        |ws: Vec<WaiverRow>| -> Vec<String> { ws.into_iter().map(|w| w.application_id).collect() };
    assert_eq!(
        apps(store.waivers_requested(None).await.unwrap()),
        ["app-1", "app-2", "app-3"]
    );
    assert_eq!(
        apps(store.waivers_requested(Some("AAA")).await.unwrap()),
        ["app-1", "app-3"]
    );
    let mut tx = store.pool().begin().await.unwrap();
    decide_waiver(&mut tx, "app-1", true, "supervisor-1", 50)
        .await
        .unwrap();
    decide_waiver(&mut tx, "app-3", false, "supervisor-1", 60)
        .await
        .unwrap();
    assert!(matches!(
        decide_waiver(&mut tx, "app-1", false, "supervisor-2", 70).await,
        Err(StoreError::Conflict { .. })
    ));
    assert!(matches!(
        decide_waiver(&mut tx, "app-404", true, "supervisor-2", 70).await,
        Err(StoreError::NotFound)
    ));
    tx.commit().await.unwrap();
    assert_eq!(
        apps(store.waivers_requested(Some("AAA")).await.unwrap()),
        Vec::<String>::new()
    );
    let w = store.waiver_of("app-1").await.unwrap().unwrap();
    assert_eq!(
        (w.status, w.decided_by.as_deref(), w.decided_ms),
        (WaiverStatus::Approved, Some("supervisor-1"), Some(50))
    );
    // After a refusal staff may ask again; after an approval they may not.
    let mut tx = store.pool().begin().await.unwrap();
    request_waiver(&mut tx, &req("app-3", "AAA", 80))
        .await
        .unwrap();
    assert!(matches!(
        request_waiver(&mut tx, &req("app-1", "AAA", 80)).await,
        Err(StoreError::Conflict { .. })
    ));
    tx.commit().await.unwrap();
    let w = store.waiver_of("app-3").await.unwrap().unwrap();
    assert_eq!(
        (w.status, w.decided_by, w.requested_ms),
        (WaiverStatus::Requested, None, 80)
    );
}

async fn reconciliation_sums_events_per_currency(db: TestDb) {
    let store = setup(db).await;
    let mut refs = vec![
        new_ref("C1", "a1", "AAA", 190_000, "COP"),
        new_ref("C2", "a2", "AAA", 323_000, "COP"),
        new_ref("C3", "a3", "AAA", 100_000, "COP"),
        new_ref("E1", "a4", "MAD", 6_000, "EUR"),
        new_ref("E2", "a5", "MAD", 6_000, "EUR"),
        // Outside the window.
        new_ref("C9", "a9", "AAA", 190_000, "COP"),
    ];
    for (i, r) in refs.iter_mut().enumerate() {
        r.created_ms = 1_000 + i64::try_from(i).unwrap();
    }
    refs[5].created_ms = 50_000;
    for r in &refs {
        insert(&store, r).await;
    }
    let pay = |id: &str, r: &str, amount| event(id, r, PaymentEventKind::PaymentConfirmed, amount);
    apply_confirmation(&store, &pay("p1", "C1", 190_000)).await;
    apply_confirmation(&store, &pay("p2", "C2", 323_000)).await;
    apply_confirmation(&store, &pay("p4", "E1", 6_000)).await;
    apply_confirmation(&store, &pay("p5", "E2", 6_000)).await;
    apply_confirmation(&store, &pay("p9", "C9", 190_000)).await;
    let mut tx = store.pool().begin().await.unwrap();
    mark_reference_waived(&mut tx, "C3").await.unwrap();
    mark_refund_pending(&mut tx, "E2").await.unwrap();
    record_payment_event(
        &mut tx,
        &event("r5", "E2", PaymentEventKind::RefundCompleted, 6_000),
    )
    .await
    .unwrap();
    mark_refunded(&mut tx, "E2", 3_000).await.unwrap();
    tx.commit().await.unwrap();

    let rec = store.reconciliation(None, 1_000, 10_000).await.unwrap();
    assert!(!rec.truncated);
    let got: Vec<(&str, PaymentStatus, i64, i64, bool)> = rec
        .rows
        .iter()
        .map(|r| {
            (
                r.reference.as_str(),
                r.status,
                r.paid_minor,
                r.refunded_minor,
                r.waived,
            )
        })
        .collect();
    use PaymentStatus::*;
    assert_eq!(
        got,
        [
            ("C1", Paid, 190_000, 0, false),
            ("C2", Paid, 323_000, 0, false),
            ("C3", Waived, 0, 0, true),
            ("E1", Paid, 6_000, 0, false),
            ("E2", Refunded, 6_000, 6_000, false),
        ]
    );
    assert_eq!(
        rec.totals,
        [
            CurrencyTotals {
                currency: "COP".into(),
                references: 3,
                expected_minor: 513_000,
                paid_minor: 513_000,
                refunded_minor: 0,
                waived_minor: 100_000,
            },
            CurrencyTotals {
                currency: "EUR".into(),
                references: 2,
                expected_minor: 12_000,
                paid_minor: 12_000,
                refunded_minor: 6_000,
                waived_minor: 0,
            },
        ]
    );
    let mad = store.reconciliation(Some("MAD"), 0, 100_000).await.unwrap();
    assert_eq!(mad.rows.len(), 2);
    assert_eq!(mad.totals.len(), 1);
    let all = store.reconciliation(None, 0, 100_000).await.unwrap();
    assert_eq!(all.rows.len(), 6);
    let none = store.reconciliation(None, 0, 1_000).await.unwrap();
    assert_eq!(none, Reconciliation::default());
}

async fn a_rolled_back_payment_leaves_no_trace(db: TestDb) {
    let store = setup(db).await;
    insert(&store, &new_ref("R1", "app-1", "AAA", 190_000, "COP")).await;
    let e = event("evt-1", "R1", PaymentEventKind::PaymentConfirmed, 190_000);
    let mut tx = store.pool().begin().await.unwrap();
    assert!(record_payment_event(&mut tx, &e).await.unwrap());
    mark_reference_paid(&mut tx, "R1", 5).await.unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(
        store.payment_reference("R1").await.unwrap().status,
        PaymentStatus::Created
    );
    // The event was not applied, so its redelivery is.
    assert!(apply_confirmation(&store, &e).await);
}

async fn concurrent_deliveries_apply_once(db: TestDb) {
    let store = setup(db).await;
    insert(&store, &new_ref("R1", "app-1", "AAA", 190_000, "COP")).await;
    let e = event("evt-1", "R1", PaymentEventKind::PaymentConfirmed, 190_000);
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let (store, e) = (store.clone(), e.clone());
            tokio::spawn(async move { apply_confirmation(&store, &e).await })
        })
        .collect();
    let mut applied = 0;
    for t in tasks {
        if t.await.unwrap() {
            applied += 1;
        }
    }
    assert_eq!(applied, 1, "one delivery applies, the others are replays");
    let rec = store.reconciliation(None, 0, 10_000).await.unwrap();
    assert_eq!(rec.rows[0].paid_minor, 190_000);
}

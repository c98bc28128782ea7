//! Worker leases: one holder at a time, renewed by its holder, taken over
//! once it runs out, given up by a stopping node.

use super::{Store, TestDb, fresh};

both!(
    one_holder_until_the_lease_runs_out,
    concurrent_claims_make_one_holder
);

async fn store(db: TestDb) -> Store {
    fresh(db).await.unwrap().0
}

async fn one_holder_until_the_lease_runs_out(db: TestDb) {
    let s = store(db).await;
    assert!(s.hold_lease("outbox", "a", 1_000, 31_000).await.unwrap());
    assert!(
        !s.hold_lease("outbox", "b", 2_000, 32_000).await.unwrap(),
        "a holds it"
    );
    assert!(
        s.hold_lease("outbox", "a", 20_000, 50_000).await.unwrap(),
        "a renews"
    );
    assert!(
        s.hold_lease("workflow", "b", 20_000, 50_000).await.unwrap(),
        "another worker's lease"
    );
    assert!(
        !s.hold_lease("outbox", "b", 40_000, 70_000).await.unwrap(),
        "renewed until 50,000"
    );
    // a stops renewing (died): b takes the work over once the lease ran out.
    assert!(s.hold_lease("outbox", "b", 50_001, 80_000).await.unwrap());
    assert!(
        !s.hold_lease("outbox", "a", 50_002, 80_000).await.unwrap(),
        "a lost it"
    );
    // b stops cleanly: a takes it at once.
    s.release_leases_of("b").await.unwrap();
    assert!(s.hold_lease("outbox", "a", 50_003, 80_000).await.unwrap());
    assert!(s.hold_lease("workflow", "a", 50_003, 80_000).await.unwrap());
}

async fn concurrent_claims_make_one_holder(db: TestDb) {
    let s = store(db).await;
    for round in 0..5i64 {
        let now = round * 100_000;
        let mut set = tokio::task::JoinSet::new();
        for node in 0..16 {
            let s = s.clone();
            set.spawn(async move {
                s.hold_lease("production", &format!("n{node}"), now, now + 50_000)
                    .await
                    .unwrap()
            });
        }
        let held = set.join_all().await.into_iter().filter(|h| *h).count();
        assert_eq!(held, 1, "round {round}: exactly one node holds the lease");
    }
}

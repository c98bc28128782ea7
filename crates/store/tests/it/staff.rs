//! Staff accounts, the TOTP replay guard, the sign-in throttle and sessions.

use super::{Store, TestDb, fresh};
use pasaporte_store::{NewStaffRow, SessionRow, StoreError, Throttle, ThrottlePolicy};

both!(
    staff_accounts_round_trip,
    totp_step_used_once,
    throttle_counts_and_locks,
    reservations_count_every_attempt_and_admit_within_the_policy,
    concurrent_reservations_admit_no_more_than_the_policy,
    ceiling_grants_checks_up_to_its_maximum_per_window,
    sessions_round_trip
);

fn new_staff(id: &str, username: &str, offices: &[&str]) -> NewStaffRow {
    NewStaffRow {
        id: id.into(),
        username: username.into(),
        display_name_enc: "sealed-name".into(),
        role: "clerk".into(),
        password_hash: "$argon2id$v=19$...".into(),
        totp_secret_enc: "sealed-secret".into(),
        created_ms: 5,
        offices: offices.iter().map(|s| s.to_string()).collect(),
    }
}

async fn store(db: TestDb) -> Store {
    fresh(db).await.unwrap().0
}

async fn staff_accounts_round_trip(db: TestDb) {
    let store = store(db).await;
    store
        .insert_staff(&new_staff("s1", "ana", &["BOG", "MED"]))
        .await
        .unwrap();
    let got = store.staff_by_username("ana").await.unwrap().unwrap();
    assert_eq!(got.id, "s1");
    assert_eq!(got.offices, vec!["BOG", "MED"]);
    assert!(got.active);
    assert_eq!(got.totp_last_step, -1);
    assert_eq!(store.staff_by_id("s1").await.unwrap().unwrap(), got);
    assert!(store.staff_by_username("nobody").await.unwrap().is_none());
    let dup = store.insert_staff(&new_staff("s2", "ana", &["*"])).await;
    assert!(matches!(dup, Err(StoreError::Conflict { .. })), "{dup:?}");
    assert!(
        store.staff_by_id("s2").await.unwrap().is_none(),
        "nothing of the refused account stays"
    );
    let mut bad_role = new_staff("s3", "eva", &["*"]);
    bad_role.role = "citizen".into();
    assert!(matches!(
        store.insert_staff(&bad_role).await,
        Err(StoreError::Conflict { .. })
    ));
    store
        .insert_staff(&new_staff("s4", "bea", &["*"]))
        .await
        .unwrap();
    let list = store.staff_list().await.unwrap();
    let names: Vec<_> = list.iter().map(|s| s.username.as_str()).collect();
    assert_eq!(names, vec!["ana", "bea"]);
    store.set_staff_active("s4", false).await.unwrap();
    assert!(!store.staff_by_id("s4").await.unwrap().unwrap().active);
    assert!(matches!(
        store.set_staff_active("nope", false).await,
        Err(StoreError::NotFound)
    ));
}

async fn totp_step_used_once(db: TestDb) {
    let store = store(db).await;
    store
        .insert_staff(&new_staff("s1", "ana", &["*"]))
        .await
        .unwrap();
    assert!(store.use_totp_step("s1", 100).await.unwrap());
    assert!(
        !store.use_totp_step("s1", 100).await.unwrap(),
        "same step twice"
    );
    assert!(
        !store.use_totp_step("s1", 99).await.unwrap(),
        "an earlier step"
    );
    assert!(store.use_totp_step("s1", 101).await.unwrap());
}

async fn throttle_counts_and_locks(db: TestDb) {
    let store = store(db).await;
    assert_eq!(store.sign_in_throttle("k").await.unwrap(), None);
    for n in 1..=2 {
        let t = store
            .record_sign_in_failure("k", n * 10, 3, 1000)
            .await
            .unwrap();
        assert_eq!(
            t,
            Throttle {
                failures: n,
                last_failure_ms: n * 10,
                locked_until_ms: 0
            }
        );
    }
    let t = store
        .record_sign_in_failure("k", 30, 3, 1000)
        .await
        .unwrap();
    assert_eq!((t.failures, t.locked_until_ms), (3, 1000));
    assert_eq!(store.sign_in_throttle("other").await.unwrap(), None);
    store.clear_sign_in_failures("k").await.unwrap();
    assert_eq!(store.sign_in_throttle("k").await.unwrap(), None);
}

/// Back-off of 2 s after 3 attempts and 4 s after 4; lock at 5 for 15 minutes.
const POLICY: ThrottlePolicy<'static> = ThrottlePolicy {
    backoff: &[(3, 2_000), (4, 4_000)],
    lock_after_failures: 5,
    lock_ms: 900_000,
};

async fn reservations_count_every_attempt_and_admit_within_the_policy(db: TestDb) {
    let store = store(db).await;
    let admitted = |t: i64| {
        let store = store.clone();
        async move {
            let r = store
                .reserve_sign_in_attempt("k", t, &POLICY)
                .await
                .unwrap();
            (r.admitted, r.throttle.failures)
        }
    };
    assert_eq!(admitted(1_000).await, (true, 1));
    assert_eq!(admitted(999).await, (true, 2), "a clock a little behind");
    assert_eq!(
        admitted(1_000).await,
        (true, 3),
        "no back-off before the 3rd"
    );
    let t = store.sign_in_throttle("k").await.unwrap().unwrap();
    assert_eq!(t.last_failure_ms, 1_000, "never goes back");
    assert_eq!(admitted(2_999).await, (false, 4), "within 2 s of the last");
    assert_eq!(
        admitted(5_000).await,
        (false, 5),
        "4 s after the refused one"
    );
    let t = store.sign_in_throttle("k").await.unwrap().unwrap();
    assert_eq!(t.locked_until_ms, 5_000 + 900_000, "the 5th attempt locks");
    assert_eq!(admitted(500_000).await, (false, 6), "locked");
    let t = store.sign_in_throttle("k").await.unwrap().unwrap();
    assert_eq!(
        t.locked_until_ms,
        500_000 + 900_000,
        "trying while locked renews it"
    );
    assert_eq!(admitted(1_400_000).await, (true, 7), "the lock ran out");
    // A success forgives the attempts it knew of, not those counted after it.
    assert_eq!(
        admitted(1_400_000).await,
        (false, 8),
        "counted while the 7th runs"
    );
    store.forgive_sign_in_failures("k", 7, 5).await.unwrap();
    let t = store.sign_in_throttle("k").await.unwrap().unwrap();
    assert_eq!(
        (t.failures, t.locked_until_ms),
        (1, 0),
        "one left, not locked"
    );
    store.forgive_sign_in_failures("k", 1, 5).await.unwrap();
    assert_eq!(
        store.sign_in_throttle("k").await.unwrap(),
        None,
        "nothing left"
    );
    assert_eq!(
        admitted(1_400_001).await,
        (true, 1),
        "a success starts afresh"
    );
    assert_eq!(
        store
            .reserve_sign_in_attempt("other", 1_000, &POLICY)
            .await
            .unwrap()
            .throttle
            .failures,
        1
    );
}

async fn concurrent_reservations_admit_no_more_than_the_policy(db: TestDb) {
    let store = store(db).await;
    let attempts = (0..40).map(|_| {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .reserve_sign_in_attempt("k", 1_000, &POLICY)
                .await
                .unwrap()
                .admitted
        })
    });
    let mut admitted = 0;
    for a in attempts.collect::<Vec<_>>() {
        admitted += usize::from(a.await.unwrap());
    }
    assert_eq!(admitted, 3, "three before the back-off, at once or not");
    let t = store.sign_in_throttle("k").await.unwrap().unwrap();
    assert_eq!(t.failures, 40, "every attempt counted");
    assert_eq!(t.locked_until_ms, 1_000 + 900_000);
}

async fn ceiling_grants_checks_up_to_its_maximum_per_window(db: TestDb) {
    let store = store(db).await;
    let reservations = (0..25).map(|_| {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .reserve_sign_in_check("acct", 1_000, 60_000, 10)
                .await
                .unwrap()
                .admitted
        })
    });
    let mut granted = 0;
    for r in reservations.collect::<Vec<_>>() {
        granted += usize::from(r.await.unwrap());
    }
    assert_eq!(granted, 10);
    let c = store.sign_in_ceiling("acct").await.unwrap().unwrap();
    assert_eq!(
        (c.window_start_ms, c.checks, c.admitted),
        (1_000, 10, false)
    );
    // A success gives its check back; then one more fits.
    store.release_sign_in_check("acct", 1_000).await.unwrap();
    assert!(
        store
            .reserve_sign_in_check("acct", 2_000, 60_000, 10)
            .await
            .unwrap()
            .admitted
    );
    assert!(
        !store
            .reserve_sign_in_check("acct", 2_000, 60_000, 10)
            .await
            .unwrap()
            .admitted
    );
    // Releasing into a window that has ended changes nothing.
    let c = store
        .reserve_sign_in_check("acct", 61_000, 60_000, 10)
        .await
        .unwrap();
    assert_eq!((c.window_start_ms, c.checks, c.admitted), (61_000, 1, true));
    store.release_sign_in_check("acct", 1_000).await.unwrap();
    assert_eq!(
        store.sign_in_ceiling("acct").await.unwrap().unwrap().checks,
        1
    );
    // Old rows are forgotten.
    store
        .reserve_sign_in_attempt("k", 1_000, &POLICY)
        .await
        .unwrap();
    assert_eq!(store.forget_sign_in_attempts(60_000).await.unwrap(), 1);
    assert!(store.sign_in_throttle("k").await.unwrap().is_none());
    assert_eq!(store.forget_sign_in_attempts(62_000).await.unwrap(), 1);
    assert!(store.sign_in_ceiling("acct").await.unwrap().is_none());
}

async fn sessions_round_trip(db: TestDb) {
    let store = store(db).await;
    store
        .insert_staff(&new_staff("s1", "ana", &["*"]))
        .await
        .unwrap();
    let row = SessionRow {
        token_hash: "h1".into(),
        staff_id: "s1".into(),
        csrf: "c1".into(),
        created_ms: 1000,
        last_seen_ms: 1000,
        authenticated_at_ms: 1000,
    };
    store.insert_staff_session(&row).await.unwrap();
    assert_eq!(store.staff_session("h1").await.unwrap(), Some(row.clone()));
    store.touch_staff_session("h1", 2000).await.unwrap();
    store
        .set_session_authenticated_at("h1", 1500)
        .await
        .unwrap();
    let got = store.staff_session("h1").await.unwrap().unwrap();
    assert_eq!((got.last_seen_ms, got.authenticated_at_ms), (1500, 1500));
    assert_eq!(store.staff_sessions_of("s1").await.unwrap().len(), 1);
    let mut old = row.clone();
    old.token_hash = "h2".into();
    old.created_ms = 10;
    store.insert_staff_session(&old).await.unwrap();
    assert_eq!(
        store.delete_expired_staff_sessions(0, 100).await.unwrap(),
        1
    );
    store.delete_staff_session("h1").await.unwrap();
    assert!(store.staff_session("h1").await.unwrap().is_none());
    assert!(store.staff_sessions_of("s1").await.unwrap().is_empty());
    // Deactivating an account ends its sessions.
    store.insert_staff_session(&row).await.unwrap();
    store.set_staff_active("s1", false).await.unwrap();
    assert!(store.staff_session("h1").await.unwrap().is_none());
}

//! Staff accounts, the TOTP replay guard, the sign-in throttle and sessions.

use super::{Store, TestDb, fresh};
use pasaporte_store::{NewStaffRow, SessionRow, StoreError, Throttle};

both!(
    staff_accounts_round_trip,
    totp_step_used_once,
    throttle_counts_and_locks,
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

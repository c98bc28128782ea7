//! The audit trail kept outside the database (issue 12, item 5): the service
//! appends every signed checkpoint to an anchor file and serves them at
//! `/api/v1/audit/checkpoints.txt`; `pasaporte audit verify` finds against
//! them a trail cut together with its checkpoints, which the database's own
//! checkpoints cannot show.

use crate::both_databases;
use crate::support::*;
use pasaporte_core::application::{Actor, Role};
use pasaporte_core::audit::{AuditEvent, Verdict};
use pasaporte_store::append_audit_event;
use pasaporte_store::testing::TestDb;
use std::path::Path;
use std::process::Command;

both_databases!(a_cut_trail_is_found_against_the_anchors_kept_outside);

/// Appends `n` events in one transaction; the head's seq and hash.
async fn append(w: &World, n: i64) -> (i64, String) {
    let clerk = Actor {
        id: "clerk-1".into(),
        role: Role::Clerk,
    };
    let mut tx = w.app.store.begin_write().await.unwrap();
    let mut head = None;
    for i in 0..n {
        let at_ms = pasaporte_core::jiff::Timestamp::now().as_millisecond();
        let e = AuditEvent::by(
            &clerk,
            at_ms,
            "application.capture",
            "TST",
            format!("app-{i}"),
        );
        head = Some(append_audit_event(&mut tx, &e).await.unwrap());
    }
    tx.commit().await.unwrap();
    let head = head.unwrap();
    (head.seq, head.hash.to_hex())
}

/// Waits until the anchor file vouches for event `seq`; its text.
async fn anchored(path: &Path, seq: i64) -> String {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text
            .lines()
            .any(|l| l.split(' ').next() == Some(seq.to_string().as_str()))
        {
            return text;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "event {seq} never anchored:\n{text}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// `pasaporte audit verify` through the binary: success, and what it printed.
fn verify(w: &World, extra: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_pasaporte"))
        .args(["audit", "verify", "--database", &w.db_url])
        .args(["--public-key", &w.audit_key.to_hex()])
        .args(extra)
        .env_remove("PASAPORTE_AUDIT_ANCHOR_FILE")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

async fn a_cut_trail_is_found_against_the_anchors_kept_outside(db: TestDb) {
    let dir = std::env::temp_dir().join(format!("pasaporte-anchors-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("anchors.txt");
    let path = file.clone();
    let w = spawn_world_with(db, move |work| work.audit_anchor_file = Some(path)).await;
    let file_arg = file.to_str().unwrap();

    // Three rounds of events, each signed by the service's checkpointer
    // and appended to the anchor file.
    let mut heads = Vec::new();
    for _ in 0..3 {
        let head = append(&w, 4).await;
        anchored(&file, head.0).await;
        heads.push(head);
    }
    let text = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() >= 3, "{text}");

    // The same checkpoints, served for anyone to keep, paged by `after`.
    let (status, served) = w.app.get_text("/api/v1/audit/checkpoints.txt").await;
    assert_eq!(status, 200);
    assert_eq!(served, text, "the route serves what the file holds");
    let first_seq = lines[0].split(' ').next().unwrap();
    let (_, rest) = w
        .app
        .get_text(&format!("/api/v1/audit/checkpoints.txt?after={first_seq}"))
        .await;
    assert_eq!(rest.lines().count(), lines.len() - 1);

    let (ok, out) = verify(&w, &["--anchor-file", file_arg]);
    assert!(ok && out.contains("intact"), "{out}");

    // The attack: the last round deleted together with the checkpoints
    // that covered it.
    // One transaction, so the running checkpointer never sees the tail
    // without its checkpoint (and signs it again).
    let (cut_at, _) = heads[1];
    let mut tx = w.app.store.begin_write().await.unwrap();
    for sql in [
        "DELETE FROM audit_events WHERE seq > $1",
        "DELETE FROM audit_checkpoints WHERE seq > $1",
    ] {
        sqlx::query(sql)
            .bind(cut_at)
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    // The database alone cannot tell...
    assert!(matches!(
        w.app.store.verify_audit(&w.audit_key).await.unwrap(),
        Verdict::Intact { .. }
    ));
    let (ok, _) = verify(&w, &[]);
    assert!(
        ok,
        "without an anchor the cut passes: what the anchors are for"
    );
    // ...the anchor file, or one pair written down elsewhere, can.
    let (ok, out) = verify(&w, &["--anchor-file", file_arg]);
    assert!(!ok, "{out}");
    assert!(
        out.contains(&format!("broken at event {}", cut_at + 1)) && out.contains("anchor"),
        "{out}"
    );
    let (last_seq, last_hash) = &heads[2];
    let (ok, out) = verify(&w, &["--anchor", &format!("{last_seq}:{last_hash}")]);
    assert!(!ok && out.contains("anchor"), "{out}");
    // A hash written down for a kept event still matches.
    let (kept_seq, kept_hash) = &heads[0];
    let (ok, out) = verify(&w, &["--anchor", &format!("{kept_seq}:{kept_hash}")]);
    assert!(ok, "{out}");

    // A forged line in the anchor file is refused, not believed.
    let forged = dir.join("forged.txt");
    let mut fields: Vec<&str> = lines[0].split(' ').collect();
    let zeros = "0".repeat(64);
    fields[1] = &zeros;
    let line = fields.join(" ");
    std::fs::write(&forged, format!("{line}\n")).unwrap();
    let (ok, out) = verify(&w, &["--anchor-file", forged.to_str().unwrap()]);
    assert!(!ok && out.contains("does not verify"), "{out}");
    let (ok, out) = verify(&w, &["--anchor", "12:nothex"]);
    assert!(!ok && out.contains("SEQ:HASH"), "{out}");
    std::fs::remove_dir_all(&dir).ok();
}

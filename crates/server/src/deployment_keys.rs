//! One deployment, one set of keys. Every node of a deployment must seal and
//! look people up with the same keys: a node with another lookup key finds
//! nobody (and books the same person twice), one with another data key
//! cannot open what the others sealed. So the database records each key's
//! check value ([`crate::crypto::KeyChecks`], never the key) and a node whose
//! keys disagree refuses to start before it changes anything. A node never
//! makes itself a key file for a database that already holds sealed data.
//!
//! Rotation, node by node: add the new key after the current one on every
//! node (`k1:…,k2:…`: it is recorded and opens nothing yet; nodes not yet
//! given it keep working), then put it first on every node (`k2:…,k1:…`: it
//! seals new data, `k1` still opens the old). Once a key has sealed, every
//! node needs it: a node without it refuses to start, and a running one
//! answers `/readyz` with 503 so that the load balancer stops sending it
//! requests it could not serve.

use crate::crypto::{KeyChecks, Keyring};
use pasaporte_store::{RecordedKey, Store};

const DATA: &str = "data";
const LOOKUP: &str = "lookup";

/// Why a node's keys cannot serve this database.
#[derive(Debug, thiserror::Error)]
pub enum KeyDisagreement {
    #[error(
        "the lookup key differs from the one this database was written with: set PASAPORTE_LOOKUP_KEY to the deployment's lookup key (every node uses the same keys); nothing was changed"
    )]
    LookupKey,
    #[error(
        "data key {0} differs from the key of that id this database was written with: set PASAPORTE_DATA_KEYS to the deployment's keys (every node uses the same keys); nothing was changed"
    )]
    DataKey(String),
    #[error(
        "data key {0} has sealed data of this deployment but this node was not given it: add it to PASAPORTE_DATA_KEYS (data sealed under it must open); nothing was changed"
    )]
    MissingDataKey(String),
}

/// The rows `checks` would record.
fn rows_of(checks: &KeyChecks) -> Vec<RecordedKey> {
    // The lookup key first: two nodes recording at once take the rows in the
    // same order, so one of them records all of its keys and the other waits.
    let mut rows = vec![RecordedKey {
        kind: LOOKUP.into(),
        key_id: LOOKUP.into(),
        check_value: checks.lookup.clone(),
        sealing: false,
    }];
    rows.extend(checks.data.iter().map(|(id, check)| RecordedKey {
        kind: DATA.into(),
        key_id: id.clone(),
        check_value: check.clone(),
        sealing: *id == checks.current,
    }));
    rows
}

/// Compares a node's keys with the recorded ones.
pub fn disagreement(checks: &KeyChecks, recorded: &[RecordedKey]) -> Option<KeyDisagreement> {
    for r in recorded {
        match r.kind.as_str() {
            LOOKUP if r.check_value != checks.lookup => return Some(KeyDisagreement::LookupKey),
            DATA => match checks.data.iter().find(|(id, _)| *id == r.key_id) {
                None if r.sealing => {
                    return Some(KeyDisagreement::MissingDataKey(r.key_id.clone()));
                }
                None => {}
                Some((_, c)) if *c != r.check_value => {
                    return Some(KeyDisagreement::DataKey(r.key_id.clone()));
                }
                Some(_) => {}
            },
            _ => {}
        }
    }
    None
}

/// Checks `keys` against the database's recorded keys and records the ones
/// it does not know yet. Refuses (changing nothing) when they disagree; a
/// database written before keys were recorded adopts the first node's.
pub async fn agree(store: &Store, keys: &Keyring, now_ms: i64) -> anyhow::Result<()> {
    let checks = keys.checks();
    let recorded = store.recorded_keys().await?;
    if let Some(d) = disagreement(&checks, &recorded) {
        return Err(d.into());
    }
    if recorded.is_empty() && store.holds_sealed_data().await? {
        tracing::warn!(
            "this database holds data from before keys were recorded: recording this node's keys as the deployment's"
        );
    }
    let rows = rows_of(&checks);
    let known = |r: &RecordedKey| {
        recorded.iter().any(|k| {
            (&k.kind, &k.key_id, &k.check_value) == (&r.kind, &r.key_id, &r.check_value)
                && (k.sealing || !r.sealing)
        })
    };
    if !rows.iter().all(known) {
        store.record_keys(&rows, now_ms).await?;
        // Another node may have recorded other keys at the same moment.
        if let Some(d) = disagreement(&checks, &store.recorded_keys().await?) {
            return Err(d.into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keyring(data: &str, lookup: &str) -> Keyring {
        Keyring::parse(data, lookup).expect("test keys parse")
    }

    #[test]
    fn keys_agree_or_say_which_one_differs() {
        let (a, b, c) = ("aa".repeat(32), "bb".repeat(32), "cc".repeat(32));
        let first = keyring(&format!("k1:{a}"), &c);
        let mut recorded = rows_of(&first.checks());
        let against = |recorded: &[RecordedKey], data: String, lookup: &str| {
            disagreement(&keyring(&data, lookup).checks(), recorded).map(|d| d.to_string())
        };
        let check = |data: String, lookup: &str| against(&rows_of(&first.checks()), data, lookup);
        assert_eq!(check(format!("k1:{a}"), &c), None);
        // Rotation: a new key beside the recorded one, sealing or not.
        assert_eq!(check(format!("k1:{a},k2:{b}"), &c), None);
        assert_eq!(check(format!("k2:{b},k1:{a}"), &c), None);
        // k1 only known (another node will seal with it): not required yet.
        recorded[1].sealing = false;
        assert_eq!(against(&recorded, format!("k2:{b}"), &c), None);
        let lookup = check(format!("k1:{a}"), &b).expect("another lookup key");
        assert!(lookup.contains("PASAPORTE_LOOKUP_KEY"), "{lookup}");
        let data = check(format!("k1:{b}"), &c).expect("another k1");
        assert!(data.contains("data key k1 differs"), "{data}");
        let missing = check(format!("k2:{b}"), &c).expect("k1 missing");
        assert!(missing.contains("k1 has sealed"), "{missing}");
        // No secret reaches the message or the recorded rows.
        for text in [lookup, data, missing] {
            assert!(!text.contains(&a) && !text.contains(&b) && !text.contains(&c));
        }
        assert!(
            recorded
                .iter()
                .all(|r| ![&a, &b, &c].contains(&&r.check_value))
        );
    }
}

//! Person keys stored before leading zeros stopped counting in a NUIP.
//!
//! `Document::identity_text` once kept a tarjeta's or registro civil's
//! leading zeros, so `01033445566` and the cédula `1033445566` (one NUIP)
//! were two people. The keyed hash cannot be re-derived in SQL (it needs the
//! lookup key, and the number is sealed), so `serve` re-keys once, at start,
//! before it answers: every applicant row of a tarjeta or registro civil
//! whose number has leading zeros and whose key is still the old one moves,
//! with the person's hold and applications, to the new key, one person per
//! transaction (`Store::rekey_person`). A person who already holds a booking
//! under the new key too (booked as both before the fix) keeps both rows as
//! they are, logged by booking id. The run is recorded in `data_fixes` and
//! not repeated; run every server of a database on this version. It runs
//! after the re-seal (`reseal.rs`), so the numbers it opens are bound to
//! their rows.

use crate::crypto::{Keyring, at};
use pasaporte_core::person::{Document, DocumentNumber, DocumentType};
use pasaporte_store::{Store, StoreError};

/// The name the run is recorded under in `data_fixes`.
pub const FIX_NAME: &str = "person_key_nuip_leading_zeros";
/// Applicant rows read per page (each one is opened and hashed).
const PAGE_ROWS: u32 = 500;

/// What the re-keying did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Rekeyed {
    /// People moved to the new key.
    pub moved: usize,
    /// People left under the old key because the new one was taken.
    pub kept: usize,
}

/// Re-keys the rows stored under the old identity text, once per database.
pub async fn rekey_legacy_person_keys(
    store: &Store,
    keys: &Keyring,
    now_ms: i64,
) -> anyhow::Result<Rekeyed> {
    if store.data_fix_done(FIX_NAME).await? {
        return Ok(Rekeyed::default());
    }
    let done = rekey_all(store, keys).await?;
    store.record_data_fix(FIX_NAME, now_ms).await?;
    if done != Rekeyed::default() {
        tracing::info!(
            moved = done.moved,
            kept = done.kept,
            "person keys of NUIPs with leading zeros re-keyed"
        );
    }
    Ok(done)
}

/// One pass over the applicant rows, whether or not it ran before (it
/// changes nothing the second time).
pub async fn rekey_all(store: &Store, keys: &Keyring) -> anyhow::Result<Rekeyed> {
    let mut done = Rekeyed::default();
    let kinds = [
        DocumentType::TarjetaIdentidad.as_str(),
        DocumentType::RegistroCivil.as_str(),
    ];
    let mut after = (String::new(), -1_i64);
    loop {
        let rows = store
            .applicants_of_kinds(&kinds, (&after.0, after.1), PAGE_ROWS)
            .await?;
        let Some(last) = rows.last() else { break };
        after = (last.0.clone(), last.1);
        for (booking_id, position, doc_key, kind, number_enc) in &rows {
            let Some(kind) = DocumentType::parse(kind) else {
                continue;
            };
            let position = u32::try_from(*position)?;
            let typed = keys.open(
                at::applicant_document_number(booking_id, position),
                number_enc,
            )?;
            let Ok(number) = DocumentNumber::parse(kind, &typed, "document_number") else {
                continue;
            };
            let doc = Document { kind, number };
            let Some(legacy) = doc.legacy_identity_text() else {
                continue;
            };
            if *doc_key != keys.person_key(&legacy) {
                continue; // already under the new key
            }
            match store
                .rekey_person(doc_key, &keys.person_key(&doc.identity_text()))
                .await
            {
                Ok(()) => done.moved += 1,
                Err(StoreError::Conflict { .. }) => {
                    tracing::warn!(
                        booking = %booking_id,
                        "a person held bookings under both keys before NUIPs lost their leading zeros; both are kept"
                    );
                    done.kept += 1;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(done)
}

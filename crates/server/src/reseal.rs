//! Values sealed before they were bound to their rows, re-sealed once.
//!
//! Version 1 sealed a value with its field name only as associated data
//! (`"email"`, `"application.photo"`), so a value moved to another row of
//! the same column opened there and showed one person's data as another's.
//! Version 2 binds every value to its table, column, row and part
//! (`crypto::SealedAt`) and the normal `Keyring::open` refuses version 1.
//! A SQL migration cannot re-seal (the keys are not in the database), so
//! `serve` does it once, at start, before it answers: every table of
//! `pasaporte_store::SEALED_TABLES`, a page of rows at a time, each version 1
//! value opened with its old name (`Keyring::open_v1`, called only here) and
//! sealed for its place, written back only if the row still holds what was
//! read (`Store::reseal`, one transaction per page). The run is recorded in
//! `data_fixes` and not repeated.
//!
//! Two servers starting at once both walk the tables; the compare-and-set
//! makes the second writer's changes no-ops and each skips what is already
//! version 2, so neither waits for a claim the other might never release,
//! and neither answers before its own walk has finished. A version 1 value
//! that does not open (damaged, or under a key no longer configured) is left
//! as it is and logged at ERROR with its place: reading it is refused later,
//! like any value that does not open. A value moved between rows *before*
//! this ran is bound to the row it was found in: the re-seal cannot know
//! better, which is why it runs at the first start of this version. A server
//! of an older version still running would write version 1 values that the
//! new ones refuse: run every server of a database on this version.

use crate::crypto::{CryptoError, Keyring, SealedAt};
use pasaporte_store::{Resealed, SEALED_TABLES, SealedTable, Store};

/// The name the run is recorded under in `data_fixes`.
pub const FIX_NAME: &str = "sealed_values_bound_to_rows";
/// Rows read per page where rows are small (names, mail, keys).
const PAGE_ROWS: u32 = 500;
/// Rows read per page where a row holds a portrait and a signature
/// (hundreds of kilobytes each): a page stays within tens of megabytes.
const PAGE_ROWS_WITH_IMAGES: u32 = 32;

/// How a column was sealed in version 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Legacy {
    /// One value, sealed with this name.
    Value(&'static str),
    /// A JSON object of values, each sealed with `prefix.field`.
    Document(&'static str),
}

/// The version 1 name of each sealed column (the names the code used then).
fn legacy(table: &str, column: &str) -> Option<Legacy> {
    use Legacy::{Document, Value};
    Some(match (table, column) {
        ("bookings", "email_enc") => Value("email"),
        ("bookings", "phone_enc") => Value("phone"),
        ("bookings", "evidence_enc") => Value("evidence"),
        ("applicants", "document_number_enc") => Value("document_number"),
        ("applicants", "surnames_enc") => Value("surnames"),
        ("applicants", "given_names_enc") => Value("given_names"),
        ("applicants", "birth_date_enc") => Value("birth_date"),
        ("outbox", "recipient_enc") => Value("mail_recipient"),
        ("outbox", "body_enc") => Value("mail_body"),
        ("outbox", "ics_enc") => Value("mail_ics"),
        ("staff", "display_name_enc") => Value("staff.display_name"),
        ("staff", "totp_secret_enc") => Value("staff.totp_secret"),
        ("applications", "identity_enc") => Document("application"),
        ("applications", "contact_enc") => Document("application.contact"),
        ("applications", "extras_enc") => Value("application.extras"),
        ("applications", "photo_enc") => Value("application.photo"),
        ("applications", "signature_enc") => Value("application.signature"),
        ("application_portraits", "chip_portrait_enc") => Value("application.chip_portrait"),
        ("vendors", "key_enc") => Value("vendor.key"),
        ("production_orders", "body_enc") => Value("production_order.body"),
        ("releases", "seed_enc") => Value("ballot_seed"),
        _ => return None,
    })
}

fn page_rows(t: &SealedTable) -> u32 {
    match t.table {
        "applications" | "application_portraits" => PAGE_ROWS_WITH_IMAGES,
        _ => PAGE_ROWS,
    }
}

/// The place a stored value is bound to, as the use cases name it
/// (`crypto::at`; a unit test checks the two agree).
fn place<'a>(
    t: &SealedTable,
    column: &'static str,
    key: &'a str,
    position: i64,
) -> Option<SealedAt<'a>> {
    let at = SealedAt::new(t.table, column, key);
    match t.position {
        Some(_) => u32::try_from(position).ok().map(|p| at.part(p)),
        None => Some(at),
    }
}

/// What the re-seal did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ResealReport {
    /// Values (or documents) written back as version 2.
    pub resealed: usize,
    /// Version 1 values that did not open, left as they are.
    pub unreadable: usize,
}

/// Re-seals the version 1 values, once per database.
pub async fn reseal_legacy_values(
    store: &Store,
    keys: &Keyring,
    now_ms: i64,
) -> anyhow::Result<ResealReport> {
    if store.data_fix_done(FIX_NAME).await? {
        return Ok(ResealReport::default());
    }
    let done = reseal_all(store, keys).await?;
    store.record_data_fix(FIX_NAME, now_ms).await?;
    if done != ResealReport::default() {
        tracing::info!(
            resealed = done.resealed,
            unreadable = done.unreadable,
            "sealed values bound to their rows"
        );
    }
    Ok(done)
}

/// One pass over every sealed column, whether or not it ran before (it
/// changes nothing the second time).
pub async fn reseal_all(store: &Store, keys: &Keyring) -> anyhow::Result<ResealReport> {
    let mut report = ResealReport::default();
    for t in SEALED_TABLES {
        let mut after = (String::new(), -1_i64);
        loop {
            let rows = store
                .sealed_rows(t, (&after.0, after.1), page_rows(t))
                .await?;
            let Some(last) = rows.last() else { break };
            after = (last.key.clone(), last.position);
            let mut changes = Vec::new();
            for row in &rows {
                for (&column, value) in t.columns.iter().zip(&row.values) {
                    let Some(old) = value.as_deref().filter(|v| !v.is_empty()) else {
                        continue;
                    };
                    let Some(how) = legacy(t.table, column) else {
                        anyhow::bail!("no version 1 name for {}.{column}", t.table);
                    };
                    let resealed = place(t, column, &row.key, row.position)
                        .ok_or(CryptoError::Open)
                        .and_then(|at| reseal_value(keys, how, at, old));
                    match resealed {
                        Ok(None) => {}
                        Ok(Some(new)) => changes.push(Resealed {
                            key: row.key.clone(),
                            position: row.position,
                            column,
                            old: old.to_string(),
                            new,
                        }),
                        Err(_) => {
                            report.unreadable += 1;
                            tracing::error!(
                                table = t.table,
                                column,
                                row = %row.key,
                                position = row.position,
                                "a version 1 sealed value does not open: left as it is, and refused where it is read"
                            );
                        }
                    }
                }
            }
            if !changes.is_empty() {
                report.resealed += store.reseal(t, &changes).await?;
            }
        }
    }
    Ok(report)
}

/// The value sealed for `at`, or `None` when it is version 2 already.
fn reseal_value(
    keys: &Keyring,
    how: Legacy,
    at: SealedAt<'_>,
    old: &str,
) -> Result<Option<String>, CryptoError> {
    match how {
        Legacy::Value(_) if Keyring::is_current(old) => Ok(None),
        Legacy::Value(name) => Ok(Some(keys.seal(at, &keys.open_v1(name, old)?)?)),
        Legacy::Document(prefix) => {
            let mut fields: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(old).map_err(|_| CryptoError::Open)?;
            let mut changed = false;
            for (name, v) in fields.iter_mut() {
                let serde_json::Value::String(s) = v else {
                    continue;
                };
                if Keyring::is_current(s) {
                    continue;
                }
                let plain = keys.open_v1(&format!("{prefix}.{name}"), s)?;
                *s = keys.seal(at.field(name), &plain)?;
                changed = true;
            }
            if changed {
                Ok(Some(
                    serde_json::to_string(&fields).map_err(|_| CryptoError::Open)?,
                ))
            } else {
                Ok(None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::at;

    /// Every sealed column the store walks has its version 1 name, and the
    /// re-seal binds it to the place the use cases open it at.
    #[test]
    fn every_sealed_column_is_known_and_placed_as_the_use_cases_place_it() {
        for t in SEALED_TABLES {
            for c in t.columns {
                assert!(legacy(t.table, c).is_some(), "{}.{c}", t.table);
            }
        }
        let t = |name: &str| SEALED_TABLES.iter().find(|t| t.table == name).unwrap();
        let p = |table: &str, column: &'static str| place(t(table), column, "r1", 2).unwrap();
        for (got, want) in [
            (p("bookings", "email_enc"), at::booking_email("r1")),
            (p("bookings", "phone_enc"), at::booking_phone("r1")),
            (p("bookings", "evidence_enc"), at::booking_evidence("r1")),
            (
                p("applicants", "document_number_enc"),
                at::applicant_document_number("r1", 2),
            ),
            (
                p("applicants", "surnames_enc"),
                at::applicant_surnames("r1", 2),
            ),
            (
                p("applicants", "given_names_enc"),
                at::applicant_given_names("r1", 2),
            ),
            (
                p("applicants", "birth_date_enc"),
                at::applicant_birth_date("r1", 2),
            ),
            (p("outbox", "recipient_enc"), at::mail_recipient("r1")),
            (p("outbox", "body_enc"), at::mail_body("r1")),
            (p("outbox", "ics_enc"), at::mail_ics("r1")),
            (p("staff", "display_name_enc"), at::staff_display_name("r1")),
            (p("staff", "totp_secret_enc"), at::staff_totp_secret("r1")),
            (
                p("applications", "identity_enc"),
                at::application_identity("r1"),
            ),
            (
                p("applications", "contact_enc"),
                at::application_contact("r1"),
            ),
            (
                p("applications", "extras_enc"),
                at::application_extras("r1"),
            ),
            (p("applications", "photo_enc"), at::application_photo("r1")),
            (
                p("applications", "signature_enc"),
                at::application_signature("r1"),
            ),
            (
                p("application_portraits", "chip_portrait_enc"),
                at::chip_portrait("r1"),
            ),
            (p("vendors", "key_enc"), at::vendor_key("r1")),
            (p("production_orders", "body_enc"), at::order_body("r1")),
            (p("releases", "seed_enc"), at::release_seed("r1")),
        ] {
            assert_eq!(got, want);
        }
    }

    #[test]
    fn documents_are_resealed_field_by_field() {
        let k = Keyring::parse(&format!("k1:{}", "1".repeat(64)), &"2".repeat(64)).unwrap();
        let old = serde_json::json!({
            "surnames": k.seal_v1("application.surnames", "MUÑOZ").unwrap(),
            "sex": serde_json::Value::Null,
        })
        .to_string();
        let here = at::application_identity("a1");
        let new = reseal_value(&k, Legacy::Document("application"), here, &old)
            .unwrap()
            .unwrap();
        let v: serde_json::Value = serde_json::from_str(&new).unwrap();
        let s = v["surnames"].as_str().unwrap();
        assert_eq!(k.open(here.field("surnames"), s).unwrap(), "MUÑOZ");
        assert!(v["sex"].is_null());
        assert_eq!(
            reseal_value(&k, Legacy::Document("application"), here, &new).unwrap(),
            None,
            "nothing left to do"
        );
        let v1 = k.seal_v1("email", "a@b.co").unwrap();
        let v2 = reseal_value(&k, Legacy::Value("email"), at::booking_email("b1"), &v1)
            .unwrap()
            .unwrap();
        assert_eq!(k.open(at::booking_email("b1"), &v2).unwrap(), "a@b.co");
        assert!(reseal_value(&k, Legacy::Value("phone"), at::booking_phone("b1"), &v1).is_err());
    }
}

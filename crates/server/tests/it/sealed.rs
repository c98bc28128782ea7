//! Sealed values bound to their rows (issue 12 item 4), on SQLite and
//! PostgreSQL: a booking's sealed email and applicants swapped with another
//! booking's through SQL are refused, not shown; values sealed the old way
//! (version 1) are refused until the re-seal at start binds them to their
//! rows, and the re-seal changes nothing the second time, even when two
//! servers run it at once.

use crate::both_databases;
use crate::support::{TestApp, booking_body, keys, minor, person, spawn_app};
use pasaporte_store::testing::TestDb;
use reqwest::Method;
use serde_json::{Value, json};

both_databases!(
    sealed_columns_swapped_between_bookings_are_refused,
    values_sealed_before_rows_were_bound_are_resealed_once,
);

const APPLICANT_COLUMNS: [&str; 4] = [
    "document_number_enc",
    "surnames_enc",
    "given_names_enc",
    "birth_date_enc",
];

fn luis(n: u64) -> Value {
    json!({
        "document_type": "cedula_ciudadania",
        "document_number": format!("{}", 20_000_000 + n),
        "surnames": "Rojas Díaz",
        "given_names": "Luis",
        "birth_date": "1970-01-15",
    })
}

/// Books at `start` with `email`; returns (booking id, code, manage token).
async fn booked(
    app: &TestApp,
    start: &str,
    people: Vec<Value>,
    email: &str,
) -> (String, String, String) {
    let mut body = booking_body("TST", start, people);
    body["email"] = json!(email);
    let (s, b) = app.book(&body).await;
    assert_eq!(s, 201, "{b}");
    let code = b["code"].as_str().unwrap().to_string();
    let id = app.store.booking_by_code(&code).await.unwrap().id;
    (id, code, b["manage_token"].as_str().unwrap().to_string())
}

async fn view(app: &TestApp, code: &str, token: &str) -> (u16, Value) {
    app.authed(
        Method::GET,
        &format!("/api/v1/bookings/{code}"),
        token,
        None,
    )
    .await
}

/// One sealed column's value of a row (`key` = its primary key).
async fn value_of(
    app: &TestApp,
    table: &str,
    column: &str,
    key: &str,
    position: Option<i64>,
) -> String {
    let sql = match position {
        Some(_) => {
            format!("SELECT {column} AS v FROM {table} WHERE booking_id = $1 AND position = $2")
        }
        None => format!("SELECT {column} AS v FROM {table} WHERE id = $1"),
    };
    let q = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql)).bind(key.to_string());
    let q = match position {
        Some(p) => q.bind(p),
        None => q,
    };
    q.fetch_one(app.store.pool()).await.unwrap()
}

async fn set_value(
    app: &TestApp,
    table: &str,
    column: &str,
    key: &str,
    position: Option<i64>,
    value: &str,
) {
    let sql = match position {
        Some(_) => {
            format!("UPDATE {table} SET {column} = $1 WHERE booking_id = $2 AND position = $3")
        }
        None => format!("UPDATE {table} SET {column} = $1 WHERE id = $2"),
    };
    let q = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(value.to_string())
        .bind(key.to_string());
    let q = match position {
        Some(p) => q.bind(p),
        None => q,
    };
    assert_eq!(
        q.execute(app.store.pool()).await.unwrap().rows_affected(),
        1
    );
}

/// Swaps one sealed column between two rows.
async fn swap(
    app: &TestApp,
    table: &str,
    column: &str,
    a: (&str, Option<i64>),
    b: (&str, Option<i64>),
) {
    let va = value_of(app, table, column, a.0, a.1).await;
    let vb = value_of(app, table, column, b.0, b.1).await;
    set_value(app, table, column, a.0, a.1, &vb).await;
    set_value(app, table, column, b.0, b.1, &va).await;
}

fn shows_nothing_of(v: &Value, words: &[&str]) {
    let text = v.to_string();
    for w in words {
        assert!(!text.contains(w), "{w} shown: {text}");
    }
}

/// The review's attack on bookings: the sealed email, phone and applicants
/// swapped between two bookings (and between two applicants of one
/// booking) through SQL. Each booking now refuses to show anything, with
/// an opaque 500, and each refusal is counted.
async fn sealed_columns_swapped_between_bookings_are_refused(db: TestDb) {
    let app = spawn_app(db).await;
    let start = app.free_slots("TST").await.remove(0);
    let (ana_id, ana_code, ana_token) = booked(
        &app,
        &start,
        vec![person(800), minor(801)],
        "ana@example.co",
    )
    .await;
    let (luis_id, luis_code, luis_token) =
        booked(&app, &start, vec![luis(802)], "luis@example.co").await;
    let (s, v) = view(&app, &ana_code, &ana_token).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["email"], "ana@example.co", "{v}");

    for column in ["email_enc", "phone_enc"] {
        swap(&app, "bookings", column, (&ana_id, None), (&luis_id, None)).await;
    }
    for column in APPLICANT_COLUMNS {
        swap(
            &app,
            "applicants",
            column,
            (&ana_id, Some(0)),
            (&luis_id, Some(0)),
        )
        .await;
    }
    let before = pasaporte::crypto::integrity_failures();
    let (s, v) = view(&app, &ana_code, &ana_token).await;
    assert_eq!(s, 500, "refused, not shown: {v}");
    assert_eq!(v["error"]["code"], "internal", "{v}");
    shows_nothing_of(&v, &["luis@", "Rojas", "Luis", "20000802", "_enc"]);
    let (s, v) = view(&app, &luis_code, &luis_token).await;
    assert_eq!(s, 500, "{v}");
    shows_nothing_of(&v, &["ana@", "Muñoz", "Ana", "10000800"]);
    // The booking's page refuses too.
    let (s, html) = app
        .get_text(&format!("/citas/{ana_code}?clave={ana_token}"))
        .await;
    assert_eq!(s, 500, "{html}");
    assert!(!html.contains("luis@") && !html.contains("Rojas"), "{html}");
    assert!(pasaporte::crypto::integrity_failures() >= before + 2);

    // Put back, the bookings show again; then two applicants of one
    // booking trade names: refused as well.
    for column in ["email_enc", "phone_enc"] {
        swap(&app, "bookings", column, (&ana_id, None), (&luis_id, None)).await;
    }
    for column in APPLICANT_COLUMNS {
        swap(
            &app,
            "applicants",
            column,
            (&ana_id, Some(0)),
            (&luis_id, Some(0)),
        )
        .await;
    }
    let (s, v) = view(&app, &luis_code, &luis_token).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["email"], "luis@example.co", "{v}");
    swap(
        &app,
        "applicants",
        "document_number_enc",
        (&ana_id, Some(0)),
        (&ana_id, Some(1)),
    )
    .await;
    let (s, v) = view(&app, &ana_code, &ana_token).await;
    assert_eq!(s, 500, "{v}");
    shows_nothing_of(&v, &["10000800", "1100000801", "Tomás"]);
}

/// A value sealed the old way (its field name only) is refused where it is
/// read; the re-seal binds it to its row once, and a second pass, or two
/// passes at once, change nothing more.
async fn values_sealed_before_rows_were_bound_are_resealed_once(db: TestDb) {
    let app = spawn_app(db).await;
    let keys = keys().keyring().unwrap();
    assert!(
        app.store
            .data_fix_done(pasaporte::reseal::FIX_NAME)
            .await
            .unwrap(),
        "serve ran the re-seal at start (on an empty database: nothing to do)"
    );
    let start = app.free_slots("TST").await.remove(0);
    let (id, code, token) = booked(&app, &start, vec![person(810)], "ana@example.co").await;
    // As a server before this version wrote them.
    let email_v1 = keys.seal_v1("email", "vieja@example.co").unwrap();
    let surnames_v1 = keys.seal_v1("surnames", "Vieja Antigua").unwrap();
    set_value(&app, "bookings", "email_enc", &id, None, &email_v1).await;
    set_value(
        &app,
        "applicants",
        "surnames_enc",
        &id,
        Some(0),
        &surnames_v1,
    )
    .await;
    let (s, v) = view(&app, &code, &token).await;
    assert_eq!(s, 500, "version 1 is refused by the normal open: {v}");
    shows_nothing_of(&v, &["vieja@", "Vieja"]);

    // Two servers starting at once: each value is written once.
    let (a, b) = tokio::join!(
        pasaporte::reseal::reseal_all(&app.store, &keys),
        pasaporte::reseal::reseal_all(&app.store, &keys)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.resealed + b.resealed, 2, "{a:?} {b:?}");
    assert_eq!(a.unreadable + b.unreadable, 0);
    let email = value_of(&app, "bookings", "email_enc", &id, None).await;
    assert!(email.starts_with("v2."), "{email}");
    let (s, v) = view(&app, &code, &token).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["email"], "vieja@example.co", "{v}");
    assert_eq!(v["applicants"][0]["surnames"], "Vieja Antigua", "{v}");
    assert_eq!(
        pasaporte::reseal::reseal_all(&app.store, &keys)
            .await
            .unwrap(),
        Default::default(),
        "a second pass changes nothing"
    );
    assert_eq!(
        value_of(&app, "bookings", "email_enc", &id, None).await,
        email,
        "not sealed again"
    );
    // Recorded: a later start does not walk the tables again.
    set_value(&app, "bookings", "email_enc", &id, None, &email_v1).await;
    assert_eq!(
        pasaporte::reseal::reseal_legacy_values(&app.store, &keys, 0)
            .await
            .unwrap(),
        Default::default()
    );
}

//! Published capacity over real HTTP: seats offered, booked, free and
//! withheld with the reasons, as JSON, CSV and a public page; the booklet
//! stock and the rationing rule.

use crate::both_databases;
use crate::support::*;
use pasaporte_core::jiff::civil::Date;
use pasaporte_core::jiff::{Span, Timestamp};
use pasaporte_core::production::{BookletType, SerialRange};
use pasaporte_store::testing::{self, TestDb};
use serde_json::Value;

both_databases!(
    a_booked_seat_shows_as_booked_and_not_free,
    a_closure_withholds_the_day_with_its_reason,
    a_holiday_shows_its_name,
    csv_has_one_line_per_office_day,
    bad_parameters_are_named,
    page_in_spanish_and_english,
    low_stock_sets_rationing,
);

fn today() -> Date {
    Timestamp::now().in_tz("America/Bogota").unwrap().date()
}

fn plus(d: Date, n: i64) -> Date {
    d.checked_add(Span::new().days(n)).unwrap()
}

/// Seats of a usual day at the test offices: 48 slots of 50.
const TST_DAY: u64 = 2400;

async fn one_day(app: &TestApp, office: &str, date: Date) -> Value {
    let (s, v) = app
        .get(&format!(
            "/api/v1/capacity?office={office}&from={date}&days=1"
        ))
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["offices"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["offices"][0]["code"], office);
    v["offices"][0]["days"][0].clone()
}

async fn a_booked_seat_shows_as_booked_and_not_free(db: TestDb) {
    let app = spawn_app(db).await;
    let start = app.free_slots("TST").await.remove(0);
    let date: Date = start[..10].parse().unwrap();
    let before = one_day(&app, "TST", date).await;
    assert_eq!(before["date"], date.to_string());
    assert_eq!(before["booked"], 0, "{before}");
    let offered = before["offered"].as_u64().unwrap();
    assert!(offered > 0);
    assert_eq!(before["free"].as_u64().unwrap(), offered);
    let (s, b) = app
        .book(&booking_body("TST", &start, vec![person(1), minor(1)]))
        .await;
    assert_eq!(s, 201, "{b}");
    let after = one_day(&app, "TST", date).await;
    assert_eq!(after["booked"], 2, "{after}");
    assert_eq!(after["free"].as_u64().unwrap(), offered - 2, "{after}");
    // The other office's same day is untouched.
    let other = one_day(&app, "TS2", date).await;
    assert_eq!(other["booked"], 0, "{other}");
}

async fn a_closure_withholds_the_day_with_its_reason(db: TestDb) {
    let (store, url) = testing::fresh(db).await.unwrap();
    pasaporte::import_offices(&store, TEST_OFFICES_CSV)
        .await
        .unwrap();
    let closed = plus(today(), 2);
    store
        .add_closure("TST", closed, "Fumigación de la sede")
        .await
        .unwrap();
    let app = spawn_on(store, url, no_smtp()).await;
    let d = one_day(&app, "TST", closed).await;
    assert_eq!(d["offered"], 0, "{d}");
    assert_eq!(d["booked"], 0, "{d}");
    assert_eq!(d["free"], 0, "{d}");
    assert_eq!(d["withheld"].as_u64(), Some(TST_DAY), "{d}");
    let reasons = d["reasons"].as_array().unwrap();
    assert_eq!(reasons.len(), 1, "{d}");
    assert_eq!(reasons[0]["code"], "closure");
    assert_eq!(reasons[0]["es"], "Oficina cerrada: Fumigación de la sede");
    assert_eq!(reasons[0]["en"], "Office closed: Fumigación de la sede");
    // The next day is a usual day: all offered, nothing withheld, no reason.
    let next = one_day(&app, "TST", plus(closed, 1)).await;
    assert_eq!(next["offered"].as_u64(), Some(TST_DAY), "{next}");
    assert_eq!(next["withheld"], 0, "{next}");
    assert_eq!(next["reasons"].as_array().unwrap().len(), 0, "{next}");
    // The page says it in words.
    let html = app
        .client
        .get(app.url("/capacidad?oficina=TST"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("Oficina cerrada: Fumigación de la sede"),
        "{html}"
    );
}

async fn a_holiday_shows_its_name(db: TestDb) {
    let app = spawn_app(db).await;
    let t = today();
    let holiday = (t.year()..t.year() + 2)
        .flat_map(pasaporte_core::holidays::colombia)
        .find(|h| h.date > t)
        .unwrap();
    let d = one_day(&app, "TST", holiday.date).await;
    assert_eq!(d["offered"], 0, "{d}");
    assert_eq!(d["withheld"].as_u64(), Some(TST_DAY), "{d}");
    let reason = d["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["code"] == "holiday")
        .unwrap_or_else(|| panic!("no holiday reason in {d}"));
    assert_eq!(reason["es"], format!("Festivo: {}", holiday.name));
    assert_eq!(reason["en"], format!("Public holiday: {}", holiday.name));
}

async fn csv_has_one_line_per_office_day(db: TestDb) {
    let app = spawn_app(db).await;
    let (_, offices) = app.get("/api/v1/offices").await;
    let n = offices.as_array().unwrap().len();
    let r = app
        .client
        .get(app.url("/api/v1/capacity.csv?days=31"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()[reqwest::header::CONTENT_TYPE],
        "text/csv; charset=utf-8"
    );
    let text = r.text().await.unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "office,date,offered,booked,free,withheld,reasons");
    assert_eq!(lines.len(), 1 + n * 31, "a month of every office");
    assert!(
        lines[1..].iter().all(|l| l.split(',').count() == 7),
        "{text}"
    );
    // One office, a closed future day: its codes.
    let t = today();
    let holiday = (t.year()..t.year() + 2)
        .flat_map(pasaporte_core::holidays::colombia)
        .find(|h| h.date > t)
        .unwrap();
    let text = app
        .client
        .get(app.url(&format!(
            "/api/v1/capacity.csv?office=TST&from={}&days=1",
            holiday.date
        )))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let line = text.lines().nth(1).unwrap();
    assert!(
        line.starts_with(&format!("TST,{},0,0,0,{TST_DAY},", holiday.date)),
        "{text}"
    );
    assert!(
        line.split(',')
            .nth(6)
            .unwrap()
            .split('|')
            .any(|c| c == "holiday")
    );
}

fn field_codes(v: &Value) -> Vec<(String, String)> {
    v["error"]["fields"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|f| {
                    (
                        f["field"].as_str().unwrap().to_string(),
                        f["code"].as_str().unwrap().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

async fn bad_parameters_are_named(db: TestDb) {
    let app = spawn_app(db).await;
    let pair = |f: &str, c: &str| vec![(f.to_string(), c.to_string())];
    for (query, fields) in [
        ("from=2026-13-01", pair("from", "invalid_date")),
        ("days=0", pair("days", "invalid_days")),
        ("days=32", pair("days", "invalid_days")),
        ("days=abc", pair("days", "invalid_number")),
    ] {
        for path in ["/api/v1/capacity", "/api/v1/capacity.csv"] {
            let (s, v) = app.get(&format!("{path}?{query}")).await;
            assert_eq!(s, 422, "{path}?{query}: {v}");
            assert_eq!(field_codes(&v), fields, "{path}?{query}: {v}");
        }
    }
    let (s, v) = app.get("/api/v1/capacity?from=ayer&days=40&lang=en").await;
    assert_eq!(s, 422, "{v}");
    assert_eq!(v["error"]["code"], "validation_failed");
    assert_eq!(field_codes(&v).len(), 2, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Write the date as YYYY-MM-DD."),
        "{v}"
    );
    let (s, v) = app.get("/api/v1/capacity?office=NOPE").await;
    assert_eq!(s, 404, "{v}");
    assert_eq!(v["error"]["code"], "unknown_office");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("No existe")
    );
    // The OpenAPI document lists both routes.
    let (_, doc) = app.get("/api/v1/openapi.json").await;
    assert!(doc["paths"]["/api/v1/capacity"]["get"].is_object());
    assert!(doc["paths"]["/api/v1/capacity.csv"]["get"].is_object());
}

async fn page_text(app: &TestApp, path: &str) -> (u16, String) {
    let r = app.client.get(app.url(path)).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn page_in_spanish_and_english(db: TestDb) {
    let app = spawn_app(db).await;
    let (s, es) = page_text(&app, "/capacidad").await;
    assert_eq!(s, 200);
    assert!(es.contains("<html lang=\"es\">"));
    assert!(es.contains("Capacidad de citas publicada"));
    assert!(es.contains(
        "<caption id=\"of-TST-caption\">Oficina de pruebas — cupos por día y motivos de los retenidos</caption>"
    ), "{es}");
    assert!(es.contains("<th scope=\"col\">Fecha</th>"));
    assert!(es.contains("<th scope=\"row\">"));
    assert!(es.contains(pasaporte::capacity::RATIONING_RULE_ES));
    assert!(es.contains("href=\"/api/v1/capacity\""));
    assert!(es.contains("href=\"/api/v1/capacity.csv\""));
    let (s, en) = page_text(&app, "/capacidad?lang=en&oficina=TS2&dias=3").await;
    assert_eq!(s, 200);
    assert!(en.contains("<html lang=\"en\">"));
    assert!(en.contains("Published appointment capacity"));
    assert!(en.contains("Oficina de pruebas 2 — seats per day and why any are withheld"));
    assert!(!en.contains("of-TST-caption"), "one office only");
    assert_eq!(
        en.matches("<tr class=\"less\">").count()
            + en.matches("<tr><th scope=\"row\"><time").count(),
        3
    );
    assert!(en.contains(pasaporte::capacity::RATIONING_RULE_EN));
    assert!(
        en.contains("href=\"/api/v1/capacity.csv?office=TS2&#38;days=3\""),
        "{en}"
    );
    // A bad number of days: the error is named and the default range shown.
    let (s, bad) = page_text(&app, "/capacidad?dias=99").await;
    assert_eq!(s, 200);
    assert!(bad.contains("error-summary"));
    assert!(bad.contains("Pida de 1 a 31 días."));
    let (s, _) = page_text(&app, "/capacidad?oficina=NOPE").await;
    assert_eq!(s, 404);
    // The home page links to it.
    let (_, home) = page_text(&app, "/").await;
    assert!(home.contains("href=\"/capacidad?lang=es\""));
}

async fn low_stock_sets_rationing(db: TestDb) {
    let app = spawn_app(db).await;
    let (_, v) = app.get("/api/v1/capacity?days=1").await;
    assert_eq!(v["rationing"]["applies"], false, "{v}");
    assert_eq!(
        v["rationing"]["rule_es"],
        pasaporte::capacity::RATIONING_RULE_ES
    );
    assert_eq!(
        v["rationing"]["rule_en"],
        pasaporte::capacity::RATIONING_RULE_EN
    );
    assert_eq!(v["stock"].as_array().unwrap().len(), 4, "{v}");
    // Three booklets received, two issued today: one left at two a month
    // is 15 days, below the rule's 30.
    use pasaporte_store::{
        allocate_passport_number, personalise_booklet, receive_range, reserve_booklet,
    };
    let now_ms = Timestamp::now().as_millisecond();
    let store = &app.store;
    let mut tx = store.begin_write().await.unwrap();
    let range = SerialRange::parse("AB0000001-AB0000003").unwrap();
    receive_range(
        &mut tx,
        &range,
        BookletType::Pages32,
        "IMPRENTA-BOG",
        "almacen",
        now_ms,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    for n in 1..=2 {
        let id = format!("app-{n}");
        let mut tx = store.begin_write().await.unwrap();
        let serial = reserve_booklet(
            &mut tx,
            BookletType::Pages32,
            "IMPRENTA-BOG",
            &id,
            "planta",
            now_ms,
        )
        .await
        .unwrap()
        .unwrap();
        let number = allocate_passport_number(&mut tx, "AX", &id, &id, now_ms)
            .await
            .unwrap();
        personalise_booklet(&mut tx, &serial, &number, "planta", now_ms)
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }
    let (_, v) = app.get("/api/v1/capacity?days=1").await;
    let line = v["stock"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["booklet_type"] == "pages32")
        .unwrap()
        .clone();
    assert_eq!(line["in_stock"], 1, "{v}");
    assert_eq!(line["days_left"].as_f64(), Some(15.0), "{v}");
    assert_eq!(v["rationing"]["applies"], true, "{v}");
    let (_, html) = page_text(&app, "/capacidad?dias=1").await;
    assert!(html.contains("La regla de racionamiento se aplica ahora"));
}

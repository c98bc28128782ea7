//! The staff console's work pages over real HTTP, on SQLite and PostgreSQL:
//! a clerk checks a booking in, calls it to a counter and captures it through
//! the multipart form; faults re-render without storing; the CSRF token is
//! required; supervisors, auditors and other offices see what they may.

use crate::both_databases;
use crate::support::{TestApp, booking_body, keys, person, spawn_app};
use image::codecs::png::PngEncoder;
use image::{ImageEncoder, Rgb, RgbImage};
use pasaporte::auth::session::token_hash;
use pasaporte::auth::{self, CreatedStaff, NewStaff, totp};
use pasaporte::http::console::CONSOLE_ROUTES;
use pasaporte_core::application::Role;
use pasaporte_core::jiff::{SignedDuration, Timestamp};
use pasaporte_store::testing::TestDb;
use reqwest::header::{CACHE_CONTROL, CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use serde_json::{Value, json};

both_databases!(
    clerk_checks_in_calls_and_captures,
    capture_faults_rerender_and_store_nothing,
    supervisor_auditor_and_other_offices,
    every_console_route_wants_a_session,
    pages_and_the_console_carry_the_content_security_policy,
    clerk_and_supervisor_take_a_citizen_to_approved_in_the_browser,
    sealed_columns_swapped_between_applications_are_refused,
);

const PASSWORD: &str = "caballo cuaderno lluvia tenaz";
const BOUNDARY: &str = "----pasaporte-test-7MA4YWxkTrZu0gW";

pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

async fn add_staff(app: &TestApp, username: &str, role: Role, offices: &[&str]) -> CreatedStaff {
    auth::create_staff(
        &app.store,
        &keys().keyring().unwrap(),
        NewStaff {
            username: username.into(),
            display_name: Some("Persona de pruebas".into()),
            role,
            offices: offices.iter().map(|s| s.to_string()).collect(),
            password: PASSWORD.into(),
        },
        auth::now_ms(),
    )
    .await
    .unwrap()
}

/// A signed-in person: the cookie to send and the form token.
pub(crate) struct Signed {
    pub(crate) cookie: String,
    pub(crate) csrf: String,
}

async fn sign_in(app: &TestApp, s: &CreatedStaff) -> Signed {
    let code = totp::code_at(&s.totp_secret_base32, now_s() + totp::TOTP_STEP_SECONDS).unwrap();
    let r = client()
        .post(app.url("/api/v1/staff/session"))
        .json(&json!({ "username": s.username, "password": PASSWORD, "totp": code }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let set = r
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("pasaporte_staff="))
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let body: Value = r.json().await.unwrap();
    Signed {
        cookie: set,
        csrf: body["csrf_token"].as_str().unwrap().to_string(),
    }
}

pub(crate) async fn page(app: &TestApp, s: &Signed, path: &str) -> (u16, String) {
    let r = client()
        .get(app.url(path))
        .header(COOKIE, &s.cookie)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    if status == 200 {
        assert_eq!(r.headers()[CACHE_CONTROL], "no-store", "{path}");
    }
    (status, r.text().await.unwrap())
}

pub(crate) fn form_body(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", auth::enc(k), auth::enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

pub(crate) async fn post_form(
    app: &TestApp,
    s: &Signed,
    path: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let mut all = vec![("csrf", s.csrf.as_str())];
    all.extend_from_slice(fields);
    client()
        .post(app.url(path))
        .header(COOKIE, &s.cookie)
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(form_body(&all))
        .send()
        .await
        .unwrap()
}

pub(crate) fn location(r: &reqwest::Response) -> String {
    r.headers()[LOCATION].to_str().unwrap().to_string()
}

/// A portrait-like picture: a light, grainy background and a darker oval.
fn portrait_png(w: u32, h: u32) -> Vec<u8> {
    let mut seed = 7u64;
    let img = RgbImage::from_fn(w, h, |x, y| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let n = (seed >> 56) as u8 / 8;
        let (cx, cy) = (w as f64 / 2.0, h as f64 * 0.45);
        let (rx, ry) = (w as f64 * 0.3, h as f64 * 0.35);
        let d = ((x as f64 - cx) / rx).powi(2) + ((y as f64 - cy) / ry).powi(2);
        if d < 1.0 {
            Rgb([160 + n, 110 + n, 90 + n])
        } else {
            Rgb([220 + n / 2, 225 + n / 2, 230 + n / 2])
        }
    });
    png(&img)
}

/// White paper with a few dark strokes.
fn signature_png(w: u32, h: u32) -> Vec<u8> {
    let img = RgbImage::from_fn(w, h, |x, y| {
        let wave = (h as f64 / 2.0) + (x as f64 / 20.0).sin() * (h as f64 / 4.0);
        if (y as f64 - wave).abs() < 3.0 && x > w / 10 && x < w * 9 / 10 {
            Rgb([10, 10, 40])
        } else {
            Rgb([255, 255, 255])
        }
    });
    png(&img)
}

fn png(img: &RgbImage) -> Vec<u8> {
    let mut v = Vec::new();
    PngEncoder::new(&mut v)
        .write_image(
            img.as_raw(),
            img.width(),
            img.height(),
            image::ExtendedColorType::Rgb8,
        )
        .unwrap();
    v
}

/// A `multipart/form-data` body (reqwest is built without `multipart`).
fn multipart(fields: &[(&str, String)], files: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut b = Vec::new();
    for (name, value) in fields {
        b.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    for (name, bytes) in files {
        b.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{name}.png\"\r\nContent-Type: image/png\r\n\r\n"
            )
            .as_bytes(),
        );
        b.extend_from_slice(bytes);
        b.extend_from_slice(b"\r\n");
    }
    b.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    b
}

fn capture_fields(surnames: &str) -> Vec<(&'static str, String)> {
    vec![
        ("passport_type", "ordinario".into()),
        ("surnames", surnames.into()),
        ("given_names", "Ana María".into()),
        ("birth_date", "1985-04-02".into()),
        ("birth_place", "Bogotá".into()),
        ("sex", "F".into()),
        ("nationality", "COL".into()),
        ("email", "ana@example.co".into()),
        ("phone", String::new()),
        ("fingerprint.device_id", "reader-01".into()),
        ("fingerprint.quality", "85".into()),
        ("fingerprint.template_sha256", "ab".repeat(32)),
        ("fingerprint.fingers_captured", "10".into()),
        (
            "fingerprint.captured_at_ms",
            Timestamp::now().as_millisecond().to_string(),
        ),
        ("reason", "first".into()),
        ("consent", String::new()),
    ]
}

async fn post_capture(app: &TestApp, s: &Signed, id: &str, body: Vec<u8>) -> reqwest::Response {
    client()
        .post(app.url(&format!("/console/applications/{id}/capture")))
        .header(COOKIE, &s.cookie)
        .header(
            CONTENT_TYPE,
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(body)
        .send()
        .await
        .unwrap()
}

/// Books the soonest free TST slot that check-in already accepts (it opens
/// two hours before the appointment); returns the booking code.
async fn book_soon(app: &TestApp, n: u64) -> String {
    let (_, v) = app.get("/api/v1/offices/TST/slots?days=2").await;
    let now = Timestamp::now();
    let start = v["slots"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["remaining"] == s["capacity"])
        .map(|s| s["start"].as_str().unwrap().to_string())
        .find(|s| {
            let t: Timestamp = s.parse().unwrap();
            t > now + SignedDuration::from_mins(1) && t < now + SignedDuration::from_mins(110)
        })
        .expect("a free slot within two hours");
    let (status, b) = app
        .book(&booking_body("TST", &start, vec![person(n)]))
        .await;
    assert_eq!(status, 201, "{b}");
    b["code"].as_str().unwrap().to_string()
}

/// Checks a booking in and calls it to a counter through the day page;
/// returns the application id and its ticket.
async fn checked_in_and_called(app: &TestApp, clerk: &Signed, n: u64) -> (String, String) {
    let code = book_soon(app, n).await;
    // Odd people give the booking code, even ones their document.
    let number = format!("{}", 10_000_000 + n);
    let by: Vec<(&str, &str)> = if n % 2 == 1 {
        vec![("code", &code)]
    } else {
        vec![
            ("code", ""),
            ("document_type", "cedula_ciudadania"),
            ("document_number", &number),
        ]
    };
    let r = post_form(app, clerk, "/console/office/TST/check-in", &by).await;
    assert_eq!(r.status(), 303);
    let to = location(&r);
    assert!(to.contains("done=check_in"), "{to}");
    let (status, html) = page(app, clerk, &to).await;
    assert_eq!(status, 200);
    let ticket = html
        .split("Turnos: ")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap()
        .trim()
        .to_string();
    assert!(ticket.starts_with("C-"), "{ticket}");
    assert!(html.contains(&code), "the booking is listed");
    assert!(html.contains("registrada"), "booking status shown");
    let r = post_form(
        app,
        clerk,
        "/console/office/TST/call",
        &[("application", ""), ("counter", "Ventanilla 3")],
    )
    .await;
    assert_eq!(r.status(), 303);
    let to = location(&r);
    let id = to
        .strip_prefix("/console/applications/")
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .to_string();
    let (status, html) = page(app, clerk, &to).await;
    assert_eq!(status, 200);
    assert!(html.contains("Ventanilla 3"));
    assert!(html.contains("en espera"), "checked in");
    assert!(
        html.contains("enctype=\"multipart/form-data\""),
        "capture form"
    );
    assert!(
        !html.contains(&format!("{}", 10_000_000 + n)),
        "document masked"
    );
    (id, ticket)
}

async fn state_of(app: &TestApp, id: &str) -> String {
    app.store.application(id).await.unwrap().state
}

async fn clerk_checks_in_calls_and_captures(db: TestDb) {
    let app = spawn_app(db).await;
    let ana = add_staff(&app, "ana", Role::Clerk, &["TST"]).await;
    let clerk = sign_in(&app, &ana).await;
    let (status, html) = page(&app, &clerk, "/console/office/TST/today").await;
    assert_eq!(status, 200);
    assert!(html.contains("<html lang=\"es\""));
    assert!(html.contains("America/Bogota"));
    assert!(html.contains("Registro civil"));
    let (id, ticket) = checked_in_and_called(&app, &clerk, 1).await;
    let (_, html) = page(&app, &clerk, "/console/office/TST/today").await;
    assert!(
        html.contains(&ticket) && html.contains(&id),
        "the queue links to it"
    );

    let mut fields = capture_fields("Muñoz García");
    fields.push(("csrf", clerk.csrf.clone()));
    let body = multipart(
        &fields,
        &[
            ("photo", portrait_png(600, 750)),
            ("signature", signature_png(600, 200)),
        ],
    );
    let r = post_capture(&app, &clerk, &id, body).await;
    let status = r.status();
    let to = r
        .headers()
        .get(LOCATION)
        .map(|v| v.to_str().unwrap().to_string());
    assert_eq!(status, 303, "{}", r.text().await.unwrap());
    let (status, html) = page(&app, &clerk, &to.unwrap()).await;
    assert_eq!(status, 200);
    assert!(html.contains("datos tomados"), "captured");
    assert!(html.contains("<td>ana</td>"), "history names the clerk");
    assert!(html.contains(&format!("/console/applications/{id}/photo.png")));
    // Without a civil registry configured, the next worker round (any
    // moment now) moves it on to the visible "pending registry" queue:
    // either state is the captured application.
    let state = state_of(&app, &id).await;
    assert!(
        state == "captured" || state == "pending_registry",
        "{state}"
    );
    let r = client()
        .get(app.url(&format!("/console/applications/{id}/photo.png")))
        .header(COOKIE, &clerk.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()[CONTENT_TYPE], "image/png");
    assert_eq!(r.headers()[CACHE_CONTROL], "no-store");
    assert!(r.bytes().await.unwrap().starts_with(b"\x89PNG"));

    // A walk-in gets a T ticket; a walk-in with faults names them.
    let r = post_form(
        &app,
        &clerk,
        "/console/office/TST/walk-in",
        &[
            ("document_type", "cedula_ciudadania"),
            ("document_number", "52000111"),
            ("surnames", "Rojas Díaz"),
            ("given_names", "Luis"),
            ("birth_date", "1970-01-15"),
        ],
    )
    .await;
    assert_eq!(r.status(), 303);
    let to = location(&r);
    assert!(to.contains("done=walk_in&tickets=T-001"), "{to}");
    assert!(
        !to.contains("52000111") && !to.contains("Rojas"),
        "no personal data in the URL"
    );
    let (_, html) = page(&app, &clerk, &to).await;
    assert!(html.contains("T-001"));
    let r = post_form(
        &app,
        &clerk,
        "/console/office/TST/walk-in",
        &[
            ("document_type", "cedula_ciudadania"),
            ("document_number", "52000112"),
            ("surnames", ""),
            ("given_names", "Luis"),
            ("birth_date", "1970-01-15"),
        ],
    )
    .await;
    assert_eq!(r.status(), 422);
    let html = r.text().await.unwrap();
    assert!(html.contains("href=\"#walkin-surnames\""));
    assert!(html.contains("value=\"52000112\""), "typed values kept");

    // English on request, with the language kept in forms and links.
    let (status, html) = page(&app, &clerk, &format!("/console/applications/{id}?lang=en")).await;
    assert_eq!(status, 200);
    assert!(html.contains("<html lang=\"en\""));
    assert!(html.contains("captured") && html.contains("History"));
    let (status, html) = page(&app, &clerk, "/console/office/TST/today?lang=en").await;
    assert_eq!(status, 200);
    assert!(html.contains("<html lang=\"en\""));
    assert!(html.contains("Walk-in") && html.contains("/console/office/TST/check-in?lang=en"));
}

async fn capture_faults_rerender_and_store_nothing(db: TestDb) {
    let app = spawn_app(db).await;
    let ana = add_staff(&app, "ana", Role::Clerk, &["TST"]).await;
    let clerk = sign_in(&app, &ana).await;
    let (id, _) = checked_in_and_called(&app, &clerk, 2).await;

    let mut fields = capture_fields("");
    fields.push(("csrf", clerk.csrf.clone()));
    let body = multipart(
        &fields,
        &[
            ("photo", portrait_png(300, 375)),
            ("signature", signature_png(600, 200)),
        ],
    );
    let r = post_capture(&app, &clerk, &id, body).await;
    assert_eq!(r.status(), 422);
    let html = r.text().await.unwrap();
    assert!(html.contains("role=\"alert\""), "error summary");
    assert!(html.contains("href=\"#capture-surnames\""), "{html}");
    assert!(html.contains("href=\"#capture-photo\""), "{html}");
    assert!(html.contains("id=\"capture-surnames-error\""));
    assert!(html.contains("id=\"capture-photo-error\""));
    assert!(html.contains("value=\"reader-01\""), "typed values kept");
    assert_eq!(state_of(&app, &id).await, "checked_in");
    assert!(
        app.store
            .application(&id)
            .await
            .unwrap()
            .photo_enc
            .is_none()
    );

    // Without the csrf part: refused before anything is read into the store.
    let body = multipart(
        &capture_fields("Muñoz García"),
        &[
            ("photo", portrait_png(600, 750)),
            ("signature", signature_png(600, 200)),
        ],
    );
    let r = post_capture(&app, &clerk, &id, body).await;
    assert_eq!(r.status(), 403);
    assert_eq!(state_of(&app, &id).await, "checked_in");
    // A wrong token, and a cross-site post, are refused alike.
    let mut fields = capture_fields("Muñoz García");
    fields.push(("csrf", "x".repeat(clerk.csrf.len())));
    let body = multipart(&fields, &[("photo", portrait_png(600, 750))]);
    assert_eq!(post_capture(&app, &clerk, &id, body).await.status(), 403);
    assert_eq!(state_of(&app, &id).await, "checked_in");

    // A plain form without its token is refused too.
    let r = client()
        .post(app.url("/console/office/TST/call"))
        .header(COOKIE, &clerk.cookie)
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body("counter=V1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    // A check-in with nothing typed names the field.
    let r = post_form(
        &app,
        &clerk,
        "/console/office/TST/check-in",
        &[("code", "")],
    )
    .await;
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("href=\"#checkin-code\""));
}

async fn supervisor_auditor_and_other_offices(db: TestDb) {
    let app = spawn_app(db).await;
    let ana = add_staff(&app, "ana", Role::Clerk, &["TST"]).await;
    let clerk = sign_in(&app, &ana).await;
    let (id, ticket) = checked_in_and_called(&app, &clerk, 3).await;
    // The registry was unavailable: the application waits for it.
    let row = app.store.application(&id).await.unwrap();
    let now = Timestamp::now().as_millisecond();
    let mut tx = app.store.begin_write().await.unwrap();
    pasaporte_store::save_state(
        &mut tx,
        &pasaporte_store::StateChange {
            id: &id,
            version: row.version,
            state: "pending_registry",
            state_since_ms: now,
            deadline_ms: None,
            queue: "registry_retry",
            now_ms: now,
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let sofia = add_staff(&app, "sofia", Role::Supervisor, &["TST"]).await;
    let sup = sign_in(&app, &sofia).await;
    let (status, html) = page(&app, &sup, "/console/supervisor").await;
    assert_eq!(status, 200);
    let pending = html.split("id=\"pending-registry\"").nth(1).unwrap();
    let pending = pending.split("id=\"waivers\"").next().unwrap();
    assert!(pending.contains(&ticket), "{html}");
    assert!(pending.contains(&format!("/console/applications/{id}")));
    assert!(html.contains("Registro civil"));
    let (status, _) = page(&app, &sup, "/console/supervisor?office=TST").await;
    assert_eq!(status, 200);
    let (status, _) = page(&app, &sup, "/console/supervisor?office=TS2").await;
    assert_eq!(status, 404, "not the supervisor's office");

    // The application page offers the override; a reason moves it on.
    let (_, html) = page(&app, &sup, &format!("/console/applications/{id}")).await;
    assert!(html.contains(&format!("/console/applications/{id}/registry-override")));
    let r = post_form(
        &app,
        &sup,
        &format!("/console/applications/{id}/registry-override"),
        &[("reason", "")],
    )
    .await;
    assert_eq!(r.status(), 422, "a reason is required");
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("href=\"#override-reason\"")
    );
    let r = post_form(
        &app,
        &sup,
        &format!("/console/applications/{id}/registry-override"),
        &[("reason", "Registro civil caído desde la mañana")],
    )
    .await;
    assert_eq!(r.status(), 303);
    assert_eq!(state_of(&app, &id).await, "registry_verified");
    // The clerk asks for a fee waiver; the supervisor sees it and grants it.
    let (_, html) = page(&app, &clerk, &format!("/console/applications/{id}")).await;
    assert!(html.contains(&format!("/console/applications/{id}/waiver?")));
    let r = post_form(
        &app,
        &clerk,
        &format!("/console/applications/{id}/waiver"),
        &[("reason", "Persona en situación de calle, certificada")],
    )
    .await;
    assert_eq!(r.status(), 303);
    let (_, html) = page(&app, &sup, "/console/supervisor").await;
    let waivers = html.split("id=\"waivers\"").nth(1).unwrap();
    assert!(
        waivers
            .split("id=\"overdue\"")
            .next()
            .unwrap()
            .contains(&ticket)
    );
    let (_, html) = page(&app, &sup, &format!("/console/applications/{id}")).await;
    assert!(html.contains("solicitada"), "waiver status shown");
    let r = post_form(
        &app,
        &sup,
        &format!("/console/applications/{id}/waiver/decision"),
        &[("approve", "true")],
    )
    .await;
    assert_eq!(r.status(), 303);
    let state = state_of(&app, &id).await;
    assert!(
        ["paid", "flagged", "approved"].contains(&state.as_str()),
        "{state}"
    );

    // Signed in 11 minutes ago: a decision asks for the password again,
    // and comes back to the application's page.
    let token = sup.cookie.split_once('=').unwrap().1;
    app.store
        .set_session_authenticated_at(&token_hash(token), auth::now_ms() - 11 * 60_000)
        .await
        .unwrap();
    let r = post_form(
        &app,
        &sup,
        &format!("/console/applications/{id}/decision"),
        &[("decision", "cancel"), ("reason", "Prueba")],
    )
    .await;
    assert_eq!(r.status(), 303);
    assert_eq!(
        location(&r),
        format!("/console/reauth?next=%2Fconsole%2Fapplications%2F{id}%3Flang%3Des&lang=es")
    );
    assert_eq!(state_of(&app, &id).await, state, "nothing changed");
    let (status, _) = page(&app, &sup, &format!("/console/applications/{id}")).await;
    assert_eq!(status, 200, "reading needs no fresh sign-in");
    // A clerk may not take that decision.
    let r = post_form(
        &app,
        &clerk,
        &format!("/console/applications/{id}/decision"),
        &[("decision", "cancel"), ("reason", "Prueba")],
    )
    .await;
    assert_eq!(r.status(), 403);

    let (status, _) = page(&app, &sup, "/console/reconciliation?office=TST").await;
    assert_eq!(status, 200);
    let r = client()
        .get(app.url("/console/reconciliation.csv?office=TST"))
        .header(COOKIE, &sup.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().starts_with("reference,application"));

    let aud = add_staff(&app, "auditor", Role::Auditor, &["*"]).await;
    let auditor = sign_in(&app, &aud).await;
    let (status, _) = page(&app, &auditor, "/console/office/TST/today").await;
    assert_eq!(status, 403);
    let (status, html) = page(&app, &auditor, "/console/audit").await;
    assert_eq!(status, 200);
    assert!(html.contains("pasaporte audit verify"));
    let (status, html) = page(&app, &auditor, &format!("/console/applications/{id}")).await;
    assert_eq!(status, 200, "auditors read applications");
    assert!(!html.contains("<form method=\"post\" action=\"/console/applications"));
    let (status, _) = page(&app, &clerk, "/console/audit").await;
    assert_eq!(status, 403);

    let bea = add_staff(&app, "bea", Role::Clerk, &["TS2"]).await;
    let other = sign_in(&app, &bea).await;
    let (status, _) = page(&app, &other, "/console/office/TST/today").await;
    assert_eq!(status, 404);
    let (status, _) = page(&app, &other, "/console/office/NOPE/today").await;
    assert_eq!(status, 404);
    let (status, _) = page(&app, &other, &format!("/console/applications/{id}")).await;
    assert_eq!(status, 404);
    let r = post_form(
        &app,
        &other,
        "/console/office/TST/call",
        &[("counter", "V1")],
    )
    .await;
    assert_eq!(r.status(), 404);
}

async fn every_console_route_wants_a_session(db: TestDb) {
    let app = spawn_app(db).await;
    for (method, path, _) in CONSOLE_ROUTES {
        let path = path.replace("{code}", "TST").replace("{id}", "x");
        let r = client()
            .request(method.clone(), app.url(&path))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303, "{method} {path}");
        assert!(location(&r).starts_with("/console/sign-in?next="), "{path}");
    }
    // Each route asks the policy table for its action, before reading a
    // body (no csrf field is sent here) and before looking anything up.
    for role in [Role::Administrator, Role::Auditor, Role::Clerk] {
        let who = add_staff(&app, role.as_str(), role, &["*"]).await;
        let s = sign_in(&app, &who).await;
        for (method, path, action) in CONSOLE_ROUTES {
            let path = path.replace("{code}", "TST").replace("{id}", "x");
            let r = client()
                .request(method.clone(), app.url(&path))
                .header(COOKIE, &s.cookie)
                .send()
                .await
                .unwrap();
            let allowed = pasaporte_core::policy::allows(role, *action);
            let status = r.status().as_u16();
            let what = format!("{role:?} {method} {path}: {status}");
            if !allowed {
                assert_eq!(status, 403, "{what}");
            } else if *method == reqwest::Method::POST {
                // Allowed, but without a token (or a multipart body): refused.
                assert!(status == 403 || status == 400, "{what}");
            } else {
                assert_ne!(status, 403, "{what}");
            }
        }
    }
}

/// The whole walk in the browser, with the civil registry and the payment
/// gateway simulators: check-in, call, capture, registry, payment, then a
/// clerk approves; a flagged one is decided by a supervisor.
async fn clerk_and_supervisor_take_a_citizen_to_approved_in_the_browser(db: TestDb) {
    use pasaporte_core::person::{DocumentNumber, DocumentType};
    use pasaporte_core::registry::{RegistryQuery, RegistryRecord, Sex, VitalStatus};
    let w = crate::support::spawn_world(db).await;
    let app = &w.app;
    let clerk = sign_in(app, &add_staff(app, "ana", Role::Clerk, &["TST"]).await).await;
    let sup = sign_in(
        app,
        &add_staff(app, "sofia", Role::Supervisor, &["TST"]).await,
    )
    .await;
    let kind = DocumentType::CedulaCiudadania;
    for n in [3, 5] {
        w.registry
            .controls
            .add_person(
                &RegistryQuery {
                    document_type: kind,
                    document_number: DocumentNumber::parse(
                        kind,
                        &format!("{}", 10_000_000 + n),
                        "n",
                    )
                    .unwrap(),
                },
                RegistryRecord {
                    surnames: "MUNOZ GARCIA".into(),
                    given_names: "ANA MARIA".into(),
                    birth_date: pasaporte_core::jiff::civil::date(1985, 4, 2),
                    birth_place: "BOGOTA".into(),
                    sex: Sex::F,
                    nationality: "COL".into(),
                    status: VitalStatus::Alive,
                    document_cancelled: false,
                },
            )
            .unwrap();
    }
    let wait_for = |id: String, state: &'static str| async move {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
        while state_of(app, &id).await != state {
            assert!(tokio::time::Instant::now() < deadline, "{id} never {state}");
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
    };
    let mut ids = Vec::new();
    for n in [3, 5] {
        let (id, _) = checked_in_and_called(app, &clerk, n).await;
        let mut fields = capture_fields("Muñoz García");
        fields.push(("csrf", clerk.csrf.clone()));
        let body = multipart(
            &fields,
            &[
                ("photo", portrait_png(600, 750)),
                ("signature", signature_png(600, 200)),
            ],
        );
        let r = post_capture(app, &clerk, &id, body).await;
        assert_eq!(r.status(), 303);
        wait_for(id.clone(), "registry_verified").await;
        let reference = loop {
            if let Some(r) = app.store.payment_reference_of(&id).await.unwrap() {
                break r;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        };
        let r = client()
            .post(format!(
                "{}/v1/references/{}/pay",
                w.payments.url(),
                reference.reference
            ))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
        wait_for(id.clone(), "paid").await;
        ids.push(id);
    }
    // The clerk approves the first from its page.
    let (status, html) = page(app, &clerk, &format!("/console/applications/{}", ids[0])).await;
    assert_eq!(status, 200);
    assert!(html.contains("pagada, por decidir"), "state shown");
    let r = post_form(
        app,
        &clerk,
        &format!("/console/applications/{}/approve", ids[0]),
        &[],
    )
    .await;
    assert_eq!(r.status(), 303);
    let (_, html) = page(app, &clerk, &location(&r)).await;
    assert!(html.contains("aprobada"), "approved");
    assert_eq!(state_of(app, &ids[0]).await, "approved");
    // The supervisor decides the second with a reason.
    let r = post_form(
        app,
        &sup,
        &format!("/console/applications/{}/decision", ids[1]),
        &[
            ("decision", "approve"),
            ("reason", "Revisado en ventanilla"),
        ],
    )
    .await;
    assert_eq!(r.status(), 303, "{:?}", r.headers());
    assert_eq!(state_of(app, &ids[1]).await, "approved");
}

/// Every page, console page and API answer says what the browser may load
/// and that no other site may frame it.
async fn pages_and_the_console_carry_the_content_security_policy(db: TestDb) {
    let app = spawn_app(db).await;
    let sup = sign_in(
        &app,
        &add_staff(&app, "sofia", Role::Supervisor, &["TST"]).await,
    )
    .await;
    for (path, cookie) in [
        ("/", None),
        ("/oficinas/TST", None),
        ("/capacidad", None),
        ("/sorteos", None),
        ("/citas/ZZZZZZZZ?t=x", None),
        ("/console/sign-in", None),
        ("/console/supervisor", Some(&sup.cookie)),
        ("/console/production", Some(&sup.cookie)),
        ("/api/v1/offices", None),
    ] {
        let mut req = client().get(app.url(path));
        if let Some(c) = cookie {
            req = req.header(COOKIE, c);
        }
        let r = req.send().await.unwrap();
        let what = format!("{path}: {}", r.status());
        let csp = r
            .headers()
            .get("content-security-policy")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        for part in [
            "default-src 'none'",
            "img-src 'self' data:",
            "style-src 'self' 'unsafe-inline'",
            "form-action 'self'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
        ] {
            assert!(csp.contains(part), "{what}: {csp:?} lacks {part}");
        }
        assert!(
            !csp.contains("script-src"),
            "{what}: no script is ever allowed"
        );
        assert_eq!(
            r.headers().get("x-frame-options").map(|v| v.as_bytes()),
            Some(&b"DENY"[..]),
            "{what}"
        );
    }
}

/// Captures an application with `surnames` and a portrait of `width`.
async fn captured(app: &TestApp, clerk: &Signed, id: &str, surnames: &str, width: u32) {
    let mut fields = capture_fields(surnames);
    fields.push(("csrf", clerk.csrf.clone()));
    let body = multipart(
        &fields,
        &[
            ("photo", portrait_png(width, width * 5 / 4)),
            ("signature", signature_png(600, 200)),
        ],
    );
    let r = post_capture(app, clerk, id, body).await;
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());
}

/// The review's attack (issue 12 item 4): the sealed identity, the photo
/// and its digest swapped between two applications with SQL. Before, each
/// application showed the other person; now each refuses, with an opaque
/// answer, and the refusal is counted (and logged at ERROR with the place).
async fn sealed_columns_swapped_between_applications_are_refused(db: TestDb) {
    let app = spawn_app(db).await;
    let ana = add_staff(&app, "ana", Role::Clerk, &["TST"]).await;
    let clerk = sign_in(&app, &ana).await;
    let (first, _) = checked_in_and_called(&app, &clerk, 1).await;
    captured(&app, &clerk, &first, "Muñoz García", 600).await;
    let (second, _) = checked_in_and_called(&app, &clerk, 3).await;
    captured(&app, &clerk, &second, "Rojas Díaz", 640).await;
    let staff_json = |id: &str| {
        client()
            .get(app.url(&format!("/api/v1/staff/applications/{id}")))
            .header(COOKIE, &clerk.cookie)
            .send()
    };
    let photo = |id: &str| {
        client()
            .get(app.url(&format!("/console/applications/{id}/photo.png")))
            .header(COOKIE, &clerk.cookie)
            .send()
    };
    let (status, html) = page(&app, &clerk, &format!("/console/applications/{first}")).await;
    assert_eq!(status, 200);
    assert!(html.contains("Muñoz García") && !html.contains("Rojas Díaz"));
    let v: Value = staff_json(&first).await.unwrap().json().await.unwrap();
    assert_eq!(v["surnames"], "Muñoz García", "{v}");
    let own_photo = photo(&first).await.unwrap().bytes().await.unwrap();
    assert!(own_photo.starts_with(b"\x89PNG"));

    // The swap, through SQL, of the sealed columns and the photo's digest.
    let a = app.store.application(&first).await.unwrap();
    let b = app.store.application(&second).await.unwrap();
    let mut tx = app.store.begin_write().await.unwrap();
    for (id, from) in [(&first, &b), (&second, &a)] {
        sqlx::query(
            "UPDATE applications SET identity_enc = $2, photo_enc = $3, photo_sha256 = $4 WHERE id = $1",
        )
        .bind(id.as_str())
        .bind(from.identity_enc.clone())
        .bind(from.photo_enc.clone())
        .bind(from.photo_sha256.clone())
        .execute(&mut *tx)
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();

    let before = pasaporte::crypto::integrity_failures();
    for (id, other) in [(&first, "Rojas"), (&second, "Muñoz")] {
        let (status, html) = page(&app, &clerk, &format!("/console/applications/{id}")).await;
        assert_eq!(status, 500, "refused, not shown: {html}");
        assert!(!html.contains(other) && !html.contains("Díaz") && !html.contains("García"));
        let r = staff_json(id).await.unwrap();
        assert_eq!(r.status(), 500);
        let body = r.text().await.unwrap();
        assert!(body.contains("\"internal\""), "{body}");
        assert!(
            !body.contains(other) && !body.contains("identity_enc"),
            "opaque: {body}"
        );
        let r = photo(id).await.unwrap();
        assert_eq!(r.status(), 500, "the other person's portrait is not served");
        assert!(!r.bytes().await.unwrap().starts_with(b"\x89PNG"));
    }
    assert!(
        pasaporte::crypto::integrity_failures() >= before + 4,
        "each refusal is counted"
    );

    // Only the digest moved (the photos stay put): the photo is refused too.
    let mut tx = app.store.begin_write().await.unwrap();
    for (id, from) in [(&first, &a), (&second, &b)] {
        sqlx::query(
            "UPDATE applications SET identity_enc = $2, photo_enc = $3, photo_sha256 = $4 WHERE id = $1",
        )
        .bind(id.as_str())
        .bind(from.identity_enc.clone())
        .bind(from.photo_enc.clone())
        .bind(if id == &first { b.photo_sha256.clone() } else { a.photo_sha256.clone() })
        .execute(&mut *tx)
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    let (status, html) = page(&app, &clerk, &format!("/console/applications/{first}")).await;
    assert_eq!(status, 200, "the identity is back where it belongs");
    assert!(html.contains("Muñoz García"));
    assert_eq!(photo(&first).await.unwrap().status(), 500);
}

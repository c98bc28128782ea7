//! Staff sign-in over real HTTP: cookies, identical refusals, lock-out, CSRF,
//! re-authentication and sign-out, on SQLite and PostgreSQL.

use crate::both_databases;
use crate::support::{DATA_KEYS, LOOKUP_KEY, TestApp, keys, no_smtp, spawn_app, spawn_on};
use pasaporte::auth::session::token_hash;
use pasaporte::auth::{self, CreatedStaff, NewStaff, totp};
use pasaporte_core::application::Role;
use pasaporte_store::testing::TestDb;
use reqwest::header::{CONTENT_TYPE, COOKIE, LOCATION, ORIGIN, SET_COOKIE};
use serde_json::{Value, json};

both_databases!(
    sign_in_sets_a_strict_cookie_and_stores_no_token,
    every_refusal_looks_the_same,
    five_failures_lock_even_the_right_password,
    forms_and_api_writes_need_the_csrf_token,
    stale_sign_in_needs_reauthentication,
    sign_out_ends_the_session,
    staff_add_command_creates_an_account_that_signs_in,
);

const PASSWORD: &str = "caballo cuaderno lluvia tenaz";

const FORM: &str = "application/x-www-form-urlencoded";

/// An urlencoded form body (reqwest is built without its `form` feature).
fn form_body<K: AsRef<str>, V: AsRef<str>>(fields: &[(K, V)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", auth::enc(k.as_ref()), auth::enc(v.as_ref())))
        .collect::<Vec<_>>()
        .join("&")
}

fn now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The code `steps` time steps from now (0 now, 1 the next one: still
/// accepted, and later than now, so two sign-ins in one step both work).
fn code(s: &CreatedStaff, steps: u64) -> String {
    totp::code_at(
        &s.totp_secret_base32,
        now_s() + steps * totp::TOTP_STEP_SECONDS,
    )
    .unwrap()
}

async fn add_staff(app: &TestApp, username: &str, role: Role, offices: &[&str]) -> CreatedStaff {
    auth::create_staff(
        &app.store,
        &keys().keyring().unwrap(),
        NewStaff {
            username: username.into(),
            display_name: Some("Ana María Muñoz".into()),
            role,
            offices: offices.iter().map(|s| s.to_string()).collect(),
            password: PASSWORD.into(),
        },
        auth::now_ms(),
    )
    .await
    .unwrap()
}

/// A client that shows redirects instead of following them.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

struct Signed {
    token: String,
    csrf: String,
    set_cookie: String,
}

impl Signed {
    fn cookie(&self) -> String {
        format!("pasaporte_staff={}", self.token)
    }
}

fn set_cookie(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_string)
}

fn cookie_value(set_cookie: &str) -> String {
    set_cookie
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_string()
}

async fn try_sign_in(
    app: &TestApp,
    username: &str,
    password: &str,
    totp: &str,
) -> reqwest::Response {
    client()
        .post(app.url("/api/v1/staff/session"))
        .json(&json!({ "username": username, "password": password, "totp": totp }))
        .send()
        .await
        .unwrap()
}

async fn sign_in(app: &TestApp, s: &CreatedStaff, steps: u64) -> Signed {
    let r = try_sign_in(app, &s.username, PASSWORD, &code(s, steps)).await;
    assert_eq!(r.status(), 200);
    let set_cookie = set_cookie(&r, "pasaporte_staff").expect("session cookie");
    let body: Value = r.json().await.unwrap();
    Signed {
        token: cookie_value(&set_cookie),
        csrf: body["csrf_token"].as_str().unwrap().to_string(),
        set_cookie,
    }
}

async fn me(app: &TestApp, cookie: &str) -> (u16, Value) {
    let r = client()
        .get(app.url("/api/v1/staff/me"))
        .header(COOKIE, cookie)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn sign_in_sets_a_strict_cookie_and_stores_no_token(db: TestDb) {
    let app = spawn_app(db).await;
    let ana = add_staff(&app, "ana.lopez", Role::Clerk, &["TST"]).await;

    let r = try_sign_in(&app, "ana.lopez", PASSWORD, &code(&ana, 0)).await;
    assert_eq!(r.status(), 200);
    let sc = set_cookie(&r, "pasaporte_staff").unwrap();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(sc.split("; ").any(|a| a == attr), "{attr} in {sc}");
    }
    assert!(!sc.contains("Secure"), "plain http public URL: {sc}");
    let token = cookie_value(&sc);
    assert_eq!(token.len(), 43, "32 random bytes, base64url");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["staff"]["id"], ana.id.as_str());
    assert_eq!(body["staff"]["username"], "ana.lopez");
    assert_eq!(body["staff"]["role"], "clerk");
    assert_eq!(body["staff"]["offices"], json!(["TST"]));
    let csrf = body["csrf_token"].as_str().unwrap();
    assert!(csrf.len() >= 32);

    let (status, me_body) = me(&app, &format!("pasaporte_staff={token}")).await;
    assert_eq!(status, 200);
    assert_eq!(me_body["csrf_token"], csrf);

    // Without a session: 401 JSON for the API, a redirect for pages.
    let (status, body) = me(&app, "pasaporte_staff=not-a-session").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("unauthenticated"))
    );
    let r = client().get(app.url("/console")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()[LOCATION], "/console/sign-in?next=%2Fconsole");

    // The database keeps SHA-256 of the token, never the token.
    let rows = app.store.staff_sessions_of(&ana.id).await.unwrap();
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(row.token_hash, token_hash(&token));
    for field in [&row.token_hash, &row.staff_id, &row.csrf] {
        assert!(!field.contains(&token), "raw token stored");
    }

    // The page flow: the form's token must match its cookie; then the home page.
    let r = client()
        .get(app.url("/console/sign-in?next=/console"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let pre = cookie_value(&set_cookie(&r, "pasaporte_sign_in").unwrap());
    let html = r.text().await.unwrap();
    for needle in [
        "autocomplete=\"username\"",
        "autocomplete=\"current-password\"",
        "autocomplete=\"one-time-code\"",
        "<label for=\"totp\"",
        "lang=\"es\"",
        &format!("value=\"{pre}\""),
    ] {
        assert!(html.contains(needle), "{needle}");
    }
    let form = [
        ("username", "ana.lopez"),
        ("password", PASSWORD),
        ("totp", &code(&ana, 1)),
        ("sign_in_token", &pre),
    ];
    let r = client()
        .post(app.url("/console/sign-in?next=%2Fconsole"))
        .header(COOKIE, format!("pasaporte_sign_in={pre}"))
        .header(CONTENT_TYPE, FORM)
        .body(form_body(&form))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()[LOCATION], "/console");
    let page_token = cookie_value(&set_cookie(&r, "pasaporte_staff").unwrap());
    let r = client()
        .get(app.url("/console"))
        .header(COOKIE, format!("pasaporte_staff={page_token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(html.contains("ana.lopez") && html.contains("/console/office/TST/today"));
    assert!(
        !html.contains("/console/audit"),
        "a clerk has no audit link"
    );
}

async fn every_refusal_looks_the_same(db: TestDb) {
    let app = spawn_app(db).await;
    let ana = add_staff(&app, "ana", Role::Clerk, &["TST"]).await;
    let now = code(&ana, 0);
    let first = sign_in(&app, &ana, 0).await;
    assert!(!first.token.is_empty());

    let mut answers = Vec::new();
    for (what, user, pass, totp) in [
        ("reused code", "ana", PASSWORD, now.clone()),
        (
            "wrong password",
            "ana",
            "caballo cuaderno lluvia tenaZ",
            code(&ana, 1),
        ),
        ("wrong code", "ana", PASSWORD, code(&ana, 5)),
        ("unknown user", "nadie", PASSWORD, code(&ana, 1)),
    ] {
        let r = try_sign_in(&app, user, pass, &totp).await;
        let status = r.status().as_u16();
        assert!(set_cookie(&r, "pasaporte_staff").is_none(), "{what}");
        answers.push((what, status, r.text().await.unwrap()));
    }
    let (_, status, body) = &answers[0];
    assert_eq!(*status, 401);
    assert!(
        body.contains("sign_in_failed") && body.contains("incorrectos"),
        "{body}"
    );
    for (what, s, b) in &answers[1..] {
        assert_eq!((s, b), (status, body), "{what}");
    }

    // An inactive account answers the same, even with everything right.
    app.store.set_staff_active(&ana.id, false).await.unwrap();
    let bea = add_staff(&app, "bea", Role::Clerk, &["TST"]).await;
    app.store.set_staff_active(&bea.id, false).await.unwrap();
    let r = try_sign_in(&app, "bea", PASSWORD, &code(&bea, 0)).await;
    assert_eq!(r.status().as_u16(), *status);
    assert_eq!(&r.text().await.unwrap(), body);
    assert_eq!(
        me(&app, &first.cookie()).await.0,
        401,
        "deactivation ends sessions"
    );
}

async fn five_failures_lock_even_the_right_password(db: TestDb) {
    let app = spawn_app(db).await;
    let ana = add_staff(&app, "ana", Role::Clerk, &["TST"]).await;
    let keyring = keys().keyring().unwrap();
    for user in ["ana", "ghost"] {
        for _ in 0..auth::accounts::SIGN_IN_LOCK_AFTER_FAILURES {
            let r = try_sign_in(&app, user, "not the password at all", "123456").await;
            assert_eq!(r.status(), 401);
        }
        let t = app
            .store
            .sign_in_throttle(&auth::accounts::throttle_key(&keyring, user))
            .await
            .unwrap()
            .unwrap();
        let lock_ms = auth::accounts::SIGN_IN_LOCK_MINUTES * 60_000;
        assert_eq!(t.failures, 5, "{user}");
        assert!(
            t.locked_until_ms > auth::now_ms() + lock_ms - 60_000,
            "{user} locked for {} minutes",
            auth::accounts::SIGN_IN_LOCK_MINUTES
        );
    }
    // Locked: the right password and a fresh code are refused, the same way.
    let r = try_sign_in(&app, "ana", PASSWORD, &code(&ana, 0)).await;
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "sign_in_failed");
    assert!(
        app.store
            .staff_sessions_of(&ana.id)
            .await
            .unwrap()
            .is_empty()
    );
    // Another account is not affected.
    let bea = add_staff(&app, "bea", Role::Clerk, &["TST"]).await;
    sign_in(&app, &bea, 0).await;
}

async fn forms_and_api_writes_need_the_csrf_token(db: TestDb) {
    let app = spawn_app(db).await;
    let ana = add_staff(&app, "ana", Role::Clerk, &["TST"]).await;
    let s = sign_in(&app, &ana, 0).await;

    let post_sign_out = |fields: Vec<(&'static str, String)>, origin: Option<&'static str>| {
        let mut req = client()
            .post(app.url("/console/sign-out"))
            .header(COOKIE, s.cookie())
            .header(CONTENT_TYPE, FORM)
            .body(form_body(&fields));
        if let Some(o) = origin {
            req = req.header(ORIGIN, o);
        }
        req.send()
    };
    let r = post_sign_out(vec![], None).await.unwrap();
    assert_eq!(r.status(), 403, "no csrf field");
    let r = post_sign_out(vec![("csrf", "wrong".into())], None)
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "wrong csrf field");
    let r = post_sign_out(vec![("csrf", s.csrf.clone())], Some("http://evil.example"))
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "cross-site");
    assert_eq!(me(&app, &s.cookie()).await.0, 200, "nothing changed");

    // The JSON API: the header, not a cookie, carries the token.
    for header in [None, Some("wrong")] {
        let mut req = client()
            .delete(app.url("/api/v1/staff/session"))
            .header(COOKIE, s.cookie());
        if let Some(h) = header {
            req = req.header("x-csrf-token", h);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 403);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "csrf_failed");
    }
    let r = client()
        .delete(app.url("/api/v1/staff/session"))
        .header(COOKIE, s.cookie())
        .header("x-csrf-token", &s.csrf)
        .header(ORIGIN, "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "cross-site API write");
    assert_eq!(me(&app, &s.cookie()).await.0, 200, "nothing changed");

    // Login CSRF: the sign-in form needs its cookie token, and no other site.
    let form = [
        ("username", "ana"),
        ("password", PASSWORD),
        ("totp", &code(&ana, 1)),
        ("sign_in_token", "forged"),
    ];
    let r = client()
        .post(app.url("/console/sign-in"))
        .header(CONTENT_TYPE, FORM)
        .body(form_body(&form))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "no sign-in cookie");
    let r = client()
        .post(app.url("/api/v1/staff/session"))
        .header(ORIGIN, "http://evil.example")
        .json(&json!({ "username": "ana", "password": PASSWORD, "totp": code(&ana, 1) }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "cross-site JSON sign-in");
    assert_eq!(app.store.staff_sessions_of(&ana.id).await.unwrap().len(), 1);

    // With everything right, the form signs out.
    let r = post_sign_out(vec![("csrf", s.csrf.clone())], None)
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(me(&app, &s.cookie()).await.0, 401);
}

async fn authorize(app: &TestApp, s: &Signed, action: &str, office: &str) -> (u16, Value) {
    let r = client()
        .get(app.url(&format!(
            "/api/v1/staff/authorize?action={action}&office={office}"
        )))
        .header(COOKIE, s.cookie())
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn stale_sign_in_needs_reauthentication(db: TestDb) {
    let app = spawn_app(db).await;
    let sup = add_staff(&app, "sup", Role::Supervisor, &["*"]).await;
    let clerk = add_staff(&app, "clerk", Role::Clerk, &["TST"]).await;
    let s = sign_in(&app, &sup, 0).await;
    assert_eq!(authorize(&app, &s, "decide", "TST").await.0, 204);

    // Signed in 11 minutes ago: a decision asks for the password again.
    let eleven_minutes_ago = auth::now_ms() - 11 * 60_000;
    app.store
        .set_session_authenticated_at(&token_hash(&s.token), eleven_minutes_ago)
        .await
        .unwrap();
    let (status, body) = authorize(&app, &s, "decide", "TST").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("reauthentication_required"))
    );
    assert_eq!(
        authorize(&app, &s, "view_supervisor_queues", "TST").await.0,
        204
    );

    // A wrong password does not refresh it.
    let r = client()
        .post(app.url("/api/v1/staff/session/reauth"))
        .header(COOKIE, s.cookie())
        .header("x-csrf-token", &s.csrf)
        .json(&json!({ "password": "caballo cuaderno lluvia tenaZ", "totp": code(&sup, 1) }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // Without the CSRF header, refused before checking anything.
    let r = client()
        .post(app.url("/api/v1/staff/session/reauth"))
        .header(COOKIE, s.cookie())
        .json(&json!({ "password": PASSWORD, "totp": code(&sup, 1) }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = client()
        .post(app.url("/api/v1/staff/session/reauth"))
        .header(COOKIE, s.cookie())
        .header("x-csrf-token", &s.csrf)
        .json(&json!({ "password": PASSWORD, "totp": code(&sup, 1) }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(authorize(&app, &s, "decide", "TST").await.0, 204);

    // Pages send a stale supervisor to the re-authentication form.
    app.store
        .set_session_authenticated_at(&token_hash(&s.token), eleven_minutes_ago)
        .await
        .unwrap();
    let r = client()
        .get(app.url("/console/reauth?next=/console/supervisor"))
        .header(COOKIE, s.cookie())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(html.contains(&format!("value=\"{}\"", s.csrf)) && html.contains("one-time-code"));

    // Roles and offices.
    let c = sign_in(&app, &clerk, 0).await;
    let (status, body) = authorize(&app, &c, "decide", "TST").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("forbidden"))
    );
    assert_eq!(authorize(&app, &c, "check_in", "TST").await.0, 204);
    assert_eq!(authorize(&app, &c, "check_in", "TS2").await.0, 403);
}

async fn sign_out_ends_the_session(db: TestDb) {
    let app = spawn_app(db).await;
    let ana = add_staff(&app, "ana", Role::Auditor, &["*"]).await;
    let s = sign_in(&app, &ana, 0).await;
    assert!(s.set_cookie.contains("Max-Age="));
    let r = client()
        .delete(app.url("/api/v1/staff/session"))
        .header(COOKIE, s.cookie())
        .header("x-csrf-token", &s.csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let cleared = set_cookie(&r, "pasaporte_staff").unwrap();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    assert_eq!(me(&app, &s.cookie()).await.0, 401);
    assert!(
        app.store
            .staff_sessions_of(&ana.id)
            .await
            .unwrap()
            .is_empty()
    );
    let r = client()
        .get(app.url("/console"))
        .header(COOKIE, s.cookie())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "the old cookie opens nothing");
}

async fn staff_add_command_creates_an_account_that_signs_in(db: TestDb) {
    let (store, url) = pasaporte_store::testing::fresh(db).await.unwrap();
    let run = |args: &[&str], password: Option<&str>| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_pasaporte"));
        cmd.arg("staff")
            .args(args)
            .env("PASAPORTE_DATABASE", &url)
            .env("PASAPORTE_DATA_KEYS", DATA_KEYS)
            .env("PASAPORTE_LOOKUP_KEY", LOOKUP_KEY)
            .env_remove("PASAPORTE_STAFF_PASSWORD")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        {
            use std::io::Write;
            let mut stdin = child.stdin.take().unwrap();
            if let Some(p) = password {
                writeln!(stdin, "{p}").unwrap();
            }
        }
        let out = child.wait_with_output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let add = [
        "add",
        "--username",
        "admin",
        "--role",
        "administrator",
        "--office",
        "*",
    ];
    let (ok, _, err) = run(&add, Some("password1234"));
    assert!(!ok && err.contains("too easy to guess"), "{err}");
    let (ok, out, err) = run(&add, Some(PASSWORD));
    assert!(ok, "{err}");
    assert!(!out.contains(PASSWORD) && !err.contains(PASSWORD));
    let secret = out
        .lines()
        .find_map(|l| l.strip_prefix("TOTP secret (base32, shown once): "))
        .unwrap()
        .to_string();
    assert!(out.contains("otpauth://totp/"), "{out}");
    let (ok, list, _) = run(&["list"], None);
    assert!(ok && list.contains("admin\tadministrator\t*"), "{list}");
    assert!(!list.contains(&secret));

    let app = spawn_on(store, url, no_smtp()).await;
    let code = totp::code_at(&secret, now_s()).unwrap();
    let r = try_sign_in(&app, "admin", PASSWORD, &code).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["staff"]["role"], "administrator");
}

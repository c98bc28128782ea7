//! Staff sign-in over real HTTP: cookies, identical refusals, lock-out, CSRF,
//! re-authentication and sign-out, on SQLite and PostgreSQL.

use crate::both_databases;
use crate::support::{
    DATA_KEYS, LOOKUP_KEY, TestApp, keys, no_smtp, spawn_app, spawn_app_limited, spawn_on,
    spawn_on_work,
};
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
    guesses_sent_together_are_counted_before_any_is_checked,
    a_lock_out_from_one_address_leaves_the_owner_in_from_another,
    the_account_ceiling_stops_a_guess_spread_over_addresses,
    sign_ins_beyond_the_password_checks_are_answered_busy_at_once,
    sign_in_routes_have_a_per_client_rate_limit,
);

/// The address every test client connects from, unless bound to another.
const LOCALHOST: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

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
            .sign_in_throttle(&auth::accounts::throttle_key(
                &keyring,
                user,
                Some(LOCALHOST),
            ))
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

/// A client from `ip` (any 127.x.y.z is this machine) that shows redirects.
fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(ip.parse::<std::net::IpAddr>().unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn sign_in_from(
    app: &TestApp,
    ip: &str,
    username: &str,
    password: &str,
    totp: &str,
) -> reqwest::Response {
    client_from(ip)
        .post(app.url("/api/v1/staff/session"))
        .json(&json!({ "username": username, "password": password, "totp": totp }))
        .send()
        .await
        .unwrap()
}

/// No rate limit per client, and more password checks than any test here
/// runs at once: what remains is the throttle in the database.
fn throttle_only() -> pasaporte::limits::LimitArgs {
    pasaporte::limits::LimitArgs {
        sign_in_checks_max: 256,
        ..pasaporte::limits::LimitArgs::off()
    }
}

/// Polls `f` every 10 ms until it holds, for at most 20 seconds.
async fn until<F: std::future::Future<Output = bool>>(what: &str, mut f: impl FnMut() -> F) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !f().await {
        assert!(std::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

fn retry_after(r: &reqwest::Response) -> Option<u64> {
    r.headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// Issue 12: the throttle was read, Argon2 ran, then the failure was
/// written, so attempts sent together all passed it (19 wrong + 1 right let
/// the right one in). Now each attempt is counted as it starts, in the
/// statement that decides whether it is checked, on two servers sharing
/// one database: of 59 wrong guesses sent at once only the three before the
/// back-off are checked, and the right password sent while they are being
/// answered is refused.
async fn guesses_sent_together_are_counted_before_any_is_checked(db: TestDb) {
    let (store, url) = pasaporte_store::testing::fresh(db).await.unwrap();
    let node = || {
        spawn_on_work(
            store.clone(),
            url.clone(),
            no_smtp(),
            throttle_only(),
            pasaporte::WorkArgs::none(),
        )
    };
    let (a, b) = (node().await, node().await);
    let ana = add_staff(&a, "ana", Role::Clerk, &["TST"]).await;
    let keyring = keys().keyring().unwrap();
    let throttle = auth::accounts::throttle_key(&keyring, "ana", Some(LOCALHOST));
    let ceiling = auth::accounts::account_key(&keyring, "ana");

    const WRONG: usize = 59;
    let guesses: Vec<_> = (0..WRONG)
        .map(|i| {
            let base = if i % 2 == 0 { &a.base } else { &b.base };
            let req = client()
                .post(format!("{base}/api/v1/staff/session"))
                .json(&json!({ "username": "ana", "password": format!("not the password {i}"), "totp": "123456" }));
            tokio::spawn(async move { req.send().await.unwrap().status().as_u16() })
        })
        .collect();
    // The right password and a fresh code, sent once the allowance is
    // spent (the count is in the database from the start of each attempt).
    until("the burst's allowance spent", || {
        let (store, throttle) = (store.clone(), throttle.clone());
        async move {
            store
                .sign_in_throttle(&throttle)
                .await
                .unwrap()
                .is_some_and(|t| t.failures >= auth::accounts::SIGN_IN_BACKOFF_AFTER_FAILURES)
        }
    })
    .await;
    let right = try_sign_in(&b, "ana", PASSWORD, &code(&ana, 0)).await;
    assert_eq!(
        right.status(),
        401,
        "the right password once the allowance is spent"
    );
    let body: Value = right.json().await.unwrap();
    assert_eq!(body["error"]["code"], "sign_in_failed");
    for g in guesses {
        assert_eq!(g.await.unwrap(), 401);
    }
    assert!(store.staff_sessions_of(&ana.id).await.unwrap().is_empty());

    // Every attempt was counted; only the three before the back-off were
    // checked (the account's ceiling counts checks), whichever server took them.
    let t = store.sign_in_throttle(&throttle).await.unwrap().unwrap();
    assert_eq!(t.failures, WRONG as i64 + 1);
    assert!(t.locked_until_ms > auth::now_ms() + 14 * 60_000, "locked");
    let checked = store
        .sign_in_ceiling(&ceiling)
        .await
        .unwrap()
        .unwrap()
        .checks;
    assert_eq!(checked, auth::accounts::SIGN_IN_BACKOFF_AFTER_FAILURES);
    // And it stays refused.
    let r = try_sign_in(&a, "ana", PASSWORD, &code(&ana, 1)).await;
    assert_eq!(r.status(), 401);
}

/// Issue 12: five anonymous requests locked any account for 15 minutes,
/// even against its owner. The lock is now per account and address: the
/// attacker's address is locked, the owner's is not.
async fn a_lock_out_from_one_address_leaves_the_owner_in_from_another(db: TestDb) {
    let app = spawn_app_limited(db, no_smtp(), throttle_only()).await;
    let ana = add_staff(&app, "ana", Role::Clerk, &["TST"]).await;
    for _ in 0..auth::accounts::SIGN_IN_LOCK_AFTER_FAILURES {
        let r = sign_in_from(
            &app,
            "127.0.0.2",
            "ana",
            "not the password at all",
            "123456",
        )
        .await;
        assert_eq!(r.status(), 401);
    }
    // The attacker's address is locked, even with the right password.
    let r = sign_in_from(&app, "127.0.0.2", "ana", PASSWORD, &code(&ana, 0)).await;
    assert_eq!(r.status(), 401);
    let keyring = keys().keyring().unwrap();
    let t = app
        .store
        .sign_in_throttle(&auth::accounts::throttle_key(
            &keyring,
            "ana",
            Some("127.0.0.2".parse().unwrap()),
        ))
        .await
        .unwrap()
        .unwrap();
    assert!(t.locked_until_ms > auth::now_ms());
    // Ana, from her own address, signs in.
    let r = sign_in_from(&app, "127.0.0.3", "ana", PASSWORD, &code(&ana, 1)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(app.store.staff_sessions_of(&ana.id).await.unwrap().len(), 1);
    // Her success forgave nothing of the attacker's.
    let r = sign_in_from(&app, "127.0.0.2", "ana", PASSWORD, &code(&ana, 2)).await;
    assert_eq!(r.status(), 401);
}

/// The account-wide ceiling: a guess spread over many addresses (three
/// checked tries each, under every address's back-off) is stopped after
/// `SIGN_IN_ACCOUNT_CHECKS_MAX` checks, for the owner too until the window
/// ends: the bound against guessing holds.
async fn the_account_ceiling_stops_a_guess_spread_over_addresses(db: TestDb) {
    let app = spawn_app_limited(db, no_smtp(), throttle_only()).await;
    let ana = add_staff(&app, "ana", Role::Clerk, &["TST"]).await;
    let max = auth::accounts::SIGN_IN_ACCOUNT_CHECKS_MAX;
    let per_address = auth::accounts::SIGN_IN_BACKOFF_AFTER_FAILURES;
    let addresses = (max + per_address - 1) / per_address + 1;
    // Four addresses at a time: each check holds 19 MiB.
    let mut statuses = Vec::new();
    for chunk in (0..addresses).collect::<Vec<_>>().chunks(4) {
        let tries = chunk.iter().map(|n| {
            let app_base = app.base.clone();
            let ip = format!("127.0.1.{}", n + 1);
            async move {
                let mut out = Vec::new();
                for _ in 0..per_address {
                    let r = client_from(&ip)
                        .post(format!("{app_base}/api/v1/staff/session"))
                        .json(&json!({ "username": "ana", "password": "not the password at all", "totp": "123456" }))
                        .send()
                        .await
                        .unwrap();
                    out.push(r.status().as_u16());
                }
                out
            }
        });
        for out in futures_join_all(tries).await {
            statuses.extend(out);
        }
    }
    assert!(statuses.iter().all(|s| *s == 401), "{statuses:?}");
    let keyring = keys().keyring().unwrap();
    let c = app
        .store
        .sign_in_ceiling(&auth::accounts::account_key(&keyring, "ana"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.checks, max, "no more checks than the ceiling");
    assert!(!c.admitted, "the last tries were refused unchecked");
    // From a new address, even the right password waits for the window.
    let r = sign_in_from(&app, "127.0.2.1", "ana", PASSWORD, &code(&ana, 0)).await;
    assert_eq!(r.status(), 401);
    assert!(
        app.store
            .staff_sessions_of(&ana.id)
            .await
            .unwrap()
            .is_empty()
    );
    // Another account is not affected.
    let bea = add_staff(&app, "bea", Role::Clerk, &["TST"]).await;
    let r = sign_in_from(&app, "127.0.2.1", "bea", PASSWORD, &code(&bea, 0)).await;
    assert_eq!(r.status(), 200);
}

async fn futures_join_all<F>(fs: impl IntoIterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = fs.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

/// Issue 12: 100 sign-ins at once took the process from 23 MB to 3.1 GB,
/// each Argon2 check holding 19 MiB on the blocking pool. Now checks run
/// under a fixed number of permits, and a sign-in that finds none is
/// answered 503 with Retry-After at once: JSON on the API, a page in the
/// request's language on the console. None waits.
async fn sign_ins_beyond_the_password_checks_are_answered_busy_at_once(db: TestDb) {
    let app = spawn_app_limited(
        db,
        no_smtp(),
        pasaporte::limits::LimitArgs {
            sign_in_checks_max: 1,
            ..pasaporte::limits::LimitArgs::off()
        },
    )
    .await;
    const AT_ONCE: usize = 24;
    let deadline = std::time::Duration::from_secs(60);
    // Unknown usernames, each its own, so the throttle plays no part.
    let api = (0..AT_ONCE).map(|i| {
        let req = client()
            .post(app.url("/api/v1/staff/session"))
            .json(&json!({ "username": format!("nadie{i}"), "password": "not the password at all", "totp": "123456" }));
        async move {
            let r = tokio::time::timeout(deadline, req.send())
                .await
                .expect("a sign-in waited")
                .unwrap();
            let (status, retry) = (r.status().as_u16(), retry_after(&r));
            (status, retry, r.json::<Value>().await.unwrap())
        }
    });
    let answers = futures_join_all(api).await;
    let busy: Vec<_> = answers.iter().filter(|(s, _, _)| *s == 503).collect();
    assert!(
        !busy.is_empty(),
        "more sign-ins than permits: some are busy"
    );
    assert!(
        answers.iter().any(|(s, _, _)| *s == 401),
        "some are checked"
    );
    assert!(answers.iter().all(|(s, _, _)| *s == 401 || *s == 503));
    for (_, retry, body) in &busy {
        assert_eq!(*retry, Some(auth::accounts::SIGN_IN_BUSY_RETRY_SECONDS));
        assert_eq!(body["error"]["code"], "sign_in_busy");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("Espere"),
            "{body}"
        );
    }

    // The console form: the same, as a page in the request's language.
    let pages = (0..AT_ONCE).map(|i| {
        let en = i % 2 == 1;
        let form = form_body(&[
            ("username", format!("nadie{i}")),
            ("password", "not the password at all".into()),
            ("totp", "123456".into()),
            ("sign_in_token", "t".repeat(43)),
        ]);
        let req = client()
            .post(app.url(if en {
                "/console/sign-in?lang=en"
            } else {
                "/console/sign-in"
            }))
            .header(COOKIE, format!("pasaporte_sign_in={}", "t".repeat(43)))
            .header(CONTENT_TYPE, FORM)
            .body(form);
        async move {
            let r = tokio::time::timeout(deadline, req.send())
                .await
                .expect("a sign-in waited")
                .unwrap();
            let (status, retry) = (r.status().as_u16(), retry_after(&r));
            (en, status, retry, r.text().await.unwrap())
        }
    });
    let pages = futures_join_all(pages).await;
    assert!(
        pages.iter().any(|(_, s, _, _)| *s == 503),
        "some pages are busy"
    );
    for (en, status, retry, html) in &pages {
        match status {
            401 => assert!(html.contains("incorrectos") || html.contains("Wrong username")),
            503 => {
                assert_eq!(*retry, Some(auth::accounts::SIGN_IN_BUSY_RETRY_SECONDS));
                let (lang, words) = if *en {
                    ("lang=\"en\"", "Too many sign-ins")
                } else {
                    ("lang=\"es\"", "demasiados inicios de sesión")
                };
                assert!(html.contains(lang) && html.contains(words), "{html}");
            }
            other => panic!("unexpected {other}: {html}"),
        }
    }
}

/// The per-client rate limit now covers the sign-in posts (API, console
/// form, re-authentication): a client over it gets 429 with Retry-After
/// before any password is checked; other addresses are served; the sign-in
/// page itself is not limited.
async fn sign_in_routes_have_a_per_client_rate_limit(db: TestDb) {
    let app = spawn_app_limited(
        db,
        no_smtp(),
        pasaporte::limits::LimitArgs {
            rate_sign_in_per_min: 3,
            rate_sign_in_burst: 3,
            ..pasaporte::limits::LimitArgs::off()
        },
    )
    .await;
    let sup = add_staff(&app, "sup", Role::Supervisor, &["*"]).await;
    // A session, signed in from another address.
    let r = sign_in_from(&app, "127.0.0.6", "sup", PASSWORD, &code(&sup, 0)).await;
    assert_eq!(r.status(), 200);
    let cookie = format!(
        "pasaporte_staff={}",
        cookie_value(&set_cookie(&r, "pasaporte_staff").unwrap())
    );
    let csrf = r.json::<Value>().await.unwrap()["csrf_token"]
        .as_str()
        .unwrap()
        .to_string();

    let bot = "127.0.0.5";
    for _ in 0..3 {
        let r = sign_in_from(&app, bot, "sup", "not the password at all", "123456").await;
        assert_eq!(r.status(), 401);
    }
    let r = sign_in_from(&app, bot, "sup", PASSWORD, &code(&sup, 1)).await;
    assert_eq!(r.status(), 429);
    assert!(retry_after(&r).is_some_and(|s| s >= 1));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "too_many_requests");

    let r = client_from(bot)
        .post(app.url("/api/v1/staff/session/reauth"))
        .header(COOKIE, &cookie)
        .header("x-csrf-token", &csrf)
        .json(&json!({ "password": PASSWORD, "totp": code(&sup, 1) }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429, "API re-authentication");
    let r = client_from(bot)
        .post(app.url("/console/reauth?lang=en"))
        .header(COOKIE, &cookie)
        .header(CONTENT_TYPE, FORM)
        .body(form_body(&[
            ("csrf", csrf.as_str()),
            ("password", PASSWORD),
            ("totp", &code(&sup, 1)),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429, "console re-authentication");
    assert!(retry_after(&r).is_some());
    assert!(r.text().await.unwrap().contains("lang=\"en\""));
    let page = client_from(bot)
        .get(app.url("/console/sign-in"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200, "the form itself is not limited");
    let token = cookie_value(&set_cookie(&page, "pasaporte_sign_in").unwrap());
    let r = client_from(bot)
        .post(app.url("/console/sign-in"))
        .header(COOKIE, format!("pasaporte_sign_in={token}"))
        .header(CONTENT_TYPE, FORM)
        .body(form_body(&[
            ("username", "sup"),
            ("password", PASSWORD),
            ("totp", &code(&sup, 1)),
            ("sign_in_token", &token),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429, "console sign-in");
    assert!(r.text().await.unwrap().contains("lang=\"es\""));

    // Another address is served.
    let r = client_from("127.0.0.7")
        .post(app.url("/api/v1/staff/session/reauth"))
        .header(COOKIE, &cookie)
        .header("x-csrf-token", &csrf)
        .json(&json!({ "password": PASSWORD, "totp": code(&sup, 1) }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

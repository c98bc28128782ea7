//! The console's production pages over real HTTP, on SQLite and PostgreSQL:
//! booklet stock and the production orders for supervisors; a dead order
//! sent again from its button; the vendor switch for administrators (with a
//! fresh sign-in); at the office, a shipped booklet received by its typed
//! MRZ and handed over, and an emergency passport issued, all through the
//! browser forms; other offices see none of it.

use crate::both_databases;
use crate::console::{Signed, client, location, page, post_form};
use crate::production::{
    Prod, add_vendor, approved, approved_emergency, body_of, orders_of, spawn_prod, wait_for_order,
};
use crate::support::{Staff, staff};
use crate::workflow::{STEP_WAIT, document};
use pasaporte::auth::{self, session::token_hash};
use pasaporte_core::application::Role;
use pasaporte_store::testing::TestDb;
use pasaporte_store::{OrderRow, OrderState};
use reqwest::header::COOKIE;
use std::time::Duration;

both_databases!(
    supervisor_resends_a_dead_order_and_a_clerk_issues_an_emergency_passport,
    clerk_receives_and_hands_over_in_the_browser,
    administrator_switches_a_vendor_in_the_browser,
);

fn signed(s: &Staff) -> Signed {
    Signed {
        cookie: s.cookie.clone(),
        csrf: s.csrf.clone(),
    }
}

/// The part of a page after `start` and before `end`.
fn section<'a>(html: &'a str, start: &str, end: &str) -> &'a str {
    let after = html
        .split(start)
        .nth(1)
        .unwrap_or_else(|| panic!("{start} in {html}"));
    after.split(end).next().unwrap()
}

async fn state_of(p: &Prod, id: &str) -> String {
    p.w.app.store.application(id).await.unwrap().state
}

/// Polls until the application has an order.
async fn first_order(p: &Prod, id: &str) -> OrderRow {
    let deadline = tokio::time::Instant::now() + STEP_WAIT;
    loop {
        if let Some(o) = orders_of(p, id).await.first() {
            return o.clone();
        }
        assert!(tokio::time::Instant::now() < deadline, "no order for {id}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Puts an order in the dead-letter queue, as a vendor down for long would.
async fn make_dead(p: &Prod, order_id: &str) {
    let store = &p.w.app.store;
    // The workers may touch the order meanwhile: read it again on a conflict.
    for _ in 0..20 {
        let mut o = store.order(order_id).await.unwrap();
        let version = o.version;
        o.state = OrderState::Dead;
        o.failures = 8;
        o.last_error = Some("vendor unreachable".into());
        let mut tx = store.begin_write().await.unwrap();
        match pasaporte_store::update_order(&mut tx, &o, version).await {
            Ok(()) => {
                tx.commit().await.unwrap();
                return;
            }
            Err(_) => {
                drop(tx);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    panic!("order {order_id} could not be made dead");
}

async fn supervisor_resends_a_dead_order_and_a_clerk_issues_an_emergency_passport(db: TestDb) {
    // No vendor at all: the order waits in the outbox without one.
    let p = spawn_prod(db).await;
    let app = &p.w.app;
    let sup = signed(&staff(app, "sofia", Role::Supervisor, &["TST"]).await);
    let id = approved(&p, 1).await;
    let order = first_order(&p, &id).await;
    assert_eq!(order.vendor_id, None);
    make_dead(&p, &order.order_id).await;

    // The dead-letter queue is the default list.
    let (status, html) = page(app, &sup, "/console/production").await;
    assert_eq!(status, 200);
    assert!(html.contains("href=\"/console/production?lang=es\""), "nav");
    let orders = section(&html, "id=\"orders-h\"", "</table>");
    assert!(orders.contains(&order.order_id), "{orders}");
    assert!(orders.contains("sin proveedor"), "{orders}");
    assert!(orders.contains("fallido"), "{orders}");
    assert!(orders.contains("vendor unreachable"), "{orders}");
    assert!(orders.contains(&format!("/console/applications/{id}?lang=es")));
    let resend = format!("/console/production/orders/{}/resend", order.order_id);
    assert!(orders.contains(&resend), "{orders}");
    let counts = section(&html, "id=\"counts-h\"", "</table>");
    assert!(counts.contains("sin proveedor") && counts.contains("fallido"));
    assert!(html.contains("No hay proveedores registrados"));
    let (status, html) = page(app, &sup, "/console/production?lang=en").await;
    assert_eq!(status, 200);
    assert!(html.contains("no vendor yet") && html.contains("Send again"));
    let (status, html) = page(app, &sup, "/console/production?state=nonsense").await;
    assert_eq!(status, 422);
    assert!(html.contains("href=\"#state\""));

    // An auditor reads it without the button; a clerk does not read it.
    let aud = signed(&staff(app, "auditor", Role::Auditor, &["*"]).await);
    let (status, html) = page(app, &aud, "/console/production").await;
    assert_eq!(status, 200);
    assert!(html.contains(&order.order_id));
    assert!(!html.contains(&resend));
    let clerk = signed(&p.clerk);
    let (status, _) = page(app, &clerk, "/console/production").await;
    assert_eq!(status, 403);
    let (status, _) = page(app, &clerk, "/console/stock").await;
    assert_eq!(status, 403);
    let r = post_form(app, &aud, &resend, &[]).await;
    assert_eq!(r.status(), 403);

    // The button sends it again: back in the outbox.
    let r = post_form(app, &sup, &format!("{resend}?lang=es"), &[]).await;
    assert_eq!(r.status(), 303);
    assert_eq!(
        location(&r),
        "/console/production?lang=es&state=dead&done=resent"
    );
    let o = app.store.order(&order.order_id).await.unwrap();
    assert_eq!(o.state, OrderState::Queued);
    assert_eq!(o.failures, 0);
    let (_, html) = page(app, &sup, &location(&r)).await;
    assert!(html.contains("Pedido reenviado"), "{html}");
    assert!(!html.contains(&resend), "no longer dead");
    // Twice is refused, in the person's language, on the page.
    let r = post_form(app, &sup, &format!("{resend}?lang=en"), &[]).await;
    assert_eq!(r.status(), 409);
    let html = r.text().await.unwrap();
    assert!(html.contains("Only dead-lettered orders"), "{html}");
    assert!(html.contains("href=\"#orders-h\""));

    // An emergency passport is issued from the application's page.
    let n = 40;
    let em = approved_emergency(&p, n).await;
    let (status, html) = page(app, &clerk, &format!("/console/applications/{em}")).await;
    assert_eq!(status, 200);
    let action = format!("/console/applications/{em}/emergency");
    assert!(html.contains(&action), "{html}");
    let other = signed(&staff(app, "bea", Role::Clerk, &["TS2"]).await);
    let r = post_form(app, &other, &action, &[]).await;
    assert_eq!(r.status(), 404, "not the clerk's office");
    assert_eq!(state_of(&p, &em).await, "approved");
    let r = post_form(app, &clerk, &format!("{action}?lang=es"), &[]).await;
    assert_eq!(r.status(), 303);
    assert!(location(&r).ends_with("done=emergency"), "{}", location(&r));
    assert_eq!(state_of(&p, &em).await, "ready_for_pickup");
    let o = wait_for_order(&p, &em, OrderState::Received).await;
    let serial = o.booklet_serial.clone().unwrap();
    assert!(serial.starts_with("VE"), "{serial}");
    let body = body_of(&p, &o).await;
    let (_, html) = page(app, &clerk, &location(&r)).await;
    let issued = section(&html, "id=\"issued-h\"", "</section>");
    assert!(issued.contains(&o.passport_number), "{issued}");
    assert!(issued.contains(&serial), "{issued}");
    for line in &body.mrz {
        assert!(issued.contains(&line.replace('<', "&#60;")), "{issued}");
    }
    // A second post is refused by the state machine and issues nothing.
    let r = post_form(app, &clerk, &action, &[]).await;
    assert_eq!(r.status(), 409);
    assert_eq!(orders_of(&p, &em).await.len(), 1);
}

async fn clerk_receives_and_hands_over_in_the_browser(db: TestDb) {
    let p = spawn_prod(db).await;
    let app = &p.w.app;
    let _sim = add_vendor(&p, "vendor-a", "site-a").await;
    let sup = signed(&staff(app, "sofia", Role::Supervisor, &["TST"]).await);

    // Stock: 200 blank 32-page booklets at site-a, 20 emergency ones at TST.
    let (status, html) = page(app, &sup, "/console/stock").await;
    assert_eq!(status, 200);
    assert!(html.contains("href=\"/console/stock?lang=es\""), "nav");
    let site_a = section(&html, "id=\"stock-site-a\"", "</table>");
    assert!(site_a.contains("32 páginas"), "{site_a}");
    assert!(site_a.contains("en existencia"), "{site_a}");
    assert!(site_a.contains("<td>200</td>"), "{site_a}");
    let tst = section(&html, "id=\"stock-TST\"", "</table>");
    assert!(
        tst.contains("8 páginas") && tst.contains("<td>20</td>"),
        "{tst}"
    );
    let all = section(&html, "id=\"stock-all\"", "</table>");
    assert!(all.contains("<td>400</td>"), "site-a and site-b: {all}");
    assert!(html.contains("Días restantes"));
    let (status, html) = page(app, &sup, "/console/stock?lang=en").await;
    assert_eq!(status, 200);
    assert!(html.contains("In stock") && html.contains("Days left"));

    let id = approved(&p, 2).await;
    let shipped = wait_for_order(&p, &id, OrderState::Shipped).await;
    let deadline = tokio::time::Instant::now() + STEP_WAIT;
    while state_of(&p, &id).await != "in_production" {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The supervisor sees the order with its vendor and state.
    let (status, html) = page(app, &sup, "/console/production?state=shipped").await;
    assert_eq!(status, 200);
    let orders = section(&html, "id=\"orders-h\"", "</table>");
    assert!(orders.contains(&shipped.order_id), "{orders}");
    assert!(orders.contains("vendor-a"), "{orders}");
    assert!(orders.contains("enviado a la oficina"), "{orders}");
    assert!(!orders.contains("/resend"), "only dead orders are re-sent");
    let vendors = section(&html, "id=\"vendors-h\"", "</table>");
    assert!(vendors.contains("vendor-a") && vendors.contains("activo"));
    assert!(vendors.contains("site-a"));
    assert!(
        !vendors.contains("/console/production/vendors/"),
        "a supervisor does not switch vendors"
    );
    assert!(!html.contains("shared-secret"), "never the vendor's key");

    // The clerk's page lists the order and offers the receipt.
    let clerk = signed(&p.clerk);
    let path = format!("/console/applications/{id}");
    let (status, html) = page(app, &clerk, &path).await;
    assert_eq!(status, 200);
    let listed = section(&html, "id=\"orders-h\"", "</table>");
    assert!(listed.contains("vendor-a") && listed.contains("enviado a la oficina"));
    let receive = format!("{path}/receive");
    assert!(html.contains(&receive), "{html}");
    assert!(html.contains("id=\"receive-mrz\""));
    assert!(!html.contains(&format!("{path}/hand-over")));

    // Another office's clerk sees nothing and receives nothing.
    let other = signed(&staff(app, "bea", Role::Clerk, &["TS2"]).await);
    let (status, _) = page(app, &other, &path).await;
    assert_eq!(status, 404);
    let r = post_form(app, &other, &receive, &[("mrz", "P<COL")]).await;
    assert_eq!(r.status(), 404);

    // A short MRZ goes back to the form with the summary.
    let r = post_form(app, &clerk, &receive, &[("mrz", "P<COL")]).await;
    assert_eq!(r.status(), 422);
    let html = r.text().await.unwrap();
    assert!(html.contains("href=\"#receive-mrz\""), "{html}");
    assert!(html.contains("44 caracteres"));
    assert_eq!(state_of(&p, &id).await, "in_production");

    // Typed from the data page: ready for pick-up.
    let order = body_of(&p, &shipped).await;
    let typed = format!("{}\n{}", order.mrz[0], order.mrz[1].to_lowercase());
    let r = post_form(
        app,
        &clerk,
        &format!("{receive}?lang=es"),
        &[("mrz", typed.as_str())],
    )
    .await;
    assert_eq!(r.status(), 303);
    assert!(location(&r).ends_with("done=received"), "{}", location(&r));
    assert_eq!(state_of(&p, &id).await, "ready_for_pickup");
    let (_, html) = page(app, &clerk, &location(&r)).await;
    assert!(html.contains("lista para entregar"), "{html}");
    let hand_over = format!("{path}/hand-over");
    assert!(html.contains(&hand_over));
    assert!(html.contains("id=\"handover-document_number\""));
    assert!(html.contains("id=\"handover-guardian_document_number\""));

    // Someone else's document is refused, in the person's language.
    let r = post_form(
        app,
        &clerk,
        &format!("{hand_over}?lang=en"),
        &[("document_number", "123456")],
    )
    .await;
    assert_eq!(r.status(), 409);
    let html = r.text().await.unwrap();
    assert!(html.contains("not the holder"), "{html}");
    assert!(html.contains("href=\"#handover-h\""));
    let r = post_form(
        app,
        &other,
        &hand_over,
        &[("document_number", document(2).as_str())],
    )
    .await;
    assert_eq!(r.status(), 404);
    assert_eq!(state_of(&p, &id).await, "ready_for_pickup");
    let r = post_form(
        app,
        &clerk,
        &hand_over,
        &[("document_number", document(2).as_str())],
    )
    .await;
    assert_eq!(r.status(), 303);
    assert!(location(&r).ends_with("done=handed_over"));
    assert_eq!(state_of(&p, &id).await, "issued");
    let (_, html) = page(app, &clerk, &location(&r)).await;
    assert!(html.contains("Pasaporte entregado"));
    assert!(
        html.contains("recibido en la oficina"),
        "the order ended received"
    );
    assert!(!html.contains(&hand_over), "nothing more to hand over");
}

async fn administrator_switches_a_vendor_in_the_browser(db: TestDb) {
    let p = spawn_prod(db).await;
    let app = &p.w.app;
    let _a = add_vendor(&p, "vendor-a", "site-a").await;
    let _b = add_vendor(&p, "vendor-b", "site-b").await;
    let admin = signed(&staff(app, "admin", Role::Administrator, &["*"]).await);
    let (status, html) = page(app, &admin, "/console/production").await;
    assert_eq!(status, 200);
    assert!(
        html.contains("no recibe pedidos nuevos"),
        "draining explained"
    );
    let switch = "/console/production/vendors/vendor-a/state";
    assert!(html.contains(switch), "{html}");
    assert!(html.contains("Pasar a drenaje"));

    let sup = signed(&staff(app, "sofia", Role::Supervisor, &["TST"]).await);
    let r = post_form(app, &sup, switch, &[("state", "draining")]).await;
    assert_eq!(r.status(), 403);
    let r = post_form(app, &admin, switch, &[("state", "closed")]).await;
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("href=\"#vendors-h\""));
    let r = post_form(
        app,
        &admin,
        "/console/production/vendors/nope/state",
        &[("state", "draining")],
    )
    .await;
    assert_eq!(r.status(), 404);

    let r = post_form(
        app,
        &admin,
        &format!("{switch}?lang=es"),
        &[("state", "draining")],
    )
    .await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/console/production?lang=es&done=draining");
    let vendor_state = |id: &'static str| async move {
        app.store
            .vendors()
            .await
            .unwrap()
            .into_iter()
            .find(|v| v.id == id)
            .unwrap()
            .state
    };
    assert_eq!(vendor_state("vendor-a").await, "draining");
    assert_eq!(vendor_state("vendor-b").await, "active");
    let (_, html) = page(app, &admin, &location(&r)).await;
    assert!(html.contains("Proveedor en drenaje"));
    let row = section(&html, "<th scope=\"row\">vendor-a</th>", "</tr>");
    assert!(row.contains("en drenaje") && row.contains("Volver a activar"));

    // Signed in 11 minutes ago: the switch asks for the password again and
    // comes back to the production page; nothing changes.
    let token = admin.cookie.split_once('=').unwrap().1;
    app.store
        .set_session_authenticated_at(&token_hash(token), auth::now_ms() - 11 * 60_000)
        .await
        .unwrap();
    let r = post_form(app, &admin, switch, &[("state", "active")]).await;
    assert_eq!(r.status(), 303);
    assert_eq!(
        location(&r),
        "/console/reauth?next=%2Fconsole%2Fproduction%3Flang%3Des&lang=es"
    );
    assert_eq!(vendor_state("vendor-a").await, "draining");
    let r = client()
        .get(app.url("/console/production"))
        .header(COOKIE, &admin.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "reading needs no fresh sign-in");
}

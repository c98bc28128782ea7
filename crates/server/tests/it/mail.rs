//! Confirmation mail through a real SMTP server (mailin-embedded on loopback):
//! while the server is down mail waits in the outbox; when it is back, it goes.

use crate::support::*;
use pasaporte_store::testing::TestDb;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Mails received: recipients and the raw message.
pub type Mails = Arc<Mutex<Vec<(Vec<String>, String)>>>;

#[derive(Clone, Default)]
struct Inbox {
    mails: Mails,
    to: Vec<String>,
    data: Vec<u8>,
}

impl mailin_embedded::Handler for Inbox {
    fn data_start(
        &mut self,
        _domain: &str,
        _from: &str,
        _is8bit: bool,
        to: &[String],
    ) -> mailin_embedded::Response {
        self.to = to.to_vec();
        self.data.clear();
        mailin_embedded::response::OK
    }
    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.data.extend_from_slice(buf);
        Ok(())
    }
    fn data_end(&mut self) -> mailin_embedded::Response {
        let text = String::from_utf8_lossy(&self.data).into_owned();
        self.mails.lock().unwrap().push((self.to.clone(), text));
        mailin_embedded::response::OK
    }
}

/// A real SMTP server on `listener` that keeps every mail it is given.
pub fn start_smtp(listener: std::net::TcpListener) -> Mails {
    let inbox = Inbox::default();
    let mails = inbox.mails.clone();
    let mut server = mailin_embedded::Server::new(inbox);
    server.with_name("smtp.test").with_tcp_listener(listener);
    std::thread::spawn(move || {
        let _ = server.serve();
    });
    mails
}

async fn poll<F: Fn() -> bool>(what: &str, f: F) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !f() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

crate::both_databases!(
    mail_waits_for_the_server_then_arrives,
    three_nodes_send_every_mail_once,
);

async fn mail_waits_for_the_server_then_arrives(db: TestDb) {
    // A port with nothing listening: the mail server is down.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut smtp = no_smtp();
    smtp.smtp_host = Some("127.0.0.1".into());
    smtp.smtp_port = port;
    let app = spawn_app_with(db, smtp).await;
    let start = app.free_slots("TST").await.remove(0);
    let (s, v) = app
        .book(&booking_body("TST", &start, vec![person(1)]))
        .await;
    assert_eq!(s, 201, "booking does not wait for mail");
    let code = v["code"].as_str().unwrap().to_string();
    // The worker tries, fails, and keeps the mail.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let st = app.store.outbox_stats().await.unwrap();
        if st.failing == 1 {
            assert_eq!((st.waiting, st.sent), (1, 0));
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no failed attempt recorded: {st:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    // The mail server comes up: the mail is delivered once.
    let mails = start_smtp(std::net::TcpListener::bind(("127.0.0.1", port)).unwrap());
    poll("the mail", || !mails.lock().unwrap().is_empty()).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while app.store.outbox_stats().await.unwrap().sent != 1 {
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mails = mails.lock().unwrap().clone();
    assert_eq!(mails.len(), 1, "sent exactly once");
    let (to, data) = &mails[0];
    assert_eq!(to, &vec!["ana@example.co".to_string()]);
    let body = data.replace("=\r\n", "");
    assert!(body.contains(&code), "the mail carries the code");
    assert!(body.contains("text/calendar"), "with the calendar file");
    assert!(
        body.contains(&format!("/citas/{code}?clave=")),
        "and the manage link"
    );
}

/// Three nodes on one database and one mail server: each node runs the
/// outbox worker, and each mail goes out once (the worker's lease).
async fn three_nodes_send_every_mail_once(db: TestDb) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut smtp = no_smtp();
    smtp.smtp_host = Some("127.0.0.1".into());
    smtp.smtp_port = listener.local_addr().unwrap().port();
    smtp.outbox_interval_ms = 20;
    let mails = start_smtp(listener);
    let (store, url) = pasaporte_store::testing::fresh(db).await.unwrap();
    pasaporte::import_offices(&store, TEST_OFFICES_CSV)
        .await
        .unwrap();
    let mut nodes = Vec::new();
    for _ in 0..3 {
        nodes.push(spawn_on(store.clone(), url.clone(), smtp.clone()).await);
    }
    let start = nodes[0].free_slots("TST").await.remove(0);
    let mut codes = Vec::new();
    for n in 0..30u64 {
        let node = &nodes[n as usize % 3];
        let (s, v) = node
            .book(&booking_body("TST", &start, vec![person(n)]))
            .await;
        assert_eq!(s, 201, "{v}");
        codes.push(v["code"].as_str().unwrap().to_string());
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while store.outbox_stats().await.unwrap().sent != 30 {
        assert!(
            std::time::Instant::now() < deadline,
            "the mails were not all sent"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    // Ten more passes of every node's worker: a second sender would show.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mails = mails.lock().unwrap().clone();
    for code in &codes {
        let carrying = mails
            .iter()
            .filter(|(_, data)| data.replace("=\r\n", "").contains(code.as_str()))
            .count();
        assert_eq!(
            carrying, 1,
            "booking {code}'s mail was sent {carrying} times"
        );
    }
    assert_eq!(mails.len(), 30);
}

//! The run's mail server: a small SMTP sink on loopback that every node's
//! outbox worker sends to. It counts each message by its `Message-ID` (the
//! outbox row's id), so the report can say whether every mail went out
//! exactly once however many nodes ran, and it reads the proof-of-email
//! links out of the messages the way a mail client would.
//!
//! Only what lettre's client sends is understood (EHLO/HELO, MAIL, RCPT,
//! DATA, RSET, NOOP, QUIT); everything is kept in memory, bounded.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};

/// One SMTP line, at most (RFC 5321 says 1000 for text lines).
const LINE_MAX: usize = 8 * 1024;
/// One message, at most (a booking mail with its calendar file is a few KiB).
const MESSAGE_MAX: usize = 1024 * 1024;

/// What the sink has received.
#[derive(Default)]
pub struct Inbox {
    /// Messages accepted (DATA ended with 250).
    pub received: u64,
    /// How many times each Message-ID came.
    pub by_message_id: HashMap<String, u32>,
    /// Messages without a Message-ID (none expected).
    pub without_id: u64,
    /// Proof-of-email links: request code → token.
    pub verify_tokens: BTreeMap<String, String>,
}

/// A running sink; stops when dropped.
pub struct SmtpSink {
    pub addr: SocketAddr,
    pub inbox: Arc<Mutex<Inbox>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SmtpSink {
    pub async fn start() -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let inbox = Arc::new(Mutex::new(Inbox::default()));
        let shared = inbox.clone();
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok((stream, _)) => {
                            let inbox = shared.clone();
                            conns.spawn(async move {
                                if let Err(e) = session(stream, inbox).await {
                                    tracing::debug!(error = %e, "SMTP sink session ended");
                                }
                            });
                        }
                        Err(e) => tracing::warn!(error = %e, "SMTP sink accept"),
                    },
                    Some(_) = conns.join_next(), if !conns.is_empty() => {}
                }
            }
        });
        Ok(Self { addr, inbox, task })
    }

    /// (messages received, distinct Message-IDs among them).
    pub fn counts(&self) -> (u64, u64) {
        match self.inbox.lock() {
            Ok(i) => (i.received, i.by_message_id.len() as u64),
            Err(_) => (0, 0),
        }
    }

    pub fn verify_tokens(&self) -> BTreeMap<String, String> {
        self.inbox
            .lock()
            .map(|i| i.verify_tokens.clone())
            .unwrap_or_default()
    }
}

async fn session(stream: tokio::net::TcpStream, inbox: Arc<Mutex<Inbox>>) -> anyhow::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    write.write_all(b"220 simulacro ESMTP\r\n").await?;
    let mut line = Vec::new();
    loop {
        line.clear();
        if read_line(&mut read, &mut line).await? == 0 {
            return Ok(());
        }
        let verb = String::from_utf8_lossy(&line[..line.len().min(4)]).to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" => b"250-simulacro\r\n250 8BITMIME\r\n",
            "HELO" | "MAIL" | "RCPT" | "RSET" | "NOOP" => b"250 OK\r\n",
            "QUIT" => {
                write.write_all(b"221 bye\r\n").await?;
                return Ok(());
            }
            "DATA" => {
                write.write_all(b"354 go on\r\n").await?;
                let mut message = Vec::new();
                loop {
                    line.clear();
                    anyhow::ensure!(
                        read_line(&mut read, &mut line).await? > 0,
                        "closed inside DATA"
                    );
                    if line == b".\r\n" || line == b".\n" {
                        break;
                    }
                    // Dot-stuffing: a line starting with a dot was sent with two.
                    let text = if line.starts_with(b"..") {
                        &line[1..]
                    } else {
                        &line[..]
                    };
                    anyhow::ensure!(
                        message.len() + text.len() <= MESSAGE_MAX,
                        "message over {MESSAGE_MAX} bytes"
                    );
                    message.extend_from_slice(text);
                }
                keep(&inbox, &message);
                b"250 OK\r\n"
            }
            _ => b"502 not here\r\n",
        };
        write.write_all(reply).await?;
    }
}

async fn read_line<R: tokio::io::AsyncBufRead + Unpin>(
    r: &mut R,
    line: &mut Vec<u8>,
) -> anyhow::Result<usize> {
    let n = r.read_until(b'\n', line).await?;
    anyhow::ensure!(n <= LINE_MAX, "SMTP line over {LINE_MAX} bytes");
    Ok(n)
}

fn keep(inbox: &Mutex<Inbox>, message: &[u8]) {
    let text = String::from_utf8_lossy(message);
    let id = text.lines().take_while(|l| !l.is_empty()).find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("message-id")
            .then(|| value.trim().to_string())
    });
    let body = quoted_printable(&text);
    let mut tokens = Vec::new();
    for line in body.lines() {
        let Some(at) = line.find("/solicitudes/") else {
            continue;
        };
        let rest = &line[at + "/solicitudes/".len()..];
        let Some((code, tail)) = rest.split_once('/') else {
            continue;
        };
        if let Some(token) = tail.strip_prefix("verificar?clave=") {
            tokens.push((code.to_string(), token.trim().to_string()));
        }
    }
    let Ok(mut i) = inbox.lock() else {
        return;
    };
    i.received += 1;
    match id {
        Some(id) => *i.by_message_id.entry(id).or_default() += 1,
        None => i.without_id += 1,
    }
    i.verify_tokens.extend(tokens);
}

/// Quoted-printable decoded (soft line breaks joined, `=XX` bytes), enough
/// for the ASCII links of the service's mail.
fn quoted_printable(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'=' {
            if b[i + 1..].starts_with(b"\r\n") {
                i += 3;
                continue;
            }
            if b[i + 1..].starts_with(b"\n") {
                i += 2;
                continue;
            }
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (
                b.get(i + 1).copied().and_then(hex),
                b.get(i + 2).copied().and_then(hex),
            ) {
                // Two hex digits: at most 255.
                out.push(u8::try_from(h * 16 + l).unwrap_or(b'?'));
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_link_and_the_id_of_a_quoted_printable_mail() {
        let inbox = Mutex::new(Inbox::default());
        let mail = "Message-ID: <abc@pasaporte>\r\nSubject: x\r\n\r\nAbra https://x/solicitudes/SOL-1=\r\n2/verificar?clave=3Dtok_en\r\n";
        keep(&inbox, mail.as_bytes());
        keep(&inbox, mail.as_bytes());
        let i = inbox.lock().unwrap();
        assert_eq!(i.received, 2);
        assert_eq!(i.by_message_id.get("<abc@pasaporte>"), Some(&2));
        assert_eq!(
            i.verify_tokens.get("SOL-12").map(String::as_str),
            Some("tok_en")
        );
    }
}

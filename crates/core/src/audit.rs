//! The audit trail: who did what, when, where, to which application, and the
//! tamper-evident chain that keeps the trail honest.
//!
//! An [`AuditEvent`] names people and things by id only (actor id, office
//! code, application id, state names): never personal data, so the trail can
//! be kept for as long as the law asks without becoming a second register of
//! citizens.
//!
//! The chain: events are numbered from 1 without gaps, and
//! `hash_n = SHA-256(hash_{n-1} || seq_n || canonical(event_n))`, with
//! `hash_0` 32 zero bytes and `seq_n` as 8 big-endian bytes. Editing,
//! deleting, inserting or reordering any event breaks every later link. A
//! writer who can rewrite the whole database can recompute the whole chain,
//! so every [`CHECKPOINT_EVERY_EVENTS`] events (and on demand) the head
//! `{seq, hash, signed_at_ms, key_id}` is signed with an Ed25519 key that the
//! database never sees: a rewrite then contradicts a signature it cannot
//! forge. What checkpoints cannot show is the loss of events after the last
//! checkpoint together with nothing else (deleting the tail is the same as
//! never having written it); checkpoint on demand before an export, and keep
//! the interval short, to bound that window.
//!
//! [`verify`] (and the streaming [`Verifier`]) walks events in sequence and
//! reports the first broken link.

use crate::application::Actor;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier as _, VerifyingKey};
use sha2::{Digest, Sha256};

/// A checkpoint is signed every this many events: the most events a
/// whole-database rewrite could hide between two signatures.
pub const CHECKPOINT_EVERY_EVENTS: i64 = 1_000;

/// One thing that happened. Plain strings, so that a trail read back from
/// storage (possibly tampered with) can always be hashed and verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEvent {
    /// When, in unix milliseconds.
    pub at_ms: i64,
    /// Who: a staff id, `system:<worker>`, or for a citizen the booking id
    /// (never a document number or a name).
    pub actor: String,
    /// The actor's role when acting (`Role::as_str`).
    pub role: String,
    /// What: a dotted action name such as `application.check_in`.
    pub action: String,
    /// Where: the office code.
    pub office: String,
    /// Which: the subject's id (an application id).
    pub subject: String,
    pub from_state: Option<String>,
    pub to_state: Option<String>,
    /// A staff-written reason or other short note; no personal data.
    pub detail: String,
}

impl AuditEvent {
    /// An event done by `actor`.
    pub fn by(
        actor: &Actor,
        at_ms: i64,
        action: impl Into<String>,
        office: impl Into<String>,
        subject: impl Into<String>,
    ) -> Self {
        Self {
            at_ms,
            actor: actor.id.clone(),
            role: actor.role.as_str().to_string(),
            action: action.into(),
            office: office.into(),
            subject: subject.into(),
            from_state: None,
            to_state: None,
            detail: String::new(),
        }
    }

    /// The stable byte string that is hashed: a version tag, then every field
    /// in a fixed order, integers as 8 big-endian bytes, strings as a 4-byte
    /// big-endian length and their UTF-8 bytes, options as a 0/1 byte before
    /// the value. Changing this breaks every existing chain: add a new
    /// version tag instead.
    pub fn canonical(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128);
        put_str(&mut out, "pasaporte.audit.event.v1");
        out.extend_from_slice(&self.at_ms.to_be_bytes());
        put_str(&mut out, &self.actor);
        put_str(&mut out, &self.role);
        put_str(&mut out, &self.action);
        put_str(&mut out, &self.office);
        put_str(&mut out, &self.subject);
        put_opt(&mut out, self.from_state.as_deref());
        put_opt(&mut out, self.to_state.as_deref());
        put_str(&mut out, &self.detail);
        out
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    // Fields longer than 4 GiB cannot be told apart by length; events are
    // far below that (reasons are at most 500 characters); saturate anyway.
    let len = u32::try_from(s.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn put_opt(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        None => out.push(0),
        Some(s) => {
            out.push(1);
            put_str(out, s);
        }
    }
}

/// A SHA-256 value in the chain.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChainHash([u8; 32]);

impl ChainHash {
    /// `hash_0`, the link before the first event.
    pub const GENESIS: ChainHash = ChainHash([0; 32]);

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lowercase hex, as stored.
    pub fn to_hex(&self) -> String {
        to_hex(&self.0)
    }

    pub fn from_hex(s: &str) -> Option<Self> {
        from_hex(s)?.try_into().ok().map(ChainHash)
    }
}

impl std::fmt::Debug for ChainHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ChainHash({})", self.to_hex())
    }
}

impl std::fmt::Display for ChainHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// The chain rule: `SHA-256(prev || seq || canonical(event))`.
pub fn chain_hash(prev: &ChainHash, seq: i64, event: &AuditEvent) -> ChainHash {
    let mut h = Sha256::new();
    h.update(prev.0);
    h.update(seq.to_be_bytes());
    h.update(event.canonical());
    ChainHash(h.finalize().into())
}

/// An event as stored: its place in the chain and the hashes written with it.
/// Hashes stay text so that a damaged row can still be read and reported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditRecord {
    pub seq: i64,
    pub prev_hash: String,
    pub hash: String,
    pub event: AuditEvent,
}

impl AuditRecord {
    /// The record that follows `prev` (`None` for the first event).
    pub fn next(prev: Option<(i64, &ChainHash)>, event: AuditEvent) -> Self {
        let (seq, prev_hash) = match prev {
            None => (1, ChainHash::GENESIS),
            Some((seq, hash)) => (seq + 1, *hash),
        };
        let hash = chain_hash(&prev_hash, seq, &event);
        Self {
            seq,
            prev_hash: prev_hash.to_hex(),
            hash: hash.to_hex(),
            event,
        }
    }
}

/// What a checkpoint vouches for: the chain's head at `seq` was `hash`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    pub seq: i64,
    /// Hex, as stored.
    pub hash: String,
    pub signed_at_ms: i64,
    pub key_id: String,
}

impl Checkpoint {
    /// The bytes that are signed (same encoding rules as events).
    pub fn canonical(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128);
        put_str(&mut out, "pasaporte.audit.checkpoint.v1");
        out.extend_from_slice(&self.seq.to_be_bytes());
        put_str(&mut out, &self.hash);
        out.extend_from_slice(&self.signed_at_ms.to_be_bytes());
        put_str(&mut out, &self.key_id);
        out
    }
}

/// A checkpoint and its Ed25519 signature (hex).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedCheckpoint {
    pub checkpoint: Checkpoint,
    pub signature: String,
}

impl SignedCheckpoint {
    /// One line of the anchor file and of `/api/v1/audit/checkpoints.txt`:
    /// `seq hash signed_at_ms key_id signature`, space-separated.
    pub fn to_line(&self) -> String {
        let c = &self.checkpoint;
        format!(
            "{} {} {} {} {}",
            c.seq, c.hash, c.signed_at_ms, c.key_id, self.signature
        )
    }

    /// Reads a line written by [`SignedCheckpoint::to_line`] (its signature
    /// is not checked here: see [`CheckpointKey::verifies`]).
    pub fn parse_line(line: &str) -> Option<Self> {
        let mut parts = line.split_whitespace();
        let seq = parts.next()?.parse().ok()?;
        let hash = parts.next()?.to_string();
        let signed_at_ms = parts.next()?.parse().ok()?;
        let key_id = parts.next()?.to_string();
        let signature = parts.next()?.to_string();
        if parts.next().is_some() || ChainHash::from_hex(&hash).is_none() {
            return None;
        }
        Some(SignedCheckpoint {
            checkpoint: Checkpoint {
                seq,
                hash,
                signed_at_ms,
                key_id,
            },
            signature,
        })
    }
}

/// The chain's hash at `seq` as kept outside the database the trail lives
/// in: a line of the anchor file, a checkpoint an auditor fetched, or a pair
/// written down (`--anchor SEQ:HASH`). Checkpoints in the database protect
/// the trail from edits; only an anchor kept elsewhere shows a trail cut
/// together with its checkpoints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Anchor {
    pub seq: i64,
    pub hash: ChainHash,
}

impl Anchor {
    /// `SEQ:HASH`, the hash in 64 hexadecimal characters.
    pub fn parse(text: &str) -> Option<Self> {
        let (seq, hash) = text.trim().split_once(':')?;
        let seq: i64 = seq.trim().parse().ok()?;
        (seq >= 1).then_some(())?;
        Some(Anchor {
            seq,
            hash: ChainHash::from_hex(hash.trim())?,
        })
    }
}

/// Whether a checkpoint is due after appending event `seq`.
pub fn checkpoint_due(seq: i64) -> bool {
    seq > 0 && seq % CHECKPOINT_EVERY_EVENTS == 0
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("an Ed25519 key is 64 hexadecimal characters (32 bytes)")]
    BadHex,
    #[error("the bytes are not a valid Ed25519 public key")]
    NotAPublicKey,
}

/// The public half that verifies checkpoints; its id is derived from it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointKey {
    key: VerifyingKey,
}

impl CheckpointKey {
    pub fn from_hex(s: &str) -> Result<Self, KeyError> {
        let bytes: [u8; 32] = from_hex(s.trim())
            .and_then(|b| b.try_into().ok())
            .ok_or(KeyError::BadHex)?;
        let key = VerifyingKey::from_bytes(&bytes).map_err(|_| KeyError::NotAPublicKey)?;
        Ok(Self { key })
    }

    pub fn to_hex(&self) -> String {
        to_hex(self.key.as_bytes())
    }

    /// `ed25519:` and the first 8 bytes of SHA-256 of the public key, so that
    /// a checkpoint names the key that signed it without configuration.
    pub fn key_id(&self) -> String {
        let digest = Sha256::digest(self.key.as_bytes());
        format!("ed25519:{}", to_hex(&digest[..8]))
    }

    pub fn verifies(&self, cp: &SignedCheckpoint) -> bool {
        let Some(sig) = from_hex(&cp.signature).and_then(|b| <[u8; 64]>::try_from(b).ok()) else {
            return false;
        };
        self.key
            .verify(&cp.checkpoint.canonical(), &Signature::from_bytes(&sig))
            .is_ok()
    }
}

/// The private key that signs checkpoints, from configuration (a 32-byte
/// seed in hex). Ed25519 signing is deterministic: no randomness needed, so
/// signing stays a pure function here.
pub struct CheckpointSigner {
    key: SigningKey,
}

impl std::fmt::Debug for CheckpointSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        write!(f, "CheckpointSigner({})", self.public().key_id())
    }
}

impl CheckpointSigner {
    pub fn from_seed_hex(s: &str) -> Result<Self, KeyError> {
        let seed: [u8; 32] = from_hex(s.trim())
            .and_then(|b| b.try_into().ok())
            .ok_or(KeyError::BadHex)?;
        Ok(Self::from_seed(&seed))
    }

    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self {
            key: SigningKey::from_bytes(seed),
        }
    }

    pub fn public(&self) -> CheckpointKey {
        CheckpointKey {
            key: self.key.verifying_key(),
        }
    }

    /// Signs the head `(seq, hash)` at `now_ms`.
    pub fn sign(&self, seq: i64, hash: &ChainHash, now_ms: i64) -> SignedCheckpoint {
        let checkpoint = Checkpoint {
            seq,
            hash: hash.to_hex(),
            signed_at_ms: now_ms,
            key_id: self.public().key_id(),
        };
        let signature = to_hex(&self.key.sign(&checkpoint.canonical()).to_bytes());
        SignedCheckpoint {
            checkpoint,
            signature,
        }
    }
}

/// The outcome of verifying a trail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every link holds. Events after `checkpointed_through` are chained but
    /// not yet vouched for by a signature.
    Intact {
        count: u64,
        checkpointed_through: i64,
    },
    /// The first broken link, at `seq`.
    Broken { seq: i64, fault: Fault },
}

/// What is wrong at the first broken link.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Fault {
    #[error("event {expected} is missing (the next one present is {found})")]
    SequenceGap { expected: i64, found: i64 },
    #[error("events are out of order: {found} comes where {expected} should")]
    OutOfSequence { expected: i64, found: i64 },
    #[error("the event was moved: it links to a later event, so events were reordered")]
    Reordered,
    #[error(
        "the event does not link to the one before it (that one was changed, removed or inserted)"
    )]
    LinkBroken,
    #[error("the event's content does not match its hash (it was edited)")]
    HashMismatch,
    #[error("a stored hash is not 64 hexadecimal characters")]
    MalformedHash,
    #[error("the checkpoint's signature does not verify")]
    CheckpointSignatureBad,
    #[error("the checkpoint was signed by key {key_id}, not the key given")]
    CheckpointKeyUnknown { key_id: String },
    #[error(
        "the signed checkpoint says the chain's hash here was different (the chain was rewritten)"
    )]
    CheckpointHashMismatch,
    #[error(
        "a signed checkpoint vouches for event {checkpoint_seq}, but the trail ends at {last_seq} (its tail was removed)"
    )]
    Truncated { checkpoint_seq: i64, last_seq: i64 },
    #[error(
        "the chain's hash here differs from the anchor kept outside the database (the trail was rewritten)"
    )]
    AnchorMismatch,
    #[error(
        "an anchor kept outside the database vouches for event {anchor_seq}, but the trail ends at {last_seq} (its tail was removed)"
    )]
    AnchorBeyondEnd { anchor_seq: i64, last_seq: i64 },
    #[error(
        "no signed checkpoint covers the events from here on, written {unsigned_ms} ms ago (at most {max_ms} allowed): checkpoints were removed or the signer stopped"
    )]
    UnsignedTooLong { unsigned_ms: i64, max_ms: i64 },
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Verdict::Intact {
                count,
                checkpointed_through,
            } => write!(
                f,
                "intact: {count} events (signed through event {checkpointed_through})"
            ),
            Verdict::Broken { seq, fault } => write!(f, "broken at event {seq}: {fault}"),
        }
    }
}

/// Verifies a whole trail in memory; see [`Verifier`] for long trails.
/// `events` in the order read (by seq); `checkpoints` in any order.
pub fn verify(
    events: &[AuditRecord],
    checkpoints: &[SignedCheckpoint],
    key: &CheckpointKey,
) -> Verdict {
    let mut v = Verifier::new(checkpoints, key);
    for e in events {
        if let Err(broken) = v.push(e) {
            return broken;
        }
    }
    v.finish()
}

/// Walks a trail one event at a time, so a trail of millions of events can be
/// verified page by page. Stops at the first broken link.
pub struct Verifier<'k> {
    key: &'k CheckpointKey,
    /// Sorted by seq.
    checkpoints: Vec<SignedCheckpoint>,
    next_checkpoint: usize,
    last_seq: i64,
    last_hash: ChainHash,
    count: u64,
    checkpointed_through: i64,
    /// The first broken link, once found.
    broken: Option<Verdict>,
    /// One event held back: a break at event n is classified by looking at
    /// event n+1 (a swapped pair links to its successor).
    pending: Option<AuditRecord>,
    /// Sorted by seq.
    anchors: Vec<Anchor>,
    next_anchor: usize,
    /// `(now_ms, max_ms)`: the oldest event no checkpoint covers may be at
    /// most `max_ms` old at `now_ms`.
    freshness: Option<(i64, i64)>,
    /// The first event not yet covered by a checkpoint: its seq and time.
    oldest_unsigned: Option<(i64, i64)>,
}

impl<'k> Verifier<'k> {
    pub fn new(checkpoints: &[SignedCheckpoint], key: &'k CheckpointKey) -> Self {
        let mut checkpoints = checkpoints.to_vec();
        checkpoints.sort_by_key(|c| c.checkpoint.seq);
        Self {
            key,
            checkpoints,
            next_checkpoint: 0,
            last_seq: 0,
            last_hash: ChainHash::GENESIS,
            count: 0,
            checkpointed_through: 0,
            broken: None,
            pending: None,
            anchors: Vec::new(),
            next_anchor: 0,
            freshness: None,
            oldest_unsigned: None,
        }
    }

    /// Also checks the chain against anchors kept outside the database.
    pub fn with_anchors(mut self, anchors: &[Anchor]) -> Self {
        self.anchors = anchors.to_vec();
        self.anchors.sort_by_key(|a| a.seq);
        self
    }

    /// Also refuses a trail whose oldest event not covered by a signed
    /// checkpoint was written more than `max_ms` before `now_ms` (a service
    /// signs every checkpoint interval; this catches checkpoints deleted
    /// together with the events they covered, or rewritten events whose
    /// checkpoints were removed).
    pub fn with_freshness(mut self, now_ms: i64, max_ms: i64) -> Self {
        self.freshness = Some((now_ms, max_ms));
        self
    }

    /// Checks the next event. After an `Err`, further calls return the same
    /// verdict.
    pub fn push(&mut self, record: &AuditRecord) -> Result<(), Verdict> {
        if let Some(b) = &self.broken {
            return Err(b.clone());
        }
        if let Some(prev) = self.pending.take() {
            self.check(&prev, Some(record))?;
        }
        self.pending = Some(record.clone());
        Ok(())
    }

    /// The verdict once every event has been pushed.
    pub fn finish(mut self) -> Verdict {
        if let Some(b) = self.broken.take() {
            return b;
        }
        if let Some(prev) = self.pending.take()
            && let Err(b) = self.check(&prev, None)
        {
            return b;
        }
        // Checkpoints beyond the last event: a removed tail (or a forged
        // checkpoint, which the signature check tells apart).
        if let Some(cp) = self.checkpoints.get(self.next_checkpoint).cloned() {
            let at = self.last_seq + 1;
            if let Err(fault) = self.check_signature(&cp) {
                return Verdict::Broken { seq: at, fault };
            }
            return Verdict::Broken {
                seq: at,
                fault: Fault::Truncated {
                    checkpoint_seq: cp.checkpoint.seq,
                    last_seq: self.last_seq,
                },
            };
        }
        if let Some(a) = self.anchors.get(self.next_anchor) {
            return Verdict::Broken {
                seq: self.last_seq + 1,
                fault: Fault::AnchorBeyondEnd {
                    anchor_seq: a.seq,
                    last_seq: self.last_seq,
                },
            };
        }
        if let (Some((now_ms, max_ms)), Some((seq, at_ms))) = (self.freshness, self.oldest_unsigned)
            && now_ms.saturating_sub(at_ms) > max_ms
        {
            return Verdict::Broken {
                seq,
                fault: Fault::UnsignedTooLong {
                    unsigned_ms: now_ms.saturating_sub(at_ms),
                    max_ms,
                },
            };
        }
        Verdict::Intact {
            count: self.count,
            checkpointed_through: self.checkpointed_through,
        }
    }

    fn fail(&mut self, seq: i64, fault: Fault) -> Result<(), Verdict> {
        let v = Verdict::Broken { seq, fault };
        self.broken = Some(v.clone());
        Err(v)
    }

    fn check(&mut self, r: &AuditRecord, next: Option<&AuditRecord>) -> Result<(), Verdict> {
        let expected = self.last_seq + 1;
        // A checkpoint for an event that cannot exist (seq < 1).
        if let Some(cp) = self.checkpoints.get(self.next_checkpoint).cloned()
            && cp.checkpoint.seq < expected
        {
            let fault = self
                .check_signature(&cp)
                .err()
                .unwrap_or(Fault::CheckpointHashMismatch);
            return self.fail(cp.checkpoint.seq, fault);
        }
        if r.seq > expected {
            return self.fail(
                expected,
                Fault::SequenceGap {
                    expected,
                    found: r.seq,
                },
            );
        }
        if r.seq < expected {
            return self.fail(
                r.seq,
                Fault::OutOfSequence {
                    expected,
                    found: r.seq,
                },
            );
        }
        let (Some(prev), Some(stored)) = (
            ChainHash::from_hex(&r.prev_hash),
            ChainHash::from_hex(&r.hash),
        ) else {
            return self.fail(r.seq, Fault::MalformedHash);
        };
        if prev != self.last_hash {
            // A swapped pair: this event links to the hash stored on the
            // event after it.
            let fault = if next.is_some_and(|n| n.hash == r.prev_hash) {
                Fault::Reordered
            } else {
                Fault::LinkBroken
            };
            return self.fail(r.seq, fault);
        }
        if chain_hash(&prev, r.seq, &r.event) != stored {
            return self.fail(r.seq, Fault::HashMismatch);
        }
        self.last_seq = r.seq;
        self.last_hash = stored;
        self.count += 1;
        while let Some(a) = self.anchors.get(self.next_anchor) {
            if a.seq > r.seq {
                break;
            }
            self.next_anchor += 1;
            if a.seq < r.seq || a.hash != stored {
                return self.fail(a.seq, Fault::AnchorMismatch);
            }
        }
        if self.oldest_unsigned.is_none() {
            self.oldest_unsigned = Some((r.seq, r.event.at_ms));
        }
        while let Some(cp) = self.checkpoints.get(self.next_checkpoint).cloned() {
            if cp.checkpoint.seq != r.seq {
                break;
            }
            self.next_checkpoint += 1;
            if let Err(fault) = self.check_signature(&cp) {
                return self.fail(r.seq, fault);
            }
            if ChainHash::from_hex(&cp.checkpoint.hash) != Some(stored) {
                return self.fail(r.seq, Fault::CheckpointHashMismatch);
            }
            self.checkpointed_through = r.seq;
            self.oldest_unsigned = None;
        }
        Ok(())
    }

    fn check_signature(&self, cp: &SignedCheckpoint) -> Result<(), Fault> {
        if cp.checkpoint.key_id != self.key.key_id() {
            return Err(Fault::CheckpointKeyUnknown {
                key_id: cp.checkpoint.key_id.clone(),
            });
        }
        if !self.key.verifies(cp) {
            return Err(Fault::CheckpointSignatureBad);
        }
        Ok(())
    }
}

fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

fn from_hex(s: &str) -> Option<Vec<u8>> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let b = s.as_bytes();
    if !b.len().is_multiple_of(2) {
        return None;
    }
    b.chunks_exact(2)
        .map(|p| Some(nibble(p[0])? << 4 | nibble(p[1])?))
        .collect()
}

/// Builds a chain of `events` from the genesis; for tests and tools.
pub fn chain(events: Vec<AuditEvent>) -> Vec<AuditRecord> {
    let mut out: Vec<AuditRecord> = Vec::with_capacity(events.len());
    for e in events {
        let prev = out
            .last()
            .and_then(|r| ChainHash::from_hex(&r.hash).map(|h| (r.seq, h)));
        let rec = AuditRecord::next(prev.as_ref().map(|(s, h)| (*s, h)), e);
        out.push(rec);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::application::Role;

    fn actor() -> Actor {
        Actor {
            id: "clerk-7".into(),
            role: Role::Clerk,
        }
    }

    fn event(i: i64) -> AuditEvent {
        let mut e = AuditEvent::by(
            &actor(),
            1_700_000_000_000 + i,
            "application.check_in",
            "BOG1",
            format!("app-{i}"),
        );
        e.from_state = Some("booked".into());
        e.to_state = Some("checked_in".into());
        e
    }

    fn signer() -> CheckpointSigner {
        CheckpointSigner::from_seed(&[7; 32])
    }

    fn trail(n: i64) -> Vec<AuditRecord> {
        chain((1..=n).map(event).collect())
    }

    fn head_checkpoint(records: &[AuditRecord], s: &CheckpointSigner) -> SignedCheckpoint {
        let last = records.last().unwrap();
        s.sign(last.seq, &ChainHash::from_hex(&last.hash).unwrap(), 9)
    }

    fn broken(v: Verdict) -> (i64, Fault) {
        match v {
            Verdict::Broken { seq, fault } => (seq, fault),
            Verdict::Intact { .. } => panic!("expected a broken trail"),
        }
    }

    #[test]
    fn canonical_is_stable_and_unambiguous() {
        let e = event(1);
        assert_eq!(e.canonical(), event(1).canonical());
        // Moving a character between fields changes the bytes.
        let mut a = e.clone();
        a.actor = "clerk-7x".into();
        a.role = "lerk".into();
        let mut b = e.clone();
        b.actor = "clerk-7".into();
        b.role = "xlerk".into();
        assert_ne!(a.canonical(), b.canonical());
        // None and Some("") differ.
        let mut c = e.clone();
        c.detail = String::new();
        c.from_state = None;
        let mut d = c.clone();
        d.from_state = Some(String::new());
        assert_ne!(c.canonical(), d.canonical());
    }

    #[test]
    fn known_answer_for_first_link() {
        // Pins the encoding: a change here breaks every stored chain.
        let r = AuditRecord::next(None, event(1));
        assert_eq!(r.seq, 1);
        assert_eq!(r.prev_hash, "0".repeat(64));
        let mut h = Sha256::new();
        h.update([0u8; 32]);
        h.update(1i64.to_be_bytes());
        h.update(event(1).canonical());
        assert_eq!(r.hash, to_hex(&h.finalize()));
    }

    #[test]
    fn hex_round_trip() {
        let h = chain_hash(&ChainHash::GENESIS, 1, &event(1));
        assert_eq!(ChainHash::from_hex(&h.to_hex()), Some(h));
        assert_eq!(ChainHash::from_hex(&h.to_hex().to_uppercase()), Some(h));
        assert_eq!(ChainHash::from_hex("zz"), None);
        assert_eq!(ChainHash::from_hex(&"0".repeat(63)), None);
    }

    #[test]
    fn intact_trail_and_checkpoints() {
        let s = signer();
        let t = trail(5);
        let cp3 = s.sign(3, &ChainHash::from_hex(&t[2].hash).unwrap(), 1);
        assert_eq!(
            verify(&t, &[cp3], &s.public()),
            Verdict::Intact {
                count: 5,
                checkpointed_through: 3
            }
        );
        assert_eq!(
            verify(&[], &[], &s.public()),
            Verdict::Intact {
                count: 0,
                checkpointed_through: 0
            }
        );
    }

    #[test]
    fn each_tampering_is_found_at_its_place() {
        let s = signer();
        let key = s.public();
        let t = trail(6);
        let cps = [head_checkpoint(&t, &s)];

        let mut edited = t.clone();
        edited[2].event.office = "MED1".into();
        assert_eq!(
            broken(verify(&edited, &cps, &key)),
            (3, Fault::HashMismatch)
        );

        let mut deleted = t.clone();
        deleted.remove(2);
        assert_eq!(
            broken(verify(&deleted, &cps, &key)),
            (
                3,
                Fault::SequenceGap {
                    expected: 3,
                    found: 4
                }
            )
        );

        // Deleted and renumbered: the link breaks instead.
        let renumbered: Vec<_> = deleted
            .iter()
            .cloned()
            .enumerate()
            .map(|(i, mut r)| {
                r.seq = i as i64 + 1;
                r
            })
            .collect();
        assert_eq!(broken(verify(&renumbered, &cps, &key)).0, 3);

        // Swapped seq numbers of events 3 and 4.
        let mut swapped = t.clone();
        swapped.swap(2, 3);
        swapped[2].seq = 3;
        swapped[3].seq = 4;
        assert_eq!(broken(verify(&swapped, &cps, &key)), (3, Fault::Reordered));

        // Out of sequence as given.
        let mut unsorted = t.clone();
        unsorted.swap(2, 3);
        assert_eq!(
            broken(verify(&unsorted, &cps, &key)),
            (
                3,
                Fault::SequenceGap {
                    expected: 3,
                    found: 4
                }
            )
        );

        let truncated = &t[..4];
        assert_eq!(
            broken(verify(truncated, &cps, &key)),
            (
                5,
                Fault::Truncated {
                    checkpoint_seq: 6,
                    last_seq: 4
                }
            )
        );

        let mut bad_hash = t.clone();
        bad_hash[1].hash = "nothex".into();
        assert_eq!(
            broken(verify(&bad_hash, &cps, &key)),
            (2, Fault::MalformedHash)
        );
    }

    #[test]
    fn a_recomputed_chain_is_caught_by_the_checkpoint() {
        let s = signer();
        let t = trail(6);
        let cps = [head_checkpoint(&t, &s)];
        let mut events: Vec<_> = t.iter().map(|r| r.event.clone()).collect();
        events[1].detail = "forged".into();
        let forged = chain(events);
        assert_eq!(
            broken(verify(&forged, &cps, &s.public())),
            (6, Fault::CheckpointHashMismatch)
        );
    }

    /// Verifies with anchors kept outside and the freshness rule: at
    /// `now_ms`, at most `max_ms` unsigned.
    fn verify_kept(
        records: &[AuditRecord],
        cps: &[SignedCheckpoint],
        anchors: &[Anchor],
        now_ms: i64,
    ) -> Verdict {
        let key = signer().public();
        let mut v = Verifier::new(cps, &key)
            .with_anchors(anchors)
            .with_freshness(now_ms, 60_000);
        for r in records {
            if let Err(b) = v.push(r) {
                return b;
            }
        }
        v.finish()
    }

    fn anchor_of(r: &AuditRecord) -> Anchor {
        Anchor::parse(&format!("{}:{}", r.seq, r.hash)).unwrap()
    }

    /// The attacks of the outside review (issue 12, item 5): each passed
    /// the database's own checkpoints; each fails against an anchor kept
    /// elsewhere or the freshness rule.
    #[test]
    fn cuts_the_database_cannot_hide() {
        let s = signer();
        let t = trail(10);
        let at = |seq: usize| t[seq - 1].event.at_ms;
        let cp = |seq: usize| {
            s.sign(
                seq as i64,
                &ChainHash::from_hex(&t[seq - 1].hash).unwrap(),
                at(seq),
            )
        };
        let all_cps = [cp(4), cp(8), cp(10)];
        // The anchor file holds every checkpoint the service signed.
        let anchors: Vec<Anchor> = [4, 8, 10].iter().map(|&i| anchor_of(&t[i - 1])).collect();
        let now = at(10) + 1_000;
        assert!(matches!(
            verify_kept(&t, &all_cps, &anchors, now),
            Verdict::Intact {
                count: 10,
                checkpointed_through: 10
            }
        ));
        // The last events deleted with the checkpoints above them.
        assert_eq!(
            broken(verify_kept(&t[..8], &all_cps[..2], &anchors, now)),
            (
                9,
                Fault::AnchorBeyondEnd {
                    anchor_seq: 10,
                    last_seq: 8
                }
            )
        );
        // The trail cut in half with its checkpoints.
        assert_eq!(
            broken(verify_kept(&t[..4], &all_cps[..1], &anchors, now)),
            (
                5,
                Fault::AnchorBeyondEnd {
                    anchor_seq: 8,
                    last_seq: 4
                }
            )
        );
        // Every row deleted.
        assert_eq!(
            broken(verify_kept(&[], &[], &anchors, now)),
            (
                1,
                Fault::AnchorBeyondEnd {
                    anchor_seq: 4,
                    last_seq: 0
                }
            )
        );
        // All checkpoints deleted: no anchor needed, the head is unsigned
        // for longer than the interval allows.
        let later = at(1) + 61_000;
        assert_eq!(
            broken(verify_kept(&t, &[], &[], later)),
            (
                1,
                Fault::UnsignedTooLong {
                    unsigned_ms: 61_000,
                    max_ms: 60_000
                }
            )
        );
        // ...but a trail signed a moment ago, or with a fresh tail, passes.
        assert!(matches!(
            verify_kept(&t, &[], &[], at(1) + 1_000),
            Verdict::Intact { .. }
        ));
        assert!(matches!(
            verify_kept(&t, &all_cps[..2], &[], at(9) + 1_000),
            Verdict::Intact { .. }
        ));
        // Events rewritten from seq 5 with hashes recomputed and the later
        // checkpoints deleted.
        let mut events: Vec<_> = t.iter().map(|r| r.event.clone()).collect();
        for e in &mut events[4..] {
            e.detail = "rewritten".into();
        }
        let rewritten = chain(events);
        assert_eq!(
            broken(verify_kept(&rewritten, &all_cps[..1], &anchors, now)),
            (8, Fault::AnchorMismatch)
        );
        assert_eq!(
            broken(verify_kept(&rewritten, &all_cps[..1], &[], now + 60_000)),
            (
                5,
                Fault::UnsignedTooLong {
                    unsigned_ms: now + 60_000 - at(5),
                    max_ms: 60_000
                }
            )
        );
    }

    #[test]
    fn anchor_lines_and_pairs_parse() {
        let s = signer();
        let t = trail(3);
        let cp = head_checkpoint(&t, &s);
        let line = cp.to_line();
        assert_eq!(SignedCheckpoint::parse_line(&line), Some(cp.clone()));
        assert!(
            s.public()
                .verifies(&SignedCheckpoint::parse_line(&line).unwrap())
        );
        assert_eq!(SignedCheckpoint::parse_line("3 nothex 9 k sig"), None);
        assert_eq!(SignedCheckpoint::parse_line(&format!("{line} extra")), None);
        assert_eq!(
            Anchor::parse(&format!("3:{}", t[2].hash)),
            Some(anchor_of(&t[2]))
        );
        for bad in ["", "3", "x:00", "0:".to_string().as_str(), "3:abc"] {
            assert_eq!(Anchor::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn checkpoint_signatures_are_checked() {
        let s = signer();
        let t = trail(4);
        let mut cp = head_checkpoint(&t, &s);
        cp.checkpoint.signed_at_ms += 1;
        assert_eq!(
            broken(verify(&t, &[cp], &s.public())),
            (4, Fault::CheckpointSignatureBad)
        );

        let other = CheckpointSigner::from_seed(&[8; 32]);
        let cp = head_checkpoint(&t, &other);
        assert!(matches!(
            broken(verify(&t, &[cp], &s.public())),
            (4, Fault::CheckpointKeyUnknown { .. })
        ));

        // A forged checkpoint beyond the end is a bad signature, not a
        // truncation.
        let mut cp = head_checkpoint(&t, &s);
        cp.checkpoint.seq = 10;
        assert_eq!(
            broken(verify(&t, &[cp], &s.public())),
            (5, Fault::CheckpointSignatureBad)
        );
    }

    #[test]
    fn keys_parse_from_hex() {
        let s = CheckpointSigner::from_seed_hex(&"07".repeat(32)).unwrap();
        assert_eq!(s.public(), signer().public());
        let k = CheckpointKey::from_hex(&s.public().to_hex()).unwrap();
        assert_eq!(k.key_id(), s.public().key_id());
        assert!(k.key_id().starts_with("ed25519:"));
        assert_eq!(
            CheckpointKey::from_hex("abc").unwrap_err(),
            KeyError::BadHex
        );
        assert!(CheckpointSigner::from_seed_hex("").is_err());
        assert!(!format!("{s:?}").contains(&"07".repeat(32)));
    }

    #[test]
    fn checkpoints_fall_due_every_interval() {
        assert!(!checkpoint_due(0));
        assert!(!checkpoint_due(1));
        assert!(checkpoint_due(CHECKPOINT_EVERY_EVENTS));
        assert!(!checkpoint_due(CHECKPOINT_EVERY_EVENTS + 1));
    }
}

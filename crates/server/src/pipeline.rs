//! The production pipeline: from an approved application to the passport in
//! its holder's hands.
//!
//! 1. [`order_round`]: each approved application (and each one in
//!    production whose last order failed) gets an order: a passport number
//!    allocated for that order, a vendor chosen by the routing rules, a blank
//!    booklet reserved at that vendor's site, the personalisation record
//!    (data page, MRZ, chip files signed by the Document Signer) sealed into
//!    the order's row, queued. The application moves to `in_production` in
//!    the same transaction.
//! 2. [`send_round`]: the outbox. Queued orders go to their vendor in signed
//!    batches; `accepted`/`duplicate` mark them held by the vendor; failures
//!    back off, and after [`DEAD_AFTER_FAILURES`] passes (or a refusal) the
//!    order is a dead letter that a supervisor re-sends ([`resend_order`]).
//! 3. [`reroute_round`]: orders whose vendor is draining (or that have none
//!    yet) move to an active vendor, unless the old vendor already holds
//!    them (asked with `GET /v1/orders/{id}` when it may have seen them);
//!    held orders finish where they are.
//! 4. [`apply_vendor_event`]: the signed callbacks, each event id applied
//!    once, orders only moving forward, the booklet's custody following
//!    (printed → personalised, shipped → dispatched, quality failed →
//!    spoiled and the application re-ordered).
//! 5. At the office: [`receive_booklet`] (the MRZ typed or scanned must match
//!    the record, else the booklet is spoiled and re-made), [`hand_over`]
//!    (identity checked; a minor's passport only to a guardian on record;
//!    the previous passport cancelled), [`issue_emergency`] (same day, from
//!    the office's own stock, no vendor), and [`annul_round`] (not collected
//!    within six months).
//!
//! Every step writes its audit event in its transaction. Nothing here holds
//! a transaction across a network call or a signature.

use crate::app::App;
use crate::crypto::at;
use crate::production::{PersonalisationRecord, input_from_application, personalise};
use crate::signing::SigningKey;
use crate::vendors::protocol::{self, ChipFilesB64, DataPage, Outcome, RejectReason};
use crate::vendors::{EventKind, HttpVendor, PrintingVendor, VendorError, VendorEvent};
use crate::workers::{internal, system};
use crate::workflow::{
    self, ContactDoc, IdentityDoc, OfficeScope, TxResult, WorkError, after_transition, domain,
    retrying, save_transition,
};
use pasaporte_core::application::{Actor, Command, Role, State};
use pasaporte_core::audit::AuditEvent;
use pasaporte_core::fees::PassportType;
use pasaporte_core::jiff::{SignedDuration, Timestamp};
use pasaporte_core::production::{BookletType, CustodyEvent, PassportNumber};
use pasaporte_store::{
    self as store, MailRow, NewOrder, OrderRow, OrderState, StoreError, Tx, VendorRow,
};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// The passport number series this authority issues from.
pub const PASSPORT_SERIES: &str = "AX";
/// Applications ordered per transaction: one vendor batch.
pub const ORDER_CHUNK: usize = protocol::BATCH_ORDERS_MAX;
/// Applications looked at per order round.
pub const ORDER_ROUND_MAX: u32 = 2_000;
/// Batches sent to one vendor per round, so that one busy vendor does not
/// hold the others' orders back.
pub const SEND_BATCHES_PER_ROUND: usize = 40;
/// Passes that failed in a row before an order becomes a dead letter.
pub const DEAD_AFTER_FAILURES: i64 = 8;
/// Longest wait between two passes of a failing order.
pub const RETRY_MAX_MS: i64 = 10 * 60_000;
/// Orders moved per re-routing round.
pub const REROUTE_ROUND_MAX: u32 = 500;
/// Applications annulled per round.
pub const ANNUL_ROUND_MAX: u32 = 500;

/// How the pipeline talks to vendors.
#[derive(Clone, Debug)]
pub struct VendorSettings {
    pub attempt_timeout: Duration,
    /// Attempts per batch within one pass (the outbox retries across passes).
    pub attempts: u32,
    pub backoff_first: Duration,
    /// Wait before an order's second pass; doubles per failure up to
    /// [`RETRY_MAX_MS`].
    pub retry_first_ms: i64,
}

impl Default for VendorSettings {
    fn default() -> Self {
        Self {
            attempt_timeout: Duration::from_millis(
                crate::vendors::client::ATTEMPT_TIMEOUT_MS_DEFAULT,
            ),
            attempts: 2,
            backoff_first: Duration::from_millis(crate::vendors::client::BACKOFF_FIRST_MS),
            retry_first_ms: 2_000,
        }
    }
}

/// A vendor ready to be called: its row, its key, its client.
pub struct VendorHandle {
    pub row: VendorRow,
    pub key: SigningKey,
    pub client: HttpVendor,
}

/// Clients of the vendors, rebuilt when a vendor's row changes.
#[derive(Default)]
pub struct VendorCache {
    by_id: std::sync::Mutex<HashMap<String, Arc<VendorHandle>>>,
}

impl VendorCache {
    /// Every vendor with its client and key.
    pub async fn load(&self, app: &App) -> Result<Vec<Arc<VendorHandle>>, WorkError> {
        let rows = app.store.vendors().await?;
        let mut out = Vec::with_capacity(rows.len());
        let mut cache = self
            .by_id
            .lock()
            .map_err(|_| internal("vendor cache poisoned"))?;
        for row in rows {
            if let Some(h) = cache.get(&row.id)
                && h.row == row
            {
                out.push(h.clone());
                continue;
            }
            let secret = app.keys.open(at::vendor_key(&row.id), &row.key_enc)?;
            let key = SigningKey::new(&row.id, secret.into_bytes()).map_err(internal)?;
            let s = &app.vendor_settings;
            let client = HttpVendor::new(&row.base_url, key.clone(), s.attempt_timeout, s.attempts)
                .map_err(internal)?
                .with_backoff_first(s.backoff_first);
            let h = Arc::new(VendorHandle { row, key, client });
            cache.insert(h.row.id.clone(), h.clone());
            out.push(h);
        }
        Ok(out)
    }
}

/// Adds or replaces a vendor; its key is sealed with the data key.
#[allow(clippy::too_many_arguments)]
pub async fn save_vendor(
    store: &pasaporte_store::Store,
    keys: &crate::crypto::Keyring,
    id: &str,
    base_url: &str,
    secret: &str,
    site: &str,
    share: i64,
    passport_types: &str,
    offices: &str,
    now: Timestamp,
) -> anyhow::Result<()> {
    if !protocol::is_id(id) {
        anyhow::bail!("the vendor id must be 1 to 64 characters of A-Z a-z 0-9 . _ -");
    }
    // The same checks a client makes, before anything is stored.
    let key = SigningKey::new(id, secret.as_bytes().to_vec())?;
    HttpVendor::new(base_url, key, Duration::from_secs(1), 1)?;
    if share < 0 {
        anyhow::bail!("the share must be 0 or more");
    }
    for t in passport_types.split(',').map(str::trim) {
        if t != "*" && PassportType::parse(t).is_none() {
            anyhow::bail!("unknown passport type '{t}' (ordinario, ejecutivo, fronterizo, or *)");
        }
    }
    if site.trim().is_empty() || offices.trim().is_empty() || passport_types.trim().is_empty() {
        anyhow::bail!("give the site, the offices (or *) and the passport types (or *)");
    }
    store
        .upsert_vendor(&VendorRow {
            id: id.into(),
            base_url: base_url.into(),
            key_enc: keys.seal(at::vendor_key(id), secret)?,
            site: site.into(),
            state: "active".into(),
            share,
            passport_types: passport_types.into(),
            offices: offices.into(),
            updated_ms: now.as_millisecond(),
        })
        .await?;
    Ok(())
}

/// Marks a vendor active or draining (the vendor switch), audited. A
/// draining vendor gets no new orders; [`reroute_round`] moves its orders
/// it does not hold yet.
pub async fn set_vendor_state(
    store: &pasaporte_store::Store,
    actor: &Actor,
    id: &str,
    state: &str,
    now: Timestamp,
) -> Result<(), WorkError> {
    let mut event = AuditEvent::by(
        actor,
        now.as_millisecond(),
        format!("vendor.{state}"),
        "*",
        id,
    );
    event.detail = id.to_string();
    retrying!(async {
        let mut tx = store.begin_write().await?;
        store::set_vendor_state(&mut tx, id, state, &event, now.as_millisecond()).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok::<_, WorkError>(())
    })
}

// --- Routing ---------------------------------------------------------------

/// The vendors that may take an order of `passport_type` for `office`, in
/// the order to try them: weighted by share, the first pick a stable
/// function of the order id (so a retried choice is the same choice).
fn candidates<'a>(
    vendors: &'a [Arc<VendorHandle>],
    passport_type: &str,
    office: &str,
    order_id: &str,
) -> Vec<&'a VendorHandle> {
    let mut allowed: Vec<&VendorHandle> = vendors
        .iter()
        .map(|h| h.as_ref())
        .filter(|h| h.row.is_active() && h.row.share > 0 && h.row.takes(passport_type, office))
        .collect();
    let total: i64 = allowed.iter().map(|h| h.row.share).sum();
    if total <= 0 {
        return allowed;
    }
    let digest = {
        use sha2::Digest as _;
        sha2::Sha256::digest(order_id.as_bytes())
    };
    let mut pick = i64::from(u32::from_be_bytes([
        digest[0], digest[1], digest[2], digest[3],
    ])) % total;
    let mut first = 0;
    for (i, h) in allowed.iter().enumerate() {
        if pick < h.row.share {
            first = i;
            break;
        }
        pick -= h.row.share;
    }
    allowed.rotate_left(first);
    allowed
}

/// What an order needs from a vendor.
struct Need<'a> {
    passport_type: &'a str,
    office: &'a str,
    order_id: &'a str,
    application_id: &'a str,
    booklet_type: BookletType,
}

/// Chooses a vendor with a blank booklet of the needed type at its site and
/// reserves that booklet for the application, in `tx`. `None` when no
/// active vendor may take it or none has stock: the order waits visibly.
async fn route(
    tx: &mut Tx,
    vendors: &[Arc<VendorHandle>],
    need: &Need<'_>,
    actor: &Actor,
    now_ms: i64,
) -> TxResult<Option<(String, String)>> {
    for v in candidates(vendors, need.passport_type, need.office, need.order_id) {
        if let Some(serial) = store::reserve_booklet(
            tx,
            need.booklet_type,
            &v.row.site,
            need.application_id,
            &actor.id,
            now_ms,
        )
        .await?
        {
            return Ok(Some((v.row.id.clone(), serial)));
        }
    }
    Ok(None)
}

// --- Orders ------------------------------------------------------------------

/// The protocol's order for a record.
pub fn order_body(
    record: &PersonalisationRecord,
    order_id: &str,
    booklet_serial: &str,
    delivery_office: &str,
) -> protocol::Order {
    use base64::Engine as _;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    protocol::Order {
        order_id: order_id.into(),
        passport_number: record.passport_number.to_string(),
        passport_type: protocol::PassportType::Ordinary,
        booklet_pages: BookletType::for_passport(record.passport_type).pages() as u16,
        booklet_serial: booklet_serial.into(),
        data_page: DataPage {
            // Printed in capitals, accents and Ñ kept (the MRZ transliterates).
            surname: record.surnames.to_uppercase(),
            given_names: record.given_names.to_uppercase(),
            nationality: record.nationality.clone(),
            birth_date: record.birth_date.to_string(),
            sex: record.sex.as_str().into(),
            place_of_birth: record.birth_place.to_uppercase(),
            issue_date: record.issue_date.to_string(),
            expiry_date: record.expiry_date.to_string(),
            issuing_authority: record.authority.clone(),
        },
        mrz: record.mrz.to_vec(),
        chip: ChipFilesB64 {
            ef_com: b64(&record.chip.ef_com),
            dg1: b64(&record.chip.dg1),
            dg2: b64(&record.chip.dg2),
            sod: b64(&record.chip.sod),
        },
        delivery_office: delivery_office.into(),
    }
}

/// Opens an order's sealed body as stored: without its DG2 (the portrait
/// is kept once, with the application; see [`order_as_sent`]).
pub fn open_order(app: &App, row: &OrderRow) -> Result<protocol::Order, WorkError> {
    open_with(&app.keys, row)
}

fn open_with(keys: &crate::crypto::Keyring, row: &OrderRow) -> Result<protocol::Order, WorkError> {
    let json = keys.open(at::order_body(&row.order_id), &row.body_enc)?;
    serde_json::from_str(&json).map_err(internal)
}

/// The orders as the vendor gets them: each stored body with its DG2
/// rebuilt from the application's chip portrait, byte for byte the file the
/// SOD signed. The chip portraits are read in one query.
pub async fn orders_as_sent(
    store: &pasaporte_store::Store,
    keys: &crate::crypto::Keyring,
    rows: &[OrderRow],
) -> Result<Vec<protocol::Order>, WorkError> {
    use base64::Engine as _;
    let ids: Vec<String> = rows.iter().map(|r| r.application_id.clone()).collect();
    let chips = store.chip_portraits_of(&ids).await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let mut order = open_with(keys, row)?;
        if order.chip.dg2.is_empty() {
            let jpeg = match chips.get(&row.application_id) {
                Some(chip) => {
                    crate::production::chip_jpeg(keys, &row.application_id, Some(chip), None)
                }
                // Captured before chip portraits were kept: from the photo.
                None => {
                    let app_row = store.application(&row.application_id).await?;
                    crate::production::chip_jpeg(
                        keys,
                        &row.application_id,
                        None,
                        app_row.photo_enc.as_deref(),
                    )
                }
            }
            .map_err(internal)?;
            let mrz = icao9303::Mrz::from_lines(&order.mrz).map_err(internal)?;
            let dg2 = crate::production::dg2_of(&jpeg, &mrz).map_err(internal)?;
            order.chip.dg2 = base64::engine::general_purpose::STANDARD.encode(dg2);
        }
        out.push(order);
    }
    Ok(out)
}

/// [`orders_as_sent`] for one order.
pub async fn order_as_sent(
    store: &pasaporte_store::Store,
    keys: &crate::crypto::Keyring,
    row: &OrderRow,
) -> Result<protocol::Order, WorkError> {
    orders_as_sent(store, keys, std::slice::from_ref(row))
        .await?
        .pop()
        .ok_or_else(|| internal("no order"))
}

fn seal_order(app: &App, order_id: &str, order: &protocol::Order) -> Result<String, WorkError> {
    let json = serde_json::to_string(order).map_err(internal)?;
    Ok(app.keys.seal(at::order_body(order_id), &json)?)
}

/// What an order round is about to make for one application.
struct Planned {
    application_id: String,
    order_id: String,
    number: PassportNumber,
    vendor: Option<(String, String)>,
}

/// Places orders for the applications that need one; returns how many.
pub async fn order_round(app: &App, now: Timestamp) -> Result<usize, WorkError> {
    let ids = app
        .store
        .applications_needing_order(ORDER_ROUND_MAX)
        .await?;
    let mut placed = 0;
    for chunk in ids.chunks(ORDER_CHUNK) {
        match place_orders(app, chunk, now).await {
            Ok(n) => placed += n,
            Err(e) => {
                tracing::warn!(error = %e, "placing production orders failed; next round retries")
            }
        }
    }
    Ok(placed)
}

/// Places the orders of up to [`ORDER_CHUNK`] applications: numbers, vendors
/// and booklets in one transaction; the records made in parallel outside
/// any transaction; the orders and the applications' moves in a second one.
/// A crash between the two leaves numbers and booklets held by the order ids
/// the retry uses again: nothing is lost or allocated twice. Each
/// transaction is a handful of statements for the whole chunk (the cost of
/// a statement, not of a signature, is what bounds the rate).
pub async fn place_orders(app: &App, ids: &[String], now: Timestamp) -> Result<usize, WorkError> {
    let Some(signer) = app.document_signer.clone() else {
        return Err(WorkError::refused(
            "no_document_signer",
            "No hay firmante de documentos configurado: los pedidos esperan.",
            "No Document Signer is configured: orders wait.",
        ));
    };
    let actor = system("production");
    let now_ms = now.as_millisecond();
    let vendors = app.vendors.load(app).await?;
    let plans: Vec<Planned> = retrying!(async {
        let mut tx = app.store.begin_write().await?;
        let plans = plan_orders(&mut tx, &vendors, ids, &actor, now_ms).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok::<_, WorkError>(plans)
    })?;
    if plans.is_empty() {
        return Ok(0);
    }
    let bodies = make_records(app, &signer, &plans, now).await?;
    retrying!(async {
        let mut tx = app.store.begin_write().await?;
        let placed = write_orders(&mut tx, &plans, &bodies, &actor, now).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok::<_, WorkError>(placed)
    })
}

/// Transaction 1: which of `ids` get an order now, with its id, number,
/// vendor and booklet.
async fn plan_orders(
    tx: &mut Tx,
    vendors: &[Arc<VendorHandle>],
    ids: &[String],
    actor: &Actor,
    now_ms: i64,
) -> TxResult<Vec<Planned>> {
    let rows = store::applications_in(tx, ids).await?;
    let (live, counts) = store::order_facts_in(tx, ids).await?;
    let mut eligible = Vec::new();
    for row in rows {
        let pt = row.passport_type.as_deref().and_then(PassportType::parse);
        let Some(pt) = pt.filter(|t| *t != PassportType::Emergencia) else {
            continue;
        };
        if !matches!(row.state.as_str(), "approved" | "in_production") || live.contains(&row.id) {
            continue;
        }
        let n = counts.get(&row.id).copied().unwrap_or(0);
        let order_id = format!("{}-o{}", row.id, n + 1);
        eligible.push((row, pt, order_id));
    }
    // Keep the chunk's order (oldest first) whatever order the rows came in.
    eligible.sort_by_key(|(row, _, _)| ids.iter().position(|i| *i == row.id));
    let holders: Vec<(String, String)> = eligible
        .iter()
        .map(|(row, _, order_id)| (order_id.clone(), row.id.clone()))
        .collect();
    let numbers = store::allocate_passport_numbers(tx, PASSPORT_SERIES, &holders, now_ms).await?;
    // Vendors by rank of preference: each round, the applications still
    // without a booklet try their next candidate, grouped by site and type.
    let choices: Vec<Vec<&VendorHandle>> = eligible
        .iter()
        .map(|(row, pt, order_id)| candidates(vendors, pt.as_str(), &row.office, order_id))
        .collect();
    let mut vendor_of: Vec<Option<(String, String)>> = vec![None; eligible.len()];
    let rounds = choices.iter().map(Vec::len).max().unwrap_or(0);
    for rank in 0..rounds {
        let mut groups: HashMap<(String, BookletType, String), Vec<usize>> = HashMap::new();
        for (i, (_, pt, _)) in eligible.iter().enumerate() {
            if vendor_of[i].is_some() {
                continue;
            }
            if let Some(v) = choices[i].get(rank) {
                groups
                    .entry((
                        v.row.site.clone(),
                        BookletType::for_passport(*pt),
                        v.row.id.clone(),
                    ))
                    .or_default()
                    .push(i);
            }
        }
        for ((site, kind, vendor), members) in groups {
            let apps: Vec<String> = members.iter().map(|&i| eligible[i].0.id.clone()).collect();
            let serials =
                store::reserve_booklets(tx, kind, &site, &apps, &actor.id, now_ms).await?;
            for (&i, serial) in members.iter().zip(serials) {
                vendor_of[i] = serial.map(|s| (vendor.clone(), s));
            }
        }
    }
    Ok(eligible
        .into_iter()
        .zip(numbers)
        .zip(vendor_of)
        .map(|(((row, _, order_id), number), vendor)| Planned {
            application_id: row.id,
            order_id,
            number,
            vendor,
        })
        .collect())
}

/// The sealed order bodies of the plans (`None` where the application could
/// not be personalised: it stays where it is, visibly overdue), made on the
/// blocking pool in parallel.
async fn make_records(
    app: &App,
    signer: &Arc<icao9303::DocumentSigner>,
    plans: &[Planned],
    now: Timestamp,
) -> Result<Vec<Option<(String, BookletType)>>, WorkError> {
    let ids: Vec<String> = plans.iter().map(|p| p.application_id.clone()).collect();
    let rows: HashMap<String, pasaporte_store::ApplicationRow> = app
        .store
        .personalisation_rows(&ids)
        .await?
        .into_iter()
        .map(|r| (r.id.clone(), r))
        .collect();
    let issue_date = now
        .to_zoned_datetime(pasaporte_core::jiff::tz::TimeZone::UTC)
        .date();
    let mut inputs = Vec::with_capacity(plans.len());
    for p in plans {
        let input = rows
            .get(&p.application_id)
            .ok_or(crate::production::PersonaliseError::Application("row"))
            .and_then(|row| input_from_application(app, row, p.number, issue_date));
        match input {
            Ok(i) => inputs.push(Some((i, rows[&p.application_id].office.clone()))),
            Err(e) => {
                tracing::warn!(application = %p.application_id, error = %e, "cannot personalise");
                inputs.push(None);
            }
        }
    }
    // One blocking job per core's share of the chunk.
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 8);
    let per = inputs.len().div_ceil(workers).max(1);
    let mut jobs = Vec::new();
    let mut inputs = inputs.into_iter();
    loop {
        let part: Vec<_> = inputs.by_ref().take(per).collect();
        if part.is_empty() {
            break;
        }
        let signer = signer.clone();
        jobs.push(tokio::task::spawn_blocking(move || {
            part.into_iter()
                .map(|i| i.map(|(input, office)| (personalise(&input, &signer), office)))
                .collect::<Vec<_>>()
        }));
    }
    let mut made = Vec::with_capacity(plans.len());
    for j in jobs {
        made.extend(j.await.map_err(internal)?);
    }
    let mut bodies = Vec::with_capacity(plans.len());
    for (p, m) in plans.iter().zip(made) {
        match m {
            Some((Ok(record), office)) => {
                let serial = p.vendor.as_ref().map(|v| v.1.as_str()).unwrap_or("");
                let mut order = order_body(&record, &p.order_id, serial, &office);
                // DG2 is rebuilt from the application's portrait when sent.
                order.chip.dg2 = String::new();
                bodies.push(Some((
                    seal_order(app, &p.order_id, &order)?,
                    BookletType::for_passport(record.passport_type),
                )));
            }
            Some((Err(e), _)) => {
                tracing::warn!(application = %p.application_id, error = %e, "cannot personalise");
                bodies.push(None);
            }
            None => bodies.push(None),
        }
    }
    Ok(bodies)
}

/// Transaction 2: the orders, the applications' moves and their audit
/// events, for the plans still current.
async fn write_orders(
    tx: &mut Tx,
    plans: &[Planned],
    bodies: &[Option<(String, BookletType)>],
    actor: &Actor,
    now: Timestamp,
) -> TxResult<usize> {
    let now_ms = now.as_millisecond();
    let ids: Vec<String> = plans.iter().map(|p| p.application_id.clone()).collect();
    let rows: HashMap<String, pasaporte_store::ApplicationRow> = store::applications_in(tx, &ids)
        .await?
        .into_iter()
        .map(|r| (r.id.clone(), r))
        .collect();
    let (live, _) = store::order_facts_in(tx, &ids).await?;
    let numbers: Vec<String> = plans.iter().map(|p| p.number.to_string()).collect();
    let mut orders = Vec::new();
    let mut approved = Vec::new();
    let mut events = Vec::new();
    let mut next_state = None;
    for ((p, body), number) in plans.iter().zip(bodies).zip(&numbers) {
        let (Some((body_enc, booklet_type)), Some(row)) = (body, rows.get(&p.application_id))
        else {
            continue;
        };
        if !matches!(row.state.as_str(), "approved" | "in_production")
            || live.contains(&p.application_id)
        {
            continue;
        }
        orders.push(NewOrder {
            order_id: &p.order_id,
            application_id: &p.application_id,
            office: &row.office,
            vendor_id: p.vendor.as_ref().map(|v| v.0.as_str()),
            passport_number: number,
            booklet_type: booklet_type.as_str(),
            booklet_serial: p.vendor.as_ref().map(|v| v.1.as_str()),
            body_enc,
            now_ms,
        });
        if row.state == State::Approved.as_str() {
            let (next, mut event) = domain(row)?.apply(&Command::OrderProduction, actor, now)?;
            event.detail = p.order_id.clone();
            next_state = Some(next);
            approved.push(row.id.clone());
            events.push(event);
        } else {
            let mut event = AuditEvent::by(
                actor,
                now_ms,
                "production.reorder",
                row.office.clone(),
                row.id.clone(),
            );
            event.detail = p.order_id.clone();
            events.push(event);
        }
    }
    store::insert_orders(tx, &orders).await?;
    if let Some(next) = next_state {
        store::move_applications(
            tx,
            &approved,
            State::Approved.as_str(),
            &store::StateChange {
                id: "",
                version: 0,
                state: next.state().as_str(),
                state_since_ms: next.state_since().as_millisecond(),
                deadline_ms: next.deadline().map(|d| d.as_millisecond()),
                queue: next.queue().as_str(),
                now_ms,
            },
        )
        .await?;
    }
    store::append_audit_events(tx, &events).await?;
    Ok(orders.len())
}

fn retry_after(failures: i64, first_ms: i64) -> i64 {
    let factor = 1i64 << failures.clamp(0, 20);
    first_ms.saturating_mul(factor).min(RETRY_MAX_MS)
}

/// One pass of the outbox: every active vendor's due orders, in batches.
/// Returns how many orders a vendor now holds.
pub async fn send_round(app: &App, now: Timestamp) -> Result<usize, WorkError> {
    let vendors = app.vendors.load(app).await?;
    let mut held = 0;
    for v in vendors.iter().filter(|v| v.row.is_active()) {
        for _ in 0..SEND_BATCHES_PER_ROUND {
            // A switch takes effect from the next batch: read the state again.
            let still_active = app
                .store
                .vendors()
                .await?
                .iter()
                .any(|r| r.id == v.row.id && r.is_active());
            if !still_active {
                break;
            }
            let due = app
                .store
                .due_orders(
                    &v.row.id,
                    now.as_millisecond(),
                    protocol::BATCH_ORDERS_MAX as u32,
                )
                .await?;
            if due.is_empty() {
                break;
            }
            let (n, vendor_failed) = send_batch(app, v, &due, now).await?;
            held += n;
            if vendor_failed {
                break;
            }
        }
    }
    Ok(held)
}

/// Sends one batch and records each order's outcome; `(held, failed)`.
async fn send_batch(
    app: &App,
    v: &VendorHandle,
    due: &[OrderRow],
    now: Timestamp,
) -> Result<(usize, bool), WorkError> {
    let orders = orders_as_sent(&app.store, &app.keys, due).await?;
    let batch = protocol::Batch {
        batch_id: format!("b-{}", uuid::Uuid::now_v7().simple()),
        orders,
    };
    let answer = v.client.send_batch(&batch).await;
    let retry_first = app.vendor_settings.retry_first_ms;
    let actor = system("production");
    let now_ms = now.as_millisecond();
    let ids: Vec<String> = due.iter().map(|o| o.order_id.clone()).collect();
    retrying!(async {
        let mut tx = app.store.begin_write().await?;
        let current: HashMap<String, OrderRow> = store::orders_in(&mut tx, &ids)
            .await?
            .into_iter()
            .map(|o| (o.order_id.clone(), o))
            .collect();
        let mut accepted = Vec::new();
        let mut events = Vec::new();
        for (i, read) in due.iter().enumerate() {
            let Some(o) = current.get(&read.order_id) else {
                continue;
            };
            // A callback may have moved it meanwhile, or a re-route.
            if o.state != OrderState::Queued || o.vendor_id.as_deref() != Some(v.row.id.as_str()) {
                continue;
            }
            let event = |action: &str, error: Option<&str>| {
                let mut e = AuditEvent::by(
                    &actor,
                    now_ms,
                    action,
                    o.office.clone(),
                    o.application_id.clone(),
                );
                e.detail = format!("{} {} {}", o.order_id, v.row.id, error.unwrap_or(""))
                    .trim()
                    .to_string();
                e
            };
            let outcome = answer.as_ref().map(|r| &r[i].outcome);
            if let Ok(Outcome::Accepted | Outcome::Duplicate) = outcome {
                accepted.push((o.order_id.clone(), event("production.sent", None)));
                continue;
            }
            let mut next = o.clone();
            next.sends += 1;
            next.updated_ms = now_ms;
            let mut dead_reason = match outcome {
                Ok(Outcome::Rejected { reason }) if *reason == RejectReason::CapacityExceeded => {
                    next.failures += 1;
                    next.last_error = Some("rejected: capacity_exceeded".into());
                    None
                }
                Ok(Outcome::Rejected { reason }) => Some(format!("rejected: {}", reason.as_str())),
                Ok(Outcome::Accepted | Outcome::Duplicate) => None,
                Err(VendorError::Unavailable) => {
                    next.failures += 1;
                    next.last_error = Some("vendor unavailable".into());
                    None
                }
                Err(VendorError::Refused { status, code, .. }) => {
                    Some(format!("refused: {status} {code}"))
                }
                Err(VendorError::Invalid(what)) => Some(format!("invalid: {what}")),
            };
            if dead_reason.is_none() && next.failures >= DEAD_AFTER_FAILURES {
                dead_reason = next.last_error.clone();
            }
            next.next_attempt_ms = now_ms + retry_after(next.failures, retry_first);
            if let Some(reason) = dead_reason {
                next.state = OrderState::Dead;
                events.push(event("production.dead_letter", Some(&reason)));
                next.last_error = Some(reason);
            }
            store::update_order(&mut tx, &next, o.version).await?;
        }
        let ids: Vec<String> = accepted.iter().map(|(id, _)| id.clone()).collect();
        let marked = store::mark_orders_accepted(&mut tx, &ids, &v.row.id, now_ms).await?;
        events.extend(
            accepted
                .into_iter()
                .filter(|(id, _)| marked.contains(id))
                .map(|(_, e)| e),
        );
        store::append_audit_events(&mut tx, &events).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok::<_, WorkError>(ids.len())
    })
    .map(|held| (held, answer.is_err()))
}

/// Moves the orders whose vendor is draining (or that have no vendor yet)
/// to an active vendor; an order the draining vendor already holds stays
/// there and is marked accepted. Returns how many moved.
pub async fn reroute_round(app: &App, now: Timestamp) -> Result<usize, WorkError> {
    let vendors = app.vendors.load(app).await?;
    let by_id: HashMap<&str, &Arc<VendorHandle>> =
        vendors.iter().map(|v| (v.row.id.as_str(), v)).collect();
    let mut todo = Vec::new();
    for state in [OrderState::Queued, OrderState::Dead] {
        for o in app
            .store
            .orders_in_state(state, None, None, REROUTE_ROUND_MAX)
            .await?
        {
            let needs = match o.vendor_id.as_deref() {
                None => true,
                Some(id) => by_id.get(id).is_none_or(|v| !v.row.is_active()),
            };
            if needs {
                todo.push(o);
            }
        }
    }
    let mut moved = 0;
    for o in todo {
        if let Some(old) = o.vendor_id.as_deref().and_then(|id| by_id.get(id))
            && o.sends > 0
        {
            // It may have arrived: only the vendor knows.
            match old.client.order_status(&o.order_id).await {
                Ok(Some(_)) => {
                    keep_at_vendor(app, &o, now).await?;
                    continue;
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(order = %o.order_id, vendor = %old.row.id, error = %e, "cannot ask a draining vendor; later");
                    continue;
                }
            }
        }
        match move_order(app, &vendors, &o, now).await {
            Ok(true) => moved += 1,
            Ok(false) => {}
            Err(e) => tracing::warn!(order = %o.order_id, error = %e, "re-routing failed; later"),
        }
    }
    Ok(moved)
}

/// The old vendor holds the order: it finishes there.
async fn keep_at_vendor(app: &App, read: &OrderRow, now: Timestamp) -> Result<(), WorkError> {
    retrying!(async {
        let mut tx = app.store.begin_write().await?;
        let mut o = store::order_in(&mut tx, &read.order_id).await?;
        if o.vendor_id != read.vendor_id || o.state.vendor_has_it() {
            return Ok::<_, WorkError>(());
        }
        let version = o.version;
        o.state = OrderState::Accepted;
        o.last_error = None;
        o.updated_ms = now.as_millisecond();
        store::update_order(&mut tx, &o, version).await?;
        let mut event = AuditEvent::by(
            &system("production"),
            now.as_millisecond(),
            "production.held_by_vendor",
            o.office.clone(),
            o.application_id.clone(),
        );
        event.detail = format!("{} {}", o.order_id, o.vendor_id.as_deref().unwrap_or(""));
        store::append_audit_event(&mut tx, &event).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(())
    })
}

/// Moves one order to an active vendor with stock: its old booklet back to
/// stock, a new one reserved, the body re-sealed with the new serial.
async fn move_order(
    app: &App,
    vendors: &[Arc<VendorHandle>],
    read: &OrderRow,
    now: Timestamp,
) -> Result<bool, WorkError> {
    let actor = system("production");
    let now_ms = now.as_millisecond();
    retrying!(async {
        let mut tx = app.store.begin_write().await?;
        let mut o = store::order_in(&mut tx, &read.order_id).await?;
        if o.version != read.version || o.state.vendor_has_it() {
            return Ok::<_, WorkError>(false);
        }
        let row = store::application_in(&mut tx, &o.application_id).await?;
        let pt = row.passport_type.clone().unwrap_or_default();
        let Some(booklet_type) = BookletType::parse(&o.booklet_type) else {
            return Err(internal("unknown booklet type"));
        };
        if let Some(serial) = o.booklet_serial.as_deref() {
            store::booklet_event(&mut tx, serial, &CustodyEvent::Release, &actor.id, now_ms)
                .await
                .map_err(internal)?;
        }
        let need = Need {
            passport_type: &pt,
            office: &o.office,
            order_id: &o.order_id,
            application_id: &o.application_id,
            booklet_type,
        };
        let Some((vendor_id, serial)) = route(&mut tx, vendors, &need, &actor, now_ms).await?
        else {
            // Nowhere to go yet: stay as it is (the release rolls back).
            return Ok(false);
        };
        let mut body = open_order(app, &o)?;
        body.booklet_serial = serial.clone();
        let version = o.version;
        let from = o.vendor_id.clone().unwrap_or_else(|| "-".into());
        o.body_enc = seal_order(app, &o.order_id, &body)?;
        o.vendor_id = Some(vendor_id.clone());
        o.booklet_serial = Some(serial);
        o.state = OrderState::Queued;
        o.sends = 0;
        o.failures = 0;
        o.next_attempt_ms = now_ms;
        o.last_error = None;
        o.updated_ms = now_ms;
        store::update_order(&mut tx, &o, version).await?;
        store::save_order_body(&mut tx, &o.order_id, &o.body_enc).await?;
        let mut event = AuditEvent::by(
            &actor,
            now_ms,
            "production.rerouted",
            o.office.clone(),
            o.application_id.clone(),
        );
        event.detail = format!("{} {from} -> {vendor_id}", o.order_id);
        store::append_audit_event(&mut tx, &event).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(true)
    })
}

/// A supervisor sends a dead-lettered order again.
pub async fn resend_order(
    app: &App,
    actor: &Actor,
    scope: &dyn OfficeScope,
    order_id: &str,
    now: Timestamp,
) -> Result<OrderRow, WorkError> {
    retrying!(async {
        let mut tx = app.store.begin_write().await?;
        let mut o = store::order_in(&mut tx, order_id).await?;
        if !crate::workflow::in_scope(scope, &o.office) {
            return Err(WorkError::NotFound);
        }
        if o.state != OrderState::Dead {
            return Err(WorkError::refused(
                "order_not_dead",
                "Solo se reenvían pedidos en la cola de fallidos.",
                "Only dead-lettered orders can be sent again.",
            ));
        }
        let version = o.version;
        o.state = OrderState::Queued;
        o.failures = 0;
        o.next_attempt_ms = now.as_millisecond();
        o.updated_ms = now.as_millisecond();
        store::update_order(&mut tx, &o, version).await?;
        let mut event = AuditEvent::by(
            actor,
            now.as_millisecond(),
            "production.resend",
            o.office.clone(),
            o.application_id.clone(),
        );
        event.detail = o.order_id.clone();
        store::append_audit_event(&mut tx, &event).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok::<_, WorkError>(o)
    })
}

// --- Vendor events -----------------------------------------------------------

/// What became of a vendor event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventOutcome {
    Applied,
    /// Seen before: nothing changed.
    Replay,
    /// Recorded but changing nothing: an unknown order, another vendor's
    /// order, or a step the order is already past.
    Ignored,
}

fn order_state_of(kind: EventKind) -> OrderState {
    match kind {
        EventKind::Accepted => OrderState::Accepted,
        EventKind::InProduction => OrderState::InProduction,
        EventKind::Printed => OrderState::Printed,
        EventKind::QualityPassed => OrderState::QualityPassed,
        EventKind::QualityFailed => OrderState::QualityFailed,
        EventKind::Shipped => OrderState::Shipped,
    }
}

/// Applies a verified event from `vendor_id` once.
pub async fn apply_vendor_event(
    app: &App,
    vendor_id: &str,
    ev: &VendorEvent,
    now: Timestamp,
) -> Result<EventOutcome, WorkError> {
    let actor = Actor {
        id: format!("vendor:{vendor_id}").chars().take(64).collect(),
        role: Role::System,
    };
    let now_ms = now.as_millisecond();
    retrying!(async {
        let mut tx = app.store.begin_write().await?;
        let order = match store::order_in(&mut tx, &ev.order_id).await {
            Ok(o) => Some(o),
            Err(StoreError::NotFound) => None,
            Err(e) => return Err(e.into()),
        };
        let to = order_state_of(ev.kind);
        let applies = order.as_ref().is_some_and(|o| {
            o.vendor_id.as_deref() == Some(vendor_id)
                && to.rank() > o.state.rank()
                && !o.state.is_final()
        });
        let outcome = if applies { "applied" } else { "ignored" };
        if !store::record_vendor_event(
            &mut tx,
            vendor_id,
            &ev.event_id,
            &ev.order_id,
            ev.kind.as_str(),
            outcome,
            now_ms,
        )
        .await?
        {
            return Ok::<_, WorkError>(EventOutcome::Replay);
        }
        let foreign = order
            .as_ref()
            .is_none_or(|o| o.vendor_id.as_deref() != Some(vendor_id));
        let Some(mut o) = order.filter(|_| applies) else {
            if foreign {
                // Unknown order, or one that is with another vendor now.
                tracing::warn!(vendor = %vendor_id, order = %ev.order_id, kind = ev.kind.as_str(), "vendor event for an order it does not have");
            } else {
                // A step already recorded (the batch's answer came first).
                tracing::debug!(vendor = %vendor_id, order = %ev.order_id, kind = ev.kind.as_str(), "vendor event already applied");
            }
            tx.commit().await.map_err(StoreError::from)?;
            return Ok(EventOutcome::Ignored);
        };
        let version = o.version;
        let serial = o.booklet_serial.clone().unwrap_or_default();
        let number = PassportNumber::parse(&o.passport_number).map_err(internal)?;
        // Custody follows; steps the vendor skipped in its reports are
        // recorded in their order, so the booklet's history has no gap.
        use pasaporte_core::production::BookletState as B;
        let mut booklet = store::booklet_in(&mut tx, &serial).await?.state;
        if booklet == B::Reserved
            && matches!(
                ev.kind,
                EventKind::Printed | EventKind::QualityPassed | EventKind::Shipped
            )
        {
            booklet = store::personalise_booklet(&mut tx, &serial, &number, &actor.id, now_ms)
                .await
                .map_err(internal)?;
        }
        let mut detail = o.order_id.clone();
        match ev.kind {
            EventKind::Shipped => {
                if booklet == B::Personalised {
                    store::booklet_event(
                        &mut tx,
                        &serial,
                        &CustodyEvent::Dispatch,
                        &actor.id,
                        now_ms,
                    )
                    .await
                    .map_err(internal)?;
                }
                o.tracking = ev.tracking.clone();
                if ev.booklet_serial.as_deref() != Some(serial.as_str()) {
                    // The MRZ check at receipt decides; the trail says why.
                    o.last_error = Some("shipped booklet serial differs from the order's".into());
                    detail.push_str(" serial-differs");
                }
            }
            EventKind::QualityFailed => {
                let reason = format!("quality: {}", ev.reason.as_deref().unwrap_or("failed"));
                let reason: String = reason
                    .chars()
                    .take(pasaporte_core::production::CUSTODY_TEXT_CHARS_MAX)
                    .collect();
                if matches!(booklet, B::Reserved | B::Personalised | B::Dispatched) {
                    store::booklet_event(
                        &mut tx,
                        &serial,
                        &CustodyEvent::Spoil {
                            reason: reason.clone(),
                        },
                        &actor.id,
                        now_ms,
                    )
                    .await
                    .map_err(internal)?;
                }
                o.last_error = Some(reason);
                let row = store::application_in(&mut tx, &o.application_id).await?;
                if row.state == State::InProduction.as_str() {
                    let (next, event) = domain(&row)?.apply(
                        &Command::Reprint {
                            reason: "quality control failed at the vendor".into(),
                        },
                        &actor,
                        now,
                    )?;
                    save_transition(&mut tx, &row, &next, &event, now).await?;
                }
            }
            EventKind::Accepted
            | EventKind::InProduction
            | EventKind::Printed
            | EventKind::QualityPassed => {}
        }
        o.state = to;
        o.updated_ms = now_ms;
        store::update_order(&mut tx, &o, version).await?;
        let mut event = AuditEvent::by(
            &actor,
            now_ms,
            format!("production.{}", ev.kind.as_str()),
            o.office.clone(),
            o.application_id.clone(),
        );
        event.detail = detail;
        store::append_audit_event(&mut tx, &event).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(EventOutcome::Applied)
    })
}

// --- At the office -------------------------------------------------------------

/// What the receipt of a booklet led to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Receipt {
    /// The MRZ matched: ready for pick-up, the citizen told by mail.
    Ready,
    /// The MRZ did not match: the booklet is spoiled and made again.
    Reprint,
}

/// The MRZ as typed or scanned: upper case, without blanks, two lines.
pub fn normalise_mrz(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| {
            l.chars()
                .filter(|c| !c.is_whitespace())
                .collect::<String>()
                .to_ascii_uppercase()
        })
        .filter(|l| !l.is_empty())
        .collect()
}

fn office_application(
    row: &pasaporte_store::ApplicationRow,
    scope: &dyn OfficeScope,
) -> Result<(), WorkError> {
    if crate::workflow::in_scope(scope, &row.office) {
        Ok(())
    } else {
        Err(WorkError::NotFound)
    }
}

fn not_in_state(
    row: &pasaporte_store::ApplicationRow,
    command: pasaporte_core::application::CommandKind,
) -> WorkError {
    match State::parse(&row.state) {
        Some(state) => {
            pasaporte_core::application::TransitionError::NotAllowedFrom { state, command }.into()
        }
        None => internal("unknown state"),
    }
}

/// The clerk receives a shipped booklet: the MRZ read from it must be the
/// record's, else the booklet is spoiled and a new one is ordered.
pub async fn receive_booklet(
    app: &App,
    actor: &Actor,
    scope: &dyn OfficeScope,
    application_id: &str,
    mrz_text: &str,
    now: Timestamp,
) -> Result<Receipt, WorkError> {
    use pasaporte_core::application::CommandKind as K;
    let row = app.store.application(application_id).await?;
    office_application(&row, scope)?;
    if row.state != State::InProduction.as_str() {
        return Err(not_in_state(&row, K::ReceiveBooklet));
    }
    let typed = normalise_mrz(mrz_text);
    if typed.len() != 2 || typed.iter().any(|l| l.len() != 44) {
        return Err(WorkError::Invalid(pasaporte_core::FieldErrors(vec![
            pasaporte_core::FieldError::new(
                "mrz",
                "mrz_format",
                "La zona de lectura mecánica tiene dos líneas de 44 caracteres: léala de nuevo o escríbala completa.",
                "The machine readable zone is two lines of 44 characters: scan it again or type all of it.",
            ),
        ])));
    }
    let now_ms = now.as_millisecond();
    retrying!(async {
        let mut tx = app.store.begin_write().await?;
        let row = store::application_in(&mut tx, application_id).await?;
        let Some(mut o) = store::live_order_in(&mut tx, application_id).await? else {
            return Err(not_shipped());
        };
        if o.state != OrderState::Shipped {
            return Err(not_shipped());
        }
        let version = o.version;
        let body = open_order(app, &o)?;
        let serial = o.booklet_serial.clone().unwrap_or_default();
        let matches = body.mrz == typed;
        // Received either way, so that its custody shows where it was.
        store::booklet_event(
            &mut tx,
            &serial,
            &CustodyEvent::ReceiveAtOffice,
            &actor.id,
            now_ms,
        )
        .await
        .map_err(internal)?;
        let result = if matches {
            o.state = OrderState::Received;
            let (next, mut event) = domain(&row)?.apply(&Command::ReceiveBooklet, actor, now)?;
            event.detail = o.order_id.clone();
            save_transition(&mut tx, &row, &next, &event, now).await?;
            if let Some(mail) = ready_mail(app, &row)? {
                store::queue_mail(&mut tx, &mail, now_ms).await?;
            }
            Receipt::Ready
        } else {
            store::booklet_event(
                &mut tx,
                &serial,
                &CustodyEvent::Spoil {
                    reason: "MRZ does not match the record at receipt".into(),
                },
                &actor.id,
                now_ms,
            )
            .await
            .map_err(internal)?;
            o.state = OrderState::Mismatch;
            o.last_error = Some("MRZ mismatch at receipt".into());
            let (next, event) = domain(&row)?.apply(
                &Command::Reprint {
                    reason: "booklet MRZ does not match the record at receipt".into(),
                },
                actor,
                now,
            )?;
            save_transition(&mut tx, &row, &next, &event, now).await?;
            Receipt::Reprint
        };
        o.updated_ms = now_ms;
        store::update_order(&mut tx, &o, version).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok::<_, WorkError>(result)
    })
}

fn not_shipped() -> WorkError {
    WorkError::refused(
        "booklet_not_shipped",
        "El proveedor aún no ha enviado la libreta de esta solicitud.",
        "The vendor has not shipped this application's booklet yet.",
    )
}

/// The mail telling the citizen the passport is ready (Spanish, then English).
fn ready_mail(
    app: &App,
    row: &pasaporte_store::ApplicationRow,
) -> Result<Option<MailRow>, WorkError> {
    let Some(contact) = row.contact_enc.as_deref() else {
        return Ok(None);
    };
    let contact = ContactDoc::open(app, &row.id, contact)?;
    if contact.email.trim().is_empty() {
        return Ok(None);
    }
    let office = app
        .office(&row.office)
        .map(|o| o.office.name.clone())
        .unwrap_or_else(|| row.office.clone());
    let body = format!(
        "Su pasaporte está listo para recoger en {office}.\n\
         Traiga su documento de identidad; el pasaporte de un menor se entrega solo a su padre, madre o representante registrado.\n\
         Si no lo recoge en 6 meses, será anulado.\n\n\
         Your passport is ready for pick-up at {office}.\n\
         Bring your identity document; a minor's passport is handed only to a parent or guardian on record.\n\
         Passports not collected within 6 months are annulled.\n"
    );
    let id = format!("m-{}", uuid::Uuid::now_v7().simple());
    Ok(Some(MailRow {
        recipient_enc: app
            .keys
            .seal(at::mail_recipient(&id), contact.email.trim())?,
        subject: "Su pasaporte está listo / Your passport is ready".into(),
        body_enc: app.keys.seal(at::mail_body(&id), &body)?,
        ics_enc: None,
        id,
    }))
}

/// Who presents themselves at pick-up.
#[derive(Clone, Debug, Default, serde::Deserialize, utoipa::ToSchema)]
pub struct HandOverForm {
    /// The document the holder (an adult) shows.
    #[serde(default)]
    pub document_number: String,
    /// For a minor: the document of the parent or guardian collecting it.
    #[serde(default)]
    pub guardian_document_number: String,
}

fn digits(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_uppercase()
}

/// Hands the passport over after the identity check; cancels the previous
/// passport a renewal named.
pub async fn hand_over(
    app: &App,
    actor: &Actor,
    scope: &dyn OfficeScope,
    application_id: &str,
    form: &HandOverForm,
    now: Timestamp,
) -> Result<(), WorkError> {
    use pasaporte_core::application::CommandKind as K;
    let row = app.store.application(application_id).await?;
    office_application(&row, scope)?;
    if row.state != State::ReadyForPickup.as_str() {
        return Err(not_in_state(&row, K::HandOver));
    }
    let identity = row
        .identity_enc
        .as_deref()
        .map(|s| IdentityDoc::open(app, &row.id, s))
        .transpose()?
        .ok_or_else(|| internal("no identity"))?;
    let extras = workflow::open_extras(app, &row)?;
    let birth: pasaporte_core::jiff::civil::Date =
        identity.birth_date.trim().parse().map_err(internal)?;
    let tz = app
        .office(&row.office)
        .map(|o| o.office.time_zone.clone())
        .unwrap_or(pasaporte_core::jiff::tz::TimeZone::UTC);
    let today = now.to_zoned_datetime(tz).date();
    let minor = pasaporte_core::person::age_on(birth, today) < 18;
    if minor {
        let guardians: Vec<String> = extras
            .iter()
            .flat_map(|e| [&e.guardian0_document_number, &e.guardian1_document_number])
            .map(|d| digits(d))
            .filter(|d| !d.is_empty())
            .collect();
        let shown = digits(&form.guardian_document_number);
        if shown.is_empty() || !guardians.contains(&shown) {
            return Err(WorkError::refused(
                "not_a_guardian_on_record",
                "El pasaporte de un menor solo se entrega a un padre, madre o representante registrado en la solicitud.",
                "A minor's passport is handed only to a parent or guardian on record in the application.",
            ));
        }
    } else if digits(&form.document_number) != digits(&identity.document_number) {
        return Err(WorkError::refused(
            "identity_does_not_match",
            "El documento presentado no es el del titular: verifique la identidad.",
            "The document shown is not the holder's: check the identity.",
        ));
    }
    let previous = extras.as_ref().and_then(|e| e.previous_passport());
    let now_ms = now.as_millisecond();
    retrying!(async {
        let mut tx = app.store.begin_write().await?;
        let row = store::application_in(&mut tx, application_id).await?;
        let o = store::live_order_in(&mut tx, application_id)
            .await?
            .ok_or_else(|| internal("no order"))?;
        let serial = o.booklet_serial.clone().unwrap_or_default();
        store::booklet_event(&mut tx, &serial, &CustodyEvent::HandOver, &actor.id, now_ms)
            .await
            .map_err(internal)?;
        let (next, mut event) = domain(&row)?.apply(&Command::HandOver, actor, now)?;
        event.detail = format!(
            "{} {}",
            o.order_id,
            if minor { "guardian" } else { "holder" }
        );
        save_transition(&mut tx, &row, &next, &event, now).await?;
        after_transition(&mut tx, &row, &next, now).await?;
        if let Some(number) = &previous {
            store::report_passport(
                &mut tx,
                &workflow::passport_key(app, number),
                "cancelled",
                application_id,
                now_ms,
            )
            .await?;
            let mut cancel = AuditEvent::by(
                actor,
                now_ms,
                "passport.previous_cancelled",
                row.office.clone(),
                row.id.clone(),
            );
            cancel.detail = o.order_id.clone();
            store::append_audit_event(&mut tx, &cancel).await?;
        }
        tx.commit().await.map_err(StoreError::from)?;
        Ok::<_, WorkError>(())
    })
}

/// An emergency passport, personalised at the office on the same day from
/// its own stock of 8-page booklets, valid 7 months. Returns the record
/// (for the office's printer) and the booklet's serial.
pub async fn issue_emergency(
    app: &App,
    actor: &Actor,
    scope: &dyn OfficeScope,
    application_id: &str,
    now: Timestamp,
) -> Result<(PersonalisationRecord, String), WorkError> {
    use pasaporte_core::application::CommandKind as K;
    let Some(signer) = app.document_signer.clone() else {
        return Err(WorkError::refused(
            "no_document_signer",
            "No hay firmante de documentos configurado.",
            "No Document Signer is configured.",
        ));
    };
    let row = app.store.application(application_id).await?;
    office_application(&row, scope)?;
    if row.state != State::Approved.as_str() {
        return Err(not_in_state(&row, K::IssueAtOffice));
    }
    if row.passport_type.as_deref() != Some(PassportType::Emergencia.as_str()) {
        return Err(WorkError::refused(
            "not_an_emergency_passport",
            "Solo los pasaportes de emergencia se expiden en la oficina.",
            "Only emergency passports are issued at the office.",
        ));
    }
    let now_ms = now.as_millisecond();
    let order_id = format!("{application_id}-e1");
    let (number, serial) = retrying!(async {
        let mut tx = app.store.begin_write().await?;
        let number = store::allocate_passport_number(
            &mut tx,
            PASSPORT_SERIES,
            &order_id,
            application_id,
            now_ms,
        )
        .await?;
        let Some(serial) = store::reserve_booklet(
            &mut tx,
            BookletType::Pages8,
            &row.office,
            application_id,
            &actor.id,
            now_ms,
        )
        .await?
        else {
            return Err(WorkError::refused(
                "no_emergency_stock",
                "La oficina no tiene libretas de emergencia en existencia.",
                "The office has no emergency booklets in stock.",
            ));
        };
        tx.commit().await.map_err(StoreError::from)?;
        Ok::<_, WorkError>((number, serial))
    })?;
    let tz = app
        .office(&row.office)
        .map(|o| o.office.time_zone.clone())
        .unwrap_or(pasaporte_core::jiff::tz::TimeZone::UTC);
    let input = input_from_application(app, &row, number, now.to_zoned_datetime(tz).date())
        .map_err(internal)?;
    let record = tokio::task::spawn_blocking(move || personalise(&input, &signer))
        .await
        .map_err(internal)?
        .map_err(internal)?;
    let mut kept = order_body(&record, &order_id, &serial, &row.office);
    kept.chip.dg2 = String::new();
    let body = seal_order(app, &order_id, &kept)?;
    retrying!(async {
        let mut tx = app.store.begin_write().await?;
        let row = store::application_in(&mut tx, application_id).await?;
        store::personalise_booklet(&mut tx, &serial, &number, &actor.id, now_ms)
            .await
            .map_err(internal)?;
        store::booklet_event(
            &mut tx,
            &serial,
            &CustodyEvent::ReceiveAtOffice,
            &actor.id,
            now_ms,
        )
        .await
        .map_err(internal)?;
        store::insert_order(
            &mut tx,
            &NewOrder {
                order_id: &order_id,
                application_id,
                office: &row.office,
                vendor_id: None,
                passport_number: &number.to_string(),
                booklet_type: BookletType::Pages8.as_str(),
                booklet_serial: Some(&serial),
                body_enc: &body,
                now_ms,
            },
        )
        .await?;
        store::mark_order_received(&mut tx, &order_id, now_ms).await?;
        let (next, mut event) = domain(&row)?.apply(&Command::IssueAtOffice, actor, now)?;
        event.detail = order_id.clone();
        save_transition(&mut tx, &row, &next, &event, now).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok::<_, WorkError>(())
    })?;
    Ok((record, serial))
}

/// Annuls the passports not collected within six months; their booklets are
/// recorded as annulled. Returns how many.
pub async fn annul_round(app: &App, now: Timestamp) -> Result<usize, WorkError> {
    let cutoff = now
        .checked_sub(SignedDuration::from_hours(
            pasaporte_core::application::PICKUP_WITHIN_DAYS * 24,
        ))
        .map_err(internal)?;
    let actor = system("annulment");
    let mut n = 0;
    for id in app
        .store
        .uncollected_before(cutoff.as_millisecond(), ANNUL_ROUND_MAX)
        .await?
    {
        let r = retrying!(async {
            let mut tx = app.store.begin_write().await?;
            let row = store::application_in(&mut tx, &id).await?;
            if row.state != State::ReadyForPickup.as_str() {
                return Ok::<_, WorkError>(false);
            }
            if let Some(o) = store::live_order_in(&mut tx, &id).await?
                && let Some(serial) = o.booklet_serial.as_deref()
            {
                store::booklet_event(
                    &mut tx,
                    serial,
                    &CustodyEvent::Annul {
                        reason: "not collected within 6 months".into(),
                    },
                    &actor.id,
                    now.as_millisecond(),
                )
                .await
                .map_err(internal)?;
            }
            let (next, event) = domain(&row)?.apply(&Command::AnnulUncollected, &actor, now)?;
            save_transition(&mut tx, &row, &next, &event, now).await?;
            after_transition(&mut tx, &row, &next, now).await?;
            tx.commit().await.map_err(StoreError::from)?;
            Ok(true)
        });
        match r {
            Ok(true) => n += 1,
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(application = %id, error = %e, "annulment failed; next round retries")
            }
        }
    }
    Ok(n)
}

/// Runs the pipeline's rounds every `interval` until the process ends.
pub async fn run(app: Arc<App>, interval: Duration, mut lease: crate::lease::WorkerLease) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if !lease.hold(&app.store).await {
            continue;
        }
        let now = Timestamp::now();
        if app.document_signer.is_some()
            && let Err(e) = order_round(&app, now).await
        {
            tracing::warn!(error = %e, "order round failed");
        }
        if let Err(e) = reroute_round(&app, now).await {
            tracing::warn!(error = %e, "re-routing round failed");
        }
        if let Err(e) = send_round(&app, now).await {
            tracing::warn!(error = %e, "send round failed");
        }
        if let Err(e) = annul_round(&app, now).await {
            tracing::warn!(error = %e, "annulment round failed");
        }
    }
}

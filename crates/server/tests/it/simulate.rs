//! `pasaporte simulate july-2025` end to end on SQLite with a small crowd:
//! nothing vanishes, bots win far more than their share of seats under a
//! live release and about their share under the ballot, unconfirmed seats
//! go to the waitlist, a closed office's bookings are re-seated, stock
//! falls to ten days with the rationing rule
//! published, orders move to the second vendor, the report is written with
//! its figures, and the same seed gives the same figures.

use pasaporte::simulate::{Format, July2025Args, Step, july_2025};

fn args(out: std::path::PathBuf, format: Format) -> July2025Args {
    July2025Args {
        seed: 7,
        people: 300,
        out,
        format,
        postgres: None,
        nodes: 1,
        scale: None,
        lang: "en".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn july_2025_loses_nothing_and_replays() {
    let dir = std::env::temp_dir().join(format!("pasaporte-sim-test-{}", uuid::Uuid::now_v7()));
    let a = july_2025(&args(dir.join("a"), Format::Html), false)
        .await
        .unwrap();
    let f = &a.figures;
    assert_eq!(f.vanished, 0, "{f:#?}");
    assert_eq!(f.slot_mismatches, 0, "{f:#?}");
    assert!(f.acknowledged > 0);
    assert_eq!((f.people, f.bots), (240, 60));

    // Live: the bots, polling, take far more than their share of people.
    let people_share = f.live.bot_share_of_people();
    assert!((people_share - 0.2).abs() < 1e-9);
    // Demand about three times the day's seats (counters come whole).
    let demand = f.requesters as f64 / f.live.seats_offered as f64;
    assert!((2.5..=3.0).contains(&demand), "{demand} {:?}", f.live);
    assert!(
        f.live.bot_share_of_seats() > 2.0 * people_share,
        "{:?}",
        f.live
    );
    assert!(f.live.bot_answers.get("429 too_many_requests").copied() > Some(0));

    // Ballot: about their share of people, whatever their spam.
    let Step::Done(b) = &f.ballot else {
        panic!("{:?}", f.ballot)
    };
    // The draw's seed is the server's own (random): at 300 requesters and
    // about 108 seats the bots' share has a standard deviation near 3
    // points, so 35 % is five of them above the 20 % expected.
    assert!(b.bot_share_of_seats() < 1.75 * people_share, "{b:?}");
    assert_eq!(
        b.seats_to_people + b.seats_to_bots,
        b.seats_offered,
        "{b:?}"
    );
    assert_eq!(b.bot_answers.get("202").copied(), Some(b.bots), "{b:?}");
    assert_eq!(b.writes_by_bots, b.bots * 100);
    assert_eq!(b.replayed, Some(true), "the draw replays from its files");
    assert_eq!(f.live.replayed, None);

    // Reconfirmation: the unconfirmed seats are released, the ballot day's
    // taken by the waitlist.
    let Step::Done(r) = &f.reconfirmation else {
        panic!("{:?}", f.reconfirmation)
    };
    assert!(r.asked > 0 && r.confirmed > 0 && r.released > 0, "{r:?}");
    assert_eq!(r.asked, r.confirmed + r.released, "{r:?}");
    assert!(
        r.filled_from_waitlist > 0 && r.filled_from_waitlist == r.freed_to_waitlist,
        "{r:?}"
    );

    // The release days are full at every office: the next free seat moves
    // from the first release day to a later day that no release gave (the
    // two release days need not be consecutive: a Friday's next whole day
    // is the Monday, and the Saturday between has seats).
    let release_days: Vec<pasaporte_core::jiff::civil::Date> = f
        .days
        .iter()
        .filter(|d| d.demand > 0)
        .map(|d| d.day.parse().unwrap())
        .collect();
    assert_eq!(release_days.len(), 2, "{:?}", f.days);
    assert_eq!(f.earliest.len(), 4);
    for e in &f.earliest {
        assert_eq!(e.days_before, Some(0), "{e:?}");
        let after = e.days_after.expect("a free seat within the fortnight");
        let free_day = release_days[0]
            .checked_add(pasaporte_core::jiff::Span::new().days(after))
            .unwrap();
        assert!(
            after >= 1 && !release_days.contains(&free_day),
            "{e:?} {release_days:?}"
        );
    }

    // A strike: the office's bookings are re-seated (or kept for their
    // citizens to choose), none lost; the moves are the bookings the
    // vanished check finds at another seat.
    let Step::Done(st) = &f.strike else {
        panic!("{:?}", f.strike)
    };
    assert!(st.bookings_affected > 0, "{st:?}");
    assert_eq!(st.bookings_affected, st.reseated + st.displaced, "{st:?}");
    assert_eq!(f.moved, st.reseated, "{st:?}");

    // Stock down to ten days with the rationing rule published; the orders
    // go on to the second vendor once the main one drains.
    let Step::Done(stock) = &f.stock else {
        panic!("{:?}", f.stock)
    };
    assert_eq!(stock.days_left, Some(10.0), "{stock:?}");
    assert!(stock.rationing_applies && !stock.rationing_rule.is_empty());
    let Step::Done(v) = &f.vendors else {
        panic!("{:?}", f.vendors)
    };
    assert_eq!(
        (
            v.before_to_main,
            v.before_to_second,
            v.after_to_main,
            v.after_to_second
        ),
        (3, 0, 0, 3)
    );

    // The report holds the figures, with SVG charts.
    let html = std::fs::read_to_string(&a.report_path).unwrap();
    assert!(a.report_path.ends_with("report.html"));
    assert!(
        html.contains("<svg") && html.contains("appointments that vanished (must be 0) | **0**")
    );
    assert!(html.contains(&format!(
        "{} / {}",
        f.live.seats_to_people, f.live.seats_to_bots
    )));

    // Same seed, same figures (a Markdown report this time).
    let b = july_2025(&args(dir.join("b"), Format::Md), false)
        .await
        .unwrap();
    assert_eq!(a.figures.replayable(), b.figures.replayable());
    let md = std::fs::read_to_string(&b.report_path).unwrap();
    assert!(md.contains("# July 2025 scenario"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The default crowd on three nodes sharing the test PostgreSQL: clients
/// are spread over the nodes, every node runs its workers (the outbox among
/// them), and still nothing vanishes, no slot is miscounted and every mail
/// the outbox sent reached the mail server exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn july_2025_on_three_nodes_loses_nothing_and_mails_once() {
    let admin = std::env::var(pasaporte_store::testing::PG_URL_VAR)
        .expect("PASAPORTE_TEST_PG_URL: run the tests through test.sh, which starts PostgreSQL");
    let dir = std::env::temp_dir().join(format!("pasaporte-sim-test-{}", uuid::Uuid::now_v7()));
    let mut a = args(dir.clone(), Format::Md);
    a.postgres = Some(admin);
    a.nodes = 3;
    let out = july_2025(&a, false).await.unwrap();
    let f = &out.figures;
    assert_eq!((f.nodes, f.backend.as_str()), (3, "PostgreSQL"));
    assert_eq!(f.vanished, 0, "{f:#?}");
    assert_eq!(f.slot_mismatches, 0, "{f:#?}");
    assert!(f.acknowledged > 0);
    // Every node served the crowd (a balancer by client address).
    let live = f.load.iter().find(|p| p.phase == "live").unwrap();
    assert_eq!(live.nodes.len(), 3);
    assert!(live.nodes.iter().all(|n| n.requests > 0), "{live:?}");
    assert_eq!(
        live.nodes.iter().map(|n| n.requests).sum::<u64>(),
        live.total.requests
    );
    assert!(live.total.p99_ms >= live.total.p50_ms && live.total.per_s > 0.0);
    // Mail: bookings, requests and allocations, each once (reminders and
    // offers are dated at the run's later instants: not due yet).
    let m = &f.mail;
    assert!(m.outbox_sent > f.acknowledged, "{m:?}");
    assert_eq!((m.received, m.duplicates), (m.distinct, 0), "{m:?}");
    assert_eq!(m.distinct, m.outbox_sent, "{m:?}");
    assert!(m.exactly_once());
    // Every seat of both releases is taken, the draw replays. (The bots'
    // live share differs from one node's: two nodes in three show them a
    // view up to a second old, and they spend their rate on full slots.)
    assert_eq!(
        f.live.seats_to_people + f.live.seats_to_bots,
        f.live.seats_offered,
        "{:?}",
        f.live
    );
    let Step::Done(b) = &f.ballot else {
        panic!("{:?}", f.ballot)
    };
    assert_eq!(
        b.seats_to_people + b.seats_to_bots,
        b.seats_offered,
        "{b:?}"
    );
    assert_eq!(b.replayed, Some(true));
    let md = std::fs::read_to_string(&out.report_path).unwrap();
    assert!(md.contains("mail sent exactly once | **yes**"), "{md}");
    assert!(md.contains("Load reached (3 nodes)"), "{md}");
    let _ = std::fs::remove_dir_all(&dir);
}

//! `pasaporte simulate july-2025` end to end on SQLite with a small crowd:
//! nothing vanishes, bots win far more than their share of seats under a
//! live release and about their share under the ballot, the report is
//! written with its figures, and the same seed gives the same figures.

use pasaporte::simulate::{Format, July2025Args, Step, july_2025};

fn args(out: std::path::PathBuf, format: Format) -> July2025Args {
    July2025Args {
        seed: 7,
        people: 150,
        out,
        format,
        postgres: None,
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
    assert_eq!((f.people, f.bots), (120, 30));

    // Live: the bots, polling, take far more than their share of people.
    let people_share = f.live.bot_share_of_people();
    assert!((people_share - 0.2).abs() < 1e-9);
    assert!(
        f.live.seats_offered * 3 <= f.requesters + 12,
        "{:?}",
        f.live
    );
    assert!(
        f.live.bot_share_of_seats() > 2.0 * people_share,
        "{:?}",
        f.live
    );
    assert!(f.live.bot_answers.get("429 too_many_requests").copied() > Some(0));

    // Ballot: about their share of people.
    if let Step::Done(b) = &f.ballot {
        assert!(b.bot_share_of_seats() < 1.5 * people_share, "{b:?}");
    }

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

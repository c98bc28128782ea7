//! The MRZ parser on arbitrary text: never panics; whatever parses re-serialises to the
//! same lines and its checks are computed.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(parsed) = icao9303::Mrz::parse(text) {
        let again = icao9303::Mrz::from_lines(&parsed.lines).expect("parsed lines parse again");
        assert_eq!(again.fields(), parsed);
        let _ = again.checks_ok();
    }
});

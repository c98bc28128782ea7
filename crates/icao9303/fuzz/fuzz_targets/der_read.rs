//! The chip-data readers on arbitrary bytes: the TLV walker, EF.COM, DG1, DG2 and EF.SOD
//! (CMS / X.509 DER through the RustCrypto decoders) never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = icao9303::tlv::walk(data);
    let _ = icao9303::lds::parse_ef_com(data);
    let _ = icao9303::lds::parse_dg1(data);
    let _ = icao9303::lds::parse_dg2(data);
    let _ = icao9303::lds::jpeg_size(data);
    if let Ok(sod) = icao9303::sod::Sod::parse(data) {
        let _ = sod.signer_certificate();
    }
});

//! Prints the MRZ of the specimens of Doc 9303 Parts 4 to 6, and what a parse says back.
//!
//! `cargo run -p icao9303 --example generate`

use icao9303::{Format, Mrz, MrzFields};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let anna = MrzFields {
        document_code: "P",
        issuing_state: "UTO",
        surname: "Eriksson",
        given_names: "Anna María",
        document_number: "L898902C3",
        nationality: "UTO",
        birth_date: "1974-08-12",
        sex: "F",
        expiry_date: "2012-04-15",
        optional_data: "ZE184226B",
        optional_data_2: "",
    };
    let card = MrzFields {
        document_code: "I",
        document_number: "D23145890",
        optional_data: "",
        ..anna
    };
    for (format, fields) in [
        (Format::Td3, anna),
        (Format::Td2, card),
        (Format::Td1, card),
    ] {
        let mrz = Mrz::generate(format, &fields)?;
        println!("{format}:\n{mrz}\n");
    }
    // A long document number on a TD1 card (Part 5 §4.2.4).
    let long = Mrz::generate(
        Format::Td1,
        &MrzFields {
            document_number: "D23145890734",
            ..card
        },
    )?;
    println!("TD1, 12-character document number:\n{long}\n");
    // An error names the field.
    match Mrz::generate(
        Format::Td3,
        &MrzFields {
            surname: "Иванов",
            ..anna
        },
    ) {
        Ok(m) => println!("unexpected: {m}"),
        Err(e) => println!("error: {e}"),
    }
    // Parsing reports every check.
    let parsed = Mrz::parse(
        "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<\nL898902C35UTO7408122F1204159ZE184226B<<<<<10",
    )?;
    for c in &parsed.checks {
        println!("{c}");
    }
    Ok(())
}

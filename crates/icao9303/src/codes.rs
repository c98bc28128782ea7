//! Document codes and state codes (Doc 9303 Part 3 section 5, Parts 4 to 6).

use std::fmt;

/// ISO 3166-1 alpha-3 codes (249 entries, as published by ISO; sorted for binary search).
const ISO_3166_ALPHA3: [&[u8; 3]; 249] = [
    b"ABW", b"AFG", b"AGO", b"AIA", b"ALA", b"ALB", b"AND", b"ARE", b"ARG", b"ARM", b"ASM", b"ATA",
    b"ATF", b"ATG", b"AUS", b"AUT", b"AZE", b"BDI", b"BEL", b"BEN", b"BES", b"BFA", b"BGD", b"BGR",
    b"BHR", b"BHS", b"BIH", b"BLM", b"BLR", b"BLZ", b"BMU", b"BOL", b"BRA", b"BRB", b"BRN", b"BTN",
    b"BVT", b"BWA", b"CAF", b"CAN", b"CCK", b"CHE", b"CHL", b"CHN", b"CIV", b"CMR", b"COD", b"COG",
    b"COK", b"COL", b"COM", b"CPV", b"CRI", b"CUB", b"CUW", b"CXR", b"CYM", b"CYP", b"CZE", b"DEU",
    b"DJI", b"DMA", b"DNK", b"DOM", b"DZA", b"ECU", b"EGY", b"ERI", b"ESH", b"ESP", b"EST", b"ETH",
    b"FIN", b"FJI", b"FLK", b"FRA", b"FRO", b"FSM", b"GAB", b"GBR", b"GEO", b"GGY", b"GHA", b"GIB",
    b"GIN", b"GLP", b"GMB", b"GNB", b"GNQ", b"GRC", b"GRD", b"GRL", b"GTM", b"GUF", b"GUM", b"GUY",
    b"HKG", b"HMD", b"HND", b"HRV", b"HTI", b"HUN", b"IDN", b"IMN", b"IND", b"IOT", b"IRL", b"IRN",
    b"IRQ", b"ISL", b"ISR", b"ITA", b"JAM", b"JEY", b"JOR", b"JPN", b"KAZ", b"KEN", b"KGZ", b"KHM",
    b"KIR", b"KNA", b"KOR", b"KWT", b"LAO", b"LBN", b"LBR", b"LBY", b"LCA", b"LIE", b"LKA", b"LSO",
    b"LTU", b"LUX", b"LVA", b"MAC", b"MAF", b"MAR", b"MCO", b"MDA", b"MDG", b"MDV", b"MEX", b"MHL",
    b"MKD", b"MLI", b"MLT", b"MMR", b"MNE", b"MNG", b"MNP", b"MOZ", b"MRT", b"MSR", b"MTQ", b"MUS",
    b"MWI", b"MYS", b"MYT", b"NAM", b"NCL", b"NER", b"NFK", b"NGA", b"NIC", b"NIU", b"NLD", b"NOR",
    b"NPL", b"NRU", b"NZL", b"OMN", b"PAK", b"PAN", b"PCN", b"PER", b"PHL", b"PLW", b"PNG", b"POL",
    b"PRI", b"PRK", b"PRT", b"PRY", b"PSE", b"PYF", b"QAT", b"REU", b"ROU", b"RUS", b"RWA", b"SAU",
    b"SDN", b"SEN", b"SGP", b"SGS", b"SHN", b"SJM", b"SLB", b"SLE", b"SLV", b"SMR", b"SOM", b"SPM",
    b"SRB", b"SSD", b"STP", b"SUR", b"SVK", b"SVN", b"SWE", b"SWZ", b"SXM", b"SYC", b"SYR", b"TCA",
    b"TCD", b"TGO", b"THA", b"TJK", b"TKL", b"TKM", b"TLS", b"TON", b"TTO", b"TUN", b"TUR", b"TUV",
    b"TWN", b"TZA", b"UGA", b"UKR", b"UMI", b"URY", b"USA", b"UZB", b"VAT", b"VCT", b"VEN", b"VGB",
    b"VIR", b"VNM", b"VUT", b"WLF", b"WSM", b"YEM", b"ZAF", b"ZMB", b"ZWE",
];

/// Codes of Doc 9303 Part 3 that are not ISO 3166-1 alpha-3 codes (sorted), with their
/// meaning. `D<<` is Germany's code in the MRZ; `UTO` is the fictitious state of the
/// specimens.
const ICAO_CODES: [(&[u8; 3], &str); 30] = [
    (b"ANT", "Netherlands Antilles (transitionally reserved)"),
    (b"D<<", "Germany"),
    (b"EUE", "European Union"),
    (b"GBD", "British Overseas Territories Citizen"),
    (b"GBN", "British National (Overseas)"),
    (b"GBO", "British Overseas Citizen"),
    (b"GBP", "British Protected Person"),
    (b"GBS", "British Subject"),
    (b"NTZ", "Neutral Zone (transitionally reserved)"),
    (b"RKS", "Kosovo"),
    (b"UNA", "Specialized agency of the United Nations"),
    (
        b"UNK",
        "United Nations Interim Administration Mission in Kosovo",
    ),
    (b"UNO", "United Nations Organization"),
    (b"UTO", "Utopia (specimens only)"),
    (b"XBA", "African Development Bank"),
    (b"XCC", "Caribbean Community"),
    (b"XCE", "Council of Europe"),
    (b"XCO", "Common Market for Eastern and Southern Africa"),
    (b"XDC", "Southern African Development Community"),
    (b"XEC", "Economic Community of West African States"),
    (b"XES", "Organisation of Eastern Caribbean States"),
    (b"XGC", "Gulf Cooperation Council"),
    (b"XIM", "African Export-Import Bank"),
    (b"XMP", "Andean Community / other organization (ICAO list)"),
    (b"XOM", "Sovereign Military Order of Malta"),
    (
        b"XPO",
        "International Criminal Police Organization (INTERPOL)",
    ),
    (b"XXA", "Stateless person"),
    (b"XXB", "Refugee (1951 Convention)"),
    (b"XXC", "Refugee (other)"),
    (b"XXX", "Unspecified nationality"),
];

/// Zimbabwe's former code, still read on documents in circulation.
const FORMER_CODES: [&[u8; 3]; 1] = [b"ZIM"];

/// A state or organization code as written in the MRZ (three characters, `D<<` for Germany).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct StateCode([u8; 3]);

/// Why a state code was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown state code {0:?}: not ISO 3166-1 alpha-3 nor an ICAO Doc 9303 Part 3 code")]
pub struct UnknownStateCode(pub String);

impl StateCode {
    /// Parses a code: `COL`, `col`, `D`, `D<<`, `XXA`... Unknown codes are refused.
    pub fn parse(text: &str) -> Result<Self, UnknownStateCode> {
        let t = text.trim().as_bytes();
        let mut code = [b'<'; 3];
        if t.is_empty() || t.len() > 3 {
            return Err(UnknownStateCode(text.to_owned()));
        }
        for (slot, &c) in code.iter_mut().zip(t) {
            *slot = c.to_ascii_uppercase();
        }
        Self::from_mrz(&code).ok_or_else(|| UnknownStateCode(text.to_owned()))
    }

    /// Reads the three characters of an MRZ field; `None` for an unknown code.
    #[inline]
    #[must_use]
    pub fn from_mrz(field: &[u8; 3]) -> Option<Self> {
        if is_known(field) {
            Some(Self(*field))
        } else {
            None
        }
    }

    /// The three MRZ characters.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8; 3] {
        &self.0
    }

    /// The code without trailing fillers (`D` for Germany).
    #[must_use]
    pub fn as_str(&self) -> &str {
        let len = self.0.iter().position(|&c| c == b'<').unwrap_or(3);
        // The bytes are ASCII by construction.
        std::str::from_utf8(&self.0[..len]).unwrap_or("")
    }

    /// Whether this is an ICAO-specific code rather than an ISO 3166-1 one, and its meaning.
    #[must_use]
    pub fn icao_meaning(&self) -> Option<&'static str> {
        ICAO_CODES
            .binary_search_by(|(c, _)| c.as_slice().cmp(self.0.as_slice()))
            .ok()
            .map(|i| ICAO_CODES[i].1)
    }
}

impl fmt::Debug for StateCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StateCode({})", self.as_str())
    }
}

impl fmt::Display for StateCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[inline]
fn is_known(code: &[u8; 3]) -> bool {
    ISO_3166_ALPHA3
        .binary_search_by(|c| c.as_slice().cmp(code.as_slice()))
        .is_ok()
        || ICAO_CODES
            .binary_search_by(|(c, _)| c.as_slice().cmp(code.as_slice()))
            .is_ok()
        || FORMER_CODES.contains(&code)
}

/// The three document formats of Doc 9303 (Parts 4, 5 and 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// ID-1 card size, 3 lines of 30 characters (Part 5).
    Td1,
    /// ID-2 size, 2 lines of 36 characters (Part 6).
    Td2,
    /// Passport booklet, 2 lines of 44 characters (Part 4).
    Td3,
}

impl Format {
    /// Characters per line.
    #[must_use]
    pub const fn line_len(self) -> usize {
        match self {
            Format::Td1 => 30,
            Format::Td2 => 36,
            Format::Td3 => 44,
        }
    }

    /// Number of lines.
    #[must_use]
    pub const fn line_count(self) -> usize {
        match self {
            Format::Td1 => 3,
            Format::Td2 | Format::Td3 => 2,
        }
    }

    /// Characters in the whole MRZ.
    #[must_use]
    pub const fn total_len(self) -> usize {
        self.line_len() * self.line_count()
    }

    /// Characters of the name field.
    #[must_use]
    pub const fn name_len(self) -> usize {
        match self {
            Format::Td1 => 30,
            Format::Td2 => 31,
            Format::Td3 => 39,
        }
    }

    /// `TD1`, `TD2` or `TD3`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Format::Td1 => "TD1",
            Format::Td2 => "TD2",
            Format::Td3 => "TD3",
        }
    }
}

impl std::str::FromStr for Format {
    type Err = UnknownFormat;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_uppercase().as_str() {
            "TD1" => Ok(Format::Td1),
            "TD2" => Ok(Format::Td2),
            "TD3" => Ok(Format::Td3),
            _ => Err(UnknownFormat(s.to_owned())),
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A format name other than TD1, TD2, TD3.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown format {0:?}: expected TD1, TD2 or TD3")]
pub struct UnknownFormat(pub String);

/// A document code (two MRZ characters).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct DocumentCode([u8; 2]);

/// Why a document code was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocumentCodeError {
    /// Not one or two characters of `A`–`Z` / `<`.
    #[error("document code {0:?} must be one or two letters")]
    Malformed(String),
    /// The first character does not belong to the format.
    #[error(
        "document code {code:?} is not allowed in {format}: the first letter must be {allowed}"
    )]
    WrongFirst {
        /// The code given.
        code: String,
        /// The format asked for.
        format: Format,
        /// The letters allowed.
        allowed: &'static str,
    },
    /// `V` is reserved for visas (Parts 5 and 6).
    #[error("document code {0:?}: V as second letter is reserved for visas")]
    VisaSecond(String),
}

impl DocumentCode {
    /// Parses a document code for a format. TD3 codes start with `P`; TD1 and TD2 codes
    /// with `A`, `C` or `I` (Parts 4 to 6); a single letter is completed with `<`.
    pub fn parse(text: &str, format: Format) -> Result<Self, DocumentCodeError> {
        let t = text.trim().as_bytes();
        if t.is_empty() || t.len() > 2 {
            return Err(DocumentCodeError::Malformed(text.to_owned()));
        }
        let mut code = [b'<'; 2];
        for (slot, &c) in code.iter_mut().zip(t) {
            *slot = c.to_ascii_uppercase();
        }
        Self::from_mrz(&code, format).map_err(|e| match e {
            DocumentCodeError::Malformed(_) => DocumentCodeError::Malformed(text.to_owned()),
            DocumentCodeError::WrongFirst {
                format, allowed, ..
            } => DocumentCodeError::WrongFirst {
                code: text.to_owned(),
                format,
                allowed,
            },
            DocumentCodeError::VisaSecond(_) => DocumentCodeError::VisaSecond(text.to_owned()),
        })
    }

    /// Checks the two MRZ characters for a format.
    pub fn from_mrz(code: &[u8; 2], format: Format) -> Result<Self, DocumentCodeError> {
        let shown = || String::from_utf8_lossy(code).into_owned();
        if !code[0].is_ascii_uppercase() || !(code[1].is_ascii_uppercase() || code[1] == b'<') {
            return Err(DocumentCodeError::Malformed(shown()));
        }
        let (ok, allowed) = match format {
            Format::Td3 => (code[0] == b'P', "P"),
            Format::Td1 | Format::Td2 => (matches!(code[0], b'A' | b'C' | b'I'), "A, C or I"),
        };
        if !ok {
            return Err(DocumentCodeError::WrongFirst {
                code: shown(),
                format,
                allowed,
            });
        }
        if format != Format::Td3 && code[1] == b'V' {
            return Err(DocumentCodeError::VisaSecond(shown()));
        }
        Ok(Self(*code))
    }

    /// The two MRZ characters.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8; 2] {
        &self.0
    }

    /// The code without the trailing filler.
    #[must_use]
    pub fn as_str(&self) -> &str {
        let len = if self.0[1] == b'<' { 1 } else { 2 };
        std::str::from_utf8(&self.0[..len]).unwrap_or("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_sorted_and_complete() {
        assert!(ISO_3166_ALPHA3.windows(2).all(|w| w[0] < w[1]));
        assert!(ICAO_CODES.windows(2).all(|w| w[0].0 < w[1].0));
        for (c, _) in ICAO_CODES {
            assert!(
                ISO_3166_ALPHA3.binary_search(&c).is_err(),
                "{c:?} is in both tables"
            );
        }
    }

    #[test]
    fn state_codes() {
        for ok in [
            "COL", "col", "D", "D<<", "UTO", "XXA", "EUE", "GBN", "UNK", "RKS", "ZIM", "DEU",
        ] {
            assert!(StateCode::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "XYZ", "CO", "COLO", "C0L", "DE"] {
            assert!(StateCode::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(StateCode::parse("d").map(|c| *c.as_bytes()), Ok(*b"D<<"));
        assert_eq!(
            StateCode::parse("D").map(|c| c.to_string()),
            Ok("D".to_owned())
        );
    }

    #[test]
    fn document_codes() {
        assert!(DocumentCode::parse("P", Format::Td3).is_ok());
        assert!(DocumentCode::parse("pd", Format::Td3).is_ok());
        assert!(DocumentCode::parse("I", Format::Td3).is_err());
        assert!(DocumentCode::parse("I", Format::Td1).is_ok());
        assert!(DocumentCode::parse("AC", Format::Td2).is_ok());
        assert!(DocumentCode::parse("IV", Format::Td1).is_err());
        assert!(DocumentCode::parse("P", Format::Td1).is_err());
        assert!(DocumentCode::parse("P1", Format::Td3).is_err());
    }
}

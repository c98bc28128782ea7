//! Document codes and state codes (Doc 9303 Part 3 section 5, Parts 4 to 6).

use std::fmt;

/// ISO 3166-1 codes, alpha-3 with alpha-2 (249 entries as published by ISO; sorted by
/// alpha-3 for binary search). The alpha-2 code goes into certificates' countryName.
const ISO_3166: [(&[u8; 3], &[u8; 2]); 249] = [
    (b"ABW", b"AW"),
    (b"AFG", b"AF"),
    (b"AGO", b"AO"),
    (b"AIA", b"AI"),
    (b"ALA", b"AX"),
    (b"ALB", b"AL"),
    (b"AND", b"AD"),
    (b"ARE", b"AE"),
    (b"ARG", b"AR"),
    (b"ARM", b"AM"),
    (b"ASM", b"AS"),
    (b"ATA", b"AQ"),
    (b"ATF", b"TF"),
    (b"ATG", b"AG"),
    (b"AUS", b"AU"),
    (b"AUT", b"AT"),
    (b"AZE", b"AZ"),
    (b"BDI", b"BI"),
    (b"BEL", b"BE"),
    (b"BEN", b"BJ"),
    (b"BES", b"BQ"),
    (b"BFA", b"BF"),
    (b"BGD", b"BD"),
    (b"BGR", b"BG"),
    (b"BHR", b"BH"),
    (b"BHS", b"BS"),
    (b"BIH", b"BA"),
    (b"BLM", b"BL"),
    (b"BLR", b"BY"),
    (b"BLZ", b"BZ"),
    (b"BMU", b"BM"),
    (b"BOL", b"BO"),
    (b"BRA", b"BR"),
    (b"BRB", b"BB"),
    (b"BRN", b"BN"),
    (b"BTN", b"BT"),
    (b"BVT", b"BV"),
    (b"BWA", b"BW"),
    (b"CAF", b"CF"),
    (b"CAN", b"CA"),
    (b"CCK", b"CC"),
    (b"CHE", b"CH"),
    (b"CHL", b"CL"),
    (b"CHN", b"CN"),
    (b"CIV", b"CI"),
    (b"CMR", b"CM"),
    (b"COD", b"CD"),
    (b"COG", b"CG"),
    (b"COK", b"CK"),
    (b"COL", b"CO"),
    (b"COM", b"KM"),
    (b"CPV", b"CV"),
    (b"CRI", b"CR"),
    (b"CUB", b"CU"),
    (b"CUW", b"CW"),
    (b"CXR", b"CX"),
    (b"CYM", b"KY"),
    (b"CYP", b"CY"),
    (b"CZE", b"CZ"),
    (b"DEU", b"DE"),
    (b"DJI", b"DJ"),
    (b"DMA", b"DM"),
    (b"DNK", b"DK"),
    (b"DOM", b"DO"),
    (b"DZA", b"DZ"),
    (b"ECU", b"EC"),
    (b"EGY", b"EG"),
    (b"ERI", b"ER"),
    (b"ESH", b"EH"),
    (b"ESP", b"ES"),
    (b"EST", b"EE"),
    (b"ETH", b"ET"),
    (b"FIN", b"FI"),
    (b"FJI", b"FJ"),
    (b"FLK", b"FK"),
    (b"FRA", b"FR"),
    (b"FRO", b"FO"),
    (b"FSM", b"FM"),
    (b"GAB", b"GA"),
    (b"GBR", b"GB"),
    (b"GEO", b"GE"),
    (b"GGY", b"GG"),
    (b"GHA", b"GH"),
    (b"GIB", b"GI"),
    (b"GIN", b"GN"),
    (b"GLP", b"GP"),
    (b"GMB", b"GM"),
    (b"GNB", b"GW"),
    (b"GNQ", b"GQ"),
    (b"GRC", b"GR"),
    (b"GRD", b"GD"),
    (b"GRL", b"GL"),
    (b"GTM", b"GT"),
    (b"GUF", b"GF"),
    (b"GUM", b"GU"),
    (b"GUY", b"GY"),
    (b"HKG", b"HK"),
    (b"HMD", b"HM"),
    (b"HND", b"HN"),
    (b"HRV", b"HR"),
    (b"HTI", b"HT"),
    (b"HUN", b"HU"),
    (b"IDN", b"ID"),
    (b"IMN", b"IM"),
    (b"IND", b"IN"),
    (b"IOT", b"IO"),
    (b"IRL", b"IE"),
    (b"IRN", b"IR"),
    (b"IRQ", b"IQ"),
    (b"ISL", b"IS"),
    (b"ISR", b"IL"),
    (b"ITA", b"IT"),
    (b"JAM", b"JM"),
    (b"JEY", b"JE"),
    (b"JOR", b"JO"),
    (b"JPN", b"JP"),
    (b"KAZ", b"KZ"),
    (b"KEN", b"KE"),
    (b"KGZ", b"KG"),
    (b"KHM", b"KH"),
    (b"KIR", b"KI"),
    (b"KNA", b"KN"),
    (b"KOR", b"KR"),
    (b"KWT", b"KW"),
    (b"LAO", b"LA"),
    (b"LBN", b"LB"),
    (b"LBR", b"LR"),
    (b"LBY", b"LY"),
    (b"LCA", b"LC"),
    (b"LIE", b"LI"),
    (b"LKA", b"LK"),
    (b"LSO", b"LS"),
    (b"LTU", b"LT"),
    (b"LUX", b"LU"),
    (b"LVA", b"LV"),
    (b"MAC", b"MO"),
    (b"MAF", b"MF"),
    (b"MAR", b"MA"),
    (b"MCO", b"MC"),
    (b"MDA", b"MD"),
    (b"MDG", b"MG"),
    (b"MDV", b"MV"),
    (b"MEX", b"MX"),
    (b"MHL", b"MH"),
    (b"MKD", b"MK"),
    (b"MLI", b"ML"),
    (b"MLT", b"MT"),
    (b"MMR", b"MM"),
    (b"MNE", b"ME"),
    (b"MNG", b"MN"),
    (b"MNP", b"MP"),
    (b"MOZ", b"MZ"),
    (b"MRT", b"MR"),
    (b"MSR", b"MS"),
    (b"MTQ", b"MQ"),
    (b"MUS", b"MU"),
    (b"MWI", b"MW"),
    (b"MYS", b"MY"),
    (b"MYT", b"YT"),
    (b"NAM", b"NA"),
    (b"NCL", b"NC"),
    (b"NER", b"NE"),
    (b"NFK", b"NF"),
    (b"NGA", b"NG"),
    (b"NIC", b"NI"),
    (b"NIU", b"NU"),
    (b"NLD", b"NL"),
    (b"NOR", b"NO"),
    (b"NPL", b"NP"),
    (b"NRU", b"NR"),
    (b"NZL", b"NZ"),
    (b"OMN", b"OM"),
    (b"PAK", b"PK"),
    (b"PAN", b"PA"),
    (b"PCN", b"PN"),
    (b"PER", b"PE"),
    (b"PHL", b"PH"),
    (b"PLW", b"PW"),
    (b"PNG", b"PG"),
    (b"POL", b"PL"),
    (b"PRI", b"PR"),
    (b"PRK", b"KP"),
    (b"PRT", b"PT"),
    (b"PRY", b"PY"),
    (b"PSE", b"PS"),
    (b"PYF", b"PF"),
    (b"QAT", b"QA"),
    (b"REU", b"RE"),
    (b"ROU", b"RO"),
    (b"RUS", b"RU"),
    (b"RWA", b"RW"),
    (b"SAU", b"SA"),
    (b"SDN", b"SD"),
    (b"SEN", b"SN"),
    (b"SGP", b"SG"),
    (b"SGS", b"GS"),
    (b"SHN", b"SH"),
    (b"SJM", b"SJ"),
    (b"SLB", b"SB"),
    (b"SLE", b"SL"),
    (b"SLV", b"SV"),
    (b"SMR", b"SM"),
    (b"SOM", b"SO"),
    (b"SPM", b"PM"),
    (b"SRB", b"RS"),
    (b"SSD", b"SS"),
    (b"STP", b"ST"),
    (b"SUR", b"SR"),
    (b"SVK", b"SK"),
    (b"SVN", b"SI"),
    (b"SWE", b"SE"),
    (b"SWZ", b"SZ"),
    (b"SXM", b"SX"),
    (b"SYC", b"SC"),
    (b"SYR", b"SY"),
    (b"TCA", b"TC"),
    (b"TCD", b"TD"),
    (b"TGO", b"TG"),
    (b"THA", b"TH"),
    (b"TJK", b"TJ"),
    (b"TKL", b"TK"),
    (b"TKM", b"TM"),
    (b"TLS", b"TL"),
    (b"TON", b"TO"),
    (b"TTO", b"TT"),
    (b"TUN", b"TN"),
    (b"TUR", b"TR"),
    (b"TUV", b"TV"),
    (b"TWN", b"TW"),
    (b"TZA", b"TZ"),
    (b"UGA", b"UG"),
    (b"UKR", b"UA"),
    (b"UMI", b"UM"),
    (b"URY", b"UY"),
    (b"USA", b"US"),
    (b"UZB", b"UZ"),
    (b"VAT", b"VA"),
    (b"VCT", b"VC"),
    (b"VEN", b"VE"),
    (b"VGB", b"VG"),
    (b"VIR", b"VI"),
    (b"VNM", b"VN"),
    (b"VUT", b"VU"),
    (b"WLF", b"WF"),
    (b"WSM", b"WS"),
    (b"YEM", b"YE"),
    (b"ZAF", b"ZA"),
    (b"ZMB", b"ZM"),
    (b"ZWE", b"ZW"),
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

    /// The ISO 3166-1 alpha-2 code for a certificate's countryName: the state's own for
    /// ISO codes, `DE` for `D`, `GB` for the British codes of Part 3; `None` for
    /// organizations and the other ICAO codes.
    #[must_use]
    pub fn alpha2(&self) -> Option<&'static str> {
        let iso = |a3: &[u8; 3]| {
            ISO_3166
                .binary_search_by(|(c, _)| c.as_slice().cmp(a3.as_slice()))
                .ok()
                .and_then(|i| std::str::from_utf8(ISO_3166[i].1).ok())
        };
        match &self.0 {
            b"D<<" => iso(b"DEU"),
            b"GBD" | b"GBN" | b"GBO" | b"GBP" | b"GBS" => iso(b"GBR"),
            other => iso(other),
        }
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
    ISO_3166
        .binary_search_by(|(c, _)| c.as_slice().cmp(code.as_slice()))
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
        assert!(ISO_3166.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(ICAO_CODES.windows(2).all(|w| w[0].0 < w[1].0));
        for (c, _) in ICAO_CODES {
            assert!(
                ISO_3166.binary_search_by(|(a, _)| a.cmp(&c)).is_err(),
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

//! What an application costs, and the vocabulary of paying it: passport types,
//! money, the fee schedule read from `data/fees.csv`, and the states a payment
//! reference goes through.
//!
//! Layout: [`PassportType`] (pages, validity); [`Currency`] and [`Money`]
//! (amounts in minor units, see [`Currency::minor_digits`]); [`FeeSchedule`]
//! parses the fee CSV and answers [`FeeSchedule::fee_for`] an office; then
//! [`PaymentStatus`] and [`PaymentEventKind`], shared by the store and the
//! payment adapter.
//!
//! The rules of [`FeeSchedule::fee_for`], in order:
//! 1. the currency is the office's: COP in Colombia (ministry and departmental
//!    offices); at a consulate EUR when its country is in [`EUROPE_COUNTRIES`],
//!    USD otherwise;
//! 2. a row `department:<CODE>` for the office's code, in that currency, wins
//!    (a departmental tax makes each department's total different);
//! 3. else the row for the office's kind (`ministry`, `department`,
//!    `consulate`) in that currency;
//! 4. else [`NoFee`], which names the passport type, office and currency: a
//!    missing row is a gap in the schedule, never a free passport.

use crate::office::{Office, OfficeKind};
use jiff::civil::Date;

/// A passport booklet's type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PassportType {
    /// 32 pages, 10 years; adults and minors alike.
    Ordinario,
    /// 48 pages, 10 years; for frequent travellers.
    Ejecutivo,
    /// 8 pages, 7 months; handed over the same day with proof of urgency.
    Emergencia,
    /// 28 pages, 10 years; residents of border areas.
    Fronterizo,
}

impl PassportType {
    pub const ALL: [PassportType; 4] = [
        PassportType::Ordinario,
        PassportType::Ejecutivo,
        PassportType::Emergencia,
        PassportType::Fronterizo,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PassportType::Ordinario => "ordinario",
            PassportType::Ejecutivo => "ejecutivo",
            PassportType::Emergencia => "emergencia",
            PassportType::Fronterizo => "fronterizo",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// Pages in the booklet.
    pub fn pages(self) -> u32 {
        match self {
            PassportType::Ordinario => 32,
            PassportType::Ejecutivo => 48,
            PassportType::Emergencia => 8,
            PassportType::Fronterizo => 28,
        }
    }

    /// How long a passport of this type is valid.
    pub fn validity_months(self) -> u32 {
        match self {
            PassportType::Ordinario | PassportType::Ejecutivo | PassportType::Fronterizo => 120,
            PassportType::Emergencia => 7,
        }
    }

    /// The expiry date of a passport issued on `issued` (same day of the
    /// month, clamped to the month's last day: 31 Aug + 7 months = 31 Mar,
    /// 31 Jul + 7 months = 29 Feb or 28 Feb). `None` past year 9999.
    pub fn expiry_date(self, issued: Date) -> Option<Date> {
        issued
            .checked_add(jiff::Span::new().months(i64::from(self.validity_months())))
            .ok()
    }
}

/// The currencies fees are charged in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Currency {
    Cop,
    Usd,
    Eur,
}

impl Currency {
    pub const ALL: [Currency; 3] = [Currency::Cop, Currency::Usd, Currency::Eur];

    /// The ISO 4217 code.
    pub fn code(self) -> &'static str {
        match self {
            Currency::Cop => "COP",
            Currency::Usd => "USD",
            Currency::Eur => "EUR",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.code() == s)
    }

    /// Decimal digits of the unit amounts are kept in. ISO 4217 gives COP two,
    /// but centavos are not used in practice (no coin, no bank takes them), so
    /// pasaporte keeps COP in whole pesos; USD and EUR in cents.
    pub fn minor_digits(self) -> u32 {
        match self {
            Currency::Cop => 0,
            Currency::Usd | Currency::Eur => 2,
        }
    }
}

/// An amount of money in the currency's minor unit ([`Currency::minor_digits`]):
/// `Money { Cop, 190_000 }` is 190,000 pesos, `Money { Usd, 8_200 }` is 82 dollars.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Money {
    pub currency: Currency,
    pub amount_minor: i64,
}

impl Money {
    /// Reads an amount written in major units, with at most the currency's
    /// decimal digits: `"190000"` COP, `"82"` or `"82.50"` USD.
    pub fn parse_major(currency: Currency, s: &str) -> Option<Money> {
        let digits = currency.minor_digits();
        let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
        let all_digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || !all_digits(whole) || !all_digits(frac) {
            return None;
        }
        if frac.len() > digits as usize || (s.contains('.') && frac.is_empty()) {
            return None;
        }
        let scale = 10i64.checked_pow(digits)?;
        let whole: i64 = whole.parse().ok()?;
        let mut frac_minor: i64 = if frac.is_empty() {
            0
        } else {
            frac.parse().ok()?
        };
        for _ in frac.len()..digits as usize {
            frac_minor *= 10;
        }
        Some(Money {
            currency,
            amount_minor: whole.checked_mul(scale)?.checked_add(frac_minor)?,
        })
    }
}

/// `190000 COP`, `82.00 USD`.
impl std::fmt::Display for Money {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let digits = self.currency.minor_digits();
        let sign = if self.amount_minor < 0 { "-" } else { "" };
        let abs = self.amount_minor.unsigned_abs();
        if digits == 0 {
            return write!(f, "{sign}{abs} {}", self.currency.code());
        }
        let scale = 10u64.pow(digits);
        write!(
            f,
            "{sign}{}.{:0width$} {}",
            abs / scale,
            abs % scale,
            self.currency.code(),
            width = digits as usize
        )
    }
}

/// Countries (ISO 3166-1 alpha-3) whose consulates charge in EUR; every other
/// consulate charges in USD. Spain is the one in data/offices.csv; the rest
/// are the European countries with a Colombian consulate most often asked
/// about, listed so that adding their offices needs no code change.
pub const EUROPE_COUNTRIES: &[&str] = &[
    "AUT", "BEL", "CHE", "DEU", "ESP", "FRA", "GBR", "IRL", "ITA", "NLD", "PRT", "SWE",
];

/// Rows a fee schedule may hold: the real one has a dozen; a thousand leaves
/// room for every department and type while bounding what a bad file costs.
pub const FEE_ROWS_MAX: usize = 1_000;

/// Whom a fee row applies to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum FeeScope {
    /// Every office of this kind.
    Kind(OfficeKind),
    /// The office with this code (`department:<CODE>` in the CSV).
    Office(String),
}

impl FeeScope {
    fn parse(s: &str) -> Option<FeeScope> {
        match s.split_once(':') {
            Some(("department", code)) if crate::office::valid_office_code(code) => {
                Some(FeeScope::Office(code.to_string()))
            }
            Some(_) => None,
            None => OfficeKind::parse(s).map(FeeScope::Kind),
        }
    }
}

/// One row of the fee schedule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeeRow {
    pub passport_type: PassportType,
    pub scope: FeeScope,
    pub fee: Money,
    pub note: String,
}

/// A line of a fee CSV that could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("line {line}, column {column}: {message}")]
pub struct FeeError {
    pub line: usize,
    /// The column's name from the header (or `header` / `row`).
    pub column: String,
    pub message: String,
}

/// No row of the schedule applies: names what is missing.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "no fee for a {passport_type} passport at office {office_code} ({office_kind}) in {currency}: \
     add a row '{passport_type},department:{office_code},{currency},...' or '{passport_type},{office_kind},{currency},...'"
)]
pub struct NoFee {
    pub passport_type: &'static str,
    pub office_code: String,
    pub office_kind: &'static str,
    pub currency: &'static str,
}

/// The fees, as read from `data/fees.csv`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FeeSchedule {
    rows: Vec<FeeRow>,
}

const FEE_COLUMNS: [&str; 4] = ["passport_type", "office_kind", "currency", "amount"];

impl FeeSchedule {
    /// Reads CSV with the header `passport_type,office_kind,currency,amount`
    /// and an optional `note`; amounts in major units (see
    /// [`Money::parse_major`]). One row per (type, scope, currency).
    pub fn parse_csv(text: &str) -> Result<FeeSchedule, FeeError> {
        let mut lines = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty());
        let err = |line: usize, column: &str, message: String| FeeError {
            line,
            column: column.to_string(),
            message,
        };
        let Some((_, header)) = lines.next() else {
            return Err(err(1, "header", "empty file".into()));
        };
        let header: Vec<&str> = header
            .trim_start_matches('\u{feff}')
            .split(',')
            .map(str::trim)
            .collect();
        let mut idx = [0usize; 4];
        for (slot, name) in idx.iter_mut().zip(FEE_COLUMNS) {
            *slot = header
                .iter()
                .position(|h| *h == name)
                .ok_or_else(|| err(1, "header", format!("missing column '{name}'")))?;
        }
        let note_i = header.iter().position(|h| *h == "note");
        let mut rows: Vec<FeeRow> = Vec::new();
        for (n, line) in lines {
            let line_no = n + 1;
            if rows.len() == FEE_ROWS_MAX {
                return Err(err(
                    line_no,
                    "row",
                    format!("more than {FEE_ROWS_MAX} rows"),
                ));
            }
            if line.contains('"') {
                return Err(err(
                    line_no,
                    "row",
                    "quoted fields are not supported; remove the quotes".into(),
                ));
            }
            let f: Vec<&str> = line.split(',').map(str::trim).collect();
            if f.len() != header.len() {
                return Err(err(
                    line_no,
                    "row",
                    format!("{} fields, the header has {}", f.len(), header.len()),
                ));
            }
            let [t_i, k_i, c_i, a_i] = idx;
            let passport_type = PassportType::parse(f[t_i]).ok_or_else(|| {
                err(
                    line_no,
                    "passport_type",
                    format!(
                        "'{}': use ordinario, ejecutivo, emergencia or fronterizo",
                        f[t_i]
                    ),
                )
            })?;
            let scope = FeeScope::parse(f[k_i]).ok_or_else(|| {
                err(
                    line_no,
                    "office_kind",
                    format!(
                        "'{}': use ministry, department, consulate or department:<OFFICE CODE>",
                        f[k_i]
                    ),
                )
            })?;
            let currency = Currency::parse(f[c_i]).ok_or_else(|| {
                err(
                    line_no,
                    "currency",
                    format!("'{}': use COP, USD or EUR", f[c_i]),
                )
            })?;
            let fee = Money::parse_major(currency, f[a_i])
                .filter(|m| m.amount_minor > 0)
                .ok_or_else(|| {
                    err(
                        line_no,
                        "amount",
                        format!(
                            "'{}': a positive amount in {} with at most {} decimals",
                            f[a_i],
                            currency.code(),
                            currency.minor_digits()
                        ),
                    )
                })?;
            if rows.iter().any(|r| {
                r.passport_type == passport_type && r.scope == scope && r.fee.currency == currency
            }) {
                return Err(err(
                    line_no,
                    "office_kind",
                    format!(
                        "a second {} fee for '{}' in {}",
                        passport_type.as_str(),
                        f[k_i],
                        currency.code()
                    ),
                ));
            }
            rows.push(FeeRow {
                passport_type,
                scope,
                fee,
                note: note_i.map(|i| f[i].to_string()).unwrap_or_default(),
            });
        }
        Ok(FeeSchedule { rows })
    }

    pub fn rows(&self) -> &[FeeRow] {
        &self.rows
    }

    /// The currency an office charges in (rule 1 of the module doc).
    pub fn currency_of(office: &Office) -> Currency {
        match office.kind {
            OfficeKind::Ministry | OfficeKind::Department => Currency::Cop,
            OfficeKind::Consulate if EUROPE_COUNTRIES.contains(&office.country.as_str()) => {
                Currency::Eur
            }
            OfficeKind::Consulate => Currency::Usd,
        }
    }

    /// The fee for a passport of `passport_type` at `office` (rules in the module doc).
    pub fn fee_for(&self, passport_type: PassportType, office: &Office) -> Result<Money, NoFee> {
        let currency = Self::currency_of(office);
        let find = |scope: &FeeScope| {
            self.rows.iter().find(|r| {
                r.passport_type == passport_type && &r.scope == scope && r.fee.currency == currency
            })
        };
        find(&FeeScope::Office(office.code.clone()))
            .or_else(|| find(&FeeScope::Kind(office.kind)))
            .map(|r| r.fee)
            .ok_or_else(|| NoFee {
                passport_type: passport_type.as_str(),
                office_code: office.code.clone(),
                office_kind: office.kind.as_str(),
                currency: currency.code(),
            })
    }
}

/// Where a payment reference stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PaymentStatus {
    /// Issued; the citizen has not paid yet.
    Created,
    /// The gateway confirmed the payment.
    Paid,
    /// A refund was decided; the gateway has not confirmed it yet.
    RefundPending,
    /// The gateway confirmed the refund.
    Refunded,
    /// A waiver was approved: nothing is owed.
    Waived,
}

impl PaymentStatus {
    pub const ALL: [PaymentStatus; 5] = [
        PaymentStatus::Created,
        PaymentStatus::Paid,
        PaymentStatus::RefundPending,
        PaymentStatus::Refunded,
        PaymentStatus::Waived,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Created => "created",
            PaymentStatus::Paid => "paid",
            PaymentStatus::RefundPending => "refund_pending",
            PaymentStatus::Refunded => "refunded",
            PaymentStatus::Waived => "waived",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// What a payment gateway's callback reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PaymentEventKind {
    /// `payment.confirmed`: the citizen paid the reference.
    PaymentConfirmed,
    /// `refund.completed`: the money went back to the citizen.
    RefundCompleted,
}

impl PaymentEventKind {
    pub const ALL: [PaymentEventKind; 2] = [
        PaymentEventKind::PaymentConfirmed,
        PaymentEventKind::RefundCompleted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PaymentEventKind::PaymentConfirmed => "payment.confirmed",
            PaymentEventKind::RefundCompleted => "refund.completed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::office::parse_offices_csv;

    const FEES: &str = include_str!("../../../data/fees.csv");
    const OFFICES: &str = include_str!("../../../data/offices.csv");

    fn office(code: &str) -> Office {
        parse_offices_csv(OFFICES)
            .unwrap()
            .into_iter()
            .find(|o| o.code == code)
            .unwrap()
    }

    fn money(currency: Currency, amount_minor: i64) -> Money {
        Money {
            currency,
            amount_minor,
        }
    }

    #[test]
    fn fees_for_every_type_at_bogota_madrid_new_york_and_departments() {
        use Currency::*;
        use PassportType::*;
        let schedule = FeeSchedule::parse_csv(FEES).unwrap();
        // (type, office, Ok(fee) or Err(currency named in NoFee))
        let cases: &[(PassportType, &str, Result<Money, &str>)] = &[
            (Ordinario, "BOG-CEN", Ok(money(Cop, 190_000))),
            (Ejecutivo, "BOG-CEN", Ok(money(Cop, 323_000))),
            (Emergencia, "BOG-CEN", Ok(money(Cop, 192_000))),
            (Fronterizo, "BOG-CEN", Ok(money(Cop, 100_000))),
            (Ordinario, "BOG-AME", Ok(money(Cop, 190_000))),
            (Ordinario, "MAD", Ok(money(Eur, 6_000))),
            (Ejecutivo, "MAD", Err("EUR")),
            (Emergencia, "MAD", Err("EUR")),
            (Fronterizo, "MAD", Err("EUR")),
            (Ordinario, "NYC", Ok(money(Usd, 8_200))),
            (Ejecutivo, "NYC", Err("USD")),
            (Emergencia, "NYC", Err("USD")),
            (Fronterizo, "NYC", Err("USD")),
            (Ordinario, "SCL", Ok(money(Usd, 8_200))),
            (Ordinario, "MDE", Ok(money(Cop, 310_000))),
            (Ordinario, "BAQ", Ok(money(Cop, 257_464))),
            (Ordinario, "CUC", Ok(money(Cop, 357_000))),
            (Ejecutivo, "MDE", Err("COP")),
        ];
        for (t, code, want) in cases {
            let got = schedule.fee_for(*t, &office(code));
            match (want, &got) {
                (Ok(m), Ok(g)) => assert_eq!(m, g, "{} at {code}", t.as_str()),
                (Err(cur), Err(e)) => {
                    assert_eq!(e.currency, *cur, "{} at {code}", t.as_str());
                    assert_eq!(e.office_code, *code);
                    assert_eq!(e.passport_type, t.as_str());
                    assert!(e.to_string().contains(code), "{e}");
                }
                _ => panic!("{} at {code}: want {want:?}, got {got:?}", t.as_str()),
            }
        }
    }

    #[test]
    fn an_office_row_wins_over_its_kind() {
        let csv = "passport_type,office_kind,currency,amount\n\
                   ordinario,ministry,COP,190000\n\
                   ordinario,department:BOG-NOR,COP,200000\n";
        let s = FeeSchedule::parse_csv(csv).unwrap();
        let fee = |code| s.fee_for(PassportType::Ordinario, &office(code)).unwrap();
        assert_eq!(fee("BOG-NOR"), money(Currency::Cop, 200_000));
        assert_eq!(fee("BOG-CEN"), money(Currency::Cop, 190_000));
    }

    #[test]
    fn bad_fee_csv_names_the_line_and_column() {
        let head = "passport_type,office_kind,currency,amount,note\n";
        let check = |rows: &str, line: usize, column: &str| {
            let e = FeeSchedule::parse_csv(&format!("{head}{rows}")).unwrap_err();
            assert_eq!((e.line, e.column.as_str()), (line, column), "{e}");
        };
        check("diplomatico,ministry,COP,1,", 2, "passport_type");
        check("ordinario,embassy,COP,1,", 2, "office_kind");
        check("ordinario,department:x,COP,1,", 2, "office_kind");
        check("ordinario,ministry,GBP,1,", 2, "currency");
        check("ordinario,ministry,COP,1.5,", 2, "amount");
        check("ordinario,consulate,USD,82.505,", 2, "amount");
        check("ordinario,ministry,COP,0,", 2, "amount");
        check("ordinario,ministry,COP,-3,", 2, "amount");
        check("ordinario,ministry,COP", 2, "row");
        check(
            "ordinario,ministry,COP,1,\n\nordinario,ministry,COP,2,",
            4,
            "office_kind",
        );
        let e = FeeSchedule::parse_csv("passport_type,currency,amount\n").unwrap_err();
        assert_eq!((e.line, e.column.as_str()), (1, "header"));
        assert!(e.message.contains("office_kind"));
    }

    #[test]
    fn money_reads_and_prints_in_major_units() {
        let check = |c: Currency, s: &str, want: Option<i64>, shown: &str| {
            let got = Money::parse_major(c, s);
            assert_eq!(got.map(|m| m.amount_minor), want, "{s}");
            if let Some(m) = got {
                assert_eq!(m.to_string(), shown);
            }
        };
        check(Currency::Cop, "190000", Some(190_000), "190000 COP");
        check(Currency::Usd, "82", Some(8_200), "82.00 USD");
        check(Currency::Usd, "82.5", Some(8_250), "82.50 USD");
        check(Currency::Eur, "0.05", Some(5), "0.05 EUR");
        check(Currency::Cop, "1.0", None, "");
        check(Currency::Usd, "82.", None, "");
        check(Currency::Usd, ".5", None, "");
        check(Currency::Usd, "1e3", None, "");
        check(Currency::Cop, "99999999999999999999", None, "");
    }

    #[test]
    fn passport_types_pages_and_validity() {
        let check = |t: PassportType, name: &str, pages: u32, issued: Date, expires: Date| {
            assert_eq!(PassportType::parse(name), Some(t));
            assert_eq!(t.as_str(), name);
            assert_eq!(t.pages(), pages);
            assert_eq!(t.expiry_date(issued), Some(expires));
        };
        use jiff::civil::date;
        check(
            PassportType::Ordinario,
            "ordinario",
            32,
            date(2026, 3, 1),
            date(2036, 3, 1),
        );
        check(
            PassportType::Ejecutivo,
            "ejecutivo",
            48,
            date(2026, 3, 1),
            date(2036, 3, 1),
        );
        check(
            PassportType::Emergencia,
            "emergencia",
            8,
            date(2026, 7, 31),
            date(2027, 2, 28),
        );
        check(
            PassportType::Fronterizo,
            "fronterizo",
            28,
            date(2028, 2, 29),
            date(2038, 2, 28),
        );
        assert_eq!(PassportType::parse("oficial"), None);
        for s in PaymentStatus::ALL {
            assert_eq!(PaymentStatus::parse(s.as_str()), Some(s));
        }
        for k in PaymentEventKind::ALL {
            assert_eq!(PaymentEventKind::parse(k.as_str()), Some(k));
        }
    }
}

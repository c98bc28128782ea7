//! Adjudication's automatic checks: the facts gathered about a paid
//! application, and the findings that send it to a supervisor instead of
//! letting a clerk approve it.
//!
//! The checks never reject on their own: a finding is a reason for a person
//! to look (the registry may be out of date, a report may be old). Findings
//! are codes, never personal data, since they go to the audit trail.

/// What the workflow knows about an application when it is paid.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Facts {
    /// Other live or approved applications of the same person.
    pub other_live_applications: i64,
    /// The application replaces a passport declared lost or stolen.
    pub replaces_lost_or_stolen: bool,
    /// A renewal names a passport that was reported lost or stolen.
    pub previous_passport_reported: bool,
    /// The applicant is a minor.
    pub minor: bool,
    /// For a minor: a guardian present with their document, or a notarised
    /// consent reference, was recorded.
    pub consent_recorded: bool,
    /// A supervisor let the application past an unavailable civil registry.
    pub registry_overridden: bool,
}

/// A reason for a supervisor to look.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Finding {
    ExistingApplication,
    LostOrStolen,
    PreviousPassportReported,
    MinorConsentMissing,
    RegistryNotVerified,
}

impl Finding {
    pub fn code(self) -> &'static str {
        match self {
            Finding::ExistingApplication => "existing_application",
            Finding::LostOrStolen => "lost_or_stolen",
            Finding::PreviousPassportReported => "previous_passport_reported",
            Finding::MinorConsentMissing => "minor_consent_missing",
            Finding::RegistryNotVerified => "registry_not_verified",
        }
    }

    pub fn es(self) -> &'static str {
        match self {
            Finding::ExistingApplication => {
                "La persona tiene otra solicitud en curso o un pasaporte en producción."
            }
            Finding::LostOrStolen => "Reemplaza un pasaporte declarado perdido o hurtado.",
            Finding::PreviousPassportReported => {
                "El pasaporte anterior figura como perdido o hurtado."
            }
            Finding::MinorConsentMissing => "Falta el consentimiento para el menor de edad.",
            Finding::RegistryNotVerified => {
                "El registro civil no confirmó los datos (se autorizó sin verificación)."
            }
        }
    }

    pub fn en(self) -> &'static str {
        match self {
            Finding::ExistingApplication => {
                "The person has another application in progress or a passport in production."
            }
            Finding::LostOrStolen => "It replaces a passport declared lost or stolen.",
            Finding::PreviousPassportReported => {
                "The previous passport is reported lost or stolen."
            }
            Finding::MinorConsentMissing => "The minor's consent is missing.",
            Finding::RegistryNotVerified => {
                "The civil registry did not confirm the data (let through without verification)."
            }
        }
    }

    pub fn parse(code: &str) -> Option<Finding> {
        [
            Finding::ExistingApplication,
            Finding::LostOrStolen,
            Finding::PreviousPassportReported,
            Finding::MinorConsentMissing,
            Finding::RegistryNotVerified,
        ]
        .into_iter()
        .find(|f| f.code() == code)
    }
}

/// The findings for `facts`, in a fixed order; empty means a clerk may approve.
pub fn check(facts: &Facts) -> Vec<Finding> {
    let mut out = Vec::new();
    if facts.other_live_applications > 0 {
        out.push(Finding::ExistingApplication);
    }
    if facts.replaces_lost_or_stolen {
        out.push(Finding::LostOrStolen);
    }
    if facts.previous_passport_reported {
        out.push(Finding::PreviousPassportReported);
    }
    if facts.minor && !facts.consent_recorded {
        out.push(Finding::MinorConsentMissing);
    }
    if facts.registry_overridden {
        out.push(Finding::RegistryNotVerified);
    }
    out
}

/// Findings as stored: comma-separated codes.
pub fn codes(findings: &[Finding]) -> String {
    findings
        .iter()
        .map(|f| f.code())
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_case(facts: Facts, expected: &[Finding]) {
        assert_eq!(check(&facts), expected, "{facts:?}");
    }

    #[test]
    fn findings_follow_the_facts() {
        check_case(Facts::default(), &[]);
        check_case(
            Facts {
                other_live_applications: 1,
                ..Facts::default()
            },
            &[Finding::ExistingApplication],
        );
        check_case(
            Facts {
                replaces_lost_or_stolen: true,
                ..Facts::default()
            },
            &[Finding::LostOrStolen],
        );
        check_case(
            Facts {
                previous_passport_reported: true,
                ..Facts::default()
            },
            &[Finding::PreviousPassportReported],
        );
        check_case(
            Facts {
                minor: true,
                consent_recorded: false,
                ..Facts::default()
            },
            &[Finding::MinorConsentMissing],
        );
        check_case(
            Facts {
                minor: true,
                consent_recorded: true,
                ..Facts::default()
            },
            &[],
        );
        check_case(
            Facts {
                registry_overridden: true,
                other_live_applications: 2,
                ..Facts::default()
            },
            &[Finding::ExistingApplication, Finding::RegistryNotVerified],
        );
    }

    #[test]
    fn codes_round_trip() {
        let all = [
            Finding::ExistingApplication,
            Finding::LostOrStolen,
            Finding::PreviousPassportReported,
            Finding::MinorConsentMissing,
            Finding::RegistryNotVerified,
        ];
        for f in all {
            assert_eq!(Finding::parse(f.code()), Some(f));
        }
        assert_eq!(
            codes(&all[..2]),
            "existing_application,lost_or_stolen".to_string()
        );
    }
}

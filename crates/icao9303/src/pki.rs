//! Country Signing CA and Document Signer keys and certificates (Doc 9303 Part 12).
//!
//! x509-cert's builder profiles are web-PKI ones, so the ICAO profiles are written here:
//!
//! - CSCA: self-signed; basicConstraints `cA=TRUE, pathLen=0` (critical); keyUsage
//!   `keyCertSign, cRLSign` (critical); subjectKeyIdentifier; authorityKeyIdentifier equal
//!   to it; privateKeyUsagePeriod.
//! - Document Signer: issued by the CSCA; keyUsage `digitalSignature` (critical);
//!   authorityKeyIdentifier (the CSCA's key identifier); subjectKeyIdentifier;
//!   privateKeyUsagePeriod; the ICAO DocumentTypeList extension (2.23.136.1.1.6.2).
//!   No extendedKeyUsage, as Part 12 prescribes.
//!
//! Both subjects carry the state's ISO 3166-1 alpha-2 code as countryName. Keys are ECDSA
//! P-256 in PKCS#8. CRL distribution points are left out: these are keys for tests and
//! demos, not a production CSCA.

use crate::codes::StateCode;
use crate::sod::SignerParts;
use der::asn1::{GeneralizedTime, OctetString, PrintableString, SetOfVec};
use der::{Decode, DecodePem, Encode, EncodePem, Sequence, pem::LineEnding};
use p256::ecdsa::{DerSignature, SigningKey};
use p256::elliptic_curve::Generate;
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use sha2::{Digest, Sha256};
use spki::{ObjectIdentifier, SubjectPublicKeyInfoOwned, SubjectPublicKeyInfoRef};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use x509_cert::builder::profile::BuilderProfile;
use x509_cert::builder::{Builder, CertificateBuilder};
use x509_cert::certificate::{Certificate, TbsCertificate};
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, KeyUsage, KeyUsages, PrivateKeyUsagePeriod,
    SubjectKeyIdentifier,
};
use x509_cert::ext::{Extension, ToExtension};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::{Time, Validity};

/// id-icao-mrtd-security-extensions-documentTypeList.
pub const ID_DOCUMENT_TYPE_LIST: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("2.23.136.1.1.6.2");

/// Validity of the test CSCA certificate: 15 years (its key signs for 3 to 5 of them, the
/// rest covers the Document Signers it issued, per Part 12's guidance).
pub const CSCA_VALIDITY_DAYS: u64 = 15 * 365;
/// Validity of the test Document Signer certificate: its 3 months of signing plus the 10
/// years a passport it signed may be valid.
pub const DS_VALIDITY_DAYS: u64 = 10 * 365 + 92;
const DS_PRIVATE_KEY_USAGE_DAYS: u64 = 92;
const DAY: Duration = Duration::from_secs(86_400);

/// Key and certificate problems.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// The state has no ISO 3166-1 alpha-2 code for countryName.
    #[error("state {0}: no ISO 3166-1 alpha-2 code for the certificates' countryName")]
    NoAlpha2(String),
    /// Not a PEM certificate.
    #[error("certificate: {0}")]
    Certificate(der::Error),
    /// Not a PKCS#8 P-256 private key.
    #[error("private key: not a PKCS#8 ECDSA P-256 key ({0})")]
    Key(String),
    /// The key does not belong to the certificate.
    #[error("the private key does not match the certificate's public key")]
    KeyMismatch,
    /// Building a certificate failed.
    #[error("building a certificate: {0}")]
    Build(String),
    /// No randomness.
    #[error("system random number generator: {0}")]
    Random(String),
}

/// A Document Signer: the key that signs EF.SOD and its certificate.
///
/// Everything an SOD needs from the signer that does not change from one SOD to the next
/// (the certificate's DER, the signer identifier, the signing key in the form the signer
/// uses) is prepared once, here.
#[derive(Clone)]
pub struct DocumentSigner {
    // With AWS-LC signing, the p256 key only checks the certificate (and the tests).
    #[cfg_attr(feature = "aws-lc", allow(dead_code))]
    pub(crate) key: SigningKey,
    pub(crate) cert: Certificate,
    pub(crate) parts: Arc<SignerParts>,
    /// The same key for AWS-LC's assembly P-256 (the `aws-lc` feature).
    #[cfg(feature = "aws-lc")]
    aws: Arc<aws_lc_rs::signature::EcdsaKeyPair>,
    #[cfg(feature = "aws-lc")]
    rng: aws_lc_rs::rand::SystemRandom,
}

impl std::fmt::Debug for DocumentSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key.
        f.debug_struct("DocumentSigner")
            .field(
                "subject",
                &self.cert.tbs_certificate().subject().to_string(),
            )
            .finish()
    }
}

impl DocumentSigner {
    /// A signer from its key and certificate; refuses a key that is not the certificate's.
    pub fn new(key: SigningKey, cert: Certificate) -> Result<Self, PkiError> {
        let spki = SubjectPublicKeyInfoOwned::from_key(key.verifying_key())
            .map_err(|e| PkiError::Key(e.to_string()))?;
        if &spki != cert.tbs_certificate().subject_public_key_info() {
            return Err(PkiError::KeyMismatch);
        }
        let parts = Arc::new(SignerParts::new(&cert).map_err(PkiError::Certificate)?);
        #[cfg(feature = "aws-lc")]
        let aws = {
            use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair};
            let pkcs8 = key
                .to_pkcs8_der()
                .map_err(|e| PkiError::Key(e.to_string()))?;
            let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_bytes())
                .map_err(|e| PkiError::Key(e.to_string()))?;
            Arc::new(pair)
        };
        Ok(Self {
            key,
            cert,
            parts,
            #[cfg(feature = "aws-lc")]
            aws,
            #[cfg(feature = "aws-lc")]
            rng: aws_lc_rs::rand::SystemRandom::new(),
        })
    }

    /// The DER ECDSA P-256 / SHA-256 signature of `message` (AWS-LC with the `aws-lc`
    /// feature, the pure-Rust `p256` crate without it).
    #[cfg(feature = "aws-lc")]
    pub(crate) fn sign(&self, message: &[u8]) -> Result<impl AsRef<[u8]> + use<>, String> {
        self.aws
            .sign(&self.rng, message)
            .map_err(|e| format!("ECDSA signing: {e}"))
    }

    /// The DER ECDSA P-256 / SHA-256 signature of `message` (AWS-LC with the `aws-lc`
    /// feature, the pure-Rust `p256` crate without it).
    #[cfg(not(feature = "aws-lc"))]
    pub(crate) fn sign(&self, message: &[u8]) -> Result<impl AsRef<[u8]> + use<>, String> {
        signature::Signer::<DerSignature>::try_sign(&self.key, message)
            .map_err(|e| format!("ECDSA signing: {e}"))
    }

    /// Loads the PKCS#8 PEM key and the PEM certificate.
    pub fn from_pem(key_pem: &str, cert_pem: &str) -> Result<Self, PkiError> {
        Self::new(
            load_signing_key_pem(key_pem)?,
            load_certificate_pem(cert_pem)?,
        )
    }

    /// The certificate.
    #[must_use]
    pub fn certificate(&self) -> &Certificate {
        &self.cert
    }
}

/// A key pair with its certificate, ready to write as PEM.
pub struct Issued {
    /// The private key.
    pub key: SigningKey,
    /// The certificate.
    pub cert: Certificate,
}

impl Issued {
    /// The certificate as PEM.
    pub fn cert_pem(&self) -> Result<String, PkiError> {
        self.cert
            .to_pem(LineEnding::LF)
            .map_err(PkiError::Certificate)
    }

    /// The key as PKCS#8 PEM.
    pub fn key_pem(&self) -> Result<String, PkiError> {
        Ok(self
            .key
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| PkiError::Key(e.to_string()))?
            .to_string())
    }
}

/// Reads a PEM certificate.
pub fn load_certificate_pem(pem: &str) -> Result<Certificate, PkiError> {
    Certificate::from_pem(pem.as_bytes()).map_err(PkiError::Certificate)
}

/// Reads a DER certificate.
pub fn load_certificate_der(der: &[u8]) -> Result<Certificate, PkiError> {
    Certificate::from_der(der).map_err(PkiError::Certificate)
}

/// Reads a PKCS#8 PEM ECDSA P-256 private key.
pub fn load_signing_key_pem(pem: &str) -> Result<SigningKey, PkiError> {
    SigningKey::from_pkcs8_pem(pem).map_err(|e| PkiError::Key(e.to_string()))
}

/// Which ICAO certificate profile.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Csca,
    DocumentSigner,
}

/// The ICAO profiles for x509-cert's builder.
struct IcaoProfile {
    kind: Kind,
    subject: Name,
    issuer: Name,
    private_key_usage: (SystemTime, SystemTime),
}

/// `DocumentTypeListSyntax ::= SEQUENCE { version INTEGER, docTypeList SET OF PrintableString }`.
#[derive(Sequence)]
struct DocumentTypeList {
    version: u8,
    doc_type_list: SetOfVec<PrintableString>,
}

fn build_err(e: impl std::fmt::Display) -> x509_cert::builder::Error {
    let _ = e.to_string();
    x509_cert::builder::Error::Asn1(der::Error::from(der::ErrorKind::Failed))
}

impl BuilderProfile for IcaoProfile {
    fn get_issuer(&self, _subject: &Name) -> Name {
        self.issuer.clone()
    }

    fn get_subject(&self) -> Name {
        self.subject.clone()
    }

    fn build_extensions(
        &self,
        spk: SubjectPublicKeyInfoRef<'_>,
        issuer_spk: SubjectPublicKeyInfoRef<'_>,
        tbs: &TbsCertificate,
    ) -> x509_cert::builder::Result<Vec<Extension>> {
        let mut ext = Vec::new();
        let ski = SubjectKeyIdentifier::try_from(spk)?;
        let issuer_ki = SubjectKeyIdentifier::try_from(issuer_spk)?;
        ext.push(
            AuthorityKeyIdentifier {
                key_identifier: Some(issuer_ki.0.clone()),
                ..Default::default()
            }
            .to_extension(tbs.subject(), &ext)?,
        );
        ext.push(ski.to_extension(tbs.subject(), &ext)?);
        let (from, to) = self.private_key_usage;
        let period = PrivateKeyUsagePeriod {
            not_before: Some(GeneralizedTime::from_system_time(from)?),
            not_after: Some(GeneralizedTime::from_system_time(to)?),
        };
        ext.push(period.to_extension(tbs.subject(), &ext)?);
        match self.kind {
            Kind::Csca => {
                ext.push(
                    KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign)
                        .to_extension(tbs.subject(), &ext)?,
                );
                ext.push(
                    BasicConstraints {
                        ca: true,
                        path_len_constraint: Some(0),
                    }
                    .to_extension(tbs.subject(), &ext)?,
                );
            }
            Kind::DocumentSigner => {
                ext.push(
                    KeyUsage(KeyUsages::DigitalSignature.into())
                        .to_extension(tbs.subject(), &ext)?,
                );
                let mut types = SetOfVec::new();
                types.insert(PrintableString::new("P").map_err(build_err)?)?;
                let value = DocumentTypeList {
                    version: 0,
                    doc_type_list: types,
                }
                .to_der()?;
                ext.push(Extension {
                    extn_id: ID_DOCUMENT_TYPE_LIST,
                    critical: false,
                    extn_value: OctetString::new(value)?,
                });
            }
        }
        Ok(ext)
    }
}

/// A positive serial number derived from the public key (unique per key, no RNG needed).
fn serial_for(spki: &SubjectPublicKeyInfoOwned) -> Result<SerialNumber, PkiError> {
    let der = spki.to_der().map_err(PkiError::Certificate)?;
    let hash = Sha256::digest(&der);
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&hash[..16]);
    bytes[0] = (bytes[0] & 0x7F) | 0x01;
    SerialNumber::new(&bytes).map_err(PkiError::Certificate)
}

fn validity(from: SystemTime, days: u64) -> Result<Validity, PkiError> {
    let t = |s: SystemTime| Time::try_from(s).map_err(PkiError::Certificate);
    Ok(Validity::new(t(from)?, t(from + DAY * days as u32)?))
}

fn new_key() -> Result<SigningKey, PkiError> {
    SigningKey::try_generate().map_err(|e| PkiError::Random(e.to_string()))
}

/// Creates a test CSCA and a Document Signer it certifies, for `country`, valid from `now`.
pub fn generate_test_pki(
    country: StateCode,
    now: SystemTime,
) -> Result<(Issued, Issued), PkiError> {
    let c = country
        .alpha2()
        .ok_or_else(|| PkiError::NoAlpha2(country.to_string()))?;
    let name = |cn: &str| {
        Name::from_str(&format!(
            "CN={cn},OU=Test PKI (not for production),O=pasaporte,C={c}"
        ))
        .map_err(PkiError::Certificate)
    };
    let csca_name = name(&format!("CSCA {country}"))?;
    let ds_name = name(&format!("Document Signer {country} 1"))?;

    let csca_key = new_key()?;
    let csca_spki = SubjectPublicKeyInfoOwned::from_key(csca_key.verifying_key())
        .map_err(|e| PkiError::Key(e.to_string()))?;
    let profile = IcaoProfile {
        kind: Kind::Csca,
        subject: csca_name.clone(),
        issuer: csca_name.clone(),
        private_key_usage: (now, now + DAY * 5 * 365),
    };
    let builder = CertificateBuilder::new(
        profile,
        serial_for(&csca_spki)?,
        validity(now, CSCA_VALIDITY_DAYS)?,
        csca_spki,
    )
    .map_err(|e| PkiError::Build(e.to_string()))?;
    let csca_cert = builder
        .build::<_, DerSignature>(&csca_key)
        .map_err(|e| PkiError::Build(e.to_string()))?;

    let ds_key = new_key()?;
    let ds_spki = SubjectPublicKeyInfoOwned::from_key(ds_key.verifying_key())
        .map_err(|e| PkiError::Key(e.to_string()))?;
    let profile = IcaoProfile {
        kind: Kind::DocumentSigner,
        subject: ds_name,
        issuer: csca_name,
        private_key_usage: (now, now + DAY * DS_PRIVATE_KEY_USAGE_DAYS as u32),
    };
    let builder = CertificateBuilder::new(
        profile,
        serial_for(&ds_spki)?,
        validity(now, DS_VALIDITY_DAYS)?,
        ds_spki,
    )
    .map_err(|e| PkiError::Build(e.to_string()))?;
    let ds_cert = builder
        .build::<_, DerSignature>(&csca_key)
        .map_err(|e| PkiError::Build(e.to_string()))?;
    Ok((
        Issued {
            key: csca_key,
            cert: csca_cert,
        },
        Issued {
            key: ds_key,
            cert: ds_cert,
        },
    ))
}

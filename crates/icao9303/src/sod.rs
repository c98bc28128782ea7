//! The Document Security Object (Doc 9303 Part 10 section 4.6.2, Part 12): EF.SOD, a CMS
//! SignedData whose eContent is the DER of the LDS Security Object (one OCTET STRING, never
//! wrapped twice), signed by a Document Signer whose certificate travels inside.

use crate::pki::DocumentSigner;
use crate::tlv::{self, Tlv};
use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::content_info::ContentInfo;
use cms::signed_data::{SignedData, SignerIdentifier, SignerInfo};
use der::asn1::OctetString;
use der::{Any, Decode, Encode, Sequence, Tag, Tagged};
use p256::ecdsa::DerSignature;
use sha2::{Digest, Sha256};
use signature::Verifier;
use spki::{AlgorithmIdentifierOwned, ObjectIdentifier, SubjectPublicKeyInfoOwned};
use std::fmt;
use std::time::SystemTime;
use x509_cert::certificate::Certificate;
use x509_cert::ext::pkix::{BasicConstraints, SubjectKeyIdentifier};

/// id-icao-mrtd-security-ldsSecurityObject.
pub const ID_LDS_SECURITY_OBJECT: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.23.136.1.1.1");
/// id-signedData.
pub const ID_SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
/// id-sha256.
pub const ID_SHA_256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const ID_CONTENT_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
const ID_MESSAGE_DIGEST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");
const ECDSA_WITH_SHA_256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const ID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const SECP_256_R_1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const SHA_256_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");

/// The tag of EF.SOD around the ContentInfo.
pub const SOD_TAG: u8 = 0x77;

/// `DataGroupHash ::= SEQUENCE { dataGroupNumber, dataGroupHashValue OCTET STRING }`.
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct DataGroupHash {
    /// 1..=16.
    pub data_group_number: u8,
    /// The hash of the whole EF.DGn file.
    pub data_group_hash_value: OctetString,
}

/// `LDSSecurityObject` (version 0: no LDS version info).
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct LdsSecurityObject {
    /// 0 (v0) or 1 (v1).
    pub version: u8,
    /// The hash algorithm of the data group hashes.
    pub hash_algorithm: AlgorithmIdentifierOwned,
    /// One hash per data group.
    pub data_group_hash_values: Vec<DataGroupHash>,
}

/// Problems building or reading EF.SOD.
#[derive(Debug, thiserror::Error)]
pub enum SodError {
    /// ASN.1 encoding or decoding failed.
    #[error("EF.SOD: {0}")]
    Der(#[from] der::Error),
    /// The outer `77` TLV is wrong.
    #[error("EF.SOD: {0}")]
    Tlv(#[from] tlv::TlvError),
    /// Not tag 0x77.
    #[error("EF.SOD: expected tag 0x77, found {0:#X}")]
    Tag(u32),
    /// CMS building failed.
    #[error("EF.SOD: signing failed: {0}")]
    Build(String),
    /// Structure that an SOD must have is missing.
    #[error("EF.SOD: {0}")]
    Structure(&'static str),
    /// A data group number outside 1..=16, or given twice.
    #[error("data group {0}: outside 1..=16 or given twice")]
    DataGroup(u8),
}

/// `LDSSecurityObject` v0 up to its list of hashes: version 0 and the SHA-256
/// AlgorithmIdentifier (no parameters).
const LSO_HEAD: [u8; 16] = [
    0x02, 0x01, 0x00, // version 0
    0x30, 0x0B, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, // id-sha256
];
/// `DataGroupHash` up to its number, then between the number and the hash.
const DG_HASH_HEAD: [u8; 4] = [0x30, 0x25, 0x02, 0x01];
const DG_HASH_MID: [u8; 2] = [0x04, 0x20];

/// The DER of the LDS Security Object holding the SHA-256 of each data group file.
pub fn lds_security_object(data_groups: &[(u8, &[u8])]) -> Result<Vec<u8>, SodError> {
    // Indexed by number - 1: sorted and free of duplicates by construction.
    let mut hashes: [Option<[u8; 32]>; 16] = [None; 16];
    for &(n, bytes) in data_groups {
        let slot = usize::from(n)
            .checked_sub(1)
            .and_then(|i| hashes.get_mut(i))
            .filter(|h| h.is_none())
            .ok_or(SodError::DataGroup(n))?;
        *slot = Some(Sha256::digest(bytes).into());
    }
    let list_len = data_groups.len() * (DG_HASH_HEAD.len() + 1 + DG_HASH_MID.len() + 32);
    let content_len = LSO_HEAD.len() + tlv_len(list_len);
    let mut out = Vec::with_capacity(tlv_len(content_len));
    out.push(0x30);
    tlv::write_len(&mut out, content_len);
    out.extend_from_slice(&LSO_HEAD);
    out.push(0x30);
    tlv::write_len(&mut out, list_len);
    for (n, hash) in (1u8..).zip(hashes) {
        if let Some(hash) = hash {
            out.extend_from_slice(&DG_HASH_HEAD);
            out.push(n);
            out.extend_from_slice(&DG_HASH_MID);
            out.extend_from_slice(&hash);
        }
    }
    Ok(out)
}

/// The length of a TLV with a one-byte tag and `content` bytes of value.
fn tlv_len(content: usize) -> usize {
    let len_len = if content < 0x80 {
        1
    } else {
        1 + (usize::BITS - content.leading_zeros()).div_ceil(8) as usize
    };
    1 + len_len + content
}

/// What every SOD of one Document Signer shares, DER-encoded once when the
/// [`DocumentSigner`] is made.
#[derive(Debug)]
pub(crate) struct SignerParts {
    /// `certificates [0] IMPLICIT CertificateSet` holding the Document Signer certificate.
    certificates: Vec<u8>,
    /// `sid`: the certificate's IssuerAndSerialNumber.
    sid: Vec<u8>,
}

impl SignerParts {
    pub(crate) fn new(cert: &Certificate) -> Result<Self, der::Error> {
        let tbs = cert.tbs_certificate();
        let sid = IssuerAndSerialNumber {
            issuer: tbs.issuer().clone(),
            serial_number: tbs.serial_number().clone(),
        }
        .to_der()?;
        let mut certificates = Vec::new();
        tlv::write(&mut certificates, &[0xA0], &cert.to_der()?);
        Ok(Self { certificates, sid })
    }
}

/// ContentInfo's contentType: id-signedData.
const CONTENT_TYPE_SIGNED_DATA: [u8; 11] = [
    0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x02,
];
/// SignedData's CMSVersion 3: the eContentType is not id-data (RFC 5652 section 5.1).
const CMS_VERSION_3: [u8; 3] = [0x02, 0x01, 0x03];
/// SignerInfo's CMSVersion 1: signer identified by issuer and serial number.
const CMS_VERSION_1: [u8; 3] = [0x02, 0x01, 0x01];
/// id-sha256 without parameters.
const SHA_256_ALG: [u8; 13] = [
    0x30, 0x0B, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
];
/// eContentType: id-icao-ldsSecurityObject.
const ECONTENT_TYPE_LDS: [u8; 8] = [0x06, 0x06, 0x67, 0x81, 0x08, 0x01, 0x01, 0x01];
/// ecdsa-with-SHA256 without parameters.
const ECDSA_WITH_SHA_256_ALG: [u8; 12] = [
    0x30, 0x0A, 0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x04, 0x03, 0x02,
];
/// The DER SET OF signed attributes before the message digest's 32 bytes: the SET, the
/// content-type attribute (id-icao-ldsSecurityObject), then the message-digest attribute
/// (DER order: the shorter content-type encoding sorts first).
const SIGNED_ATTRS_HEAD: [u8; 42] = [
    0x31, 0x48, // SET OF, 72 bytes
    0x30, 0x15, 0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x09,
    0x03, // content-type
    0x31, 0x08, 0x06, 0x06, 0x67, 0x81, 0x08, 0x01, 0x01, 0x01, // id-icao-ldsSecurityObject
    0x30, 0x2F, 0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x09,
    0x04, // message-digest
    0x31, 0x22, 0x04, 0x20, // SET { OCTET STRING (32) }
];
/// The signed attributes' DER length: head and the SHA-256 digest.
const SIGNED_ATTRS_LEN: usize = SIGNED_ATTRS_HEAD.len() + 32;

/// Builds EF.SOD over the data group files (`(number, file bytes)`), signed by `signer`
/// with ECDSA P-256 / SHA-256, the Document Signer certificate included. Signed attributes:
/// content type and message digest.
///
/// The DER is written directly (the same bytes as the `cms` crate's SignedDataBuilder
/// gives, which a test checks): the parts that do not change are encoded once per
/// [`DocumentSigner`], and the signature is the only cryptography besides the hashes.
pub fn build_sod(
    data_groups: &[(u8, &[u8])],
    signer: &DocumentSigner,
) -> Result<Vec<u8>, SodError> {
    assemble_sod(data_groups, &signer.parts, |m| {
        signer.sign(m).map_err(SodError::Build)
    })
}

/// EF.SOD from its data groups, the signer's fixed parts and a function giving the DER
/// ECDSA signature of the DER signed attributes.
pub(crate) fn assemble_sod<S: AsRef<[u8]>>(
    data_groups: &[(u8, &[u8])],
    parts: &SignerParts,
    sign: impl FnOnce(&[u8]) -> Result<S, SodError>,
) -> Result<Vec<u8>, SodError> {
    let lso = lds_security_object(data_groups)?;
    let mut signed_attrs = [0u8; SIGNED_ATTRS_LEN];
    let (head, digest) = signed_attrs.split_at_mut(SIGNED_ATTRS_HEAD.len());
    head.copy_from_slice(&SIGNED_ATTRS_HEAD);
    digest.copy_from_slice(&Sha256::digest(&lso));
    let signature = sign(&signed_attrs)?;
    let signature = signature.as_ref();

    // Lengths, innermost first.
    let signer_info = CMS_VERSION_1.len()
        + parts.sid.len()
        + SHA_256_ALG.len()
        + SIGNED_ATTRS_LEN // [0] IMPLICIT: same length as the SET
        + ECDSA_WITH_SHA_256_ALG.len()
        + tlv_len(signature.len());
    let signer_infos = tlv_len(signer_info);
    let econtent = tlv_len(lso.len());
    let eci = ECONTENT_TYPE_LDS.len() + tlv_len(econtent);
    let signed_data = CMS_VERSION_3.len()
        + tlv_len(SHA_256_ALG.len())
        + tlv_len(eci)
        + parts.certificates.len()
        + tlv_len(signer_infos);
    let content = tlv_len(signed_data);
    let content_info = CONTENT_TYPE_SIGNED_DATA.len() + tlv_len(content);

    let mut out = Vec::with_capacity(tlv_len(tlv_len(content_info)));
    let open = |out: &mut Vec<u8>, tag: u8, len: usize| {
        out.push(tag);
        tlv::write_len(out, len);
    };
    open(&mut out, SOD_TAG, tlv_len(content_info));
    open(&mut out, 0x30, content_info);
    out.extend_from_slice(&CONTENT_TYPE_SIGNED_DATA);
    open(&mut out, 0xA0, content);
    open(&mut out, 0x30, signed_data);
    out.extend_from_slice(&CMS_VERSION_3);
    open(&mut out, 0x31, SHA_256_ALG.len());
    out.extend_from_slice(&SHA_256_ALG);
    open(&mut out, 0x30, eci);
    out.extend_from_slice(&ECONTENT_TYPE_LDS);
    open(&mut out, 0xA0, econtent);
    open(&mut out, 0x04, lso.len());
    out.extend_from_slice(&lso);
    out.extend_from_slice(&parts.certificates);
    open(&mut out, 0x31, signer_infos);
    open(&mut out, 0x30, signer_info);
    out.extend_from_slice(&CMS_VERSION_1);
    out.extend_from_slice(&parts.sid);
    out.extend_from_slice(&SHA_256_ALG);
    out.push(0xA0); // signedAttrs [0] IMPLICIT SET OF
    out.extend_from_slice(&signed_attrs[1..]);
    out.extend_from_slice(&ECDSA_WITH_SHA_256_ALG);
    open(&mut out, 0x04, signature.len());
    out.extend_from_slice(signature);
    Ok(out)
}

/// The parts of an EF.SOD that verification looks at.
#[derive(Debug, Clone)]
pub struct Sod {
    /// The SignedData.
    pub signed_data: SignedData,
    /// The LDS Security Object.
    pub security_object: LdsSecurityObject,
}

impl Sod {
    /// Reads EF.SOD (tag 0x77 around a ContentInfo).
    pub fn parse(bytes: &[u8]) -> Result<Sod, SodError> {
        let outer = Tlv::read_exact(bytes)?;
        if outer.tag != u32::from(SOD_TAG) {
            return Err(SodError::Tag(outer.tag));
        }
        let ci = ContentInfo::from_der(outer.value)?;
        if ci.content_type != ID_SIGNED_DATA {
            return Err(SodError::Structure("the ContentInfo is not signedData"));
        }
        let signed_data: SignedData = ci.content.decode_as()?;
        let econtent =
            signed_data
                .encap_content_info
                .econtent
                .as_ref()
                .ok_or(SodError::Structure(
                    "no eContent (detached content is not an SOD)",
                ))?;
        if econtent.tag() != Tag::OctetString {
            return Err(SodError::Structure("eContent is not an OCTET STRING"));
        }
        let security_object = LdsSecurityObject::from_der(econtent.value())?;
        Ok(Sod {
            signed_data,
            security_object,
        })
    }

    /// The Document Signer certificate carried in the SOD for the (first) signer.
    pub fn signer_certificate(&self) -> Option<&Certificate> {
        let si = self.signed_data.signer_infos.0.iter().next()?;
        let certs = self.signed_data.certificates.as_ref()?;
        certs.0.iter().find_map(|c| match c {
            CertificateChoices::Certificate(cert) if matches_sid(cert, &si.sid) => Some(cert),
            _ => None,
        })
    }
}

fn matches_sid(cert: &Certificate, sid: &SignerIdentifier) -> bool {
    let tbs = cert.tbs_certificate();
    match sid {
        SignerIdentifier::IssuerAndSerialNumber(ias) => {
            tbs.issuer() == &ias.issuer && tbs.serial_number() == &ias.serial_number
        }
        SignerIdentifier::SubjectKeyIdentifier(ski) => {
            matches!(tbs.get_extension::<SubjectKeyIdentifier>(), Ok(Some((_, own))) if own == *ski)
        }
    }
}

/// One verification step and its outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// What was checked.
    pub check: String,
    /// Whether it passed.
    pub ok: bool,
    /// Why, in a few words.
    pub detail: String,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = if self.ok { "ok" } else { "FAILED" };
        write!(f, "{v:>6}  {}: {}", self.check, self.detail)
    }
}

/// The outcome of verifying an SOD.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Every check, in order.
    pub verdicts: Vec<Verdict>,
}

impl Report {
    /// Whether every check passed (and there was at least one).
    #[must_use]
    pub fn is_ok(&self) -> bool {
        !self.verdicts.is_empty() && self.verdicts.iter().all(|v| v.ok)
    }

    pub(crate) fn push(&mut self, check: impl Into<String>, ok: bool, detail: impl Into<String>) {
        self.verdicts.push(Verdict {
            check: check.into(),
            ok,
            detail: detail.into(),
        });
    }
}

/// Verifies a signature made by the key of `spki`: ECDSA P-256 with SHA-256, or RSA
/// PKCS#1 v1.5 with SHA-256.
pub fn verify_signature(
    spki: &SubjectPublicKeyInfoOwned,
    algorithm: &ObjectIdentifier,
    message: &[u8],
    signature: &[u8],
) -> Result<(), String> {
    let key_alg = spki.algorithm.oid;
    let key_bytes = spki.subject_public_key.raw_bytes();
    if key_alg == ID_EC_PUBLIC_KEY {
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
        if curve != Some(SECP_256_R_1) {
            return Err("EC key on a curve other than P-256 (unsupported)".into());
        }
        if *algorithm != ECDSA_WITH_SHA_256 {
            return Err(format!(
                "signature algorithm {algorithm} with an EC key (unsupported)"
            ));
        }
        let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(key_bytes)
            .map_err(|e| format!("bad P-256 key: {e}"))?;
        let sig = DerSignature::try_from(signature)
            .map_err(|e| format!("malformed ECDSA signature: {e}"))?;
        key.verify(message, &sig)
            .map_err(|_| "signature does not verify".into())
    } else if key_alg == RSA_ENCRYPTION {
        if *algorithm != SHA_256_WITH_RSA && *algorithm != RSA_ENCRYPTION {
            return Err(format!(
                "signature algorithm {algorithm} with an RSA key (unsupported)"
            ));
        }
        use rsa::pkcs1::DecodeRsaPublicKey;
        let key =
            rsa::PublicKey::from_pkcs1_der(key_bytes).map_err(|e| format!("bad RSA key: {e}"))?;
        let key = rsa::pkcs1v15::VerifyingKey::<Sha256>::new(key);
        let sig = rsa::pkcs1v15::Signature::try_from(signature)
            .map_err(|e| format!("malformed RSA signature: {e}"))?;
        key.verify(message, &sig)
            .map_err(|_| "signature does not verify".into())
    } else {
        Err(format!("public key algorithm {key_alg} (unsupported)"))
    }
}

fn signed_attribute(si: &SignerInfo, oid: ObjectIdentifier) -> Option<&Any> {
    si.signed_attrs
        .as_ref()?
        .iter()
        .find(|a| a.oid == oid)
        .and_then(|a| a.values.iter().next())
}

fn validity_verdict(report: &mut Report, what: &str, cert: &Certificate, now: SystemTime) {
    let v = cert.tbs_certificate().validity();
    let (from, to) = (v.not_before.to_system_time(), v.not_after.to_system_time());
    let ok = from <= now && now <= to;
    report.push(
        format!("{what} validity"),
        ok,
        format!("{} to {}", v.not_before, v.not_after),
    );
}

/// Verifies EF.SOD against a CSCA certificate and the data group files present
/// (`(number, file bytes)`): the SOD's structure, the signer's signature over the signed
/// attributes, the message digest of the LDS Security Object, the Document Signer
/// certificate's signature by the CSCA and both validity periods at `now`, and the hash of
/// every data group. Data groups hashed in the SOD but not given are reported as not
/// checked (a failure: a reader must have every file it relies on).
pub fn verify_sod(
    sod_bytes: &[u8],
    data_groups: &[(u8, &[u8])],
    csca: &Certificate,
    now: SystemTime,
) -> Report {
    let mut r = Report::default();
    let sod = match Sod::parse(sod_bytes) {
        Ok(s) => {
            r.push(
                "SOD structure",
                true,
                "ContentInfo / SignedData / LDS Security Object read",
            );
            s
        }
        Err(e) => {
            r.push("SOD structure", false, e.to_string());
            return r;
        }
    };
    let sd = &sod.signed_data;
    let ect = sd.encap_content_info.econtent_type;
    r.push(
        "eContentType",
        ect == ID_LDS_SECURITY_OBJECT,
        format!("{ect} (id-icao-ldsSecurityObject is {ID_LDS_SECURITY_OBJECT})"),
    );

    // The signer.
    let Some(si) = sd.signer_infos.0.iter().next() else {
        r.push("SignerInfo", false, "no SignerInfo");
        return r;
    };
    let Some(ds) = sod.signer_certificate() else {
        r.push(
            "Document Signer certificate",
            false,
            "no certificate in the SOD matches the SignerInfo",
        );
        return r;
    };
    r.push(
        "Document Signer certificate",
        true,
        ds.tbs_certificate().subject().to_string(),
    );

    // Signed attributes: content type and message digest.
    let econtent_value = sd
        .encap_content_info
        .econtent
        .as_ref()
        .map(|a| a.value())
        .unwrap_or(&[]);
    let ct =
        signed_attribute(si, ID_CONTENT_TYPE).and_then(|a| a.decode_as::<ObjectIdentifier>().ok());
    r.push(
        "signed attribute content-type",
        ct == Some(ect),
        ct.map_or_else(|| "absent".to_owned(), |oid| oid.to_string()),
    );
    if si.digest_alg.oid == ID_SHA_256 {
        let digest = Sha256::digest(econtent_value);
        let md =
            signed_attribute(si, ID_MESSAGE_DIGEST).and_then(|a| a.decode_as::<OctetString>().ok());
        let ok = md
            .as_ref()
            .is_some_and(|m| m.as_bytes() == digest.as_slice());
        r.push(
            "signed attribute message-digest",
            ok,
            "SHA-256 of the LDS Security Object",
        );
    } else {
        r.push(
            "signed attribute message-digest",
            false,
            format!("digest algorithm {} (unsupported)", si.digest_alg.oid),
        );
    }

    // The signature over the DER SET OF signed attributes.
    match si.signed_attrs.as_ref().map(Encode::to_der) {
        Some(Ok(signed)) => {
            let res = verify_signature(
                ds.tbs_certificate().subject_public_key_info(),
                &si.signature_algorithm.oid,
                &signed,
                si.signature.as_bytes(),
            );
            r.push(
                "SOD signature by the Document Signer",
                res.is_ok(),
                res.err()
                    .unwrap_or_else(|| si.signature_algorithm.oid.to_string()),
            );
        }
        _ => r.push(
            "SOD signature by the Document Signer",
            false,
            "no signed attributes",
        ),
    }

    // The chain: DS certificate signed by the CSCA.
    let issuer_ok = ds.tbs_certificate().issuer() == csca.tbs_certificate().subject();
    r.push(
        "Document Signer issued by the CSCA",
        issuer_ok,
        format!("issuer {}", ds.tbs_certificate().issuer()),
    );
    let csca_is_ca = matches!(csca.tbs_certificate().get_extension::<BasicConstraints>(), Ok(Some((_, bc))) if bc.ca);
    r.push("CSCA is a CA", csca_is_ca, "basicConstraints cA");
    match ds.tbs_certificate().to_der() {
        Ok(tbs) => {
            let res = verify_signature(
                csca.tbs_certificate().subject_public_key_info(),
                &ds.signature_algorithm().oid,
                &tbs,
                ds.signature().raw_bytes(),
            );
            r.push(
                "Document Signer certificate signed by the CSCA",
                res.is_ok(),
                res.err()
                    .unwrap_or_else(|| ds.signature_algorithm().oid.to_string()),
            );
        }
        Err(e) => r.push(
            "Document Signer certificate signed by the CSCA",
            false,
            e.to_string(),
        ),
    }
    validity_verdict(&mut r, "Document Signer certificate", ds, now);
    validity_verdict(&mut r, "CSCA certificate", csca, now);

    // Every data group.
    let lso = &sod.security_object;
    if lso.hash_algorithm.oid != ID_SHA_256 {
        r.push(
            "data group hash algorithm",
            false,
            format!("{} (only SHA-256 is supported)", lso.hash_algorithm.oid),
        );
        return r;
    }
    for h in &lso.data_group_hash_values {
        let n = h.data_group_number;
        match data_groups.iter().find(|(m, _)| *m == n) {
            Some((_, bytes)) => {
                let ok = Sha256::digest(bytes).as_slice() == h.data_group_hash_value.as_bytes();
                r.push(
                    format!("DG{n} hash"),
                    ok,
                    if ok {
                        "matches the SOD"
                    } else {
                        "differs from the SOD"
                    },
                );
            }
            None => r.push(
                format!("DG{n} hash"),
                false,
                "hashed in the SOD but the file is absent",
            ),
        }
    }
    for (n, _) in data_groups {
        if !lso
            .data_group_hash_values
            .iter()
            .any(|h| h.data_group_number == *n)
        {
            r.push(
                format!("DG{n} hash"),
                false,
                "file present but not in the SOD",
            );
        }
    }
    r
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::codes::StateCode;
    use cms::builder::{SignedDataBuilder, SignerInfoBuilder};
    use cms::signed_data::EncapsulatedContentInfo;

    fn sha256_alg() -> AlgorithmIdentifierOwned {
        AlgorithmIdentifierOwned {
            oid: ID_SHA_256,
            parameters: None,
        }
    }

    /// EF.SOD as the `cms` crate's builder writes it (the way this crate built it before
    /// writing the DER itself), signed with the deterministic (RFC 6979) `p256` signer.
    fn build_sod_with_cms(data_groups: &[(u8, &[u8])], signer: &DocumentSigner) -> Vec<u8> {
        let mut hashes: Vec<DataGroupHash> = data_groups
            .iter()
            .map(|&(n, bytes)| DataGroupHash {
                data_group_number: n,
                data_group_hash_value: OctetString::new(Sha256::digest(bytes).as_slice()).unwrap(),
            })
            .collect();
        hashes.sort_by_key(|h| h.data_group_number);
        let lso = LdsSecurityObject {
            version: 0,
            hash_algorithm: sha256_alg(),
            data_group_hash_values: hashes,
        }
        .to_der()
        .unwrap();
        assert_eq!(lso, lds_security_object(data_groups).unwrap());
        let eci = EncapsulatedContentInfo {
            econtent_type: ID_LDS_SECURITY_OBJECT,
            econtent: Some(Any::new(Tag::OctetString, lso).unwrap()),
        };
        let tbs = signer.cert.tbs_certificate();
        let sid = SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
            issuer: tbs.issuer().clone(),
            serial_number: tbs.serial_number().clone(),
        });
        let signer_info = SignerInfoBuilder::new(sid, sha256_alg(), &eci, None).unwrap();
        let mut builder = SignedDataBuilder::new(&eci);
        builder
            .add_digest_algorithm(sha256_alg())
            .unwrap()
            .add_certificate(CertificateChoices::Certificate(signer.cert.clone()))
            .unwrap()
            .add_signer_info::<_, DerSignature>(signer_info, &signer.key)
            .unwrap();
        let der = builder.build().unwrap().to_der().unwrap();
        let mut out = Vec::new();
        tlv::write(&mut out, &[SOD_TAG], &der);
        out
    }

    #[test]
    fn same_bytes_as_the_cms_builder() {
        let (csca, ds) =
            crate::pki::generate_test_pki(StateCode::parse("COL").unwrap(), SystemTime::now())
                .unwrap();
        let signer = DocumentSigner::new(ds.key, ds.cert).unwrap();
        let dg1 = vec![0x61u8; 93];
        let dg2 = vec![0x75u8; 5000];
        let dg3 = vec![0x63u8; 10];
        let sets: [&[(u8, &[u8])]; 4] = [
            &[(1, &dg1), (2, &dg2)],
            &[(2, &dg2), (1, &dg1)],
            &[(1, &dg1)],
            &[
                (16, &dg3),
                (1, &dg1),
                (2, &dg2),
                (3, &dg3),
                (4, &dg3),
                (5, &dg3),
            ],
        ];
        for dgs in sets {
            let ours = assemble_sod(dgs, &signer.parts, |m| {
                signature::Signer::<DerSignature>::try_sign(&signer.key, m)
                    .map_err(|e| SodError::Build(e.to_string()))
            })
            .unwrap();
            assert_eq!(ours, build_sod_with_cms(dgs, &signer));
            // And the signer's own (possibly AWS-LC) signature verifies.
            let sod = build_sod(dgs, &signer).unwrap();
            assert!(verify_sod(&sod, dgs, &csca.cert, SystemTime::now()).is_ok());
        }
    }

    #[test]
    fn refuses_bad_data_group_numbers() {
        for dgs in [&[(0u8, &[][..])][..], &[(17, &[])], &[(3, &[]), (3, &[1])]] {
            assert!(matches!(
                lds_security_object(dgs),
                Err(SodError::DataGroup(_))
            ));
        }
    }

    #[test]
    fn tlv_lengths() {
        for n in [0usize, 1, 127, 128, 255, 256, 65_535, 65_536] {
            let mut out = Vec::new();
            tlv::write(&mut out, &[0x04], &vec![0; n]);
            assert_eq!(tlv_len(n), out.len());
        }
    }
}

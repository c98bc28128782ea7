//! The chip's files as one unit: writing them from an MRZ and a photo, and verifying all
//! of them against a CSCA.

use crate::lds::{self, Gender};
use crate::mrz::Mrz;
use crate::pki::DocumentSigner;
use crate::sod::{self, Report, SodError};
use std::time::SystemTime;
use x509_cert::certificate::Certificate;

/// The files of an eMRTD's LDS that this crate writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChipFiles {
    /// EF.COM.
    pub ef_com: Vec<u8>,
    /// EF.DG1 (the MRZ).
    pub dg1: Vec<u8>,
    /// EF.DG2 (the face).
    pub dg2: Vec<u8>,
    /// EF.SOD.
    pub sod: Vec<u8>,
}

/// The file names used on disk, as in Part 10.
pub const FILE_NAMES: [&str; 4] = ["EF.COM", "EF.DG1", "EF.DG2", "EF.SOD"];

/// Why the files could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ChipError {
    /// LDS file problem.
    #[error(transparent)]
    Lds(#[from] lds::LdsError),
    /// Signing problem.
    #[error(transparent)]
    Sod(#[from] SodError),
}

impl ChipFiles {
    /// Writes EF.COM, EF.DG1, EF.DG2 (from a JPEG) and EF.SOD signed by `signer`.
    pub fn personalise(
        mrz: &Mrz,
        jpeg: &[u8],
        signer: &DocumentSigner,
    ) -> Result<ChipFiles, ChipError> {
        let sex = mrz.fields().sex;
        let dg1 = lds::build_dg1(mrz);
        let dg2 = lds::build_dg2(jpeg, Gender::from_mrz(sex))?;
        let ef_com = lds::build_ef_com(&[1, 2])?;
        let sod = sod::build_sod(&[(1, &dg1), (2, &dg2)], signer)?;
        Ok(ChipFiles {
            ef_com,
            dg1,
            dg2,
            sod,
        })
    }

    /// The files with their names, in [`FILE_NAMES`] order.
    #[must_use]
    pub fn named(&self) -> [(&'static str, &[u8]); 4] {
        [
            (FILE_NAMES[0], &self.ef_com),
            (FILE_NAMES[1], &self.dg1),
            (FILE_NAMES[2], &self.dg2),
            (FILE_NAMES[3], &self.sod),
        ]
    }

    /// Verifies everything: EF.COM lists exactly the data groups present and hashed, DG1's
    /// MRZ check digits, DG2's facial record, and the SOD (see [`sod::verify_sod`]).
    #[must_use]
    pub fn verify(&self, csca: &Certificate, now: SystemTime) -> Report {
        let mut r = sod::verify_sod(&self.sod, &[(1, &self.dg1), (2, &self.dg2)], csca, now);
        let mut extra = Report::default();
        match lds::parse_ef_com(&self.ef_com) {
            Ok(com) => {
                let ok = com.data_groups == [1, 2];
                extra.push(
                    "EF.COM",
                    ok,
                    format!("LDS {} lists DG{:?}", com.lds_version, com.data_groups),
                );
            }
            Err(e) => extra.push("EF.COM", false, e.to_string()),
        }
        match lds::parse_dg1(&self.dg1) {
            Ok(mrz) => {
                let ok = mrz.checks_ok();
                extra.push(
                    "DG1 MRZ check digits",
                    ok,
                    mrz.to_string().replace('\n', " / "),
                );
            }
            Err(e) => extra.push("DG1 MRZ check digits", false, e.to_string()),
        }
        match lds::parse_dg2(&self.dg2) {
            Ok(face) => extra.push(
                "DG2 facial record",
                lds::jpeg_size(face.image).is_ok(),
                format!(
                    "{}×{} JPEG, {} bytes",
                    face.width,
                    face.height,
                    face.image.len()
                ),
            ),
            Err(e) => extra.push("DG2 facial record", false, e.to_string()),
        }
        extra.verdicts.append(&mut r.verdicts);
        extra
    }
}

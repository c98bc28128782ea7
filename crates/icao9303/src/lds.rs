//! The Logical Data Structure files (Doc 9303 Part 10): EF.COM, EF.DG1 and EF.DG2.

use crate::mrz::{Mrz, ParseError};
use crate::tlv::{self, Tlv, TlvError};

/// LDS version written in EF.COM (`0107`: LDS 1.7, which goes with a v0 Security Object).
pub const LDS_VERSION: &[u8; 4] = b"0107";
/// Unicode version written in EF.COM (4.0.0).
pub const UNICODE_VERSION: &[u8; 6] = b"040000";
/// The largest face image accepted, in bytes. Chips hold some tens of kilobytes for DG2;
/// 1 MiB is far above any real one while bounding memory.
pub const FACE_IMAGE_BYTES_MAX: usize = 1 << 20;

/// The tag of EF.DG`n` (n = 1..=16), as listed in EF.COM.
#[must_use]
pub const fn data_group_tag(n: u8) -> Option<u8> {
    match n {
        1 => Some(0x61),
        2 => Some(0x75),
        3 => Some(0x63),
        4 => Some(0x76),
        5..=16 => Some(0x65 + (n - 5)),
        _ => None,
    }
}

/// The data group number of an LDS tag.
#[must_use]
pub fn data_group_number(tag: u8) -> Option<u8> {
    (1..=16).find(|&n| data_group_tag(n) == Some(tag))
}

/// Problems with LDS files.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LdsError {
    /// Not TLV.
    #[error("{file}: {source}")]
    Tlv {
        /// The file.
        file: &'static str,
        /// The TLV problem.
        source: TlvError,
    },
    /// A tag other than the one the file must have.
    #[error("{file}: expected tag {expected:#X}, found {found:#X}")]
    Tag {
        /// The file.
        file: &'static str,
        /// The tag required.
        expected: u32,
        /// The tag found.
        found: u32,
    },
    /// A required element is absent.
    #[error("{file}: missing element {tag:#X}")]
    Missing {
        /// The file.
        file: &'static str,
        /// The tag of the missing element.
        tag: u32,
    },
    /// The MRZ in DG1 cannot be read.
    #[error("EF.DG1: {0}")]
    Mrz(#[from] ParseError),
    /// The image is not a baseline or progressive JPEG with a frame header.
    #[error("photo: {0}")]
    Jpeg(&'static str),
    /// The image is larger than [`FACE_IMAGE_BYTES_MAX`].
    #[error("photo: {0} bytes, at most {FACE_IMAGE_BYTES_MAX} accepted")]
    TooLarge(usize),
    /// A data group number outside 1..=16.
    #[error("no data group {0}: the LDS has DG1 to DG16")]
    DataGroup(u8),
    /// The facial record header is not ISO/IEC 19794-5.
    #[error("EF.DG2: {0}")]
    FacialRecord(&'static str),
}

fn tlv_err(file: &'static str) -> impl Fn(TlvError) -> LdsError {
    move |source| LdsError::Tlv { file, source }
}

/// Builds EF.COM listing the data groups present (`data_groups`: numbers, e.g. `[1, 2]`).
pub fn build_ef_com(data_groups: &[u8]) -> Result<Vec<u8>, LdsError> {
    let mut tags = Vec::with_capacity(data_groups.len());
    for &n in data_groups {
        tags.push(data_group_tag(n).ok_or(LdsError::DataGroup(n))?);
    }
    let mut out = Vec::with_capacity(32);
    tlv::write_with(&mut out, &[0x60], |v| {
        tlv::write(v, &[0x5F, 0x01], LDS_VERSION);
        tlv::write(v, &[0x5F, 0x36], UNICODE_VERSION);
        tlv::write(v, &[0x5C], &tags);
    });
    Ok(out)
}

/// What EF.COM says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EfCom {
    /// `0107`, `0108`...
    pub lds_version: String,
    /// `040000`...
    pub unicode_version: String,
    /// Data group numbers listed.
    pub data_groups: Vec<u8>,
}

/// Reads EF.COM.
pub fn parse_ef_com(bytes: &[u8]) -> Result<EfCom, LdsError> {
    const FILE: &str = "EF.COM";
    let top = Tlv::read_exact(bytes).map_err(tlv_err(FILE))?;
    expect_tag(FILE, &top, 0x60)?;
    let get = |tag| {
        top.child(tag)
            .map_err(tlv_err(FILE))?
            .ok_or(LdsError::Missing { file: FILE, tag })
    };
    let text = |t: Tlv<'_>| String::from_utf8_lossy(t.value).into_owned();
    let list = get(0x5C)?;
    let mut data_groups = Vec::with_capacity(list.value.len());
    for &tag in list.value {
        data_groups.push(data_group_number(tag).ok_or(LdsError::Tag {
            file: FILE,
            expected: 0x61,
            found: u32::from(tag),
        })?);
    }
    Ok(EfCom {
        lds_version: text(get(0x5F01)?),
        unicode_version: text(get(0x5F36)?),
        data_groups,
    })
}

/// Builds EF.DG1: the MRZ characters, all lines run together.
#[must_use]
pub fn build_dg1(mrz: &Mrz) -> Vec<u8> {
    let mut out = Vec::with_capacity(96);
    tlv::write_with(&mut out, &[0x61], |v| {
        tlv::write(v, &[0x5F, 0x1F], mrz.as_bytes())
    });
    out
}

/// Reads the MRZ back from EF.DG1.
pub fn parse_dg1(bytes: &[u8]) -> Result<Mrz, LdsError> {
    const FILE: &str = "EF.DG1";
    let top = Tlv::read_exact(bytes).map_err(tlv_err(FILE))?;
    expect_tag(FILE, &top, 0x61)?;
    let data = top
        .child(0x5F1F)
        .map_err(tlv_err(FILE))?
        .ok_or(LdsError::Missing {
            file: FILE,
            tag: 0x5F1F,
        })?;
    let width = match data.value.len() {
        90 => 30,
        72 => 36,
        88 => 44,
        len => {
            return Err(ParseError::Shape {
                lines: 1,
                first_len: len,
            }
            .into());
        }
    };
    let text = String::from_utf8_lossy(data.value);
    let lines: Vec<&str> = (0..data.value.len() / width)
        .filter_map(|i| text.get(i * width..(i + 1) * width))
        .collect();
    Ok(Mrz::from_lines(&lines)?)
}

/// The holder's attributes recorded in the facial record (ISO/IEC 19794-5:2005).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Gender {
    /// Not given (0x00).
    #[default]
    Unspecified,
    /// 0x01.
    Male,
    /// 0x02.
    Female,
    /// 0xFF.
    Unknown,
}

impl Gender {
    /// From the MRZ sex marker (`M`, `F`, anything else unknown).
    #[must_use]
    pub fn from_mrz(sex: char) -> Self {
        match sex {
            'M' => Gender::Male,
            'F' => Gender::Female,
            _ => Gender::Unknown,
        }
    }

    fn code(self) -> u8 {
        match self {
            Gender::Unspecified => 0x00,
            Gender::Male => 0x01,
            Gender::Female => 0x02,
            Gender::Unknown => 0xFF,
        }
    }
}

/// Width and height of a JPEG, from its first frame header (SOFn).
pub fn jpeg_size(jpeg: &[u8]) -> Result<(u16, u16), LdsError> {
    if jpeg.get(0..2) != Some(&[0xFF, 0xD8]) {
        return Err(LdsError::Jpeg("not a JPEG (no SOI marker)"));
    }
    let mut i = 2usize;
    loop {
        let marker = match jpeg.get(i..i + 2) {
            Some(&[0xFF, m]) => m,
            _ => {
                return Err(LdsError::Jpeg(
                    "no frame header before the end or a malformed segment",
                ));
            }
        };
        if marker == 0xFF {
            i += 1; // fill byte
            continue;
        }
        let len = match jpeg.get(i + 2..i + 4) {
            Some(&[a, b]) => usize::from(u16::from_be_bytes([a, b])),
            _ => return Err(LdsError::Jpeg("truncated segment")),
        };
        let is_sof = matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC);
        if is_sof {
            return match jpeg.get(i + 5..i + 9) {
                Some(&[h1, h0, w1, w0]) => {
                    Ok((u16::from_be_bytes([w1, w0]), u16::from_be_bytes([h1, h0])))
                }
                _ => Err(LdsError::Jpeg("truncated frame header")),
            };
        }
        if marker == 0xDA || marker == 0xD9 {
            return Err(LdsError::Jpeg("no frame header before the image data"));
        }
        i += 2 + len;
    }
}

/// Bytes of the ISO/IEC 19794-5 facial record header (format id, version, length, count).
const FACIAL_RECORD_HEADER_BYTES: usize = 14;
/// Facial information block.
const FACIAL_INFORMATION_BYTES: usize = 20;
/// Image information.
const IMAGE_INFORMATION_BYTES: usize = 12;

/// Builds EF.DG2 from a JPEG: the Biometric Information Group Template holding one
/// Biometric Information Template (CBEFF header `A1` and data block `5F2E`), the data block
/// being an ISO/IEC 19794-5:2005 facial record of one full-frontal JPEG image.
pub fn build_dg2(jpeg: &[u8], gender: Gender) -> Result<Vec<u8>, LdsError> {
    if jpeg.len() > FACE_IMAGE_BYTES_MAX {
        return Err(LdsError::TooLarge(jpeg.len()));
    }
    let (width, height) = jpeg_size(jpeg)?;
    let data_len = FACIAL_INFORMATION_BYTES + IMAGE_INFORMATION_BYTES + jpeg.len();
    let record_len = FACIAL_RECORD_HEADER_BYTES + data_len;
    let mut record = Vec::with_capacity(record_len);
    // Facial record header.
    record.extend_from_slice(b"FAC\0");
    record.extend_from_slice(b"010\0");
    // Lengths below FACE_IMAGE_BYTES_MAX + 46 fit in 32 bits.
    record.extend_from_slice(&(record_len as u32).to_be_bytes());
    record.extend_from_slice(&1u16.to_be_bytes());
    // Facial information block: no feature points, pose and properties unspecified.
    record.extend_from_slice(&(data_len as u32).to_be_bytes());
    record.extend_from_slice(&0u16.to_be_bytes()); // feature points
    record.push(gender.code());
    record.push(0x00); // eye colour unspecified
    record.push(0x00); // hair colour unspecified
    record.extend_from_slice(&[0x00, 0x00, 0x00]); // property mask
    record.extend_from_slice(&[0x00, 0x00]); // expression unspecified
    record.extend_from_slice(&[0x00, 0x00, 0x00]); // pose angle yaw, pitch, roll
    record.extend_from_slice(&[0x00, 0x00, 0x00]); // pose angle uncertainty
    // Image information.
    record.push(0x01); // face image type: full frontal
    record.push(0x00); // image data type: JPEG
    record.extend_from_slice(&width.to_be_bytes());
    record.extend_from_slice(&height.to_be_bytes());
    record.push(0x01); // colour space: 24-bit RGB
    record.push(0x02); // source type: static photo from a digital still camera
    record.extend_from_slice(&[0x00, 0x00]); // device type unspecified
    record.extend_from_slice(&[0x00, 0x00]); // quality unspecified
    record.extend_from_slice(jpeg);

    let mut out = Vec::with_capacity(record.len() + 64);
    tlv::write_with(&mut out, &[0x75], |dg| {
        tlv::write_with(dg, &[0x7F, 0x61], |group| {
            tlv::write(group, &[0x02], &[0x01]); // one biometric information template
            tlv::write_with(group, &[0x7F, 0x60], |bit| {
                tlv::write_with(bit, &[0xA1], |header| {
                    tlv::write(header, &[0x80], &[0x01, 0x01]); // ICAO header version 1.1
                    tlv::write(header, &[0x81], &[0x02]); // biometric type: facial features
                    tlv::write(header, &[0x87], &[0x01, 0x01]); // format owner: ISO/IEC JTC 1/SC 37
                    tlv::write(header, &[0x88], &[0x00, 0x08]); // format type: face image
                });
                tlv::write(bit, &[0x5F, 0x2E], &record);
            });
        });
    });
    Ok(out)
}

/// The face image found in EF.DG2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaceImage<'a> {
    /// Width in pixels, as recorded.
    pub width: u16,
    /// Height in pixels, as recorded.
    pub height: u16,
    /// The image bytes (JPEG or JPEG 2000).
    pub image: &'a [u8],
}

/// Reads the first face image of EF.DG2.
pub fn parse_dg2(bytes: &[u8]) -> Result<FaceImage<'_>, LdsError> {
    const FILE: &str = "EF.DG2";
    let err = tlv_err(FILE);
    let top = Tlv::read_exact(bytes).map_err(&err)?;
    expect_tag(FILE, &top, 0x75)?;
    let missing = |tag| LdsError::Missing { file: FILE, tag };
    let group = top.child(0x7F61).map_err(&err)?.ok_or(missing(0x7F61))?;
    let bit = group.child(0x7F60).map_err(&err)?.ok_or(missing(0x7F60))?;
    let block = match bit.child(0x5F2E).map_err(&err)? {
        Some(b) => b,
        None => bit.child(0x7F2E).map_err(&err)?.ok_or(missing(0x5F2E))?,
    };
    let r = block.value;
    if r.get(0..4) != Some(b"FAC\0") {
        return Err(LdsError::FacialRecord("no FAC format identifier"));
    }
    let at = FACIAL_RECORD_HEADER_BYTES;
    let feature_points = r
        .get(at + 4..at + 6)
        .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])));
    let feature_points =
        feature_points.ok_or(LdsError::FacialRecord("truncated facial information"))?;
    let info = at + FACIAL_INFORMATION_BYTES + 8 * feature_points;
    let (w, h) = match r.get(info + 2..info + 6) {
        Some(&[w1, w0, h1, h0]) => (u16::from_be_bytes([w1, w0]), u16::from_be_bytes([h1, h0])),
        _ => return Err(LdsError::FacialRecord("truncated image information")),
    };
    let image = r
        .get(info + IMAGE_INFORMATION_BYTES..)
        .ok_or(LdsError::FacialRecord("no image data"))?;
    Ok(FaceImage {
        width: w,
        height: h,
        image,
    })
}

fn expect_tag(file: &'static str, tlv: &Tlv<'_>, expected: u32) -> Result<(), LdsError> {
    if tlv.tag == expected {
        Ok(())
    } else {
        Err(LdsError::Tag {
            file,
            expected,
            found: tlv.tag,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use super::*;
    use crate::{Format, MrzFields};

    /// The smallest JPEG-shaped bytes with a frame header (not decodable, enough here).
    pub(crate) fn tiny_jpeg(width: u16, height: u16) -> Vec<u8> {
        let mut j = vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x04, 0x4A, 0x46];
        j.extend_from_slice(&[0xFF, 0xC0, 0x00, 0x0B, 0x08]);
        j.extend_from_slice(&height.to_be_bytes());
        j.extend_from_slice(&width.to_be_bytes());
        j.extend_from_slice(&[0x01, 0x01, 0x11, 0x00, 0xFF, 0xD9]);
        j
    }

    #[test]
    fn ef_com_round_trip() {
        let com = build_ef_com(&[1, 2]).unwrap();
        assert_eq!(
            com,
            [
                0x60, 0x14, 0x5F, 0x01, 0x04, b'0', b'1', b'0', b'7', 0x5F, 0x36, 0x06, b'0', b'4',
                b'0', b'0', b'0', b'0', 0x5C, 0x02, 0x61, 0x75
            ]
        );
        assert_eq!(parse_ef_com(&com).unwrap().data_groups, [1, 2]);
        assert_eq!(build_ef_com(&[17]), Err(LdsError::DataGroup(17)));
    }

    #[test]
    fn dg1_round_trip() {
        let f = MrzFields {
            document_code: "P",
            issuing_state: "UTO",
            surname: "Eriksson",
            given_names: "Anna Maria",
            document_number: "L898902C3",
            nationality: "UTO",
            birth_date: "740812",
            sex: "F",
            expiry_date: "120415",
            optional_data: "ZE184226B",
            optional_data_2: "",
        };
        let mrz = Mrz::generate(Format::Td3, &f).unwrap();
        let dg1 = build_dg1(&mrz);
        assert_eq!(&dg1[..5], &[0x61, 0x5B, 0x5F, 0x1F, 0x58]);
        assert_eq!(parse_dg1(&dg1).unwrap(), mrz);
    }

    #[test]
    fn dg2_round_trip() {
        let jpeg = tiny_jpeg(413, 531);
        assert_eq!(jpeg_size(&jpeg), Ok((413, 531)));
        let dg2 = build_dg2(&jpeg, Gender::Female).unwrap();
        let face = parse_dg2(&dg2).unwrap();
        assert_eq!(
            (face.width, face.height, face.image),
            (413, 531, jpeg.as_slice())
        );
        assert!(build_dg2(b"GIF89a", Gender::Unknown).is_err());
        assert_eq!(tlv::walk(&dg2).map(|n| n > 5), Ok(true));
    }
}

//! BER-TLV as used by the LDS files (ISO/IEC 7816-4 tags of one to three bytes, definite
//! lengths): a bounded reader for untrusted chip data and a DER-length writer.

/// The deepest nesting the reader follows: the LDS nests at most five levels (DG2:
/// 75 / 7F61 / 7F60 / A1 / 80); 16 leaves room without letting input exhaust the stack.
pub const DEPTH_MAX: usize = 16;

/// Why bytes are not a TLV.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlvError {
    /// The input ends inside a tag, a length or a value.
    #[error("truncated at byte {0}")]
    Truncated(usize),
    /// Indefinite length (not DER, not allowed in the LDS).
    #[error("indefinite length at byte {0}")]
    Indefinite(usize),
    /// A length of more than four bytes, or a tag of more than three.
    #[error("oversized tag or length at byte {0}")]
    Oversized(usize),
    /// More nesting than [`DEPTH_MAX`].
    #[error("nested deeper than {DEPTH_MAX}")]
    TooDeep,
    /// Bytes left over after the outer TLV.
    #[error("{0} bytes after the end of the TLV")]
    Trailing(usize),
}

/// One TLV: its tag (the tag bytes as a big-endian number, e.g. `0x5F1F`) and value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tlv<'a> {
    /// Tag bytes as a number.
    pub tag: u32,
    /// The value bytes.
    pub value: &'a [u8],
}

impl<'a> Tlv<'a> {
    /// Whether the tag's constructed bit is set.
    #[must_use]
    pub fn is_constructed(&self) -> bool {
        let first = if self.tag > 0xFFFF {
            self.tag >> 16
        } else if self.tag > 0xFF {
            self.tag >> 8
        } else {
            self.tag
        };
        first & 0x20 != 0
    }

    /// Reads one TLV at the start of `input`; returns it and the rest.
    pub fn read(input: &'a [u8]) -> Result<(Tlv<'a>, &'a [u8]), TlvError> {
        Self::read_at(input, 0)
    }

    fn read_at(input: &'a [u8], offset: usize) -> Result<(Tlv<'a>, &'a [u8]), TlvError> {
        let byte = |i: usize| input.get(i).copied().ok_or(TlvError::Truncated(offset + i));
        let mut i = 0usize;
        let first = byte(i)?;
        let mut tag = u32::from(first);
        i += 1;
        if first & 0x1F == 0x1F {
            loop {
                let b = byte(i)?;
                tag = (tag << 8) | u32::from(b);
                i += 1;
                if b & 0x80 == 0 {
                    break;
                }
                if i >= 3 {
                    return Err(TlvError::Oversized(offset));
                }
            }
        }
        let l0 = byte(i)?;
        i += 1;
        let len = match l0 {
            0x00..=0x7F => usize::from(l0),
            0x80 => return Err(TlvError::Indefinite(offset + i - 1)),
            0x81..=0x84 => {
                let n = usize::from(l0 & 0x7F);
                let mut len = 0usize;
                for _ in 0..n {
                    len = (len << 8) | usize::from(byte(i)?);
                    i += 1;
                }
                len
            }
            _ => return Err(TlvError::Oversized(offset + i - 1)),
        };
        let end = i.checked_add(len).ok_or(TlvError::Oversized(offset))?;
        let value = input
            .get(i..end)
            .ok_or(TlvError::Truncated(offset + input.len()))?;
        Ok((Tlv { tag, value }, &input[end..]))
    }

    /// Reads exactly one TLV spanning all of `input`.
    pub fn read_exact(input: &'a [u8]) -> Result<Tlv<'a>, TlvError> {
        let (tlv, rest) = Self::read(input)?;
        if rest.is_empty() {
            Ok(tlv)
        } else {
            Err(TlvError::Trailing(rest.len()))
        }
    }

    /// The TLVs inside this one's value.
    pub fn children(&self) -> Children<'a> {
        Children { rest: self.value }
    }

    /// The first child with `tag`.
    pub fn child(&self, tag: u32) -> Result<Option<Tlv<'a>>, TlvError> {
        for c in self.children() {
            let c = c?;
            if c.tag == tag {
                return Ok(Some(c));
            }
        }
        Ok(None)
    }
}

/// Iterator over consecutive TLVs.
pub struct Children<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Children<'a> {
    type Item = Result<Tlv<'a>, TlvError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        match Tlv::read(self.rest) {
            Ok((tlv, rest)) => {
                self.rest = rest;
                Some(Ok(tlv))
            }
            Err(e) => {
                self.rest = &[];
                Some(Err(e))
            }
        }
    }
}

/// Walks a whole TLV tree, checking every constructed value parses, down to [`DEPTH_MAX`].
/// Returns the number of TLVs seen.
pub fn walk(input: &[u8]) -> Result<usize, TlvError> {
    fn go(input: &[u8], depth: usize) -> Result<usize, TlvError> {
        if depth > DEPTH_MAX {
            return Err(TlvError::TooDeep);
        }
        let mut n = 0usize;
        let mut rest = input;
        while !rest.is_empty() {
            let (tlv, r) = Tlv::read(rest)?;
            n += 1;
            if tlv.is_constructed() {
                n += go(tlv.value, depth + 1)?;
            }
            rest = r;
        }
        Ok(n)
    }
    go(input, 0)
}

/// Appends a TLV with `tag` (its bytes) and a DER length.
pub fn write(out: &mut Vec<u8>, tag: &[u8], value: &[u8]) {
    out.extend_from_slice(tag);
    write_len(out, value.len());
    out.extend_from_slice(value);
}

/// Appends a DER length.
pub fn write_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        // Below 0x80: fits in one byte.
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        // At most 8 length bytes for a usize: 0x80 | 8 fits.
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

/// A TLV with `tag` whose value is built by `f` (lengths are known only afterwards).
pub fn write_with(out: &mut Vec<u8>, tag: &[u8], f: impl FnOnce(&mut Vec<u8>)) {
    let mut inner = Vec::new();
    f(&mut inner);
    write(out, tag, &inner);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_lengths() {
        for len in [0usize, 1, 127, 128, 255, 256, 65_535, 65_536] {
            let mut out = Vec::new();
            write(&mut out, &[0x5F, 0x2E], &vec![7u8; len]);
            let tlv = Tlv::read_exact(&out).unwrap();
            assert_eq!(tlv.tag, 0x5F2E);
            assert_eq!(tlv.value.len(), len);
        }
    }

    #[test]
    fn refuses_bad_input() {
        assert_eq!(Tlv::read(&[0x61]), Err(TlvError::Truncated(1)));
        assert_eq!(Tlv::read(&[0x61, 0x80]), Err(TlvError::Indefinite(1)));
        assert_eq!(
            Tlv::read(&[0x61, 0x85, 0, 0, 0, 0, 1]),
            Err(TlvError::Oversized(1))
        );
        assert!(matches!(
            Tlv::read(&[0x61, 0x82, 0xFF, 0xFF]),
            Err(TlvError::Truncated(_))
        ));
        assert_eq!(
            Tlv::read(&[0x5F, 0xFF, 0xFF, 0x01, 0x00]),
            Err(TlvError::Oversized(0))
        );
        let mut deep = Vec::new();
        for _ in 0..=DEPTH_MAX + 1 {
            let mut outer = Vec::new();
            write(&mut outer, &[0x61], &deep);
            deep = outer;
        }
        assert_eq!(walk(&deep), Err(TlvError::TooDeep));
    }
}

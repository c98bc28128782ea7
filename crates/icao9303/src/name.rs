//! Name composition and truncation (Doc 9303 Part 3 section 4.6, Parts 4 to 6).
//!
//! The name field holds the primary identifier (surname), `<<`, then the secondary
//! identifier (given names) with `<` between components, padded with `<`.
//! A name that fits, even exactly, is never cut. One that does not fit is truncated so
//! that the field ends up full, which is the only mark of truncation the MRZ has:
//!
//! 1. the secondary identifier's components are shortened first, from the last one
//!    backwards, each down to its initial;
//! 2. if all of them are initials and the name still does not fit, trailing components
//!    are dropped (the first initial always stays), and any position this frees is given
//!    back to the first component so the field stays full (when every component was a
//!    single letter to begin with there is nothing to give back, and the field ends with
//!    one filler: the only case where a truncated name does not fill its field);
//! 3. only when the primary identifier leaves no room for `<<` and one initial is the
//!    primary identifier itself shortened, the same way (its last components first), to
//!    `width − 3` characters followed by `<<` and the first initial; or to the full width
//!    when there is no secondary identifier.

/// The most components a secondary identifier can have: at most half of
/// [`crate::translit::NAME_CHARS_MAX`], since components are separated by one `<`.
const COMPONENTS_MAX: usize = crate::translit::NAME_CHARS_MAX / 2 + 1;

/// Writes the name field into `out` (its length is the field width). Returns whether the
/// name had to be truncated. `primary` must not be empty; both are transliterated
/// (letters and single `<` separators).
pub(crate) fn compose(primary: &[u8], secondary: &[u8], out: &mut [u8]) -> bool {
    let width = out.len();
    out.fill(b'<');
    let full = if secondary.is_empty() {
        primary.len()
    } else {
        primary.len() + 2 + secondary.len()
    };
    if full <= width {
        out[..primary.len()].copy_from_slice(primary);
        if !secondary.is_empty() {
            out[primary.len() + 2..full].copy_from_slice(secondary);
        }
        return false;
    }
    if secondary.is_empty() {
        fit_secondary(primary, out, width);
        return true;
    }
    if primary.len() + 3 > width {
        fit_secondary(primary, &mut out[..width - 3], width - 3);
        out[width - 1] = secondary[0];
        return true;
    }
    let avail = width - primary.len() - 2;
    out[..primary.len()].copy_from_slice(primary);
    fit_secondary(secondary, &mut out[primary.len() + 2..], avail);
    true
}

/// Writes the secondary identifier shortened to exactly `avail` characters when possible.
fn fit_secondary(secondary: &[u8], out: &mut [u8], avail: usize) {
    let mut starts = [0usize; COMPONENTS_MAX];
    let mut orig = [0usize; COMPONENTS_MAX];
    let mut n = 0usize;
    for part in secondary.split(|&c| c == b'<') {
        if n == COMPONENTS_MAX {
            break;
        }
        starts[n] = part.as_ptr() as usize - secondary.as_ptr() as usize;
        orig[n] = part.len();
        n += 1;
    }
    let mut lens = orig;
    let mut total = orig[..n].iter().sum::<usize>() + n.saturating_sub(1);
    for i in (0..n).rev() {
        let cut = (total.saturating_sub(avail)).min(lens[i] - 1);
        lens[i] -= cut;
        total -= cut;
    }
    while total > avail && n > 1 {
        total -= lens[n - 1] + 1;
        n -= 1;
    }
    for i in 0..n {
        let grow = (avail - total).min(orig[i] - lens[i]);
        lens[i] += grow;
        total += grow;
    }
    let mut at = 0usize;
    for i in 0..n {
        if i > 0 {
            at += 1; // the `<` already in `out`
        }
        out[at..at + lens[i]].copy_from_slice(&secondary[starts[i]..starts[i] + lens[i]]);
        at += lens[i];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(primary: &str, secondary: &str, width: usize, expected: &str, truncated: bool) {
        let mut out = vec![0u8; width];
        let t = compose(primary.as_bytes(), secondary.as_bytes(), &mut out);
        assert_eq!(
            std::str::from_utf8(&out).ok(),
            Some(expected),
            "{primary} / {secondary}"
        );
        assert_eq!(t, truncated, "{primary} / {secondary}");
    }

    #[test]
    fn fits() {
        check(
            "ERIKSSON",
            "ANNA<MARIA",
            39,
            "ERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<",
            false,
        );
        check(
            "ERIKSSON",
            "ANNA<MARIA",
            30,
            "ERIKSSON<<ANNA<MARIA<<<<<<<<<<",
            false,
        );
        check("ERIKSSON", "", 12, "ERIKSSON<<<<", false);
        // Exactly the width: not cut.
        check("ABCDEFGH", "IJKLMNOPQR", 20, "ABCDEFGH<<IJKLMNOPQR", false);
    }

    #[test]
    fn truncates_secondary_from_the_last_component() {
        check(
            "NILAVADHANANANDA",
            "CHAYAPA<DEJTHAMRONG<KRASUANG",
            39,
            "NILAVADHANANANDA<<CHAYAPA<DEJTHAMRONG<K",
            true,
        );
        check("ERIKSSON", "ANNA<MARIA", 16, "ERIKSSON<<ANNA<M", true);
        check("ERIKSSON", "ANNA<MARIA", 15, "ERIKSSON<<ANN<M", true);
        check("ERIKSSON", "ANNA<MARIA", 13, "ERIKSSON<<A<M", true);
    }

    #[test]
    fn drops_components_keeping_the_field_full() {
        // Initials A<B<C<D need 7; with 6 available, drop D and regrow the first.
        check("XX", "ANNA<BEA<CARL<DAN", 10, "XX<<AN<B<C", true);
        check("XX", "A<B<C<D", 9, "XX<<A<B<C", true);
        check("XX", "ANNA<MARIA", 5, "XX<<A", true);
    }

    #[test]
    fn truncates_a_long_primary() {
        check("ABCDEFGHIJKL", "ANNA", 10, "ABCDEFG<<A", true);
        check("ABCDEFGHIJKL", "", 10, "ABCDEFGHIJ", true);
        // A cut falling on a separator would leave the field looking complete.
        check("ABCDEFGHI<JKL", "", 10, "ABCDEFGH<J", true);
        check("ABCDEFGHI<JKL", "ANNA", 10, "ABCDE<J<<A", true);
    }
}

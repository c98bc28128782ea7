//! The portrait and signature images a clerk uploads at the counter, checked
//! before anything keeps them: only JPEG or PNG (told by their magic bytes,
//! never by a content-type header), byte size and header dimensions refused
//! before any pixel is decoded, pixels decoded under `image::Limits` so a
//! decompression bomb cannot exhaust memory, then re-encoded as a plain RGB
//! PNG so that no metadata (EXIF with GPS, comments, ICC profiles) survives.
//!
//! Layout: the limits as named constants (portrait, then signature, then the
//! decoder); [`check_portrait`] and [`check_signature`], both thin over one
//! private pipeline driven by a [`Spec`]; [`ImageProblem`], whose messages
//! say what to fix with numbers and never personal data; tests at the end.

use crate::i18n::Lang;
use image::{
    DynamicImage, ImageDecoder, ImageEncoder, ImageFormat, ImageReader, Limits, RgbImage,
    metadata::Orientation,
};
use sha2::{Digest, Sha256};
use std::io::Cursor;

// --- Portrait ---------------------------------------------------------------

/// Largest portrait file accepted. A 2000 × 2500 JPEG of a face on a plain
/// background at quality 90 is about 1 MiB; twice that is room for a counter
/// camera's settings, and more is not a cropped passport photo.
pub const PORTRAIT_BYTES_MAX: usize = 2 * 1024 * 1024;
/// Smallest portrait file accepted: below 4 KiB a 420 × 525 photo cannot
/// hold a face in usable detail (an empty or broken upload is smaller).
pub const PORTRAIT_BYTES_MIN: usize = 4 * 1024;
/// Narrowest portrait. ISO/IEC 19794-5 (as ICAO Doc 9303 part 3 applies it)
/// wants at least 90 px between the eye centres, so a head about 180 px wide;
/// 35 mm at 300 dpi is 413 px. 420 px satisfies both.
pub const PORTRAIT_WIDTH_MIN: u32 = 420;
/// Shortest portrait: 45 mm at 300 dpi is 531 px; 525 px is the 4:5 partner
/// of [`PORTRAIT_WIDTH_MIN`] (the ratio in the middle of the accepted range).
pub const PORTRAIT_HEIGHT_MIN: u32 = 525;
/// Widest portrait: a bigger frame is an uncropped camera image, and the
/// data page and chip (DG2) need far fewer pixels.
pub const PORTRAIT_WIDTH_MAX: u32 = 2000;
/// Tallest portrait; with [`PORTRAIT_WIDTH_MAX`] it bounds the decoded image
/// to 5 megapixels (20 MB as RGBA8, 40 MB as 16-bit RGBA).
pub const PORTRAIT_HEIGHT_MAX: u32 = 2500;
/// Narrowest width/height ratio, in thousandths. The photo is 35 × 45 mm
/// (0.778); 0.70 allows a slightly taller crop.
pub const PORTRAIT_ASPECT_PERMILLE_MIN: u32 = 700;
/// Widest width/height ratio, in thousandths: 0.85 allows a slightly wider
/// crop than 35 × 45 mm, never a square or landscape frame.
pub const PORTRAIT_ASPECT_PERMILLE_MAX: u32 = 850;
/// Least standard deviation of brightness (0–255 levels) for a portrait. A
/// blank, covered-lens or flat-colour frame stays below 4 even with sensor
/// noise and JPEG artefacts; a face on a plain background is well above 20.
pub const PORTRAIT_LUMA_STDDEV_MIN: f64 = 12.0;

// --- Signature --------------------------------------------------------------

/// Largest signature file: a signature pad's PNG is a few tens of KiB; a
/// 2000 × 1000 scan as JPEG stays under this.
pub const SIGNATURE_BYTES_MAX: usize = 512 * 1024;
/// Smallest signature file: smaller is not an image of a signature (a tiny
/// but well-formed blank image is caught by the ink check instead).
pub const SIGNATURE_BYTES_MIN: usize = 64;
/// Narrowest signature: the data page prints the signature about 35 mm wide;
/// 200 px is 145 dpi at that size, the least that prints legibly.
pub const SIGNATURE_WIDTH_MIN: u32 = 200;
/// Widest signature: pads give 500–1200 px; 2000 px covers a 300 dpi scan.
pub const SIGNATURE_WIDTH_MAX: u32 = 2000;
/// Shortest signature: strokes need some height to be legible.
pub const SIGNATURE_HEIGHT_MIN: u32 = 50;
/// Tallest signature; with [`SIGNATURE_WIDTH_MAX`] it bounds decoding to 2
/// megapixels.
pub const SIGNATURE_HEIGHT_MAX: u32 = 1000;
/// Narrowest width/height ratio, in thousandths: a signature is wider than
/// tall (the data page's box is about 3.5 : 1).
pub const SIGNATURE_ASPECT_PERMILLE_MIN: u32 = 1500;
/// Widest width/height ratio, in thousandths: a thin strip beyond 8 : 1 is a
/// cropping mistake.
pub const SIGNATURE_ASPECT_PERMILLE_MAX: u32 = 8000;
/// Ink: a pixel counts as ink when its brightness differs from the
/// background (the median brightness) by at least this many levels.
pub const SIGNATURE_INK_CONTRAST_MIN: u8 = 64;
/// Least share of ink pixels, in ten-thousandths (0.2 %): a 600 × 200
/// signature's strokes cover several percent; a blank pad with a stray dot
/// does not reach this.
pub const SIGNATURE_INK_PER_10K_MIN: u64 = 20;

// --- Decoder ----------------------------------------------------------------

/// Most memory the decoder may allocate. The dimension limits already bound
/// the output (5 Mpx × 8 bytes = 40 MB at most); this also bounds what a
/// decoder holds on the side (PNG text chunks, ICC profiles, JPEG buffers).
pub const DECODE_ALLOC_BYTES_MAX: u64 = 64 * 1024 * 1024;

const PNG_MAGIC: &[u8] = b"\x89PNG\r\n\x1a\n";
const JPEG_MAGIC: &[u8] = &[0xFF, 0xD8, 0xFF];
/// End-of-image marker. The JPEG decoder fills a truncated scan with grey
/// rather than failing, so a complete file is told by this marker at its
/// end (after any zero padding some writers add).
const JPEG_EOI: &[u8] = &[0xFF, 0xD9];

/// Which image a problem is about, so messages name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageKind {
    Portrait,
    Signature,
}

impl ImageKind {
    fn es(self) -> &'static str {
        match self {
            ImageKind::Portrait => "La foto",
            ImageKind::Signature => "La imagen de la firma",
        }
    }
    fn en(self) -> &'static str {
        match self {
            ImageKind::Portrait => "The photo",
            ImageKind::Signature => "The signature image",
        }
    }
}

/// Why an uploaded image was refused. Every variant carries only numbers, so
/// messages and logs never hold personal data.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ImageProblem {
    #[error("image file too small: {bytes} bytes, at least {min}")]
    FileTooSmall {
        kind: ImageKind,
        bytes: usize,
        min: usize,
    },
    #[error("image file too large: {bytes} bytes, at most {max}")]
    FileTooLarge {
        kind: ImageKind,
        bytes: usize,
        max: usize,
    },
    /// The magic bytes are neither JPEG nor PNG (GIF, WebP, BMP, HEIC, text...).
    #[error("not a JPEG or PNG file")]
    NotJpegOrPng { kind: ImageKind },
    /// The header or pixels cannot be read: truncated or corrupt.
    #[error("image cannot be read (truncated or corrupt)")]
    Unreadable { kind: ImageKind },
    #[error("image is {width}x{height}, at least {min_width}x{min_height} needed")]
    TooFewPixels {
        kind: ImageKind,
        width: u32,
        height: u32,
        min_width: u32,
        min_height: u32,
    },
    #[error("image is {width}x{height}, at most {max_width}x{max_height} allowed")]
    TooManyPixels {
        kind: ImageKind,
        width: u32,
        height: u32,
        max_width: u32,
        max_height: u32,
    },
    /// Width/height outside the range (in thousandths).
    #[error("image is {width}x{height}, ratio outside {min_permille}-{max_permille} per mille")]
    WrongAspect {
        kind: ImageKind,
        width: u32,
        height: u32,
        min_permille: u32,
        max_permille: u32,
    },
    /// Essentially one colour: nothing photographed, nothing signed.
    #[error("image is essentially blank")]
    Blank { kind: ImageKind },
    /// Re-encoding failed; cannot happen for a decoded image, kept so the
    /// pipeline has no panic path.
    #[error("image could not be processed")]
    Unprocessable { kind: ImageKind },
}

/// `1234` thousandths as `1,23` (Spanish) or `1.23` (English).
fn ratio(permille: u32, lang: Lang) -> String {
    let s = format!("{}.{:02}", permille / 1000, (permille % 1000) / 10);
    match lang {
        Lang::Es => s.replace('.', ","),
        Lang::En => s,
    }
}

/// Width/height in thousandths, rounded down.
fn aspect_permille(width: u32, height: u32) -> u32 {
    let p = u64::from(width) * 1000 / u64::from(height.max(1));
    u32::try_from(p).unwrap_or(u32::MAX)
}

fn kib(bytes: usize) -> String {
    format!("{}", bytes.div_ceil(1024))
}

impl ImageProblem {
    /// A stable code for machines and tests.
    pub fn code(&self) -> &'static str {
        match self {
            ImageProblem::FileTooSmall { .. } => "image_file_too_small",
            ImageProblem::FileTooLarge { .. } => "image_file_too_large",
            ImageProblem::NotJpegOrPng { .. } => "image_not_jpeg_or_png",
            ImageProblem::Unreadable { .. } => "image_unreadable",
            ImageProblem::TooFewPixels { .. } => "image_too_few_pixels",
            ImageProblem::TooManyPixels { .. } => "image_too_many_pixels",
            ImageProblem::WrongAspect { .. } => "image_wrong_aspect",
            ImageProblem::Blank { .. } => "image_blank",
            ImageProblem::Unprocessable { .. } => "image_unprocessable",
        }
    }

    /// Which image the problem is about.
    pub fn kind(&self) -> ImageKind {
        match self {
            ImageProblem::FileTooSmall { kind, .. }
            | ImageProblem::FileTooLarge { kind, .. }
            | ImageProblem::NotJpegOrPng { kind }
            | ImageProblem::Unreadable { kind }
            | ImageProblem::TooFewPixels { kind, .. }
            | ImageProblem::TooManyPixels { kind, .. }
            | ImageProblem::WrongAspect { kind, .. }
            | ImageProblem::Blank { kind }
            | ImageProblem::Unprocessable { kind } => *kind,
        }
    }

    /// What to fix, in the person's language, with the numbers involved.
    pub fn message(&self, lang: Lang) -> String {
        let kind = self.kind();
        let (it_es, it_en) = (kind.es(), kind.en());
        match (self, lang) {
            (ImageProblem::FileTooSmall { bytes, min, .. }, Lang::Es) => format!(
                "{it_es} es demasiado pequeña: pesa {bytes} bytes y debe pesar al menos {min}. Vuelva a tomarla o escanearla."
            ),
            (ImageProblem::FileTooSmall { bytes, min, .. }, Lang::En) => format!(
                "{it_en} is too small: it is {bytes} bytes and must be at least {min}. Take or scan it again."
            ),
            (ImageProblem::FileTooLarge { bytes, max, .. }, Lang::Es) => format!(
                "{it_es} pesa demasiado: {} KiB; el máximo es {} KiB. Redúzcala o guárdela como JPEG.",
                kib(*bytes),
                kib(*max)
            ),
            (ImageProblem::FileTooLarge { bytes, max, .. }, Lang::En) => format!(
                "{it_en} is too large: {} KiB; the maximum is {} KiB. Reduce it or save it as JPEG.",
                kib(*bytes),
                kib(*max)
            ),
            (ImageProblem::NotJpegOrPng { .. }, Lang::Es) => {
                format!("{it_es} debe ser un archivo JPEG o PNG.")
            }
            (ImageProblem::NotJpegOrPng { .. }, Lang::En) => {
                format!("{it_en} must be a JPEG or PNG file.")
            }
            (ImageProblem::Unreadable { .. }, Lang::Es) => format!(
                "{it_es} no se puede leer: el archivo está incompleto o dañado. Envíela de nuevo."
            ),
            (ImageProblem::Unreadable { .. }, Lang::En) => format!(
                "{it_en} cannot be read: the file is incomplete or damaged. Send it again."
            ),
            (
                ImageProblem::TooFewPixels {
                    width,
                    height,
                    min_width,
                    min_height,
                    ..
                },
                Lang::Es,
            ) => format!(
                "{it_es} debe medir al menos {min_width} × {min_height} píxeles; la enviada mide {width} × {height}."
            ),
            (
                ImageProblem::TooFewPixels {
                    width,
                    height,
                    min_width,
                    min_height,
                    ..
                },
                Lang::En,
            ) => format!(
                "{it_en} must be at least {min_width} × {min_height} pixels; the one sent is {width} × {height}."
            ),
            (
                ImageProblem::TooManyPixels {
                    width,
                    height,
                    max_width,
                    max_height,
                    ..
                },
                Lang::Es,
            ) => format!(
                "{it_es} debe medir como máximo {max_width} × {max_height} píxeles; la enviada mide {width} × {height}. Recórtela o redúzcala."
            ),
            (
                ImageProblem::TooManyPixels {
                    width,
                    height,
                    max_width,
                    max_height,
                    ..
                },
                Lang::En,
            ) => format!(
                "{it_en} must be at most {max_width} × {max_height} pixels; the one sent is {width} × {height}. Crop or reduce it."
            ),
            (
                ImageProblem::WrongAspect {
                    width,
                    height,
                    min_permille,
                    max_permille,
                    ..
                },
                lang,
            ) => {
                let got = ratio(aspect_permille(*width, *height), lang);
                let (lo, hi) = (ratio(*min_permille, lang), ratio(*max_permille, lang));
                match (kind, lang) {
                    (ImageKind::Portrait, Lang::Es) => format!(
                        "La foto debe ser vertical, como 35 × 45 mm: ancho entre alto de {lo} a {hi}; la enviada mide {width} × {height} ({got}). Recórtela."
                    ),
                    (ImageKind::Portrait, Lang::En) => format!(
                        "The photo must be upright, like 35 × 45 mm: width over height from {lo} to {hi}; the one sent is {width} × {height} ({got}). Crop it."
                    ),
                    (ImageKind::Signature, Lang::Es) => format!(
                        "La imagen de la firma debe ser apaisada: ancho entre alto de {lo} a {hi}; la enviada mide {width} × {height} ({got}). Recórtela."
                    ),
                    (ImageKind::Signature, Lang::En) => format!(
                        "The signature image must be landscape: width over height from {lo} to {hi}; the one sent is {width} × {height} ({got}). Crop it."
                    ),
                }
            }
            (ImageProblem::Blank { .. }, Lang::Es) => match kind {
                ImageKind::Portrait => "La foto parece vacía (casi de un solo color). Vuelva a tomarla con el rostro a la vista.".to_string(),
                ImageKind::Signature => "La firma parece vacía: no se ven trazos. Pida que firme de nuevo.".to_string(),
            },
            (ImageProblem::Blank { .. }, Lang::En) => match kind {
                ImageKind::Portrait => "The photo looks blank (nearly one colour). Take it again with the face in view.".to_string(),
                ImageKind::Signature => "The signature looks blank: no strokes can be seen. Ask for it to be signed again.".to_string(),
            },
            (ImageProblem::Unprocessable { .. }, Lang::Es) => {
                format!("{it_es} no se pudo procesar. Inténtelo de nuevo.")
            }
            (ImageProblem::Unprocessable { .. }, Lang::En) => {
                format!("{it_en} could not be processed. Try again.")
            }
        }
    }
}

/// A checked passport portrait, re-encoded as an RGB PNG without metadata.
/// Only [`check_portrait`] makes one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Portrait {
    width: u32,
    height: u32,
    png: Vec<u8>,
    sha256_hex: String,
}

impl Portrait {
    pub fn width(&self) -> u32 {
        self.width
    }
    pub fn height(&self) -> u32 {
        self.height
    }
    /// The re-encoded PNG (8-bit RGB, no ancillary chunks but what the
    /// encoder writes itself).
    pub fn png(&self) -> &[u8] {
        &self.png
    }
    pub fn into_png(self) -> Vec<u8> {
        self.png
    }
    /// SHA-256 of [`Self::png`], lower-case hex (64 characters).
    pub fn sha256_hex(&self) -> &str {
        &self.sha256_hex
    }
}

/// A checked signature image, re-encoded as an RGB PNG without metadata
/// (transparency flattened onto white). Only [`check_signature`] makes one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignatureImage {
    width: u32,
    height: u32,
    png: Vec<u8>,
    sha256_hex: String,
}

impl SignatureImage {
    pub fn width(&self) -> u32 {
        self.width
    }
    pub fn height(&self) -> u32 {
        self.height
    }
    pub fn png(&self) -> &[u8] {
        &self.png
    }
    pub fn into_png(self) -> Vec<u8> {
        self.png
    }
    /// SHA-256 of [`Self::png`], lower-case hex (64 characters).
    pub fn sha256_hex(&self) -> &str {
        &self.sha256_hex
    }
}

/// How "not blank" is judged.
#[derive(Clone, Copy, Debug)]
enum Content {
    /// Brightness standard deviation at least this.
    LumaStddevMin(f64),
    /// At least this share (per ten thousand) of pixels differ from the
    /// median brightness by at least this contrast.
    InkMin { contrast: u8, per_10k: u64 },
}

/// The limits of one kind of image.
#[derive(Clone, Copy, Debug)]
struct Spec {
    kind: ImageKind,
    bytes_min: usize,
    bytes_max: usize,
    width_min: u32,
    height_min: u32,
    width_max: u32,
    height_max: u32,
    aspect_permille_min: u32,
    aspect_permille_max: u32,
    content: Content,
}

const PORTRAIT: Spec = Spec {
    kind: ImageKind::Portrait,
    bytes_min: PORTRAIT_BYTES_MIN,
    bytes_max: PORTRAIT_BYTES_MAX,
    width_min: PORTRAIT_WIDTH_MIN,
    height_min: PORTRAIT_HEIGHT_MIN,
    width_max: PORTRAIT_WIDTH_MAX,
    height_max: PORTRAIT_HEIGHT_MAX,
    aspect_permille_min: PORTRAIT_ASPECT_PERMILLE_MIN,
    aspect_permille_max: PORTRAIT_ASPECT_PERMILLE_MAX,
    content: Content::LumaStddevMin(PORTRAIT_LUMA_STDDEV_MIN),
};

const SIGNATURE: Spec = Spec {
    kind: ImageKind::Signature,
    bytes_min: SIGNATURE_BYTES_MIN,
    bytes_max: SIGNATURE_BYTES_MAX,
    width_min: SIGNATURE_WIDTH_MIN,
    height_min: SIGNATURE_HEIGHT_MIN,
    width_max: SIGNATURE_WIDTH_MAX,
    height_max: SIGNATURE_HEIGHT_MAX,
    aspect_permille_min: SIGNATURE_ASPECT_PERMILLE_MIN,
    aspect_permille_max: SIGNATURE_ASPECT_PERMILLE_MAX,
    content: Content::InkMin {
        contrast: SIGNATURE_INK_CONTRAST_MIN,
        per_10k: SIGNATURE_INK_PER_10K_MIN,
    },
};

/// Checks an uploaded passport portrait and returns it re-encoded.
///
/// In order, each step refusing before the next costs anything: byte size
/// ([`PORTRAIT_BYTES_MIN`]..=[`PORTRAIT_BYTES_MAX`]), JPEG/PNG magic bytes,
/// header dimensions (after the EXIF orientation) against the pixel and
/// aspect limits, a pixel decode under [`DECODE_ALLOC_BYTES_MAX`], the
/// blank check ([`PORTRAIT_LUMA_STDDEV_MIN`]), and the PNG re-encode.
pub fn check_portrait(bytes: &[u8]) -> Result<Portrait, ImageProblem> {
    let c = check(bytes, &PORTRAIT)?;
    Ok(Portrait {
        width: c.width,
        height: c.height,
        png: c.png,
        sha256_hex: c.sha256_hex,
    })
}

/// Checks an uploaded signature image (signature pad or scan) and returns it
/// re-encoded, transparency flattened onto white. Same steps as
/// [`check_portrait`] with the `SIGNATURE_*` limits; "not blank" means at
/// least [`SIGNATURE_INK_PER_10K_MIN`] ten-thousandths of the pixels are ink.
pub fn check_signature(bytes: &[u8]) -> Result<SignatureImage, ImageProblem> {
    let c = check(bytes, &SIGNATURE)?;
    Ok(SignatureImage {
        width: c.width,
        height: c.height,
        png: c.png,
        sha256_hex: c.sha256_hex,
    })
}

struct Checked {
    width: u32,
    height: u32,
    png: Vec<u8>,
    sha256_hex: String,
}

fn sniff(bytes: &[u8]) -> Option<ImageFormat> {
    if bytes.starts_with(PNG_MAGIC) {
        Some(ImageFormat::Png)
    } else if bytes.starts_with(JPEG_MAGIC) {
        Some(ImageFormat::Jpeg)
    } else {
        None
    }
}

/// Limits for reading the header only: no dimension limit (so the caller
/// learns the real dimensions and can say them), but a bound on what the
/// header parse may allocate (PNG text chunks before the first IDAT).
fn header_limits() -> Limits {
    let mut l = Limits::default();
    l.max_alloc = Some(DECODE_ALLOC_BYTES_MAX);
    l
}

fn decode_limits(spec: &Spec) -> Limits {
    // The header may declare its axes swapped (EXIF orientation), so both
    // axes get the larger bound; the displayed dimensions were checked
    // exactly before this.
    let side_max = spec.width_max.max(spec.height_max);
    let mut l = Limits::default();
    l.max_image_width = Some(side_max);
    l.max_image_height = Some(side_max);
    l.max_alloc = Some(DECODE_ALLOC_BYTES_MAX);
    l
}

fn swaps_axes(o: Orientation) -> bool {
    match o {
        Orientation::Rotate90
        | Orientation::Rotate270
        | Orientation::Rotate90FlipH
        | Orientation::Rotate270FlipH => true,
        Orientation::NoTransforms
        | Orientation::Rotate180
        | Orientation::FlipHorizontal
        | Orientation::FlipVertical => false,
    }
}

fn check(bytes: &[u8], spec: &Spec) -> Result<Checked, ImageProblem> {
    let kind = spec.kind;
    if bytes.len() > spec.bytes_max {
        return Err(ImageProblem::FileTooLarge {
            kind,
            bytes: bytes.len(),
            max: spec.bytes_max,
        });
    }
    if bytes.len() < spec.bytes_min {
        // Tell a tiny non-image apart from a tiny image: the first is the
        // more useful message.
        if sniff(bytes).is_none() {
            return Err(ImageProblem::NotJpegOrPng { kind });
        }
        return Err(ImageProblem::FileTooSmall {
            kind,
            bytes: bytes.len(),
            min: spec.bytes_min,
        });
    }
    let format = sniff(bytes).ok_or(ImageProblem::NotJpegOrPng { kind })?;
    let unreadable = |_| ImageProblem::Unreadable { kind };
    if format == ImageFormat::Jpeg {
        let end = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        if !bytes[..end].ends_with(JPEG_EOI) {
            return Err(ImageProblem::Unreadable { kind });
        }
    }

    // 1. The header: dimensions and orientation, no pixels.
    let mut header = ImageReader::with_format(Cursor::new(bytes), format);
    header.limits(header_limits());
    let mut decoder = header.into_decoder().map_err(unreadable)?;
    let (stored_w, stored_h) = decoder.dimensions();
    // A malformed EXIF block is no reason to refuse the pixels.
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    drop(decoder);
    let (width, height) = if swaps_axes(orientation) {
        (stored_h, stored_w)
    } else {
        (stored_w, stored_h)
    };
    if width > spec.width_max || height > spec.height_max {
        return Err(ImageProblem::TooManyPixels {
            kind,
            width,
            height,
            max_width: spec.width_max,
            max_height: spec.height_max,
        });
    }
    if width < spec.width_min || height < spec.height_min {
        return Err(ImageProblem::TooFewPixels {
            kind,
            width,
            height,
            min_width: spec.width_min,
            min_height: spec.height_min,
        });
    }
    // Exact integer comparison of width/height against the bounds.
    let w1000 = u64::from(width) * 1000;
    if w1000 < u64::from(spec.aspect_permille_min) * u64::from(height)
        || w1000 > u64::from(spec.aspect_permille_max) * u64::from(height)
    {
        return Err(ImageProblem::WrongAspect {
            kind,
            width,
            height,
            min_permille: spec.aspect_permille_min,
            max_permille: spec.aspect_permille_max,
        });
    }

    // 2. The pixels, under limits.
    let mut limits = decode_limits(spec);
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    reader.limits(limits.clone());
    let decoder = reader.into_decoder().map_err(unreadable)?;
    if decoder.dimensions() != (stored_w, stored_h) {
        return Err(ImageProblem::Unreadable { kind });
    }
    limits.reserve(decoder.total_bytes()).map_err(unreadable)?;
    let mut img = DynamicImage::from_decoder(decoder).map_err(unreadable)?;
    img.apply_orientation(orientation);
    let rgb = flatten_on_white(&img);
    drop(img);

    // 3. Something is there.
    let luma = luma_of(&rgb);
    let filled = match spec.content {
        Content::LumaStddevMin(min) => luma_stddev(&luma) >= min,
        Content::InkMin { contrast, per_10k } => ink_per_10k(&luma, contrast) >= per_10k,
    };
    if !filled {
        return Err(ImageProblem::Blank { kind });
    }

    // 4. Re-encode: only pixels survive.
    let mut png = Vec::new();
    image::codecs::png::PngEncoder::new(&mut png)
        .write_image(rgb.as_raw(), width, height, image::ExtendedColorType::Rgb8)
        .map_err(|_| ImageProblem::Unprocessable { kind })?;
    let sha256_hex = hex(&Sha256::digest(&png));
    Ok(Checked {
        width,
        height,
        png,
        sha256_hex,
    })
}

/// 8-bit RGB with any transparency composited onto white (a signature pad's
/// transparent background becomes paper, its strokes stay ink).
fn flatten_on_white(img: &DynamicImage) -> RgbImage {
    if !img.color().has_alpha() {
        return img.to_rgb8();
    }
    let rgba = img.to_rgba8();
    let mut out = RgbImage::new(rgba.width(), rgba.height());
    for (o, p) in out.pixels_mut().zip(rgba.pixels()) {
        let a = u32::from(p.0[3]);
        for i in 0..3 {
            let c = u32::from(p.0[i]);
            // (c·a + 255·(255 − a)) / 255, rounded; at most 255.
            o.0[i] = u8::try_from((c * a + 255 * (255 - a) + 127) / 255).unwrap_or(u8::MAX);
        }
    }
    out
}

/// Rec. 601 brightness of each pixel.
fn luma_of(rgb: &RgbImage) -> Vec<u8> {
    rgb.pixels()
        .map(|p| {
            let [r, g, b] = p.0;
            let y = (299 * u32::from(r) + 587 * u32::from(g) + 114 * u32::from(b) + 500) / 1000;
            u8::try_from(y).unwrap_or(u8::MAX)
        })
        .collect()
}

fn luma_stddev(luma: &[u8]) -> f64 {
    if luma.is_empty() {
        return 0.0;
    }
    let n = luma.len() as f64;
    let (sum, sum_sq) = luma.iter().fold((0u64, 0u64), |(s, q), &y| {
        let y = u64::from(y);
        (s + y, q + y * y)
    });
    let mean = sum as f64 / n;
    let var = (sum_sq as f64 / n - mean * mean).max(0.0);
    var.sqrt()
}

/// Pixels differing from the median brightness by at least `contrast`, per
/// ten thousand pixels.
fn ink_per_10k(luma: &[u8], contrast: u8) -> u64 {
    if luma.is_empty() {
        return 0;
    }
    let mut hist = [0u64; 256];
    for &y in luma {
        hist[usize::from(y)] += 1;
    }
    let half = luma.len() as u64 / 2;
    let mut seen = 0u64;
    let mut median = 0u8;
    for (level, &count) in hist.iter().enumerate() {
        seen += count;
        if seen > half {
            median = u8::try_from(level).unwrap_or(u8::MAX);
            break;
        }
    }
    let ink: u64 = luma
        .iter()
        .filter(|&&y| y.abs_diff(median) >= contrast)
        .count() as u64;
    ink * 10_000 / luma.len() as u64
}

use crate::crypto::hex;

#[cfg(test)]
mod tests {
    use super::*;
    use image::codecs::jpeg::JpegEncoder;
    use image::codecs::png::PngEncoder;
    use image::{Rgb, Rgba, RgbaImage};

    /// A deterministic pseudo-random sequence (no test dependency on rand).
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self) -> u8 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (self.0 >> 56) as u8
        }
    }

    /// A portrait-like picture: a light background with grain, a darker oval
    /// "face" with texture in the middle.
    fn portrait_pixels(w: u32, h: u32) -> RgbImage {
        let mut rng = Lcg(7);
        RgbImage::from_fn(w, h, |x, y| {
            let (cx, cy) = (w as f64 / 2.0, h as f64 * 0.45);
            let (rx, ry) = (w as f64 * 0.3, h as f64 * 0.35);
            let d = ((x as f64 - cx) / rx).powi(2) + ((y as f64 - cy) / ry).powi(2);
            let n = rng.next() / 8;
            if d < 1.0 {
                Rgb([160 + n, 110 + n, 90 + n])
            } else {
                Rgb([220 + n / 2, 225 + n / 2, 230 + n / 2])
            }
        })
    }

    fn png_of(img: &RgbImage) -> Vec<u8> {
        let mut v = Vec::new();
        PngEncoder::new(&mut v)
            .write_image(
                img.as_raw(),
                img.width(),
                img.height(),
                image::ExtendedColorType::Rgb8,
            )
            .unwrap();
        v
    }

    fn png_rgba(img: &RgbaImage) -> Vec<u8> {
        let mut v = Vec::new();
        PngEncoder::new(&mut v)
            .write_image(
                img.as_raw(),
                img.width(),
                img.height(),
                image::ExtendedColorType::Rgba8,
            )
            .unwrap();
        v
    }

    fn jpeg_of(img: &RgbImage) -> Vec<u8> {
        let mut v = Vec::new();
        JpegEncoder::new_with_quality(&mut v, 85)
            .write_image(
                img.as_raw(),
                img.width(),
                img.height(),
                image::ExtendedColorType::Rgb8,
            )
            .unwrap();
        v
    }

    fn code<T>(r: Result<T, ImageProblem>) -> &'static str {
        match r {
            Ok(_) => "ok",
            Err(e) => e.code(),
        }
    }

    #[test]
    fn a_good_portrait_is_accepted_as_png_and_jpeg() {
        for bytes in [
            png_of(&portrait_pixels(600, 750)),
            jpeg_of(&portrait_pixels(600, 750)),
        ] {
            let p = check_portrait(&bytes).unwrap();
            assert_eq!((p.width(), p.height()), (600, 750));
            assert!(p.png().starts_with(PNG_MAGIC));
            assert_eq!(p.sha256_hex().len(), 64);
            assert_eq!(p.sha256_hex(), hex(&Sha256::digest(p.png())));
            let back = image::load_from_memory(p.png()).unwrap();
            assert_eq!((back.width(), back.height()), (600, 750));
        }
    }

    #[test]
    fn portrait_limits_at_their_edges() {
        // (width, height, expected code)
        let cases = [
            (420, 525, "ok"),
            (419, 525, "image_too_few_pixels"),
            (420, 524, "image_too_few_pixels"),
            (300, 400, "image_too_few_pixels"),
            (2000, 2500, "ok"),
            (2001, 2500, "image_too_many_pixels"),
            (1800, 2501, "image_too_many_pixels"),
            (700, 1000, "ok"), // 0.70
            (699, 1000, "image_wrong_aspect"),
            (850, 1000, "ok"), // 0.85
            (851, 1000, "image_wrong_aspect"),
            (800, 800, "image_wrong_aspect"), // square
            (900, 600, "image_wrong_aspect"), // landscape
        ];
        for (w, h, want) in cases {
            let got = code(check_portrait(&jpeg_of(&portrait_pixels(w, h))));
            assert_eq!(got, want, "{w}x{h}");
        }
    }

    #[test]
    fn messages_carry_the_numbers() {
        let e = check_portrait(&jpeg_of(&portrait_pixels(300, 400))).unwrap_err();
        assert_eq!(
            e.message(Lang::Es),
            "La foto debe medir al menos 420 × 525 píxeles; la enviada mide 300 × 400."
        );
        assert_eq!(
            e.message(Lang::En),
            "The photo must be at least 420 × 525 pixels; the one sent is 300 × 400."
        );
        let e = check_portrait(&jpeg_of(&portrait_pixels(800, 800))).unwrap_err();
        assert!(
            e.message(Lang::Es).contains("0,70 a 0,85"),
            "{}",
            e.message(Lang::Es)
        );
        assert!(e.message(Lang::Es).contains("(1,00)"));
        assert!(e.message(Lang::En).contains("0.70 to 0.85"));
        let e = check_portrait(&vec![0xFF; PORTRAIT_BYTES_MAX + 1]).unwrap_err();
        assert!(
            e.message(Lang::Es).contains("2048 KiB"),
            "{}",
            e.message(Lang::Es)
        );
    }

    #[test]
    fn a_blank_portrait_is_refused() {
        let mut rng = Lcg(1);
        // Flat grey with sensor-like noise of ±2 levels.
        let flat = RgbImage::from_fn(600, 750, |_, _| {
            let n = rng.next() % 5;
            Rgb([128 + n, 128 + n, 128 + n])
        });
        assert_eq!(code(check_portrait(&jpeg_of(&flat))), "image_blank");
        assert_eq!(code(check_portrait(&png_of(&flat))), "image_blank");
    }

    #[test]
    fn other_formats_and_text_are_refused_by_their_magic() {
        let mut gif = b"GIF89a".to_vec();
        let mut webp = b"RIFF\x00\x10\x00\x00WEBPVP8 ".to_vec();
        let mut bmp = b"BM".to_vec();
        let mut text = b"<html>not a photo</html>".to_vec();
        let mut heic = b"\x00\x00\x00\x18ftypheic".to_vec();
        for v in [&mut gif, &mut webp, &mut bmp, &mut text, &mut heic] {
            v.resize(8 * 1024, 0);
        }
        for (name, v) in [
            ("gif", gif),
            ("webp", webp),
            ("bmp", bmp),
            ("text", text),
            ("heic", heic),
        ] {
            assert_eq!(code(check_portrait(&v)), "image_not_jpeg_or_png", "{name}");
            assert_eq!(code(check_signature(&v)), "image_not_jpeg_or_png", "{name}");
        }
        // Tiny non-images say "wrong format" rather than "too small".
        assert_eq!(code(check_portrait(b"hello")), "image_not_jpeg_or_png");
        assert_eq!(code(check_portrait(b"")), "image_not_jpeg_or_png");
    }

    #[test]
    fn byte_size_limits_come_before_any_parsing() {
        // Valid magic, garbage after: refused on size alone.
        let mut big = JPEG_MAGIC.to_vec();
        big.resize(PORTRAIT_BYTES_MAX + 1, 0);
        assert_eq!(code(check_portrait(&big)), "image_file_too_large");
        let mut small = PNG_MAGIC.to_vec();
        small.resize(PORTRAIT_BYTES_MIN - 1, 0);
        assert_eq!(code(check_portrait(&small)), "image_file_too_small");
        let mut sig_big = PNG_MAGIC.to_vec();
        sig_big.resize(SIGNATURE_BYTES_MAX + 1, 0);
        assert_eq!(code(check_signature(&sig_big)), "image_file_too_large");
        // Exactly at the maximum is not refused for size.
        let mut at_max = JPEG_MAGIC.to_vec();
        at_max.resize(PORTRAIT_BYTES_MAX, 0);
        assert_eq!(code(check_portrait(&at_max)), "image_unreadable");
    }

    #[test]
    fn truncated_files_are_refused() {
        let png = png_of(&portrait_pixels(600, 750));
        assert_eq!(
            code(check_portrait(&png[..png.len() / 2])),
            "image_unreadable"
        );
        let jpeg = jpeg_of(&portrait_pixels(600, 750));
        assert_eq!(
            code(check_portrait(&jpeg[..jpeg.len() / 2])),
            "image_unreadable"
        );
        // Cut inside the header segments, then padded: no end marker.
        let mut head = jpeg[..300].to_vec();
        head.resize(PORTRAIT_BYTES_MIN, 0);
        assert_eq!(code(check_portrait(&head)), "image_unreadable");
        // Zero padding after a complete file is harmless.
        let mut padded = jpeg.clone();
        padded.extend_from_slice(&[0; 64]);
        assert_eq!(code(check_portrait(&padded)), "ok");
    }

    fn crc32(data: &[u8]) -> u32 {
        let mut c = 0xFFFF_FFFFu32;
        for &b in data {
            c ^= u32::from(b);
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
        }
        !c
    }

    fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
        let mut v = (data.len() as u32).to_be_bytes().to_vec();
        v.extend_from_slice(kind);
        v.extend_from_slice(data);
        let mut crc_in = kind.to_vec();
        crc_in.extend_from_slice(data);
        v.extend_from_slice(&crc32(&crc_in).to_be_bytes());
        v
    }

    #[test]
    fn a_png_declaring_huge_dimensions_is_refused_from_its_header() {
        // 60000 × 60000 RGBA8 would be 14.4 GB decoded. The file is 8 KiB:
        // a header and junk "compressed" data.
        let mut ihdr = Vec::new();
        ihdr.extend_from_slice(&60_000u32.to_be_bytes());
        ihdr.extend_from_slice(&60_000u32.to_be_bytes());
        ihdr.extend_from_slice(&[8, 6, 0, 0, 0]); // 8-bit RGBA
        let mut png = PNG_MAGIC.to_vec();
        png.extend(chunk(b"IHDR", &ihdr));
        png.extend(chunk(b"IDAT", &[0u8; 8 * 1024]));
        png.extend(chunk(b"IEND", &[]));
        let e = check_portrait(&png).unwrap_err();
        assert_eq!(
            e,
            ImageProblem::TooManyPixels {
                kind: ImageKind::Portrait,
                width: 60_000,
                height: 60_000,
                max_width: PORTRAIT_WIDTH_MAX,
                max_height: PORTRAIT_HEIGHT_MAX,
            }
        );
        assert_eq!(code(check_signature(&png)), "image_too_many_pixels");
    }

    #[test]
    fn the_decoder_itself_is_bounded() {
        // Even without the header check, the decode limits refuse a frame
        // beyond the largest side before allocating it.
        let mut limits = decode_limits(&PORTRAIT);
        let mut r = ImageReader::with_format(
            Cursor::new(png_of(&portrait_pixels(2600, 10))),
            ImageFormat::Png,
        );
        r.limits(limits.clone());
        assert!(r.decode().is_err());
        assert!(limits.reserve(60_000 * 60_000 * 4).is_err());
    }

    /// Inserts an APP1 "Exif" segment (with a GPS-looking payload) right
    /// after the JPEG's SOI marker, as a phone camera would.
    fn with_exif(jpeg: &[u8]) -> Vec<u8> {
        let payload = b"Exif\0\0MM\0\x2a\0\0\0\x08\0\0GPSLatitude 4.6097N GPSLongitude 74.0817W";
        let len = (payload.len() + 2) as u16;
        let mut v = jpeg[..2].to_vec();
        v.extend_from_slice(&[0xFF, 0xE1]);
        v.extend_from_slice(&len.to_be_bytes());
        v.extend_from_slice(payload);
        // A COM (comment) segment too.
        let comment = b"taken at home, Calle 10 # 5-20";
        v.extend_from_slice(&[0xFF, 0xFE]);
        v.extend_from_slice(&((comment.len() + 2) as u16).to_be_bytes());
        v.extend_from_slice(comment);
        v.extend_from_slice(&jpeg[2..]);
        v
    }

    fn contains(hay: &[u8], needle: &[u8]) -> bool {
        hay.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn metadata_is_gone_after_the_re_encode() {
        let jpeg = with_exif(&jpeg_of(&portrait_pixels(600, 750)));
        assert!(contains(&jpeg, b"Exif") && contains(&jpeg, b"GPSLatitude"));
        let p = check_portrait(&jpeg).unwrap();
        for needle in [&b"Exif"[..], b"GPS", b"Calle", b"eXIf"] {
            assert!(!contains(p.png(), needle));
        }
        // A PNG with a text chunk and an eXIf chunk.
        let png = png_of(&portrait_pixels(600, 750));
        let mut tagged = png[..PNG_MAGIC.len() + 25].to_vec(); // magic + IHDR
        tagged.extend(chunk(b"tEXt", b"Comment\0home address here"));
        tagged.extend(chunk(b"eXIf", b"MM\0\x2a\0\0\0\x08\0\0GPS"));
        tagged.extend_from_slice(&png[PNG_MAGIC.len() + 25..]);
        let p = check_portrait(&tagged).unwrap();
        for needle in [&b"tEXt"[..], b"eXIf", b"home address", b"GPS"] {
            assert!(!contains(p.png(), needle));
        }
        // The same pixels give the same output, whatever metadata came along.
        assert_eq!(p, check_portrait(&png).unwrap());
    }

    #[test]
    fn the_exif_orientation_is_applied_before_the_checks() {
        // Stored landscape 750 × 600, tagged "rotate 90° clockwise" (EXIF
        // orientation 6), as phones write portraits: displayed 600 × 750.
        let stored = image::imageops::rotate270(&portrait_pixels(600, 750));
        let jpeg = jpeg_of(&stored);
        let mut app1 = b"Exif\0\0MM\0\x2a\0\0\0\x08\0\x01".to_vec();
        app1.extend_from_slice(&[0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0]);
        app1.extend_from_slice(&[0, 0, 0, 0]);
        let mut tagged = jpeg[..2].to_vec();
        tagged.extend_from_slice(&[0xFF, 0xE1]);
        tagged.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
        tagged.extend_from_slice(&app1);
        tagged.extend_from_slice(&jpeg[2..]);
        let p = check_portrait(&tagged).unwrap();
        assert_eq!((p.width(), p.height()), (600, 750));
        let back = image::load_from_memory(p.png()).unwrap();
        assert_eq!((back.width(), back.height()), (600, 750));
        // Untagged, the same pixels are a landscape frame.
        assert_eq!(code(check_portrait(&jpeg)), "image_wrong_aspect");
    }

    /// A signature: a wavy dark stroke on a transparent (or white) background.
    fn signature_pixels(w: u32, h: u32, transparent: bool) -> RgbaImage {
        let bg = if transparent {
            Rgba([0, 0, 0, 0])
        } else {
            Rgba([255, 255, 255, 255])
        };
        let mut img = RgbaImage::from_pixel(w, h, bg);
        for x in w / 10..w * 9 / 10 {
            let t = x as f64 / w as f64 * 12.0;
            let y = (h as f64 / 2.0 + t.sin() * h as f64 / 4.0) as u32;
            for dy in 0..3 {
                img.put_pixel(x, (y + dy).min(h - 1), Rgba([20, 20, 90, 255]));
            }
        }
        img
    }

    #[test]
    fn signatures() {
        // (width, height, transparent background, expected code)
        let cases = [
            (600, 200, true, "ok"),
            (600, 200, false, "ok"),
            (200, 50, false, "ok"),
            (199, 60, false, "image_too_few_pixels"),
            (300, 49, false, "image_too_few_pixels"),
            (2000, 1000, false, "ok"),
            (2001, 500, false, "image_too_many_pixels"),
            (300, 300, false, "image_wrong_aspect"),
            (1700, 200, false, "image_wrong_aspect"),
            (800, 100, false, "ok"),
        ];
        for (w, h, t, want) in cases {
            let got = code(check_signature(&png_rgba(&signature_pixels(w, h, t))));
            assert_eq!(got, want, "{w}x{h} transparent={t}");
        }
        let s = check_signature(&png_rgba(&signature_pixels(600, 200, true))).unwrap();
        // Transparency flattened onto white: the corner is paper.
        let back = image::load_from_memory(s.png()).unwrap();
        assert_eq!(back.color(), image::ColorType::Rgb8);
        assert_eq!(back.to_rgb8().get_pixel(0, 0), &Rgb([255, 255, 255]));
    }

    #[test]
    fn a_blank_signature_is_refused() {
        let blank = RgbaImage::from_pixel(600, 200, Rgba([0, 0, 0, 0]));
        assert_eq!(code(check_signature(&png_rgba(&blank))), "image_blank");
        let mut dot = RgbaImage::from_pixel(600, 200, Rgba([255, 255, 255, 255]));
        for x in 0..5 {
            dot.put_pixel(300 + x, 100, Rgba([0, 0, 0, 255]));
        }
        assert_eq!(code(check_signature(&png_rgba(&dot))), "image_blank");
        let e = check_signature(&png_rgba(&blank)).unwrap_err();
        assert!(e.message(Lang::Es).contains("firma"));
        // A JPEG signature scan works too.
        let rgb = DynamicImage::ImageRgba8(signature_pixels(600, 200, false)).to_rgb8();
        assert_eq!(code(check_signature(&jpeg_of(&rgb))), "ok");
    }

    #[test]
    fn every_problem_has_a_code_and_both_messages() {
        let k = ImageKind::Portrait;
        let all = [
            ImageProblem::FileTooSmall {
                kind: k,
                bytes: 1,
                min: 2,
            },
            ImageProblem::FileTooLarge {
                kind: k,
                bytes: 3,
                max: 2,
            },
            ImageProblem::NotJpegOrPng { kind: k },
            ImageProblem::Unreadable { kind: k },
            ImageProblem::TooFewPixels {
                kind: k,
                width: 1,
                height: 1,
                min_width: 2,
                min_height: 2,
            },
            ImageProblem::TooManyPixels {
                kind: k,
                width: 3,
                height: 3,
                max_width: 2,
                max_height: 2,
            },
            ImageProblem::WrongAspect {
                kind: k,
                width: 1,
                height: 1,
                min_permille: 700,
                max_permille: 850,
            },
            ImageProblem::Blank { kind: k },
            ImageProblem::Unprocessable { kind: k },
        ];
        let mut codes: Vec<_> = all.iter().map(ImageProblem::code).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), all.len());
        for e in &all {
            let (es, en) = (e.message(Lang::Es), e.message(Lang::En));
            assert!(!es.is_empty() && !en.is_empty() && es != en, "{e:?}");
        }
    }
}

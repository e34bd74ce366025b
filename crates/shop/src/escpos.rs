//! ESC/POS for thermal receipt printers: a 1-bit bitmap of the receipt becomes the byte stream
//! a printer takes (initialise, raster image in bands, feed, cut, optionally kick the cash
//! drawer), and a decoder reads such a stream back, so tests check what is sent.
//!
//! The app draws the receipt on a canvas (so Arabic and Devanagari are shaped correctly, which
//! a printer's own text mode gets wrong), turns the pixels into a [`MonochromeBitmap`] with
//! [`threshold_to_bits`] or [`dither_to_bits`], and sends [`encode_receipt`]'s bytes over Web
//! Serial or WebUSB. Printers have 8 dots per millimetre: 384 dots across on 58 mm paper,
//! 576 on 80 mm.
//!
//! Commands used (Epson's ESC/POS reference): `ESC @` (1B 40) initialise; `GS v 0 m xL xH yL yH
//! d…` (1D 76 30) a raster bit image, `x` bytes per row and `y` rows, most significant bit
//! leftmost, 1 = black; `ESC d n` (1B 64) print and feed n lines; `GS V m` (1D 56) cut, 0 full
//! and 1 partial; `ESC p m t1 t2` (1B 70) a drawer kick pulse on pin m, t1×2 ms on, t2×2 ms off.

use serde::{Deserialize, Serialize};

/// Dots across 58 mm paper.
pub const DOTS_58_MM: u32 = 384;
/// Dots across 80 mm paper.
pub const DOTS_80_MM: u32 = 576;

/// A 1-bit image, rows top to bottom, each row `width_dots` rounded up to whole bytes, most
/// significant bit first, 1 for a black dot: the layout of ESC/POS raster images.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonochromeBitmap {
    pub width_dots: u32,
    pub height_dots: u32,
    pub bits: Vec<u8>,
}

impl MonochromeBitmap {
    /// A white bitmap.
    pub fn blank(width_dots: u32, height_dots: u32) -> MonochromeBitmap {
        MonochromeBitmap {
            width_dots,
            height_dots,
            bits: vec![0; bytes_per_row(width_dots) * height_dots as usize],
        }
    }

    pub fn bytes_per_row(&self) -> usize {
        bytes_per_row(self.width_dots)
    }

    /// Whether the dot at (x, y) is black; outside the image: white.
    pub fn is_black(&self, x: u32, y: u32) -> bool {
        if x >= self.width_dots || y >= self.height_dots {
            return false;
        }
        let at = y as usize * self.bytes_per_row() + x as usize / 8;
        self.bits
            .get(at)
            .is_some_and(|byte| byte & (0x80 >> (x % 8)) != 0)
    }

    /// Paints the dot at (x, y) black (ignored outside the image).
    pub fn set_black(&mut self, x: u32, y: u32) {
        if x >= self.width_dots || y >= self.height_dots {
            return;
        }
        let at = y as usize * self.bytes_per_row() + x as usize / 8;
        if let Some(byte) = self.bits.get_mut(at) {
            *byte |= 0x80 >> (x % 8);
        }
    }
}

fn bytes_per_row(width_dots: u32) -> usize {
    width_dots.div_ceil(8) as usize
}

/// How the paper is cut after the receipt.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Cut {
    None,
    Full,
    #[default]
    Partial,
}

/// What to send besides the image.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrintOptions {
    /// The printer's paper width in dots: 384 (58 mm) or 576 (80 mm).
    pub paper_width_dots: u32,
    /// Rows per `GS v 0` band: printers with small buffers take long images in pieces.
    pub band_rows: u32,
    /// Lines fed after the image, so the cut falls below the last line.
    pub feed_lines: u8,
    pub cut: Cut,
    /// Open the cash drawer (a pulse on pin 2, the usual drawer connector).
    pub kick_drawer: bool,
}

impl Default for PrintOptions {
    fn default() -> Self {
        PrintOptions {
            paper_width_dots: DOTS_58_MM,
            band_rows: 128,
            feed_lines: 4,
            cut: Cut::Partial,
            kick_drawer: false,
        }
    }
}

/// Why a bitmap cannot be encoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("the image is {image} dots wide, wider than the paper's {paper}")]
    TooWide { image: u32, paper: u32 },
    #[error("the image has {actual} bytes, not the {expected} its size needs")]
    WrongSize { expected: usize, actual: usize },
    #[error("a band must have 1 to 65535 rows")]
    BadBandRows,
}

/// The drawer kick pulse: pin 2, 50 ms on, 500 ms off.
const DRAWER_KICK: [u8; 5] = [0x1B, 0x70, 0x00, 25, 250];

/// The byte stream that prints `bitmap`: initialise, the drawer kick if asked (first, so the
/// drawer opens while the receipt prints), the image in bands, feed, cut.
pub fn encode_receipt(
    bitmap: &MonochromeBitmap,
    options: &PrintOptions,
) -> Result<Vec<u8>, EncodeError> {
    if bitmap.width_dots > options.paper_width_dots || bitmap.bytes_per_row() > 0xFFFF {
        return Err(EncodeError::TooWide {
            image: bitmap.width_dots,
            paper: options.paper_width_dots,
        });
    }
    let row_bytes = bitmap.bytes_per_row();
    let expected = row_bytes * bitmap.height_dots as usize;
    if bitmap.bits.len() != expected {
        return Err(EncodeError::WrongSize {
            expected,
            actual: bitmap.bits.len(),
        });
    }
    if options.band_rows == 0 || options.band_rows > 0xFFFF {
        return Err(EncodeError::BadBandRows);
    }
    let mut bytes = Vec::with_capacity(expected + 64);
    bytes.extend_from_slice(&[0x1B, 0x40]);
    if options.kick_drawer {
        bytes.extend_from_slice(&DRAWER_KICK);
    }
    if row_bytes > 0 {
        for band in bitmap.bits.chunks(row_bytes * options.band_rows as usize) {
            let rows = band.len() / row_bytes;
            bytes.extend_from_slice(&[0x1D, 0x76, 0x30, 0x00]);
            bytes.extend_from_slice(&(row_bytes as u16).to_le_bytes());
            bytes.extend_from_slice(&(rows as u16).to_le_bytes());
            bytes.extend_from_slice(band);
        }
    }
    if options.feed_lines > 0 {
        bytes.extend_from_slice(&[0x1B, 0x64, options.feed_lines]);
    }
    match options.cut {
        Cut::None => {}
        Cut::Full => bytes.extend_from_slice(&[0x1D, 0x56, 0x00]),
        Cut::Partial => bytes.extend_from_slice(&[0x1D, 0x56, 0x01]),
    }
    Ok(bytes)
}

/// The drawer kick alone, for a "No sale" that opens the drawer.
pub fn encode_drawer_kick() -> Vec<u8> {
    let mut bytes = vec![0x1B, 0x40];
    bytes.extend_from_slice(&DRAWER_KICK);
    bytes
}

/// One command of an ESC/POS stream, as [`decode`] reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Initialize,
    /// One `GS v 0` band.
    Raster {
        mode: u8,
        bytes_per_row: u16,
        rows: u16,
        data: Vec<u8>,
    },
    Feed {
        lines: u8,
    },
    Cut(Cut),
    DrawerKick {
        pin: u8,
        on_ms: u16,
        off_ms: u16,
    },
}

/// Why bytes are not a stream [`decode`] understands.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("the stream ends inside a command starting at byte {0}")]
    Truncated(usize),
    #[error("unknown command {byte:#04x} at byte {at}")]
    Unknown { byte: u8, at: usize },
    #[error("raster bands differ in width ({first} and {other} bytes per row)")]
    MixedWidths { first: u16, other: u16 },
}

/// Reads an ESC/POS stream of the commands [`encode_receipt`] writes.
pub fn decode(bytes: &[u8]) -> Result<Vec<Command>, DecodeError> {
    let mut commands = Vec::new();
    let mut at = 0;
    let take = |start: usize, length: usize| -> Result<&[u8], DecodeError> {
        bytes
            .get(start..start + length)
            .ok_or(DecodeError::Truncated(start))
    };
    while at < bytes.len() {
        let start = at;
        match take(at, 2)? {
            [0x1B, 0x40] => {
                commands.push(Command::Initialize);
                at += 2;
            }
            [0x1B, 0x64] => {
                commands.push(Command::Feed {
                    lines: take(at, 3)?[2],
                });
                at += 3;
            }
            [0x1B, 0x70] => {
                let command = take(at, 5)?;
                commands.push(Command::DrawerKick {
                    pin: command[2],
                    on_ms: u16::from(command[3]) * 2,
                    off_ms: u16::from(command[4]) * 2,
                });
                at += 5;
            }
            [0x1D, 0x56] => {
                let cut = match take(at, 3)?[2] {
                    0x00 | 0x30 => Cut::Full,
                    0x01 | 0x31 => Cut::Partial,
                    byte => return Err(DecodeError::Unknown { byte, at: at + 2 }),
                };
                commands.push(Command::Cut(cut));
                at += 3;
            }
            [0x1D, 0x76] => {
                let header = take(at, 8)?;
                if header[2] != 0x30 {
                    return Err(DecodeError::Unknown {
                        byte: header[2],
                        at: at + 2,
                    });
                }
                let bytes_per_row = u16::from_le_bytes([header[4], header[5]]);
                let rows = u16::from_le_bytes([header[6], header[7]]);
                let length = usize::from(bytes_per_row) * usize::from(rows);
                let data = take(at + 8, length).map_err(|_| DecodeError::Truncated(start))?;
                commands.push(Command::Raster {
                    mode: header[3],
                    bytes_per_row,
                    rows,
                    data: data.to_vec(),
                });
                at += 8 + length;
            }
            [byte, _] => {
                return Err(DecodeError::Unknown {
                    byte: *byte,
                    at: start,
                })
            }
            _ => return Err(DecodeError::Truncated(start)),
        }
    }
    Ok(commands)
}

/// The image the raster bands of `commands` print, stacked top to bottom (`width_dots` is
/// the bands' width in whole bytes × 8).
pub fn raster_image(commands: &[Command]) -> Result<MonochromeBitmap, DecodeError> {
    let mut width: Option<u16> = None;
    let mut bits = Vec::new();
    let mut height = 0u32;
    for command in commands {
        if let Command::Raster {
            bytes_per_row,
            rows,
            data,
            ..
        } = command
        {
            match width {
                Some(first) if first != *bytes_per_row => {
                    return Err(DecodeError::MixedWidths {
                        first,
                        other: *bytes_per_row,
                    })
                }
                _ => width = Some(*bytes_per_row),
            }
            bits.extend_from_slice(data);
            height += u32::from(*rows);
        }
    }
    Ok(MonochromeBitmap {
        width_dots: u32::from(width.unwrap_or(0)) * 8,
        height_dots: height,
        bits,
    })
}

/// A pixel's lightness 0 (black) to 255 (white), over white paper where it is transparent.
fn lightness(pixel: &[u8]) -> i32 {
    let [red, green, blue, alpha] = [pixel[0], pixel[1], pixel[2], pixel[3]].map(i32::from);
    let luminance = (299 * red + 587 * green + 114 * blue) / 1000;
    (luminance * alpha + 255 * (255 - alpha)) / 255
}

/// Canvas pixels (RGBA, 4 bytes a pixel, rows top to bottom, as `getImageData` gives them) to
/// one bit per dot: darker than half is black. Right for text and QR codes. Missing pixels
/// (a short buffer) are white.
pub fn threshold_to_bits(rgba: &[u8], width: u32, height: u32) -> MonochromeBitmap {
    let mut bitmap = MonochromeBitmap::blank(width, height);
    for y in 0..height {
        for x in 0..width {
            let at = (y as usize * width as usize + x as usize) * 4;
            if let Some(pixel) = rgba.get(at..at + 4) {
                if lightness(pixel) < 128 {
                    bitmap.set_black(x, y);
                }
            }
        }
    }
    bitmap
}

/// Canvas pixels to one bit per dot with Floyd–Steinberg error diffusion, in integers: grey
/// areas (a logo, a photo) become a pattern of dots of the same average darkness.
pub fn dither_to_bits(rgba: &[u8], width: u32, height: u32) -> MonochromeBitmap {
    let mut bitmap = MonochromeBitmap::blank(width, height);
    let (w, h) = (width as usize, height as usize);
    // Lightness scaled by 16, so the 7/16, 3/16, 5/16, 1/16 shares stay integers.
    let mut levels: Vec<i32> = (0..w * h)
        .map(|index| {
            rgba.get(index * 4..index * 4 + 4)
                .map(lightness)
                .unwrap_or(255)
                * 16
        })
        .collect();
    for y in 0..h {
        for x in 0..w {
            let level = levels[y * w + x];
            let (black, output) = if level < 128 * 16 {
                (true, 0)
            } else {
                (false, 255 * 16)
            };
            if black {
                bitmap.set_black(x as u32, y as u32);
            }
            let error = level - output;
            let mut spread = |dx: isize, dy: usize, share: i32| {
                let nx = x as isize + dx;
                let ny = y + dy;
                if nx >= 0 && (nx as usize) < w && ny < h {
                    levels[ny * w + nx as usize] += error * share / 16;
                }
            };
            spread(1, 0, 7);
            spread(-1, 1, 3);
            spread(0, 1, 5);
            spread(1, 1, 1);
        }
    }
    bitmap
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A test image: a diagonal line and a border, `width` × `height`.
    fn pattern(width: u32, height: u32) -> MonochromeBitmap {
        let mut bitmap = MonochromeBitmap::blank(width, height);
        for y in 0..height {
            bitmap.set_black(y % width, y);
            bitmap.set_black(0, y);
            bitmap.set_black(width - 1, y);
        }
        bitmap
    }

    #[test]
    fn what_is_sent_decodes_to_the_image_and_the_commands() {
        for (width, height) in [(DOTS_58_MM, 300), (DOTS_80_MM, 129), (100, 1)] {
            let bitmap = pattern(width, height);
            let options = PrintOptions {
                paper_width_dots: DOTS_80_MM,
                kick_drawer: true,
                ..PrintOptions::default()
            };
            let bytes = encode_receipt(&bitmap, &options).unwrap();
            let commands = decode(&bytes).unwrap();
            assert_eq!(commands[0], Command::Initialize);
            assert_eq!(
                commands[1],
                Command::DrawerKick {
                    pin: 0,
                    on_ms: 50,
                    off_ms: 500
                }
            );
            let bands = commands
                .iter()
                .filter(|command| matches!(command, Command::Raster { .. }))
                .count();
            assert_eq!(bands, height.div_ceil(128) as usize, "{width}×{height}");
            assert!(commands.iter().all(|command| match command {
                Command::Raster { rows, .. } => *rows <= 128,
                _ => true,
            }));
            let tail = &commands[commands.len() - 2..];
            assert_eq!(
                tail,
                [Command::Feed { lines: 4 }, Command::Cut(Cut::Partial)]
            );
            let image = raster_image(&commands).unwrap();
            // A width that is not a multiple of 8 comes back padded to whole bytes.
            assert_eq!(image.width_dots, width.div_ceil(8) * 8);
            assert_eq!(image.height_dots, height);
            assert_eq!(image.bits, bitmap.bits);
        }
    }

    #[test]
    fn the_stream_is_the_documented_bytes() {
        let mut bitmap = MonochromeBitmap::blank(16, 2);
        bitmap.set_black(0, 0);
        bitmap.set_black(15, 1);
        let options = PrintOptions {
            feed_lines: 3,
            cut: Cut::Full,
            ..PrintOptions::default()
        };
        assert_eq!(
            encode_receipt(&bitmap, &options).unwrap(),
            [
                0x1B, 0x40, // ESC @
                0x1D, 0x76, 0x30, 0x00, 2, 0, 2, 0, // GS v 0, 2 bytes × 2 rows
                0x80, 0x00, 0x00, 0x01, // the dots
                0x1B, 0x64, 3, // ESC d 3
                0x1D, 0x56, 0x00, // GS V 0
            ]
        );
        assert_eq!(
            decode(&encode_drawer_kick()).unwrap(),
            [
                Command::Initialize,
                Command::DrawerKick {
                    pin: 0,
                    on_ms: 50,
                    off_ms: 500
                }
            ]
        );
    }

    #[test]
    fn bad_images_and_streams_are_refused() {
        let wide = MonochromeBitmap::blank(DOTS_80_MM, 1);
        assert_eq!(
            encode_receipt(&wide, &PrintOptions::default()),
            Err(EncodeError::TooWide {
                image: 576,
                paper: 384
            })
        );
        let short = MonochromeBitmap {
            width_dots: 8,
            height_dots: 2,
            bits: vec![0],
        };
        assert_eq!(
            encode_receipt(&short, &PrintOptions::default()),
            Err(EncodeError::WrongSize {
                expected: 2,
                actual: 1
            })
        );
        assert_eq!(
            decode(&[0x1B, 0x40, 0x1D, 0x76, 0x30, 0, 2, 0, 2, 0, 1]),
            Err(DecodeError::Truncated(2))
        );
        assert_eq!(
            decode(&[0x1B, 0x40, 0x42, 0x00]),
            Err(DecodeError::Unknown { byte: 0x42, at: 2 })
        );
        assert_eq!(decode(&[0x1B]), Err(DecodeError::Truncated(0)));
    }

    fn grey(width: u32, height: u32, value: u8) -> Vec<u8> {
        (0..width * height)
            .flat_map(|_| [value, value, value, 255])
            .collect()
    }

    #[test]
    fn dark_pixels_become_black_dots() {
        let mut rgba = grey(9, 1, 255);
        rgba[0..4].copy_from_slice(&[0, 0, 0, 255]);
        rgba[32..36].copy_from_slice(&[10, 10, 10, 255]);
        // A transparent black pixel is white paper.
        rgba[4..8].copy_from_slice(&[0, 0, 0, 0]);
        let bitmap = threshold_to_bits(&rgba, 9, 1);
        assert_eq!(bitmap.bits, vec![0b1000_0000, 0b1000_0000]);
        assert_eq!(threshold_to_bits(&grey(8, 1, 127), 8, 1).bits, [0xFF]);
        assert_eq!(threshold_to_bits(&grey(8, 1, 128), 8, 1).bits, [0x00]);
    }

    #[test]
    fn dithering_keeps_the_average_darkness() {
        let count_black = |bitmap: &MonochromeBitmap| {
            bitmap
                .bits
                .iter()
                .map(|byte| byte.count_ones())
                .sum::<u32>()
        };
        let (width, height) = (64, 64);
        for (value, expected_share) in [(0u8, 1.0), (64, 0.75), (128, 0.5), (192, 0.25), (255, 0.0)]
        {
            let bitmap = dither_to_bits(&grey(width, height, value), width, height);
            let share = f64::from(count_black(&bitmap)) / f64::from(width * height);
            assert!(
                (share - expected_share).abs() < 0.03,
                "grey {value}: {share} black"
            );
        }
        // Black and white stay black and white.
        assert_eq!(
            dither_to_bits(&grey(8, 1, 0), 8, 1),
            threshold_to_bits(&grey(8, 1, 0), 8, 1)
        );
    }
}

//! Bitmap text for the window, from the `font8x8` glyphs scaled up by an
//! integer factor (each font pixel becomes a `scale` x `scale` block).

use font8x8::legacy::BASIC_LEGACY;

/// Height and width of one glyph cell at scale 1.
pub const GLYPH: usize = 8;

/// Width in pixels of `text` drawn at `scale`.
pub fn text_width(text: &str, scale: usize) -> usize {
    text.chars().count() * GLYPH * scale
}

/// The 8x8 bitmap of `c` (bit 0 of each row is the leftmost pixel); characters
/// outside ASCII are drawn as '?'.
fn glyph(c: char) -> [u8; 8] {
    let i = c as usize;
    if i < BASIC_LEGACY.len() {
        BASIC_LEGACY[i]
    } else {
        BASIC_LEGACY[b'?' as usize]
    }
}

/// Draw `text` with its top-left corner at (`x`, `y`) into `buf`, a
/// `width`-pixel-wide 0RGB frame. Pixels outside the frame are skipped.
pub fn draw_text(
    buf: &mut [u32],
    width: usize,
    x: i64,
    y: i64,
    scale: usize,
    text: &str,
    colour: u32,
) {
    if width == 0 || scale == 0 {
        return;
    }
    let height = (buf.len() / width) as i64;
    let s = scale as i64;
    for (n, c) in text.chars().enumerate() {
        let gx = x + (n * GLYPH * scale) as i64;
        for (row, bits) in glyph(c).iter().enumerate() {
            for col in 0..GLYPH {
                if bits & (1 << col) == 0 {
                    continue;
                }
                let px = gx + col as i64 * s;
                let py = y + row as i64 * s;
                for yy in py.max(0)..(py + s).min(height) {
                    let start = px.max(0);
                    let end = (px + s).min(width as i64);
                    if start >= end {
                        continue;
                    }
                    let row0 = yy as usize * width;
                    buf[row0 + start as usize..row0 + end as usize].fill(colour);
                }
            }
        }
    }
}

/// Draw `text` centred horizontally and vertically on the point (`cx`, `cy`).
pub fn draw_text_centred(
    buf: &mut [u32],
    width: usize,
    cx: i64,
    cy: i64,
    scale: usize,
    text: &str,
    colour: u32,
) {
    let w = text_width(text, scale) as i64;
    let h = (GLYPH * scale) as i64;
    draw_text(buf, width, cx - w / 2, cy - h / 2, scale, text, colour);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_inside_and_clips_outside() {
        let w = 40;
        let mut buf = vec![0u32; w * 20];
        draw_text(&mut buf, w, 0, 0, 2, "A", 0xffffff);
        let lit = buf.iter().filter(|&&p| p == 0xffffff).count();
        // 'A' has 27 pixels set in font8x8; each becomes a 2x2 block.
        assert!(lit > 40, "only {lit} pixels lit");
        // Far off the frame: nothing drawn, no panic.
        let mut buf2 = vec![0u32; w * 20];
        draw_text(&mut buf2, w, -1000, 5000, 3, "Hello", 1);
        draw_text(&mut buf2, w, 35, 15, 3, "Hello", 1);
        assert!(buf2.contains(&1));
        draw_text(&mut buf2, 0, 0, 0, 3, "x", 1);
        assert_eq!(text_width("abc", 3), 72);
    }

    #[test]
    fn space_draws_nothing_and_unicode_falls_back() {
        let w = 16;
        let mut buf = vec![0u32; w * 8];
        draw_text(&mut buf, w, 0, 0, 1, "  ", 7);
        assert!(buf.iter().all(|&p| p == 0));
        draw_text(&mut buf, w, 0, 0, 1, "é", 7);
        assert!(buf.contains(&7));
    }
}

//! Prediction overlays: per panel a row of four tiles (image, ground truth, prediction, and
//! the image with true positives, false positives and false negatives of one class).

use super::{
    font, legend_row, legend_row_width, no_data, palette, title, write_both, DrawResult, Figure,
    Swatch, LEFT,
};
use anyhow::{ensure, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::{Path, PathBuf};

/// One image with its ground truth and prediction.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OverlayPanel {
    /// Row title, e.g. `best: img_17 (Dice 91.2)`.
    pub title: String,
    /// RGB, row-major, `w * h * 3` bytes.
    pub image: Vec<u8>,
    /// Ground-truth class per pixel, `w * h` bytes; 255 = ignore.
    pub label: Vec<u8>,
    /// Predicted class per pixel, `w * h` bytes.
    pub pred: Vec<u8>,
    pub w: usize,
    pub h: usize,
    /// The class whose true/false positives/negatives the overlay shows.
    pub class: u8,
    /// Its name, as the data set calls it (`fluid`); empty: the id is shown.
    pub class_name: String,
}

/// Draws one row of tiles per panel to `dir/<stem>.png` and `.svg` (the SVG embeds the tiles
/// as base64 PNG `<image>`s). Images wider than 384 px are shrunk to that width (nearest
/// neighbour, so class maps keep their values); very small ones are enlarged.
pub fn overlays(panels: &[OverlayPanel], dir: &Path, stem: &str) -> Result<Vec<PathBuf>> {
    let rows = panels.iter().map(Row::new).collect::<Result<Vec<_>>>()?;
    write_both(&Overlays { rows }, dir, stem)
}

/// Okabe–Ito colours, told apart with any colour vision: bluish green, vermillion, sky blue.
pub(crate) const TP: [u8; 3] = [0, 158, 115];
pub(crate) const FP: [u8; 3] = [213, 94, 0];
pub(crate) const FN: [u8; 3] = [86, 180, 233];
/// Opacity of the TP/FP/FN colours over the image: the anatomy stays visible beneath.
const ALPHA: f32 = 0.55;
const IGNORE: u8 = 255;

/// The image with `class`'s true positives, false positives and false negatives blended in;
/// ignored pixels (label 255) and true negatives stay as they are.
pub(crate) fn composite(image: &[u8], label: &[u8], pred: &[u8], class: u8) -> Vec<u8> {
    let mut out = image.to_vec();
    for (i, (&l, &p)) in label.iter().zip(pred).enumerate() {
        let colour = match (l == class, p == class) {
            _ if l == IGNORE => continue,
            (true, true) => TP,
            (false, true) => FP,
            (true, false) => FN,
            (false, false) => continue,
        };
        for (o, c) in out[i * 3..i * 3 + 3].iter_mut().zip(colour) {
            *o = (*o as f32 * (1.0 - ALPHA) + c as f32 * ALPHA).round() as u8;
        }
    }
    out
}

/// A class map as RGB: `class` white, background black, ignore mid grey, other classes in
/// the palette.
fn class_map(mask: &[u8], class: u8) -> Vec<u8> {
    mask.iter()
        .flat_map(|&c| match c {
            _ if c == class => [255, 255, 255],
            0 => [0, 0, 0],
            IGNORE => [128, 128, 128],
            c => {
                let RGBColor(r, g, b) = palette(c as usize - 1);
                [r, g, b]
            }
        })
        .collect()
}

/// Nearest-neighbour resampling of `ch`-channel `src` (`w` x `h`) to `tw` x `th`.
fn resample(src: &[u8], (w, h): (usize, usize), ch: usize, (tw, th): (usize, usize)) -> Vec<u8> {
    let mut out = Vec::with_capacity(tw * th * ch);
    for ty in 0..th {
        let y = (ty * h / th).min(h - 1);
        for tx in 0..tw {
            let x = (tx * w / tw).min(w - 1);
            let at = (y * w + x) * ch;
            out.extend_from_slice(&src[at..at + ch]);
        }
    }
    out
}

/// Largest tile width; wider images are shrunk to it.
const MAX_TILE: usize = 384;
/// Smaller images are enlarged by a whole factor to at least this width.
const MIN_TILE: usize = 128;

/// The tile size for a `w` x `h` image: at most [`MAX_TILE`] wide, aspect kept.
fn tile_size(w: usize, h: usize) -> (usize, usize) {
    if w > MAX_TILE {
        (MAX_TILE, (h * MAX_TILE).div_ceil(w).max(1))
    } else {
        let k = MIN_TILE.div_ceil(w).max(1);
        (w * k, h * k)
    }
}

/// One panel, ready to blit: its title, class and four RGB tiles of `tw` x `th`.
struct Row {
    title: String,
    class: String,
    tw: usize,
    th: usize,
    tiles: [Vec<u8>; 4],
}

impl Row {
    fn new(p: &OverlayPanel) -> Result<Row> {
        let px = p.w * p.h;
        ensure!(
            px > 0,
            "overlay {:?}: empty image ({}x{})",
            p.title,
            p.w,
            p.h
        );
        for (what, len, want) in [
            ("image", p.image.len(), px * 3),
            ("label", p.label.len(), px),
            ("pred", p.pred.len(), px),
        ] {
            ensure!(
                len == want,
                "overlay {:?}: {what} has {len} bytes, expected {want}",
                p.title
            );
        }
        let (tw, th) = tile_size(p.w, p.h);
        let image = resample(&p.image, (p.w, p.h), 3, (tw, th));
        let label = resample(&p.label, (p.w, p.h), 1, (tw, th));
        let pred = resample(&p.pred, (p.w, p.h), 1, (tw, th));
        let over = composite(&image, &label, &pred, p.class);
        let tiles = [
            image,
            class_map(&label, p.class),
            class_map(&pred, p.class),
            over,
        ];
        Ok(Row {
            title: p.title.clone(),
            class: if p.class_name.is_empty() {
                format!("class {}", p.class)
            } else {
                p.class_name.clone()
            },
            tw,
            th,
            tiles,
        })
    }

    fn height(&self) -> u32 {
        (HEAD + self.th + GAP) as u32
    }

    fn width(&self) -> u32 {
        (M + 4 * (self.tw + M)) as u32
    }
}

/// Margin between tiles; title and tile names above them; space below a row.
const M: usize = 12;
const HEAD: usize = 46;
const GAP: usize = 10;
const LEGEND_H: u32 = 64;

struct Overlays {
    rows: Vec<Row>,
}

fn legend_items() -> [Swatch; 3] {
    let sw = |c: [u8; 3], text: &str| Swatch {
        color: RGBColor(c[0], c[1], c[2]).to_rgba(),
        line: false,
        text: text.into(),
    };
    [
        sw(TP, "true positive"),
        sw(FP, "false positive"),
        sw(FN, "false negative"),
    ]
}

const MASK_NOTE: &str = "masks: white = the class shown, black = background, grey = ignore";

impl Figure for Overlays {
    fn size(&self) -> (u32, u32) {
        if self.rows.is_empty() {
            return (640, 200);
        }
        let legend = legend_row_width(legend_items().iter().map(|s| s.text.as_str()));
        let note = super::text_width(MASK_NOTE, 13);
        let w = self.rows.iter().map(Row::width).max().unwrap_or(0);
        let h: u32 = self.rows.iter().map(Row::height).sum();
        (
            w.max(legend.max(note) + 2 * M as u32),
            h + LEGEND_H + M as u32,
        )
    }

    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        area.fill(&WHITE)?;
        if self.rows.is_empty() {
            title(area, "Prediction overlays")?;
            return no_data(area, "no data");
        }
        let mut y = M as i32;
        for row in &self.rows {
            draw_row(area, row, y)?;
            y += row.height() as i32;
        }
        legend_row(area, &legend_items(), (M as i32, y + 14))?;
        area.draw(&Text::new(MASK_NOTE, (M as i32, y + 42), font(13, LEFT)))
    }
}

/// A panel's title, the tiles' names and the four tiles, from pixel row `y`.
fn draw_row<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    row: &Row,
    y: i32,
) -> DrawResult<DB> {
    area.draw(&Text::new(
        row.title.clone(),
        (M as i32, y + 10),
        font(15, LEFT),
    ))?;
    let overlay = format!("overlay ({})", row.class);
    let names = ["image", "ground truth", "prediction", overlay.as_str()];
    for (k, (tile, name)) in row.tiles.iter().zip(names).enumerate() {
        let x = (M + k * (row.tw + M)) as i32;
        area.draw(&Text::new(name, (x, y + 34), font(12, LEFT)))?;
        let size = (row.tw as u32, row.th as u32);
        if let Some(bitmap) = BitMapElement::with_ref((x, y + HEAD as i32), size, tile) {
            area.draw(&bitmap)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{out_dir, png_size, svg_text};
    use super::*;

    #[test]
    fn composite_colours_tp_fp_fn_where_expected() {
        // 4x4 grey image; column 0 TP, column 1 FP, column 2 FN, column 3 TN; the last row
        // is ignored (label 255) whatever the prediction.
        let image = vec![100u8; 4 * 4 * 3];
        let mut label = [1, 0, 1, 0].repeat(4);
        let pred = [1, 1, 0, 0].repeat(4);
        label[12..].fill(IGNORE);
        let out = composite(&image, &label, &pred, 1);
        let blend =
            |c: [u8; 3]| c.map(|c| (100.0 * (1.0 - ALPHA) + c as f32 * ALPHA).round() as u8);
        let px = |x: usize, y: usize| -> [u8; 3] {
            let i = (y * 4 + x) * 3;
            [out[i], out[i + 1], out[i + 2]]
        };
        for y in 0..3 {
            assert_eq!(px(0, y), blend(TP));
            assert_eq!(px(1, y), blend(FP));
            assert_eq!(px(2, y), blend(FN));
            assert_eq!(px(3, y), [100; 3]);
        }
        for x in 0..4 {
            assert_eq!(px(x, 3), [100; 3], "ignored pixel {x} coloured");
        }
        let (tp, fp, fnn) = (blend(TP), blend(FP), blend(FN));
        assert!(tp != fp && fp != fnn && tp != fnn);
    }

    #[test]
    fn tiles_are_resized_by_nearest_neighbour() {
        assert_eq!(tile_size(1000, 500), (384, 192));
        assert_eq!(tile_size(200, 100), (200, 100));
        assert_eq!(tile_size(4, 4), (128, 128));
        let src = [0u8, 1, 2, 3];
        assert_eq!(
            resample(&src, (2, 2), 1, (4, 2)),
            vec![0, 0, 1, 1, 2, 2, 3, 3]
        );
        assert_eq!(resample(&src, (4, 1), 1, (2, 1)), vec![0, 2]);
    }

    /// A `w` x `h` test image: a gradient with a disc as ground truth, the prediction
    /// shifted right.
    fn panel(title: &str, w: usize, h: usize) -> OverlayPanel {
        let disc = |x: usize, y: usize, cx: usize| {
            let (dx, dy) = (x as f64 - cx as f64, y as f64 - h as f64 / 2.0);
            (dx * dx + dy * dy).sqrt() < h as f64 / 4.0
        };
        let image = (0..w * h)
            .flat_map(|i| {
                [
                    (i % w * 200 / w) as u8 + 30,
                    80,
                    (i / w * 200 / h) as u8 + 30,
                ]
            })
            .collect();
        let label = (0..w * h)
            .map(|i| disc(i % w, i / w, w / 2) as u8)
            .collect();
        let pred = (0..w * h)
            .map(|i| disc(i % w, i / w, w / 2 + w / 10) as u8)
            .collect();
        OverlayPanel {
            title: title.into(),
            image,
            label,
            pred,
            w,
            h,
            class: 1,
            class_name: "fluid".into(),
        }
    }

    #[test]
    fn overlays_render_as_png_and_svg_with_embedded_tiles() {
        let (_guard, dir) = out_dir();
        let panels = [
            panel("best: img_17 (Dice 91.2)", 800, 500),
            panel("worst: img_3", 96, 64),
        ];
        let files = overlays(&panels, &dir, "overlays").unwrap();
        let fig = Overlays {
            rows: panels.iter().map(|p| Row::new(p).unwrap()).collect(),
        };
        assert_eq!(png_size(&files[0]), fig.size());
        assert_eq!(fig.rows[0].tw, 384, "large images are shrunk");
        let svg = svg_text(&files[1]);
        assert_eq!(svg.matches("<image").count(), 8, "four tiles per panel");
        assert!(svg.contains("data:image/png;base64,"));
        for t in ["best: img_17 (Dice 91.2)", "ground truth", "false negative"] {
            assert!(svg.contains(t), "{t} missing");
        }
    }

    #[test]
    fn empty_and_malformed_overlays() {
        let (_guard, dir) = out_dir();
        let files = overlays(&[], &dir, "overlays_empty").unwrap();
        assert_eq!(png_size(&files[0]), (640, 200));
        assert!(svg_text(&files[1]).contains("no data"));
        let mut bad = panel("short label", 8, 8);
        bad.label.pop();
        let msg = format!("{:#}", overlays(&[bad], &dir, "bad").unwrap_err());
        assert!(
            msg.contains("short label") && msg.contains("label has 63 bytes"),
            "{msg}"
        );
    }
}

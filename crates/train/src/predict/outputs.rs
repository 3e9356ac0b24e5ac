//! What `sweep predict` writes per image: the label PNG (class ids, or colours with
//! `--palette`), optionally the probabilities (`.npy`, float32 C x H x W) and an overlay;
//! and `predictions.csv` with every image's area per class.

use anyhow::{Context, Result};
use std::io::Write;
use std::path::Path;
use sweep_core::report::plot::class_colour;

/// Class ids as an 8-bit grayscale PNG, or in the palette's colours as RGB.
pub fn write_labels(
    path: &Path,
    labels: &[u8],
    (w, h): (usize, usize),
    palette: Option<Option<&[[u8; 3]]>>,
) -> Result<()> {
    let (pixels, colour) = match palette {
        None => (labels.to_vec(), image::ExtendedColorType::L8),
        Some(p) => {
            let rgb = labels
                .iter()
                .flat_map(|&c| class_colour(usize::from(c), p))
                .collect();
            (rgb, image::ExtendedColorType::Rgb8)
        }
    };
    save(path, &pixels, (w, h), colour)
}

/// One PNG, its error naming the file.
fn save(
    path: &Path,
    pixels: &[u8],
    (w, h): (usize, usize),
    colour: image::ExtendedColorType,
) -> Result<()> {
    image::save_buffer(path, pixels, w as u32, h as u32, colour)
        .with_context(|| format!("writing {}", path.display()))
}

/// The image (HWC, 1 or 3 channels) with every non-background class blended in its colour.
pub fn write_overlay(
    path: &Path,
    image: &[u8],
    channels: usize,
    labels: &[u8],
    (w, h): (usize, usize),
    palette: Option<&[[u8; 3]]>,
) -> Result<()> {
    const ALPHA: f32 = 0.5;
    let mut rgb = Vec::with_capacity(w * h * 3);
    for (i, &c) in labels.iter().enumerate() {
        let px: [u8; 3] = if channels == 1 {
            [image[i]; 3]
        } else {
            [image[i * 3], image[i * 3 + 1], image[i * 3 + 2]]
        };
        let colour = class_colour(usize::from(c), palette);
        for k in 0..3 {
            rgb.push(if c == 0 {
                px[k]
            } else {
                (f32::from(px[k]) * (1.0 - ALPHA) + f32::from(colour[k]) * ALPHA).round() as u8
            });
        }
    }
    save(path, &rgb, (w, h), image::ExtendedColorType::Rgb8)
}

/// `values` (row-major, float32) of `shape` as a NumPy `.npy` file (version 1.0,
/// little-endian): probabilities C x H x W here, test inputs and logits in the tests.
pub fn write_npy(path: &Path, values: &[f32], shape: &[usize]) -> Result<()> {
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    // A one-element Python tuple needs its comma.
    let tuple = match dims.as_slice() {
        [one] => format!("({one},)"),
        _ => format!("({})", dims.join(", ")),
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {tuple}, }}");
    // Magic (6) + version (2) + length (2) + header + '\n' is a multiple of 64.
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = Vec::with_capacity(10 + header.len() + values.len() * 4);
    bytes.extend_from_slice(b"\x93NUMPY\x01\x00");
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    for v in values {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

/// Pixels of each class in `labels`.
pub fn class_areas(labels: &[u8], num_classes: usize) -> Vec<u64> {
    let mut areas = vec![0u64; num_classes];
    for &c in labels {
        if let Some(a) = areas.get_mut(usize::from(c)) {
            *a += 1;
        }
    }
    areas
}

/// `predictions.csv`: `image,file,height,width,{class}_px...` and, with a spacing,
/// `{class}_mm2...` (the area a clinician reads, e.g. fluid per B-scan).
pub struct AreasCsv {
    file: std::io::BufWriter<std::fs::File>,
    spacing: Option<[f64; 2]>,
}

/// One image's row of [`AreasCsv`].
pub struct AreaRow<'a> {
    pub name: &'a str,
    pub file: &'a Path,
    pub size: (usize, usize),
    pub areas: &'a [u64],
}

impl AreasCsv {
    pub fn create(path: &Path, classes: &[String], spacing: Option<[f64; 2]>) -> Result<AreasCsv> {
        let f =
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
        let mut csv = AreasCsv {
            file: std::io::BufWriter::new(f),
            spacing,
        };
        let mut cols = vec![
            "image".to_string(),
            "file".into(),
            "height".into(),
            "width".into(),
        ];
        cols.extend(classes.iter().map(|c| format!("{}_px", csv_field(c))));
        if spacing.is_some() {
            cols.extend(classes.iter().map(|c| format!("{}_mm2", csv_field(c))));
        }
        writeln!(csv.file, "{}", cols.join(","))?;
        Ok(csv)
    }

    pub fn row(&mut self, r: &AreaRow) -> Result<()> {
        let (w, h) = r.size;
        let mut cols = vec![
            csv_field(r.name),
            csv_field(&r.file.display().to_string()),
            h.to_string(),
            w.to_string(),
        ];
        cols.extend(r.areas.iter().map(u64::to_string));
        if let Some([sx, sy]) = self.spacing {
            cols.extend(
                r.areas
                    .iter()
                    .map(|&a| format!("{:.4}", a as f64 * sx * sy)),
            );
        }
        writeln!(self.file, "{}", cols.join(","))?;
        Ok(())
    }

    pub fn finish(mut self) -> Result<()> {
        self.file.flush()?;
        Ok(())
    }
}

/// A CSV field, quoted when it holds a comma, quote or newline.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_header_is_aligned_and_data_follows() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.npy");
        write_npy(&p, &[1.0, 2.0], &[1, 1, 2]).unwrap();
        let b = std::fs::read(&p).unwrap();
        let len = u16::from_le_bytes([b[8], b[9]]) as usize;
        assert_eq!((10 + len) % 64, 0);
        assert!(std::str::from_utf8(&b[10..10 + len])
            .unwrap()
            .contains("'shape': (1, 1, 2)"));
        assert_eq!(
            &b[10 + len..],
            [1f32.to_le_bytes(), 2f32.to_le_bytes()].concat()
        );
    }

    #[test]
    fn areas_count_each_class_and_csv_quotes() {
        assert_eq!(class_areas(&[0, 1, 1, 2, 1], 3), [1, 3, 1]);
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("fluid"), "fluid");
    }
}

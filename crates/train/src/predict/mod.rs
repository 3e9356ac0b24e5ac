//! `sweep predict`: trained networks ([`Trained`]) applied to images with the recipe of the
//! job's own evaluation ([`crate::infer`]), one output set per image ([`outputs`]).
//!
//! An image that cannot be read is named and skipped; the others are still predicted, and
//! the summary (and so the exit status) says how many were skipped.

pub mod inputs;
pub mod outputs;

use crate::infer::{Predictor, Tta};
use crate::trained::{eval_of, Trained};
use anyhow::{Context, Result};
use burn::tensor::{Device, Tensor, TensorData};
use inputs::Input;
use outputs::{class_areas, write_labels, write_npy, write_overlay, AreaRow, AreasCsv};
use std::path::{Path, PathBuf};

pub const CSV_FILE: &str = "predictions.csv";

/// What to write besides the label PNGs, and how to infer.
#[derive(Clone, Debug, Default)]
pub struct PredictOptions {
    pub tta: Tta,
    /// Windows per forward pass.
    pub batch: usize,
    /// Colour PNGs in the data set's palette instead of class ids.
    pub palette: bool,
    pub probabilities: bool,
    pub overlay: bool,
    /// mm per pixel `[x, y]` for the areas (else the networks' data set's, when known).
    pub spacing: Option<[f64; 2]>,
}

/// An input that was not predicted, and why.
#[derive(Clone, Debug, PartialEq)]
pub struct Skipped {
    pub path: PathBuf,
    pub reason: String,
}

/// What a prediction run did.
#[derive(Clone, Debug, Default)]
pub struct PredictSummary {
    pub predicted: usize,
    pub skipped: Vec<Skipped>,
    pub csv: PathBuf,
    /// Forward passes per image (networks x augmentations).
    pub passes: usize,
}

/// Predicts every input into `out` (created), with a progress bar on a terminal.
pub fn predict(
    trained: Trained,
    inputs: &[Input],
    out: &Path,
    opts: &PredictOptions,
    device: &Device,
) -> Result<PredictSummary> {
    // The same heap settings as a job: without them glibc maps and unmaps every window's
    // activations (1.4x slower slide inference at the study's size, `sweep bench predict`).
    crate::memory::tune_for_training();
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let spacing = opts.spacing.or(trained.spacing);
    let csv_path = out.join(CSV_FILE);
    let mut csv = AreasCsv::create(&csv_path, &trained.classes, spacing)?;
    let palette = trained.palette.clone();
    let scale = trained.recipe.resize_scale;
    let predictor = Predictor {
        eval: eval_of(&trained.recipe),
        num_classes: trained.model.num_classes,
        networks: trained.networks,
        batch: opts.batch,
        tta: opts.tta,
    };
    let mut summary = PredictSummary {
        csv: csv_path,
        passes: predictor.passes(),
        ..Default::default()
    };
    let bar = progress(inputs.len());
    for input in inputs {
        bar.set_message(input.name.clone());
        let image = match sweep_data::cases::read_image(&input.path) {
            Ok(image) => image,
            Err(e) => {
                bar.println(format!("skipped {}: {e}", input.path.display()));
                summary.skipped.push(Skipped {
                    path: input.path.clone(),
                    reason: e.to_string(),
                });
                bar.inc(1);
                continue;
            }
        };
        let ctx = ImageOut {
            input,
            out,
            opts,
            palette: palette.as_deref(),
        };
        let areas = predict_one(&predictor, &image, scale, device, &ctx)
            .with_context(|| format!("predicting {}", input.path.display()))?;
        let (_, _, h, w) = image;
        csv.row(&AreaRow {
            name: &input.name,
            file: &input.path,
            size: (w, h),
            areas: &areas,
        })?;
        summary.predicted += 1;
        bar.inc(1);
    }
    bar.finish_and_clear();
    csv.finish()?;
    Ok(summary)
}

/// Where one image's outputs go.
struct ImageOut<'a> {
    input: &'a Input,
    out: &'a Path,
    opts: &'a PredictOptions,
    palette: Option<&'a [[u8; 3]]>,
}

/// Predicts one decoded image, writes its files; returns its area per class.
fn predict_one(
    predictor: &Predictor,
    (pixels, channels, h, w): &(Vec<u8>, usize, usize, usize),
    scale: [usize; 2],
    device: &Device,
    o: &ImageOut,
) -> Result<Vec<u64>> {
    let (pixels, channels, h, w) = (pixels.as_slice(), *channels, *h, *w);
    let (input, rh, rw) = sweep_data::dataset::test_input(pixels, channels, w, h, scale);
    let x = Tensor::<4>::from_data(TensorData::new(input, [1, 3, rh, rw]), device);
    let scores = predictor.scores(x, h, w)?;
    let labels = scores.labels();
    let file = |suffix: &str| o.out.join(format!("{}{suffix}", o.input.name));
    let colours = o.opts.palette.then_some(o.palette);
    write_labels(&file(".png"), &labels, (w, h), colours)?;
    if o.opts.probabilities {
        let p = scores
            .probabilities()
            .into_data()
            .to_vec::<f32>()
            .expect("f32 probabilities");
        write_npy(&file(".npy"), &p, &[predictor.num_classes, h, w])?;
    }
    if o.opts.overlay {
        write_overlay(
            &file(".overlay.png"),
            pixels,
            channels,
            &labels,
            (w, h),
            o.palette,
        )?;
    }
    Ok(class_areas(&labels, predictor.num_classes))
}

fn progress(n: usize) -> indicatif::ProgressBar {
    let template =
        "predict [{bar:30.green/white}] {pos}/{len}  {elapsed_precise} ETA {eta_precise}  {msg}";
    indicatif::ProgressBar::new(n as u64)
        .with_style(indicatif::ProgressStyle::with_template(template).expect("valid template"))
}

//! Data sets, MMSeg train transforms and the prefetching loader.

use crate::util::data_root;
use std::path::Path;
use std::sync::Arc;
use sweep_core::job::{DataConfig, JobConfig, SplitConfig};
use sweep_data::transforms::*;
use sweep_data::{DataError, Dataset, Sample, Samples, TrainLoader, MEAN, STD};

fn dme(split: SplitConfig) -> DataConfig {
    DataConfig {
        root: data_root("dme"),
        split,
        ..DataConfig::default()
    }
}

/// Checksums of cv2 outputs: (sum, sum of value * (1-based index)).
fn checksum(v: &[u8]) -> (i64, i64) {
    v.iter().enumerate().fold((0, 0), |(s, w), (i, &x)| {
        (s + i64::from(x), w + i64::from(x) * (i as i64 + 1))
    })
}

/// The test pattern of the cv2 reference script: `(x*37 + y*91 + x*y*13 + k*59) % 256`.
fn pattern(w: usize, h: usize, c: usize) -> Vec<u8> {
    let mut v = Vec::new();
    for y in 0..h {
        for x in 0..w {
            for k in 0..c {
                v.push(((x * 37 + y * 91 + x * y * 13 + k * 59) % 256) as u8);
            }
        }
    }
    v
}

#[test]
fn resize_matches_opencv() {
    // Reference: cv2 4.10 `cv2.resize(src, (w, h), interpolation=INTER_LINEAR / INTER_NEAREST)`.
    let linear: [(usize, usize, usize, (i64, i64)); 10] = [
        (1, 20, 15, (40374, 6402444)),
        (1, 5, 4, (2978, 34486)),
        (1, 13, 29, (50488, 10044304)),
        (1, 22, 18, (53084, 11084806)),
        (1, 37, 40, (198319, 154533195)),
        (3, 20, 15, (118245, 54269221)),
        (3, 5, 4, (7844, 244479)),
        (3, 13, 29, (147966, 85167216)),
        (3, 22, 18, (155616, 94120808)),
        (3, 37, 40, (581365, 1313032636)),
    ];
    for (c, nw, nh, want) in linear {
        let out = resize_bilinear(&pattern(11, 9, c), 11, 9, c, nw, nh);
        assert_eq!(checksum(&out), want, "bilinear 11x9x{c} -> {nw}x{nh}");
        // A region is the same pixels as the whole resize, cut.
        let (x0, y0, cw, ch) = (nw / 3, nh / 4, nw / 2, nh / 2);
        let reg = resize_bilinear_region(&pattern(11, 9, c), 11, 9, c, nw, nh, (x0, y0, cw, ch));
        for y in 0..ch {
            for x in 0..cw * c {
                assert_eq!(reg[y * cw * c + x], out[(y0 + y) * nw * c + x0 * c + x]);
            }
        }
    }
    let labels: Vec<u8> = pattern(11, 9, 1).iter().map(|v| v % 3).collect();
    for (nw, nh, want) in [
        (20, 15, (319, 50949)),
        (5, 4, (17, 187)),
        (13, 29, (387, 75328)),
    ] {
        assert_eq!(
            checksum(&resize_nearest(&labels, 11, 9, nw, nh)),
            want,
            "nearest {nw}x{nh}"
        );
    }
    // Exact 2x upscale of a 2x2 image, by hand: OpenCV weights 0.75 / 0.25, borders clamped.
    let up = resize_bilinear(&[0, 100, 200, 40], 2, 2, 1, 4, 4);
    assert_eq!(&up[..4], &[0, 25, 75, 100]);
    // Exact 2x downscale is OpenCV's area average, (sum + 2) >> 2.
    assert_eq!(resize_bilinear(&[0, 1, 2, 3], 2, 2, 1, 1, 1), vec![2]);
}

#[test]
fn hsv_matches_opencv() {
    // Reference: cv2 4.10 COLOR_HSV2RGB / COLOR_RGB2HSV on these grids (the HSV grid cut to a
    // multiple of 32 pixels, so every pixel goes through OpenCV's SIMD path).
    let mut hsv = Vec::new();
    for h in (0..180).step_by(7) {
        for s in (0..256).step_by(17) {
            for v in (0..256).step_by(19) {
                hsv.push((h as u8, s as u8, v as u8));
            }
        }
    }
    hsv.truncate(hsv.len() / 32 * 32);
    assert_eq!(hsv.len(), 5824);
    let rgb: Vec<u8> = hsv
        .iter()
        .flat_map(|&(h, s, v)| {
            let (r, g, b) = hsv_to_rgb(h, s, v);
            [r, g, b]
        })
        .collect();
    assert_eq!(checksum(&rgb), (1610936, 14064765281));
    let mut out = Vec::new();
    for r in (0..256).step_by(13) {
        for g in (0..256).step_by(17) {
            for b in (0..256).step_by(23) {
                let (h, s, v) = rgb_to_hsv(r as u8, g as u8, b as u8);
                out.extend([h, s, v]);
            }
        }
    }
    assert_eq!(checksum(&out), (1768527, 10173930913));
}

#[test]
fn keep_ratio_sizes() {
    assert_eq!(scale_keep_ratio(256, 256, [512, 512]), (512, 512));
    // DME full size 768 x 496: factor min(512/768, 512/496) = 2/3 -> 512 x 330.67 -> 331.
    assert_eq!(scale_keep_ratio(768, 496, [512, 512]), (512, 331));
    // CHASE_DB1 with the zoo's img_scale (960, 999): already fits.
    assert_eq!(scale_keep_ratio(999, 960, [960, 999]), (999, 960));
    assert_eq!(scale_keep_ratio(999, 960, [480, 500]), (500, 480));
}

#[test]
fn epochs_are_permutations_and_pure() {
    let n = 7;
    let batch = 2;
    // Iterations 0..7 cover 14 positions = epochs 0 and 1 exactly.
    let seq: Vec<usize> = (0..7).flat_map(|i| batch_indices(3, i, batch, n)).collect();
    for e in 0..2 {
        let mut ep = seq[e * n..(e + 1) * n].to_vec();
        assert_eq!(ep, epoch_permutation(3, e as u64, n));
        ep.sort();
        assert_eq!(ep, (0..n).collect::<Vec<_>>());
    }
    assert_ne!(epoch_permutation(3, 0, 20), epoch_permutation(3, 1, 20));
    assert_ne!(epoch_permutation(3, 0, 20), epoch_permutation(4, 0, 20));
    // Iteration 3 straddles the epoch boundary (positions 6 and 7).
    assert_eq!(
        batch_indices(3, 3, 2, n),
        vec![epoch_permutation(3, 0, n)[6], epoch_permutation(3, 1, n)[0]]
    );
}

#[test]
fn cat_max_ratio_counts_without_ignore() {
    // 4 x 5 label: in the full box, class 0: 12, class 1: 4, ignore: 4 -> 12/16 = 0.75.
    #[rustfmt::skip]
    let label = [
        0, 0, 0, 0, 255,
        0, 0, 0, 0, 255,
        0, 0, 0, 0, 255,
        1, 1, 1, 1, 255,
    ];
    let all = CropBox {
        x: 0,
        y: 0,
        w: 5,
        h: 4,
    };
    assert!(!crop_is_balanced(&label, 5, all, 0.75)); // >= 0.75 is rejected
    assert!(crop_is_balanced(&label, 5, all, 0.76));
    // Rows 2-3: 4 / 4 -> balanced at 0.75.
    let lower = CropBox {
        x: 0,
        y: 2,
        w: 5,
        h: 2,
    };
    assert!(crop_is_balanced(&label, 5, lower, 0.75));
    // One class only (plus ignore) never passes.
    let top = CropBox {
        x: 0,
        y: 0,
        w: 5,
        h: 2,
    };
    assert!(!crop_is_balanced(&label, 5, top, 1.0));
}

#[test]
fn random_crop_redraws_up_to_ten_times() {
    // All background: never balanced, so the box is the 11th draw.
    let (w, h, crop) = (40, 30, 8);
    let bg = vec![0u8; w * h];
    for seed in 0..5 {
        let mut rng = keyed_rng(seed, 0, 0, 99);
        let got = random_crop_box(&mut rng, &bg, w, h, crop, 0.75);
        let mut r2 = keyed_rng(seed, 0, 0, 99);
        let draws: Vec<CropBox> = (0..11).map(|_| draw_crop(&mut r2, w, h, crop)).collect();
        assert_eq!(got, draws[10]);
        // cat_max_ratio 1 disables the check: the first draw.
        let mut r3 = keyed_rng(seed, 0, 0, 99);
        assert_eq!(random_crop_box(&mut r3, &bg, w, h, crop, 1.0), draws[0]);
    }
    // A balanced region exists (left half 1, right half 0): the kept box is balanced or the 11th.
    let mut half = vec![0u8; w * h];
    for y in 0..h {
        for x in 0..w / 2 {
            half[y * w + x] = 1;
        }
    }
    let mut balanced = 0;
    for seed in 0..50 {
        let mut rng = keyed_rng(seed, 1, 0, 99);
        let b = random_crop_box(&mut rng, &half, w, h, 16, 0.75);
        assert_eq!((b.w, b.h), (16, 16));
        balanced += usize::from(crop_is_balanced(&half, w, b, 0.75));
    }
    assert!(balanced >= 48, "only {balanced} of 50 crops balanced");
}

#[test]
fn flip_mirrors_rows() {
    let mut d = vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]; // 2 rows, w 3, c 2
    flip_horizontal(&mut d, 3, 2);
    assert_eq!(d, vec![5, 6, 3, 4, 1, 2, 11, 12, 9, 10, 7, 8]);
}

#[test]
fn photometric_coin_flips() {
    // Grayscale: saturation and hue are identities, so the image is unchanged exactly when
    // both brightness and contrast coins say no: probability 1/4.
    let mut unchanged = 0;
    for seed in 0..400 {
        let mut img = vec![100u8; 16];
        photometric_distortion(&mut keyed_rng(seed, 0, 0, 7), &mut img, 1);
        assert!(img.iter().all(|&v| v == img[0]));
        // brightness +-32 then contrast 0.5..1.5 (either order) stays in [34, 198].
        assert!((34..=198).contains(&img[0]), "{}", img[0]);
        unchanged += usize::from(img[0] == 100);
    }
    // Binomial(400, 1/4): mean 100, sd 8.7.
    assert!((65..=135).contains(&unchanged), "{unchanged}");
    // Colour: deterministic for a seed, and some seed changes the hue/saturation.
    let colour = pattern(8, 4, 3);
    let run = |seed| {
        let mut v = colour.clone();
        photometric_distortion(&mut keyed_rng(seed, 0, 0, 7), &mut v, 3);
        v
    };
    assert_eq!(run(5), run(5));
    assert!((0..20).any(|s| run(s) != colour));
}

fn synthetic(n: usize, w: usize, h: usize) -> Dataset {
    let train = (0..n)
        .map(|i| {
            let image = (0..w * h).map(|p| ((p * 7 + i * 31) % 256) as u8).collect();
            // A foreground square whose position depends on the image.
            let label = (0..w * h)
                .map(|p| {
                    let (x, y) = (p % w, p / w);
                    u8::from(x >= i % 8 && x < i % 8 + w / 2 && y < h / 2)
                })
                .collect();
            Sample {
                name: format!("img_{i}"),
                image,
                channels: 1,
                label,
                h,
                w,
            }
        })
        .collect();
    Dataset {
        config: DataConfig::default(),
        num_classes: 2,
        classes: vec!["background".into(), "foreground".into()],
        train: Samples::in_memory(train),
        val: Samples::in_memory(Vec::new()),
        train_cases: Vec::new(),
        val_cases: Vec::new(),
    }
}

fn job(crop: usize, scale: usize) -> JobConfig {
    let mut cfg = JobConfig {
        crop,
        batch: 3,
        seed: 11,
        ..JobConfig::default()
    };
    cfg.data.scale = [scale, scale];
    cfg.data.flip = 0.5;
    cfg.data.photometric = true;
    cfg.data.ratio_range = Some([0.5, 2.0]);
    cfg
}

#[test]
fn batches_are_pure_functions_of_seed_and_iteration() {
    let ds = synthetic(5, 24, 20);
    let cfg = job(16, 32);
    let b = train_batch(&ds, &cfg, 4).unwrap();
    assert_eq!((b.n, b.h, b.w), (3, 16, 16));
    assert_eq!(b.images.len(), 3 * 3 * 16 * 16);
    assert_eq!(b.labels.len(), 3 * 16 * 16);
    assert!(b.labels.iter().all(|&l| l == 0 || l == 1 || l == 255));
    assert_eq!(b, train_batch(&ds, &cfg, 4).unwrap());
    assert_ne!(b, train_batch(&ds, &cfg, 5).unwrap());
    let other_seed = JobConfig {
        seed: 12,
        ..cfg.clone()
    };
    assert_ne!(b, train_batch(&ds, &other_seed, 4).unwrap());
}

#[test]
fn small_images_are_padded_to_the_crop() {
    // 20 x 12 image resized into scale 20 keeps 20 x 12; crop 32 pads both sides.
    let ds = synthetic(1, 20, 12);
    let mut cfg = job(32, 20);
    cfg.batch = 1;
    cfg.data.ratio_range = None;
    cfg.data.photometric = false;
    cfg.data.flip = 0.0;
    let mut rng = keyed_rng(0, 0, 0, 0);
    let ex = train_example(&ds.train.loaded().unwrap()[0], &cfg, &mut rng);
    assert_eq!(ex.resized, (20, 12));
    assert_eq!(
        ex.crop_box,
        CropBox {
            x: 0,
            y: 0,
            w: 20,
            h: 12
        }
    );
    assert_eq!(ex.label.len(), 32 * 32);
    for y in 0..32 {
        for x in 0..32 {
            let inside = x < 20 && y < 12;
            let l = ex.label[y * 32 + x];
            if inside {
                assert_eq!(l, ds.train.loaded().unwrap()[0].label[y * 20 + x]);
                let v = f32::from(ds.train.loaded().unwrap()[0].image[y * 20 + x]);
                for k in 0..3 {
                    let want = (v - MEAN[k]) / STD[k];
                    assert!((ex.image[k * 1024 + y * 32 + x] - want).abs() < 1e-6);
                }
            } else {
                assert_eq!(l, 255, "pad label at ({x}, {y})");
                assert!((0..3).all(|k| ex.image[k * 1024 + y * 32 + x] == 0.0));
            }
        }
    }
}

#[test]
fn flip_draw_flips_image_and_label_together() {
    let ds = synthetic(1, 16, 16);
    let mut cfg = job(16, 16);
    cfg.data.ratio_range = None;
    cfg.data.photometric = false;
    cfg.data.cat_max_ratio = 1.0;
    cfg.data.flip = 1.0;
    let ex = train_example(
        &ds.train.loaded().unwrap()[0],
        &cfg,
        &mut keyed_rng(1, 2, 3, 4),
    );
    assert!(ex.flipped);
    let s = &ds.train.loaded().unwrap()[0];
    for y in 0..16 {
        for x in 0..16 {
            assert_eq!(ex.label[y * 16 + x], s.label[y * 16 + 15 - x]);
            let v = f32::from(s.image[y * 16 + 15 - x]);
            assert!((ex.image[y * 16 + x] - (v - MEAN[0]) / STD[0]).abs() < 1e-6);
        }
    }
}

#[test]
fn loader_prefetches_and_resumes_without_replay() {
    let ds = Arc::new(synthetic(4, 24, 20));
    let cfg = job(16, 32);
    let mut from0 = TrainLoader::new(ds.clone(), &cfg, 0);
    let mut seen = Vec::new();
    for i in 0..5 {
        let (iter, b, _wait) = from0.next_batch().unwrap();
        assert_eq!(iter, i);
        assert_eq!(b, train_batch(&ds, &cfg, i).unwrap());
        seen.push(b);
    }
    drop(from0); // stops its thread (the test would hang on join otherwise)
    let mut from3 = TrainLoader::new(ds.clone(), &cfg, 3);
    let (iter, b, _) = from3.next_batch().unwrap();
    assert_eq!((iter, &b), (3, &seen[3]));
    let (iter, b, _) = from3.next_batch().unwrap();
    assert_eq!((iter, &b), (4, &seen[4]));
}

#[test]
fn dme_study_and_subject_splits() {
    let ds = Dataset::open(&dme(SplitConfig::Study)).unwrap();
    assert_eq!((ds.train_len(), ds.val_len()), (88, 22));
    assert_eq!(ds.val.loaded().unwrap()[0].name, "img_20"); // first line of val.txt
    assert_eq!(ds.val.loaded().unwrap()[21].name, "img_96"); // last line, no trailing newline
    for s in ds
        .train
        .loaded()
        .unwrap()
        .iter()
        .chain(ds.val.loaded().unwrap())
    {
        assert_eq!((s.w, s.h, s.channels), (256, 256, 1));
        assert!(s.label.iter().all(|&v| v <= 1));
    }
    let fluid: usize = ds
        .val
        .loaded()
        .unwrap()
        .iter()
        .map(|s| s.label.iter().filter(|&&v| v == 1).count())
        .sum();
    let frac = fluid as f64 / (22.0 * 256.0 * 256.0);
    assert!((frac - 0.0086).abs() < 0.0005, "val fluid fraction {frac}");

    let subj = Dataset::open(&dme(SplitConfig::Subjects {
        train: (1..=8).collect(),
        val: vec![9, 10],
    }))
    .unwrap();
    assert_eq!((subj.train_len(), subj.val_len()), (88, 22));
    assert_eq!(subj.val.loaded().unwrap()[0].name, "img_88");
    assert_eq!(subj.val.loaded().unwrap()[21].name, "img_109");
    assert_eq!(subj.train.loaded().unwrap()[0].name, "img_0");

    let limited = Dataset::open(&DataConfig {
        limit_train: Some(5),
        limit_val: Some(2),
        ..dme(SplitConfig::Study)
    })
    .unwrap();
    assert_eq!((limited.train_len(), limited.val_len()), (5, 2));
    assert_eq!(
        limited.train.loaded().unwrap()[0].name,
        ds.train.loaded().unwrap()[0].name
    );

    let val: Vec<_> = limited.val_images().collect::<Result<_, _>>().unwrap();
    assert_eq!(
        (val[0].w, val[0].h, val[0].label_w, val[0].label_h),
        (512, 512, 256, 256)
    );
    assert_eq!(val[0].image.len(), 3 * 512 * 512);
    assert_eq!(val[0].label, limited.val.loaded().unwrap()[0].label);
    // Pixel (3, 5) of the resized image, normalised, channel 2.
    let resized = resize_bilinear(
        &limited.val.loaded().unwrap()[0].image,
        256,
        256,
        1,
        512,
        512,
    );
    let want = (f32::from(resized[5 * 512 + 3]) - MEAN[2]) / STD[2];
    assert_eq!(val[0].image[2 * 512 * 512 + 5 * 512 + 3], want);

    let overlap = Dataset::open(&dme(SplitConfig::Subjects {
        train: vec![1, 2],
        val: vec![2],
    }));
    let e = overlap.unwrap_err().to_string();
    assert!(
        e.ends_with("data.split.subjects: subject 2 is in both the train and the val split"),
        "{e}"
    );
}

#[test]
fn dme_full_size_layout() {
    let cfg = DataConfig {
        root: data_root("dme").join("full"),
        limit_train: Some(2),
        limit_val: Some(1),
        ..DataConfig::default()
    };
    let ds = Dataset::open(&cfg).unwrap();
    assert_eq!(ds.val.loaded().unwrap()[0].name, "img_20");
    assert_eq!(
        (ds.val.loaded().unwrap()[0].w, ds.val.loaded().unwrap()[0].h),
        (768, 496)
    );
    // 0 / 255 masks become 0 / 1.
    assert!(ds
        .train
        .loaded()
        .unwrap()
        .iter()
        .all(|s| s.label.iter().all(|&v| v <= 1)));
}

#[test]
fn chase_db1_split_and_masks() {
    let cfg = DataConfig {
        dataset: "chase_db1".parse().unwrap(),
        root: data_root("chase_db1"),
        ..DataConfig::default()
    };
    let ds = Dataset::open(&cfg).unwrap();
    assert_eq!((ds.train_len(), ds.val_len()), (20, 8));
    assert_eq!(ds.train.loaded().unwrap()[0].name, "Image_01L");
    assert_eq!(ds.val.loaded().unwrap()[0].name, "Image_11L");
    assert_eq!(ds.val.loaded().unwrap()[7].name, "Image_14R");
    let (mut vessel, mut total) = (0usize, 0usize);
    for s in ds
        .train
        .loaded()
        .unwrap()
        .iter()
        .chain(ds.val.loaded().unwrap())
    {
        assert_eq!((s.w, s.h, s.channels), (999, 960, 3));
        assert!(s.label.iter().all(|&v| v <= 1));
        vessel += s.label.iter().filter(|&&v| v == 1).count();
        total += s.label.len();
    }
    // README: vessels cover 6.93 % of pixels on average.
    let frac = vessel as f64 / total as f64 * 100.0;
    assert!((frac - 6.93).abs() < 0.1, "vessel fraction {frac}");
}

// ---- bad input, on small temporary copies of the DME layout ----

fn write_png(path: &Path, w: u32, h: u32, v: u8) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    image::GrayImage::from_pixel(w, h, image::Luma([v]))
        .save(path)
        .unwrap();
}

/// The shipped DME description's layout, `extra` lines added.
fn describe_tiny(root: &Path, extra: &str) {
    std::fs::write(
        root.join("dataset.yaml"),
        format!(
            "classes: [background, fluid]\nimg_suffix: .png\n\
             train: {{img_path: 256/images, seg_map_path: 256/masks, ann_file: splits/train.txt}}\n\
             val: {{img_path: 256/images, seg_map_path: 256/masks, ann_file: splits/val.txt}}\n{extra}"
        ),
    )
    .unwrap();
}

/// root/256/{images,masks}/img_{0,1,2}.png (8 x 8), splits train: img_0 img_1, val: img_2.
fn tiny_dme() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    describe_tiny(r, "groups: 'img_(\\d+)'\n");
    for k in 0..3 {
        write_png(
            &r.join(format!("256/images/img_{k}.png")),
            8,
            8,
            40 * k as u8,
        );
        write_png(
            &r.join(format!("256/masks/img_{k}.png")),
            8,
            8,
            (k % 2) as u8,
        );
    }
    std::fs::create_dir_all(r.join("splits")).unwrap();
    std::fs::write(r.join("splits/train.txt"), "img_0\nimg_1").unwrap();
    std::fs::write(r.join("splits/val.txt"), "img_2").unwrap();
    dir
}

fn open(root: &Path) -> Result<Dataset, DataError> {
    Dataset::open(&DataConfig {
        root: root.to_path_buf(),
        ..DataConfig::default()
    })
}

#[test]
fn tiny_layout_opens() {
    let d = tiny_dme();
    let ds = open(d.path()).unwrap();
    assert_eq!((ds.train_len(), ds.val_len()), (2, 1));
    assert_eq!(ds.train.loaded().unwrap()[1].label, vec![1u8; 64]);
    assert_eq!(ds.val.loaded().unwrap()[0].image, vec![80u8; 64]);
}

#[test]
fn bad_id_names_split_file_and_line() {
    let d = tiny_dme();
    std::fs::write(d.path().join("splits/train.txt"), "img_0\n\nimg_7\n").unwrap();
    let e = open(d.path()).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, DataError::DataSet(_)), "{msg}");
    assert!(
        msg.contains("train.txt:3: case \"img_7\": image not found"),
        "{msg}"
    );
}

#[test]
fn missing_mask_is_named() {
    let d = tiny_dme();
    std::fs::remove_file(d.path().join("256/masks/img_2.png")).unwrap();
    let e = open(d.path()).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, DataError::DataSet(_)), "{msg}");
    assert!(
        msg.contains("val.txt:1: case \"img_2\" has no label") && msg.contains("masks/img_2.png"),
        "{msg}"
    );
}

#[test]
fn size_mismatch_is_named() {
    let d = tiny_dme();
    write_png(&d.path().join("256/masks/img_1.png"), 8, 6, 0);
    let e = open(d.path()).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, DataError::SizeMismatch { .. }), "{msg}");
    assert!(
        msg.contains("images/img_1.png") && msg.contains("8x6"),
        "{msg}"
    );
}

#[test]
fn corrupt_png_is_named() {
    let d = tiny_dme();
    std::fs::write(
        d.path().join("256/images/img_0.png"),
        b"\x89PNG\r\n\x1a\nnot really",
    )
    .unwrap();
    let e = open(d.path()).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, DataError::Decode { .. }), "{msg}");
    assert!(msg.contains("images/img_0.png"), "{msg}");
}

#[test]
fn empty_split_is_named() {
    let d = tiny_dme();
    std::fs::write(d.path().join("splits/val.txt"), "\n  \n").unwrap();
    let e = open(d.path()).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("val.txt: the list of cases is empty"), "{msg}");
    // A subject split that selects no image.
    std::fs::write(d.path().join("splits/val.txt"), "img_2").unwrap();
    let e = Dataset::open(&DataConfig {
        root: d.path().to_path_buf(),
        split: SplitConfig::Subjects {
            train: vec![1],
            val: vec![5],
        },
        ..DataConfig::default()
    })
    .unwrap_err();
    assert!(e.to_string().contains("the val split is empty"), "{e}");
}

#[test]
fn label_out_of_range_is_named() {
    let d = tiny_dme();
    write_png(&d.path().join("256/masks/img_0.png"), 8, 8, 3);
    let e = open(d.path()).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, DataError::Undeclared { .. }), "{msg}");
    assert!(
        msg.contains("masks/img_0.png: values {3}, the data set declares {0, 1}"),
        "{msg}"
    );
    // 255 is a value like any other until the description declares it the ignore label.
    write_png(&d.path().join("256/masks/img_0.png"), 8, 8, 255);
    let msg = open(d.path()).unwrap_err().to_string();
    assert!(msg.contains("add label_values: {255: 1}"), "{msg}");
    describe_tiny(d.path(), "ignore_index: 255\n");
    let ds = open(d.path()).unwrap();
    assert_eq!(ds.train.loaded().unwrap()[0].label, vec![255u8; 64]);
}

#[test]
fn missing_root() {
    // A folder without a description is named, with where to read how to describe one.
    let e = open(Path::new("/nonexistent/dme")).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("/nonexistent/dme: no data set description: expected dataset.json"),
        "{e}"
    );
}

#[test]
fn example_crop_matches_full_resize_then_crop() {
    // train_example resizes only what it needs; the result must equal MMSeg's order:
    // resize everything, RandomCrop on the resized label, crop the image.
    let mut ds = synthetic(3, 24, 20);
    let mut train = ds.train.loaded().unwrap().to_vec();
    train[2].label.iter_mut().for_each(|v| *v = 0); // one class only: no balanced crop
    ds.train = Samples::in_memory(train);
    let mut cfg = job(16, 40);
    cfg.data.ratio_range = None;
    cfg.data.photometric = false;
    cfg.data.flip = 0.0;
    for (i, s) in ds.train.loaded().unwrap().iter().enumerate() {
        for seed in 0..10 {
            let ex = train_example(s, &cfg, &mut keyed_rng(seed, i as u64, 0, 5));
            let (rw, rh) = scale_keep_ratio(s.w, s.h, cfg.data.scale);
            assert_eq!(ex.resized, (rw, rh));
            let full_label = resize_nearest(&s.label, s.w, s.h, rw, rh);
            let full_image = resize_bilinear(&s.image, s.w, s.h, 1, rw, rh);
            let b = random_crop_box(
                &mut keyed_rng(seed, i as u64, 0, 5),
                &full_label,
                rw,
                rh,
                16,
                0.75,
            );
            assert_eq!(ex.crop_box, b);
            for y in 0..b.h {
                for x in 0..b.w {
                    assert_eq!(ex.label[y * 16 + x], full_label[(b.y + y) * rw + b.x + x]);
                    let v = f32::from(full_image[(b.y + y) * rw + b.x + x]);
                    assert!((ex.image[y * 16 + x] - (v - MEAN[0]) / STD[0]).abs() < 1e-6);
                }
            }
        }
    }
}

#[test]
fn a_split_read_from_disk_gives_the_same_batches_and_images() {
    let cfg = dme(SplitConfig::Study);
    let memory = Dataset::open(&cfg).unwrap();
    let disk = Dataset::open_within(&cfg, 0).unwrap();
    assert!(memory.train.loaded().is_some() && disk.train.loaded().is_none());
    assert_eq!(disk.train.len(), memory.train.len());
    let job = JobConfig {
        data: cfg.clone(),
        crop: 64,
        batch: 3,
        ..JobConfig::default()
    };
    for iter in [0, 1, 57] {
        assert_eq!(
            train_batch(&disk, &job, iter).unwrap(),
            train_batch(&memory, &job, iter).unwrap()
        );
    }
    let images = |ds: &Dataset| ds.val_images().collect::<Result<Vec<_>, _>>().unwrap();
    assert_eq!(images(&disk), images(&memory));
    // A file gone after opening: the batch names it instead of training on nothing.
    let d = tiny_dme();
    let lazy = Dataset::open_within(
        &DataConfig {
            root: d.path().to_path_buf(),
            ..DataConfig::default()
        },
        0,
    )
    .unwrap();
    std::fs::remove_file(d.path().join("256/images/img_1.png")).unwrap();
    std::fs::remove_file(d.path().join("256/images/img_0.png")).unwrap();
    let job = JobConfig {
        data: lazy.config.clone(),
        crop: 8,
        batch: 2,
        ..JobConfig::default()
    };
    let e = train_batch(&lazy, &job, 0).unwrap_err().to_string();
    assert!(
        e.contains("256/images/img_") && e.contains("not found"),
        "{e}"
    );
}

#[test]
fn the_fingerprint_follows_the_files_of_each_split() {
    let d = tiny_dme();
    let fp = || open(d.path()).unwrap().fingerprint().unwrap();
    let before = fp();
    assert!(
        before.starts_with("train:") && before.contains(" val:"),
        "{before}"
    );
    assert_eq!(fp(), before);
    // A changed validation label changes the val part only.
    write_png(&d.path().join("256/masks/img_2.png"), 8, 8, 1);
    let after = fp();
    let parts = |s: &str| s.split(' ').map(str::to_string).collect::<Vec<_>>();
    assert_eq!(parts(&after)[0], parts(&before)[0]);
    assert_ne!(parts(&after)[1], parts(&before)[1]);
}

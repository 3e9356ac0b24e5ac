//! The pixels of prediction overlays (`sweep plot`): a job's validation image and label,
//! and a saved prediction, read for [`sweep_core::report::pictures::Pictures`].

use anyhow::{bail, Context, Result};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use sweep_core::job::JobConfig;
use sweep_core::report::pictures::Pictures;

use crate::Dataset;

/// Opens each job's data set once (jobs of a sweep share it) and serves its images.
pub struct Overlays {
    chosen: Vec<String>,
    opened: Mutex<HashMap<String, Arc<Dataset>>>,
}

impl Overlays {
    /// `chosen`: validation images to overlay (empty: best, median and worst).
    pub fn new(chosen: &[String]) -> Overlays {
        Overlays {
            chosen: chosen.to_vec(),
            opened: Mutex::new(HashMap::new()),
        }
    }

    fn dataset(&self, config: &JobConfig) -> Result<Arc<Dataset>> {
        let key = serde_json::to_string(&config.data)?;
        let mut opened = self.opened.lock().expect("not poisoned");
        if let Some(ds) = opened.get(&key) {
            return Ok(ds.clone());
        }
        let ds = Arc::new(Dataset::open(&config.data)?);
        opened.insert(key, ds.clone());
        Ok(ds)
    }
}

impl Pictures for Overlays {
    fn chosen(&self) -> &[String] {
        &self.chosen
    }

    fn image(&self, config: &JobConfig, name: &str) -> Result<(Vec<u8>, Vec<u8>, usize, usize)> {
        let ds = self.dataset(config)?;
        let Some(i) = (0..ds.val.len()).find(|&i| ds.val.name(i) == name) else {
            let known: Vec<&str> = (0..ds.val.len()).map(|i| ds.val.name(i)).collect();
            bail!(
                "no validation image {name:?} in {} (validation images: {})",
                config.data.root.display(),
                known.join(", ")
            );
        };
        let s = ds.val.get(i)?;
        let rgb = match s.channels {
            3 => s.image.clone(),
            1 => s.image.iter().flat_map(|&v| [v, v, v]).collect(),
            c => bail!("{name}: {c} channels"),
        };
        Ok((rgb, s.label.clone(), s.w, s.h))
    }

    fn prediction(&self, path: &Path) -> Result<(Vec<u8>, usize, usize)> {
        let img = image::open(path)
            .with_context(|| format!("reading prediction {}", path.display()))?
            .into_luma8();
        let (w, h) = (img.width() as usize, img.height() as usize);
        Ok((img.into_raw(), w, h))
    }
}

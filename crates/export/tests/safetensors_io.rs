//! `safetensors::{read, write}`: the round trip through MMSeg's modules (strict loading),
//! the `num_batches_tracked` buffers and metadata, dtype conversion, errors.

use std::borrow::Cow;
use std::collections::BTreeMap;

use safetensors::{Dtype, SafeTensors, View};
use sweep_core::job::Head;
use sweep_export::{safetensors as st, NamedTensor};

use crate::python::{number, run, Case};

/// `read` -> `write` -> `load_state_dict(strict=True)` into a fresh reference network gives
/// the reference's tensors and logits bit for bit.
fn round_trip(case: Case) {
    let dir = tempfile::tempdir().unwrap();
    let tensors = case.reference(dir.path());
    let path = dir.path().join("model.safetensors");
    st::write(&path, &tensors, &BTreeMap::new()).unwrap();
    let [head, base, classes] = case.args();
    let d = dir.path().to_str().unwrap();
    let r = run(&["load", path.to_str().unwrap(), d, &head, &base, &classes]);
    let diff = number(&r, "logits_max_abs_diff");
    println!("safetensors round trip, {head}: logits max |Δ| = {diff:e}, {r}");
    assert_eq!(diff, 0.0, "{r}");
    assert_eq!(number(&r, "aux_max_abs_diff"), 0.0, "{r}");
    assert_eq!(number(&r, "tensors_max_abs_diff"), 0.0, "{r}");
    assert_eq!(r["tensors_dtypes"], serde_json::json!(["torch.float32"]));
    assert_eq!(
        r["num_batches_tracked"],
        serde_json::json!([["torch.int64", [], 0]])
    );
    let bns = tensors
        .iter()
        .filter(|t| t.key.ends_with(".running_mean"))
        .count();
    assert_eq!(number(&r, "num_batch_norms") as usize, bns);
}

#[test]
fn fcn_safetensors_round_trip_loads_strictly() {
    round_trip(Case::new(Head::Fcn, 2));
}

#[test]
fn deeplabv3_safetensors_round_trip_loads_strictly() {
    round_trip(Case::new(Head::Deeplabv3, 2));
}

#[test]
fn pspnet_safetensors_round_trip_loads_strictly() {
    round_trip(Case::new(Head::Pspnet, 4));
}

fn tensor(key: &str, shape: &[usize], data: &[f32]) -> NamedTensor {
    NamedTensor {
        key: key.into(),
        shape: shape.to_vec(),
        data: data.to_vec(),
    }
}

#[test]
fn write_adds_num_batches_tracked_and_metadata_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    std::fs::write(&path, b"old").unwrap();
    let tensors = vec![
        tensor("a.conv.weight", &[2, 1, 1, 1], &[0.5, -1.0]),
        tensor("a.bn.running_mean", &[2], &[0.25, 3.0]),
        tensor("a.bn.running_var", &[2], &[1.0, 2.0]),
    ];
    let meta = BTreeMap::from([("format".to_string(), "pt".to_string())]);
    st::write(&path, &tensors, &meta).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let tracked = file.tensor("a.bn.num_batches_tracked").unwrap();
    assert_eq!(
        (tracked.dtype(), tracked.shape(), tracked.data()),
        (Dtype::I64, &[][..], &[0u8; 8][..])
    );
    assert_eq!(file.len(), 4);
    let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
    assert_eq!(header.metadata().as_ref().unwrap()["format"], "pt");
    // read() gives the floats back (sorted by key) and skips the int64 buffer.
    let mut sorted = tensors.clone();
    sorted.sort_by(|a, b| a.key.cmp(&b.key));
    assert_eq!(st::read(&path).unwrap(), sorted);
    // Only the file: the temporary one was renamed onto it.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

/// A tensor of any dtype, for files `write` does not make.
struct Raw(Dtype, Vec<usize>, Vec<u8>);

impl View for &Raw {
    fn dtype(&self) -> Dtype {
        self.0
    }
    fn shape(&self) -> &[usize] {
        &self.1
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.2)
    }
    fn data_len(&self) -> usize {
        self.2.len()
    }
}

#[test]
fn read_converts_f16_bf16_f64_and_skips_integers() {
    let le16 = |v: &[u16]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let tensors = [
        ("half", Raw(Dtype::F16, vec![2], le16(&[0x3c00, 0xc100]))),
        (
            "brain",
            Raw(Dtype::BF16, vec![1, 2], le16(&[0x3f80, 0xc040])),
        ),
        (
            "double",
            Raw(
                Dtype::F64,
                vec![2],
                [0.1f64, -2.5]
                    .iter()
                    .flat_map(|x| x.to_le_bytes())
                    .collect(),
            ),
        ),
        (
            "steps",
            Raw(Dtype::I64, vec![], vec![7, 0, 0, 0, 0, 0, 0, 0]),
        ),
        ("mask", Raw(Dtype::BOOL, vec![1], vec![1])),
    ];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mixed.safetensors");
    safetensors::serialize_to_file(tensors.iter().map(|(k, v)| (*k, v)), None, &path).unwrap();
    assert_eq!(
        st::read(&path).unwrap(),
        [
            tensor("brain", &[1, 2], &[1.0, -3.0]),
            tensor("double", &[2], &[0.1, -2.5]),
            tensor("half", &[2], &[1.0, -2.5])
        ]
    );
}

#[test]
fn read_and_write_errors_name_the_file_or_key() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.safetensors");
    std::fs::write(&garbage, b"not a safetensors file").unwrap();
    for path in [garbage, dir.path().join("absent.safetensors")] {
        let e = format!("{:#}", st::read(&path).unwrap_err());
        assert!(e.contains(&path.display().to_string()), "{e}");
    }
    let path = dir.path().join("bad.safetensors");
    let e = st::write(&path, &[tensor("w", &[2, 2], &[1.0])], &BTreeMap::new()).unwrap_err();
    assert!(
        format!("{e:#}").contains("tensor `w` has 1 values"),
        "{e:#}"
    );
    assert!(!path.exists());
}

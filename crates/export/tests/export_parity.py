"""PyTorch side of sweep-export's tests (tests/export.rs): the reference network is
crates/train/tests/mmseg_reference.py (MMSeg's module structure, so MMSeg's key names).

    python export_parity.py reference DIR HEAD BASE CLASSES SEED H W
        EncoderDecoder(HEAD, BASE, CLASSES) with seeded random weights (batch-norm statistics
        included), eval mode; writes DIR/reference.safetensors (its state_dict), DIR/input.npy
        [2, 3, H, W], DIR/logits.npy and DIR/aux.npy (decode / auxiliary head logits).
    python export_parity.py onnx MODEL DIR
        onnx.checker.check_model(MODEL, full_check=True), then ONNX Runtime (CPU) on
        DIR/input.npy, whole and its first sample alone (N is symbolic).
    python export_parity.py load WEIGHTS DIR HEAD BASE CLASSES
        loads WEIGHTS (.safetensors, or a .pth checkpoint {'meta', 'state_dict'} through
        torch.load(weights_only=True), mmap or not) into a fresh reference network with
        strict=True and runs DIR/input.npy.

`onnx` and `load` print one JSON line of max |difference| against the reference for the
Rust test to assert on; they only fail themselves when something cannot run at all.
A missing package exits with status 3 and a message naming scripts/setup-libtorch.
"""

import importlib
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
# mmseg_reference.py: the reference network with MMSeg's module structure and key names.
sys.path.insert(0, os.path.join(HERE, "..", "..", "train", "tests"))


def need(*modules):
    """Imports what a command uses (torch alone takes seconds), or exits with status 3."""
    try:
        return [importlib.import_module(m) for m in modules]
    except ImportError as e:
        print(
            f"export_parity.py: {e}: run scripts/setup-libtorch (it installs torch, onnx, "
            "onnxruntime and safetensors into the workspace's .venv), or set SWEEP_PYTHON to a "
            "Python that has them",
            file=sys.stderr,
        )
        sys.exit(3)


(np,) = need("numpy")


def network(head, base, classes):
    (mmseg_reference,) = need("mmseg_reference")
    return mmseg_reference.EncoderDecoder(head, int(base), int(classes)).eval()


def reference(out, head, base, classes, seed, h, w):
    torch, st, mmseg_reference = need("torch", "safetensors.torch", "mmseg_reference")
    gen = torch.Generator().manual_seed(int(seed))
    model = network(head, base, classes)
    mmseg_reference.randomise(model, gen)
    x = torch.randn((2, 3, int(h), int(w)), generator=gen)
    with torch.no_grad():
        logits, aux = model(x)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    st.save_file(state, os.path.join(out, "reference.safetensors"))
    for name, t in [("input", x), ("logits", logits), ("aux", aux)]:
        np.save(os.path.join(out, f"{name}.npy"), t.numpy())


def max_diff(a, b):
    if a.shape != b.shape:
        raise SystemExit(f"shape {list(a.shape)} differs from the reference's {list(b.shape)}")
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max())


def check_onnx(model_path, out):
    onnx, ort = need("onnx", "onnxruntime")
    onnx.checker.check_model(model_path, full_check=True)
    x = np.load(os.path.join(out, "input.npy"))
    ref = np.load(os.path.join(out, "logits.npy"))
    sess = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    (logits,) = sess.run(["logits"], {"input": x})
    (first,) = sess.run(["logits"], {"input": x[:1]})
    print(json.dumps({
        "max_abs_diff": max_diff(logits, ref),
        "max_abs_diff_batch_1": max_diff(first, ref[:1]),
        "reference_std": float(ref.std()),
    }))


def check_load(weights, out, head, base, classes):
    torch, st = need("torch", "safetensors.torch")
    model = network(head, base, classes)
    extra = {}
    if weights.endswith(".pth"):
        state, extra = load_checkpoint(torch, weights)
    else:
        state = st.load_file(weights)
    model.load_state_dict(state, strict=True)
    reference_state = st.load_file(os.path.join(out, "reference.safetensors"))
    x = torch.from_numpy(np.load(os.path.join(out, "input.npy")))
    with torch.no_grad():
        logits, aux = model(x)
    tracked = [v for k, v in state.items() if k.endswith("num_batches_tracked")]
    floats = [k for k, v in reference_state.items() if v.is_floating_point()]
    print(json.dumps({
        "logits_max_abs_diff": max_diff(logits.numpy(), np.load(os.path.join(out, "logits.npy"))),
        "aux_max_abs_diff": max_diff(aux.numpy(), np.load(os.path.join(out, "aux.npy"))),
        "tensors_max_abs_diff": max(
            float((state[k].double() - reference_state[k].double()).abs().max()) for k in floats
        ),
        "tensors_dtypes": sorted({str(state[k].dtype) for k in floats}),
        "num_batches_tracked": sorted({(str(t.dtype), tuple(t.shape), int(t)) for t in tracked}),
        "num_batch_norms": len(tracked),
        **extra,
    }))


def load_checkpoint(torch, path):
    """MMSeg's checkpoint layout, as torch.load(weights_only=True) reads it."""
    import collections
    import zipfile

    ckpt = torch.load(path, weights_only=True)
    mapped = torch.load(path, weights_only=True, mmap=True)
    state = ckpt["state_dict"]
    same = all(torch.equal(state[k], mapped["state_dict"][k]) for k in state)
    return state, {
        "checkpoint_keys": sorted(ckpt),
        "ordered_dict": isinstance(state, collections.OrderedDict),
        "meta": ckpt["meta"],
        "mmap_equal": same and list(state) == list(mapped["state_dict"]),
        # CRC-32s and headers as zipfile checks them (torch's reader skips the CRCs).
        "zip_ok": zipfile.ZipFile(path).testzip() is None,
    }


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    {"reference": reference, "onnx": check_onnx, "load": check_load}[cmd](*args)


if __name__ == "__main__":
    main()

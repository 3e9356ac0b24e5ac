"""PyTorch eager and ONNX Runtime sides of `sweep bench predict` (src/bench_predict.rs, which
embeds this file and writes it beside mmseg_reference.py, the reference network with MMSeg's
module structure and key names).

    python torch_slide_infer.py DIR

DIR/config.json says what to run: image size, windows (sweep's `slide_windows`, so the same
ones), the padded window size, windows per forward, head / base / classes, threads, device,
ONNX Runtime's execution providers. DIR holds images.f32 ([n, 3, h, w], float32 LE),
weights.safetensors (sweep's network under MMSeg's keys), model.onnx (its `sweep export`
graph) and sweep_logits.f32 (sweep's averaged logits of image 0, [1, C, h, w]).

Each side runs MMSeg's slide loop (logits of each window batch summed into place, divided by
the count of windows over each pixel), then the per-pixel argmax brought to the host.

Prints one JSON line when the sides are set up: {"sides": {name: {"info": ...} or
{"error": ...}}}. Then reads requests {"side": name, "image": i} from stdin, one a line,
and answers each with one line: {"secs": time of that image} (image 0 also gives
"max_abs_diff", its logits against sweep's, outside the timing) or {"error": ...}. The
caller interleaves the sides image by image, so a busy machine slows them alike.
"""
import importlib
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def need(*modules):
    """Imports a side's packages, or raises naming scripts/setup-libtorch."""
    try:
        return [importlib.import_module(m) for m in modules]
    except ImportError as e:
        raise RuntimeError(
            f"{e}: run scripts/setup-libtorch (it installs torch, onnxruntime and safetensors "
            "into the workspace's .venv), or set SWEEP_PYTHON to a Python that has them"
        ) from None


def torch_side(cfg):
    """PyTorch eager: the reference network with sweep's weights; (infer, info)."""
    torch, st, mmseg_reference = need("torch", "safetensors.torch", "mmseg_reference")
    import torch.nn.functional as F

    torch.set_num_threads(cfg["threads"])
    dev = torch.device(cfg["device"])
    net = mmseg_reference.EncoderDecoder(cfg["head"], cfg["base"], cfg["classes"])
    del net.auxiliary_head  # sweep's network has none (`aux_head: false`)
    weights = st.load_file(os.path.join(cfg["dir"], "weights.safetensors"))
    net.load_state_dict(weights, strict=True)
    net = net.to(dev).eval()
    (th, tw), c, b, wins = cfg["pad"], cfg["classes"], cfg["batch"], cfg["windows"]

    def logits_of(x):
        h, w = x.shape[2:]
        total = x.new_zeros((1, c, h, w))
        count = x.new_zeros((1, 1, h, w))
        for i in range(0, len(wins), b):
            group = wins[i:i + b]
            batch = torch.cat([
                F.pad(x[:, :, y1:y2, x1:x2], (0, tw - (x2 - x1), 0, th - (y2 - y1)))
                for y1, y2, x1, x2 in group
            ])
            out = net.decode_head(net.backbone(batch))
            for j, (y1, y2, x1, x2) in enumerate(group):
                total[:, :, y1:y2, x1:x2] += out[j:j + 1, :, :y2 - y1, :x2 - x1]
                count[:, :, y1:y2, x1:x2] += 1
        return total / count

    def infer(img):
        with torch.inference_mode():
            logits = logits_of(torch.from_numpy(img[None]).to(dev))
            logits.argmax(1).to(torch.uint8).cpu()
        return lambda: logits.cpu().numpy()

    return infer, f"torch {torch.__version__}, {torch.get_num_threads()} threads"


def onnx_side(cfg, provider):
    """ONNX Runtime on the exported graph with one execution provider; (infer, info)."""
    (ort,) = need("onnxruntime")
    available = ort.get_available_providers()
    if provider not in available:
        raise RuntimeError(f"not available (onnxruntime {ort.__version__} has {', '.join(available)})")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = cfg["threads"]
    path = os.path.join(cfg["dir"], "model.onnx")
    sess = ort.InferenceSession(path, opts, providers=[provider])
    (th, tw), c, b, wins = cfg["pad"], cfg["classes"], cfg["batch"], cfg["windows"]

    def logits_of(x):
        h, w = x.shape[2:]
        total = np.zeros((1, c, h, w), np.float32)
        count = np.zeros((1, 1, h, w), np.float32)
        for i in range(0, len(wins), b):
            group = wins[i:i + b]
            batch = np.zeros((len(group), x.shape[1], th, tw), np.float32)
            for j, (y1, y2, x1, x2) in enumerate(group):
                batch[j, :, :y2 - y1, :x2 - x1] = x[0, :, y1:y2, x1:x2]
            (out,) = sess.run([cfg["output"]], {cfg["input"]: batch})
            for j, (y1, y2, x1, x2) in enumerate(group):
                total[:, :, y1:y2, x1:x2] += out[j:j + 1, :, :y2 - y1, :x2 - x1]
                count[:, :, y1:y2, x1:x2] += 1
        return total / count

    def infer(img):
        logits = logits_of(img[None])
        logits.argmax(1).astype(np.uint8)
        return lambda: logits

    return infer, f"onnxruntime {ort.__version__}, {cfg['threads']} intra-op threads"


def max_diff(a, b):
    if a.shape != b.shape:
        raise RuntimeError(f"logits of shape {list(a.shape)}, sweep's are {list(b.shape)}")
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max())


def error_text(e):
    return str(e) if isinstance(e, RuntimeError) else f"{type(e).__name__}: {e}"


def say(obj):
    print(json.dumps(obj), flush=True)


def main():
    d = sys.argv[1]
    cfg = json.load(open(os.path.join(d, "config.json")))
    cfg["dir"] = d
    h, w, c = cfg["height"], cfg["width"], cfg["classes"]
    read = lambda name, shape: np.fromfile(os.path.join(d, name), dtype="<f4").reshape(shape)
    images = read("images.f32", (cfg["images"], 3, h, w))
    ref = read("sweep_logits.f32", (1, c, h, w))
    makers = {"torch": lambda: torch_side(cfg)}
    for provider in cfg["providers"]:
        makers[provider] = lambda p=provider: onnx_side(cfg, p)
    sides, status = {}, {}
    for name, make in makers.items():
        try:
            sides[name], info = make()
            status[name] = {"info": info}
        except Exception as e:  # one side failing leaves the others' numbers
            status[name] = {"error": error_text(e)}
    say({"sides": status})
    for line in sys.stdin:
        req = json.loads(line)
        try:
            t0 = time.perf_counter()
            logits = sides[req["side"]](images[req["image"]])
            answer = {"secs": time.perf_counter() - t0}
            if req["image"] == 0:
                answer["max_abs_diff"] = max_diff(logits(), ref)
        except Exception as e:
            answer = {"error": error_text(e)}
        say(answer)


if __name__ == "__main__":
    try:
        (np,) = need("numpy")
    except RuntimeError as e:
        print(f"torch_slide_infer.py: {e}", file=sys.stderr)
        sys.exit(3)
    main()

"""Vertebral-body segmentation of CT with a small MONAI 3D UNet: the model, its weights and inference.

Weights format (what `--weights FILE` takes; train.py writes it):
  FILE            a PyTorch state_dict of the network (torch.save; loaded with weights_only=True)
  FILE minus .pt, plus .json   (e.g. vertebral-bodies.pt -> vertebral-bodies.json) the hyper-parameters:
    {"format": "deployctl-ctseg/1",
     "network": {"name": "monai.networks.nets.UNet", "spatial_dims": 3, "in_channels": 1, "out_channels": 2,
                 "channels": [...], "strides": [...], "num_res_units": N, "norm": "instance"},
     "spacing_mm": [2.0, 2.0, 2.0],        the grid the network sees (inputs are resampled to it, RAS+)
     "intensity_window_hu": [-250, 1250],  HU clipped to it, then scaled to 0..1
     "roi_size": [64, 64, 64],             the sliding-window patch
     "classes": ["background", "vertebral_body"],
     "training": {...}}                    how it was trained and the Dice it reached (informative)
Inference: RAS+ volume -> clip/scale -> average-pool and trilinear resampling to the network spacing ->
sliding-window inference (Gaussian-weighted overlap; float16 autocast on CUDA) -> softmax -> trilinear back
to the input grid -> foreground probability > 0.5.
"""

import json
import math
import os
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_WEIGHTS = os.path.join(HERE, "weights", "vertebral-bodies.pt")
FORMAT = "deployctl-ctseg/1"


def meta_path(weights):
    base = weights[:-3] if weights.endswith(".pt") else weights
    return base + ".json"


def build_network(net):
    from monai.networks.nets import UNet

    if net.get("name") != "monai.networks.nets.UNet":
        raise ValueError(f"unsupported network {net.get('name')!r} (this workload builds monai.networks.nets.UNet)")
    return UNet(spatial_dims=int(net.get("spatial_dims", 3)), in_channels=int(net.get("in_channels", 1)),
                out_channels=int(net.get("out_channels", 2)), channels=tuple(net["channels"]),
                strides=tuple(net["strides"]), num_res_units=int(net.get("num_res_units", 1)),
                norm=net.get("norm", "instance"))


def choose_device(name="auto"):
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda: no CUDA device is available to PyTorch")
    if name not in ("cpu", "cuda"):
        raise ValueError(f"--device {name}: expected auto, cpu or cuda")
    return torch.device(name)


def load_model(weights=DEFAULT_WEIGHTS, device="cpu"):
    """(model in eval mode on DEVICE, meta dict)."""
    import torch

    mp = meta_path(weights)
    if not os.path.isfile(weights):
        raise FileNotFoundError(f"{weights}: no such weights file")
    if not os.path.isfile(mp):
        raise FileNotFoundError(f"{mp}: the weights' JSON (network hyper-parameters) is missing")
    with open(mp) as f:
        meta = json.load(f)
    if meta.get("format") != FORMAT:
        raise ValueError(f"{mp}: format {meta.get('format')!r}, expected {FORMAT!r}")
    model = build_network(meta["network"])
    state = torch.load(weights, map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    model.eval().to(device)
    return model, meta


def normalise(hu, window):
    lo, hi = window
    return ((np.clip(hu, lo, hi) - lo) / float(hi - lo)).astype(np.float32)


def predict_probability(model, meta, hu, spacing, device, sw_batch_size=4, overlap=0.25):
    """Foreground probability (float32, HU's grid) of a RAS+ HU volume with voxel SPACING (mm)."""
    import torch
    import torch.nn.functional as F
    from monai.inferers import sliding_window_inference

    device = torch.device(device)
    net_sp = [float(s) for s in meta["spacing_mm"]]
    roi = tuple(int(r) for r in meta["roi_size"])
    x = torch.from_numpy(normalise(hu, meta["intensity_window_hu"]))[None, None]
    shape = x.shape[2:]
    # average-pool by the whole factor (anti-aliasing), padding (edge values) to a multiple of it, so that the
    # padded input grid and the network grid cover the same extent
    k = [max(1, int(math.floor(n / s + 1e-6))) for n, s in zip(net_sp, spacing)]
    padded = [int(math.ceil(n / kk) * kk) for n, kk in zip(shape, k)]
    pad = [0, padded[2] - shape[2], 0, padded[1] - shape[1], 0, padded[0] - shape[0]]
    if any(pad):
        x = F.pad(x, pad, mode="replicate")
    if any(kk > 1 for kk in k):
        x = F.avg_pool3d(x, kernel_size=k, stride=k)
    target = [max(1, int(round(n * s / ns))) for n, s, ns in zip(padded, spacing, net_sp)]
    x = F.interpolate(x, size=target, mode="trilinear", align_corners=False)
    use_amp = device.type == "cuda"
    with torch.no_grad(), torch.autocast(device_type=device.type, dtype=torch.float16, enabled=use_amp):
        logits = sliding_window_inference(x.to(device), roi, sw_batch_size, model, overlap=overlap, mode="gaussian",
                                          sw_device=device, device=torch.device("cpu"))
    prob = torch.softmax(logits.float(), dim=1)[:, 1:2]
    prob = F.interpolate(prob, size=padded, mode="trilinear", align_corners=False)
    return prob[0, 0, :shape[0], :shape[1], :shape[2]].numpy()


def segment(model, meta, hu, spacing, device, **kw):
    """(labels uint8 RAS: VerSe codes when the levels were identified, else 1 per body; info dict)."""
    from common.spine import identify_levels

    t0 = time.time()
    prob = predict_probability(model, meta, hu, spacing, device, **kw)
    t1 = time.time()
    labels, info = identify_levels(prob > 0.5, hu, spacing)
    info["inference_s"] = round(t1 - t0, 2)
    info["levels_s"] = round(time.time() - t1, 2)
    return labels, info


def dice(a, b):
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    s = a.sum() + b.sum()
    return 1.0 if s == 0 else float(2.0 * (a & b).sum() / s)

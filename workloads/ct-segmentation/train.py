#!/usr/bin/env python3
"""Trains the vertebral-body UNet on synthetic CT phantoms (workloads/common/phantom.py) and reports Dice.

  train.py [--out FILE.pt] [--train 24] [--val 4] [--iterations 1200] [--batch 2] [--patch 64]
           [--channels 12,24,48,96] [--res-units 0] [--spacing 2] [--lr 3e-3] [--seed 0] [--device auto]
  (the defaults are the shipped weights' settings)
  train.py --smoke [--out FILE.pt]     a tiny run for CI (a few phantoms, a few iterations, small network)

Training phantoms are drawn at the network spacing (seeds 1000+i); held-out validation phantoms (seeds
900000+i) at a clinical spacing, 0.9 x 0.9 x 2.5 mm, go through the same inference path as `run` (resampling,
sliding window, back to the input grid), and Dice of the vertebral bodies is measured there. Writes FILE.pt
(state_dict) and FILE.json (hyper-parameters, spacing, window, the training record); see segment.py.
"""

import argparse
import json
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
for candidate in (os.path.dirname(HERE), HERE):  # workloads/common beside this directory (or inside it)
    if os.path.isdir(os.path.join(candidate, "common")):
        sys.path.insert(0, candidate)
        break

import numpy as np  # noqa: E402

import segment  # noqa: E402
from common.phantom import make_phantom  # noqa: E402

TRAIN_SEED0 = 1000
VAL_SEED0 = 900000
VAL_SPACING = (0.9, 0.9, 2.5)


def parse(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=None, help="weights file (.pt); default the shipped weights, or a temporary "
                                                 "file with --smoke")
    ap.add_argument("--train", type=int, default=24, help="training phantoms")
    ap.add_argument("--val", type=int, default=4, help="held-out validation phantoms")
    ap.add_argument("--iterations", type=int, default=1200)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--patch", type=int, default=64)
    ap.add_argument("--channels", default="12,24,48,96")
    ap.add_argument("--res-units", type=int, default=0)
    ap.add_argument("--spacing", type=float, default=2.0, help="network voxel size, mm (isotropic)")
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--init", default=None, help="start from these weights (fine-tuning)")
    ap.add_argument("--smoke", action="store_true", help="tiny CI run: 2 phantoms, 1 validation, 40 iterations")
    a = ap.parse_args(argv)
    if a.smoke:
        a.train, a.val, a.iterations, a.batch, a.patch = 2, 1, 40, 2, 32
        a.channels, a.res_units = "4,8,16", 0
        if a.out is None:
            a.out = os.path.join(tempfile.mkdtemp(prefix="ctseg-smoke-"), "smoke.pt")
    if a.out is None:
        a.out = segment.DEFAULT_WEIGHTS
    return a


def sample_patch(rng, vol, lab, patch, fg_coords, fg_fraction=0.7):
    """A PATCH^3 crop (zero padded): centred on a random body voxel with probability fg_fraction."""
    shape = np.array(vol.shape)
    if fg_coords is not None and len(fg_coords) and rng.random() < fg_fraction:
        c = fg_coords[rng.integers(len(fg_coords))] + rng.integers(-patch // 4, patch // 4 + 1, size=3)
    else:
        c = np.array([rng.integers(0, s) for s in shape])
    lo = c - patch // 2
    out_v = np.zeros((patch,) * 3, np.float32)
    out_l = np.zeros((patch,) * 3, np.int64)
    src_lo = np.maximum(lo, 0)
    src_hi = np.minimum(lo + patch, shape)
    if np.any(src_hi <= src_lo):
        return out_v, out_l
    dst_lo = src_lo - lo
    dst_hi = dst_lo + (src_hi - src_lo)
    s = tuple(slice(a, b) for a, b in zip(src_lo, src_hi))
    d = tuple(slice(a, b) for a, b in zip(dst_lo, dst_hi))
    out_v[d] = vol[s]
    out_l[d] = lab[s]
    return out_v, out_l


def validate(model, meta, device, seeds, log, fov=None):
    dices = []
    for seed in seeds:
        kw = {"fov_mm": fov} if fov else {}
        p = make_phantom(seed=seed, spacing=VAL_SPACING, **kw)
        prob = segment.predict_probability(model, meta, p.volume, VAL_SPACING, device)
        from common.spine import split_bodies

        _, mask = split_bodies(prob > 0.5, VAL_SPACING)
        d = segment.dice(mask, p.labels > 0)
        dices.append(d)
        log(f"  validation phantom seed {seed}: Dice {d:.4f}")
    return dices


def main(argv=None):
    a = parse(argv)
    import torch
    from monai.losses import DiceCELoss

    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    device = segment.choose_device(a.device)

    def log(msg):
        print(msg, flush=True)

    channels = [int(c) for c in a.channels.split(",")]
    net = {"name": "monai.networks.nets.UNet", "spatial_dims": 3, "in_channels": 1, "out_channels": 2,
           "channels": channels, "strides": [2] * (len(channels) - 1), "num_res_units": a.res_units,
           "norm": "instance"}
    meta = {"format": segment.FORMAT, "network": net, "spacing_mm": [a.spacing] * 3,
            "intensity_window_hu": [-250.0, 1250.0], "roi_size": [max(a.patch, 32)] * 3,
            "classes": ["background", "vertebral_body"]}
    if a.smoke:
        meta["roi_size"] = [a.patch] * 3

    t0 = time.time()
    sp = (a.spacing,) * 3
    fov = (300.0, 260.0, 120.0) if a.smoke else (360.0, 300.0, 160.0)
    data = []
    for i in range(a.train):
        p = make_phantom(seed=TRAIN_SEED0 + i, spacing=sp, fov_mm=fov)
        lab = (p.labels > 0).astype(np.int64)
        data.append((segment.normalise(p.volume, meta["intensity_window_hu"]), lab, np.argwhere(lab > 0)))
    log(f"{a.train} training phantoms at {a.spacing} mm in {time.time() - t0:.1f} s")

    model = segment.build_network(net).to(device)
    if a.init:
        model.load_state_dict(torch.load(a.init, map_location="cpu", weights_only=True))
    params = sum(p.numel() for p in model.parameters())
    log(f"UNet channels {channels}, res units {a.res_units}: {params} parameters; device {device}")
    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True)
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=1e-5)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=a.lr, total_steps=max(1, a.iterations), pct_start=0.1)
    use_amp = device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)

    t1, c1 = time.time(), time.process_time()
    model.train()
    running = []
    for it in range(1, a.iterations + 1):
        vs, ls = [], []
        for _ in range(a.batch):
            v, l, fg = data[rng.integers(len(data))]
            pv, pl = sample_patch(rng, v, l, a.patch, fg)
            if rng.random() < 0.5:  # left-right flip
                pv, pl = pv[::-1].copy(), pl[::-1].copy()
            pv = pv * rng.uniform(0.93, 1.07) + rng.uniform(-0.04, 0.04)  # window/contrast jitter
            vs.append(pv)
            ls.append(pl)
        x = torch.from_numpy(np.stack(vs)[:, None]).to(device)
        y = torch.from_numpy(np.stack(ls)[:, None]).to(device)
        with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=use_amp):
            loss = loss_fn(model(x), y)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        sched.step()
        running.append(float(loss.detach()))
        if it % 50 == 0 or it == a.iterations:
            log(f"iteration {it}/{a.iterations}: loss {np.mean(running[-50:]):.4f} "
                f"({(time.time() - t1) / it:.2f} s/iteration)")
    train_s, train_cpu_s = time.time() - t1, time.process_time() - c1

    model.eval()
    t2 = time.time()
    seeds = [VAL_SEED0 + i for i in range(a.val)]
    dices = validate(model, meta, device, seeds, log, fov=fov if a.smoke else None)
    val_s = time.time() - t2
    mean = float(np.mean(dices)) if dices else float("nan")
    log(f"held-out Dice {mean:.4f} (min {min(dices, default=float('nan')):.4f}) on {len(dices)} phantoms; "
        f"training {train_s:.0f} s, validation {val_s:.0f} s")

    import monai

    meta["training"] = {
        "phantom_seeds": [TRAIN_SEED0, TRAIN_SEED0 + a.train - 1], "iterations": a.iterations, "batch": a.batch,
        "patch": a.patch, "lr": a.lr, "loss": "DiceCE", "optimizer": "AdamW + one-cycle", "seed": a.seed,
        "augmentation": "foreground-biased crops (70 %), left-right flips, intensity scale/shift",
        "device": str(device), "train_seconds": round(train_s, 1), "train_cpu_seconds": round(train_cpu_s, 1),
        "threads": torch.get_num_threads(),
        "validation": {"seeds": seeds, "spacing_mm": list(VAL_SPACING), "dice": [round(d, 4) for d in dices],
                       "mean_dice": round(mean, 4)},
        "torch": torch.__version__, "monai": monai.__version__, "parameters": params, "smoke": a.smoke,
    }
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    torch.save(state, a.out)
    with open(segment.meta_path(a.out), "w") as f:
        json.dump(meta, f, indent=1, sort_keys=True)
        f.write("\n")
    log(f"wrote {a.out} ({os.path.getsize(a.out)} bytes) and {segment.meta_path(a.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

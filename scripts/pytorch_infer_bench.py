#!/usr/bin/env python3
"""PyTorch inference timing of mdistiller's 15 CIFAR-100 models (not a dependency of dkd).

Times eval-mode forward passes (torch.no_grad) of each model at a batch size, with
random inputs and fresh weights: the same thing `dkd bench --infer` measures. The
models are mdistiller's own code, imported from a checkout of
megvii-research/mdistiller given with --mdistiller (nothing of it is copied here).

Usage: python3 scripts/pytorch_infer_bench.py --mdistiller PATH [--threads 2]
           [--batch 64] [--steps 6] [--warmup 2] [--models resnet20,vgg8,...]
           [--data DIR --runs 3]
--data DIR: instead of random batches, the whole CIFAR-100 test set (DIR/cifar-100-binary/
test.bin or DIR/test.bin, normalised with mdistiller's mean and std, loaded before the
clock starts) in batches of --batch, --runs times: seconds per run, mean and sd, like
`dkd bench --infer all --data DIR`.
"""
import argparse, os, sys, time

# dkd's model names -> mdistiller's constructor names (mdistiller/models/cifar/__init__.py)
MODELS = [("resnet20", "resnet20"), ("resnet32", "resnet32"), ("resnet56", "resnet56"),
          ("resnet110", "resnet110"), ("resnet8x4", "resnet8x4"), ("resnet32x4", "resnet32x4"),
          ("ResNet50", "ResNet50"), ("wrn_16_2", "wrn_16_2"), ("wrn_40_1", "wrn_40_1"),
          ("wrn_40_2", "wrn_40_2"), ("vgg8", "vgg8_bn"), ("vgg13", "vgg13_bn"),
          ("MobileNetV2", "mobile_half"), ("ShuffleV1", "ShuffleV1"), ("ShuffleV2", "ShuffleV2")]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mdistiller", required=True, help="a checkout of megvii-research/mdistiller")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--models", default="", help="comma-separated dkd names (default: all 15)")
    ap.add_argument("--data", help="time the whole CIFAR-100 test set found in this folder")
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    models_dir = os.path.join(a.mdistiller, "mdistiller", "models")
    if not os.path.isdir(os.path.join(models_dir, "cifar")):
        sys.exit(f"pytorch_infer_bench: {models_dir}/cifar not found: is --mdistiller a checkout of mdistiller?")
    sys.path.insert(0, models_dir)   # import the cifar package alone (no training dependencies)
    import torch
    import cifar
    torch.set_num_threads(a.threads)
    want = set(a.models.split(",")) if a.models else None
    if a.data:
        return test_set(a, torch, cifar, want)
    print(f"PyTorch {torch.__version__}, {torch.get_num_threads()} thread(s), batch {a.batch}, eval mode, no_grad")
    print(f"{'model':<12} {'batch':>8} {'img/s':>12}")
    x = torch.randn(a.batch, 3, 32, 32)
    for name, ctor in MODELS:
        if want is not None and name not in want:
            continue
        net = getattr(cifar, ctor)(num_classes=100).eval()
        with torch.no_grad():
            for _ in range(a.warmup):
                net(x)
            t0 = time.perf_counter()
            for _ in range(a.steps):
                net(x)
            dt = time.perf_counter() - t0
        print(f"{name:<12} {a.batch:>8} {a.batch * a.steps / dt:>12.1f}", flush=True)


def test_set(a, torch, cifar, want):
    import numpy as np, statistics
    path = next((p for p in (os.path.join(a.data, "cifar-100-binary", "test.bin"), os.path.join(a.data, "test.bin"))
                 if os.path.isfile(p)), None)
    if not path:
        sys.exit(f"pytorch_infer_bench: no cifar-100-binary/test.bin or test.bin under {a.data}")
    t0 = time.perf_counter()
    raw = np.fromfile(path, dtype=np.uint8).reshape(-1, 3074)
    t_read = time.perf_counter() - t0
    t0 = time.perf_counter()
    x = torch.from_numpy(raw[:, 2:].reshape(-1, 3, 32, 32).astype(np.float32) / 255.0)
    mean = torch.tensor([0.5071, 0.4867, 0.4408]).view(1, 3, 1, 1)
    std = torch.tensor([0.2675, 0.2565, 0.2761]).view(1, 3, 1, 1)
    x = ((x - mean) / std).contiguous()
    t_norm = time.perf_counter() - t0
    n = x.shape[0]
    print(f"PyTorch {torch.__version__}, {torch.get_num_threads()} thread(s): inference over {path}: {n} images, "
          f"batch {a.batch}, eval mode, no_grad, {a.runs} run(s); data loading apart: read {t_read:.3f} s, "
          f"normalise {t_norm:.3f} s")
    print(f"{'model':<12} {'mean s':>9} {'sd s':>9} {'img/s':>10}  runs")
    for name, ctor in MODELS:
        if want is not None and name not in want:
            continue
        net = getattr(cifar, ctor)(num_classes=100).eval()
        secs = []
        with torch.no_grad():
            net(x[:a.batch])   # warm-up
            for _ in range(a.runs):
                t0 = time.perf_counter()
                for i in range(0, n, a.batch):
                    net(x[i:i + a.batch])
                secs.append(time.perf_counter() - t0)
        m = statistics.mean(secs); sd = statistics.stdev(secs) if len(secs) > 1 else 0.0
        print(f"{name:<12} {m:>9.3f} {sd:>9.3f} {n / m:>10.1f}  " + " ".join(f"{s:.3f}" for s in secs), flush=True)


if __name__ == "__main__":
    main()

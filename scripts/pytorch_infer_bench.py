#!/usr/bin/env python3
"""PyTorch inference timing of mdistiller's 15 CIFAR-100 models (not a dependency of dkd).

Times eval-mode forward passes (torch.no_grad) of each model at a batch size, with
random inputs and fresh weights: the same thing `dkd bench --infer` measures. The
models are mdistiller's own code, imported from a checkout of
megvii-research/mdistiller given with --mdistiller (nothing of it is copied here).

Usage: python3 scripts/pytorch_infer_bench.py --mdistiller PATH [--threads 2]
           [--batch 64] [--steps 6] [--warmup 2] [--models resnet20,vgg8,...]
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
    a = ap.parse_args()
    models_dir = os.path.join(a.mdistiller, "mdistiller", "models")
    if not os.path.isdir(os.path.join(models_dir, "cifar")):
        sys.exit(f"pytorch_infer_bench: {models_dir}/cifar not found: is --mdistiller a checkout of mdistiller?")
    sys.path.insert(0, models_dir)   # import the cifar package alone (no training dependencies)
    import torch
    import cifar
    torch.set_num_threads(a.threads)
    want = set(a.models.split(",")) if a.models else None
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


if __name__ == "__main__":
    main()

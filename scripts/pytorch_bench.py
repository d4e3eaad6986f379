#!/usr/bin/env python3
"""PyTorch reference timing of one DKD training step (not a dependency of dkd).

Builds mdistiller-shaped CIFAR ResNets (projection shortcuts) in
plain PyTorch, and times what mdistiller does per batch: teacher forward in
eval mode under no_grad, student forward in train mode, CE + DKD loss
(docs/dkd_loss.md), backward, SGD(momentum 0.9, wd 5e-4). Random inputs, fresh weights.
Usage: python3 scripts/pytorch_bench.py [--threads 2] [--batch 64] [--steps 10]
       python3 scripts/pytorch_bench.py --eval-ckpt resnet56.pth [--test-bin data/cifar-100-binary/test.bin]
       python3 scripts/pytorch_bench.py --mdistiller PATH [--pairs all|res56_res20,...] [--steps 10]

--mdistiller: instead of the models above, mdistiller's own code from a checkout given by
path (nothing of it is copied here): its CIFAR models, its DKD distiller class (loss and
teacher/student forward), and the 11 DKD pairs of configs/cifar100/dkd/*.yaml (teacher,
student, BETA, batch size); SGD with the config's LR, momentum and weight decay.
"""
import argparse, time
import torch, torch.nn as nn, torch.nn.functional as F

class Block(nn.Module):
    def __init__(s, cin, cout, stride):
        super().__init__()
        s.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False); s.bn1 = nn.BatchNorm2d(cout)
        s.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False); s.bn2 = nn.BatchNorm2d(cout)
        s.downsample = None
        if stride != 1 or cin != cout:
            s.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
    def forward(s, x):
        o = F.relu(s.bn1(s.conv1(x))); o = s.bn2(s.conv2(o))
        return F.relu(o + (x if s.downsample is None else s.downsample(x)))

class ResNet(nn.Module):
    def __init__(s, n, w=(16, 16, 32, 64), nc=100):
        super().__init__()
        s.conv1 = nn.Conv2d(3, w[0], 3, 1, 1, bias=False); s.bn1 = nn.BatchNorm2d(w[0])
        cin = w[0]
        for i, cout in enumerate(w[1:]):   # layer1, layer2, layer3: mdistiller's state_dict names
            blocks = []
            for j in range(n):
                blocks.append(Block(cin, cout, 2 if (j == 0 and i > 0) else 1)); cin = cout
            setattr(s, "layer%d" % (i + 1), nn.Sequential(*blocks))
        s.fc = nn.Linear(cin, nc)
    def forward(s, x):
        x = s.layer3(s.layer2(s.layer1(F.relu(s.bn1(s.conv1(x))))))
        return s.fc(torch.flatten(F.avg_pool2d(x, 8), 1))

def dkd(z, v, y, alpha, beta, T):
    gt = F.one_hot(y, z.shape[1]).float(); other = 1 - gt
    ps, pt = F.softmax(z / T, 1), F.softmax(v / T, 1)
    bs = torch.stack([(ps * gt).sum(1), (ps * other).sum(1)], 1)
    bt = torch.stack([(pt * gt).sum(1), (pt * other).sum(1)], 1)
    tckd = F.kl_div(torch.log(bs), bt, reduction="sum") * T * T / z.shape[0]
    nckd = F.kl_div(F.log_softmax(z / T - 1000 * gt, 1), F.softmax(v / T - 1000 * gt, 1), reduction="sum") * T * T / z.shape[0]
    return alpha * tckd + beta * nckd

def evaluate(ckpt, test_bin, threads):
    """Top-1/top-5 of a resnet56 checkpoint on a CIFAR-100 binary test file, in PyTorch."""
    import numpy as np
    torch.set_num_threads(threads)
    m = ResNet(9); m.load_state_dict(torch.load(ckpt, map_location="cpu")["model"]); m.eval()
    raw = np.fromfile(test_bin, dtype=np.uint8).reshape(-1, 3074)
    y = torch.from_numpy(raw[:, 1].astype(np.int64))
    x = torch.from_numpy(raw[:, 2:].reshape(-1, 3, 32, 32).astype(np.float32) / 255.0)
    mean = torch.tensor([0.5071, 0.4867, 0.4408]).view(1, 3, 1, 1); std = torch.tensor([0.2675, 0.2565, 0.2761]).view(1, 3, 1, 1)
    x = (x - mean) / std
    c1 = c5 = 0
    with torch.no_grad():
        for i in range(0, len(y), 64):
            top = m(x[i:i + 64]).topk(5, 1).indices
            c1 += (top[:, 0] == y[i:i + 64]).sum().item(); c5 += (top == y[i:i + 64, None]).any(1).sum().item()
    print("PyTorch %s: resnet56 %s on %d test images: top-1 %.2f top-5 %.2f" % (torch.__version__, ckpt, len(y), 100.0 * c1 / len(y), 100.0 * c5 / len(y)))

def mdistiller_pairs(root):
    """{name: (teacher, student, beta, batch, lr, momentum, wd)} from configs/cifar100/dkd/*.yaml."""
    import glob, os, re
    pairs = {}
    for f in sorted(glob.glob(os.path.join(root, "configs", "cifar100", "dkd", "*.yaml"))):
        txt = open(f).read()
        get = lambda key, d=None: (re.search(r"^\s*%s:\s*\"?([^\"\n]+)\"?" % key, txt, re.M) or [None, d])[1]
        pairs[os.path.basename(f)[:-5]] = (get("TEACHER"), get("STUDENT"), float(get("BETA", 8.0)),
                                           int(get("BATCH_SIZE", 64)), float(get("LR", 0.05)),
                                           float(get("MOMENTUM", 0.9)), float(get("WEIGHT_DECAY", 5e-4)))
    return pairs

def bench_mdistiller(a):
    """DKD training steps with mdistiller's models and DKD distiller, random inputs, fresh weights."""
    import importlib, os, sys, types, warnings
    warnings.filterwarnings("ignore")   # DKD.py's size_average deprecation notice
    root = a.mdistiller
    dist_dir = os.path.join(root, "mdistiller", "distillers")
    if not os.path.isfile(os.path.join(dist_dir, "DKD.py")):
        sys.exit(f"pytorch_bench: {dist_dir}/DKD.py not found: is --mdistiller a checkout of mdistiller?")
    sys.path.insert(0, os.path.join(root, "mdistiller", "models"))   # the cifar package alone
    import cifar
    pkg = types.ModuleType("mdistiller_distillers")   # DKD.py and its ._base, without the other distillers
    pkg.__path__ = [dist_dir]
    sys.modules["mdistiller_distillers"] = pkg
    DKD = importlib.import_module("mdistiller_distillers.DKD").DKD
    torch.set_num_threads(a.threads)
    pairs = mdistiller_pairs(root)
    want = list(pairs) if a.pairs == "all" else a.pairs.split(",")
    for name in want:
        if name not in pairs:
            sys.exit(f"pytorch_bench: no pair {name} in {root}/configs/cifar100/dkd (have: {', '.join(pairs)})")
        tn, sn, beta, batch, lr, mom, wd = pairs[name]
        B = a.batch or batch
        t = cifar.cifar_model_dict[tn][0](num_classes=100)
        s = cifar.cifar_model_dict[sn][0](num_classes=100)
        cfg = types.SimpleNamespace(DKD=types.SimpleNamespace(CE_WEIGHT=1.0, ALPHA=1.0, BETA=beta, T=4.0, WARMUP=20))
        d = DKD(s, t, cfg)
        d.train()   # (the distiller keeps the teacher in eval mode)
        opt = torch.optim.SGD(d.get_learnable_parameters(), lr=lr, momentum=mom, weight_decay=wd)
        x = torch.randn(B, 3, 32, 32); y = torch.randint(0, 100, (B,))
        for i in range(a.warmup + a.steps):
            if i == a.warmup: t0 = time.perf_counter()
            opt.zero_grad()
            _, losses = d(image=x, target=y, epoch=240)
            sum(l.mean() for l in losses.values()).backward()
            opt.step()
        dt = time.perf_counter() - t0
        print("PyTorch %s, %d thread(s): DKD train step %s -> %s, batch %d: %.1f img/s"
              % (torch.__version__, a.threads, tn, sn, B, B * a.steps / dt), flush=True)

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mdistiller", help="a checkout of megvii-research/mdistiller: time its DKD pairs")
    ap.add_argument("--pairs", default="all", help="with --mdistiller: config names (res56_res20,...) or all")
    ap.add_argument("--threads", type=int, default=2); ap.add_argument("--batch", type=int, default=0,
                                                                       help="default 64 (--mdistiller: the config's)")
    ap.add_argument("--steps", type=int, default=10); ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--eval-ckpt", help="instead: evaluate this resnet56 checkpoint on --test-bin")
    ap.add_argument("--test-bin", default="data/cifar-100-binary/test.bin")
    a = ap.parse_args()
    if a.eval_ckpt:
        return evaluate(a.eval_ckpt, a.test_bin, a.threads)
    if a.mdistiller:
        return bench_mdistiller(a)
    a.batch = a.batch or 64
    torch.set_num_threads(a.threads)
    t, s = ResNet(9).eval(), ResNet(3).train()
    opt = torch.optim.SGD(s.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    x = torch.randn(a.batch, 3, 32, 32); y = torch.randint(0, 100, (a.batch,))
    for i in range(a.warmup + a.steps):
        if i == a.warmup: t0 = time.time()
        opt.zero_grad()
        with torch.no_grad(): v = t(x)
        z = s(x)
        loss = F.cross_entropy(z, y) + dkd(z, v, y, 1.0, 2.0, 4.0)
        loss.backward(); opt.step()
    dt = time.time() - t0
    print("PyTorch %s, %d thread(s): DKD train step resnet56 -> resnet20, batch %d: %.1f img/s"
          % (torch.__version__, a.threads, a.batch, a.batch * a.steps / dt))

if __name__ == "__main__":
    main()

"""Run mdistiller's own trainer (tools/train.py, unmodified, from the checkout
named by $MDISTILLER) on the CPU,
on the same subset as dkd's --subset N --test-subset M, for the PyTorch side of the overlay.
Shims only (nothing of mdistiller is copied): no tensorboardX (a no-op SummaryWriter),
.cuda() is the identity, the data folder and teacher path point to this run's folder, and the
CIFAR-100 loaders take the first N training images and M test images spread evenly (as dkd).
usage: MDISTILLER=PATH [YACS_SITE=DIR] run_mdistiller.py CFG.yaml N M"""
import os, runpy, sys, types
MDISTILLER = os.environ.get("MDISTILLER") or sys.exit("set MDISTILLER to a checkout of megvii-research/mdistiller")
if os.environ.get("YACS_SITE"): sys.path.insert(0, os.environ["YACS_SITE"])   # yacs (a wheel unpacked there)
sys.path.insert(0, MDISTILLER)
tbx = types.ModuleType("tensorboardX")
class SummaryWriter:
    def __init__(self, *a, **k): pass
    def add_scalar(self, *a, **k): pass
    def flush(self): pass
tbx.SummaryWriter = SummaryWriter
sys.modules["tensorboardX"] = tbx
try:
    import scipy.stats  # only OFD (not run here) needs it
except ImportError:
    sp, st = types.ModuleType("scipy"), types.ModuleType("scipy.stats")
    st.norm = None
    sp.stats = st
    sys.modules["scipy"], sys.modules["scipy.stats"] = sp, st
import torch
torch.Tensor.cuda = lambda self, *a, **k: self
torch.nn.Module.cuda = lambda self, *a, **k: self
torch.set_num_threads(2)
cfg_path, N, M = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
HERE = os.getcwd()
import mdistiller.dataset as ds
import mdistiller.dataset.cifar100 as c100
from torch.utils.data import DataLoader
from torchvision import datasets
import torchvision.datasets.cifar as tvc
tvc.check_integrity = lambda *a, **k: True   # our pickles (made from the binary version) have other md5s
Train, Test = c100.CIFAR100Instance, datasets.CIFAR100
def loaders(batch_size, val_batch_size, num_workers):
    tr = Train(root=HERE + "/data", download=False, train=True, transform=c100.get_cifar100_train_transform())
    tr.data, tr.targets = tr.data[:N], tr.targets[:N]
    te = Test(root=HERE + "/data", download=False, train=False, transform=c100.get_cifar100_test_transform())
    idx = [i * len(te.data) // M for i in range(M)]
    te.data, te.targets = te.data[idx], [te.targets[j] for j in idx]
    return (DataLoader(tr, batch_size=batch_size, shuffle=True, num_workers=num_workers),
            DataLoader(te, batch_size=val_batch_size, shuffle=False, num_workers=0), len(tr))
ds.get_cifar100_dataloaders = loaders
import mdistiller.models.cifar as mc
for k, (net, path) in list(mc.cifar_model_dict.items()):
    if path: mc.cifar_model_dict[k] = (net, HERE + "/download_ckpts/cifar_teachers/" + path.split("cifar_teachers/")[1])
sys.argv = ["tools/train.py", "--cfg", cfg_path]
runpy.run_path(os.path.join(MDISTILLER, "tools", "train.py"), run_name="__main__")

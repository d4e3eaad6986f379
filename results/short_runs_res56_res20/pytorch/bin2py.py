"""CIFAR-100 binary (train.bin/test.bin) -> the python version's pickles (cifar-100-python/), for torchvision."""
import numpy as np, pickle, sys, os
src, dst = sys.argv[1], sys.argv[2]
os.makedirs(dst, exist_ok=True)
for name in ("train", "test"):
    raw = np.fromfile(os.path.join(src, name + ".bin"), dtype=np.uint8).reshape(-1, 3074)
    d = {"data": raw[:, 2:].copy(), "fine_labels": raw[:, 1].astype(int).tolist(), "coarse_labels": raw[:, 0].astype(int).tolist()}
    with open(os.path.join(dst, name), "wb") as f: pickle.dump(d, f)
fine = open(os.path.join(src, "fine_label_names.txt")).read().split()
coarse = open(os.path.join(src, "coarse_label_names.txt")).read().split()
with open(os.path.join(dst, "meta"), "wb") as f: pickle.dump({"fine_label_names": fine, "coarse_label_names": coarse}, f)

#!/usr/bin/python3
"""torch_train.py - the issue's PyTorch reference protocol, to hold cnnrun's accuracy against.

Trains a cnnc network (built from `cnnc NET.cnn --ir` by bench/cnnir.py, so the layers are
the runtime's) with PyTorch: default initialisation, Adam, batch 32, pixels / 255, a
stratified split, a reshuffle every epoch, the weights of the epoch with the lowest
validation loss evaluated on the test split. It prints one line per epoch and the lecture's
row, like cnnrun, so the two can be run side by side on the same images.

Images come from one of:
  --cache FILE   a decode cache written by cnnrun (~/.cache/cnnc/set-*.cache): exactly
                 the pixels cnnrun trains on, which separates the trainer from the decoder
  --images DIR   a folder with one sub-folder per class (searched below DIR, so a Kaggle
                 Tom & Jerry download works), decoded and squashed by PIL (bilinear,
                 antialiased), the pipeline the reference numbers were made with;
                 kept in ~/.cache/cnnc/torch-*.npz for the next run
--replay makes PyTorch retrace a cnnrun run of the same --seed: cnnrun's split, its
reshuffle every epoch (the runtime's xoshiro256** generator, ported below) and its initial
weights (from `cnnrun NET --dump`, run here). Only the arithmetic then differs, so the
epoch lines of the two programs agree until rounding differences grow; networks with
dropout cannot be replayed (the masks are not matched).

--alive prints after each epoch how many channels of each relu layer are still positive for
some validation image: a layer at 0 is dead and the network has collapsed for good.

Usage: /usr/bin/python3 bench/torch_train.py NET.cnn (--cache FILE | --images DIR)
       [--epochs 20] [--seed 1] [--threads 2] [--batch 32] [--lr 1e-3] [--build build]
       [--replay] [--log-steps N] [--alive]
"""
import argparse
import os
import struct
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cnnir  # noqa: E402


def read_cache(path):
    """(class names, labels int64[n], pixels uint8[n, c, h, w]) of a cnnrun decode cache
    (layout at the top of runtime/data/rt_data_cache.c; native byte order)."""
    b = open(path, "rb").read()
    if b[:8] != b"CNNCDS\0\1":
        raise SystemExit(path + ": not a cnnc decode cache")
    endian, version, key = struct.unpack_from("=IIQ", b, 8)
    if endian != 0x01020304:
        raise SystemExit(path + ": written on a machine of the other byte order")
    n, c, h, w, ncls, ntest, nskip, has_files = struct.unpack_from("=8i", b, 24)
    strbytes, = struct.unpack_from("=Q", b, 56)
    strings = b[64:64 + strbytes].split(b"\0")
    names = [s.decode() for s in strings[:ncls]]
    off = 64 + strbytes
    labels = np.frombuffer(b, dtype=np.int32, count=n, offset=off).astype(np.int64)
    off += 4 * n
    pixels = np.frombuffer(b, dtype=np.uint8, count=n * c * h * w, offset=off)
    return names, labels, pixels.reshape(n, c, h, w)


def _decode(job):
    from PIL import Image
    path, c, h, w = job
    im = Image.open(path).convert("L" if c == 1 else "RGB").resize((w, h), Image.BILINEAR)
    a = np.asarray(im, dtype=np.uint8)
    return a[None] if c == 1 else a.transpose(2, 0, 1)


def read_images(root, c, h, w, threads):
    """Class folders below root (the first folder with two or more sub-folders of images),
    decoded by PIL in `threads` processes; kept in ~/.cache/cnnc/torch-*.npz for next time."""
    import hashlib
    import multiprocessing
    exts = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".pgm", ".ppm", ".tga")
    for here, dirs, files in os.walk(root):
        subs = sorted(d for d in dirs
                      if any(f.lower().endswith(exts) for f in os.listdir(os.path.join(here, d))))
        if len(subs) >= 2:
            break
    else:
        raise SystemExit(root + ": no folder with class sub-folders of images")
    jobs, ys = [], []
    for k, d in enumerate(subs):
        folder = os.path.join(here, d)
        for f in sorted(os.listdir(folder)):
            if f.lower().endswith(exts):
                jobs.append((os.path.join(folder, f), c, h, w))
                ys.append(k)
    key = hashlib.sha1(repr([(j[0], os.path.getsize(j[0]), os.path.getmtime(j[0]))
                             for j in jobs] + [c, h, w]).encode()).hexdigest()[:16]
    cache = os.path.join(os.path.expanduser("~/.cache/cnnc"), "torch-%s.npz" % key)
    if os.path.exists(cache):
        return subs, np.array(ys, dtype=np.int64), np.load(cache)["x"]
    with multiprocessing.Pool(threads) as pool:
        x = np.stack(pool.map(_decode, jobs, chunksize=16))
    os.makedirs(os.path.dirname(cache), exist_ok=True)
    np.savez(cache + ".tmp.npz", x=x)
    os.replace(cache + ".tmp.npz", cache)
    return subs, np.array(ys, dtype=np.int64), x


# ------------------------------------------------------------------ cnnrun's random streams

M64 = (1 << 64) - 1
SEED_SHUFFLE = 0x53485546464c4531   # runtime/train/rt_train.c


class Xoshiro:
    """runtime/train/rt_rng.c: xoshiro256** seeded through splitmix64."""

    def __init__(self, seed):
        x, self.s = seed & M64, []
        for _ in range(4):
            x = (x + 0x9e3779b97f4a7c15) & M64
            z = x
            z = ((z ^ (z >> 30)) * 0xbf58476d1ce4e5b9) & M64
            z = ((z ^ (z >> 27)) * 0x94d049bb133111eb) & M64
            self.s.append(z ^ (z >> 31))

    def next(self):
        s = self.s
        rotl = lambda x, k: ((x << k) | (x >> (64 - k))) & M64
        result = (rotl((s[1] * 5) & M64, 7) * 9) & M64
        t = (s[1] << 17) & M64
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = rotl(s[3], 45)
        return result


def cnnrun_split(labels, ratios, seed):
    """runtime/data/rt_data_split.c: per class, a shuffle and a largest-remainder cut; then each
    part shuffled."""
    r = Xoshiro(seed)

    def shuffle(v):
        for i in range(len(v) - 1, 0, -1):
            j = r.next() % (i + 1)
            v[i], v[j] = v[j], v[i]

    R = sum(ratios)
    parts = [[], [], []]
    for k in range(int(labels.max()) + 1):
        v = [int(i) for i in np.flatnonzero(labels == k)]
        m = len(v)
        shuffle(v)
        size = [m * q // R for q in ratios]
        rem = [m * q % R for q in ratios]
        for _ in range(m - sum(size)):
            best = max(range(3), key=lambda q: (rem[q], -q))
            size[best] += 1
            rem[best] = -1
        at = 0
        for p in range(3):
            parts[p] += v[at:at + size[p]]
            at += size[p]
    for p in parts:
        shuffle(p)
    return [np.array(p, dtype=np.int64) for p in parts]


def cnnrun_orders(train, seed):
    """runtime/train/rt_train.c: the training order of each epoch, a Fisher-Yates pass over the
    previous one with Lemire's multiply-shift for the bound."""
    r = Xoshiro(seed ^ SEED_SHUFFLE)
    order = list(train)
    while True:
        for i in range(len(order) - 1, 0, -1):
            j = ((r.next() >> 32) * (i + 1)) >> 32
            order[i], order[j] = order[j], order[i]
        yield np.array(order, dtype=np.int64)


def split(labels, ratios, rng):
    """Stratified split: each class's shuffled indices cut by the ratios."""
    parts = [[], [], []]
    total = sum(ratios)
    for k in np.unique(labels):
        idx = np.flatnonzero(labels == k)
        rng.shuffle(idx)
        a = int(round(len(idx) * ratios[0] / total))
        b = a + int(round(len(idx) * ratios[1] / total))
        parts[0] += list(idx[:a])
        parts[1] += list(idx[a:b])
        parts[2] += list(idx[b:])
    return [np.array(sorted(p)) for p in parts]


def evaluate(model, x, y, batch=256):
    model.eval()
    loss, right = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(y), batch):
            xb = torch.from_numpy(x[i:i + batch]).float() / 255
            yb = torch.from_numpy(y[i:i + batch])
            z = model(xb)
            loss += F.cross_entropy(z, yb, reduction="sum").item()
            right += (z.argmax(1) == yb).sum().item()
    return loss / len(y), right / len(y)


def alive_channels(model, layers, x):
    """Per relu layer, how many of its channels (units) are positive for at least one of
    the images x: a layer at 0 is dead, and nothing before it can learn again."""
    out = []
    model.eval()
    with torch.no_grad():
        h = torch.from_numpy(x).float() / 255
        for L, m in zip(layers[1:], model.mods[1:]):
            h = m(h)
            if L["act"] == "relu":
                on = (h > 0).reshape(h.shape[0], h.shape[1], -1).any(2).any(0)
                out.append("%d:%d/%d" % (L["i"], int(on.sum()), h.shape[1]))
    return " ".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("net")
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--cache")
    src.add_argument("--images")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--build", default="build")
    ap.add_argument("--replay", action="store_true")
    ap.add_argument("--log-steps", type=int, default=0)
    ap.add_argument("--alive", action="store_true")
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    name, layers = cnnir.read_ir(os.path.join(a.build, "cnnc"), a.net)
    L0 = layers[0]
    c, h, w = L0["out_c"], L0["out_h"], L0["out_w"]
    t0 = time.time()
    if a.cache:
        names, y, x = read_cache(a.cache)
        if x.shape[1:] != (c, h, w):
            raise SystemExit("%s holds %s images, %s wants %dx%dx%d"
                             % (a.cache, "x".join(map(str, x.shape[1:])), a.net, c, h, w))
    else:
        names, y, x = read_images(a.images, c, h, w, a.threads)
    print("%s: %d images, classes %s, loaded in %.1f s" % (name, len(y), " ".join(names),
                                                           time.time() - t0))
    model = cnnir.IRNet(layers).float()
    if a.replay:
        if any(L["kind"] == "dropout" and L["p"] > 0 for L in layers):
            raise SystemExit("%s has dropout: its masks cannot be replayed" % a.net)
        tr, va, te = cnnrun_split(y, (7, 2, 1), a.seed)
        orders = cnnrun_orders(tr, a.seed)
        dump = "/tmp/torch_train.%d.dump" % os.getpid()
        subprocess.run([os.path.join(a.build, "cnnrun"), a.net, "--dump", dump, "--seed",
                        str(a.seed), "--batch", "1", "--quiet"], check=True,
                       stdout=subprocess.DEVNULL)
        model.load_flat(cnnir.read_dump(dump)["params"].astype(np.float64))
        os.unlink(dump)
        model.float()
    else:
        tr, va, te = split(y, (7, 2, 1), rng)
        gen = torch.Generator().manual_seed(a.seed)
        orders = (tr[torch.randperm(len(tr), generator=gen).numpy()] for _ in iter(int, 1))
    print("split: train %d, val %d, test %d%s" % (len(tr), len(va), len(te),
                                                 " (cnnrun's, replayed)" if a.replay else ""))
    opt = torch.optim.Adam(model.parameters(), lr=a.lr)
    best, best_state, step = None, None, 0
    t_start = time.time()
    for ep in range(1, a.epochs + 1):
        te0 = time.time()
        model.train()
        order = next(orders)
        tl, tr_right = 0.0, 0
        for i in range(0, len(order), a.batch):
            idx = order[i:i + a.batch]
            xb = torch.from_numpy(x[idx]).float() / 255
            yb = torch.from_numpy(y[idx])
            z = model(xb)
            loss = F.cross_entropy(z, yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            tl += loss.item() * len(idx)
            tr_right += (z.argmax(1) == yb).sum().item()
            step += 1
            if step <= a.log_steps:
                print("step %d loss %.6f" % (step, loss.item()))
        vl, vacc = evaluate(model, x[va], y[va])
        print("epoch %2d  train loss %.4f acc %.4f  val loss %.4f acc %.4f  %.1f s"
              % (ep, tl / len(tr), tr_right / len(tr), vl, vacc, time.time() - te0),
              flush=True)
        if a.alive:
            print("  alive relu channels (layer:alive/all) %s"
                  % alive_channels(model, layers, x[va[:256]]), flush=True)
        if best is None or vl < best[0]:
            best = (vl, vacc)
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
    model.load_state_dict(best_state)
    tl, tacc = evaluate(model, x[te], y[te])
    print("| Model | Val Loss | Val Acc | Test Loss | Test Acc | Runtime |")
    print("| %s (torch) | %.4f | %.4f | %.4f | %.4f | %.1f min |"
          % (name, best[0], best[1], tl, tacc, (time.time() - t_start) / 60))


if __name__ == "__main__":
    main()

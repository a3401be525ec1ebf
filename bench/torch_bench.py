#!/usr/bin/python3
"""torch_bench.py - the PyTorch side of bench/bench.sh: times a cnnc network rebuilt in
PyTorch (from `cnnc NET --ir`, bench/cnnir.py) exactly as `cnnrun NET --bench` times the
interpreter, and prints the same machine-readable lines:

  bench net NAME params P input CxHxW classes K flops-per-image F batch B threads T steps S
  bench train images/s X gflops Y ms-per-step Z loss L
  bench infer images/s X gflops Y ms-per-batch Z

Training: model.train(), Adam (lr 1e-3, PyTorch defaults), CrossEntropyLoss, on one random
batch (pixels uniform in [0, 1), labels i % K); 2 warm-up steps, then STEPS timed steps of
zero_grad, forward, loss, backward, step. Inference: model.eval() under torch.no_grad(),
1 warm-up batch, then STEPS timed batches. FLOPs: the rule of src/front/shape.c, training
counted as 3x the forward. With --profile, every layer alone (its input shape, random
input with a gradient, random output gradient) is timed forward and backward, as
`cnnrun --profile` does, and printed as `bench layer ...` lines.

Usage: /usr/bin/python3 bench/torch_bench.py NET.cnn --bench STEPS [--batch B]
       [--threads T] [--profile] [--build DIR]
"""
import argparse
import os
import sys
import time

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cnnir  # noqa: E402


def layer_flops(L):
    """Forward FLOPs of one image through layer L (src/front/shape.c's rule)."""
    nin = L["in_c"] * L["in_h"] * L["in_w"]
    nout = L["out_c"] * L["out_h"] * L["out_w"]
    k = L["kind"]
    # a grouped conv's output sees in_c / groups channels; concat moves values, 0 FLOPs
    f = {"conv": 2.0 * (L["in_c"] // L.get("groups", 1)) * L["kh"] * L["kw"] * nout,
         "maxpool": L["kh"] * L["kw"] * nout, "avgpool": L["kh"] * L["kw"] * nout,
         "globalavgpool": nin, "globalmaxpool": nin, "dense": 2.0 * nin * nout,
         "batchnorm": 2.0 * nin, "activation": nin, "add": nin}.get(k, 0)
    if L["bias"] and L["b_len"]:
        f += nout
    if L["act"] != "none" and k != "activation":
        f += nout
    return f


def now():
    return time.perf_counter()


def median(v):
    """As cnnrun --bench: the median step, which a burst of other work does not move."""
    v = sorted(v)
    return v[len(v) // 2] if len(v) % 2 else 0.5 * (v[len(v) // 2 - 1] + v[len(v) // 2])


def profile(model, layers, n):
    """Each layer alone: forward, then backward of a random output gradient (input
    gradient computed unless the layer reads the network's input), fastest of 5."""
    print("# each layer alone in PyTorch, batch %d: forward (training mode) and backward ms, "
          "mflops per batch" % n)
    rows = []
    for L, m in zip(layers[1:], list(model.mods)[1:]):
        shape = (n, L["in_c"], L["in_h"], L["in_w"])
        if L["kind"] == "dense":
            src = layers[L["src"]]
            shape = (n, src["out_c"], src["out_h"], src["out_w"])
        x = torch.rand(shape)
        x.requires_grad_(L["src"] != 0)
        best_f = best_b = None
        for rep in range(6):
            t0 = now()
            if L["kind"] == "add":
                y = x + x
            elif L["kind"] == "concat":     # src's channels, then src2's
                s2 = layers[L["src2"]]
                y = torch.cat((x, x.new_ones(n, s2["out_c"], s2["out_h"], s2["out_w"])), dim=1)
            else:
                y = m(x)
            t1 = now()
            if rep == 0:
                g = torch.rand_like(y) * 1e-3
            if y.requires_grad:
                y.backward(g)
            t2 = now()
            if rep > 0:
                best_f = t1 - t0 if best_f is None else min(best_f, t1 - t0)
                best_b = t2 - t1 if best_b is None else min(best_b, t2 - t1)
            x.grad = None
            model.zero_grad(set_to_none=True)
        rows.append((L, 1e3 * best_f, 1e3 * best_b))
    total = sum(f + b for _, f, b in rows) or 1.0
    for L, f, b in rows:
        fl = layer_flops(L) * n
        print("bench layer %d %s %dx%dx%d line %d mflops %.3f fwd-ms %.3f bwd-ms %.3f "
              "fwd-gflops %.2f share %.1f%%" % (L["i"], L["kind"], L["out_c"], L["out_h"],
                                                L["out_w"], L["line"], 1e-6 * fl, f, b,
                                                1e-6 * fl / f if f > 0 else 0,
                                                100 * (f + b) / total))
    print("bench profile fwd-ms %.3f bwd-ms %.3f" % (sum(r[1] for r in rows),
                                                     sum(r[2] for r in rows)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("net")
    ap.add_argument("--bench", type=int, required=True, metavar="STEPS")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--build", default=os.environ.get("BUILD", "/tmp/build-bench"),
                    help="build folder with cnnc (default $BUILD or /tmp/build-bench)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    name, layers = cnnir.read_ir(os.path.join(a.build, "cnnc"), a.net)
    model = cnnir.IRNet(layers)
    k = cnnir.classes_of(layers)
    n = a.batch
    L0 = layers[0]
    x = torch.rand(n, L0["out_c"], L0["out_h"], L0["out_w"])
    y = torch.arange(n) % k
    flops = sum(layer_flops(L) for L in layers)
    nparams = sum(p.numel() for p in model.parameters())
    print("bench net %s params %d input %dx%dx%d classes %d flops-per-image %.0f batch %d "
          "threads %d steps %d" % (name, nparams, L0["out_c"], L0["out_h"], L0["out_w"], k,
                                   flops, n, a.threads, a.bench))
    sys.stdout.flush()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    lossf = nn.CrossEntropyLoss()
    model.train()

    def step():
        opt.zero_grad()
        loss = lossf(model(x), y)
        loss.backward()
        opt.step()
        return float(loss)

    for _ in range(2):
        step()
    times = []
    for _ in range(a.bench):
        t0 = now()
        loss = step()
        times.append(now() - t0)
    tt = median(times)
    print("bench train images/s %.1f gflops %.3f ms-per-step %.6g loss %.4f (median step; a "
          "training step counted as 3x the forward FLOPs)" % (n / tt, 3 * flops * n / tt * 1e-9,
                                                             1e3 * tt, loss))
    sys.stdout.flush()
    model.eval()
    with torch.no_grad():
        model(x)
        times = []
        for _ in range(a.bench):
            t0 = now()
            model(x)
            times.append(now() - t0)
        ti = median(times)
    print("bench infer images/s %.1f gflops %.3f ms-per-batch %.6g (median batch)"
          % (n / ti, flops * n / ti * 1e-9, 1e3 * ti))
    sys.stdout.flush()
    if a.profile:
        model.train()
        profile(model, layers, n)


if __name__ == "__main__":
    main()

"""cnnir.py - PyTorch twins of cnnc networks, for bench/torch_compare.py and torch_bench.py.

Reads `cnnc NET.cnn --ir` (one resolved layer per line, every rt_layer field), builds the
same network as a torch.nn.Module layer by layer, moves the runtime's flat parameter array
in and out of it, reads the binary files of `cnnrun NET --dump` and writes cnnc weights
files (doc/weights-format.md). Needs only torch and numpy (Debian's /usr/bin/python3).
"""
import struct
import subprocess
import zlib

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# ------------------------------------------------------------------ the IR

INT_FIELDS = {"i", "src", "src2", "in_c", "in_h", "in_w", "out_c", "out_h", "out_w", "kh",
              "kw", "sh", "sw", "pt", "pb", "pl", "pr", "flip", "dh", "dw", "groups", "bias",
              "w_off", "w_len", "b_off", "b_len", "s_off", "s_len", "line", "norm"}
FLOAT_FIELDS = {"alpha", "p", "eps", "momentum"}


def read_ir(cnnc, net_file):
    """Runs `cnnc NET --ir`; returns (name, [layer dict]) with ints, floats and words."""
    out = subprocess.run([cnnc, net_file, "--ir"], check=True, capture_output=True,
                         text=True).stdout
    name, cols, layers = None, None, []
    for line in out.splitlines():
        if line.startswith("# cnnc IR"):
            name = line.split("network ")[1].split(",")[0]
        elif line.startswith("# "):
            cols = line[2:].split()
        elif line.strip():
            vals = line.split()
            assert cols and len(vals) == len(cols), "IR line does not match its header: " + line
            L = {}
            for c, v in zip(cols, vals):
                L[c] = int(v) if c in INT_FIELDS else float(v) if c in FLOAT_FIELDS else v
            layers.append(L)
    for k, L in enumerate(layers):
        assert L["i"] == k
        # IR v1 (before dilation and groups) had neither column
        L.setdefault("dh", 1)
        L.setdefault("dw", 1)
        L.setdefault("groups", 1)
        # IR v3 added the input normalisation: "norm mean std" (per-channel lists, or "-")
        L.setdefault("norm", 0)
        for key in ("mean", "std"):
            v = L.get(key, "-")
            L[key] = [float(t) for t in v.split(",")] if L["norm"] else None
    return name, layers


def nparams_of(layers):
    return max([L["w_off"] + L["w_len"] for L in layers] + [L["b_off"] + L["b_len"] for L in layers])


def nstate_of(layers):
    return max(L["s_off"] + L["s_len"] for L in layers)


def classes_of(layers):
    L = layers[-1]
    return L["out_c"] * L["out_h"] * L["out_w"]

# ------------------------------------------------------------------ the model


def act_fn(name, alpha):
    """The activation as a function; softmax is left to the loss, as in the runtime."""
    if name in ("none", "softmax"):
        return None
    if name == "relu":
        return F.relu
    if name == "leakyrelu":
        return lambda x: F.leaky_relu(x, alpha)
    if name == "sigmoid":
        return torch.sigmoid
    if name == "tanh":
        return torch.tanh
    if name == "relu6":
        return F.relu6
    if name == "silu":
        return F.silu
    if name == "gelu":
        return lambda x: F.gelu(x, approximate="none")
    if name == "elu":
        return lambda x: F.elu(x, alpha)
    raise ValueError("unknown activation " + name)


class Act(nn.Module):
    """An activation (None: identity). For equivalence tests, an activation with a kink
    (relu, leaky relu and relu6 at 0, relu6 also at 6, elu at 0 unless alpha is 1) can
    record its input (record = True keeps z) and take the other side of its nearest kink
    at the elements of flip (a bool mask of z's shape): where another implementation
    rounded a z that close to the kink to the other side, the gradients upstream
    legitimately differ. silu and gelu are smooth."""

    def __init__(self, name, alpha):
        super().__init__()
        self.name, self.alpha = name, alpha
        self.fn = act_fn(name, alpha)
        self.kinked = name in ("relu", "leakyrelu", "relu6") or (name == "elu" and alpha != 1)
        self.record, self.z, self.flip = False, None, None

    def kink_distance(self):
        """|z - the nearest kink| / max |z| of the recorded input (None if none)."""
        if self.z is None:
            return None
        d = self.z.abs()
        if self.name == "relu6":
            d = torch.minimum(d, (self.z - 6).abs())
        return d / self.z.abs().max().clamp_min(1e-30)

    def forward(self, z):
        if self.record and self.kinked:
            self.z = z.detach()
        if self.flip is not None:
            pos = (z > 0) ^ self.flip
            if self.name == "elu":
                return torch.where(pos, z, self.alpha * torch.expm1(z))
            if self.name == "relu6":
                # elements nearer 6 than 0 are flipped about 6, the others about 0
                hi = (z.detach() - 6).abs() < z.detach().abs()
                top = (z >= 6) ^ self.flip
                return torch.where(hi, torch.where(top, 6 + 0 * z, z),
                                   torch.where(pos, z, 0 * z))
            return torch.where(pos, z, z * (self.alpha if self.name == "leakyrelu" else 0.0))
        return self.fn(z) if self.fn else z


class Conv(nn.Module):
    """conv with any padding mode (F.pad with (left, right, top, bottom)), flip, dilation
    and groups. The IR's padding is in pixels of the input, already sized for the dilated
    kernel (dh*(kh-1)+1 tall), so F.pad takes it as it is and the conv pads nothing more."""

    def __init__(self, L):
        super().__init__()
        self.L = L
        self.pads = (L["pl"], L["pr"], L["pt"], L["pb"])
        sym = L["pl"] == L["pr"] and L["pt"] == L["pb"]
        # symmetric zero padding goes to Conv2d itself (faster), everything else to F.pad
        self.inner_pad = sym and L["padmode"] == "zero"
        self.conv = nn.Conv2d(L["in_c"], L["out_c"], (L["kh"], L["kw"]), (L["sh"], L["sw"]),
                              padding=(L["pt"], L["pl"]) if self.inner_pad else 0,
                              dilation=(L["dh"], L["dw"]), groups=L["groups"],
                              bias=bool(L["bias"]))
        self.act = Act(L["act"], L["alpha"])

    def forward(self, x):
        L = self.L
        if not self.inner_pad and any(self.pads):
            mode = {"zero": "constant", "reflect": "reflect", "replicate": "replicate",
                    "circular": "circular"}[L["padmode"]]
            x = F.pad(x, self.pads, mode=mode)
        w = self.conv.weight
        if L["flip"]:       # true convolution = correlation with the kernel turned 180 degrees
            w = torch.flip(w, dims=(2, 3))
            y = F.conv2d(x, w, self.conv.bias, self.conv.stride, self.conv.padding,
                         self.conv.dilation, self.conv.groups)
        else:
            y = self.conv(x)
        return self.act(y)


class MaxSelect(nn.Module):
    """Max pooling that can be steered, for equivalence tests: with record, it keeps how
    far apart each window's two largest values are (gap, relative to the largest |x| of
    the layer); at the outputs set in swap (a bool mask) it takes the second largest
    instead, as another implementation may have where the two are within rounding. x
    comes padded with -inf; window (kh, kw) and stride (sh, sw)."""

    def __init__(self):
        super().__init__()
        self.record, self.gap, self.swap = False, None, None

    def select(self, x, kh, kw, sh, sw, plain):
        if (not self.record and self.swap is None) or kh * kw < 2:
            return plain(x)
        n, c, h, w = x.shape
        oh, ow = (h - kh) // sh + 1, (w - kw) // sw + 1
        cols = F.unfold(x, (kh, kw), stride=(sh, sw)).reshape(n, c, kh * kw, oh * ow)
        top = cols.detach().topk(2, dim=2)
        if self.record:
            scale = x.detach().abs().nan_to_num(0, 0, 0).max().clamp_min(1e-30)
            gap = (top.values[:, :, 0] - top.values[:, :, 1]) / scale
            # windows of zeros (after a relu) are ties whose choice changes nothing
            gap[top.values[:, :, 0] == 0] = float("inf")
            self.gap = gap.reshape(n, c, oh, ow)
        idx = top.indices[:, :, 0]
        if self.swap is not None:
            idx = torch.where(self.swap.reshape(n, c, -1), top.indices[:, :, 1], idx)
        return cols.gather(2, idx.unsqueeze(2)).reshape(n, c, oh, ow)


class GlobalMax(MaxSelect):
    def forward(self, x):
        return self.select(x, x.shape[2], x.shape[3], 1, 1,
                           lambda t: t.amax(dim=(2, 3), keepdim=True))


class Pool(MaxSelect):
    """maxpool (padding never wins: -inf) or avgpool (padded zeros counted)."""

    def __init__(self, L):
        super().__init__()
        self.L = L
        self.pads = (L["pl"], L["pr"], L["pt"], L["pb"])
        sym = L["pl"] == L["pr"] and L["pt"] == L["pb"]
        k, s = (L["kh"], L["kw"]), (L["sh"], L["sw"])
        p = (L["pt"], L["pl"]) if sym else 0
        self.outer = not sym
        if L["kind"] == "maxpool":
            self.pool = nn.MaxPool2d(k, s, padding=p)
            self.fill = float("-inf")
        else:
            self.pool = nn.AvgPool2d(k, s, padding=p, count_include_pad=True)
            self.fill = 0.0

    def forward(self, x):
        L = self.L
        if L["kind"] == "maxpool" and L["kh"] * L["kw"] > 1 and \
                (self.record or self.swap is not None):
            if any(self.pads):
                x = F.pad(x, self.pads, mode="constant", value=self.fill)
            return self.select(x, L["kh"], L["kw"], L["sh"], L["sw"], None)
        if self.outer:
            x = F.pad(x, self.pads, mode="constant", value=self.fill)
        return self.pool(x)


class Dense(nn.Module):
    def __init__(self, L):
        super().__init__()
        self.L = L
        self.lin = nn.Linear(L["in_c"] * L["in_h"] * L["in_w"], L["out_c"], bias=bool(L["bias"]))
        self.act = Act(L["act"], L["alpha"])

    def forward(self, x):
        y = self.act(self.lin(x.reshape(x.shape[0], -1)))
        return y.reshape(x.shape[0], -1, 1, 1)


class Normalize(nn.Module):
    """The input layer's normalisation, (x - mean[c]) / std[c], as rt_input_normalize."""

    def __init__(self, L):
        super().__init__()
        c = L["out_c"]
        self.register_buffer("mean", torch.tensor(L["mean"][:c]).reshape(1, c, 1, 1))
        self.register_buffer("std", torch.tensor(L["std"][:c]).reshape(1, c, 1, 1))

    def forward(self, x):
        return (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)


class Lambda(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


def make_layer(L):
    k = L["kind"]
    if k == "conv":
        return Conv(L)
    if k in ("maxpool", "avgpool"):
        return Pool(L)
    if k == "globalavgpool":
        return Lambda(lambda x: x.mean(dim=(2, 3), keepdim=True))
    if k == "globalmaxpool":
        return GlobalMax()
    if k == "flatten":
        return Lambda(lambda x: x.reshape(x.shape[0], -1, 1, 1))
    if k == "dropout":
        return nn.Dropout(L["p"])
    if k == "dense":
        return Dense(L)
    if k == "batchnorm":
        # a vector is (n, c, 1, 1) here: BatchNorm2d then equals BatchNorm1d on (n, c)
        return nn.BatchNorm2d(L["in_c"], eps=L["eps"], momentum=L["momentum"])
    if k == "activation":
        return Act(L["act"], L["alpha"])
    if k in ("add", "concat"):
        return None     # handled by IRNet: src + src2, or src's channels then src2's
    raise ValueError("unknown layer kind " + k)


class IRNet(nn.Module):
    """The network of an IR listing: layers run in order, each reading layers[src] (and
    layers[src2] for add and concat: any earlier layer, not only the block's input); the
    last output, reshaped to (n, classes), is the logits."""

    def __init__(self, layers):
        super().__init__()
        self.layers = layers
        self.mods = nn.ModuleList([Normalize(L) if L["kind"] == "input" and L["norm"]
                                   else nn.Identity() if L["kind"] in ("input", "add", "concat")
                                   else make_layer(L) for L in layers])
        # sequential networks (every layer reads the one before) skip the list of outputs
        self.chain = all(L["src"] == L["i"] - 1 and L["kind"] not in ("add", "concat")
                         for L in layers[1:])

    def forward(self, x):
        x = self.mods[0](x)  # the input normalisation, or nothing
        if self.chain:
            for m in self.mods[1:]:
                x = m(x)
            return x.reshape(x.shape[0], -1)
        outs = [x]
        for L, m in zip(self.layers[1:], self.mods[1:]):
            if L["kind"] == "add":
                outs.append(outs[L["src"]] + outs[L["src2"]])
            elif L["kind"] == "concat":
                outs.append(torch.cat((outs[L["src"]], outs[L["src2"]]), dim=1))
            else:
                outs.append(m(outs[L["src"]]))
        return outs[-1].reshape(x.shape[0], -1)

    def maxes(self):
        """{layer index: its MaxSelect module} (maxpool and globalmaxpool)."""
        return {L["i"]: m for L, m in zip(self.layers, self.mods)
                if isinstance(m, MaxSelect) and L["kind"] in ("maxpool", "globalmaxpool")}

    def acts(self):
        """{layer index: its Act module} (conv and dense have theirs inside)."""
        out = {}
        for L, m in zip(self.layers, self.mods):
            a = m if isinstance(m, Act) else getattr(m, "act", None)
            if isinstance(a, Act):
                out[L["i"]] = a
        return out

    # -- the flat arrays of the runtime (rt_layer offsets)

    def _tensors(self):
        """(layer, role, torch parameter or buffer, offset, length): roles w, b, mean, var."""
        for L, m in zip(self.layers, self.mods):
            k = L["kind"]
            if k == "conv":
                yield L, "w", m.conv.weight, L["w_off"], L["w_len"]
                if L["bias"]:
                    yield L, "b", m.conv.bias, L["b_off"], L["b_len"]
            elif k == "dense":
                yield L, "w", m.lin.weight, L["w_off"], L["w_len"]
                if L["bias"]:
                    yield L, "b", m.lin.bias, L["b_off"], L["b_len"]
            elif k == "batchnorm":
                c = L["in_c"]
                yield L, "w", m.weight, L["w_off"], L["w_len"]
                yield L, "b", m.bias, L["b_off"], L["b_len"]
                yield L, "mean", m.running_mean, L["s_off"], c
                yield L, "var", m.running_var, L["s_off"] + c, c

    def load_flat(self, params, state=None):
        with torch.no_grad():
            for L, role, t, off, n in self._tensors():
                src = state if role in ("mean", "var") else params
                if src is None:
                    continue
                v = np.array(src[off:off + n], dtype=np.float64)
                t.copy_(torch.from_numpy(v).reshape(t.shape))

    def named_flat(self, what="grad"):
        """[(label, off, length, numpy values)] of every grad ('grad'), parameter ('param')
        or running statistic ('state')."""
        out = []
        for L, role, t, off, n in self._tensors():
            is_state = role in ("mean", "var")
            if (what == "state") != is_state:
                continue
            v = t.grad if what == "grad" else t
            label = "%d %s %s" % (L["i"], L["kind"], role)
            out.append((label, off, n, v.detach().reshape(-1).cpu().numpy()))
        return out

# ------------------------------------------------------------------ dump files

def read_dump(path):
    """The file of `cnnrun NET --dump FILE` (layout in bench/README.md) as a dict."""
    b = open(path, "rb").read()
    if b[:4] != b"CNND":
        raise ValueError(path + ": not a cnnc dump file")
    ver, n, c, h, w, k, training = struct.unpack_from("<7I", b, 4)
    if ver != 1:
        raise ValueError("%s: dump version %d, this reader knows 1" % (path, ver))
    P, S = struct.unpack_from("<2Q", b, 32)
    N = n * c * h * w
    want = 48 + 4 * N + 4 * n + 4 * n * k + 8 + 8 * P + 8 * S
    if len(b) != want:
        raise ValueError("%s: %d bytes, the header says %d" % (path, len(b), want))
    off = 48

    def take(dtype, count):
        nonlocal off
        a = np.frombuffer(b, dtype=dtype, count=count, offset=off)
        off += a.itemsize * count
        return a

    d = dict(n=n, c=c, h=h, w=w, k=k, training=training, nparams=P, nstate=S)
    d["x"] = take("<f4", N).reshape(n, c, h, w)
    d["labels"] = take("<i4", n)
    d["logits"] = take("<f4", n * k).reshape(n, k)
    d["loss"] = float(take("<f8", 1)[0])
    d["params"] = take("<f4", P)
    d["grads"] = take("<f4", P)
    d["state"] = take("<f4", S)
    d["state_after"] = take("<f4", S)
    return d

# ------------------------------------------------------------------ weights files

def _fnv(h, v):
    u = v & 0xFFFFFFFFFFFFFFFF
    for i in range(8):
        h ^= (u >> (8 * i)) & 0xFF
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


PADMODES = {"zero": 0, "reflect": 1, "replicate": 2, "circular": 3}
KINDS = ["input", "conv", "maxpool", "avgpool", "globalavgpool", "globalmaxpool", "flatten",
         "dropout", "dense", "batchnorm", "activation", "add", "concat"]
ACTS = ["none", "relu", "leakyrelu", "sigmoid", "tanh", "softmax", "relu6", "silu", "gelu",
        "elu"]


def structure_hash(layers):
    """rt_netdesc_hash (runtime/net/rt_netdesc.c) recomputed from the IR."""
    h = 0xCBF29CE484222325
    h = _fnv(h, len(layers))
    h = _fnv(h, nparams_of(layers))
    h = _fnv(h, nstate_of(layers))
    for L in layers:
        k = L["kind"]
        conv = k == "conv"
        window = conv or k in ("maxpool", "avgpool")
        act = conv or k in ("dense", "activation")
        v = [KINDS.index(k), L["src"], L["src2"] if k in ("add", "concat") else -1,
             L["in_c"], L["in_h"], L["in_w"], L["out_c"], L["out_h"], L["out_w"]]
        v += [L[f] if window else 0 for f in ("kh", "kw", "sh", "sw", "pt", "pb", "pl", "pr")]
        v += [PADMODES[L["padmode"]] if conv else 0, L["flip"] if conv else 0,
              L["bias"] if conv or k == "dense" else 0, ACTS.index(L["act"]) if act else 0]
        v += [L["w_off"], L["w_len"], L["b_off"], L["b_len"], L["s_off"], L["s_len"]]
        for x in v:
            h = _fnv(h, x)
        # dilation and groups enter only when one is not 1 (older hashes stay valid)
        if conv and (L["dh"] != 1 or L["dw"] != 1 or L["groups"] != 1):
            for x in (L["dh"], L["dw"], L["groups"]):
                h = _fnv(h, x)
    return h


def write_weights(path, name, layers, params, state):
    """A cnnc weights file (doc/weights-format.md, version 1) holding params and state."""
    body = struct.pack("<I", len(name)) + name.encode()
    T = 0

    def tensor(i, role, dims, vals):
        nonlocal body, T
        vals = np.asarray(vals, dtype="<f4")
        assert vals.size == int(np.prod(dims))
        body += struct.pack("<3I", i, role, len(dims)) + struct.pack("<%dI" % len(dims), *dims)
        body += vals.tobytes()
        T += 1

    for L in layers:
        k, i = L["kind"], L["i"]
        w = params[L["w_off"]:L["w_off"] + L["w_len"]]
        b = params[L["b_off"]:L["b_off"] + L["b_len"]]
        if k == "conv":
            # grouped: each output channel sees in_c / groups input channels
            tensor(i, 0, [L["out_c"], L["in_c"] // L["groups"], L["kh"], L["kw"]], w)
            if L["b_len"]:
                tensor(i, 1, [L["out_c"]], b)
        elif k == "dense":
            tensor(i, 0, [L["out_c"], L["in_c"] * L["in_h"] * L["in_w"]], w)
            if L["b_len"]:
                tensor(i, 1, [L["out_c"]], b)
        elif k == "batchnorm":
            c = L["in_c"]
            tensor(i, 0, [c], w)
            tensor(i, 1, [c], b)
            tensor(i, 2, [c], state[L["s_off"]:L["s_off"] + c])
            tensor(i, 3, [c], state[L["s_off"] + c:L["s_off"] + 2 * c])
        else:
            assert L["w_len"] == 0 and L["b_len"] == 0 and L["s_len"] == 0
    head = b"CNNW" + struct.pack("<IQQII", 1, structure_hash(layers), len(body), T, 0)
    data = head + body
    data += struct.pack("<I", zlib.crc32(data) & 0xFFFFFFFF) + b"WNNC"
    with open(path, "wb") as f:
        f.write(data)

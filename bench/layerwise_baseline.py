"""The end-to-end baseline of bench_layerwise.py: a ReLU CNN of the same depth and width as
the convex layerwise network, trained with torch.optim.Adam on the same split (module doc
of bench_layerwise.py)."""
from __future__ import annotations

import os
import time

from bench.bench_layerwise import STAGES, WIDTH, data, peak_mb


def downsamples(cfg) -> list:
    """One down-sampling per stage transition (a single value repeats), as train_layerwise."""
    d = cfg["downsample"]
    d = [d] if isinstance(d, (int, str)) else list(d)
    return [str(x) for x in (d * (STAGES - 1) if len(d) == 1 else d)]


def network(cfg):
    from torch import nn
    layers, ch, grid = [], 1, 8
    for down in downsamples(cfg) + [None]:
        layers += [nn.Conv2d(ch, WIDTH, 3, padding=1), nn.ReLU()]
        ch = WIDTH
        if down is None:
            continue
        name, _, f = down.partition(":")
        if name == "invertible":
            f = int(f or 2)
            layers.append(nn.PixelUnshuffle(f))
            ch, grid = f * f * WIDTH, grid // f
        else:
            f = int(f or name)
            layers.append(nn.AvgPool2d(f))
            grid //= f
    # the stage models' head on the last grid: global mean, 2 x 2 cells, or 2 x 2 windows
    head, cells = {"global": (nn.AdaptiveAvgPool2d(1), 1),
                   "adaptive(2x2)": (nn.AdaptiveAvgPool2d(2), 4)}.get(
        cfg["pool"], (nn.AvgPool2d(2), (grid // 2) ** 2))
    layers += [head, nn.Flatten(), nn.Linear(WIDTH * cells, 10)]
    return nn.Sequential(*layers).double()


def run(cfg, seed, epochs, lr, validation) -> dict:
    import torch
    from torch import nn
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    train, test = data(validation)
    net = network(cfg)
    x, y = torch.as_tensor(train["images"]), torch.as_tensor(train["labels"])
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    for _ in range(epochs):
        for idx in torch.randperm(len(y), generator=gen).split(64):
            opt.zero_grad()
            nn.functional.cross_entropy(net(x[idx]), y[idx]).backward()
            opt.step()
    seconds = time.perf_counter() - start
    with torch.no_grad():
        acc = lambda d: float((net(torch.as_tensor(d["images"])).argmax(1).numpy()  # noqa
                               == d["labels"]).mean())
        return {"seconds": seconds, "peak_mb": peak_mb(), "load_average": os.getloadavg(),
                "train_accuracy": acc(train),
                "test_accuracy": acc(test), "lr": lr,
                "parameters": sum(p.numel() for p in net.parameters())}

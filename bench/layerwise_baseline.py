"""The end-to-end baseline of bench_layerwise.py: a ReLU CNN of the same depth and width as
the convex layerwise network, trained with torch.optim.Adam on the same split (module doc
of bench_layerwise.py)."""
from __future__ import annotations

import os
import time

from bench.bench_layerwise import STAGES, WIDTH, data, peak_mb


def network(cfg):
    from torch import nn
    layers, ch = [], 1
    for s in range(STAGES):
        layers += [nn.Conv2d(ch, WIDTH, 3, padding=1), nn.ReLU()]
        ch = WIDTH
        if s < STAGES - 1 and cfg["downsample"] == "invertible":
            layers.append(nn.PixelUnshuffle(2))
            ch = 4 * WIDTH
        elif s < STAGES - 1:
            layers.append(nn.AvgPool2d(int(cfg["downsample"])))
    head, cells = (nn.AdaptiveAvgPool2d(2), 4) if cfg["pool"] == "adaptive(2x2)" else \
        (nn.AvgPool2d(2), (8 // 2 ** STAGES) ** 2)          # average(2x2) on the last grid
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

"""The stacked layerwise network as one torch.nn.Module (Sahiner et al. 2024, section 4.2).

    net = LayerwiseNetwork(stages, downsamples, scales);  Yhat = net(images)
    latents = net.representations(images)         # each stage's input after the first
    net.save("deep.pt");  net = LayerwiseNetwork.load("deep.pt")

Stage s < S is used only through its BM latent representation (latent.py), down-sampled
by downsamples[s] (downsample.py): its second layer and pooling are discarded, as in the
greedy scheme of section 4.2; the last stage's output is the prediction. `save` writes
tensors and plain literals (torch.save), `load` reads them with weights_only=True (no
pickled objects are executed).
"""
from __future__ import annotations

import torch

from ..core.errors import DataError
from ..trainer.runtime.network import NetworkModule, load_saved
from .downsample import parse
from .latent import representation

FORMAT, VERSION = "bmdsl-layerwise-network", 2
READS = (1, 2)     # version 1 saved average-pooling windows as ints ("windows")


class LayerwiseNetworkError(DataError, ValueError):
    """A file that is not a layerwise network saved by `LayerwiseNetwork.save`."""


class LayerwiseNetwork(torch.nn.Module):
    def __init__(self, stages, downsamples, scales):
        super().__init__()
        if len(downsamples) != len(stages) - 1 or len(scales) != len(stages) - 1:
            raise ValueError(f"{len(stages)} stages need {len(stages) - 1} down-samplings and "
                             f"scales, not {len(downsamples)} and {len(scales)}")
        self.stages = torch.nn.ModuleList(stages)
        self.downsamples = [parse(d) for d in downsamples]
        self.register_buffer("scales", torch.as_tensor(list(scales), dtype=torch.float64))

    def representations(self, images, upto: int | None = None) -> list:
        """[x_1 = images, x_2, ..., x_upto]: the input of each stage (default: all)."""
        xs = [torch.as_tensor(images)]
        for s in range(min(upto or len(self.stages), len(self.stages)) - 1):
            xs.append(representation(self.stages[s], xs[-1], self.downsamples[s],
                                     float(self.scales[s])))
        return xs

    def forward(self, images):
        return self.stages[-1](self.representations(images)[-1])

    def stage_outputs(self, images) -> list:
        """Each stage's own prediction on its input (accuracy after stage s)."""
        with torch.no_grad():
            return [stage(x) for stage, x in zip(self.stages, self.representations(images))]

    # -- one file ----------------------------------------------------------------------------
    def save(self, path):
        torch.save({"format": FORMAT, "version": VERSION,
                    "downsamples": self.downsamples,
                    "scales": [float(s) for s in self.scales],
                    "stages": [s.to_dict() for s in self.stages]}, path)

    @classmethod
    def load(cls, path, map_location="cpu"):
        saved = load_saved(path, map_location, LayerwiseNetworkError, "layerwise network")
        if not isinstance(saved, dict) or saved.get("format") != FORMAT or \
                saved.get("version") not in READS:
            raise LayerwiseNetworkError(f"{path} is not a layerwise network saved by "
                                        f"LayerwiseNetwork.save (format {FORMAT} {VERSION})")
        downsamples = saved["downsamples"] if saved["version"] >= 2 else saved["windows"]
        return cls([NetworkModule.from_dict(d) for d in saved["stages"]], downsamples,
                   saved["scales"])

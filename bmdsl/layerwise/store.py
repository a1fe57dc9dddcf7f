"""The run directory of a layerwise training: one file per finished stage, so a run
resumes at the stage it stopped in.

    DIR/run.json            the configuration's digest and each finished stage's record
                            (with the sha256 of its file)
    DIR/stage<s>.pt         stage s: its network (all P m units), down-sampling and scale
    DIR/stage<s>.ckpt       the trainer's checkpoint while stage s trains (trainer/checkpoint)
    DIR/network.pt          the stacked network (LayerwiseNetwork.save), after the last stage

A stage file is read back only when its sha256 matches the one in run.json, with
torch.load(weights_only=True); a directory made by another configuration (model, data,
options) is refused with what differs. Writes are atomic (commands/outputs.py).
"""
from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import torch

from ..core.errors import BmdslError
from ..trainer.runtime.network import NetworkModule
from .downsample import parse

RUN = "run.json"


class RunDirectoryError(BmdslError):
    kind = "layerwise run error"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class StageStore:
    def __init__(self, directory, config: dict):
        self.dir, self.config = Path(directory), config
        self.stages: list[dict] = []       # records of finished stages, in order

    def path(self, name: str) -> Path:
        return self.dir / name

    def checkpoint(self, s: int) -> Path:
        return self.path(f"stage{s}.ckpt")

    def prepare(self, resume: bool) -> None:
        """Create the directory; a fresh run refuses a directory that holds one."""
        from ..core.outputs import make_directory
        make_directory(self.dir)
        if not resume and self.path(RUN).exists():
            raise RunDirectoryError(f"{self.dir} already holds a layerwise run ({RUN})",
                                    hint="resume it (resume=True, --resume), or choose "
                                         "another directory (--force starts afresh)")

    # -- resume ------------------------------------------------------------------------------
    def resume(self) -> list:
        """[(network, downsample, scale, record)] of the finished stages; nothing if none
        ran (files written before the down-sampling modes hold an int "window")."""
        run = self.path(RUN)
        if not run.is_file():
            return []
        try:
            saved = json.loads(run.read_text(encoding="utf-8"))
            config, stages = saved["config"], list(saved["stages"])
        except (OSError, ValueError, KeyError, TypeError):
            raise RunDirectoryError(f"{run} is not a layerwise run record",
                                    hint="resume from a directory written by bmdsl layerwise")
        differ = sorted(k for k in set(config) | set(self.config)
                        if config.get(k) != self.config.get(k))
        if differ:
            raise RunDirectoryError(
                f"{self.dir} was made by another configuration: " + "; ".join(
                    f"{k} = {config.get(k)!r} there, {self.config.get(k)!r} here"
                    for k in differ),
                hint="resume with the same model, data and options (only --stages may grow)")
        out = []
        for record in stages:
            file = self.path(record["file"])
            if not file.is_file() or _sha256(file) != record["sha256"]:
                raise RunDirectoryError(f"{file} is missing or changed since it was written "
                                        f"(its sha256 differs from {run}'s)",
                                        hint="train again from the start in a new directory")
            saved = torch.load(file, map_location="cpu", weights_only=True)
            down = saved.get("downsample", saved.get("window"))
            out.append((NetworkModule.from_dict(saved["network"]),
                        None if down is None else parse(down), saved["scale"], record))
        self.stages = [r for *_, r in out]
        return out

    # -- write -------------------------------------------------------------------------------
    def save_stage(self, s: int, net, downsample, scale, record: dict) -> None:
        """downsample and scale are None for a last stage (nothing passed on yet)."""
        from ..core.outputs import write_atomic
        file = self.path(f"stage{s}.pt")
        buffer = io.BytesIO()
        torch.save({"network": net.to_dict(), "downsample": downsample,
                    "scale": scale}, buffer)
        write_atomic(file, lambda tmp: Path(tmp).write_bytes(buffer.getvalue()))
        self.stages.append(dict(record, file=file.name, sha256=_sha256(file)))
        self.write_run()
        ckpt = self.checkpoint(s)
        if ckpt.exists():
            ckpt.unlink()        # the stage is finished: its file supersedes the checkpoint

    def write_run(self, extra: dict | None = None) -> None:
        from ..core.outputs import write_text_atomic
        write_text_atomic(self.path(RUN), json.dumps(
            {"config": self.config, "stages": self.stages, **(extra or {})}, indent=2))

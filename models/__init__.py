"""The example models (*.bm), shipped inside the package as `bmdsl.models`; every command
and `bmdsl.load` accept them by name (`bmdsl run mlp`)."""

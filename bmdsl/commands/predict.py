"""`bmdsl predict FILE --weights W --data NEW [-o OUT.npz|.csv]`: the trained network's
predictions for new inputs (docs/cli.md).

W is the .npz that `bmdsl train` writes (U, V, the patterns' gates, the activation) or a
network saved with `net.save()`; gated ReLU units use the training gates. NEW needs the
model's inputs only (a target in it is ignored). OUT holds the predictions under the
model's output name and, for a classification loss, the predicted `class` (argmax over the
class axis, or the sign -1/+1 for logistic); without -o they are printed, one sample a line.
"""
from __future__ import annotations

import numpy as np

from .registry import command
from ..core.errors import BmdslError, DataError
from .weights import add_weights_options, trained_network


@command("predict", "predictions of trained weights for new inputs (.npz or .csv)")
def cmd_predict(args) -> int:
    from ..bind.datasets import save_data
    from ..workflow.metrics import decisions
    from ..workflow.prediction import network_loss, predict_network
    out_path = args.output
    if out_path and not out_path.lower().endswith((".npz", ".csv")):
        raise BmdslError(f"-o {out_path}: predictions are written to .npz or .csv",
                         hint="e.g. -o predictions.npz")
    if out_path:        # before any work: never an input, never through a link, --force
        from ..core.outputs import check_outputs, command_inputs
        check_outputs([out_path], command_inputs(args), args.force)
    net, model, data = trained_network(args)
    Yhat = predict_network(net, data)
    if not np.all(np.isfinite(Yhat)):
        raise DataError("the predictions overflow (NaN or inf); the inputs are far outside "
                        "the training data's scale")
    arrays = {model.output.lhs: Yhat, **decisions(network_loss(net), Yhat)}
    if out_path:
        from ..core.outputs import write_atomic
        write_atomic(out_path, lambda tmp: save_data(tmp, arrays))
        print(f"predictions: {len(Yhat)} sample(s) of model {model.name} "
              f"({net.spec['activation']}, {net.units} unit(s)) -> {out_path} "
              f"({', '.join(arrays)})")
        return 0
    columns = {k: np.asarray(v, dtype=np.float64).reshape(len(v), -1) for k, v in arrays.items()}
    print(",".join(f"{k}[{j}]" if c.shape[1] > 1 else k for k, c in columns.items()
                   for j in range(c.shape[1])))
    for row in np.concatenate(list(columns.values()), axis=1):
        print(",".join(f"{x:.10g}" for x in row))
    return 0


def _configure(p) -> None:
    add_weights_options(p)
    p.add_argument("-o", "--output", metavar="OUT",
                   help="write the predictions to OUT.npz or OUT.csv (default: print them)")
    p.add_argument("--force", action="store_true", help="replace an existing output file")


cmd_predict.configure = _configure

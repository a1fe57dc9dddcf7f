"""`bmdsl evaluate FILE --weights W --data D`: test metrics of trained weights (docs/cli.md).

Reports n, the loss per sample and the loss's metrics (bmdsl.workflow.metrics: accuracy for a
classification loss, MSE and R^2 for a regression loss) as a table, or as JSON with
`--json`.
"""
from __future__ import annotations

import json

from .registry import command
from .report import scores_table
from .weights import add_weights_options, trained_network


@command("evaluate", "test metrics of trained weights on data: accuracy, or MSE and R^2")
def cmd_evaluate(args) -> int:
    from ..bind.binding import declared_target
    from ..workflow.prediction import network_scores
    net, model, data = trained_network(args)
    # class labels [n] for Y[n, c] become one-hot rows, as `train` reads them (c: the net's)
    report = network_scores(net, declared_target(model, data, net.known_sizes()))
    if args.json:
        print(json.dumps({"model": model.name, "activation": net.spec["activation"],
                          "units": net.units, "data": list(args.data), "loss": net.spec["loss"],
                          "metrics": report}, indent=2))
        return 0
    print(f"model {model.name}: {net.spec['activation']}, {net.units} unit(s), loss "
          f"{net.spec['loss']}; data {', '.join(args.data)}")
    print(scores_table({"": report}))
    return 0


def _configure(p) -> None:
    add_weights_options(p)
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")


cmd_evaluate.configure = _configure

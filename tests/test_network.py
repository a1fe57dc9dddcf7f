"""The exported network (bmdsl/trainer/network.py, runtime/network.py): Parameters, pruning,
one-file save/load, fine-tuning with torch.optim, and equality with the BM factors."""
import numpy as np
import pytest
import torch
from test_trainer import data_for, trained

import bmdsl
from bmdsl.core.errors import DataError
from bmdsl.derive.patterns import PatternSet, masks_from_gates
from bmdsl.trainer.network import BMNetwork, NetworkFileError

pytestmark = pytest.mark.usefixtures("one_torch_thread")   # conftest.py


def inputs(net, bound):
    return [bound.arrays[name] for name in net.inputs]


def fresh_bound(bound, seed=7):
    """The same model on new data, with masks recomputed from the training gates."""
    data, _, _ = data_for(bound.model.name, bound.activation.name, seed=seed)
    if bound.patterns is None:
        return bound.derivation.bind(data)
    first = bound.derivation.bind(data, patterns=bound.patterns)
    masks = masks_from_gates(first.pre_activation, bound.patterns.gates)
    return bound.derivation.bind(data, patterns=PatternSet(masks, bound.patterns.gates,
                                                           "sampled"))


@pytest.mark.parametrize("arch,act", [("mlp", "gated_relu"), ("cnn", "relu"),
                                      ("attention", "linear")])
def test_weights_are_parameters_and_the_rest_buffers(arch, act):
    _, trainer, _ = trained(arch, act)
    net = trainer.network()
    params = dict(net.named_parameters())
    assert set(params) == {"W1", "W2"}
    assert all(isinstance(p, torch.nn.Parameter) and p.requires_grad for p in params.values())
    buffers = set(dict(net.named_buffers()))
    assert not buffers & set(params)
    if act == "gated_relu":
        assert {"gates", "pattern"} <= buffers
    if arch == "cnn":
        assert "fixed_P" in buffers


@pytest.mark.parametrize("arch,act", [("mlp", "gated_relu"), ("mlp", "relu"),
                                      ("cnn", "relu"), ("attention", "gated_relu"),
                                      ("cnn", "linear")])
def test_network_equals_the_bm_factors_on_train_and_new_data(arch, act):
    """Gated and linear: D_k * A(u) with masks from the gates, eq. (18). ReLU: the factors'
    D_k * A(u) on the training data (the cones (19) hold there); on new data the network
    is relu(A(u)), the ReLU network the factors define."""
    bound, trainer, result = trained(arch, act)
    new = fresh_bound(bound)
    for net in (trainer.network(), trainer.network(prune=False)):
        for b in (bound, new):
            want = b.predict_bm(result.U, result.V)
            if act == "relu" and b is new:
                want = b.output(np.maximum(b.pre_activation(result.U), 0), result.V)
                assert not np.allclose(want, b.predict_bm(result.U, result.V))  # not vacuous
            out = net(*inputs(net, b)).detach().numpy()
            assert np.allclose(out, want, rtol=1e-10, atol=1e-12 * np.abs(want).max())


@pytest.mark.parametrize("arch,act", [("mlp", "gated_relu"), ("cnn", "relu")])
def test_pruning_drops_only_zero_units_and_unused_gates(arch, act):
    bound, trainer, _ = trained(arch, act)
    full, net = trainer.network(prune=False), trainer.network()
    P, m = bound.P, trainer.m
    assert full.units == P * m
    norms = full.unit_norms()
    assert net.units == int((norms > 0).sum()) < full.units
    assert float(net.unit_norms().min()) > 0
    if act == "gated_relu":     # only the gates some kept unit uses; indices remapped
        assert net.gates.shape[0] == len(torch.unique(net.pattern)) <= P
        assert int(net.pattern.max()) == net.gates.shape[0] - 1
    new = fresh_bound(bound)
    for b in (bound, new):
        a, f = net(*inputs(net, b)).detach(), full(*inputs(full, b)).detach()
        assert torch.allclose(a, f, rtol=1e-12, atol=1e-13 * float(f.abs().max()))


def test_the_relu_network_is_the_ordinary_relu_network():
    """For the MLP: Yhat = sum_j relu(X u_j) v_j^T, on inputs never seen in training."""
    _, trainer, _ = trained("mlp", "relu")
    net = trainer.network()
    X = np.random.default_rng(3).standard_normal((11, 2))
    want = np.maximum(X @ net.W1.detach().numpy().T, 0) @ net.W2.detach().numpy()
    assert np.allclose(net(X).detach().numpy(), want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("arch,act", [("mlp", "gated_relu"), ("cnn", "relu")])
def test_save_and_load_predict_identically(arch, act, tmp_path):
    bound, trainer, _ = trained(arch, act)
    net = trainer.network()
    path = tmp_path / "net.pt"
    net.save(path)
    back = bmdsl.load_network(path)
    assert isinstance(back, BMNetwork) and back.spec == net.spec
    assert back.model_text == bound.model.source.text and "model" in back.model_text
    assert set(dict(back.named_parameters())) == {"W1", "W2"}
    new = fresh_bound(bound)
    for b in (bound, new):
        assert torch.equal(back(*inputs(back, b)), net(*inputs(net, b)))


def test_loading_refuses_other_files_and_pickled_objects(tmp_path):
    np.savez(tmp_path / "w.npz", U=np.zeros(3))
    (tmp_path / "text.pt").write_text("not a network")
    torch.save({"format": "bmdsl-network", "spec": PatternSet}, tmp_path / "evil.pt")
    torch.save({"format": "something else"}, tmp_path / "other.pt")
    for name, needle in [("w.npz", "not a saved network"), ("text.pt", "not a saved network"),
                         ("evil.pt", "not a saved network"),
                         ("other.pt", "not a network saved by net.save"),
                         ("missing.pt", "no such file")]:
        with pytest.raises(NetworkFileError, match=needle) as err:
            bmdsl.load_network(tmp_path / name)
        assert isinstance(err.value, DataError)


def test_one_optimizer_step_changes_the_parameters_only():
    bound, trainer, _ = trained("mlp", "gated_relu")
    net = trainer.network()
    before = {k: v.detach().clone() for k, v in net.state_dict().items()}
    opt = torch.optim.SGD(net.parameters(), lr=1e-2)
    Y = torch.as_tensor(bound.Y)
    loss = ((net(*inputs(net, bound)) - Y) ** 2).sum() + 1.0   # + 1: not at a zero
    loss = loss + 0.1 * net.W1.square().sum()                    # weight decay: moves W1 too
    loss.backward()
    assert net.W1.grad is not None and float(net.W1.grad.abs().max()) > 0
    assert net.W2.grad is not None and float(net.W2.grad.abs().max()) > 0
    opt.step()
    after = net.state_dict()
    assert not torch.equal(after["W1"], before["W1"])
    assert not torch.equal(after["W2"], before["W2"])
    assert torch.equal(after["gates"], before["gates"])
    assert torch.equal(after["pattern"], before["pattern"])


@pytest.mark.parametrize("call,error,needle", [
    (lambda net: net(np.zeros((4, 3))), ValueError, "d = 3 on axis 1, but the network was "
     "trained with d = 2"),
    (lambda net: net(torch.zeros(4)), ValueError, "has 1 axes"),      # a tensor: _check
    (lambda net: net(np.zeros(4)), ValueError, r"'X' has axes \[4\], not \[n, d\]"),  # numpy
    (lambda net: net(np.full((2, 2), np.nan)), ValueError, "NaN or inf"),
    (lambda net: net(torch.zeros((0, 2))), ValueError, "no samples"),
    (lambda net: net(np.zeros((0, 2))), ValueError, "'X' is empty"),
    (lambda net: net([["a", "b"]]), ValueError, "not an array of numbers"),
    (lambda net: net(), TypeError, r"missing input\(s\) \['X'\]"),
    (lambda net: net(Z=np.zeros((2, 2))), TypeError, "unknown"),
])
def test_bad_inputs_are_clear_errors(call, error, needle):
    _, trainer, _ = trained("mlp", "gated_relu")
    with pytest.raises(error, match=needle):
        call(trainer.network())


def test_bmdsl_predict_accepts_weights_as_arrays_and_checks_them():
    bound, trainer, result = trained("mlp", "gated_relu")
    weights = {"U": result.U, "V": result.V, **bound.patterns.to_npz_dict(),
               "activation": "gated_relu"}
    new = fresh_bound(bound)
    out = bmdsl.predict(bound.model, weights, {"X": new.arrays["X"]})
    assert np.allclose(out, new.predict_bm(result.U, result.V), rtol=1e-10, atol=1e-12)
    with pytest.raises(DataError, match="training gates"):
        bmdsl.predict(bound.model, {"U": result.U, "V": result.V,
                                    "activation": "gated_relu"}, {"X": new.arrays["X"]})
    with pytest.raises(DataError, match=r"has shape \(6, 5, 2, 1\)"):
        bmdsl.predict(bound.model, dict(weights, U=result.U[..., None]), {"X": new.arrays["X"]})
    with pytest.raises(DataError, match="lacks the input"):
        bmdsl.predict(bound.model, weights, {"Y": new.Y})


def test_a_scalar_output_weight_prunes_and_predicts():
    """models/relu.bm: W2 is a scalar per unit (V [P, m]); a zero v drops its unit."""
    from pathlib import Path

    from bmdsl.trainer.spec import build_spec
    model = bmdsl.load(Path(__file__).parent.parent / "models" / "relu.bm")
    rng = np.random.default_rng(0)
    U, V = rng.standard_normal((3, 2, 2)), rng.standard_normal((3, 2))
    V[1, 0] = 0.0
    net = BMNetwork.from_factors(build_spec(model.derive()), U, V)
    assert net.units == 5 and net.W2.shape == (5,)
    X = rng.standard_normal((9, 2))
    want = np.maximum(X @ U.reshape(6, 2).T, 0) @ V.reshape(6)
    assert np.allclose(net(X).detach().numpy(), want, rtol=1e-12, atol=1e-12)

"""When a fit ends by default (trainer/stopping.py): the certificate schedule, the default
gap target, the stall rule, and their meaning inside `fit`."""
import pytest
from test_default_grid import bound_for

from bmdsl.trainer import Trainer, fitloop, stopping

pytestmark = pytest.mark.usefixtures("one_torch_thread")   # conftest.py


def test_the_default_schedule_doubles_and_an_explicit_one_is_kept():
    assert [s for s in range(1, 200) if stopping.due(None, s)] == [10, 20, 40, 80, 160]
    assert [s for s in range(1, 30) if stopping.due(7, s)] == [7, 14, 21, 28]
    assert not any(stopping.due(0, s) for s in range(1, 100))
    assert stopping.schedule(None, True, True) is None        # the default schedule
    assert stopping.schedule(None, False, True) == 0          # certify=False: none
    assert stopping.schedule(None, True, False) == 0          # mini-batches: none
    assert stopping.schedule(5, True, False) == 5             # asked for: kept


def test_the_default_target_and_tol_zero():
    assert stopping.target(None, 1e-12) == stopping.GAP_TARGET == 1e-6
    assert stopping.target(1e-3, 0.0) == 1e-3
    assert stopping.target(None, 0.0) is None                  # every step asked for


def test_stall_needs_fourfold_steps_without_halving():
    plateau = [(0, 1e-3), (10, 9e-4), (20, 9e-4), (40, 8e-4), (80, 8e-4), (160, 7e-4)]
    assert stopping.gap_stalled(plateau, 160, 1e-12)           # 7e-4 > 9e-4 / 2
    assert not stopping.gap_stalled(plateau, 160, 0.0)         # tol = 0: never
    assert not stopping.gap_stalled(plateau[:-1], 80, 1e-12)   # before 100 steps
    linear = [(s, 1e-3 * 0.99 ** s) for s in (10, 20, 40, 80, 160)]
    assert not stopping.gap_stalled(linear, 160, 1e-12)
    slow = [(s, 1e-3 / s) for s in (10, 20, 40, 80, 160)]      # like 1/k: not stalled
    assert not stopping.gap_stalled(slow, 160, 1e-12)


def test_fit_stops_on_a_stalled_gap_and_on_the_default_target(monkeypatch):
    bound = bound_for("mlp", "gated_relu", "squared", "l2", "l2")
    # a gap bound stuck at 1e-2 (monkeypatched): the fit ends at step 160, "stalled"
    monkeypatch.setattr(fitloop, "_gap", lambda t, refine_iters, goal: 1e-2)
    result = Trainer(bound, device="cpu", method="adam", lr=1e-3).fit(1000, tol=1e-15)
    assert result.stopped == "stalled" and result.steps == 160
    assert [s for s, _ in result.certificates] == [10, 20, 40, 80, 160]
    monkeypatch.undo()
    # the default target: certified below 1e-6 (by the warm start), no cert_tol status
    result = Trainer(bound, device="cpu").fit()
    assert result.stopped == "certificate" and result.certificate.gap_bound <= 1e-6
    assert result.cert_tol is None and result.status == "finished"


def test_a_warm_chunk_fits_in_the_time_left():
    class Warm:
        iterations, seconds = 100, 2.0          # 20 ms per iteration
    assert stopping.next_chunk(100, Warm, 5.0, None) == 200
    assert stopping.next_chunk(100, Warm, 5.0, 7.0) == 100      # 2 s left: 100 iterations
    assert stopping.next_chunk(100, Warm, 5.0, 100.0) == 200
    assert stopping.next_chunk(100, Warm, 9.99, 10.0) == 1


def test_under_a_time_limit_a_probe_sizes_the_first_warm_chunk():
    class Warm:
        FIRST_CHUNK, iterations, seconds = 100, 5, 5.0     # 1 s per iteration
    assert stopping.first_chunk(Warm, None) == 100
    assert stopping.first_chunk(Warm, 20.0) == stopping.PROBE == 5
    assert stopping.after_probe(Warm, 5.0, 20.0) == 15      # 15 s left: 15, not 95
    assert stopping.after_probe(Warm, 5.0, 1e6) == 95       # the rest of the first chunk
    assert stopping.after_probe(Warm, 30.0, 20.0) == 1


def test_a_slow_warm_start_keeps_its_time_limit(monkeypatch):
    """A warm start whose iterations take 0.2 s, under a 1 s limit: the probe (5 of them)
    finds the time gone, so the fit stops about there, not after a 100-iteration chunk."""
    import time as clock
    bound = bound_for("mlp", "gated_relu", "huber", "l2", "l2")
    trainer = Trainer(bound, device="cpu", progress=False)
    warm, calls = trainer.warm, []
    run = warm.run

    def slow(iterations):
        calls.append(iterations)
        clock.sleep(0.2 * iterations)
        return run(iterations)
    monkeypatch.setattr(warm, "run", slow)
    result = trainer.fit(time_limit=1.0)
    assert calls[0] == stopping.PROBE and sum(calls) <= stopping.PROBE + 2
    assert result.stopped == "time_limit"

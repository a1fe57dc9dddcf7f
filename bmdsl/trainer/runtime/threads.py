"""Solvers that run on one torch thread."""
import torch


def on_one_thread(solve):
    """`solve` on one torch thread: a product split over threads may round in another
    order (the lifted solvers and the interior point take the same bits with any number of
    processes), and two threads on a loaded 2-core machine spin on each other."""
    def run(*args, **kwargs):
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return solve(*args, **kwargs)
        finally:
            torch.set_num_threads(threads)
    run.__doc__ = solve.__doc__
    return run

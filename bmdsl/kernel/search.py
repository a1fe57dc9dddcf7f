"""Golden-section search for the maximum of a unimodal function on an interval (the
dual-ray and pair searches of the certificates, Fenchel dual of Sahiner et al. 2024)."""
import math


def golden_max(phi, a, b, iters=200, rtol=0.0):
    """argmax of phi on [a, b]: exact for unimodal phi, else a local maximum. Values only,
    so an infinite slope at the ends (x log x) does not disturb it; stops when the interval
    is below rtol * max(1, |a|, |b|)."""
    r = (math.sqrt(5.0) - 1.0) / 2.0
    c, d = b - r * (b - a), a + r * (b - a)
    fc, fd = phi(c), phi(d)
    for _ in range(iters):
        if b - a <= rtol * max(1.0, abs(a), abs(b)):
            break
        if fc >= fd:
            b, d, fd = d, c, fc
            c = b - r * (b - a)
            fc = phi(c)
        else:
            a, c, fc = c, d, fd
            d = a + r * (b - a)
            fd = phi(d)
    return 0.5 * (a + b)

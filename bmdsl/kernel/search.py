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


def brent_max(phi, a, b, rtol=1e-10, iters=100):
    """argmax of phi on [a, b] by Brent's method (Brent 1973, ch. 5: parabolic steps
    through the three best points, a golden-section step whenever the parabola's is not
    acceptable): the same maximum as golden_max for unimodal phi, in about 10-20 values
    of a smooth phi instead of 60-70 (the dual-ray searches evaluate F* over all samples
    at each one). Stops when the bracket is within rtol * max(1, |x|) (plus float64's
    sqrt(eps) relative: a smooth maximum's value is flat to eps there).

    First the ends: for unimodal phi, an end no lower than its neighbour one tolerance
    inside holds the maximum to that tolerance (the dual ray's scale is often capped by
    the dual norms, where Brent's steps would only creep to the end)."""
    g = (3.0 - math.sqrt(5.0)) / 2.0
    eps = math.sqrt(2.2e-16)
    for end, inward in ((b, -1.0), (a, 1.0)):
        h = min(0.5 * (b - a), eps * abs(end) + rtol * max(1.0, abs(end)))
        if h > 0 and phi(end) >= phi(end + inward * h):
            return end
    x = w = v = a + g * (b - a)
    fx = fw = fv = -phi(x)
    d = e = 0.0
    for _ in range(iters):
        m = 0.5 * (a + b)
        tol1 = eps * abs(x) + rtol * max(1.0, abs(x)) / 3.0
        tol2 = 2.0 * tol1
        if abs(x - m) <= tol2 - 0.5 * (b - a):
            break
        golden = True
        if abs(e) > tol1:           # try the parabola through x, w, v
            r = (x - w) * (fx - fv)
            q = (x - v) * (fx - fw)
            p = (x - v) * q - (x - w) * r
            q = 2.0 * (q - r)
            if q > 0.0:
                p = -p
            q = abs(q)
            if abs(p) < abs(0.5 * q * e) and q * (a - x) < p < q * (b - x):
                e, d = d, p / q
                u = x + d
                if u - a < tol2 or b - u < tol2:
                    d = tol1 if x < m else -tol1
                golden = False
        if golden:
            e = (a if x >= m else b) - x
            d = g * e
        u = x + (d if abs(d) >= tol1 else (tol1 if d > 0 else -tol1))
        fu = -phi(u)
        if fu <= fx:
            if u >= x:
                a = x
            else:
                b = x
            v, fv, w, fw, x, fx = w, fw, x, fx, u, fu
        else:
            if u < x:
                a = u
            else:
                b = u
            if fu <= fw or w == x:
                v, fv, w, fw = w, fw, u, fu
            elif fu <= fv or v == x or v == w:
                v, fv = u, fu
    return x

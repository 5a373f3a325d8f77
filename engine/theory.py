"""Mean-field signal propagation (Poole et al. 2016; Schoenholz et al. 2017): q*, chi_1, c*, depth scales.

A net with W ~ N(0, sigma_w^2 / n) and b ~ N(0, sigma_b^2) carries the pre-activation variance through the map
q_{l+1} = sigma_w^2 E[f(sqrt(q_l) z)^2] + sigma_b^2 and the correlation of two inputs through
c_{l+1} = (sigma_w^2 E[f(u1) f(u2)] + sigma_b^2) / q*, with u1 = sqrt(q*) z1, u2 = sqrt(q*) (c z1 + sqrt(1 - c^2) z2).
chi_1 = sigma_w^2 E[f'(sqrt(q*) z)^2] is the mean squared singular value of one layer's Jacobian: below 1
gradients vanish with depth (ordered phase), above 1 they explode (chaotic phase). Expectations are taken by
Gauss-Legendre panels that meet at 0, where ReLU, ELU and SELU have their kink, graded towards 0 as the scale
grows. The two-dimensional ones (c*, chi_c) are Gauss-Hermite for smooth activations (within 0.1% of Monte Carlo up
to q* of about 6); for the kinked ones, panels again: in z1 meeting at 0, and in z2, for each z1, meeting where
u2 crosses 0 (Gauss-Hermite's nodes straddle the kinks: SELU's forward depth scale came out 10% off).
"""
from __future__ import annotations

import math
from functools import lru_cache
from typing import Any, Callable

import numpy as np
from numpy.polynomial.hermite_e import hermegauss

from .spec import ACTIVATIONS, SpecError

NODES_2D = 160
PHASE_TOL = 1e-6        # |chi_1 - 1| below this is called critical
Q_FLOOR = 1e-12         # a variance map still falling below this goes to the q* = 0 fixed point
Q_CEIL = 1e12           # a variance map still rising above this has no finite fixed point
Q_ZERO = 1e-200         # expectations "at q* = 0" are taken just above 0: the one-sided limit at a kink
Z_MAX = 10.0            # N(0, 1) mass beyond is 1.5e-23
PAIR_MAX_Q = 9.0        # the largest q* at which c*, chi_c are computed (chi_c to 1e-6 for tanh up to q* = 9)
JUMP = 1e-3             # chi_1 - 1 changing by more than this across the final bisection bracket is a jump
MARGINAL = 1e-6         # a map whose slope is within this of 1 at a scale has no fixed point resolvable there
_RTOL = 1e-13           # |q_map(q) - q| below this times q is a fixed point (rounding of the quadrature)

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946

Fn = Callable[[np.ndarray], np.ndarray]


@lru_cache(maxsize=8)
def _nodes(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Probabilists' Gauss-Hermite nodes and weights normalised to sum to 1: sum w g(x) = E[g(z)], z ~ N(0, 1)."""
    x, w = hermegauss(n)
    return x, w / w.sum()


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))      # no overflow for large |x|


def _erf(x: np.ndarray) -> np.ndarray:
    import torch

    return torch.special.erf(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64))).numpy()


def functions(name: str, slope: float = 0.01) -> tuple[Fn, Fn]:
    """Closed forms of f and f' in numpy, matching the torch modules of engine/activations.py (f' at a kink is
    torch's choice: 0 for ReLU at 0)."""
    if name == "identity":
        return (lambda x: x), (lambda x: np.ones_like(x))
    if name == "sigmoid":
        return _sigmoid, (lambda x: _sigmoid(x) * (1.0 - _sigmoid(x)))
    if name == "tanh":
        return np.tanh, (lambda x: 1.0 - np.tanh(x) ** 2)
    if name == "relu":
        return (lambda x: np.maximum(x, 0.0)), (lambda x: (x > 0).astype(np.float64))
    if name == "leaky_relu":
        return (lambda x: np.where(x > 0, x, slope * x)), (lambda x: np.where(x > 0, 1.0, slope))
    if name == "elu":
        return (lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0.0)))), \
               (lambda x: np.where(x > 0, 1.0, np.exp(np.minimum(x, 0.0))))
    if name == "selu":
        return (lambda x: SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * np.expm1(np.minimum(x, 0.0)))), \
               (lambda x: SELU_SCALE * np.where(x > 0, 1.0, SELU_ALPHA * np.exp(np.minimum(x, 0.0))))
    if name == "gelu":
        cdf = lambda x: 0.5 * (1.0 + _erf(x / math.sqrt(2.0)))
        pdf = lambda x: np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)
        return (lambda x: x * cdf(x)), (lambda x: cdf(x) + x * pdf(x))
    if name == "silu":
        return (lambda x: x * _sigmoid(x)), (lambda x: _sigmoid(x) * (1.0 + x * (1.0 - _sigmoid(x))))
    if name == "softplus":
        # torch's Softplus returns x itself above 20
        return (lambda x: np.where(x > 20, x, np.logaddexp(0.0, np.minimum(x, 20.0)))), \
               (lambda x: np.where(x > 20, 1.0, _sigmoid(x)))
    raise SpecError("activation", name, "one of " + ", ".join(ACTIVATIONS))


def _panels(edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes, eight to a panel, on the panels between `edges` (from 0 up) and their mirror images
    below 0, with plain weights (times a density by the caller)."""
    t, tw = np.polynomial.legendre.leggauss(8)
    a, b = edges[:-1, None], edges[1:, None]
    x = (0.5 * (b - a) * t + 0.5 * (a + b)).ravel()
    w = (0.5 * (b - a) * tw).ravel()
    return np.concatenate([-x[::-1], x]), np.concatenate([w[::-1], w])


def _phi(z: np.ndarray) -> np.ndarray:
    return np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)


@lru_cache(maxsize=64)
def _graded(scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights on z in [-Z_MAX, Z_MAX] for E[g(scale z)] when scale is large: Gauss-Legendre panels
    of width 0.25 / scale where g(scale z) changes fast (|z| < 40 / scale: sigmoid's, softplus's and SiLU's
    e^-|u| tails are still 3e-4 at |u| = 8; past |u| = 8, where only those smooth tails change, panels of 1 / scale),
    of width 0.25 beyond, times phi(z)."""
    near = min(8.0 / scale, Z_MAX)
    inner = min(40.0 / scale, Z_MAX)
    x, w = _panels(np.concatenate([np.linspace(0.0, near, int(math.ceil(near * scale / 0.25)) + 1),
                                   np.linspace(near, inner, int(math.ceil((inner - near) * scale)) + 1)[1:],
                                   np.linspace(inner, Z_MAX, int(math.ceil((Z_MAX - inner) / 0.25)) + 1)[1:]]))
    return x, w * _phi(x)


def _expect(g: Fn, q: float) -> float:
    """E[g(sqrt(q) z)] for z ~ N(0, 1) by the graded rule: its panels meet at 0, where ReLU, ELU and SELU have
    their kink (Gauss-Hermite's nodes straddle it: SELU's edge of chaos came out 1% off), and they narrow as the
    scale grows, where Gauss-Hermite's nodes would grow too far apart to see a smooth g's fast change near 0
    (tanh' at q = 100 would be off by a factor 5)."""
    s = math.sqrt(max(q, Q_ZERO))
    x, w = _graded(round(max(s, 1.0), 6))
    return float(np.dot(w, g(s * x)))


def q_map(q: float, f: Fn, sigma_w: float, sigma_b: float) -> float:
    """One layer of the variance map: sigma_w^2 E[f(sqrt(q) z)^2] + sigma_b^2."""
    return sigma_w ** 2 * _expect(lambda u: f(u) ** 2, q) + sigma_b ** 2


def q_trajectory(activation: str, sigma_w: float, sigma_b: float, depth: int, q0: float = 1.0,
                 slope: float = 0.01) -> list[float]:
    """q_0 = q0, then the variance map applied depth times: the pre-activation variance layer by layer."""
    f, _ = functions(activation, slope)
    qs = [float(q0)]
    for _ in range(depth):
        q = q_map(qs[-1], f, sigma_w, sigma_b)
        qs.append(q if math.isfinite(q) else math.inf)
        if not math.isfinite(q):
            break
    return qs


def _sign(q: float, f: Fn, sw: float, sb: float) -> int:
    h = q_map(q, f, sw, sb) - q
    if abs(h) <= _RTOL * (q + sb * sb):
        return 0
    return 1 if h > 0 else -1


def fixed_point_q(f: Fn, sigma_w: float, sigma_b: float, q0: float = 1.0) -> float:
    """The fixed point the variance map reaches from q0, found by bracketing and bisection (iterating the map
    converges only like 1/l at the edge of chaos). 0.0 when the map falls below Q_FLOOR with no fixed point on
    the way (sigma_b = 0 and f(0) = 0); inf when it rises past Q_CEIL (unbounded f, sigma_w above critical)."""
    s = _sign(q0, f, sigma_w, sigma_b)
    if s == 0:
        return float(q0)
    lo = hi = float(q0)
    if s < 0:                   # falling: the largest fixed point below q0
        while True:
            lo = hi / 2.0
            if lo < Q_FLOOR:
                return 0.0
            t = _sign(lo, f, sigma_w, sigma_b)
            if t == 0:
                return lo
            if t > 0:
                break
            hi = lo
    else:                       # rising: the smallest fixed point above q0
        while True:
            hi = lo * 2.0
            if hi > Q_CEIL:
                return math.inf
            t = _sign(hi, f, sigma_w, sigma_b)
            if t == 0 and not _marginal(hi, f, sigma_w, sigma_b):
                return hi
            if t < 0:
                break
            lo = hi
    # q_map(lo) > lo and q_map(hi) < hi
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if mid <= lo or mid >= hi:
            break
        t = _sign(mid, f, sigma_w, sigma_b)
        if t == 0:      # within the tolerance: a fixed point, unless the map is the identity there (see _marginal)
            return math.inf if s > 0 and _marginal(mid, f, sigma_w, sigma_b) else mid
        lo, hi = (mid, hi) if t > 0 else (lo, mid)
    return 0.5 * (lo + hi)


def _marginal(q: float, f: Fn, sw: float, sb: float) -> bool:
    """Whether the map's slope at q is 1 to within MARGINAL: there a q_map(q) - q within the tolerance is sigma_b^2
    lost in the rounding of q_map(q), not a crossing (ReLU at sigma_w^2 = 2 adds sigma_b^2 a layer for ever). A true
    fixed point that close to marginal would have a depth scale past a million layers."""
    dq = 1e-3 * q
    return (q_map(q + dq, f, sw, sb) - q_map(q, f, sw, sb)) / dq >= 1.0 - MARGINAL


def chi1(f_prime: Fn, sigma_w: float, q: float) -> float:
    """sigma_w^2 E[f'(sqrt(q) z)^2]: the factor by which one layer multiplies the squared gradient norm."""
    return sigma_w ** 2 * _expect(lambda u: f_prime(u) ** 2, q)


KINKED = ("relu", "leaky_relu", "elu", "selu")     # f or f' jumps at 0


@lru_cache(maxsize=16)
def _split(half: float, width: float = 0.5, fine: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes and plain weights on [-half, half], eight to a panel, panels meeting at 0; with `fine`,
    panels of a quarter of it out to 8 fine from 0 (what changes on that scale near 0 is resolved)."""
    inner = min(8.0 * fine, half) if fine > 0 else 0.0
    near = np.linspace(0.0, inner, 33) if inner > 0 else np.zeros(1)
    return _panels(np.concatenate([near, np.linspace(inner, half,
                                                     max(1, int(math.ceil((half - inner) / width))) + 1)[1:]]))


def _pair_expect_kinked(g: Fn, q: float, c: float) -> float:
    """E[g(u1) g(u2)] for g with a kink at 0: panels in z1 meet at 0 (u1's kink); in z2, for each z1, they meet at
    k = -c z1 / sqrt(1 - c^2), where u2 crosses 0 (held within [-Z_MAX, Z_MAX]: past it the kink carries no mass,
    and z2 = k + t for t in [-2 Z_MAX, 2 Z_MAX] still covers the mass)."""
    s = math.sqrt(max(q, Q_ZERO))
    c = min(max(c, -1.0), 1.0)
    sc = math.sqrt(1.0 - c * c)
    # the inner expectation changes on a scale of sqrt(1 - c^2) / c in z1 about 0, where the kink of u2 passes
    z1, t1 = _split(Z_MAX, fine=round(sc / max(abs(c), 1e-12), 6) if sc < 1.0 else 0.0)
    w1 = t1 * _phi(z1)
    g1 = g(s * z1)
    if sc < 1e-12:     # u2 = c u1
        return float(np.dot(w1, g1 * g(s * c * z1)))
    k = np.clip(-c * z1 / sc, -Z_MAX, Z_MAX)
    t, tw = _split(2.0 * Z_MAX)
    z2 = k[:, None] + t[None, :]
    w2 = tw[None, :] * _phi(z2)
    return float(np.dot(w1, g1 * (w2 * g(s * (c * z1[:, None] + sc * z2))).sum(axis=1)))


def _pair_expect(g: Fn, q: float, c: float, n: int | None = None, kinked: bool = False) -> float:
    """E[g(u1) g(u2)] for u1 = sqrt(q) z1, u2 = sqrt(q) (c z1 + sqrt(1 - c^2) z2), z1, z2 independent N(0, 1).
    Past q = 4 twice the nodes: g(sqrt(q) z) turns on a scale of 1 / sqrt(q), finer than the nodes' spacing (tanh
    at q* = 8 had chi_c off by 8e-5 at 160 nodes, by 3e-7 at 320)."""
    if kinked:
        return _pair_expect_kinked(g, q, c)
    x, w = _nodes(n or (NODES_2D if q <= 4.0 else 2 * NODES_2D))
    s = math.sqrt(max(q, Q_ZERO))
    c = min(max(c, -1.0), 1.0)
    u1 = s * x[:, None]
    u2 = s * (c * x[:, None] + math.sqrt(1.0 - c * c) * x[None, :])
    return float(w @ (g(u1[:, 0])[:, None] * g(u2)) @ w)


def c_map(c: float, f: Fn, sigma_w: float, sigma_b: float, q: float, kinked: bool = False) -> float:
    """One layer of the correlation map at the variance fixed point q. The denominator is the same quadrature
    at c = 1 (which is q itself at the fixed point), so that c = 1 maps to 1 exactly whatever the rounding."""
    if q == 0:
        return 1.0
    return (sigma_w ** 2 * _pair_expect(f, q, c, kinked=kinked) + sigma_b ** 2) / (
        sigma_w ** 2 * _pair_expect(f, q, 1.0, kinked=kinked) + sigma_b ** 2)


def fixed_point_c(f: Fn, sigma_w: float, sigma_b: float, q: float, chi_1: float, kinked: bool = False) -> float:
    """The stable correlation fixed point: 1 in the ordered phase; in the chaotic phase the other root in [0, 1)
    (the map is a power series in c with non-negative coefficients, so convex there: the root is unique)."""
    if not math.isfinite(q) or q == 0 or chi_1 <= 1.0 + PHASE_TOL:
        return 1.0
    h = lambda c: c_map(c, f, sigma_w, sigma_b, q, kinked) - c
    lo, hi = 0.0, 1.0 - 1e-6
    if h(hi) >= 0:
        return 1.0
    if h(lo) <= 1e-12:      # 0 for an odd f with no bias, up to the quadrature's rounding (it bisected to 4e-19)
        return 0.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if h(mid) > 0 else (lo, mid)
    return 0.5 * (lo + hi)


def chi_c(f_prime: Fn, sigma_w: float, q: float, c: float, kinked: bool = False) -> float:
    """sigma_w^2 E[f'(u1) f'(u2)] at correlation c: the slope of the correlation map there."""
    return sigma_w ** 2 * _pair_expect(f_prime, q, c, kinked=kinked)


def depth_scale(chi: float) -> float:
    """-1 / ln(chi): the layers over which what chi multiplies per layer changes by a factor e: with chi_1 the
    gradient's mean square (its size changes by e over twice as many), with chi_c the correlation's distance from
    c*. Infinite where |chi - 1| <= PHASE_TOL (critical), negative above 1, where it grows."""
    if chi <= 0:
        return 0.0
    if abs(chi - 1.0) <= PHASE_TOL:
        return math.inf
    return -1.0 / math.log(chi)


def phase(chi_1: float) -> str:
    if abs(chi_1 - 1.0) <= PHASE_TOL:
        return "critical"
    return "ordered" if chi_1 < 1.0 else "chaotic"


def mean_field(activation: str, sigma_w: float, sigma_b: float, slope: float = 0.01, q0: float = 1.0,
               pair: bool = True) -> dict[str, Any]:
    """Everything the mean-field theory says about one (activation, sigma_w, sigma_b), in plain floats.

    q_star: the variance fixed point (inf when the variance grows without bound; chi1 is then taken at Q_CEIL,
    its limit for ReLU-like f). c_star: the correlation fixed point. chi1, chi_c: the slopes of the two maps.
    c_star, chi_c and depth_scale_forward are None where q_star > PAIR_MAX_Q (inf included): there the correlation
    map's two-dimensional quadrature errs (by 1e-3 in chi_c at q* = 12.5 for tanh, 0.1 at q* = 43).
    depth_scale_forward = -1/ln(chi_c) (correlations between inputs), depth_scale_backward = -1/ln(chi1)
    (gradients; negative in the chaotic phase, where they grow). Both are inf at criticality (null in JSON).
    Without `pair`, c_star, chi_c and depth_scale_forward are None (they cost a two-dimensional quadrature each).
    """
    f, fp = functions(activation, slope)
    q = fixed_point_q(f, sigma_w, sigma_b, q0)
    q_eval = Q_CEIL if math.isinf(q) else q
    x1 = chi1(fp, sigma_w, q_eval)
    c = xc = None
    kinked = activation in KINKED
    if pair and q <= PAIR_MAX_Q:     # past it the two-dimensional quadrature of the correlation map errs
        c = fixed_point_c(f, sigma_w, sigma_b, q, x1, kinked)
        xc = x1 if c == 1.0 else chi_c(fp, sigma_w, q_eval, c, kinked)
    return {
        "activation": activation, "sigma_w": float(sigma_w), "sigma_b": float(sigma_b),
        "q_star": q, "c_star": c, "chi1": x1, "chi_c": xc, "phase": phase(x1),
        "depth_scale_forward": None if xc is None else depth_scale(xc), "depth_scale_backward": depth_scale(x1),
    }


STARTS = (1e-3, 1e3)    # other starting variances whose fixed points are compared with q0's
FINITE_Q = 1e4          # where chi_1 is also read when the variance has no fixed point (its limit is a limit)


def elsewhere(activation: str, sigma_w: float, sigma_b: float, slope: float = 0.01, q0: float = 1.0,
              q_star: float | None = None) -> dict[str, Any]:
    """What the readout at q0 leaves out. other_starts: the fixed points the variance map reaches from the STARTS
    where they differ from q0's (GELU at sigma_w 1.76 runs off to infinity from q0 = 1, yet settles at q* = 0.012
    from below an unstable fixed point: the phase depends on the input's scale); each with its chi_1 and phase.
    chi1_finite_q: chi_1 at q = FINITE_Q where q* is infinite (ELU's limit at sigma_w^2 = 2 is 1, critical, while
    along the way chi_1 stays above it). q_star_infinite: whether q* is (JSON writes inf as null, as it does a figure
    not computed)."""
    f, fp = functions(activation, slope)
    q = fixed_point_q(f, sigma_w, sigma_b, q0) if q_star is None else q_star
    others = []
    for start in STARTS:
        o = fixed_point_q(f, sigma_w, sigma_b, start)
        same = (math.isinf(o) and math.isinf(q)) or (math.isfinite(o) and math.isfinite(q)
                                                      and abs(o - q) <= 1e-6 * max(abs(q), 1e-12))
        if not same and not any(math.isclose(o, p["q_star"], rel_tol=1e-6) for p in others):
            x = chi1(fp, sigma_w, Q_CEIL if math.isinf(o) else o)
            others.append({"q0": start, "q_star": o, "chi1": x, "phase": phase(x)})
    return {"q0": float(q0), "q_star_infinite": math.isinf(q), "other_starts": others,
            "chi1_finite_q": chi1(fp, sigma_w, FINITE_Q) if math.isinf(q) else None}


def critical_sigma_w(activation: str, sigma_b: float, slope: float = 0.01, q0: float = 1.0,
                     high: float = 1000.0) -> float | None:
    """The sigma_w at which chi_1 = 1 for this sigma_b, by bisection (chi_1 rises with sigma_w along the fixed
    point), or None when chi_1 stays on one side of 1 for sigma_w in [1e-3, high] or jumps over it."""
    f, fp = functions(activation, slope)
    g = lambda sw: chi1(fp, sw, _q_eval(f, sw, sigma_b, q0)) - 1.0
    lo, hi = 1e-3, 1.0
    while g(hi) < 0:
        lo, hi = hi, hi * 2.0
        if hi > high:
            return None
    if g(lo) > 0:
        return None
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if g(mid) < 0 else (lo, mid)
    if g(hi) - g(lo) > JUMP:
        return None         # chi_1 jumps across 1 (q* jumps from one fixed point to another): no edge of chaos
    return 0.5 * (lo + hi)


def _q_eval(f: Fn, sw: float, sb: float, q0: float) -> float:
    q = fixed_point_q(f, sw, sb, q0)
    return Q_CEIL if math.isinf(q) else q


def critical_line(activation: str, sigma_b2: list[float], slope: float = 0.01) -> list[dict[str, float | None]]:
    """The edge of chaos as points (sigma_b^2, sigma_w^2) with chi_1 = 1, for drawing over a phase diagram."""
    out = []
    for b2 in sigma_b2:
        sw = critical_sigma_w(activation, math.sqrt(b2), slope)
        out.append({"sigma_b2": float(b2), "sigma_w2": None if sw is None else sw * sw})
    return out


def predicted_log10_grad_ratio(activation: str, sigma_w: float, sigma_b: float, depth: int, q0: float,
                               out_over_width: float = 1.0, slope: float = 0.01) -> float:
    """log10 of std(dL/dz) at the first layer over the last, as mean field predicts it for a depth-layer MLP whose
    first pre-activation variance is q0: dL/dz shrinks by chi_1(q_l) in variance at every hidden layer l, along
    the variance trajectory from q0 (not only at q*, which a finite net starting at q0 may never reach)."""
    f, fp = functions(activation, slope)
    qs = q_trajectory(activation, sigma_w, sigma_b, max(depth - 2, 0), q0, slope)
    total = 0.0
    for q in qs[:max(depth - 1, 0)]:
        x = chi1(fp, sigma_w, Q_CEIL if math.isinf(q) else q)
        if x <= 0:
            return -math.inf
        total += 0.5 * math.log10(x)
    if depth >= 2:
        total += 0.5 * math.log10(out_over_width)   # the last layer's fan-out differs from the hidden width
    return total

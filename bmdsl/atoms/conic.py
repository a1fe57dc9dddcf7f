"""The conic solver: one name for every CVXPY solve bmdsl makes.

The convex programs (`bmdsl solve`, `BoundModel.to_cvxpy().solve()`) use it unless `--solver`
names another; bmdsl's own small programs (D-norms of non-closed-form pairs, ReLU cone
extreme rays, certificate sub-problems, recovery of units) always use it. Clarabel is an
interior-point solver that ships with CVXPY and handles the SOC, exponential and SDP cones
these programs need.
"""
DEFAULT_SOLVER = "CLARABEL"
# bmdsl's one first-order solver: the cone KKT bound (cone.py) takes SCS's fast, inexact
# SDP solution and repairs it into a valid bound, so speed matters there, not accuracy
FIRST_ORDER_SOLVER = "SCS"

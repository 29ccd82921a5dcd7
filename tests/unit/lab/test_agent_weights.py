"""HTTPRoute weights become HAProxy server weights (0-256) with the same ratios."""

from __future__ import annotations

import pytest

from keneyapp_lab.agent import scale_weights


@pytest.mark.parametrize("shares, expected", [
    ([], []),
    ([(1, 100.0)], [(1, 256)]),
    # 80 % over 3 stable pods, 20 % on 1 canary pod: 26.67 : 20 per server.
    ([(1, 80 / 3), (2, 80 / 3), (3, 80 / 3), (4, 20.0)], [(1, 256), (2, 256), (3, 256), (4, 192)]),
    ([(1, 50.0), (2, 50.0)], [(1, 256), (2, 256)]),
    ([(1, 95.0), (2, 5.0)], [(1, 256), (2, 13)]),
    ([(1, 100.0), (2, 0.0)], [(1, 256)]),            # weight 0 leaves the server out
    ([(1, 1000.0), (2, 1.0)], [(1, 256), (2, 1)]),    # a tiny share never rounds to off
])
def test_scale_weights(shares, expected):
    assert scale_weights(shares) == expected


@pytest.mark.parametrize("stable_pods, canary_pods, canary_weight", [(3, 1, 20), (2, 2, 25), (5, 1, 5), (1, 3, 75)])
def test_ratio_is_kept_within_half_a_point(stable_pods, canary_pods, canary_weight):
    shares = [(i, (100 - canary_weight) / stable_pods) for i in range(stable_pods)]
    shares += [(100 + i, canary_weight / canary_pods) for i in range(canary_pods)]
    weights = dict(scale_weights(shares))
    canary = sum(w for port, w in weights.items() if port >= 100)
    assert abs(100.0 * canary / sum(weights.values()) - canary_weight) < 0.5

"""``iuie.training.plan.extrapolate``: compiled figures at two depths extended to a model's depth.

Checked against hand-worked lines (figures made up for the arithmetic, not from a compiler).
"""

from __future__ import annotations

import pytest

from iuie.training import plan


def _plan(arguments: int, temporaries: int) -> plan.CompiledPlan:
    return plan.CompiledPlan(
        step="train",
        devices=8,
        device_kind="TPU v4",
        mesh=(8, 1),
        arguments=arguments,
        outputs=arguments,
        aliased=arguments,
        temporaries=temporaries,
        code=1_000,
        hbm=10_000,
        xla_flops=10.0,
        model_flops=8.0,
        compile_seconds=1.5,
    )


def test_figures_extend_linearly_to_the_target_depth():
    # 1 layer: 100 / 300 B; 2 layers: 150 / 400 B; each layer adds 50 / 100 B, so 24 layers: 1,250 / 2,600 B.
    out = plan.extrapolate(_plan(100, 300), _plan(150, 400), 1, 2, 24)
    assert (out.arguments, out.temporaries, out.code) == (1_250, 2_600, 1_000)
    assert out.peak == 1_250 + 2_600 + 1_000 and out.fits is True
    assert out.compile_seconds == 3.0


def test_a_figure_that_falls_with_depth_is_refused_not_extended():
    """The 2d_fsdp v4-8 case: temporaries fell from 1 to 2 layers, and the line gave a negative peak."""
    with pytest.raises(ValueError, match=r"temporaries fall from 300 B \(1 layers\) to 200 B \(2 layers\)"):
        plan.extrapolate(_plan(100, 300), _plan(150, 200), 1, 2, 24)

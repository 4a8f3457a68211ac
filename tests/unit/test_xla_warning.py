"""--xla where the gradient goes through the module: the run warns, in one
line, that such steps are compiled anew at every step (README, `--xla`)."""

from tlbench.driver.runner import xla_warning


def test_xla_warns_for_the_modes_that_train_the_backbone_and_only_for_them():
    assert xla_warning(False, ("transfer", "finetune")) is None
    assert xla_warning(True, ("transfer",)) is None
    line = xla_warning(True, ("transfer", "last_block", "finetune"))
    assert line.startswith("warning: --xla with last_block, finetune: XLA compiles each training step")
    assert "\n" not in line and "transfer compiles once" in line

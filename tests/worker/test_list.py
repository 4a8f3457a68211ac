"""`list`: every backbone, mode and the default dataset, with each
architecture's FLOPs per image, counted in a fresh process with TensorFlow
(the command itself never imports it)."""

from tlbench.cli import main


def test_list_shows_every_backbone_mode_and_the_default_dataset(capsys):
    from tlbench.registry import BACKBONES

    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for backbone in BACKBONES:
        assert backbone.name in out and backbone.handle in out
    assert "transfer, last_block, last_stage, finetune" in out and "'digits'" in out
    # FLOPs per image counted from each architecture's graph (in a subprocess:
    # the command itself never imports TensorFlow), e.g. MobileNet V2 0.35/128's
    # 0.038 GFLOPs and ResNet V2 50's 6.97.
    assert "GFLOPs/image" in out and "0.038" in out and "6.974" in out
    assert "FLOPs not counted" not in out

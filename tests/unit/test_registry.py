import pytest

from tlbench.errors import UsageError
from tlbench.registry import BACKBONES, DEFAULT_BACKBONES, MODES, check_mode, get_backbone


def test_default_grid_is_resnet50_and_mobilenet():
    assert DEFAULT_BACKBONES == ("resnet_v2_50", "mobilenet_v2_035_128")
    resnet, mobilenet = (get_backbone(name) for name in DEFAULT_BACKBONES)
    assert (resnet.image_size, resnet.feature_dim) == (224, 2048)
    assert (mobilenet.image_size, mobilenet.feature_dim) == (128, 1280)
    assert resnet.handle == "https://tfhub.dev/google/imagenet/resnet_v2_50/feature_vector/5"
    assert mobilenet.handle == "https://tfhub.dev/google/imagenet/mobilenet_v2_035_128/feature_vector/5"


def test_registry_has_more_of_the_family_with_unique_names():
    names = [b.name for b in BACKBONES]
    assert len(names) == len(set(names)) >= 5
    for backbone in BACKBONES:
        assert backbone.handle.startswith("https://tfhub.dev/") and "feature_vector" in backbone.handle
        assert backbone.image_size > 0 and backbone.feature_dim > 0


@pytest.mark.parametrize(
    "name, hint", [("resnet50", "resnet_v2_50"), ("mobilenet_v2_35_128", "mobilenet_v2_035_128"), ("xyz", None)]
)
def test_unknown_backbone_names_the_closest(name, hint):
    with pytest.raises(UsageError) as caught:
        get_backbone(name)
    message = str(caught.value)
    assert f"unknown backbone '{name}'" in message and "\n" not in message
    assert (f"did you mean '{hint}'" in message) if hint else ("did you mean" not in message)


def test_modes():
    assert MODES == ("transfer", "last_block", "last_stage", "finetune")  # shallowest first: the report's order
    assert check_mode("finetune") == "finetune"
    with pytest.raises(UsageError, match="did you mean 'transfer'"):
        check_mode("transfr")

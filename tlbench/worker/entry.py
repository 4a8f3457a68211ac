"""What the driver runs in a fresh process, by name, through
`tlbench.isolated`: JSON in, JSON out. Only these functions (and
`trial.run_trial`, which Ray runs) are called from the driver's side.
"""

from __future__ import annotations

from dataclasses import asdict

from tlbench.errors import UsageError, described
from tlbench.registry import get_backbone


def prepare_backbones(names: list, policy: str, overrides: dict, batch_norm_momentum: float) -> dict:
    """Once per run, before any trial: each backbone's weights source (which
    may download from TF Hub or export a stand-in, so that the trials find it
    cached) and its architecture's FLOPs per image (to order the grid).
    {"sources": {name: ModuleSource as a dict}, "forward_flops": {name: int}}."""
    from tlbench.worker import costs, weights

    sources, flops = {}, {}
    for name in names:
        backbone = get_backbone(name)
        try:
            source = weights.choose_source(backbone, policy, overrides.get(name), batch_norm_momentum)
            if source.kind != "standin":  # tlbench's own exports are feature vectors by construction
                weights.check_feature_vector(weights.materialize(source, backbone), backbone)
            flops[name] = costs.backbone_flops(name)
        except UsageError:
            raise
        except Exception as error:  # noqa: BLE001 - e.g. a full disk while exporting a stand-in
            raise UsageError(f"preparing weights for {name} failed: {described(error, 300)}") from None
        sources[name] = asdict(source)
    return {"sources": sources, "forward_flops": flops}


def prefetch(names: list, overrides: dict) -> list:
    """Fill TFHUB_CACHE_DIR on this machine: [[name, path, what happened]]."""
    from tlbench.worker import weights

    done = []
    for name in names:
        # The error is all the command prints: it says which were installed before it.
        before = f" ({', '.join(n for n, *_ in done)} prefetched before it)" if done else ""
        try:
            done.append([name, *weights.prefetch(get_backbone(name), overrides.get(name))])
        except UsageError as error:
            raise UsageError(f"{error}{before}") from None
        except Exception as error:  # noqa: BLE001 - e.g. a full disk while copying
            raise UsageError(f"prefetching {name} failed: {described(error, 300)}{before}") from None
    return done


def backbone_flops(names: list) -> dict:
    """{name: forward FLOPs per image} of the backbones' architectures."""
    from tlbench.worker import costs

    return {name: costs.backbone_flops(name) for name in names}

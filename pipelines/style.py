"""The style pipeline: ingest -> validate -> sample -> each style family -> its gate, and the
Gatys search (both backbones, each best registered as artflow-gatys-settings) beside them.

A new style step is one more family (artflow.families, kind "style"): it is trained and gated
like the others. `families_only` (comma-separated family names, and `gatys_search`; "" = all)
trains only those: the quality trigger (artflow.monitor.trigger.trigger_style_retrain)
retrains the degraded model's families alone.
"""

from kfp import dsl

from artflow import families
from artflow.config import Settings
from components.train import gatys_search_op
from pipelines.steps import Common, data_steps, train_and_gate


def build(settings: Settings, local: bool = False) -> dsl.base_component.BaseComponent:
    @dsl.pipeline(name="artflow-style", description="Train the style models; gate each.")
    def style_pipeline(
        source: str,
        source_key: str = "",
        profile: str = "",
        mlflow_uri: str = "",
        families_only: str = "",
    ):
        common = Common(settings, local, profile, mlflow_uri)
        data, splits = data_steps(common, source, source_key)
        gates = {}  # a family declared `after` another trains once that one's gate is done
        for family in families.names("style"):
            first = gates.get(families.get(family).after)
            gates[family] = train_and_gate(
                common, family, data, splits, after=first, only=families_only
            )
        searched = gatys_search_op(data=data, splits=splits, only=families_only, **common.params())
        searched.set_display_name("gatys-search")
        common.add(searched, "gatys_search")

    return style_pipeline

"""Settings of a whole stack that is measured or attacked as wxstream alone.

The echo model answers with the user's text (replies cost nothing and are predictable),
every port is a free one, and WeChat's API is a simulator in the calling process on
`api_port`, so that the replies that miss the passive window still reach someone who
records them. Used by the end-to-end benchmark and the chaos suite.
"""

from __future__ import annotations

from pathlib import Path

from app.settings import Settings
from bench.timing import clean_env

__all__ = ("echo_stack_settings",)


def echo_stack_settings(
    work: Path, accounts: Path, api_port: int, partitions: int | None = None, **overrides: object
) -> Settings:
    return Settings.from_env(
        clean_env(),
        data_dir=work / "data",
        accounts=accounts,
        model_name="echo",
        model_candidate=None,
        triton_load_models=None,
        ingress_port=0,
        web_port=0,
        wechat_api_url=f"http://127.0.0.1:{api_port}",
        partitions=partitions or Settings.partitions,
        **overrides,
    )

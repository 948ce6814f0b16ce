"""``predis-fl agent`` in deployment mode: the agent with its Flower SuperNode beside it.

With ``--superlink HOST:PORT`` the agent also starts ``flower-supernode`` as a supervised child
(:class:`~federation.client.agent.supernode.SuperNodeProcess`): TLS to the SuperLink trusting
``--root-certificates``, authenticated with ``--auth-key``, its node config naming the customer
(``PREDIS_AGENT_CUSTOMER_ID``) and the agent's state directory, so federated rounds train on the
agent's stored samples. SIGTERM or SIGINT stops both (the agent commits, the SuperNode gets
SIGTERM). If the SuperNode dies, the agent says so and keeps serving its cache node.

When the request source ends (a replayed trace), the agent keeps its SuperNode serving until it
is told to stop: a customer's node stays a federation member whether or not new requests
arrive, and its stored samples remain its training data. ``--exit-after-replay`` stops both when
the replay ends instead.
"""

from __future__ import annotations

import argparse
import sys
import threading
from typing import Any

from federation.cli.options import positive_int

#: Seconds between two checks of the SuperNode while the agent waits after its replay.
_POLL_SECONDS = 1.0


def add_deployment_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the deployment-mode options to ``predis-fl agent``."""
    group = parser.add_argument_group(
        "deployment (a Flower SuperNode beside the agent)",
        "With --superlink the agent starts flower-supernode as a child process: TLS to the "
        "SuperLink, authenticated with the customer's key, training on this agent's stored "
        "samples (raw samples never leave the machine). The customer id is the agent setting "
        "PREDIS_AGENT_CUSTOMER_ID. The SuperNode's log and files are in STATE_DIR/supernode/. "
        "After the replay the SuperNode keeps serving until SIGTERM or SIGINT.",
    )
    group.add_argument(
        "--superlink", default=None, metavar="HOST:PORT", help="SuperLink Fleet API address"
    )
    group.add_argument(
        "--root-certificates",
        default=None,
        metavar="CA.pem",
        help="CA certificate the SuperLink's TLS certificate must chain to (required)",
    )
    group.add_argument(
        "--auth-key",
        default=None,
        metavar="NODE.key",
        help="the customer's registered SuperNode private key, mode 0600 (required)",
    )
    group.add_argument(
        "--supernode-port",
        type=positive_int,
        default=None,
        metavar="PORT",
        help="local port of the SuperNode's Runtime API on 127.0.0.1 (9094; one per SuperNode)",
    )
    group.add_argument(
        "--train-samples",
        type=positive_int,
        default=None,
        metavar="N",
        help="most recent stored samples a federated round trains on (200000)",
    )
    group.add_argument(
        "--exit-after-replay",
        action="store_true",
        help="stop the SuperNode and exit when the replay ends (default: keep serving)",
    )


def supernode_options(args: argparse.Namespace, settings: Any) -> Any:
    """Return the :class:`SuperNodeOptions` of ``args`` (``None`` without ``--superlink``).

    Raises
    ------
    federation.client.agent.AgentConfigError
        If an option is missing or invalid (a key readable by others, a missing file).
    """
    from pathlib import Path

    from federation.client.agent import AgentConfigError
    from federation.client.agent.supernode import DEFAULT_RUNTIME_PORT, SuperNodeOptions

    deployment = ("root_certificates", "auth_key", "supernode_port", "train_samples")
    if args.superlink is None:
        given = [f"--{n.replace('_', '-')}" for n in deployment if getattr(args, n) is not None]
        if given or args.exit_after_replay:
            raise AgentConfigError(f"{', '.join(given) or '--exit-after-replay'} needs --superlink")
        return None
    missing = [f"--{n.replace('_', '-')}" for n in deployment[:2] if getattr(args, n) is None]
    if missing:
        raise AgentConfigError(f"--superlink needs {' and '.join(missing)}")
    options = SuperNodeOptions(
        superlink=args.superlink,
        root_certificates=Path(args.root_certificates),
        auth_key=Path(args.auth_key),
        customer_id=settings.customer_id,
        state_dir=Path(settings.state_dir),
        runtime_port=args.supernode_port or DEFAULT_RUNTIME_PORT,
        train_samples=args.train_samples,
    )
    options.check()
    return options


def say(message: str) -> None:
    """Write a status line of the agent's SuperNode to stderr."""
    sys.stderr.write(f"predis-fl agent: {message}\n")
    sys.stderr.flush()


def serve_after_replay(supernode: Any, stop: threading.Event) -> int:
    """Keep the SuperNode serving until ``stop`` is set; return the exit code.

    ``0`` when stopped by a signal; ``1`` when the SuperNode ended on its own (nothing is left
    to serve).
    """
    status = supernode.status()
    if not status.running:
        say(f"SuperNode is not running (exit code {status.returncode}); stopping")
        return 1
    say(f"replay finished; SuperNode (pid {status.pid}) keeps serving until SIGTERM/SIGINT")
    while not stop.wait(_POLL_SECONDS):
        status = supernode.status()
        if not status.running:
            say(f"SuperNode exited with code {status.returncode} (log {status.log}); stopping")
            return 1
    return 0

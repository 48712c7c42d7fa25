"""``python -m emulator --topology FILE [--port N] ...``: options in, one call of ``serve``."""

from __future__ import annotations

import argparse
import sys

from emulator.persistence import StateFileError
from emulator.server import serve
from evac.documents import InvalidDocument


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m emulator", description="Evac's Google Cloud emulator.")
    parser.add_argument("--topology", required=True, help="topology YAML the world is seeded from")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8480)
    parser.add_argument("--operation-delay", type=float, default=0.5, help="seconds until an operation is DONE")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds until a new instance is HEALTHY")
    parser.add_argument("--state-file", default=None, help="JSON file that keeps the world across restarts")
    parser.add_argument(
        "--wait-deadline", type=float, default=120.0, help="longest an operations.wait call blocks (Google: about 2 min)"
    )
    parser.add_argument("--dns-port", type=int, default=None, help="also answer DNS queries on this UDP port")
    args = parser.parse_args(argv)
    try:
        serve(
            args.topology,
            args.host,
            args.port,
            operation_delay=args.operation_delay,
            warmup=args.warmup,
            state_file=args.state_file,
            wait_deadline=args.wait_deadline,
            dns_port=args.dns_port,
        )
    except InvalidDocument as exc:
        sys.exit(f"emulator: cannot use the topology:\n{exc}")
    except StateFileError as exc:
        sys.exit(f"emulator: {exc}")


if __name__ == "__main__":
    main()

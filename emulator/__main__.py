"""``python -m emulator (--topology FILE | --generate N) [--port N] ...``: options in, one call of ``serve``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from emulator.generate import MAX_SERVICES, generate_topology, topology_yaml, validated
from emulator.persistence import StateFileError
from emulator.server import serve
from evac.documents import InvalidDocument
from evac.topology import Topology


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {number}")
    return number


def _services(value: str) -> int:
    number = int(value)
    if not 1 <= number <= MAX_SERVICES:
        raise argparse.ArgumentTypeError(f"must be 1 to {MAX_SERVICES} services, not {number}")
    return number


def _seconds(value: str) -> float:
    number = float(value)
    if not 0 <= number <= 60:
        raise argparse.ArgumentTypeError(f"must be 0 to 60 seconds, not {value}")
    return number


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m emulator", description="Evac's Google Cloud emulator.")
    world = parser.add_mutually_exclusive_group(required=True)
    world.add_argument("--topology", help="topology YAML the world is seeded from")
    world.add_argument("--generate", type=_services, metavar="N", help="serve a generated topology of N services")
    parser.add_argument("--generated-topology-out", default=None, help="with --generate: also write the topology YAML here")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8480)
    parser.add_argument("--operation-delay", type=float, default=0.5, help="seconds until an operation is DONE")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds until a new instance is HEALTHY")
    parser.add_argument("--state-file", default=None, help="JSON file that keeps the world across restarts")
    parser.add_argument(
        "--wait-deadline", type=float, default=120.0, help="longest an operations.wait call blocks (Google: about 2 min)"
    )
    parser.add_argument("--dns-port", type=int, default=None, help="also answer DNS queries on this UDP port")
    parser.add_argument("--write-quota-per-second", type=_positive, default=None, help="most writes accepted per second")
    parser.add_argument("--write-quota-per-minute", type=_positive, default=None, help="most writes accepted per minute")
    parser.add_argument("--call-latency", type=_seconds, default=0.0, help="seconds added before answering every API call")
    args = parser.parse_args(argv)
    if args.generated_topology_out is not None and args.generate is None:
        parser.error("--generated-topology-out needs --generate")
    topology: str | Topology = args.topology
    if args.generate is not None:
        document = generate_topology(args.generate)
        topology = validated(document)
        if args.generated_topology_out is not None:
            try:
                Path(args.generated_topology_out).write_text(topology_yaml(document))
            except OSError as exc:
                parser.error(f"--generated-topology-out {args.generated_topology_out}: cannot write there: {exc.strerror or exc}")
    try:
        serve(
            topology,
            args.host,
            args.port,
            operation_delay=args.operation_delay,
            warmup=args.warmup,
            state_file=args.state_file,
            wait_deadline=args.wait_deadline,
            dns_port=args.dns_port,
            write_quota_per_second=args.write_quota_per_second,
            write_quota_per_minute=args.write_quota_per_minute,
            call_latency=args.call_latency,
        )
    except InvalidDocument as exc:
        sys.exit(f"emulator: cannot use the topology:\n{exc}")
    except StateFileError as exc:
        sys.exit(f"emulator: {exc}")


if __name__ == "__main__":
    main()

"""Evac's Google Cloud emulator: the Compute Engine and Cloud DNS subset Evac uses.

``create_app(topology)`` builds the FastAPI app; ``serve(topology_path, host, port)`` runs
it; ``python -m emulator --topology FILE --port N`` does the same from a shell. The real
``google-cloud-compute`` and ``google-cloud-dns`` clients talk to it through an endpoint
override (see docs/emulator.md).
"""

"""KeneyApp sample service used by the keneyapp.deploy demo, lab and tests.

A tiny HTTP service (standard library only; psycopg 3 is imported lazily by the
database health check) that stands in for the KeneyApp backend, frontend and worker.
It exposes the health endpoints and the Prometheus metric contract the collection's
gates query, and can inject faults deterministically from its environment.

Run it with ``python -m keneyapp_sample``; see :mod:`keneyapp_sample.config` for
the environment variables and :mod:`keneyapp_sample.loadgen` for the bounded load
generator. Submodules are deliberately not imported here, so that
``python -m keneyapp_sample.loadgen`` does not import the server.
"""

__all__: list[str] = []

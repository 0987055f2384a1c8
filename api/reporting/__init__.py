"""Report building as a library: statistics sections, the clinical report and its PDF.

The route modules (stats, reports, charts, FHIR), the batch report jobs in ``cluster/`` and
the benchmarks in ``bench/`` import it; it holds no routes.
"""

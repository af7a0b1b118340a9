"""How fast the model trains, and why: the performance tools behind ``python -m deltalab bench``
(figures and how to re-measure them: docs/performance.md).

    bench.py       the step bench: train-step throughput of every path, one fresh process per path, and the
                   entry point of the other three (``bench --grid``, ``--profile``, ``--bound``)
    gridbench.py   ``bench --grid``: runs per hour of a mini-grid through the reference and the fast training path
    profiling.py   ``bench --profile``: where a train step's time goes, by part of the model
    gemmbound.py   ``bench --bound``: the dense projections' GEMMs alone against whole steps (how fast a step
                   could be)
    trainstep.py   what bench and gemmbound share: the bench model, its train step, timing, FLOP count, the
                   machine's matmul peak

Imports point down only: bench imports trainstep, and gridbench, profiling or gemmbound when one of them is
asked for; gemmbound imports trainstep; gridbench, profiling and trainstep import only the study's own modules
(``deltalab.train``, ``deltalab.model``, ...), which import nothing from here. This file imports none of them,
so ``python -m deltalab.perf.bench`` (how the step bench starts its worker processes) loads only what it uses.
"""

"""chainrule's benchmark suite against hand-written NumPy and the peers (benchmarks/run.py)."""

"""The load lab (see livehub.bench.cli)."""

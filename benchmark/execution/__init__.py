"""Execution: requests become idempotent work units (planner), run by an executor (local, slurm, shards), merged."""

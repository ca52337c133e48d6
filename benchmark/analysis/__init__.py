"""Per-case rows into summaries: statistics, the gate, the report."""

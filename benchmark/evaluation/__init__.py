"""The one inference path, metrics, scoring of a work unit, results files."""

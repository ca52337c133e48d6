"""cordbench leaderboard: a read-only Streamlit app over results files (``leaderboard/app.py``).

The table logic lives in :mod:`leaderboard.tables` (pandas/numpy only, testable without Streamlit).
Nothing in ``benchmark/`` imports this package.
"""

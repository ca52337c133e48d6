"""`python -m benchmark` runs the cordbench command line."""

from benchmark.cli import main

if __name__ == "__main__":
    main()

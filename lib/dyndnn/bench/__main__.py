"""``python -m dyndnn.bench``: every section of ``make bench`` (``dyndnn.bench.suite``)."""

from dyndnn.bench.suite import main

if __name__ == "__main__":
    main()

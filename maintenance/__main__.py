"""`python -m maintenance`: the `maint` program."""

from .cli.program import main

if __name__ == "__main__":
    main()

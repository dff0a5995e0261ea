"""`python -m app` is the same as the `wxstream` console script."""

from app.cli import main

raise SystemExit(main())

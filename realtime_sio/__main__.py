"""``python -m realtime_sio``: the same as the ``realtime-sio`` console script."""

from realtime_sio.cli import main

raise SystemExit(main())

"""``python -m keneyapp_sample``: run the sample service (configuration from the environment)."""

from keneyapp_sample.server import main

raise SystemExit(main())

import sys

from ssd.base.priority import lower_from_environment

lower_from_environment()   # an app-launched job: before MXNet or any thread exists (ssd/base/priority.py)

from ssd.cli.main import main  # noqa: E402

sys.exit(main())

import sys

from ssd.cli.main import main

sys.exit(main())

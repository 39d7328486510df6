import sys

from elk_dse.cli import main

sys.exit(main())

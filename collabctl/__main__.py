import sys

from collabctl.cli import main

sys.exit(main())

import sys

from rtmag.cli import main

sys.exit(main())

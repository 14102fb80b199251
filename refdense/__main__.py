import sys

from refdense.cli import main

sys.exit(main())

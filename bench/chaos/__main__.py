import sys

from bench.chaos import main

sys.exit(main())

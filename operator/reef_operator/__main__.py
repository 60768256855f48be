import sys

from reef_operator.cli.main import main

sys.exit(main())

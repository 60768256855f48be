import sys

from reef_operator.testing.versim.server import main

sys.exit(main())

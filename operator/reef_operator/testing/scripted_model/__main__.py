import sys

from reef_operator.testing.scripted_model.server import main

sys.exit(main())

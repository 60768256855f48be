import sys

from reef_devkit.versim.server import main

sys.exit(main())

import sys

from reef_devkit.scripted_model.server import main

sys.exit(main())

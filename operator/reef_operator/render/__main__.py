import sys

from reef_operator.render.files import main

sys.exit(main())

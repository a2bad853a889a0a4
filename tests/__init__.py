"""The project's tests; REPO is the checkout they test, wherever a test file sits."""

import os

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

"""`python -m sfn_gateway_client` is the `sfn-gateway` command."""
import sys

from sfn_gateway_client.cli import main

sys.exit(main())

"""Partners: usage plans and API keys (USAGE_PLANS), and which plan a request's key belongs to."""

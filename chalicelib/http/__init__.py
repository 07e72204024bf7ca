"""The HTTP edge of the API: request inputs, responses, errors as HTTP, CORS, the per-request middleware."""

"""Step Functions: the allow-list, the gateway service over the client, retries, the time budget."""

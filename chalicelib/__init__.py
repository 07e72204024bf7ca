"""sfn-gateway's logic: configuration, allow-list, Step Functions calls, validation, errors."""

"""The VideoSDK-compatible encoder-job HTTP API: app, routes, errors, auth, the job service, Prefect runs."""

"""Uploads announced as Prefect events: the event shape, the S3 notification receiver, the polling sensor."""

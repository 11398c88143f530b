"""Where sources, outputs and job documents are kept: the storage protocol, local and S3, job documents."""

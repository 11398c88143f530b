"""Content keys of encrypted ladders: made, sealed at rest and looked up apart from everything published."""

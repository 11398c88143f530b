"""The local stack behind `vodflow up`, `status` and `down`: processes, their state file, the client side."""

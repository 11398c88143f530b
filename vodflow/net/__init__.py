"""The network edge: the address guard, wall-clock deadlines, the retry policy, webhook delivery, TLS."""

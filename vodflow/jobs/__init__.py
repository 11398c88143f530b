"""The job model and its planning: spec, document, ladder, plan, limits, key layout, sources. No I/O."""

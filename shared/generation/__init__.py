"""Generation: context, model call, deltas, tools, final save."""

"""One module per experiment: each defines SPEC and run(ctx, params)."""

"""One module per client framework; each defines `Client` (see `common.BaseClient`)."""

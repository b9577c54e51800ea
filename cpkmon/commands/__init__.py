"""One module per CLI command; :mod:`cpkmon.cli` registers them."""

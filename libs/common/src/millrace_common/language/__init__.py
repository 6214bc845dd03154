"""The workflow language: definitions (node configs, the graph, validation), templates and
conditions. Imports the contracts only, and no I/O library."""

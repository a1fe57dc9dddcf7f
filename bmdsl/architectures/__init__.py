"""Built-in architectures, each an ordinary .bm file spliced in by `architecture NAME`."""

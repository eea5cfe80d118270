"""Caption datasets: reading annotation files and caching encoder features."""

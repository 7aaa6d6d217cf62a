"""What the web server and the workers both import: settings, records, keys, storage."""

"""The operations console: pages for the people who work the exception queue, the stock and
the audit log, served by the HTTP listener under /console/ (docs/console.md)."""

"""The data services: the libraries over HTTP, scoped by key and area, audited."""

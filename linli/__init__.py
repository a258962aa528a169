"""Linli (邻里): the smart-community data platform's shared core — settings, standards, the CLI."""

"""Tools for the project's developers: the layering check."""

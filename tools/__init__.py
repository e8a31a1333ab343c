"""Maintainer and instructor tools of the book (not imported by labs)."""

"""Vocabulary and pure rules of payments. Imports nothing else from the project."""

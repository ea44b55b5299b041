# Placeholder implementation for the golden fixtures.

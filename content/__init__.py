"""Content: block types, placements, variants and their revisions; sandboxed rendering."""

"""Model segments' Django side (issue #16): attribute analysis runs, feature matrices read from
the database in bounded chunks, model files. The maths is in segments.engine (no Django)."""

"""Data files bundled with chainrule (see README.md here for sources and licences)."""

"""data_prep pipeline configs."""

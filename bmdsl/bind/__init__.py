"""Layer 6, Derivation + data -> BoundModel: validated data, data files, built-in data,
and the numeric maps both backends lower from."""

"""The bmdsl grammar (bmdsl.lark), shipped inside the package as `bmdsl.grammar`."""

"""Layer 2, text -> AST: reading model text, the Lark parser and Transformer, the syntax
tree, and binding `name(arg, key = value)` calls to parameter lists."""

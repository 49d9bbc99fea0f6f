; Python. Captures read by indexer/extract.py:
;   @definition.<kind> the defining node, @name its name, @doc its docstring;
;   @import.source the module, @import.name an imported name, @import.alias its local name,
;   @import.wildcard `*`; @reference a name used, @reference.member a name after a dot.

(class_definition
  name: (identifier) @name
  body: (block . (expression_statement (string) @doc)?)) @definition.class

(function_definition
  name: (identifier) @name
  body: (block . (expression_statement (string) @doc)?)) @definition.function

(module
  (expression_statement (assignment left: (identifier) @name)) @definition.variable)

(class_definition
  body: (block
    (expression_statement (assignment left: (identifier) @name)) @definition.field))

(import_statement name: (dotted_name) @import.source)
(import_statement
  name: (aliased_import name: (dotted_name) @import.source alias: (identifier) @import.alias))
(import_from_statement module_name: (_) @import.source name: (dotted_name) @import.name)
(import_from_statement
  module_name: (_) @import.source
  name: (aliased_import name: (dotted_name) @import.name alias: (identifier) @import.alias))
(import_from_statement module_name: (_) @import.source (wildcard_import) @import.wildcard)

(attribute attribute: (identifier) @reference.member)
(identifier) @reference

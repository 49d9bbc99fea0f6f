; Rust. Captures: see python.scm; an `impl` block is a container only (its methods belong to
; the type it names) and is not itself a symbol.

(struct_item name: (type_identifier) @name) @definition.struct
(union_item name: (type_identifier) @name) @definition.struct
(enum_item name: (type_identifier) @name) @definition.enum
(trait_item name: (type_identifier) @name) @definition.trait
(type_item name: (type_identifier) @name) @definition.type
(impl_item type: [(type_identifier) @name (generic_type type: (type_identifier) @name)])
  @definition.impl
(mod_item name: (identifier) @name body: (_)) @definition.module
(function_item name: (identifier) @name) @definition.function
(function_signature_item name: (identifier) @name) @definition.function
(const_item name: (identifier) @name) @definition.constant
(static_item name: (identifier) @name) @definition.variable
(macro_definition name: (identifier) @name) @definition.macro
(field_declaration name: (field_identifier) @name) @definition.field
(enum_variant name: (identifier) @name) @definition.field

(use_declaration
  argument: (scoped_identifier path: (_) @import.source name: (identifier) @import.name))
(use_declaration
  argument: (use_as_clause
    path: (scoped_identifier path: (_) @import.source name: (identifier) @import.name)
    alias: (identifier) @import.alias))
(use_declaration
  argument: (scoped_use_list
    path: (_) @import.source
    list: (use_list (identifier) @import.name)))
(use_declaration
  argument: (scoped_use_list
    path: (_) @import.source
    list: (use_list (use_as_clause path: (identifier) @import.name alias: (identifier) @import.alias))))
(use_declaration
  argument: (scoped_use_list path: (_) @import.source list: (use_list (self) @import.wildcard)))
(use_declaration argument: (use_wildcard (_) @import.source) @import.wildcard)
(mod_item name: (identifier) @import.source !body)

(field_expression field: (field_identifier) @reference.member)
(scoped_identifier name: (identifier) @reference.member)
(identifier) @reference
(type_identifier) @reference

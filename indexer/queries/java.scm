; Java. Captures: see python.scm.

(class_declaration name: (identifier) @name) @definition.class
(interface_declaration name: (identifier) @name) @definition.interface
(enum_declaration name: (identifier) @name) @definition.enum
(record_declaration name: (identifier) @name) @definition.class
(annotation_type_declaration name: (identifier) @name) @definition.interface
(method_declaration name: (identifier) @name) @definition.method
(constructor_declaration name: (identifier) @name) @definition.method
(field_declaration declarator: (variable_declarator name: (identifier) @name)) @definition.field
(constant_declaration declarator: (variable_declarator name: (identifier) @name))
  @definition.constant
(enum_constant name: (identifier) @name) @definition.constant

(import_declaration
  (scoped_identifier scope: (_) @import.source name: (identifier) @import.name) .)
(import_declaration (scoped_identifier) @import.source (asterisk) @import.wildcard)

(field_access field: (identifier) @reference.member)
(method_invocation object: (_) name: (identifier) @reference.member)
(identifier) @reference
(type_identifier) @reference

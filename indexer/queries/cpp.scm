; C++. Captures: see python.scm; @container names the class of a method defined outside it
; (`int Basket::add(...) {...}`).

(function_definition
  declarator: (function_declarator declarator: (identifier) @name)) @definition.function
(function_definition
  declarator: (function_declarator
    declarator: (qualified_identifier scope: (_) @container name: (_) @name)))
  @definition.method
(function_definition
  declarator: (pointer_declarator
    declarator: (function_declarator declarator: (identifier) @name))) @definition.function
(function_definition
  declarator: (reference_declarator
    (function_declarator declarator: (identifier) @name))) @definition.function
(declaration declarator: (function_declarator declarator: (identifier) @name))
  @definition.function
(field_declaration declarator: (function_declarator declarator: (field_identifier) @name))
  @definition.method
(function_definition
  declarator: (function_declarator declarator: (field_identifier) @name)) @definition.method
(class_specifier name: (type_identifier) @name body: (field_declaration_list))
  @definition.class
(struct_specifier name: (type_identifier) @name body: (field_declaration_list))
  @definition.struct
(union_specifier name: (type_identifier) @name body: (field_declaration_list))
  @definition.struct
(enum_specifier name: (type_identifier) @name body: (enumerator_list)) @definition.enum
(namespace_definition name: (namespace_identifier) @name) @definition.namespace
(type_definition declarator: (type_identifier) @name) @definition.type
(alias_declaration name: (type_identifier) @name) @definition.type
(preproc_def name: (identifier) @name) @definition.macro
(preproc_function_def name: (identifier) @name) @definition.macro
(field_declaration declarator: (field_identifier) @name) @definition.field
(field_declaration declarator: (pointer_declarator declarator: (field_identifier) @name))
  @definition.field
(enumerator name: (identifier) @name) @definition.constant
(translation_unit
  (declaration declarator: (init_declarator declarator: (identifier) @name))
  @definition.variable)

(preproc_include path: (string_literal (string_content) @import.source))

(field_expression field: (field_identifier) @reference.member)
(qualified_identifier name: (identifier) @reference.member)
(identifier) @reference
(type_identifier) @reference

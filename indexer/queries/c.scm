; C. Captures: see python.scm. A declarator may wrap the name in pointers, so functions
; appear with and without a pointer_declarator around their function_declarator.

(function_definition
  declarator: (function_declarator declarator: (identifier) @name)) @definition.function
(function_definition
  declarator: (pointer_declarator
    declarator: (function_declarator declarator: (identifier) @name))) @definition.function
(translation_unit
  (declaration declarator: (function_declarator declarator: (identifier) @name))
  @definition.function)
(translation_unit
  (declaration
    declarator: (pointer_declarator
      declarator: (function_declarator declarator: (identifier) @name)))
  @definition.function)
(struct_specifier name: (type_identifier) @name body: (field_declaration_list))
  @definition.struct
(union_specifier name: (type_identifier) @name body: (field_declaration_list))
  @definition.struct
(enum_specifier name: (type_identifier) @name body: (enumerator_list)) @definition.enum
(type_definition declarator: (type_identifier) @name) @definition.type
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
(identifier) @reference
(type_identifier) @reference

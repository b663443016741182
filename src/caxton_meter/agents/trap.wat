;; An agent that faults (ABI v0, see echo.wat): the first byte of a message
;; chooses how.
;;   'o'  out-of-bounds load            -> trap "memory out of bounds"
;;   's'  unbounded recursion           -> trap "stack overflow"
;;   'd'  integer division by zero      -> trap "integer division by zero"
;;   'n'  returns -1                    -> agent error
;;   'e'  echoes the message            (no fault)
;;   anything else, or empty            -> `unreachable` -> trap "unreachable"
(module
  (memory (export "memory") 1)
  (func (export "cm_io") (result i32) (i32.const 0x1000))
  (func $recurse (param $depth i32) (result i32)
    (i32.add (call $recurse (i32.add (local.get $depth) (i32.const 1))) (i32.const 1)))
  (func (export "cm_handle") (param $ptr i32) (param $len i32) (result i32)
    (local $op i32)
    (if (i32.eqz (local.get $len)) (then unreachable))
    (local.set $op (i32.load8_u (local.get $ptr)))
    (if (i32.eq (local.get $op) (i32.const 0x6F))      ;; 'o'
      (then (return (i32.load (i32.const 0xFFFFFFF0)))))
    (if (i32.eq (local.get $op) (i32.const 0x73))      ;; 's'
      (then (return (call $recurse (i32.const 0)))))
    (if (i32.eq (local.get $op) (i32.const 0x64))      ;; 'd'
      (then (return (i32.div_u (local.get $len) (i32.sub (local.get $op) (i32.const 0x64))))))
    (if (i32.eq (local.get $op) (i32.const 0x6E))      ;; 'n'
      (then (return (i32.const -1))))
    (if (i32.eq (local.get $op) (i32.const 0x65))      ;; 'e'
      (then (return (local.get $len))))
    unreachable)
)

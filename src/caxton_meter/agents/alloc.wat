;; An agent that allocates memory (ABI v0, see echo.wat).  The message is a
;; page count (u32 little-endian): the agent grows its memory by that many
;; 64 KiB pages and writes to every 4 KiB of them, so that they are really
;; resident.  The reply is memory.grow's result (i32 little-endian): the page
;; count before, or -1 when the memory could not grow (the host's memory
;; limit).  A message shorter than 4 bytes is an agent error.
(module
  (memory (export "memory") 1)
  (func (export "cm_io") (result i32) (i32.const 0x1000))
  (func (export "cm_handle") (param $ptr i32) (param $len i32) (result i32)
    (local $pages i32) (local $old i32) (local $p i32) (local $end i32)
    (if (i32.lt_u (local.get $len) (i32.const 4)) (then (return (i32.const -1))))
    (local.set $pages (i32.load (local.get $ptr)))
    (local.set $old (memory.grow (local.get $pages)))
    (if (i32.ne (local.get $old) (i32.const -1))
      (then
        (local.set $p (i32.mul (local.get $old) (i32.const 65536)))
        (local.set $end (i32.mul (i32.add (local.get $old) (local.get $pages)) (i32.const 65536)))
        (block $done
          (loop $touch
            (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
            (i32.store8 (local.get $p) (i32.const 1))
            (local.set $p (i32.add (local.get $p) (i32.const 4096)))
            (br $touch)))))
    (i32.store (local.get $ptr) (local.get $old))
    (i32.const 4))
)

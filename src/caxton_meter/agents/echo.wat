;; caxton_meter WebAssembly agent ABI, version 0 -- the echo agent.
;;
;;   (export "memory")                       linear memory, at least one page
;;   cm_io() -> i32                          the base of the host-owned I/O area (48 KiB,
;;                                           0xC000 bytes), called once at spawn; the agent
;;                                           keeps its own data outside it
;;   cm_handle(ptr, len) -> i32              one message at [ptr, ptr + len) in the I/O area;
;;                                           the reply is written in place at ptr; the result
;;                                           is the reply's length, < 0 for an agent error
;;   cm_handle_batch(in, n, out, cap) -> i32 optional: n records [u32 le length][bytes] packed
;;                                           at `in`; one reply record per message, framed
;;                                           alike, at `out` (cap bytes); the result is the
;;                                           bytes written, -1 if they did not fit
;;   cm_set_param(i64)                       optional: the agent's parameter, set after spawn
;;   import cm.send(dst, ptr, len) -> i32    optional: send a message (< 0: refused)
;;
;; The reply to a message is the message.
(module
  (memory (export "memory") 1)
  (func (export "cm_io") (result i32) (i32.const 0x1000))
  (func (export "cm_handle") (param $ptr i32) (param $len i32) (result i32)
    (local.get $len))
  (func (export "cm_handle_batch") (param $in i32) (param $n i32) (param $out i32) (param $cap i32) (result i32)
    (local $i i32) (local $rec i32) (local $w i32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        ;; a record is its 4-byte length and its bytes: copied as one
        (local.set $rec (i32.add (i32.load (local.get $in)) (i32.const 4)))
        (if (i32.gt_u (i32.add (local.get $w) (local.get $rec)) (local.get $cap))
          (then (return (i32.const -1))))
        (memory.copy (i32.add (local.get $out) (local.get $w)) (local.get $in) (local.get $rec))
        (local.set $w (i32.add (local.get $w) (local.get $rec)))
        (local.set $in (i32.add (local.get $in) (local.get $rec)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (local.get $w))
)

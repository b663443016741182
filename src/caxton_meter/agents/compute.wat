;; The compute agent (ABI v0, see echo.wat): the native compute agent's work,
;; so that both reply the same.  The seed is 0x9E3779B97F4A7C15 shifted left
;; by 8 and or-ed with each of the message's first (up to) 8 bytes in turn;
;; then `units` rounds of xorshift64* from seed | 1.  The reply is the result,
;; 8 bytes little-endian.  `units` is set with cm_set_param (0 until then) and
;; lives in an exported mutable global, so that a checkpoint keeps it.
(module
  (memory (export "memory") 1)
  (global $units (export "cm_units") (mut i64) (i64.const 0))
  (func (export "cm_io") (result i32) (i32.const 0x1000))
  (func (export "cm_set_param") (param $units i64)
    (global.set $units (local.get $units)))

  (func $seed (param $p i32) (param $len i32) (result i64)
    (local $s i64) (local $end i32)
    (local.set $s (i64.const 0x9E3779B97F4A7C15))
    (if (i32.gt_u (local.get $len) (i32.const 8)) (then (local.set $len (i32.const 8))))
    (local.set $end (i32.add (local.get $p) (local.get $len)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $s (i64.or (i64.shl (local.get $s) (i64.const 8))
                              (i64.load8_u (local.get $p))))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (br $next)))
    (local.get $s))

  (func $work (param $x i64) (result i64)
    (local $i i64)
    (local.set $x (i64.or (local.get $x) (i64.const 1)))
    (block $done
      (loop $next
        (br_if $done (i64.ge_s (local.get $i) (global.get $units)))
        (local.set $x (i64.xor (local.get $x) (i64.shr_u (local.get $x) (i64.const 12))))
        (local.set $x (i64.xor (local.get $x) (i64.shl (local.get $x) (i64.const 25))))
        (local.set $x (i64.xor (local.get $x) (i64.shr_u (local.get $x) (i64.const 27))))
        (local.set $x (i64.mul (local.get $x) (i64.const 0x2545F4914F6CDD1D)))
        (local.set $i (i64.add (local.get $i) (i64.const 1)))
        (br $next)))
    (local.get $x))

  (func (export "cm_handle") (param $ptr i32) (param $len i32) (result i32)
    (i64.store (local.get $ptr) (call $work (call $seed (local.get $ptr) (local.get $len))))
    (i32.const 8))

  (func (export "cm_handle_batch") (param $in i32) (param $n i32) (param $out i32) (param $cap i32) (result i32)
    (local $i i32) (local $len i32) (local $w i32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $len (i32.load (local.get $in)))
        (if (i32.gt_u (i32.add (local.get $w) (i32.const 12)) (local.get $cap))
          (then (return (i32.const -1))))
        (i32.store (i32.add (local.get $out) (local.get $w)) (i32.const 8))
        (i64.store offset=4 (i32.add (local.get $out) (local.get $w))
                   (call $work (call $seed (i32.add (local.get $in) (i32.const 4)) (local.get $len))))
        (local.set $w (i32.add (local.get $w) (i32.const 12)))
        (local.set $in (i32.add (local.get $in) (i32.add (local.get $len) (i32.const 4))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (local.get $w))
)

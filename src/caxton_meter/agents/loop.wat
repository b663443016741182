;; An agent that never returns (ABI v0, see echo.wat): every message starts an
;; infinite loop, which only the host can stop -- by the epoch deadline
;; (trap "interrupt") or, when fuel is metered, by fuel (trap "out of fuel").
(module
  (memory (export "memory") 1)
  (func (export "cm_io") (result i32) (i32.const 0x1000))
  (func (export "cm_handle") (param $ptr i32) (param $len i32) (result i32)
    (loop $forever (br $forever))
    (i32.const 0))
)

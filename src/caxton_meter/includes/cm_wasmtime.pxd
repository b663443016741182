# Declarations of cm_wasmtime.h: the subset of the wasmtime 50 C API that the
# WebAssembly agents use (called through pointers filled by
# cm_wasmtime_load), the agents' C structures, and the epoch ticker.
from libc.stdint cimport int32_t, int64_t, uint8_t, uint32_t, uint64_t

cdef extern from "cm_wasmtime.h" nogil:
    ctypedef struct wasm_config_t:
        pass
    ctypedef struct wasm_engine_t:
        pass
    ctypedef struct wasm_trap_t:
        pass
    ctypedef struct wasm_functype_t:
        pass
    ctypedef struct wasm_globaltype_t:
        pass
    ctypedef struct wasm_memorytype_t:
        pass
    ctypedef struct wasm_externtype_t:
        pass
    ctypedef struct wasm_exporttype_t:
        pass
    ctypedef struct wasm_valtype_t:
        pass
    ctypedef struct wasmtime_error_t:
        pass
    ctypedef struct wasmtime_store_t:
        pass
    ctypedef struct wasmtime_context_t:
        pass
    ctypedef struct wasmtime_caller_t:
        pass
    ctypedef struct wasmtime_module_t:
        pass
    ctypedef struct wasmtime_linker_t:
        pass
    ctypedef struct wasmtime_instance_pre_t:
        pass

    ctypedef struct wasm_byte_vec_t:
        size_t size
        uint8_t *data
    ctypedef struct wasm_valtype_vec_t:
        size_t size
        wasm_valtype_t **data
    ctypedef struct wasm_exporttype_vec_t:
        size_t size
        wasm_exporttype_t **data
    ctypedef uint8_t wasmtime_trap_code_t
    ctypedef uint8_t wasm_valkind_t

    enum:
        CM_WASM_EXTERN_FUNC
        CM_WASM_EXTERN_GLOBAL
        CM_WASM_EXTERN_TABLE
        CM_WASM_EXTERN_MEMORY
        CM_WASM_I32
        CM_WASM_I64
        CM_WASM_F32
        CM_WASM_F64
        CM_WASM_VAR
        WASMTIME_TRAP_CODE_STACK_OVERFLOW
        WASMTIME_TRAP_CODE_MEMORY_OUT_OF_BOUNDS
        WASMTIME_TRAP_CODE_INTEGER_OVERFLOW
        WASMTIME_TRAP_CODE_INTEGER_DIVISION_BY_ZERO
        WASMTIME_TRAP_CODE_UNREACHABLE_CODE_REACHED
        WASMTIME_TRAP_CODE_INTERRUPT
        WASMTIME_TRAP_CODE_OUT_OF_FUEL
        CM_WASM_IO_BYTES
        CM_WASM_BATCH_HALF
        CM_WASM_TICK_NS

    ctypedef struct wasmtime_func_t:
        uint64_t store_id
    ctypedef struct wasmtime_memory_t:
        pass
    ctypedef struct wasmtime_global_t:
        uint64_t store_id
    ctypedef struct wasmtime_instance_t:
        uint64_t store_id
    ctypedef union wasmtime_extern_union_t:
        wasmtime_func_t func
        wasmtime_global_t glob "global"
        wasmtime_memory_t memory
    ctypedef struct wasmtime_extern_t:
        uint8_t kind
        wasmtime_extern_union_t of
    ctypedef union wasmtime_valunion_t:
        int32_t i32
        int64_t i64
        float f32
        double f64
    ctypedef struct wasmtime_val_t:
        uint8_t kind
        wasmtime_valunion_t of
    ctypedef union wasmtime_val_raw_t:
        int32_t i32
        int64_t i64
    ctypedef void (*cm_wasmtime_finalizer_t)(void *)
    ctypedef wasm_trap_t *(*wasmtime_func_unchecked_callback_t)(
        void *, wasmtime_caller_t *, wasmtime_val_raw_t *, size_t) noexcept nogil

    int cm_wasmtime_load(const char *path, char *err, size_t errlen)

    wasm_config_t *wasm_config_new()
    wasm_engine_t *wasm_engine_new_with_config(wasm_config_t *)
    void wasmtime_config_consume_fuel_set(wasm_config_t *, bint)
    void wasmtime_config_epoch_interruption_set(wasm_config_t *, bint)
    void wasmtime_config_max_wasm_stack_set(wasm_config_t *, size_t)
    void wasmtime_config_memory_reservation_set(wasm_config_t *, uint64_t)
    void wasmtime_config_memory_guard_size_set(wasm_config_t *, uint64_t)
    void wasmtime_config_memory_reservation_for_growth_set(wasm_config_t *, uint64_t)
    void wasmtime_config_memory_may_move_set(wasm_config_t *, bint)
    void wasmtime_config_memory_init_cow_set(wasm_config_t *, bint)
    void wasmtime_config_signals_based_traps_set(wasm_config_t *, bint)
    void wasmtime_engine_increment_epoch(wasm_engine_t *)
    wasmtime_store_t *wasmtime_store_new(wasm_engine_t *, void *, cm_wasmtime_finalizer_t)
    wasmtime_context_t *wasmtime_store_context(wasmtime_store_t *)
    void wasmtime_store_limiter(wasmtime_store_t *, int64_t memory_size, int64_t table_elements,
                                int64_t instances, int64_t tables, int64_t memories)
    void wasmtime_store_delete(wasmtime_store_t *)
    wasmtime_error_t *wasmtime_context_set_fuel(wasmtime_context_t *, uint64_t)
    void wasmtime_context_set_epoch_deadline(wasmtime_context_t *, uint64_t)
    void wasmtime_context_set_data(wasmtime_context_t *, void *)
    void *wasmtime_context_get_data(const wasmtime_context_t *)
    void wasmtime_error_message(const wasmtime_error_t *, wasm_byte_vec_t *)
    void wasmtime_error_delete(wasmtime_error_t *)
    void wasm_byte_vec_delete(wasm_byte_vec_t *)
    wasmtime_error_t *wasmtime_wat2wasm(const char *, size_t, wasm_byte_vec_t *)
    wasmtime_error_t *wasmtime_module_new(wasm_engine_t *, const uint8_t *, size_t, wasmtime_module_t **)
    void wasmtime_module_delete(wasmtime_module_t *)
    void wasmtime_module_exports(const wasmtime_module_t *, wasm_exporttype_vec_t *)
    const wasm_byte_vec_t *wasm_exporttype_name(const wasm_exporttype_t *)
    const wasm_externtype_t *wasm_exporttype_type(const wasm_exporttype_t *)
    void wasm_exporttype_vec_delete(wasm_exporttype_vec_t *)
    uint8_t wasm_externtype_kind(const wasm_externtype_t *)
    const wasm_functype_t *wasm_externtype_as_functype_const(const wasm_externtype_t *)
    const wasm_globaltype_t *wasm_externtype_as_globaltype_const(const wasm_externtype_t *)
    const wasm_memorytype_t *wasm_externtype_as_memorytype_const(const wasm_externtype_t *)
    const wasm_valtype_vec_t *wasm_functype_params(const wasm_functype_t *)
    const wasm_valtype_vec_t *wasm_functype_results(const wasm_functype_t *)
    uint8_t wasm_valtype_kind(const wasm_valtype_t *)
    uint8_t wasm_globaltype_mutability(const wasm_globaltype_t *)
    const wasm_valtype_t *wasm_globaltype_content(const wasm_globaltype_t *)
    bint wasmtime_memorytype_is64(const wasm_memorytype_t *)
    bint wasmtime_memorytype_isshared(const wasm_memorytype_t *)
    uint64_t wasmtime_memorytype_minimum(const wasm_memorytype_t *)
    wasmtime_linker_t *wasmtime_linker_new(wasm_engine_t *)
    void wasmtime_linker_delete(wasmtime_linker_t *)
    wasmtime_error_t *wasmtime_linker_define_func_unchecked(
        wasmtime_linker_t *, const char *, size_t, const char *, size_t, const wasm_functype_t *,
        wasmtime_func_unchecked_callback_t, void *, cm_wasmtime_finalizer_t)
    wasmtime_error_t *wasmtime_linker_instantiate_pre(const wasmtime_linker_t *, const wasmtime_module_t *,
                                                      wasmtime_instance_pre_t **)
    wasmtime_error_t *wasmtime_instance_pre_instantiate(const wasmtime_instance_pre_t *, wasmtime_context_t *,
                                                        wasmtime_instance_t *, wasm_trap_t **)
    void wasmtime_instance_pre_delete(wasmtime_instance_pre_t *)
    bint wasmtime_instance_export_get(wasmtime_context_t *, const wasmtime_instance_t *, const char *, size_t,
                                      wasmtime_extern_t *)
    uint8_t *wasmtime_memory_data(const wasmtime_context_t *, const wasmtime_memory_t *)
    size_t wasmtime_memory_data_size(const wasmtime_context_t *, const wasmtime_memory_t *)
    wasmtime_error_t *wasmtime_memory_grow(wasmtime_context_t *, const wasmtime_memory_t *, uint64_t, uint64_t *)
    void wasmtime_global_get(wasmtime_context_t *, const wasmtime_global_t *, wasmtime_val_t *)
    wasmtime_error_t *wasmtime_global_set(wasmtime_context_t *, const wasmtime_global_t *, const wasmtime_val_t *)
    wasmtime_error_t *wasmtime_func_call_unchecked(wasmtime_context_t *, const wasmtime_func_t *,
                                                   wasmtime_val_raw_t *, size_t, wasm_trap_t **)
    wasmtime_context_t *wasmtime_caller_context(wasmtime_caller_t *)
    wasm_valtype_t *wasm_valtype_new(uint8_t)
    void wasm_valtype_vec_new(wasm_valtype_vec_t *, size_t, wasm_valtype_t **)
    wasm_functype_t *wasm_functype_new(wasm_valtype_vec_t *, wasm_valtype_vec_t *)
    void wasm_functype_delete(wasm_functype_t *)
    wasm_trap_t *wasmtime_trap_new(const char *, size_t)
    void wasm_trap_delete(wasm_trap_t *)
    void wasm_trap_message(const wasm_trap_t *, wasm_byte_vec_t *)
    bint wasmtime_trap_code(const wasm_trap_t *, wasmtime_trap_code_t *)

    # --- the agents' structures (see cm_wasmtime.h)
    ctypedef int32_t (*cm_wasm_send_fn)(void *ctx, int32_t dst, const char *data, int64_t length) noexcept nogil

    ctypedef struct cm_wasm_module:
        int64_t refcnt
        wasm_engine_t *engine
        wasmtime_module_t *module
        wasmtime_linker_t *linker
        wasmtime_instance_pre_t *pre
        int64_t memory_limit
        uint64_t fuel
        uint64_t deadline_ticks
        int has_batch
        int has_set_param
        uint64_t fingerprint
        int32_t n_globals
        char **global_names

    ctypedef struct cm_wasm_instance:
        cm_wasm_module *module
        wasmtime_store_t *store
        wasmtime_context_t *ctx
        wasmtime_instance_t instance
        wasmtime_memory_t memory
        wasmtime_func_t f_handle
        wasmtime_func_t f_batch
        wasmtime_func_t f_set_param
        uint8_t *base
        uint32_t io
        int64_t in_use
        cm_wasm_send_fn send
        void *send_ctx

    # --- the epoch ticker
    int cm_wasm_ticker_add_engine(wasm_engine_t *engine)
    int cm_wasm_ticker_ensure()
    int cm_wasm_ticker_hold()
    void cm_wasm_ticker_release()
    bint cm_wasm_ticker_running()
    int64_t cm_wasm_ticker_ticks()
    int64_t cm_wasm_ticker_live()

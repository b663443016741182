/* cm_wasmtime.h -- the subset of the wasmtime 50 C API that the WebAssembly
 * agents (_wasm.pxi) use, resolved at run time from the _libwasmtime.so that
 * the `wasmtime` PyPI package ships (it ships no headers).
 *
 * Why at run time: the library has no SONAME, an rpath into site-packages
 * breaks with split or relocated installs, and auditwheel would copy 29 MB
 * into our wheel -- two copies of wasmtime (and of its signal handlers) in
 * one process when wasmtime-py is also used.  See docs/design-wasm-agents.md.
 *
 * Signatures and layouts are transcribed from wasmtime-py 50.0.1's generated
 * _bindings.py.  The layouts of the wasmtime_*_t value types change between
 * wasmtime majors: the Python side checks that the installed package is 50.x
 * before calling cm_wasmtime_load(), and the sizes are asserted below.
 *
 * Call sites use the real API names: each is #defined to a call through a
 * function pointer filled by cm_wasmtime_load() (an X-macro list keeps the
 * declaration, the table and the dlsym loop in one place).
 *
 * Also here, because they need threads: the epoch ticker, which advances the
 * epoch of every engine once a millisecond while agents exist, and the C
 * structures of a compiled module and of a spawned agent (declared in C so
 * that _core.pxd can embed them through cm_wasmtime.pxd).
 */
#ifndef CM_WASMTIME_H
#define CM_WASMTIME_H

#include <stdint.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "cm_atomic.h"

#if defined(_WIN32)
#include <windows.h>
#else
#include <dlfcn.h>
#include <pthread.h>
#include <time.h>
#endif

/* ---- opaque types ---- */
typedef struct wasm_config_t wasm_config_t;
typedef struct wasm_engine_t wasm_engine_t;
typedef struct wasm_trap_t wasm_trap_t;
typedef struct wasm_functype_t wasm_functype_t;
typedef struct wasm_globaltype_t wasm_globaltype_t;
typedef struct wasm_memorytype_t wasm_memorytype_t;
typedef struct wasm_externtype_t wasm_externtype_t;
typedef struct wasm_exporttype_t wasm_exporttype_t;
typedef struct wasm_importtype_t wasm_importtype_t;
typedef struct wasm_valtype_t wasm_valtype_t;
typedef struct wasmtime_error wasmtime_error_t;
typedef struct wasmtime_store wasmtime_store_t;
typedef struct wasmtime_context wasmtime_context_t;
typedef struct wasmtime_caller wasmtime_caller_t;
typedef struct wasmtime_module wasmtime_module_t;
typedef struct wasmtime_linker wasmtime_linker_t;
typedef struct wasmtime_instance_pre wasmtime_instance_pre_t;
typedef struct wasmtime_sharedmemory wasmtime_sharedmemory_t;

/* ---- value types (layouts of wasmtime 50) ---- */
typedef struct wasm_byte_vec_t { size_t size; uint8_t *data; } wasm_byte_vec_t;
typedef struct wasm_valtype_vec_t { size_t size; wasm_valtype_t **data; } wasm_valtype_vec_t;
typedef struct wasm_exporttype_vec_t { size_t size; wasm_exporttype_t **data; } wasm_exporttype_vec_t;
typedef struct wasm_importtype_vec_t { size_t size; wasm_importtype_t **data; } wasm_importtype_vec_t;
typedef uint8_t wasmtime_trap_code_t;
typedef uint8_t wasmtime_extern_kind_t;
typedef uint8_t wasmtime_valkind_t;
typedef uint8_t wasm_valkind_t;
typedef uint8_t wasm_externkind_t;
typedef uint8_t wasm_mutability_t;

/* enumerations (values of the C headers, not of wasmtime-py's Python enums) */
#define CM_WASM_EXTERN_FUNC 0      /* wasm_externkind_t and wasmtime_extern_kind_t */
#define CM_WASM_EXTERN_GLOBAL 1
#define CM_WASM_EXTERN_TABLE 2
#define CM_WASM_EXTERN_MEMORY 3
#define CM_WASM_I32 0              /* wasm_valkind_t and wasmtime_valkind_t */
#define CM_WASM_I64 1
#define CM_WASM_F32 2
#define CM_WASM_F64 3
#define CM_WASM_VAR 1              /* wasm_mutability_t */
/* wasmtime_trap_code_t values used (wasmtime 50's trap.h) */
#define WASMTIME_TRAP_CODE_STACK_OVERFLOW 0
#define WASMTIME_TRAP_CODE_MEMORY_OUT_OF_BOUNDS 1
#define WASMTIME_TRAP_CODE_INTEGER_OVERFLOW 6
#define WASMTIME_TRAP_CODE_INTEGER_DIVISION_BY_ZERO 7
#define WASMTIME_TRAP_CODE_UNREACHABLE_CODE_REACHED 9
#define WASMTIME_TRAP_CODE_INTERRUPT 10
#define WASMTIME_TRAP_CODE_OUT_OF_FUEL 11

typedef struct wasmtime_func { uint64_t store_id; void *__private; } wasmtime_func_t;
typedef struct wasmtime_memory {
  struct { uint64_t store_id; uint32_t __private1; } __anon;
  uint32_t __private2;
} wasmtime_memory_t;
typedef struct wasmtime_table {
  struct { uint64_t store_id; uint32_t __private1; } __anon;
  uint32_t __private2;
} wasmtime_table_t;
typedef struct wasmtime_tag {
  struct { uint64_t store_id; uint32_t __private1; } __anon;
  uint32_t __private2;
} wasmtime_tag_t;
typedef struct wasmtime_global {
  uint64_t store_id; uint32_t __private1; uint32_t __private2; uint32_t __private3;
} wasmtime_global_t;
typedef struct wasmtime_instance { uint64_t store_id; size_t __private; } wasmtime_instance_t;

typedef union wasmtime_extern_union {
  wasmtime_func_t func; wasmtime_global_t global; wasmtime_table_t table;
  wasmtime_memory_t memory; wasmtime_sharedmemory_t *sharedmemory; wasmtime_tag_t tag;
} wasmtime_extern_union_t;
typedef struct wasmtime_extern { wasmtime_extern_kind_t kind; wasmtime_extern_union_t of; } wasmtime_extern_t;

typedef struct wasmtime_gcref { uint64_t store_id; uint32_t __private1; uint32_t __private2; void *__private3; } wasmtime_gcref_t;
typedef union wasmtime_valunion {
  int32_t i32; int64_t i64; float f32; double f64;
  wasmtime_gcref_t anyref; wasmtime_gcref_t externref; wasmtime_gcref_t exnref;
  wasmtime_func_t funcref; uint8_t v128[16];
} wasmtime_valunion_t;
typedef struct wasmtime_val { wasmtime_valkind_t kind; wasmtime_valunion_t of; } wasmtime_val_t;
typedef union wasmtime_val_raw {
  int32_t i32; int64_t i64; float f32; double f64; uint8_t v128[16];
  uint32_t anyref; uint32_t externref; uint32_t exnref; void *funcref;
} wasmtime_val_raw_t;

#if defined(_MSC_VER) && !defined(__clang__)
/* older MSVC C modes lack _Static_assert: a negative array size fails alike */
#define CM_STATIC_ASSERT_JOIN(a, b) a##b
#define CM_STATIC_ASSERT_LINE(c, line) typedef char CM_STATIC_ASSERT_JOIN(cm_static_assert_, line)[(c) ? 1 : -1]
#define CM_STATIC_ASSERT(c, m) CM_STATIC_ASSERT_LINE(c, __LINE__)
#else
#define CM_STATIC_ASSERT(c, m) _Static_assert(c, m)
#endif
/* The sizes of wasmtime 50 (the values that changed between majors). */
CM_STATIC_ASSERT(sizeof(wasmtime_func_t) == 16, "wasmtime_func_t is 16 bytes in wasmtime 50");
CM_STATIC_ASSERT(sizeof(wasmtime_memory_t) == 24, "wasmtime_memory_t is 24 bytes in wasmtime 50");
CM_STATIC_ASSERT(sizeof(wasmtime_global_t) == 24, "wasmtime_global_t is 24 bytes in wasmtime 50");
CM_STATIC_ASSERT(sizeof(wasmtime_extern_t) == 32, "wasmtime_extern_t is 32 bytes in wasmtime 50");
CM_STATIC_ASSERT(sizeof(wasmtime_instance_t) == 16, "wasmtime_instance_t is 16 bytes in wasmtime 50");
CM_STATIC_ASSERT(sizeof(wasmtime_val_t) == 32, "wasmtime_val_t is 32 bytes in wasmtime 50");
CM_STATIC_ASSERT(sizeof(wasmtime_val_raw_t) == 16, "wasmtime_val_raw_t is 16 bytes in wasmtime 50");

typedef void (*cm_wasmtime_finalizer_t)(void *);
typedef wasm_trap_t *(*wasmtime_func_unchecked_callback_t)(void *env, wasmtime_caller_t *caller,
    wasmtime_val_raw_t *args_and_results, size_t num_args_and_results);

/* ---- the functions: X(return type, name, (parameters)) ---- */
#define CM_WASMTIME_FUNCS(X) \
  X(wasm_config_t *, wasm_config_new, (void)) \
  X(wasm_engine_t *, wasm_engine_new_with_config, (wasm_config_t *)) \
  X(void, wasmtime_config_consume_fuel_set, (wasm_config_t *, bool)) \
  X(void, wasmtime_config_epoch_interruption_set, (wasm_config_t *, bool)) \
  X(void, wasmtime_config_max_wasm_stack_set, (wasm_config_t *, size_t)) \
  X(void, wasmtime_config_memory_reservation_set, (wasm_config_t *, uint64_t)) \
  X(void, wasmtime_config_memory_guard_size_set, (wasm_config_t *, uint64_t)) \
  X(void, wasmtime_config_memory_reservation_for_growth_set, (wasm_config_t *, uint64_t)) \
  X(void, wasmtime_config_memory_may_move_set, (wasm_config_t *, bool)) \
  X(void, wasmtime_config_memory_init_cow_set, (wasm_config_t *, bool)) \
  X(void, wasmtime_config_signals_based_traps_set, (wasm_config_t *, bool)) \
  X(void, wasmtime_engine_increment_epoch, (wasm_engine_t *)) \
  X(wasmtime_store_t *, wasmtime_store_new, (wasm_engine_t *, void *, cm_wasmtime_finalizer_t)) \
  X(wasmtime_context_t *, wasmtime_store_context, (wasmtime_store_t *)) \
  X(void, wasmtime_store_limiter, (wasmtime_store_t *, int64_t memory_size, int64_t table_elements, int64_t instances, int64_t tables, int64_t memories)) \
  X(void, wasmtime_store_delete, (wasmtime_store_t *)) \
  X(wasmtime_error_t *, wasmtime_context_set_fuel, (wasmtime_context_t *, uint64_t)) \
  X(void, wasmtime_context_set_epoch_deadline, (wasmtime_context_t *, uint64_t ticks_beyond_current)) \
  X(void, wasmtime_context_set_data, (wasmtime_context_t *, void *)) \
  X(void *, wasmtime_context_get_data, (const wasmtime_context_t *)) \
  X(void, wasmtime_error_message, (const wasmtime_error_t *, wasm_byte_vec_t *)) \
  X(void, wasmtime_error_delete, (wasmtime_error_t *)) \
  X(void, wasm_byte_vec_delete, (wasm_byte_vec_t *)) \
  X(wasmtime_error_t *, wasmtime_wat2wasm, (const char *, size_t, wasm_byte_vec_t *)) \
  X(wasmtime_error_t *, wasmtime_module_new, (wasm_engine_t *, const uint8_t *, size_t, wasmtime_module_t **)) \
  X(void, wasmtime_module_delete, (wasmtime_module_t *)) \
  X(void, wasmtime_module_exports, (const wasmtime_module_t *, wasm_exporttype_vec_t *)) \
  X(const wasm_byte_vec_t *, wasm_exporttype_name, (const wasm_exporttype_t *)) \
  X(const wasm_externtype_t *, wasm_exporttype_type, (const wasm_exporttype_t *)) \
  X(void, wasm_exporttype_vec_delete, (wasm_exporttype_vec_t *)) \
  X(wasm_externkind_t, wasm_externtype_kind, (const wasm_externtype_t *)) \
  X(const wasm_functype_t *, wasm_externtype_as_functype_const, (const wasm_externtype_t *)) \
  X(const wasm_globaltype_t *, wasm_externtype_as_globaltype_const, (const wasm_externtype_t *)) \
  X(const wasm_memorytype_t *, wasm_externtype_as_memorytype_const, (const wasm_externtype_t *)) \
  X(const wasm_valtype_vec_t *, wasm_functype_params, (const wasm_functype_t *)) \
  X(const wasm_valtype_vec_t *, wasm_functype_results, (const wasm_functype_t *)) \
  X(wasm_valkind_t, wasm_valtype_kind, (const wasm_valtype_t *)) \
  X(wasm_mutability_t, wasm_globaltype_mutability, (const wasm_globaltype_t *)) \
  X(const wasm_valtype_t *, wasm_globaltype_content, (const wasm_globaltype_t *)) \
  X(bool, wasmtime_memorytype_is64, (const wasm_memorytype_t *)) \
  X(bool, wasmtime_memorytype_isshared, (const wasm_memorytype_t *)) \
  X(uint64_t, wasmtime_memorytype_minimum, (const wasm_memorytype_t *)) \
  X(wasmtime_linker_t *, wasmtime_linker_new, (wasm_engine_t *)) \
  X(void, wasmtime_linker_delete, (wasmtime_linker_t *)) \
  X(wasmtime_error_t *, wasmtime_linker_define_func_unchecked, (wasmtime_linker_t *, const char *module, size_t, const char *name, size_t, const wasm_functype_t *, wasmtime_func_unchecked_callback_t, void *, cm_wasmtime_finalizer_t)) \
  X(wasmtime_error_t *, wasmtime_linker_instantiate_pre, (const wasmtime_linker_t *, const wasmtime_module_t *, wasmtime_instance_pre_t **)) \
  X(wasmtime_error_t *, wasmtime_instance_pre_instantiate, (const wasmtime_instance_pre_t *, wasmtime_context_t *, wasmtime_instance_t *, wasm_trap_t **)) \
  X(void, wasmtime_instance_pre_delete, (wasmtime_instance_pre_t *)) \
  X(bool, wasmtime_instance_export_get, (wasmtime_context_t *, const wasmtime_instance_t *, const char *, size_t, wasmtime_extern_t *)) \
  X(uint8_t *, wasmtime_memory_data, (const wasmtime_context_t *, const wasmtime_memory_t *)) \
  X(size_t, wasmtime_memory_data_size, (const wasmtime_context_t *, const wasmtime_memory_t *)) \
  X(wasmtime_error_t *, wasmtime_memory_grow, (wasmtime_context_t *, const wasmtime_memory_t *, uint64_t, uint64_t *)) \
  X(void, wasmtime_global_get, (wasmtime_context_t *, const wasmtime_global_t *, wasmtime_val_t *)) \
  X(wasmtime_error_t *, wasmtime_global_set, (wasmtime_context_t *, const wasmtime_global_t *, const wasmtime_val_t *)) \
  X(wasmtime_error_t *, wasmtime_func_call_unchecked, (wasmtime_context_t *, const wasmtime_func_t *, wasmtime_val_raw_t *, size_t, wasm_trap_t **)) \
  X(wasmtime_context_t *, wasmtime_caller_context, (wasmtime_caller_t *)) \
  X(wasm_valtype_t *, wasm_valtype_new, (wasm_valkind_t)) \
  X(void, wasm_valtype_vec_new, (wasm_valtype_vec_t *out, size_t, wasm_valtype_t *const data[])) \
  X(wasm_functype_t *, wasm_functype_new, (wasm_valtype_vec_t *params, wasm_valtype_vec_t *results)) \
  X(void, wasm_functype_delete, (wasm_functype_t *)) \
  X(wasm_trap_t *, wasmtime_trap_new, (const char *msg, size_t len)) \
  X(void, wasm_trap_delete, (wasm_trap_t *)) \
  X(void, wasm_trap_message, (const wasm_trap_t *, wasm_byte_vec_t *)) \
  X(bool, wasmtime_trap_code, (const wasm_trap_t *, wasmtime_trap_code_t *))

typedef struct cm_wasmtime_api {
#define CM_WT_FIELD(ret, name, params) ret (*p_##name) params;
  CM_WASMTIME_FUNCS(CM_WT_FIELD)
#undef CM_WT_FIELD
} cm_wasmtime_api_t;

/* One table for the one extension module that includes this header. */
static cm_wasmtime_api_t cm_wasmtime_api;
static void *cm_wasmtime_handle = NULL;

/* Loads the library at `path` and resolves every function.  Returns 0, or
 * -1 with a message in err.  Idempotent; called with the GIL held (the
 * Python side serialises it), so no lock here. */
static int cm_wasmtime_load(const char *path, char *err, size_t errlen) {
  void *h;
  if (cm_wasmtime_handle) return 0;
#if defined(_WIN32)
  h = (void *)LoadLibraryA(path);
  if (!h) { snprintf(err, errlen, "LoadLibrary(%s) failed: error %lu", path, (unsigned long)GetLastError()); return -1; }
#define CM_WT_DLSYM(h, name) ((void *)GetProcAddress((HMODULE)(h), name))
#define CM_WT_DLCLOSE(h) FreeLibrary((HMODULE)(h))
#define CM_WT_DLERROR() "not exported"
#else
  /* RTLD_LOCAL: our lookups never interpose on anything; if wasmtime-py
   * already loaded the same file, dlopen returns its handle (one copy). */
  h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!h) { snprintf(err, errlen, "dlopen failed: %s", dlerror()); return -1; }
#define CM_WT_DLSYM(h, name) dlsym(h, name)
#define CM_WT_DLCLOSE(h) dlclose(h)
#define CM_WT_DLERROR() dlerror()
#endif
#define CM_WT_SYM(ret, name, params) \
  *(void **)(&cm_wasmtime_api.p_##name) = CM_WT_DLSYM(h, #name); \
  if (!cm_wasmtime_api.p_##name) { \
    snprintf(err, errlen, "%s does not export %s (%s): not the wasmtime 50 C API", path, #name, CM_WT_DLERROR()); \
    CM_WT_DLCLOSE(h); memset(&cm_wasmtime_api, 0, sizeof cm_wasmtime_api); return -1; }
  CM_WASMTIME_FUNCS(CM_WT_SYM)
#undef CM_WT_SYM
#undef CM_WT_DLSYM
#undef CM_WT_DLCLOSE
#undef CM_WT_DLERROR
  cm_wasmtime_handle = h;
  return 0;
}

/* ---- call sites use the real names ---- */
#define wasm_config_new (cm_wasmtime_api.p_wasm_config_new)
#define wasm_engine_new_with_config (cm_wasmtime_api.p_wasm_engine_new_with_config)
#define wasmtime_config_consume_fuel_set (cm_wasmtime_api.p_wasmtime_config_consume_fuel_set)
#define wasmtime_config_epoch_interruption_set (cm_wasmtime_api.p_wasmtime_config_epoch_interruption_set)
#define wasmtime_config_max_wasm_stack_set (cm_wasmtime_api.p_wasmtime_config_max_wasm_stack_set)
#define wasmtime_config_memory_reservation_set (cm_wasmtime_api.p_wasmtime_config_memory_reservation_set)
#define wasmtime_config_memory_guard_size_set (cm_wasmtime_api.p_wasmtime_config_memory_guard_size_set)
#define wasmtime_config_memory_reservation_for_growth_set (cm_wasmtime_api.p_wasmtime_config_memory_reservation_for_growth_set)
#define wasmtime_config_memory_may_move_set (cm_wasmtime_api.p_wasmtime_config_memory_may_move_set)
#define wasmtime_config_memory_init_cow_set (cm_wasmtime_api.p_wasmtime_config_memory_init_cow_set)
#define wasmtime_config_signals_based_traps_set (cm_wasmtime_api.p_wasmtime_config_signals_based_traps_set)
#define wasmtime_engine_increment_epoch (cm_wasmtime_api.p_wasmtime_engine_increment_epoch)
#define wasmtime_store_new (cm_wasmtime_api.p_wasmtime_store_new)
#define wasmtime_store_context (cm_wasmtime_api.p_wasmtime_store_context)
#define wasmtime_store_limiter (cm_wasmtime_api.p_wasmtime_store_limiter)
#define wasmtime_store_delete (cm_wasmtime_api.p_wasmtime_store_delete)
#define wasmtime_context_set_fuel (cm_wasmtime_api.p_wasmtime_context_set_fuel)
#define wasmtime_context_set_epoch_deadline (cm_wasmtime_api.p_wasmtime_context_set_epoch_deadline)
#define wasmtime_context_set_data (cm_wasmtime_api.p_wasmtime_context_set_data)
#define wasmtime_context_get_data (cm_wasmtime_api.p_wasmtime_context_get_data)
#define wasmtime_error_message (cm_wasmtime_api.p_wasmtime_error_message)
#define wasmtime_error_delete (cm_wasmtime_api.p_wasmtime_error_delete)
#define wasm_byte_vec_delete (cm_wasmtime_api.p_wasm_byte_vec_delete)
#define wasmtime_wat2wasm (cm_wasmtime_api.p_wasmtime_wat2wasm)
#define wasmtime_module_new (cm_wasmtime_api.p_wasmtime_module_new)
#define wasmtime_module_delete (cm_wasmtime_api.p_wasmtime_module_delete)
#define wasmtime_module_exports (cm_wasmtime_api.p_wasmtime_module_exports)
#define wasm_exporttype_name (cm_wasmtime_api.p_wasm_exporttype_name)
#define wasm_exporttype_type (cm_wasmtime_api.p_wasm_exporttype_type)
#define wasm_exporttype_vec_delete (cm_wasmtime_api.p_wasm_exporttype_vec_delete)
#define wasm_externtype_kind (cm_wasmtime_api.p_wasm_externtype_kind)
#define wasm_externtype_as_functype_const (cm_wasmtime_api.p_wasm_externtype_as_functype_const)
#define wasm_externtype_as_globaltype_const (cm_wasmtime_api.p_wasm_externtype_as_globaltype_const)
#define wasm_externtype_as_memorytype_const (cm_wasmtime_api.p_wasm_externtype_as_memorytype_const)
#define wasm_functype_params (cm_wasmtime_api.p_wasm_functype_params)
#define wasm_functype_results (cm_wasmtime_api.p_wasm_functype_results)
#define wasm_valtype_kind (cm_wasmtime_api.p_wasm_valtype_kind)
#define wasm_globaltype_mutability (cm_wasmtime_api.p_wasm_globaltype_mutability)
#define wasm_globaltype_content (cm_wasmtime_api.p_wasm_globaltype_content)
#define wasmtime_memorytype_is64 (cm_wasmtime_api.p_wasmtime_memorytype_is64)
#define wasmtime_memorytype_isshared (cm_wasmtime_api.p_wasmtime_memorytype_isshared)
#define wasmtime_memorytype_minimum (cm_wasmtime_api.p_wasmtime_memorytype_minimum)
#define wasmtime_linker_new (cm_wasmtime_api.p_wasmtime_linker_new)
#define wasmtime_linker_delete (cm_wasmtime_api.p_wasmtime_linker_delete)
#define wasmtime_linker_define_func_unchecked (cm_wasmtime_api.p_wasmtime_linker_define_func_unchecked)
#define wasmtime_linker_instantiate_pre (cm_wasmtime_api.p_wasmtime_linker_instantiate_pre)
#define wasmtime_instance_pre_instantiate (cm_wasmtime_api.p_wasmtime_instance_pre_instantiate)
#define wasmtime_instance_pre_delete (cm_wasmtime_api.p_wasmtime_instance_pre_delete)
#define wasmtime_instance_export_get (cm_wasmtime_api.p_wasmtime_instance_export_get)
#define wasmtime_memory_data (cm_wasmtime_api.p_wasmtime_memory_data)
#define wasmtime_memory_data_size (cm_wasmtime_api.p_wasmtime_memory_data_size)
#define wasmtime_memory_grow (cm_wasmtime_api.p_wasmtime_memory_grow)
#define wasmtime_global_get (cm_wasmtime_api.p_wasmtime_global_get)
#define wasmtime_global_set (cm_wasmtime_api.p_wasmtime_global_set)
#define wasmtime_func_call_unchecked (cm_wasmtime_api.p_wasmtime_func_call_unchecked)
#define wasmtime_caller_context (cm_wasmtime_api.p_wasmtime_caller_context)
#define wasm_valtype_new (cm_wasmtime_api.p_wasm_valtype_new)
#define wasm_valtype_vec_new (cm_wasmtime_api.p_wasm_valtype_vec_new)
#define wasm_functype_new (cm_wasmtime_api.p_wasm_functype_new)
#define wasm_functype_delete (cm_wasmtime_api.p_wasm_functype_delete)
#define wasmtime_trap_new (cm_wasmtime_api.p_wasmtime_trap_new)
#define wasm_trap_delete (cm_wasmtime_api.p_wasm_trap_delete)
#define wasm_trap_message (cm_wasmtime_api.p_wasm_trap_message)
#define wasmtime_trap_code (cm_wasmtime_api.p_wasmtime_trap_code)


/* ---- the agents' C structures ---- */

/* ABI v0: the host-owned I/O area inside each agent's linear memory. */
#define CM_WASM_IO_BYTES 0xC000
#define CM_WASM_BATCH_HALF (CM_WASM_IO_BYTES / 2)   /* cm_handle_batch: inbox | outbox */

/* The host import cm.send(dst, ptr, len) -> i32 hands the bytes to this
 * function (they live in linear memory: copy them before returning).  Its
 * result is the agent's; < 0 means refused. */
typedef int32_t (*cm_wasm_send_fn)(void *ctx, int32_t dst, const char *data, int64_t len);

/* A compiled module and everything every agent of it shares.  Reference
 * counted: the WasmModule object holds one reference and every spawned agent
 * one, so that agents outlive the Python object that compiled them. */
typedef struct cm_wasm_module {
  int64_t refcnt;
  wasm_engine_t *engine;          /* shared per configuration, never freed */
  wasmtime_module_t *module;
  wasmtime_linker_t *linker;
  wasmtime_instance_pre_t *pre;   /* imports resolved once, for cheap spawns */
  int64_t memory_limit;           /* bytes, the store limiter's cap */
  uint64_t fuel;                  /* per call; 0 = not metered */
  uint64_t deadline_ticks;        /* per call, in ticker periods (1 ms) */
  int has_batch;
  int has_set_param;
  uint64_t fingerprint;           /* of the wasm bytes: a checkpoint names its module */
  int32_t n_globals;              /* exported mutable i32/i64/f32/f64 globals */
  char **global_names;
} cm_wasm_module;

/* One agent: its Store (the unit of isolation), its instance and the cached
 * handles of its exports.  Owned by one thread at a time.  The Store's data
 * pointer is this structure (for cm.send): after moving it, call
 * cm_wasm_rebind(). */
typedef struct cm_wasm_instance {
  cm_wasm_module *module;         /* NULL: not spawned (or destroyed) */
  wasmtime_store_t *store;
  wasmtime_context_t *ctx;
  wasmtime_instance_t instance;
  wasmtime_memory_t memory;
  wasmtime_func_t f_handle;
  wasmtime_func_t f_batch;
  wasmtime_func_t f_set_param;
  uint8_t *base;                  /* linear memory: never moves (may_move=false) */
  uint32_t io;                    /* offset of the I/O area */
  int64_t in_use;                 /* WasmInstance: guards against two threads (atomic) */
  cm_wasm_send_fn send;           /* NULL: cm.send refuses (-1) */
  void *send_ctx;
} cm_wasm_instance;


#if defined(_MSC_VER) && !defined(__clang__)
#define CM_WT_INLINE __inline
#else
#define CM_WT_INLINE inline
#endif

/* ---- the epoch ticker ----
 * One thread advances the epoch of every engine once a millisecond, which is
 * what makes a call past its deadline trap.  It sleeps (on a condition
 * variable) while no agent exists, so an idle process has no wakeups. */

#define CM_WASM_MAX_ENGINES 64
#define CM_WASM_TICK_NS 1000000

typedef struct cm_wasm_ticker_t {
  int64_t live;                   /* agents alive (atomic) */
  int64_t ticks;                  /* ticks so far (atomic; for tests) */
  int64_t running;                /* the thread exists in this process (atomic) */
  int n_engines;
  wasm_engine_t *engines[CM_WASM_MAX_ENGINES];
#if defined(_WIN32)
  SRWLOCK mu;
#else
  pthread_mutex_t mu;
  pthread_cond_t cv;
#endif
} cm_wasm_ticker_t;

#if defined(_WIN32)
static cm_wasm_ticker_t cm_wasm_ticker = {0, 0, 0, 0, {0}, SRWLOCK_INIT};
#define CM_TICKER_LOCK() AcquireSRWLockExclusive(&cm_wasm_ticker.mu)
#define CM_TICKER_UNLOCK() ReleaseSRWLockExclusive(&cm_wasm_ticker.mu)

/* Windows: no condition variable; the thread ticks for the process's life
 * (Sleep(1) resolution is the system timer's, often 15.6 ms: deadlines are
 * coarser there). */
static DWORD WINAPI cm_wasm_ticker_main(LPVOID unused) {
  int i, n;
  (void)unused;
  for (;;) {
    Sleep(1);
    if (cm_atomic_load_64(&cm_wasm_ticker.live) == 0) continue;
    CM_TICKER_LOCK();
    n = cm_wasm_ticker.n_engines;
    for (i = 0; i < n; i++) wasmtime_engine_increment_epoch(cm_wasm_ticker.engines[i]);
    CM_TICKER_UNLOCK();
    cm_atomic_add_relaxed_64(&cm_wasm_ticker.ticks, 1);
  }
  return 0;
}
static int cm_wasm_ticker_start_locked(void) {
  HANDLE th;
  if (cm_wasm_ticker.running) return 0;
  th = CreateThread(NULL, 64 * 1024, cm_wasm_ticker_main, NULL, 0, NULL);
  if (!th) return -1;
  CloseHandle(th);
  cm_atomic_store_64(&cm_wasm_ticker.running, 1);
  return 0;
}
#define CM_TICKER_WAKE() ((void)0)

#else
static cm_wasm_ticker_t cm_wasm_ticker = {0, 0, 0, 0, {0}, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER};
#define CM_TICKER_LOCK() pthread_mutex_lock(&cm_wasm_ticker.mu)
#define CM_TICKER_UNLOCK() pthread_mutex_unlock(&cm_wasm_ticker.mu)
#define CM_TICKER_WAKE() pthread_cond_signal(&cm_wasm_ticker.cv)

static void *cm_wasm_ticker_main(void *unused) {
  struct timespec period = {0, CM_WASM_TICK_NS};
  int i;
  (void)unused;
  for (;;) {
    CM_TICKER_LOCK();
    while (cm_atomic_load_64(&cm_wasm_ticker.live) == 0)
      pthread_cond_wait(&cm_wasm_ticker.cv, &cm_wasm_ticker.mu);
    /* documented as callable from any thread: an atomic add */
    for (i = 0; i < cm_wasm_ticker.n_engines; i++)
      wasmtime_engine_increment_epoch(cm_wasm_ticker.engines[i]);
    CM_TICKER_UNLOCK();
    cm_atomic_add_relaxed_64(&cm_wasm_ticker.ticks, 1);
    nanosleep(&period, NULL);
  }
  return NULL;
}

/* fork() keeps only the forking thread: the child starts its own ticker on
 * its next spawn or call (cm_wasm_ticker_ensure), with a fresh lock. */
static void cm_wasm_ticker_atfork_child(void) {
  pthread_mutex_init(&cm_wasm_ticker.mu, NULL);
  pthread_cond_init(&cm_wasm_ticker.cv, NULL);
  cm_atomic_store_64(&cm_wasm_ticker.running, 0);
}

static int cm_wasm_ticker_start_locked(void) {
  static int atfork_registered = 0;
  pthread_t th;
  pthread_attr_t attr;
  int rc;
  if (cm_wasm_ticker.running) return 0;
  if (!atfork_registered) {
    if (pthread_atfork(NULL, NULL, cm_wasm_ticker_atfork_child) != 0) return -1;
    atfork_registered = 1;
  }
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, 64 * 1024);   /* it needs next to none */
  rc = pthread_create(&th, &attr, cm_wasm_ticker_main, NULL);
  pthread_attr_destroy(&attr);
  if (rc != 0) return -1;
  cm_atomic_store_64(&cm_wasm_ticker.running, 1);
  return 0;
}
#endif

/* Registers an engine with the ticker.  0, or -1 (too many engines). */
static int cm_wasm_ticker_add_engine(wasm_engine_t *engine) {
  int rc = 0;
  CM_TICKER_LOCK();
  if (cm_wasm_ticker.n_engines == CM_WASM_MAX_ENGINES) rc = -1;
  else cm_wasm_ticker.engines[cm_wasm_ticker.n_engines++] = engine;
  CM_TICKER_UNLOCK();
  return rc;
}

/* Makes sure the ticker thread runs in this process.  0, or -1 if the
 * thread cannot be created. */
static int cm_wasm_ticker_ensure(void) {
  int rc;
  CM_TICKER_LOCK();
  rc = cm_wasm_ticker_start_locked();
  CM_TICKER_WAKE();
  CM_TICKER_UNLOCK();
  return rc;
}

/* An agent begins to exist: wake the ticker if it was the first. */
static int cm_wasm_ticker_hold(void) {
  if (cm_atomic_fetch_add_64(&cm_wasm_ticker.live, 1) == 0
      || !cm_atomic_load_64(&cm_wasm_ticker.running)) {
    if (cm_wasm_ticker_ensure() != 0) {
      cm_atomic_fetch_add_64(&cm_wasm_ticker.live, -1);
      return -1;
    }
  }
  return 0;
}

static void cm_wasm_ticker_release(void) {
  cm_atomic_fetch_add_64(&cm_wasm_ticker.live, -1);
}

/* A plain read on the hot path (a stale value only delays the restart of
 * the ticker in a forked child by one call). */
static CM_WT_INLINE int cm_wasm_ticker_running(void) {
  return *(volatile int64_t *)&cm_wasm_ticker.running != 0;
}

static CM_WT_INLINE int64_t cm_wasm_ticker_ticks(void) {
  return cm_atomic_load_64(&cm_wasm_ticker.ticks);
}

static CM_WT_INLINE int64_t cm_wasm_ticker_live(void) {
  return cm_atomic_load_64(&cm_wasm_ticker.live);
}

#endif /* CM_WASMTIME_H */

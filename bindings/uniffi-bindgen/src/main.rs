//! The `uniffi-bindgen` command of this workspace: generates the Kotlin and
//! Swift bindings from the built `rowsync_ffi` library (library mode), with
//! exactly the UniFFI version the scaffolding was compiled with.

fn main() {
    uniffi::uniffi_bindgen_main()
}
